"""Detections: rules over per-connection state that turn facts into alerts.

So far: SMBv1 use (`smb1_negotiated`), raised once per client/server pair per
period rather than per packet or per connection, and MS17-010 probes
(`ms17_010_probe`, with what the server's answer says about its patch level). The pair memory is capped
(least recently alerted pairs are forgotten first), and so is the list of
alerts kept for a report; what the caps drop is counted.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALERT_SMB1_NEGOTIATED = "smb1_negotiated"
ALERT_MS17_010_PROBE = "ms17_010_probe"
ALERT_SCAN_445 = "scan_445"

# [MS-CIFS] 2.2.5.4 TRANS_PEEK_NMPIPE: the subcommand scanners for MS17-010 send on FID 0.
TRANS_PEEK_NMPIPE = 0x0023
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_INVALID_HANDLE = 0xC0000008


def is_ms17_010_probe(setup: tuple[int, ...], name: str) -> bool:
    """A TRANSACTION PeekNamedPipe on FID 0 to \\PIPE\\: what MS17-010 checkers (nmap, Metasploit) send."""
    return len(setup) >= 2 and setup[0] == TRANS_PEEK_NMPIPE and setup[1] == 0 and name.upper().rstrip("\\") == "\\PIPE"


def ms17_010_verdict(status: int | None) -> str:
    """The server's answer tells: STATUS_INSUFF_SERVER_RESOURCES only from an unpatched SMB1 server."""
    if status is None:
        return "no answer"
    if status == STATUS_INSUFF_SERVER_RESOURCES:
        return "unpatched: vulnerable to MS17-010"
    if status in (STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE):
        return "patched"
    return "unknown"


@dataclass(frozen=True, slots=True)
class Alert:
    """One detection: what, when (packet time), from where to where, and the evidence."""

    kind: str
    ts: float
    src: str
    dst: str
    detail: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "ts": self.ts, "src": self.src, "dst": self.dst, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    # One SMB1 alert per client/server pair per hour: enough to see a pair keeps using SMB1
    # without an alert per connection of a chatty client.
    smb1_alert_period: float = 3600.0
    max_tracked_pairs: int = 100_000
    max_alerts_kept: int = 100_000
    # 445/139 scans: a source that opens (or tries to open) connections to this many distinct
    # destinations within the window. Zeek's old scan script fires at 25 failed destinations in
    # 5 minutes, ntopng at 32, an ET rule at 70 SYNs in 60 s; counting every first-seen flow (a
    # capture may miss the SYNs) 25 in 5 minutes keeps file-share-heavy clients, which talk to a
    # few servers many times, far below it.
    scan_destinations: int = 25
    scan_window: float = 300.0
    scan_alert_period: float = 600.0  # one alert per scanning source per period
    max_scan_sources: int = 50_000  # least recently active sources are forgotten first


AlertSink = Callable[[Alert], None]


class Detector:
    """Applies the rules; every alert goes to the sinks and (up to a cap) to `alerts`."""

    def __init__(self, settings: DetectionSettings | None = None, sinks: list[AlertSink] | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self.sinks = list(sinks or [])
        self.alerts: list[Alert] = []
        self.alerts_dropped = 0
        self.counts: Counter[str] = Counter()
        self._smb1_pairs: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.pairs_forgotten = 0
        self._scan_sources: OrderedDict[str, _ScanSource] = OrderedDict()
        self.scan_sources_forgotten = 0

    def _raise(self, alert: Alert) -> None:
        self.counts[alert.kind] += 1
        if len(self.alerts) < self.settings.max_alerts_kept:
            self.alerts.append(alert)
        else:
            self.alerts_dropped += 1
        for sink in self.sinks:
            sink(alert)

    def finding(self, kind: str, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        """A pattern the per-connection state recognised (a probe and its answer): one alert each."""
        self._raise(Alert(kind, ts, client, server, evidence))

    def smb1_used(self, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        """A connection between `client` and `server` uses SMB1 (negotiated, or an SMB1 command crossed it)."""
        pair = (client, server)
        last = self._smb1_pairs.get(pair)
        if last is not None and ts - last < self.settings.smb1_alert_period:
            return
        self._smb1_pairs[pair] = ts
        self._smb1_pairs.move_to_end(pair)
        if len(self._smb1_pairs) > self.settings.max_tracked_pairs:
            self._smb1_pairs.popitem(last=False)
            self.pairs_forgotten += 1
        self._raise(Alert(ALERT_SMB1_NEGOTIATED, ts, client, server, evidence))

    def connection_attempt(self, source: str, destination: str, port: int, ts: float) -> None:
        """A first-seen flow from `source` to `destination` on 445/139 (SYN seen or not)."""
        settings = self.settings
        tracked = self._scan_sources.get(source)
        if tracked is None:
            tracked = self._scan_sources[source] = _ScanSource()
            if len(self._scan_sources) > settings.max_scan_sources:
                self._scan_sources.popitem(last=False)
                self.scan_sources_forgotten += 1
        else:
            self._scan_sources.move_to_end(source)
        tracked.attempt(destination, ts, settings)
        if len(tracked.destinations) >= settings.scan_destinations and (
            tracked.alerted_at is None or ts - tracked.alerted_at >= settings.scan_alert_period
        ):
            tracked.alerted_at = ts
            evidence = {
                "distinct_destinations": len(tracked.destinations),
                "window_seconds": settings.scan_window,
                "server_port": port,
                "attempts": tracked.attempts,
                "failed": tracked.failed,
                "failed_share": round(tracked.failed / tracked.closed, 3) if tracked.closed else None,
                "sample_destinations": list(tracked.destinations)[:10],
            }
            self._raise(Alert(ALERT_SCAN_445, ts, source, "*", evidence))

    def attempt_ended(self, source: str, failed: bool) -> None:
        """How an attempt ended: failed is a reset before any data, or no answer at all."""
        tracked = self._scan_sources.get(source)
        if tracked is not None:
            tracked.closed += 1
            tracked.failed += failed


class _ScanSource:
    """One source's recent 445/139 destinations (first-seen time each, oldest first), capped."""

    __slots__ = ("alerted_at", "attempts", "closed", "destinations", "failed")

    def __init__(self) -> None:
        self.destinations: OrderedDict[str, float] = OrderedDict()
        self.attempts = 0
        self.closed = 0
        self.failed = 0
        self.alerted_at: float | None = None

    def attempt(self, destination: str, ts: float, settings: DetectionSettings) -> None:
        self.attempts += 1
        destinations = self.destinations
        if destination in destinations:
            destinations.move_to_end(destination)
        destinations[destination] = ts
        horizon = ts - settings.scan_window
        while destinations and next(iter(destinations.values())) < horizon:
            destinations.popitem(last=False)
        # Past twice the threshold more destinations tell nothing new: keep memory bounded.
        while len(destinations) > 2 * settings.scan_destinations:
            destinations.popitem(last=False)
