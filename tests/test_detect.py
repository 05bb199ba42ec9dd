"""Detections: SMBv1 use, scans, MS17-010 probes and brute force; per capture, alerts as the manifest counts them."""

from __future__ import annotations

import random
import socket
import tomllib
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from dissectors.records import AnomalyKind
from monitor.cli import analyze_files
from monitor.detect import (
    ALERT_BRUTEFORCE,
    ALERT_KINDS,
    ALERT_MS17_010_PROBE,
    ALERT_SCAN_445,
    ALERT_SMB1_NEGOTIATED,
    DetectionSettings,
    Detector,
)
from monitor.detect.ms17_010 import is_ms17_010_probe, ms17_010_verdict
from monitor.input.capture import CaptureFile
from monitor.output.inventory import Inventory
from monitor.output.report import build_document
from monitor.pipeline import Pipeline
from monitor.tcp.flows import FlowLimits
from monitor.tcp.identity import ConnectionRef

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
MANIFEST = tomllib.loads((PCAPS / "manifest.toml").read_text())["capture"]


def test_one_alert_per_pair_per_period() -> None:
    detector = Detector(DetectionSettings(smb1_alert_period=60.0))
    for ts in (0.0, 10.0, 59.0):
        detector.smb1_used(ConnectionRef.between("192.0.2.10", "192.0.2.20"), ts, {})
    detector.smb1_used(ConnectionRef.between("192.0.2.11", "192.0.2.20"), 5.0, {})
    detector.smb1_used(ConnectionRef.between("192.0.2.10", "192.0.2.20"), 61.0, {})
    assert [(a.src, a.ts) for a in detector.alerts] == [("192.0.2.10", 0.0), ("192.0.2.11", 5.0), ("192.0.2.10", 61.0)]
    assert detector.counts == {ALERT_SMB1_NEGOTIATED: 3}


def test_pair_memory_and_alert_list_are_capped() -> None:
    seen = []
    detector = Detector(DetectionSettings(max_tracked_pairs=100, max_alerts_kept=50), sinks=[seen.append])
    for i in range(1000):
        detector.smb1_used(ConnectionRef.between(f"198.51.100.{i % 250}", f"203.0.113.{i // 250}"), float(i), {})
    assert len(detector._smb1_pairs) == 100
    assert detector.pairs_forgotten == 900
    assert len(detector.alerts) == 50 and detector.alerts_dropped == 950
    assert len(seen) == 1000  # sinks see every alert


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_alerts_of_every_capture_match_the_manifest(entry: dict) -> None:
    """Every kind besides smb1_negotiated exactly as the manifest counts it (none where it lists none),
    with the default thresholds: the controls, the authentication failures and the SMB1 sessions
    raise no scan, brute-force or exploit alert."""
    document = build_document(analyze_files([str(PCAPS / entry["file"])], FlowLimits(), 1000))
    counts = Counter(a["kind"] for a in document["alerts"] if a["kind"] != ALERT_SMB1_NEGOTIATED)
    assert counts == Counter(entry.get("alerts", {}))
    assert set(counts) <= set(ALERT_KINDS)


ALERT_FIELDS = {
    "kind", "ts", "src", "dst", "detail", "client", "server", "uid", "community_id", "source_file", "connections"
}  # fmt: skip


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_smb1_alerts_match_smb1_use_in_every_capture(entry: dict) -> None:
    document = build_document(analyze_files([str(PCAPS / entry["file"])], FlowLimits(), 1000))
    pairs_using_smb1 = {(c["client"], c["server"]) for c in entry.get("connection", []) if c["smb1_used"]}
    smb1_alerts = [a for a in document["alerts"] if a["kind"] == ALERT_SMB1_NEGOTIATED]
    alerted = {(a["src"], a["dst"]) for a in smb1_alerts}
    assert alerted == pairs_using_smb1
    assert len(smb1_alerts) == len(alerted)  # one per pair, not one per packet or connection
    by_uid = {c["uid"]: c for c in document["connections"]}
    for alert in document["alerts"]:
        assert set(alert) == ALERT_FIELDS
        assert alert["detail"]["server_port"] in (445, 139)
        # Every alert about one connection joins its record by uid and Community ID, endpoints and file.
        if alert["kind"] == ALERT_SMB1_NEGOTIATED:
            record = by_uid[alert["uid"]]
            assert record["community_id"] == alert["community_id"]
            assert (record["client"], record["server"]) == (alert["client"], alert["server"])
            assert record["source_file"] == alert["source_file"] == str(PCAPS / entry["file"])
            assert record["alerts"][ALERT_SMB1_NEGOTIATED] == 1


