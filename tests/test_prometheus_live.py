"""Proof against a real Prometheus: Debian's `prometheus`, started on loopback with a temporary config and
the shipped alert rules, scrapes `smbwatch sniff --replay` over captures from pcaps/ (SMB1, scan, attacks,
brute force, normal sessions, what happens after the login and its controls); every dashboard panel query,
the annotation and every alert expression (`expressions()` in dashboards/generate.py) then goes through the
HTTP API. Each must parse and return data, except the few in NO_DATA; the detection alerts whose traffic was
replayed must fire, on the sensor that saw it, and nothing else (each after-login alert on exactly the
captures ACTIVITY names, none on the CONTROLS); the scraped counters must equal the offline analysis of the
same captures.

Every sniffer but one replays at full speed, so its counters are final by the first scrape and `rate()` is
0 there. One more sniffer ("paced") replays eternalblue_patterns.pcap at a tenth of real time and is
started only once Prometheus scrapes its (reserved) address: its counters rise while Prometheus watches,
which the annotation (`increase(...) > 0`) and the drop-ratio panel (only interfaces with traffic) need.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from monitor.config import load_config
from monitor.detect import ALERT_KINDS, Detector
from monitor.detect.activity import ACTIVITY_ALERT_KINDS
from monitor.input.capture import CaptureFile
from monitor.output.inventory import Inventory
from monitor.output.metrics import FILE_ACTIONS, dialect_label, rpc_interface_label, rpc_result_class
from monitor.output.report import Analysis, SourceResult, build_document
from monitor.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
RULES = ROOT / "dashboards" / "prometheus" / "smbwatch-rules.yml"
SMBWATCH = [sys.executable, "-m", "monitor.cli"]
JOB = "smbwatch"

# Bounded waits: generous for a loaded 2-core machine, far below what a hang would take.
START_TIMEOUT = 60.0
DATA_TIMEOUT = 75.0
PACED_SPEED = 0.1  # eternalblue_patterns.pcap spans 2.03 s: alerts at +0, +10 and +20 s of replay

# The expressions that legitimately return nothing with these captures, and why. Any other expression
# without data fails the test, and so does one of these if it returns data.
NO_DATA = {
    "alert/SmbwatchCaptureDrops": (
        "a replay drops nothing (kernel drops 0, kernel packets = frames read): the drop ratio is 0, never > 1 %"
    ),
    "alert/SmbwatchSensorDown": "every sensor is up while the queries run: `up < 1` selects nothing",
}
# The crafted big-endian request is made elsewhere and may not exist yet: without it, nothing raises its alert.
BIG_ENDIAN = "crafted/rpc_big_endian.pcap"
HAVE_BIG_ENDIAN = (PCAPS / BIG_ENDIAN).exists()
if not HAVE_BIG_ENDIAN:
    NO_DATA["alert/SmbwatchRpcBigEndian"] = f"pcaps/{BIG_ENDIAN} does not exist yet: no replay raises rpc_big_endian"


# Detection alert rules and the smbwatch_alerts_total kind each watches (smb1_negotiated has none: the
# SMBv1 alert watches smbwatch_smb1_connections_total instead).
KIND_ALERTS = {
    "scan_445": "SmbwatchScan445",
    "ms17_010_probe": "SmbwatchMs17010Probe",
    "eternalblue": "SmbwatchEternalBlue",
    "doublepulsar": "SmbwatchDoublePulsar",
    "bruteforce": "SmbwatchBruteForce",
    "remote_execution": "SmbwatchRemoteExecution",
    "admin_share_executable": "SmbwatchAdminShareExecutable",
    "lateral_movement": "SmbwatchLateralMovement",
    "print_driver_install": "SmbwatchPrintDriverInstall",
    "rpc_coercion": "SmbwatchRpcCoercion",
    "rpc_big_endian": "SmbwatchRpcBigEndian",
    "ransomware_activity": "SmbwatchRansomwareActivity",
}
# The after-login alert kinds each replay must raise, and only there (`smbwatch analyze` of each capture).
ACTIVITY = {
    "psexec": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "ransomware": {"ransomware_activity"},
    "coercion": {"rpc_coercion"},
    "print_driver": {"print_driver_install"},
    **({"big_endian": {"rpc_big_endian"}} if HAVE_BIG_ENDIAN else {}),
}
# Plain file work, RPC reconnaissance and an SMB 3.1.1 session: no alert at all.
CONTROLS = ("files", "rpc_recon", "smb3")
SMB1_ALERT = "SmbwatchSmb1TrafficSeen"
QUIET_ALERTS = ("SmbwatchSensorDown", "SmbwatchCaptureDrops")


@dataclass(frozen=True)
class Replay:
    name: str
    capture: str  # under pcaps/
    config: str = ""  # TOML for --config
    speed: float = 0.0


REPLAYS = (
    # host_series: the opt-in per-host SMB1 series, so the "SMBv1 hosts by address" table has data.
    Replay("smb1", "recorded/smb1_nt1.pcap", config="[exporter]\nhost_series = true\n"),
    Replay("scan", "recorded/scan_445_sweep.pcap"),
    Replay("eternalblue", "crafted/eternalblue_patterns.pcap"),
    Replay("doublepulsar", "crafted/doublepulsar_patterns.pcap"),
    Replay("ms17_010", "crafted/ms17_010_unpatched.pcap"),
    # Three failed logons: below the default brute-force threshold of 10.
    Replay("bruteforce", "recorded/auth_wrong_password.pcap", config="[detection]\nbruteforce_failures = 3\n"),
    Replay("smb3", "recorded/smb3_1_1.pcap"),
    Replay("kerberos", "recorded/auth_kerberos.pcap"),
    Replay("psexec", "recorded/psexec_impacket.pcap"),
    Replay("ransomware", "recorded/files_ransomware_like.pcap"),
    Replay("coercion", "recorded/rpc_coercion_attempts.pcap"),
    Replay("print_driver", "recorded/print_driver_install.pcap"),
    *([Replay("big_endian", BIG_ENDIAN)] if HAVE_BIG_ENDIAN else []),
    Replay("files", "recorded/files_activity.pcap"),
    Replay("rpc_recon", "recorded/rpc_recon.pcap"),
    Replay("paced", "crafted/eternalblue_patterns.pcap", speed=PACED_SPEED),
)


def _load_generator() -> ModuleType:
    name = "smbwatch_dashboards_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "dashboards" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class bodies run.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """`check()` until it returns something truthy; fail naming `what` and the last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(interval)


