"""`smbwatch sniff -i IFACE` end to end: recorded SMB traffic played into a veth with tcpreplay,
the sensor capturing on the other end, its /metrics scraped and compared with what
`smbwatch analyze` reports for the same captures; then a stopped sensor's ring overflows
and the kernel drops show up in the metrics, exactly.

The sensor runs inside the capturing namespace of `tests.test_live_capture.veth_links`
(fresh namespaces, no addresses, no routes: nothing answers or leaves them); its exporter
listens on that namespace's loopback, which the test reaches by entering the namespace.
Needs root, ip and tcpreplay; skipped otherwise. Every replay is bounded in packets and time.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from monitor.cli import analyze_files
from monitor.input.capture import CaptureFile
from monitor.output.metrics import dialect_label
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits
from tests.metrics_text import parse_samples, value
from tests.test_live_capture import Link, inside, needs_root, replay, run, veth_links

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "pcaps" / "recorded"
CAPTURES = [
    RECORDED / name for name in ("smb1_nt1.pcap", "smb3_1_1.pcap", "auth_wrong_password.pcap", "netbios_139.pcap")
]
WAIT = 30.0

pytestmark = needs_root


class LiveSensor:
    def __init__(self, link: Link, config: str = "", run_as: tuple[str, ...] = ()) -> None:
        run("ip", "-n", link.capturer, "link", "set", "lo", "up")
        # pytest's tmp_path is private to root; a sensor run as nobody must read its configuration.
        self.config_dir = Path(tempfile.mkdtemp(prefix="smbw-sensor-"))
        self.config_dir.chmod(0o755)
        config_file = self.config_dir / "sensor.toml"
        config_file.write_text(config)
        config_file.chmod(0o644)
        self.link = link
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", link.capturer, *run_as, sys.executable, "-m", "monitor.cli", "sniff",
             "-i", link.capture, "--config", str(config_file), "--web.listen-address", "127.0.0.1:0",
             "--statistics-interval", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        self.events: list[dict] = []
        # A reader thread drains the event stream so the sensor never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        start = self.wait_for("start")
        self.url = "http://" + start["exporter.address"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def wait_for(self, name: str) -> dict:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = [event for event in self.events if event["event"] == name]
            if found:
                return found[0]
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {name} event: {self.process.stderr.read()}")  # type: ignore[union-attr]

    def scrape(self) -> dict[tuple[str, tuple], float]:
        with inside(self.link.capturer), urllib.request.urlopen(self.url, timeout=10) as response:
            return parse_samples(response.read().decode())

    def scrape_until(self, condition, what: str) -> dict:
        deadline = time.monotonic() + WAIT
        while True:
            scrape = self.scrape()
            if condition(scrape):
                return scrape
            assert time.monotonic() < deadline, f"{what} not reached within {WAIT} s"
            time.sleep(0.3)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=15)
        self._reader.join(timeout=5)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.config_dir, ignore_errors=True)


def test_live_counts_equal_the_offline_analysis() -> None:
    frames = sum(1 for path in CAPTURES for _ in CaptureFile(str(path)))
    with veth_links() as [link]:
        sensor = LiveSensor(link, "[detection]\nbruteforce_failures = 3\n")
        try:
            replay(link, *CAPTURES, rate="--pps=3000")
            interface = link.capture
            scrape = sensor.scrape_until(
                lambda s: value(s, "smbwatch_capture_packets_total", interface=interface) >= frames,
                f"{frames} frames captured",
            )
            time.sleep(1.5)  # one more snapshot period, so the last frames' effects are in it
            scrape = sensor.scrape()
            assert sensor.stop() == 0
        finally:
            sensor.kill()
    document = build_document(analyze_files([str(path) for path in CAPTURES], FlowLimits(), 1000))
    connections = document["connections"]
    assert value(scrape, "smbwatch_capture_packets_total", interface=interface) == frames
    assert value(scrape, "smbwatch_capture_kernel_drops_total", interface=interface) == 0
    assert value(scrape, "smbwatch_capture_kernel_packets_total", interface=interface) == frames
    for protocol, count in document["stats"]["smb_messages"].items():
        assert value(scrape, "smbwatch_smb_messages_total", protocol=protocol) == count, protocol
    assert value(scrape, "smbwatch_smb1_connections_total") == sum(c["smb1_used"] for c in connections) > 0
    negotiated = Counter(dialect_label(c["dialect"]) for c in connections if c["dialect"])
    for label, count in negotiated.items():
        assert value(scrape, "smbwatch_negotiations_total", dialect=label) == count, label
    sessions = Counter(s["auth"] for c in connections for s in c["sessions"] if s["status"])
    exported_sessions = Counter()
    for (name, labels), count in scrape.items():
        if name == "smbwatch_session_setups_total":
            exported_sessions[dict(labels)["auth"]] += int(count)
    assert +exported_sessions == sessions
    failures = sum(1 for c in connections for s in c["sessions"] if s["status"] == "STATUS_LOGON_FAILURE")
    assert value(scrape, "smbwatch_session_setups_total", auth="ntlmv2", result="logon_failure") == failures == 3
    trees = sum(1 for c in connections for _ in c["trees"])
    assert sum(v for (name, _), v in scrape.items() if name == "smbwatch_tree_connects_total") == trees
    # The sensor's threshold is 3: the three failures alert, and netbios_139's login from the same
    # client to the same server, played after them, is called out as a success after failures.
    brute = [event["alert.detail"] for event in sensor.events if event.get("alert.kind") == "bruteforce"]
    assert [detail.get("success_after_failures", False) for detail in brute] == [False, True]
    assert value(scrape, "smbwatch_alerts_total", kind="bruteforce") == 2
    assert (
        value(scrape, "smbwatch_alerts_total", kind="smb1_negotiated") == document["stats"]["alerts"]["smb1_negotiated"]
    )
    statistics = [event for event in sensor.events if event["event"] == "capture_statistics"]
    assert statistics[-1]["capture.interfaces"][interface]["packets"] == frames
    assert sensor.events[-1]["event"] == "stop"


def test_kernel_drops_are_reported_exactly() -> None:
    """A stopped sensor reads nothing: a burst bigger than its 1 MiB ring overflows it."""
    bulk = RECORDED / "bulk_3_0_2.pcap"
    sent = 2 * sum(1 for _ in CaptureFile(str(bulk)))
    with veth_links() as [link]:
        sensor = LiveSensor(link, "[capture]\nbuffer_mb = 1\n")
        try:
            sensor.process.send_signal(signal.SIGSTOP)
            try:
                replay(link, bulk, loops=2)
            finally:
                sensor.process.send_signal(signal.SIGCONT)
            interface = link.capture

            def read(scrape: dict) -> float:
                return value(scrape, "smbwatch_capture_packets_total", interface=interface)

            def dropped(scrape: dict) -> float:
                return value(scrape, "smbwatch_capture_kernel_drops_total", interface=interface)

            scrape = sensor.scrape_until(
                lambda s: read(s) + dropped(s) >= sent, f"all {sent} frames read or counted as dropped"
            )
            received, drops = read(scrape), dropped(scrape)
            assert drops > 0
            assert received + drops == sent  # every frame is either read or counted as dropped, none twice
            assert value(scrape, "smbwatch_capture_kernel_packets_total", interface=interface) == sent
            assert sensor.stop() == 0
        finally:
            sensor.kill()


def test_sniff_runs_as_nobody_with_only_cap_net_raw() -> None:
    """What the systemd unit grants (AmbientCapabilities=CAP_NET_RAW, no root): enough for the sensor."""
    capture = RECORDED / "smb1_nt1.pcap"
    frames = sum(1 for _ in CaptureFile(str(capture)))
    nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
              "--inh-caps=+net_raw", "--ambient-caps=+net_raw", "--bounding-set=-all,+net_raw")  # fmt: skip
    with veth_links() as [link]:
        sensor = LiveSensor(link, run_as=nobody)
        try:
            replay(link, capture, rate="--pps=2000")
            scrape = sensor.scrape_until(
                lambda s: value(s, "smbwatch_capture_packets_total", interface=link.capture) >= frames, "the frames"
            )
            assert value(scrape, "smbwatch_smb1_connections_total") == 1
            assert sensor.stop() == 0
        finally:
            sensor.kill()


def test_sniff_without_the_capability_says_so() -> None:
    with veth_links() as [link]:
        run("ip", "-n", link.capturer, "link", "set", "lo", "up")
        result = subprocess.run(
            ["ip", "netns", "exec", link.capturer, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             "--inh-caps=-all", sys.executable, "-m", "monitor.cli", "sniff", "-i", link.capture,
             "--web.listen-address", "127.0.0.1:0"],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"{link.capture}: permission denied" in result.stderr and "CAP_NET_RAW" in result.stderr