def test_ms17_010_probe_and_the_unpatched_answer() -> None:
    document = build_document(analyze_files([str(PCAPS / "crafted" / "ms17_010_unpatched.pcap")], FlowLimits(), 10))
    [probe] = [a for a in document["alerts"] if a["kind"] == ALERT_MS17_010_PROBE]
    assert (probe["src"], probe["dst"]) == ("192.0.2.66", "192.0.2.20")
    assert probe["detail"]["status"] == "STATUS_INSUFF_SERVER_RESOURCES"
    assert probe["detail"]["verdict"].startswith("unpatched")


def test_probe_rule_and_verdicts() -> None:
    assert is_ms17_010_probe((0x23, 0), "\\PIPE\\")
    assert not is_ms17_010_probe((0x23, 0x4001), "\\PIPE\\")  # a real pipe's FID: ordinary PeekNamedPipe
    assert not is_ms17_010_probe((0x26, 0), "\\PIPE\\")  # TransactNmPipe
    assert ms17_010_verdict(0xC0000022) == ms17_010_verdict(0xC0000008) == "patched"
    assert ms17_010_verdict(None) == "no answer"


def test_scan_needs_many_distinct_destinations_within_the_window() -> None:
    settings = DetectionSettings(scan_destinations=25, scan_window=300.0)
    detector = Detector(settings)
    for i in range(24):
        detector.connection_attempt(ConnectionRef.between("192.0.2.66", f"198.51.100.{i}", 445), float(i))
    for _ in range(500):  # a busy client: many connections, the same few servers
        detector.connection_attempt(ConnectionRef.between("192.0.2.77", "198.51.100.1", 445), 30.0)
    assert not detector.alerts
    detector.connection_attempt(
        ConnectionRef.between("192.0.2.66", "198.51.100.200", 445), 400.0
    )  # the early ones left the window
    assert not detector.alerts
    for i in range(25):
        detector.connection_attempt(ConnectionRef.between("192.0.2.66", f"203.0.113.{i}", 445), 500.0 + i)
    [alert] = detector.alerts
    assert (alert.kind, alert.src, alert.detail["distinct_destinations"]) == (ALERT_SCAN_445, "192.0.2.66", 25)
    for i in range(100):  # still scanning within the alert period: no second alert
        detector.connection_attempt(ConnectionRef.between("192.0.2.66", f"192.0.2.{i}", 445), 530.0)
    assert len(detector.alerts) == 1


def test_scan_tracking_memory_is_flat_under_a_source_flood() -> None:
    settings = DetectionSettings(max_scan_sources=10_000, scan_probation_slots=8_192)  # full before the warm-up ends
    detector = Detector(settings)
    rng = random.Random(1)
    tracemalloc.start()
    try:
        for i in range(1_000_000):
            if i == 100_000:
                after_warmup = tracemalloc.get_traced_memory()[0]
            source = socket.inet_ntoa(rng.getrandbits(32).to_bytes(4, "big"))
            detector.connection_attempt(ConnectionRef.between(source, "192.0.2.20", 445), i / 1000)
        at_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # One destination each: they only overwrite probation slots, never the tracked table.
    assert len(detector._scan_sources) == 0 and detector.scan_sources_forgotten == 0
    assert detector.scan_sources_displaced >= 900_000
    assert at_end < after_warmup * 1.1  # flat: 900,000 more sources cost nothing more