# --- the processes ---------------------------------------------------------------------------------


class Sniffer:
    """`smbwatch sniff --replay`; a thread reads its JSON events so its stdout pipe never fills."""

    def __init__(self, replay: Replay, workdir: Path, listen: str = "127.0.0.1:0") -> None:
        self.replay = replay
        self.config_path: Path | None = None
        args = ["--replay", str(PCAPS / replay.capture), "--speed", str(replay.speed), "--web.listen-address", listen]
        if replay.config:
            self.config_path = workdir / f"{replay.name}.toml"
            self.config_path.write_text(replay.config)
            args += ["--config", str(self.config_path)]
        self.stderr_path = workdir / f"{replay.name}.stderr"
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [*SMBWATCH, "sniff", *args], stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT
            )
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def event(self, name: str) -> dict | None:
        return next((event for event in self.events if event.get("event") == name), None)

    def wait_for(self, name: str, timeout: float) -> dict:
        def seen() -> dict | None:
            if self.process.poll() is not None and self.event(name) is None:
                self._reader.join(timeout=5)
                if self.event(name) is None:
                    raise AssertionError(f"{self.replay.name}: sniff exited ({self.process.returncode}) "
                                         f"before {name}: {self.stderr_path.read_text()[-2000:]}")  # fmt: skip
            return self.event(name)

        return poll(f"{self.replay.name}: sniff event {name}", seen, timeout, interval=0.1)

    @property
    def target(self) -> str:
        start = self.event("start")
        assert start is not None, f"{self.replay.name}: no start event yet"
        return start["exporter.address"].split("/", 1)[0].replace("0.0.0.0", "127.0.0.1")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://{self.target}/metrics", timeout=10) as response:
            return response.read().decode()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)


