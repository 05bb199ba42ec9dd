"""The distinct counter behind "N more hosts, counted but not listed", and the host cap itself."""

from __future__ import annotations

import tracemalloc

from monitor.cli import analyze_files
from monitor.output.cardinality import DistinctCounter
from monitor.output.inventory import Inventory
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits
from tests.test_retirement import PCAPS


def test_estimates_are_within_a_few_percent() -> None:
    for count in (0, 1, 10, 1_000, 50_000, 300_000):
        counter = DistinctCounter()
        for number in range(count):
            counter.add(number.to_bytes(4, "big"))
            counter.add(number.to_bytes(4, "big"))  # repeats do not count
        assert abs(counter.estimate() - count) <= max(1, 0.04 * count), count


def test_hosts_past_the_cap_are_counted_not_listed() -> None:
    analysis = analyze_files([str(PCAPS / "recorded" / "control_three_servers.pcap")], FlowLimits(), 100, max_hosts=2)
    document = build_document(analysis)
    assert len(document["hosts"]) == 2
    assert document["stats"]["hosts_not_listed"] == 2  # the two servers that found no room
    assert document["stats"]["anomalies"]["hosts_full"] >= 2


def test_a_host_costs_less_than_a_kibibyte() -> None:
    record = next(
        iter(
            analyze_files(
                [str(PCAPS / "recorded" / "auth_wrong_password.pcap")], FlowLimits(), 10
            ).inventory.connections
        )
    )
    inventory = Inventory(max_records=0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(20_000):
            inventory(
                {**record, "client": {"ip": f"10.{number >> 16}.{number >> 8 & 255}.{number & 255}", "port": 40000}}
            )
        per_host = (tracemalloc.get_traced_memory()[0] - before) / 20_000
    finally:
        tracemalloc.stop()
    assert len(inventory.hosts) == 20_001 and per_host < 1024, per_host
