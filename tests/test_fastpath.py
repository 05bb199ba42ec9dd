"""The bulk fast path changes speed only: every capture gives the same document with and without it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from monitor.capture import CaptureError, CaptureFile
from monitor.inventory import Inventory
from monitor.pipeline import Pipeline

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
