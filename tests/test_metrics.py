"""The exporter's metrics: the contract the dashboards use, counts equal to the offline analysis,
counters present from the first scrape, `promtool check metrics` on a real scrape."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dissectors.dcerpc.interfaces import INTERFACES, OPERATIONS
from monitor.config import SensorConfig
from monitor.detect import ALERT_KINDS
from monitor.input.capture import CaptureFile, InterfaceStatistics
from monitor.output.metrics import (
    FILE_ACTIONS,
    RPC_BIND_RESULTS,
    RPC_RESULT_CLASSES,
    SensorMetrics,
    dialect_label,
    rpc_bind_result,
    rpc_interface_label,
    rpc_operation_label,
    rpc_result_class,
    session_result,
)
from monitor.output.report import Analysis, build_document
from monitor.sensor import build_parts
from tests.metrics_text import Samples, parse_samples, value

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
GENERATOR = Path(__file__).resolve().parents[1] / "dashboards" / "generate.py"
CAPTURES = sorted(str(path) for path in (PCAPS / "recorded").glob("*.pcap*")) + [
    str(PCAPS / "crafted" / name)
    for name in ("ms17_010_unpatched.pcap", "eternalblue_patterns.pcap", "doublepulsar_patterns.pcap")
]


def dashboard_contract() -> dict:
    name = "smbwatch_dashboards_generate"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, GENERATOR)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return module.METRICS


class NullLogger:
    def info(self, *args: object, **kwargs: object) -> None:
        pass

    warning = info


def run_sensor_pipeline(paths: list[str]) -> tuple[CollectorRegistry, Analysis]:
    """The live sensor's parts (fresh registry) fed offline; its inventory keeps records for comparison."""
    registry = CollectorRegistry()
    parts = build_parts(SensorConfig(), registry, NullLogger(), "test")
    parts.inventory.max_records = 1_000_000
    packets = 0
    for path in paths:
        capture = CaptureFile(path)
        parts.pipeline.feed(capture)
        packets += capture.frames
    parts.pipeline.finish()
    statistics = {"replay": InterfaceStatistics("replay", packets, 0, packets, 0)}
    parts.metrics.refresh(parts.pipeline, parts.inventory, statistics, 1.0)
    return registry, Analysis(parts.pipeline, parts.inventory)


def samples(registry: CollectorRegistry) -> Samples:
    return parse_samples(generate_latest(registry).decode())


@pytest.fixture(scope="module")
def scraped() -> tuple[dict, dict]:
    registry, analysis = run_sensor_pipeline(CAPTURES)
    return samples(registry), build_document(analysis)


def test_counts_equal_the_offline_analysis(scraped: tuple[dict, dict]) -> None:
    scrape, document = scraped
    connections = document["connections"]
    for protocol, count in document["stats"]["smb_messages"].items():
        assert value(scrape, "smbwatch_smb_messages_total", protocol=protocol) == count
    assert value(scrape, "smbwatch_smb1_connections_total") == sum(c["smb1_used"] for c in connections)
    dialects = Counter(dialect_label(c["dialect"]) for c in connections if c["dialect"] is not None)
    dialects["none"] += sum(1 for c in connections if (c["negotiate"]["server"] or {}).get("no_dialect_acceptable"))
    for label, count in dialects.items():
        assert value(scrape, "smbwatch_negotiations_total", dialect=label) == count, label
    sessions = Counter(
        (s["auth"], "success" if s["status"] == "STATUS_SUCCESS" else "failure")
        for c in connections
        for s in c["sessions"]
        if s["status"]
    )
    for (auth, result), count in sessions.items():
        exported = (
            value(scrape, "smbwatch_session_setups_total", auth=auth, result="success")
            if result == "success"
            else value(scrape, "smbwatch_session_setups_total", auth=auth, result="logon_failure")
            + value(scrape, "smbwatch_session_setups_total", auth=auth, result="other_failure")
        )
        assert exported == count, (auth, result)
    trees = Counter(t["status"] == "STATUS_SUCCESS" for c in connections for t in c["trees"])
    assert value(scrape, "smbwatch_tree_connects_total", result="success") == trees[True]
    assert value(scrape, "smbwatch_tree_connects_total", result="failure") == trees[False]
    for kind, count in document["stats"]["alerts"].items():
        assert value(scrape, "smbwatch_alerts_total", kind=kind) == count, kind
    transports = Counter(c["transport"] for c in connections)
    for transport, count in transports.items():
        assert value(scrape, "smbwatch_connections_total", transport=transport) == count
    assert value(scrape, "smbwatch_reassembly_gaps_total") == document["stats"]["reassembly_gaps"]
    assert value(scrape, "smbwatch_flows_opened_total") == document["stats"]["flows"]["created"]
    for kind, count in document["stats"]["anomalies"].items():
        assert value(scrape, "smbwatch_anomalies_total", kind=kind) == count, kind
    smb1_hosts = {h["ip"] for h in document["hosts"] if h["smb1"]}
    exported_smb1 = sum(
        v for (name, labels), v in scrape.items() if name == "smbwatch_hosts" and ("smb1", "true") in labels
    )
    assert exported_smb1 >= len(smb1_hosts) > 0  # a host using SMB1 in both roles counts in each