class Prometheus:
    """A Prometheus server on a loopback port, with its own storage, and its HTTP API."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited ({self.process.returncode}): {self.log_path.read_text()[-3000:]}")

    def ready(self) -> bool:
        self._alive()
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def get(self, path: str, **params: str) -> dict:
        self._alive()
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=15) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: the body says what was wrong (a parse error...)
            return json.load(error)

    def query(self, expr: str) -> dict:
        return self.get("/api/v1/query", query=expr)

    def vector(self, expr: str) -> list[dict]:
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"
        return answer["data"]["result"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Stack:
    prometheus: Prometheus
    sniffers: dict[str, Sniffer] = field(default_factory=dict)  # by Prometheus instance label

    def instance(self, name: str) -> str:
        return next(instance for instance, sniffer in self.sniffers.items() if sniffer.replay.name == name)


def _targets_up(prometheus: Prometheus, expected: set[str]) -> bool | dict:
    active = prometheus.get("/api/v1/targets", state="active")["data"]["activeTargets"]
    health = {target["labels"]["instance"]: target["health"] for target in active if target["labels"]["job"] == JOB}
    return (set(health) == expected and all(h == "up" for h in health.values())) or health


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package 'prometheus'; scripts/install.sh installs it)")
    workdir = tmp_path_factory.mktemp("prometheus-live")
    with contextlib.ExitStack() as cleanup:
        # Full-speed replays first: Prometheus needs their ports, which they pick themselves.
        fast: list[Sniffer] = []
        for replay in REPLAYS:
            if replay.speed == 0:
                sniffer = Sniffer(replay, workdir)
                cleanup.callback(sniffer.close)
                fast.append(sniffer)
        for sniffer in fast:
            sniffer.wait_for("start", START_TIMEOUT)
        # The paced replay gets a reserved port, and starts once Prometheus has tried to scrape it (it
        # applies scrape targets about 5 s after its start): its first scrape then comes before its
        # counters have finished rising.
        paced_replay = next(replay for replay in REPLAYS if replay.speed > 0)
        paced_target = f"127.0.0.1:{free_port()}"
        targets = [sniffer.target for sniffer in fast] + [paced_target]
        prometheus = Prometheus(binary, workdir, targets)
        cleanup.callback(prometheus.close)
        poll("prometheus /-/ready", prometheus.ready, START_TIMEOUT)
        poll(f"prometheus tries to scrape {paced_target}",
             lambda: prometheus.vector(f'up{{job="{JOB}", instance="{paced_target}"}}'), START_TIMEOUT)  # fmt: skip
        paced = Sniffer(paced_replay, workdir, listen=paced_target)
        cleanup.callback(paced.close)
        paced.wait_for("start", START_TIMEOUT)
        assert paced.target == paced_target
        poll("every target up in /api/v1/targets", lambda: _targets_up(prometheus, set(targets)), START_TIMEOUT)
        stack = Stack(prometheus, {sniffer.target: sniffer for sniffer in [*fast, paced]})
        yield stack


# --- what the offline analysis says the sensors must count -------------------------------------------


def offline_document(sniffer: Sniffer) -> dict[str, Any]:
    """`smbwatch analyze` of the sniffer's capture, with the sniffer's configuration."""
    config = load_config(str(sniffer.config_path) if sniffer.config_path else None)
    inventory = Inventory()
    pipeline = Pipeline(config.flows, sinks=[inventory], detector=Detector(config.detection))
    capture = CaptureFile(str(PCAPS / sniffer.replay.capture))
    pipeline.feed(capture)
    pipeline.finish()
    return build_document(Analysis(pipeline=pipeline, inventory=inventory, sources=[SourceResult(capture)]))


@pytest.fixture(scope="module")
def offline(stack: Stack) -> dict[str, dict[str, Any]]:
    """The offline analysis document of each sniffer's capture, by instance."""
    return {instance: offline_document(sniffer) for instance, sniffer in stack.sniffers.items()}


