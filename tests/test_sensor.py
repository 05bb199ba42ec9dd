"""`smbwatch sniff --replay`: the live pipeline on a capture file with the exporter up, its lifecycle
(SIGHUP reload, SIGTERM stop), and the exporter's TLS and basic auth."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from monitor.input.capture import CaptureFile
from monitor.output.exporter import Exporter
from tests.metrics_text import parse_samples

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
SMBWATCH = [sys.executable, "-m", "monitor.cli"]


class Sniffer:
    """A `smbwatch sniff` process whose JSON events are read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [*SMBWATCH, "sniff", "--web.listen-address", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.events: list[dict] = []

    def lines(self) -> Iterator[dict]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event)
            yield event

    def wait_for(self, name: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.lines():
            if event["event"] == name:
                return event
            assert time.monotonic() < deadline, f"no {name} event within {timeout} s: {self.events}"
        raise AssertionError(f"sniff ended before a {name} event: {self.process.stderr.read()}")  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        start = next(event for event in self.events if event["event"] == "start")
        return "http://" + start["exporter.address"].replace("0.0.0.0", "127.0.0.1")

    def scrape(self) -> dict[tuple[str, tuple], float]:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return parse_samples(response.read().decode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def sniffer_factory() -> Iterator:
    started: list[Sniffer] = []

    def start(*args: str) -> Sniffer:
        sniffer = Sniffer(*args)
        started.append(sniffer)
        return sniffer

    yield start
    for sniffer in started:
        sniffer.close()


def test_replay_serves_metrics_reloads_on_sighup_and_stops_on_sigterm(sniffer_factory, tmp_path: Path) -> None:
    config = tmp_path / "smbwatch.toml"
    config.write_text("[detection]\nbruteforce_failures = 3\n")
    capture = PCAPS / "recorded" / "auth_wrong_password.pcap"
    sniffer = sniffer_factory("--replay", str(capture), "--speed", "0", "--config", str(config))
    sniffer.wait_for("start")
    sniffer.wait_for("replay_finished")
    scrape = sniffer.scrape()
    frames = sum(1 for _ in CaptureFile(str(capture)))
    assert scrape[("smbwatch_capture_packets_total", (("interface", "replay"),))] == frames
    assert scrape[("smbwatch_session_setups_total", (("auth", "ntlmv2"), ("result", "logon_failure")))] == 3
    assert scrape[("smbwatch_alerts_total", (("kind", "bruteforce"),))] == 1
    assert scrape[("smbwatch_connections_total", (("transport", "tcp445"),))] == 3
    assert ("process_resident_memory_bytes", ()) in scrape
    alerts = [event for event in sniffer.events if event["event"] == "alert"]
    assert [event["alert.kind"] for event in alerts] == ["bruteforce"]

    config.write_text("[detection]\nbruteforce_failures = 7\n")
    sniffer.process.send_signal(signal.SIGHUP)
    reload = sniffer.wait_for("reload")
    assert reload["smbwatch.detection"]["bruteforce_failures"] == 7

    sniffer.process.send_signal(signal.SIGTERM)
    stop = sniffer.wait_for("stop", timeout=10)
    assert stop["error"] is None
    assert sniffer.process.wait(timeout=10) == 0
    statistics = [event for event in sniffer.events if event["event"] == "capture_statistics"]
    assert statistics and statistics[-1]["capture.interfaces"]["replay"]["packets"] == (
        frames or statistics[-1]["capture.interfaces"]["replay"]["packets"]
    )


def test_sighup_without_a_configuration_file_is_logged_and_ignored(sniffer_factory) -> None:
    """SIGHUP's default action killed a sensor started without --config (exit 129, no stop event)."""
    sniffer = sniffer_factory("--replay", str(PCAPS / "recorded" / "smb3_1_1.pcap"), "--speed", "0")
    sniffer.wait_for("replay_finished")
    sniffer.process.send_signal(signal.SIGHUP)
    skipped = sniffer.wait_for("reload_skipped")
    assert "--config" in skipped["reason"] and skipped["level"] == "info"
    sniffer.process.send_signal(signal.SIGHUP)  # and again: still running
    sniffer.wait_for("reload_skipped")
    assert sniffer.process.poll() is None
    sniffer.process.send_signal(signal.SIGTERM)
    assert sniffer.wait_for("stop", timeout=10)["error"] is None
    assert sniffer.process.wait(timeout=10) == 0


def test_a_configuration_that_breaks_is_a_reload_failed_error(sniffer_factory, tmp_path: Path) -> None:
    config = tmp_path / "smbwatch.toml"
    config.write_text("[detection]\nbruteforce_failures = 3\n")
    sniffer = sniffer_factory(
        "--replay", str(PCAPS / "recorded" / "smb3_1_1.pcap"), "--speed", "0", "--config", str(config)
    )
    sniffer.wait_for("replay_finished")
    config.write_text("[detection]\nbruteforce_failures = 'many'\n")
    sniffer.process.send_signal(signal.SIGHUP)
    failed = sniffer.wait_for("reload_failed")
    assert failed["level"] == "error" and "detection.bruteforce_failures" in failed["error"]
    sniffer.process.send_signal(signal.SIGTERM)
    assert sniffer.process.wait(timeout=10) == 0


def test_a_damaged_replay_is_a_capture_error(sniffer_factory) -> None:
    sniffer = sniffer_factory(
        "--replay", str(PCAPS / "crafted" / "truncated.pcap"), "--speed", "0", "--exit-after-replay"
    )
    list(sniffer.lines())
    assert sniffer.process.wait(timeout=30) == 1
    [error] = [event for event in sniffer.events if event["event"] == "capture_error"]
    assert error["level"] == "error" and "after 23 frames" in error["error"]
    assert sniffer.events[-1]["event"] == "stop" and sniffer.events[-1]["error"] == error["error"]


def test_exit_after_replay_and_the_event_stream(sniffer_factory) -> None:
    capture = PCAPS / "crafted" / "eternalblue_patterns.pcap"
    sniffer = sniffer_factory("--replay", str(capture), "--speed", "0", "--exit-after-replay")
    list(sniffer.lines())
    assert sniffer.process.wait(timeout=30) == 0
    names = [event["event"] for event in sniffer.events]
    assert names[0] == "start" and names[-1] == "stop"
    assert "capture_statistics" in names and "replay_finished" not in names
    kinds = sorted(event["alert.kind"] for event in sniffer.events if event["event"] == "alert")
    assert kinds == ["eternalblue", "eternalblue", "eternalblue", "smb1_negotiated"]
    anomalies = [event for event in sniffer.events if event["event"] == "anomalies"]
    # The four grooming connections end 65,463 bytes short of the frame they announce.
    assert anomalies and anomalies[-1]["smb.anomalies"] == {"netbios_frame_cut_short": 4, "zeroed_message_header": 4}


def test_paced_replay_takes_the_capture_time() -> None:
    """scan_445_sweep spans about 2 s of capture time: at speed 4 the replay takes about half a second."""
    capture = PCAPS / "recorded" / "scan_445_sweep.pcap"
    start = time.monotonic()
    result = subprocess.run(
        [*SMBWATCH, "sniff", "--replay", str(capture), "--speed", "4", "--exit-after-replay",
         "--web.listen-address", "127.0.0.1:0"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert elapsed >= 0.4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sniff"], "capture.interfaces: give -i IFACE"),
        (["sniff", "--replay", "x.pcap", "--web.listen-address", "nowhere"], "exporter.listen_address"),
        (["sniff", "--replay", "x.pcap", "--log-format", "json", "--statistics-interval", "0"], "statistics_interval"),
    ],
)
def test_usage_errors_name_the_setting(args: list[str], message: str) -> None:
    result = subprocess.run([*SMBWATCH, *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_replay_file_is_a_clear_error() -> None:
    result = subprocess.run(
        [*SMBWATCH, "sniff", "--replay", "/nonexistent.pcap", "--web.listen-address", "127.0.0.1:0",
         "--exit-after-replay"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "/nonexistent.pcap" in result.stderr + result.stdout


def run_to_a_closed_pipe(args: list[str]) -> subprocess.CompletedProcess[str]:
    """`smbwatch ARGS` with standard output a pipe whose reader has gone (as `smbwatch ... | head -1` ends)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*SMBWATCH, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60
        )
    finally:
        os.close(write_end)


def test_log_file_that_cannot_be_opened_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SMBWATCH, "sniff", "--replay", str(PCAPS / "recorded" / "smb3_1_1.pcap"), "--exit-after-replay",
         "--web.listen-address", "127.0.0.1:0", "--log-file", str(tmp_path / "missing" / "events.log")],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"smbwatch: error: logging.file: cannot open '{tmp_path / 'missing' / 'events.log'}': No such file or directory"
    ]


def test_events_to_a_closed_pipe_stop_the_sensor_with_one_line() -> None:
    result = run_to_a_closed_pipe(
        ["sniff", "--replay", str(PCAPS / "recorded" / "control_reconnects.pcap"), "--speed", "0",
         "--web.listen-address", "127.0.0.1:0"]
    )  # fmt: skip
    assert result.returncode == 1  # stopped although not asked to, and without --exit-after-replay
    assert result.stderr.splitlines() == [
        "smbwatch: error: cannot write events to standard output: the reader went away; stopped"
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_events_to_a_full_disk_stop_the_sensor_with_one_line() -> None:
    result = subprocess.run(
        [*SMBWATCH, "sniff", "--replay", str(PCAPS / "recorded" / "smb3_1_1.pcap"), "--speed", "0",
         "--web.listen-address", "127.0.0.1:0", "--log-file", "/dev/full"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "smbwatch: error: cannot write events to /dev/full: No space left on device; stopped"
    ]


@pytest.mark.parametrize("output", ["table", "json"])
def test_analyze_to_a_closed_pipe_exits_quietly(output: str) -> None:
    captures = sorted(str(path) for path in (PCAPS / "recorded").glob("*.pcap"))  # a report of some 100 kB
    result = run_to_a_closed_pipe(["analyze", "--format", output, *captures])
    assert (result.returncode, result.stderr) == (0, "")


def make_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("smbwatch_test", "a test counter", registry=registry).inc(3)
    return registry


def test_exporter_basic_auth_and_path() -> None:
    exporter = Exporter(make_registry(), "127.0.0.1", 0, "/custom", basic_auth_users={"prom": "s3cret"})
    base = f"http://127.0.0.1:{exporter.port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/custom", timeout=5)
        assert denied.value.code == 401
        wrong = urllib.request.Request(
            f"{base}/custom", headers={"Authorization": "Basic " + base64.b64encode(b"prom:nope").decode()}
        )
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=5)
        good = urllib.request.Request(
            f"{base}/custom", headers={"Authorization": "Basic " + base64.b64encode(b"prom:s3cret").decode()}
        )
        with urllib.request.urlopen(good, timeout=5) as response:
            assert parse_samples(response.read().decode())[("smbwatch_test_total", ())] == 3
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(f"{base}/metrics", headers=good.headers), timeout=5)
        assert missing.value.code == 404
    finally:
        exporter.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_exporter_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    exporter = Exporter(make_registry(), "127.0.0.1", 0, tls_cert_file=str(cert), tls_key_file=str(key))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with urllib.request.urlopen(
            f"https://127.0.0.1:{exporter.port}/metrics", context=context, timeout=5
        ) as response:
            assert b"smbwatch_test_total 3.0" in response.read()
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is refused
            urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5)
    finally:
        exporter.close()