def test_a_scanner_hidden_in_a_random_source_flood_alerts() -> None:
    """Issue 15's evasion, scaled down: between two of the scanner's 30 attempts come more flood
    sources than the tracked table holds, which flushed a least-recently-used table every time."""
    settings = DetectionSettings(max_scan_sources=1_000, scan_probation_slots=4_096)
    detector = Detector(settings)
    rng = random.Random(15)
    ts = 0.0
    for target in range(30):
        for _ in range(2_048):  # twice the tracked table, half the probation slots
            ts += 0.001
            source = socket.inet_ntoa(rng.getrandbits(32).to_bytes(4, "big"))
            detector.connection_attempt(ConnectionRef.between(source, f"198.51.100.{rng.randrange(1, 200)}", 445), ts)
        detector.connection_attempt(ConnectionRef.between("203.0.113.66", f"192.0.2.{target + 1}", 445), ts)
    [alert] = [alert for alert in detector.alerts if alert.kind == ALERT_SCAN_445]
    assert alert.src == "203.0.113.66" and alert.detail["distinct_destinations"] == 25
    assert len(detector._scan_sources) <= 1_000 and detector.scan_sources_displaced > 50_000
    assert ts < settings.scan_window  # all within one window, as in the flood


def test_scan_alert_on_the_sweep_names_the_scanner() -> None:
    document = build_document(analyze_files([str(PCAPS / "recorded" / "scan_445_sweep.pcap")], FlowLimits(), 1000))
    [scan] = [a for a in document["alerts"] if a["kind"] == ALERT_SCAN_445]
    assert scan["src"] == "192.0.2.10" and scan["detail"]["distinct_destinations"] >= 25


def test_nmap_ms17_010_script_against_samba_reads_patched() -> None:
    document = build_document(analyze_files([str(PCAPS / "recorded" / "nmap_ms17_010.pcap")], FlowLimits(), 100))
    probes = [a for a in document["alerts"] if a["kind"] == ALERT_MS17_010_PROBE]
    assert probes and all(p["detail"]["verdict"] == "patched" for p in probes)
    assert {p["detail"]["status"] for p in probes} <= {"STATUS_INVALID_HANDLE", "STATUS_ACCESS_DENIED"}


def test_bruteforce_then_success_is_called_out() -> None:
    detector = Detector(DetectionSettings(bruteforce_failures=5, bruteforce_window=60.0))
    for i in range(4):
        detector.session_result(ConnectionRef.between("192.0.2.66", "192.0.2.20"), float(i), 0xC000006D, f"user{i}")
    detector.session_result(
        ConnectionRef.between("192.0.2.66", "192.0.2.20"), 100.0, 0xC000006D, "late"
    )  # the first four left the window
    assert not detector.alerts
    for i in range(5):
        detector.session_result(ConnectionRef.between("192.0.2.66", "192.0.2.20"), 110.0 + i, 0xC000006A, "admin")
    detector.session_result(ConnectionRef.between("192.0.2.66", "192.0.2.20"), 120.0, 0, "admin")
    first, second = detector.alerts
    assert first.kind == second.kind == ALERT_BRUTEFORCE
    assert first.detail["failures"] == 5 and first.detail["last_status"] == "STATUS_WRONG_PASSWORD"
    assert second.detail == {"success_after_failures": True, "user": "admin", "failures_before": 6}


def test_a_few_failures_then_success_is_no_bruteforce() -> None:
    detector = Detector()
    for i in range(3):  # a user mistyping a password
        detector.session_result(ConnectionRef.between("192.0.2.10", "192.0.2.20"), float(i), 0xC000006D, "alice")
    detector.session_result(ConnectionRef.between("192.0.2.10", "192.0.2.20"), 5.0, 0, "alice")
    assert not detector.alerts