def expected_alerts(offline: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(alertname, instance) pairs that must fire: a detection alert where its kind was raised, the
    SMBv1 alert where a connection used SMB1."""
    expected = set()
    for instance, document in offline.items():
        expected |= {(KIND_ALERTS[kind], instance) for kind in document["stats"]["alerts"] if kind in KIND_ALERTS}
        if any(connection["smb1_used"] for connection in document["connections"]):
            expected.add((SMB1_ALERT, instance))
    return expected


# --- the tests ----------------------------------------------------------------------------------------


def test_every_dashboard_and_alert_expression_parses_and_returns_data(stack: Stack) -> None:
    expressions = _load_generator().expressions()
    names = {name for name, _ in expressions}
    assert set(NO_DATA) <= names, f"NO_DATA names expressions that no longer exist: {set(NO_DATA) - names}"
    results: dict[str, list] = {}

    def problems() -> list[str]:
        found = []
        for name, expr in expressions:
            answer = stack.prometheus.query(expr)
            # A parse or evaluation error does not go away by waiting: fail at once.
            assert answer["status"] == "success", f"{name}: {expr}\n{answer.get('errorType')}: {answer.get('error')}"
            result = results[name] = answer["data"]["result"]
            values = [float(sample["value"][1]) for sample in result]
            if any(math.isnan(value) or math.isinf(value) for value in values):
                found.append(f"{name}: NaN or infinite value: {expr} -> {result}")
            if not result and name not in NO_DATA:
                found.append(f"{name}: no data: {expr}")
            if result and name in NO_DATA:
                found.append(f"{name}: data, though NO_DATA says none ({NO_DATA[name]}): {expr} -> {result}")
        return found

    last: list[str] = []

    def clean() -> bool:
        last[:] = problems()
        return not last

    try:
        poll("every expression returns data", clean, DATA_TIMEOUT, interval=1.0)
    except AssertionError:
        raise AssertionError(
            f"{len(last)} expressions misbehave after {DATA_TIMEOUT:.0f} s:\n" + "\n".join(last)
        ) from None


def test_the_alerts_whose_traffic_was_replayed_fire_and_no_other(stack: Stack, offline: dict) -> None:
    rules = yaml.safe_load(RULES.read_text())
    shipped = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {SMB1_ALERT, *KIND_ALERTS.values(), *QUIET_ALERTS} == shipped
    expected = expected_alerts(offline)
    # Every detection alert has a capture here that must raise it, and the SMBv1 one fires on the SMB1 capture.
    untested = set() if HAVE_BIG_ENDIAN else {KIND_ALERTS["rpc_big_endian"]}
    assert {name for name, _ in expected} == {SMB1_ALERT, *KIND_ALERTS.values()} - untested
    assert (SMB1_ALERT, stack.instance("smb1")) in expected
    assert (KIND_ALERTS["bruteforce"], stack.instance("bruteforce")) in expected
    # The after-login kinds: the offline analysis raises each on exactly its captures, the controls raise nothing.
    activity_kinds = set(ACTIVITY_ALERT_KINDS)
    for instance, document in offline.items():
        name = stack.sniffers[instance].replay.name
        raised = set(document["stats"]["alerts"])
        assert raised & activity_kinds == ACTIVITY.get(name, set()), (name, raised)
        if name in CONTROLS:
            assert not raised, (name, raised)
    must_fire = expected
    assert any(instance == stack.instance("paced") for _, instance in must_fire)
    state: dict[str, Any] = {}

    def settled() -> bool:
        alerts = stack.prometheus.get("/api/v1/alerts")["data"]["alerts"]
        state["alerts"] = alerts
        firing = {(a["labels"]["alertname"], a["labels"]["instance"]) for a in alerts if a["state"] == "firing"}
        state["firing"] = firing
        quiet = [a for a in alerts if a["labels"]["alertname"] in QUIET_ALERTS]
        return must_fire <= firing and not quiet

    poll("the expected alerts firing, sensor-down and capture-drops silent", settled, DATA_TIMEOUT)
    unexpected = state["firing"] - expected
    assert not unexpected, f"unexpected: {sorted(unexpected)}; alerts: {json.dumps(state['alerts'], indent=1)}"
    # Each after-login alert fires on exactly the sensors that replayed its traffic; nothing on the controls.
    for kind in activity_kinds:
        want = {stack.instance(name) for name, kinds in ACTIVITY.items() if kind in kinds}
        firing_on = {instance for alertname, instance in state["firing"] if alertname == KIND_ALERTS[kind]}
        assert firing_on == want, (kind, firing_on, want)
    controls = {stack.instance(name) for name in CONTROLS}
    assert not [pair for pair in state["firing"] if pair[1] in controls], state["firing"]
    critical_alerts = {KIND_ALERTS[kind] for kind in _load_generator().CRITICAL_KINDS}
    assert critical_alerts >= {"SmbwatchEternalBlue", "SmbwatchDoublePulsar", "SmbwatchLateralMovement"}
    for alert in state["alerts"]:
        critical = alert["labels"]["alertname"] in critical_alerts
        assert alert["labels"]["severity"] == ("critical" if critical else "warning"), alert
        assert alert["labels"]["job"] == JOB, alert
    firing = stack.prometheus.vector(f'ALERTS{{alertname="{SMB1_ALERT}", alertstate="firing"}}')
    assert {sample["metric"]["instance"] for sample in firing} == {i for n, i in must_fire if n == SMB1_ALERT}
    # The alerts stay on for the window, not one scrape: a full-speed replay's counters never move again
    # after Prometheus' first scrape, which is what once silenced them (`increase() or ...` in the rules).
    time.sleep(3.5)
    settled()
    assert must_fire <= state["firing"], f"stopped firing: {sorted(must_fire - state['firing'])}"


def test_scraped_counters_equal_the_offline_analysis(stack: Stack, offline: dict) -> None:
    for sniffer in stack.sniffers.values():
        sniffer.wait_for("replay_finished", START_TIMEOUT)
    want_alerts = {
        (instance, kind): float(document["stats"]["alerts"].get(kind, 0))
        for instance, document in offline.items()
        for kind in ALERT_KINDS
    }
    want_smb1 = {
        instance: float(sum(1 for connection in document["connections"] if connection["smb1_used"]))
        for instance, document in offline.items()
    }
    want_smb1_negotiations = {
        instance: float(
            sum(1 for c in document["connections"] if c["dialect"] and dialect_label(c["dialect"]) == "smb1")
        )
        for instance, document in offline.items()
    }
    # What happened after the login, from each connection's `rpc` and `files` lists.
    want_files: dict[tuple[str, str], float] = {}
    want_rpc_interfaces: Counter[tuple[str, str]] = Counter()
    want_rpc_results: Counter[tuple[str, str]] = Counter()
    for instance, document in offline.items():
        actions = Counter(a for c in document["connections"] for entry in c["files"] for a in entry["actions"])
        want_files.update({(instance, action): float(actions[action]) for action in FILE_ACTIONS})
        for connection in document["connections"]:
            for bound in connection["rpc"]:
                for call in bound["calls"]:
                    interface = rpc_interface_label(bound["uuid"], bound["version"])
                    want_rpc_interfaces[instance, interface] += call["count"]
                    want_rpc_results[instance, rpc_result_class(call["status"])] += call["count"]
    assert want_files[stack.instance("ransomware"), "rename"] > 0
    assert want_rpc_interfaces[stack.instance("rpc_recon"), "samr"] > 0
    assert want_rpc_interfaces[stack.instance("psexec"), "svcctl"] > 0
    state: dict[str, Any] = {}

    def nonzero(values: dict) -> dict:
        return {key: float(count) for key, count in values.items() if count}

    def scraped(expr: str, *labels: str) -> dict:
        return {
            tuple(sample["metric"][label] for label in labels) if len(labels) > 1 else sample["metric"][labels[0]]:
            float(sample["value"][1])
            for sample in stack.prometheus.vector(expr)
        }  # fmt: skip

    def counts() -> bool:
        state["alerts"] = scraped(f'smbwatch_alerts_total{{job="{JOB}"}}', "instance", "kind")
        state["smb1"] = scraped(f'smbwatch_smb1_connections_total{{job="{JOB}"}}', "instance")
        state["negotiations"] = scraped(f'smbwatch_negotiations_total{{job="{JOB}", dialect="smb1"}}', "instance")
        state["files"] = scraped(f'smbwatch_file_actions_total{{job="{JOB}"}}', "instance", "action")
        state["rpc_interfaces"] = nonzero(
            scraped(f'sum by (instance, interface) (smbwatch_rpc_calls_total{{job="{JOB}"}})', "instance", "interface")
        )
        state["rpc_results"] = nonzero(
            scraped(
                f'sum by (instance, result_class) (smbwatch_rpc_calls_total{{job="{JOB}"}})', "instance", "result_class"
            )
        )
        return (state["alerts"], state["smb1"], state["negotiations"], state["files"], state["rpc_interfaces"],
                state["rpc_results"]) == (want_alerts, want_smb1, want_smb1_negotiations, want_files,
                nonzero(want_rpc_interfaces), nonzero(want_rpc_results))  # fmt: skip

    # The last scrape of the paced sensor may predate its last frames by a scrape interval.
    with contextlib.suppress(AssertionError):
        poll("scraped counters settle", counts, 15.0)
    assert state["alerts"] == want_alerts
    assert state["smb1"] == want_smb1
    assert state["negotiations"] == want_smb1_negotiations
    assert state["files"] == want_files
    assert state["rpc_interfaces"] == nonzero(want_rpc_interfaces)
    assert state["rpc_results"] == nonzero(want_rpc_results)
    # The SMB1 series summed over the sensors, as a dashboard would ask for it.
    total = stack.prometheus.vector(f'sum(smbwatch_smb1_connections_total{{job="{JOB}"}})')
    assert float(total[0]["value"][1]) == sum(want_smb1.values()) > 0
    assert float(stack.prometheus.vector('sum(smbwatch_negotiations_total{dialect="smb1"})')[0]["value"][1]) > 0
    per_kind: Counter[str] = Counter()
    for (_, kind), value in want_alerts.items():
        per_kind[kind] += int(value)
    summed = scraped(f'sum by (kind) (smbwatch_alerts_total{{job="{JOB}"}})', "kind")
    assert summed == {kind: float(per_kind[kind]) for kind in ALERT_KINDS}
    assert all(per_kind[kind] > 0 for kind in KIND_ALERTS if HAVE_BIG_ENDIAN or kind != "rpc_big_endian"), per_kind


def test_every_sensor_exposition_passes_promtool_check_metrics(stack: Stack) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    for sniffer in stack.sniffers.values():
        text = sniffer.metrics_text()
        assert "smbwatch_smb1_connections_total" in text
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{sniffer.replay.name}: {result.stdout}{result.stderr}"
