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

from monitor.capture import CaptureFile, InterfaceStatistics
from monitor.config import SensorConfig
from monitor.metrics import dialect_label, session_result
from monitor.report import Analysis, build_document
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
