"""Detections: rules over per-connection state that turn facts into alerts.

SMBv1 use (`smb1_negotiated`), raised once per client/server pair per period
rather than per packet or per connection; 445/139 scans (`scan_445`); brute
force (`bruteforce`, and a success that follows it); and the MS17-010 family
(`ms17_010_probe`, `eternalblue`, `doublepulsar`), whose per-connection patterns
`monitor.ms17_010` recognises and whose cross-connection part (EternalBlue's
pool grooming over many connections) is counted here. Every memory is capped
(least recently active entries are forgotten first), and so is the list of
alerts kept for a report; what the caps drop is counted.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dissectors.constants import nt_status_name
from monitor.ms17_010 import ALERT_DOUBLEPULSAR, ALERT_ETERNALBLUE, ALERT_MS17_010_PROBE, FINDING_SRVNET_GROOMING

ALERT_SMB1_NEGOTIATED = "smb1_negotiated"
ALERT_SCAN_445 = "scan_445"
ALERT_BRUTEFORCE = "bruteforce"
ALERT_KINDS = (
    ALERT_SMB1_NEGOTIATED,
    ALERT_SCAN_445,
    ALERT_MS17_010_PROBE,
    ALERT_ETERNALBLUE,
    ALERT_DOUBLEPULSAR,
    ALERT_BRUTEFORCE,
)

# [MS-ERREF] 2.3.1: the statuses a SESSION_SETUP fails with when the credentials are wrong or refused.
LOGON_FAILURE_STATUSES = frozenset(
    (
        0xC000006D,  # STATUS_LOGON_FAILURE
        0xC000006A,  # STATUS_WRONG_PASSWORD
        0xC0000064,  # STATUS_NO_SUCH_USER
        0xC0000234,  # STATUS_ACCOUNT_LOCKED_OUT
        0xC0000072,  # STATUS_ACCOUNT_DISABLED
        0xC0000193,  # STATUS_ACCOUNT_EXPIRED
        0xC0000071,  # STATUS_PASSWORD_EXPIRED
        0xC0000224,  # STATUS_PASSWORD_MUST_CHANGE
        0xC000006E,  # STATUS_ACCOUNT_RESTRICTION
        0xC000006F,  # STATUS_INVALID_LOGON_HOURS
        0xC0000070,  # STATUS_INVALID_WORKSTATION
        0xC000015B,  # STATUS_LOGON_TYPE_NOT_GRANTED
    )
)
MAX_USERS_PER_PAIR = 16


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
    # Brute force: this many failed logons from one source to one server within the window.
    # Windows' account lockout thresholds are commonly 5 to 10 attempts; 10 in 5 minutes stays
    # above a user mistyping a password a few times.
    bruteforce_failures: int = 10
    bruteforce_window: float = 300.0
    max_bruteforce_pairs: int = 50_000
    # EternalBlue grooming: connections opened by one source to one server with a zeroed header in a
    # 0x00FFF7-byte frame. The public tools open a dozen or more within a second; no client sends even one,
    # so a handful within a minute is already the pattern.
    grooming_connections: int = 3
    grooming_window: float = 60.0
    grooming_alert_period: float = 600.0
    max_grooming_pairs: int = 10_000


AlertSink = Callable[[Alert], None]


class Detector:
    """Applies the rules; every alert goes to the sinks and (up to a cap) to `alerts`."""

    def __init__(
        self, settings: DetectionSettings | None = None, sinks: list[AlertSink] | None = None, keep_alerts: bool = True
    ) -> None:
        self.settings = settings or DetectionSettings()
        self.sinks = list(sinks or [])
        # An offline report lists the alerts at the end; a live sensor hands each to its sinks and keeps none.
        self.keep_alerts = keep_alerts
        self.alerts: list[Alert] = []
        self.alerts_dropped = 0
        self.counts: Counter[str] = Counter()
        self._smb1_pairs: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.pairs_forgotten = 0
        self._scan_sources: OrderedDict[str, _ScanSource] = OrderedDict()
        self.scan_sources_forgotten = 0
        self._logon_pairs: OrderedDict[tuple[str, str], _LogonFailures] = OrderedDict()
        self._grooming_pairs: OrderedDict[tuple[str, str], _Grooming] = OrderedDict()

    def _raise(self, alert: Alert) -> None:
        self.counts[alert.kind] += 1
        if self.keep_alerts:
            if len(self.alerts) < self.settings.max_alerts_kept:
                self.alerts.append(alert)
            else:
                self.alerts_dropped += 1
        for sink in self.sinks:
            sink(alert)

    def finding(self, kind: str, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        """A pattern the per-connection state recognised (a probe and its answer): one alert each,
        except grooming connections, which alert when enough of them come together."""
        if kind == FINDING_SRVNET_GROOMING:
            self._grooming_connection(client, server, ts, evidence)
        else:
            self._raise(Alert(kind, ts, client, server, evidence))

    def _grooming_connection(self, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        settings = self.settings
        pair = (client, server)
        grooming = self._grooming_pairs.pop(pair, None) or _Grooming()
        self._grooming_pairs[pair] = grooming  # most recently active last
        if len(self._grooming_pairs) > settings.max_grooming_pairs:
            self._grooming_pairs.popitem(last=False)
        horizon = ts - settings.grooming_window
        grooming.times = [t for t in grooming.times if t >= horizon][-settings.grooming_connections :]
        grooming.times.append(ts)
        if len(grooming.times) >= settings.grooming_connections and (
            grooming.alerted_at is None or ts - grooming.alerted_at >= settings.grooming_alert_period
        ):
            grooming.alerted_at = ts
            detail = {
                "pattern": "srvnet_grooming",
                "verdict": "exploit attempt: pool grooming connections (zeroed header, NetBIOS length 0x00FFF7)",
                "connections": len(grooming.times),
                "window_seconds": settings.grooming_window,
                **evidence,
            }
            self._raise(Alert(ALERT_ETERNALBLUE, ts, client, server, detail))

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

    def session_result(self, client: str, server: str, ts: float, status: int, user: str | None) -> None:
        """A SESSION_SETUP's final status: failures count towards brute force; a success after
        a brute-force alert is called out."""
        settings = self.settings
        pair = (client, server)
        failures = self._logon_pairs.get(pair)
        if status in LOGON_FAILURE_STATUSES:
            if failures is None:
                failures = self._logon_pairs[pair] = _LogonFailures()
                if len(self._logon_pairs) > settings.max_bruteforce_pairs:
                    self._logon_pairs.popitem(last=False)
            else:
                self._logon_pairs.move_to_end(pair)
            horizon = ts - settings.bruteforce_window
            failures.times = [t for t in failures.times if t >= horizon][-2 * settings.bruteforce_failures :]
            failures.times.append(ts)
            if user is not None and len(failures.users) < MAX_USERS_PER_PAIR:
                failures.users.setdefault(user)
            if len(failures.times) >= settings.bruteforce_failures and not failures.alerted:
                failures.alerted = True
                evidence = {
                    "failures": len(failures.times),
                    "window_seconds": settings.bruteforce_window,
                    "users": list(failures.users),
                    "last_status": nt_status_name(status),
                }
                self._raise(Alert(ALERT_BRUTEFORCE, ts, client, server, evidence))
        elif status == 0 and failures is not None:
            if failures.alerted:
                evidence = {"success_after_failures": True, "user": user, "failures_before": len(failures.times)}
                self._raise(Alert(ALERT_BRUTEFORCE, ts, client, server, evidence))
            del self._logon_pairs[pair]

    def attempt_ended(self, source: str, failed: bool) -> None:
        """How an attempt ended: failed is a reset before any data, or no answer at all."""
        tracked = self._scan_sources.get(source)
        if tracked is not None:
            tracked.closed += 1
            tracked.failed += failed


class _Grooming:
    """Recent grooming connections of one source to one server (times, capped)."""

    __slots__ = ("alerted_at", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.alerted_at: float | None = None


class _LogonFailures:
    """Recent failed logons of one source against one server (times oldest first, capped)."""

    __slots__ = ("alerted", "times", "users")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.users: dict[str, None] = {}
        self.alerted = False


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
