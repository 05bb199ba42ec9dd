"""Alerts the moment their evidence is complete: a live sensor replaying at real speed logs and counts
each alert within a second of its evidence packet, while its connection is still open.

The capture (pcaps/crafted/alerts_open_connections.pcap, CRAFTED, header fields only) keeps every
connection open until 12 s after its start; one pattern a second, and a DoublePulsar upload that is
never answered, whose "no answer" alert is due one answer timeout after the request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

from monitor.cli import analyze_files
from monitor.detect import DetectionSettings
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits
from tests.metrics_text import parse_samples

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "pcaps" / "crafted" / "alerts_open_connections.pcap"
SNIFF = [sys.executable, "-m", "monitor.cli", "sniff", "--web.listen-address", "127.0.0.1:0"]
LATENCY_LIMIT = 1.0  # seconds of wall time after the evidence is complete
CONNECTIONS_CLOSE_AFTER = 11.9  # capture time from the first packet to the first FIN


def wall(event: dict) -> float:
    return datetime.fromisoformat(event["@timestamp"].replace("Z", "+00:00")).timestamp()


def due(alert: dict, answer_timeout: float) -> float:
    """When the evidence is complete: the evidence packet, or the answer timeout after an unanswered request."""
    no_answer = alert["detail"].get("verdict") == "no answer"
    return alert["ts"] + (answer_timeout if no_answer else 0.0)


def test_live_alerts_come_when_the_evidence_does() -> None:
    offline = build_document(analyze_files([str(CAPTURE)], FlowLimits(), 100))
    first_ts = 1700001000.5  # the first packet of the capture
    timeout = DetectionSettings().answer_timeout
    process = subprocess.Popen(
        [*SNIFF, "--replay", str(CAPTURE), "--speed", "1", "--exit-after-replay"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    latencies: dict[str, float] = {}
    counted: list[tuple[str, float]] = []
    try:
        assert process.stdout is not None
        start = None
        kinds: Counter[str] = Counter()
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "start":
                start = wall(event)
                url = "http://" + event["exporter.address"].replace("0.0.0.0", "127.0.0.1")
            elif event["event"] == "alert":
                assert start is not None
                elapsed = wall(event) - start  # wall time since the replay began
                evidence = due({"ts": event["ts"], "detail": event["alert.detail"]}, timeout) - first_ts
                key = f"{event['alert.kind']}/{event['alert.detail'].get('pattern', '')}"
                latencies[key] = elapsed - evidence
                # Still open: the connections' FINs come at the end of the replay.
                assert elapsed < CONNECTIONS_CLOSE_AFTER, (key, elapsed)
                kinds[event["alert.kind"]] += 1
                with urllib.request.urlopen(url, timeout=5) as response:
                    samples = parse_samples(response.read().decode())
                counted.append(
                    (event["alert.kind"], samples[("smbwatch_alerts_total", (("kind", event["alert.kind"]),))])
                )
                assert event["smb.uid"] and event["network.community_id"].startswith("1:")
            elif event["event"] == "stop":
                break
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    offline_kinds = Counter(alert["kind"] for alert in offline["alerts"])
    assert kinds == offline_kinds  # the live counts equal the offline analysis
    assert set(offline_kinds) >= {"eternalblue", "ms17_010_probe", "doublepulsar"}
    assert "doublepulsar/payload_upload" in latencies  # the unanswered upload, at its timeout
    slow = {key: round(value, 3) for key, value in latencies.items() if not -0.05 <= value <= LATENCY_LIMIT}
    assert not slow, f"alerts later than {LATENCY_LIMIT} s after their evidence: {slow} (all: {latencies})"
    # Each alert was already counted in /metrics when its event was logged.
    seen: Counter[str] = Counter()
    for kind, value in counted:
        seen[kind] += 1
        assert value >= seen[kind]
    print("alert latency (s):", {key: round(value, 3) for key, value in latencies.items()})
