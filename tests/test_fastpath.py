"""The bulk fast path changes speed only: every capture gives the same document with and without it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

from monitor.detect import DetectionSettings, Detector
from monitor.input.capture import CaptureError, CaptureFile
from monitor.output.inventory import Inventory
from monitor.pipeline import Pipeline
from monitor.tcp.flows import FlowLimits

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
CAPTURES = sorted(str(path.relative_to(PCAPS)) for path in PCAPS.rglob("*.pcap*"))


def records(path: Path, fast: bool) -> tuple[list[dict], Pipeline]:
    inventory = Inventory()
    pipeline = Pipeline(sinks=[inventory], fast_path=fast)
    with contextlib.suppress(CaptureError):  # the truncated capture: compare what was read before the damage
        pipeline.feed(CaptureFile(str(path)))
    pipeline.finish()
    return list(inventory.connections), pipeline


@pytest.mark.parametrize("name", CAPTURES)
def test_same_facts_with_and_without_the_fast_path(name: str) -> None:
    fast_records, fast = records(PCAPS / name, fast=True)
    slow_records, slow = records(PCAPS / name, fast=False)
    assert fast_records == slow_records
    assert fast.smb_packets == slow.smb_packets
    assert fast.anomalies() == slow.anomalies()
    assert (fast.flows.gaps, fast.flows.created) == (slow.flows.gaps, slow.flows.created)


def test_the_fast_path_carries_the_bulk_transfer() -> None:
    _, pipeline = records(PCAPS / "recorded" / "bulk_3_0_2.pcap", fast=True)
    # Most packets of a 1 MiB read and a 256 KiB write are skipped data or pure ACKs.
    assert pipeline.fastpath.packets > 0.8 * pipeline.packets


def test_a_syn_flood_gives_the_same_answers_on_the_syn_fast_path(tmp_path: Path) -> None:
    """The SYN fast path hands bare SYNs to the half-open table from the frame's bytes: the scan
    alert, the attempt counts and how they ended must be those of the general path."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import make_captures

    path = tmp_path / "synflood.pcap"
    path.write_bytes(make_captures.synflood_pcap(syns=20_000, answered=0.01, scanner_gap=600))
    results = []
    for fast in (True, False):
        detector = Detector(DetectionSettings(max_scan_sources=500, scan_probation_slots=4_096))
        pipeline = Pipeline(FlowLimits(max_half_open=5_000), fast_path=fast, detector=detector)
        pipeline.feed(CaptureFile(str(path)))
        pipeline.finish()
        flows = pipeline.flows
        results.append(
            (
                [(alert.kind, alert.src, alert.detail["distinct_destinations"]) for alert in detector.alerts],
                dict(flows.closed),
                (flows.created, flows.half_open_evicted, flows.half_open_promoted, pipeline.connections_without_smb),
                pipeline.smb_packets,
            )
        )
        if fast:
            assert pipeline.fastpath.packets > 19_000  # the SYNs (answers and resets take the general path)
    assert results[0] == results[1]
    assert results[0][0] == [("scan_445", make_captures.SCANNER_IP, 25)]
