"""A long run of the live sensor's pipeline keeps memory flat: flows, hosts, pairs and alerts are
capped or not kept, and flows age by packet time. Thousands of distinct clients run real recorded
sessions (their addresses and ports rewritten); memory after the caps are reached stops growing."""

from __future__ import annotations

import gc
import random
import struct
import tracemalloc
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.config import SensorConfig
from monitor.input.capture import CaptureFile, Frame, InterfaceStatistics
from monitor.sensor import build_parts

RECORDED = Path(__file__).resolve().parents[1] / "pcaps" / "recorded"
CAP = 300
SESSIONS = 1800


class NullLogger:
    def info(self, *args: object, **kwargs: object) -> None:
        pass

    warning = info


def session_templates() -> list[list[Frame]]:
    """Whole SMB1 and SMB 3.1.1 sessions as recorded (Ethernet/IPv4), client 192.0.2.10."""
    return [list(CaptureFile(str(RECORDED / name))) for name in ("smb1_nt1.pcap", "smb3_1_1.pcap")]


def rewritten(template: list[Frame], client: bytes, port: int, start: float) -> list[Frame]:
    """The session moved to another client address and port (checksums are not checked)."""
    first = template[0][0]
    frames = []
    for ts, linktype, frame in template:
        data = bytearray(frame)
        source_is_client = data[26:30] == bytes((192, 0, 2, 10))
        if source_is_client:
            data[26:30] = client
            struct.pack_into("!H", data, 34, port)
        else:
            data[30:34] = client
            struct.pack_into("!H", data, 36, port)
        frames.append((start + ts - first, linktype, bytes(data)))
    return frames


def test_memory_is_flat_over_a_long_run() -> None:
    config = SensorConfig()
    config.flows = replace(config.flows, max_flows=CAP)
    config.detection = replace(
        config.detection,
        max_tracked_pairs=CAP,
        max_scan_sources=CAP,
        scan_probation_slots=CAP,
        max_bruteforce_pairs=CAP,
        max_grooming_pairs=CAP,
    )
    parts = build_parts(config, CollectorRegistry(), NullLogger(), "test")
    parts.inventory.max_hosts = CAP
    templates = session_templates()
    rng = random.Random(7)
    measured = {}
    tracemalloc.start()
    try:
        for number in range(SESSIONS):
            client = bytes((10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)))
            frames = rewritten(templates[number % 2], client, 20000 + number % 40000, 1_700_000_000.0 + number)
            parts.pipeline.feed(frames)
            if number % 500 == 0:
                parts.metrics.refresh(parts.pipeline, parts.inventory, {"x": InterfaceStatistics("x")}, 0.0)
            if number in (SESSIONS // 3, SESSIONS - 1):
                gc.collect()  # count what is kept, not cyclic garbage the collector has not reached yet
                measured[number] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(parts.inventory.hosts) == CAP and parts.inventory.hosts_dropped > 0
    assert len(parts.pipeline.flows) <= CAP
    assert parts.detector.counts["smb1_negotiated"] >= SESSIONS // 2 - 1 and not parts.detector.alerts
    early, late = measured[SESSIONS // 3], measured[SESSIONS - 1]
    assert late < early * 1.1, f"memory grew from {early} to {late} bytes"