def test_activity_counts_equal_the_offline_analysis(scraped: tuple[dict, dict]) -> None:
    """RPC calls and binds, file actions: the scrape sums what the connections' `rpc` and `files` list."""
    scrape, document = scraped
    connections = document["connections"]
    actions = Counter(action for c in connections for entry in c["files"] for action in entry["actions"])
    assert set(actions) == set(FILE_ACTIONS)  # the captures do every action at least once
    for action in FILE_ACTIONS:
        assert value(scrape, "smbwatch_file_actions_total", action=action) == actions[action], action
    calls: Counter[str] = Counter()  # by interface name as the record gives it; unknown UUIDs as "other"
    results: Counter[str] = Counter()
    binds: Counter[tuple[str, str]] = Counter()
    for connection in connections:
        for bound in connection["rpc"]:
            name = "other" if bound["interface"] == bound["uuid"] else bound["interface"]
            binds[name, bound["bind_result"]] += 1
            for call in bound["calls"]:
                calls[name] += call["count"]
                status = call["status"]
                results[status if status in ("ok", "no_answer") else "not ok"] += call["count"]
    assert calls["svcctl"] and calls["spoolss"] and calls["samr"] and results["not ok"]
    exported_calls: Counter[str] = Counter()
    exported_results: Counter[str] = Counter()
    exported_binds: Counter[tuple[str, str]] = Counter()
    for (name, labels), count in scrape.items():
        label = dict(labels)
        if name == "smbwatch_rpc_calls_total":
            exported_calls[label["interface"]] += int(count)
            exported_results[label["result_class"]] += int(count)
        elif name == "smbwatch_rpc_binds_total" and count:
            exported_binds[label["interface"], label["result"]] += int(count)
    assert +exported_calls == +calls
    assert exported_results["ok"] == results["ok"] and exported_results["no_answer"] == results["no_answer"]
    assert exported_results["error"] + exported_results["fault"] == results["not ok"]
    assert exported_results["fault"] > 0 and exported_results["error"] > 0
    assert exported_binds == binds
    # Real calls, named from the table: impacket's psexec asked for RCreateServiceW, the coercion capture
    # got a fault for NetrDfsRemoveStdRoot, and a spoolss call that reached no one was answered with a Win32 error.
    for interface, operation, result in (
        ("svcctl", "RCreateServiceW", "fault"),
        ("netdfs", "NetrDfsRemoveStdRoot", "fault"),
        ("spoolss", "RpcRemoteFindFirstPrinterChangeNotificationEx", "error"),
    ):
        labels = {"interface": interface, "operation": operation, "result_class": result}
        assert value(scrape, "smbwatch_rpc_calls_total", **labels), labels


def test_activity_label_values_stay_in_the_table(scraped: tuple[dict, dict]) -> None:
    scrape, _ = scraped
    interfaces = {name for name, _ in INTERFACES.values()} | {"other"}
    operations = set(OPERATIONS.values()) | {"other"}
    seen = 0
    for name, labels in scrape:
        label = dict(labels)
        if name == "smbwatch_rpc_calls_total":
            seen += 1
            assert label["interface"] in interfaces and label["operation"] in operations, label
            assert label["result_class"] in RPC_RESULT_CLASSES, label
        elif name == "smbwatch_rpc_binds_total":
            assert label["interface"] in interfaces and label["result"] in RPC_BIND_RESULTS, label
    assert seen > len(RPC_RESULT_CLASSES)


