"""`scan_445`: a source that opens, or tries to open, connections to many distinct destinations on
445/139. One-destination sources wait in the flow table's probation table
(`monitor.tcp.scan_probation`); this rule sees only the sources that show a second destination."""

from __future__ import annotations

from collections import OrderedDict

from monitor.detect.alerts import Alert, RuleBase, keep_recent
from monitor.detect.settings import DetectionSettings
from monitor.tcp.identity import ConnectionRef, format_ip
from monitor.tcp.scan_probation import ScanProbation

ALERT_SCAN_445 = "scan_445"


class ScanRules(RuleBase):
    """The scan rule's part of the detector: its tracked sources and the probation table."""

    _scan_sources: OrderedDict[bytes, ScanSource]
    scan: ScanProbation
    scan_sources_forgotten: int

    @property
    def scan_sources_displaced(self) -> int:
        """One-destination sources overwritten in their probation slot by another source."""
        return self.scan.displaced

    @property
    def scan_sources_tracked(self) -> int:
        """Sources with two destinations or more in the scan window's tracked table."""
        return len(self._scan_sources)

    def connection_attempt(self, connection: ConnectionRef, ts: float) -> Alert | None:
        """A first-seen flow from a source to a destination on 445/139 (SYN seen or not)."""
        if not self.scan.attempt(connection.client[0], connection.server[0], ts):
            return None  # one destination so far: it waits on probation
        return self.scan_candidate(connection, ts)

    def scan_candidate(self, connection: ConnectionRef, ts: float) -> Alert | None:
        """An attempt `scan.attempt` said needs a look (a tracked source, or a source's second
        destination). The flow table calls `scan.attempt` itself and reaches this through the pipeline's
        `on_scan_candidate`; `connection_attempt` calls both for flows created without a waiting SYN."""
        settings = self.settings
        source, destination, port = connection.client[0], connection.server[0], connection.server[1]
        tracked = self._scan_sources.get(source)
        if tracked is None:
            earlier = self.scan.earlier_destination
            tracked = self._scan_sources[source] = ScanSource()
            if len(self._scan_sources) > settings.max_scan_sources:
                self._scan_sources.popitem(last=False)
                self.scan_sources_forgotten += 1
            if earlier is not None:
                tracked.attempt(earlier, self.scan.earlier_ts, settings)
        else:
            self._scan_sources.move_to_end(source)
        tracked.attempt(destination, ts, settings)
        keep_recent(tracked.connections, connection)
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
                "sample_destinations": [format_ip(address) for address in list(tracked.destinations)[:10]],
            }
            alert = Alert(ALERT_SCAN_445, ts, format_ip(source), "*", evidence, connection, tuple(tracked.connections))
            return self._raise(alert)
        return None

    def attempt_ended(self, source: bytes, failed: bool) -> None:
        """How an attempt ended: failed is a reset before any data, or no answer at all."""
        tracked = self._scan_sources.get(source)
        if tracked is not None:
            tracked.closed += 1
            tracked.failed += failed


class ScanSource:
    """One source's recent 445/139 destinations (first-seen time each, oldest first), capped."""

    __slots__ = ("alerted_at", "attempts", "closed", "connections", "destinations", "failed")

    def __init__(self) -> None:
        self.destinations: OrderedDict[bytes, float] = OrderedDict()  # raw addresses
        self.connections: list[ConnectionRef] = []
        self.attempts = 0
        self.closed = 0
        self.failed = 0
        self.alerted_at: float | None = None

    def attempt(self, destination: bytes, ts: float, settings: DetectionSettings) -> None:
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
