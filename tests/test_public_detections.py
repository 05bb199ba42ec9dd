"""Detections on the peer IDS's captures: true positives where tshark's facts show the pattern,
no alert where they show none. Skipped where ../shared/pcaps-public is absent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from monitor.cli import analyze_files
from monitor.detect import ALERT_BRUTEFORCE, ALERT_MS17_010_PROBE, ALERT_SCAN_445
from monitor.detect.ms17_010 import ALERT_DOUBLEPULSAR, ALERT_ETERNALBLUE
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits
from tests.oracle import tshark_available

pytestmark = pytest.mark.public
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "pcaps-public" / "suricata-verify"
FACTS_FILE = PUBLIC / "facts.json"
FACTS = json.loads(FACTS_FILE.read_text()) if FACTS_FILE.is_file() else {}
CAPTURES = [
    (test, pcap["file"], pcap["tshark_facts"]) for test, entry in sorted(FACTS.items()) for pcap in entry["pcaps"]
]


@pytest.mark.skipif(not FACTS, reason=f"../shared/pcaps-public absent: {FACTS_FILE} not found")
@pytest.mark.parametrize(("test", "file", "facts"), CAPTURES, ids=[f"{t}/{f}" for t, f, _ in CAPTURES])
def test_probe_alerts_follow_the_facts_and_nothing_else_alerts(test: str, file: str, facts: dict) -> None:
    document = build_document(analyze_files([str(PUBLIC / test / file)], FlowLimits(), 10_000))
    probes = [a for a in document["alerts"] if a["kind"] == ALERT_MS17_010_PROBE]
    # tshark's facts count PeekNamedPipe answers of STATUS_INSUFF_SERVER_RESOURCES: the unpatched reply.
    expected = facts.get("peeknamedpipe_status_c0000205", 0)
    assert len(probes) == expected
    assert all(p["detail"]["verdict"].startswith("unpatched") for p in probes)
    # None of these captures holds a sweep or a password-guessing run.
    assert not [a for a in document["alerts"] if a["kind"] in (ALERT_SCAN_445, ALERT_BRUTEFORCE)]


def grooming_connections_per_tshark(path: Path) -> int:
    """TCP streams to 445 whose first client bytes are a NetBIOS header of length 0x00FFF7 followed by
    60 zero bytes after the 4-byte protocol id: what EternalBlue's pool grooming opens with."""
    output = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "tcp.dstport == 445 && tcp.len >= 68", "-T", "fields",
         "-e", "tcp.stream", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    first: dict[str, str] = {}
    for line in output.splitlines():
        stream, _, payload = line.partition("\t")
        first.setdefault(stream, payload)
    return sum(1 for payload in first.values() if payload.startswith("0000fff7") and set(payload[16:136]) == {"0"})


@pytest.mark.skipif(not FACTS, reason=f"../shared/pcaps-public absent: {FACTS_FILE} not found")
@pytest.mark.skipif(not tshark_available(), reason="tshark not installed")
@pytest.mark.parametrize(("test", "file", "facts"), CAPTURES, ids=[f"{t}/{f}" for t, f, _ in CAPTURES])
def test_eternalblue_alerts_follow_tshark_and_nothing_is_doublepulsar(test: str, file: str, facts: dict) -> None:
    """The WannaCry-era captures hold real EternalBlue traffic: an NT_TRANSACT with Function 0 continued by
    TRANSACTION2_SECONDARY requests, and the grooming connections. Nothing holds DoublePulsar."""
    path = PUBLIC / test / file
    document = build_document(analyze_files([str(path)], FlowLimits(), 10_000))
    patterns = sorted(a["detail"]["pattern"] for a in document["alerts"] if a["kind"] == ALERT_ETERNALBLUE)
    expected = []
    if "0" in facts.get("nt_transact_functions_req", {}) and facts["smb1_cmds"].get("REQ TRANSACTION2_SECONDARY"):
        expected.append("nt_transact_trans2_secondary")
    if grooming_connections_per_tshark(path) >= 3:
        expected.append("srvnet_grooming")
    assert patterns == sorted(expected)
    assert not [a for a in document["alerts"] if a["kind"] == ALERT_DOUBLEPULSAR]
