"""Issue 15's floods, scaled down: the bench generators (bench/make_captures.py, seeded, the same
bytes every time) build them in memory; these tests assert behaviour and memory bounds, never time.

Memory is measured with tracemalloc, as what stays allocated per flooding client, so the bound holds
whatever the machine."""

from __future__ import annotations

import gc
import io
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import analyze_files
from monitor.detect import ALERT_BRUTEFORCE, ALERT_SCAN_445, DetectionSettings
from monitor.output.report import write_json
from monitor.tcp.flows import FlowLimits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import make_captures

CLIENTS = 3_000


@pytest.fixture(scope="module")
def logon_flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("floods") / f"logon_flood_{CLIENTS}.pcap"
    path.write_bytes(make_captures.logon_flood_pcap(clients=CLIENTS))
    return path


def freed_by(clear: Callable[[], None]) -> int:
    """Bytes that `clear` gives back (tracemalloc must be tracing)."""
    before = tracemalloc.get_traced_memory()[0]
    clear()
    gc.collect()
    return before - tracemalloc.get_traced_memory()[0]


def test_a_logon_flood_costs_little_per_client_and_still_finds_the_brute_forcer(logon_flood: Path) -> None:
    tracemalloc.start()
    try:
        analysis = analyze_files([str(logon_flood)], FlowLimits(), 1_000_000)
        inventory, detector = analysis.inventory, analysis.pipeline.detector
        alerts = [alert for alert in detector.alerts if alert.kind == ALERT_BRUTEFORCE]
        hosts, pairs = len(inventory.hosts), len(detector._logon_pairs)
        hosts_bytes = freed_by(inventory.hosts.clear)
        pairs_bytes = freed_by(detector._logon_pairs.clear)
    finally:
        tracemalloc.stop()
    assert hosts == CLIENTS + 3 + 1 and pairs == CLIENTS + 1  # every client, the servers, the brute forcer
    # A host with its announced names: about 0.5 KiB (issue 15: at most 1 KB; it was 6.9 KB).
    assert hosts_bytes / hosts < 1_000, f"{hosts_bytes / hosts:.0f} bytes per host"
    # A pair with a single failure is a small tuple (a whole record only from the second failure on).
    assert pairs_bytes / pairs < 400, f"{pairs_bytes / pairs:.0f} bytes per failed-logon pair"
    assert [alert.src for alert in alerts] == [make_captures.BRUTE_FORCER_IP]
    # The first failure, kept packed, is back in full in the alert: ten connections, the first one too.
    [alert] = alerts
    assert len(alert.connections) == alert.detail["failures"] == 10
    assert alert.detail["users"] == ["alice"]
    assert alert.connections[0].first_ts < alert.connections[1].first_ts


def test_the_json_report_streams_hosts_instead_of_holding_them(logon_flood: Path) -> None:
    """Writing the JSON must not build every host's description at once: the peak while writing
    stays a small fraction of what the descriptions would take."""
    analysis = analyze_files([str(logon_flood)], FlowLimits(), 1_000_000)
    hosts = len(analysis.inventory.hosts)
    assert hosts > CLIENTS
    out = io.StringIO()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        held = analysis.inventory.describe_hosts()  # what holding them would cost
        holding = tracemalloc.get_traced_memory()[0] - base
        del held
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        write_json(analysis, out)
        # The text accumulates in the StringIO (ASCII: a byte a character); what matters is the rest.
        peak = tracemalloc.get_traced_memory()[1] - base - len(out.getvalue())
    finally:
        tracemalloc.stop()
    assert out.getvalue().count('{"ip":"10.') >= CLIENTS  # every host is written
    # What is left is sorting the addresses (a key each), not describing the hosts.
    assert peak < holding / 5, f"{peak / hosts:.0f} bytes per host at the peak, holding them {holding / hosts:.0f}"


def test_a_scanner_hidden_in_a_syn_flood_alerts(tmp_path: Path) -> None:
    # 20,000 SYNs, the scanner's 30 attempts 600 SYNs apart: more sources between two attempts than a
    # 500-source tracked table holds, so only the two-level table keeps it.
    path = tmp_path / "synflood_20k.pcap"
    path.write_bytes(make_captures.synflood_pcap(syns=20_000, scanner_gap=600))
    settings = DetectionSettings(max_scan_sources=500, scan_probation_slots=4_096)
    analysis = analyze_files([str(path)], FlowLimits(max_half_open=5_000), 1000, settings)
    scans = [alert for alert in analysis.pipeline.detector.alerts if alert.kind == ALERT_SCAN_445]
    assert [alert.src for alert in scans] == [make_captures.SCANNER_IP]
    flows = analysis.pipeline.flows
    # Half-open attempts past the cap are forgotten and counted; none became a flow (no data flowed).
    assert flows.half_open <= 5_000 and flows.half_open_promoted == 0
    assert flows.half_open_evicted >= 20_000 - 5_000 - 100  # all but the waiting and the answered ones
    assert flows.created == 20_000  # every SYN (the scanner's among them) counts as one attempt, once
