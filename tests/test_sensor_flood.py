"""A live sensor under a SYN flood keeps serving /metrics, and still names the scanner hidden in it.

The flood comes from the bench's generator (bench/make_captures.py, seeded): 200,000 spoofed SYNs to
445 with one scanner among them, replayed by `smbwatch sniff --replay` at ten times its rate
(100,000 packets/s) while the test scrapes the exporter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.metrics_text import parse_samples

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import make_captures  # noqa: E402  (the bench's generators, not a package)

SNIFF = [sys.executable, "-m", "monitor.cli", "sniff", "--web.listen-address", "127.0.0.1:0"]


def test_the_sensor_keeps_answering_metrics_through_a_syn_flood(tmp_path: Path) -> None:
    capture = tmp_path / "synflood_200k.pcap"
    capture.write_bytes(make_captures.synflood_pcap(syns=200_000))
    process = subprocess.Popen(
        [*SNIFF, "--replay", str(capture), "--speed", "10", "--exit-after-replay"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    events: list[dict] = []
    started = threading.Event()

    def read_events() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "start":
                started.set()

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    opened: list[float] = []
    try:
        assert started.wait(timeout=30), process.stderr.read() if process.stderr else ""
        [start] = [event for event in events if event["event"] == "start"]
        url = "http://" + start["exporter.address"].replace("0.0.0.0", "127.0.0.1")
        deadline = time.monotonic() + 120  # bounded whatever happens
        while process.poll() is None and time.monotonic() < deadline:
            # Each scrape must be answered (5 s at most) while the pipeline is busy with the flood.
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                    samples = parse_samples(response.read().decode())
            except OSError:
                if any(event["event"] == "stop" for event in events) or process.poll() is not None:
                    break  # the replay ended and the exporter with it
                raise
            opened.append(samples.get(("smbwatch_flows_opened_total", ()), 0.0))
            time.sleep(0.2)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=10)
    # Answered throughout: several scrapes while the flood went on, each seeing it further along.
    progress = [value for value in opened if 0 < value < 200_000]
    assert len(progress) >= 3, opened
    print("flows opened at each scrape:", progress)
    assert progress == sorted(progress) and progress[0] < progress[-1]
    scans = [event for event in events if event["event"] == "alert" and event["alert.kind"] == "scan_445"]
    assert [event["source.ip"] for event in scans] == [make_captures.SCANNER_IP]
    assert events[-1]["event"] == "stop"