def test_unknown_interfaces_and_operations_fold_into_other() -> None:
    """Names never come from the wire: a UUID or opnum the generated table lacks is "other"."""
    svcctl = "367abb81-9844-35f1-ad32-98f038001003"
    unknown = "01234567-89ab-cdef-0123-456789abcdef"
    assert rpc_interface_label(svcctl.upper(), 2) == "svcctl"
    assert rpc_interface_label(svcctl, 7) == "svcctl"  # a version the table lacks still has the name
    assert rpc_interface_label(unknown, 1) == "other"
    assert rpc_operation_label(svcctl, 12) == "RCreateServiceW"
    assert rpc_operation_label(svcctl, 4000) == rpc_operation_label(unknown, 0) == "other"
    assert rpc_result_class("ok") == "ok" and rpc_result_class("no_answer") == "no_answer"
    assert rpc_result_class("nca_s_fault_access_denied") == rpc_result_class("nca_op_rng_error") == "fault"
    assert rpc_result_class("ERROR_ACCESS_DENIED") == rpc_result_class("STATUS_ACCESS_DENIED") == "error"
    assert rpc_result_class("unknown-0x1c0100ff") == "fault"  # the nca range of [C706] Appendix E
    assert rpc_result_class("unknown-0x00001234") == rpc_result_class("unknown-0xc0ffee00") == "error"
    assert rpc_bind_result("accepted") == "accepted" and rpc_bind_result("unknown-0x7") == "other"
    registry = CollectorRegistry()
    metrics = SensorMetrics(registry, "test", process_metrics=False)
    hostile = [
        {"uuid": unknown, "version": 1, "bind_result": "unknown-0x9", "calls": [
            {"opnum": opnum, "status": f"unknown-0x{opnum:08x}", "count": 2} for opnum in range(500)]},
        {"uuid": svcctl, "version": 2, "bind_result": "accepted", "calls": [
            {"opnum": 12, "status": "ok", "count": 1}, {"opnum": 9999, "status": "nca_op_rng_error", "count": 3}]},
    ]  # fmt: skip
    files = [{"actions": ["create", "write", "rename"]}, {"actions": ["open", "read", "delete"]}, {"actions": []}]
    metrics.connection_closed({"transport": "tcp445", "rpc": hostile, "files": files})
    scrape = samples(registry)
    calls = {labels: count for (name, labels), count in scrape.items() if name == "smbwatch_rpc_calls_total"}
    assert calls == {
        (("interface", "other"), ("operation", "other"), ("result_class", "error")): 1000.0,
        (("interface", "other"), ("operation", "other"), ("result_class", "fault")): 0.0,
        (("interface", "other"), ("operation", "other"), ("result_class", "ok")): 0.0,
        (("interface", "other"), ("operation", "other"), ("result_class", "no_answer")): 0.0,
        (("interface", "svcctl"), ("operation", "RCreateServiceW"), ("result_class", "ok")): 1.0,
        (("interface", "svcctl"), ("operation", "other"), ("result_class", "fault")): 3.0,
    }
    assert value(scrape, "smbwatch_rpc_binds_total", interface="other", result="other") == 1
    assert value(scrape, "smbwatch_rpc_binds_total", interface="svcctl", result="accepted") == 1
    assert {a: value(scrape, "smbwatch_file_actions_total", action=a) for a in FILE_ACTIONS} == {
        "open": 1, "create": 1, "overwrite": 0, "read": 1, "write": 1, "rename": 1, "delete": 1}  # fmt: skip


def test_every_alert_kind_is_in_the_contract_and_counted_from_zero() -> None:
    """The after-login kinds joined ALERT_KINDS: the dashboards' contract lists them all, at 0 before any traffic."""
    assert dashboard_contract()["smbwatch_alerts_total"].values["kind"] == ALERT_KINDS
    registry = CollectorRegistry()
    build_parts(SensorConfig(), registry, NullLogger(), "test")
    scrape = samples(registry)
    for kind in ALERT_KINDS:
        assert scrape[("smbwatch_alerts_total", (("kind", kind),))] == 0, kind


def test_the_exported_names_and_labels_are_the_dashboards_contract(scraped: tuple[dict, dict]) -> None:
    scrape, _ = scraped
    contract = dashboard_contract()
    exported = {name: {key for key, _ in labels} for name, labels in scrape}
    for name, metric in contract.items():
        if metric.source != "smbwatch" or metric.opt_in:
            continue
        assert name in exported, f"{name} is in the dashboards' contract but not exported"
        assert exported[name] == set(metric.labels), name
    ours = {name for name in exported if name.startswith("smbwatch_")}
    assert ours <= set(contract), f"exported but not in the contract: {ours - set(contract)}"


def test_every_listed_label_value_exists_from_the_first_scrape() -> None:
    registry = CollectorRegistry()
    build_parts(SensorConfig(), registry, NullLogger(), "test")
    scrape = samples(registry)
    for name, metric in dashboard_contract().items():
        if metric.source != "smbwatch" or metric.opt_in or metric.kind != "counter":
            continue
        for label, values in metric.values.items():
            for one in values:
                present = [labels for sample, labels in scrape if sample == name and (label, one) in labels]
                assert present, f"{name}{{{label}={one!r}}} missing before any traffic"


def test_label_helpers_stay_bounded() -> None:
    assert (
        dialect_label("NT LM 0.12") == dialect_label("LANMAN2.1") == dialect_label("PC NETWORK PROGRAM 1.0") == "smb1"
    )
    assert dialect_label("3.1.1") == "3.1.1" and dialect_label(None) == "none"
    assert dialect_label("unknown-0x0399") == dialect_label("unknown") == "unknown"
    assert dialect_label("2.2.2") == "unknown"
    assert session_result(0) == "success"
    assert session_result(0xC000006D) == "logon_failure" and session_result(0xC0000022) == "other_failure"