def test_failures_with_an_empty_user_name_are_counted_apart_from_bruteforce() -> None:
    """Scanners and share browsers fail anonymous logons by the dozen: no password is guessed."""
    detector = Detector(DetectionSettings(bruteforce_failures=5))
    pair = ConnectionRef.between("192.0.2.66", "192.0.2.20")
    for i in range(50):
        detector.session_result(pair, float(i), 0xC000006D, "")
    assert not detector.alerts
    assert detector.empty_user_logon_failures == 50
    for i in range(5):  # a user name smbwatch could not see (None) still counts: it may be a guess
        detector.session_result(pair, 60.0 + i, 0xC000006D, None)
    (alert,) = detector.alerts
    assert alert.kind == ALERT_BRUTEFORCE and alert.detail["failures"] == 5


def test_bruteforce_on_the_recorded_failed_logons() -> None:
    inventory = Inventory()
    detector = Detector(DetectionSettings(bruteforce_failures=3))
    pipeline = Pipeline(sinks=[inventory], detector=detector)
    pipeline.feed(CaptureFile(str(PCAPS / "recorded" / "auth_wrong_password.pcap")))
    pipeline.finish()
    [alert] = [a for a in detector.alerts if a.kind == ALERT_BRUTEFORCE]
    assert (alert.src, alert.dst) == ("192.0.2.10", "192.0.2.20")
    assert alert.detail["failures"] == 3 and alert.detail["users"] == ["alice"]


def test_with_several_files_each_connection_and_alert_names_its_file() -> None:
    files = [str(PCAPS / "recorded" / "smb1_nt1.pcap"), str(PCAPS / "crafted" / "ms17_010_unpatched.pcap")]
    document = build_document(analyze_files(files, FlowLimits(), 1000))
    assert sorted(c["source_file"] for c in document["connections"]) == sorted(files)
    by_file = {
        alert["source_file"]: alert["kind"] for alert in document["alerts"] if alert["kind"] != "smb1_negotiated"
    }
    assert by_file == {files[1]: ALERT_MS17_010_PROBE}
    uids = [c["uid"] for c in document["connections"]]
    assert len(set(uids)) == 2 and uids == [
        c["uid"] for c in build_document(analyze_files(files, FlowLimits(), 10))["connections"]
    ]


def test_detector_pair_evictions_are_counted() -> None:
    detector = Detector(DetectionSettings(max_bruteforce_pairs=10, max_grooming_pairs=10))
    for i in range(25):
        detector.session_result(ConnectionRef.between(f"192.0.2.{i}", "192.0.2.200"), float(i), 0xC000006D, "u")
        detector.finding("srvnet_grooming", ConnectionRef.between(f"192.0.2.{i}", "192.0.2.200"), float(i), {})
    assert detector.pairs_evicted == {"bruteforce": 15, "grooming": 15}
    assert detector.anomalies()[AnomalyKind.DETECTOR_PAIRS_FULL] == 30


def test_attack_pairs_and_scanners_past_max_tracked_pairs_are_counted() -> None:
    detector = Detector(DetectionSettings(max_tracked_pairs=10, scan_destinations=2))
    probe = {"status": None, "verdict": "no answer"}
    for i in range(13):  # 13 attacked pairs, each probed twice: the second probe remembers nothing new
        for ts in (float(i), i + 0.5):
            detector.finding(ALERT_MS17_010_PROBE, ConnectionRef.between(f"192.0.2.{i}", "192.0.2.200"), ts, probe)
    for i in range(15):  # 15 scanning sources, each alerting once
        for destination in (1, 2):
            detector.connection_attempt(ConnectionRef.between(f"198.51.100.{i}", f"203.0.113.{destination}", 445), 20.0)
    assert [a.kind for a in detector.alerts].count(ALERT_SCAN_445) == 15
    assert len(detector.attack_pairs) == len(detector.scanners) == 10
    assert detector.pairs_evicted == {"attack_pairs": 3, "scanners": 5}
    assert detector.anomalies() == {AnomalyKind.DETECTOR_PAIRS_FULL: 8}
    assert detector.attacks_between("192.0.2.0", "192.0.2.200") == []  # forgotten, as counted
    assert detector.attacks_between("192.0.2.12", "192.0.2.200") == [ALERT_MS17_010_PROBE]
