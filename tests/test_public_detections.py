"""Detections on the peer IDS's captures: true positives where tshark's facts show the pattern,
no alert where they show none. Skipped where ../shared/pcaps-public is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import analyze_files
from monitor.detect import ALERT_BRUTEFORCE, ALERT_MS17_010_PROBE, ALERT_SCAN_445
from monitor.flows import FlowLimits
from monitor.report import build_document

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