def test_opt_in_host_series_are_capped() -> None:
    registry = CollectorRegistry()
    config = SensorConfig()
    config.exporter.host_series = True
    config.exporter.max_host_series = 1
    parts = build_parts(config, registry, NullLogger(), "test")
    for path in CAPTURES:
        parts.pipeline.feed(CaptureFile(path))
    parts.pipeline.finish()
    parts.metrics.refresh(parts.pipeline, parts.inventory, {}, 0.0)
    info = [labels for name, labels in samples(registry) if name == "smbwatch_smb1_host_info"]
    assert len(info) == 1
    series = sum(  # every SMB1 (ip, role) series there would be without the cap
        1
        for facts in parts.inventory.hosts.values()
        for dialects, connections, smb1 in (
            (facts.dialects_as_client, facts.connections_as_client, facts.smb1),
            (facts.dialects_as_server, facts.connections_as_server, facts.smb1),
        )
        if (connections or dialects) and (any(dialect_label(d) == "smb1" for d in dialects) or (smb1 and not dialects))
    )
    assert series > 2
    for _ in range(3):  # each snapshot sets the count, never adds to it
        parts.metrics.refresh(parts.pipeline, parts.inventory, {}, 0.0)
    scraped = parse_samples(generate_latest(registry).decode())
    assert scraped[("smbwatch_smb1_host_series_dropped", ())] == series - 1
    assert scraped[("smbwatch_anomalies_total", (("kind", "host_series_full"),))] == series - 1
    parts.metrics.max_host_series = series  # none left out now: the gauge falls, the counter does not
    parts.metrics.refresh(parts.pipeline, parts.inventory, {}, 0.0)
    scraped = parse_samples(generate_latest(registry).decode())
    assert scraped[("smbwatch_smb1_host_series_dropped", ())] == 0
    assert scraped[("smbwatch_anomalies_total", (("kind", "host_series_full"),))] == series - 1
    plain = CollectorRegistry()
    build_parts(SensorConfig(), plain, NullLogger(), "test")
    assert not [name for name, _ in samples(plain) if name == "smbwatch_smb1_host_info"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_a_scrape(tmp_path: Path) -> None:
    registry, _ = run_sensor_pipeline(CAPTURES[:5])
    path = tmp_path / "metrics.txt"
    path.write_bytes(generate_latest(registry))
    result = subprocess.run(["promtool", "check", "metrics"], stdin=path.open("rb"), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_host_cap_is_counted_on_a_sensor() -> None:
    """Past `[limits] max_hosts` a sensor lists no more hosts; `hosts_full` says so in the metric."""
    config = SensorConfig()
    config.limits.max_hosts = 1
    registry = CollectorRegistry()
    parts = build_parts(config, registry, NullLogger(), "test")
    for path in CAPTURES:
        parts.pipeline.feed(CaptureFile(path))
    parts.pipeline.finish()
    parts.metrics.refresh(parts.pipeline, parts.inventory, {}, 0.0)
    assert parts.inventory.hosts_dropped > 0
    scraped = parse_samples(generate_latest(registry).decode())
    assert scraped[("smbwatch_anomalies_total", (("kind", "hosts_full"),))] == parts.inventory.hosts_dropped


def test_rpc_binds_are_counted_by_how_their_verifier_authenticated() -> None:
    """Point 3 of issue 11: NTLM users of RPC binds counted by auth kind, as SMB sessions are."""
    from monitor.output.metrics import RPC_BIND_AUTH_KINDS, rpc_bind_auth
    from tests.retirement_reports import document_of

    assert rpc_bind_auth(None) == "none"
    assert rpc_bind_auth({"kind": "RPC_C_AUTHN_WINNT", "user": "alice", "ntlm": "ntlmv2"}) == "ntlmv2"
    assert rpc_bind_auth({"kind": "RPC_C_AUTHN_GSS_KERBEROS", "realm": "LAB"}) == "kerberos"
    assert rpc_bind_auth({"kind": "RPC_C_AUTHN_WINNT", "ntlm": "something-else"}) == "unknown"
    registry = CollectorRegistry()
    metrics = SensorMetrics(registry, "test", process_metrics=False)
    # rpcclient after `sign`: the lsarpc bind carries alice's NTLMv2 AUTHENTICATE, srvsvc and samr none.
    (record,) = document_of("recorded/rpc_recon.pcap")["connections"]
    metrics.connection_closed(record)
    scrape = samples(registry)
    counts = {kind: value(scrape, "smbwatch_rpc_bind_auth_total", auth=kind) for kind in RPC_BIND_AUTH_KINDS}
    assert counts["ntlmv2"] == 1
    assert counts["none"] == 2
    assert sum(counts.values()) == 3
