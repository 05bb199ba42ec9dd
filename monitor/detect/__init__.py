"""Detections: rules over per-connection state that turn facts into alerts.

SMBv1 use (`smb1_negotiated`), raised once per client/server pair per period
rather than per packet or per connection; 445/139 scans (`scan_445`); brute
force (`bruteforce`, and a success that follows it); and the MS17-010 family
(`ms17_010_probe`, `eternalblue`, `doublepulsar`), whose per-connection patterns
`monitor.detect.ms17_010` recognises and whose cross-connection part (EternalBlue's
pool grooming over many connections) is counted here. Every memory is capped
(least recently active entries are forgotten first), and so is the list of
alerts kept for a report; what the caps drop is counted.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dissectors.constants import nt_status_name
from dissectors.records import AnomalyKind
from monitor.detect.activity import ACTIVITY_ALERT_KINDS, FINDING_KINDS, ActivityRules
from monitor.detect.ms17_010 import ALERT_DOUBLEPULSAR, ALERT_ETERNALBLUE, ALERT_MS17_010_PROBE, FINDING_SRVNET_GROOMING
from monitor.detect.rpc import ALERT_RPC_BIG_ENDIAN, ALERT_RPC_COERCION
from monitor.tcp.identity import ConnectionRef, format_ip
from monitor.tcp.scan_probation import ScanProbation

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
    *ACTIVITY_ALERT_KINDS,
)
# What an attacker does, not what a user does: SMB1 traffic of a pair that raised one of these is
# no dependency on SMB1 (the retirement report lists it apart).
ATTACK_ALERT_KINDS = frozenset(
    (
        ALERT_SCAN_445,
        ALERT_MS17_010_PROBE,
        ALERT_ETERNALBLUE,
        ALERT_DOUBLEPULSAR,
        ALERT_RPC_COERCION,
        ALERT_RPC_BIG_ENDIAN,
    )
)
# Alerts that span connections list this many of them (the most recent).
MAX_CONNECTIONS_PER_ALERT = 16

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
    """One detection: what, when (packet time of the evidence), from where to where, the evidence,
    and the connection it is about (for alerts spanning connections: the one that completed the
    evidence, and up to `MAX_CONNECTIONS_PER_ALERT` of them in `connections`)."""

    kind: str
    ts: float
    src: str
    dst: str
    detail: dict[str, Any]
    connection: ConnectionRef | None = None
    connections: tuple[ConnectionRef, ...] = ()

    def describe(self) -> dict[str, Any]:
        joined = (
            self.connection.describe()
            if self.connection is not None
            else {"client": None, "server": None, "uid": None, "community_id": None, "source_file": None}
        )
        return {
            "kind": self.kind,
            "ts": self.ts,
            "src": self.src,
            "dst": self.dst,
            "detail": self.detail,
            **joined,
            "connections": [connection.describe() for connection in self.connections],
        }


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
    # Sources seen with one destination wait in a fixed table of this many slots, each source in the
    # slot its keyed hash picks; a second destination moves the source to the tracked table below.
    # A flood of random sources (one destination each) only overwrites slots and never reaches the
    # tracked table, so it cannot flush a real scanner out of it; a scanner's one-destination entry
    # survives n further flood sources with probability exp(-n / slots), and one of its many
    # attempts is enough.
    scan_probation_slots: int = 65_536
    max_scan_sources: int = 50_000  # tracked sources (two destinations or more); least recently active go first
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
    # How long (packet time) a request that expects an answer (an MS17-010 probe, a DoublePulsar
    # ping or upload) waits before "no answer" is the verdict. Servers answer these within
    # milliseconds; an alert must not wait for the connection's end.
    answer_timeout: float = 5.0
    # Known legacy devices (addresses or CIDR blocks): their SMB1 use is counted and reported as
    # allowed, but raises no smb1_negotiated alert.
    smb1_allow: tuple[str, ...] = ()
    # After the login (monitor/detect/activity.py). remote_execution, admin_share_executable,
    # print_driver_install, rpc_coercion and rpc_big_endian alert on the first event, then at most once
    # per period per client/server pair and kind: psexec alone creates, starts and deletes a service.
    activity_alert_period: float = 600.0
    # BZAR pairs a service or task created remotely with a file written to an admin share within 10 minutes.
    lateral_movement_window: float = 600.0
    # Ransomware: distinct existing files renamed, overwritten or deleted by one client on one server
    # within the window. The recorded controls change at most 3 files a minute (a user renaming and
    # deleting a few); the ransomware-like recording changes 30 in under 2 seconds. Creations and reads
    # (deployments, backups) are not counted.
    ransomware_files: int = 20
    ransomware_window: float = 60.0
    max_activity_pairs: int = 10_000


AlertSink = Callable[[Alert], None]


def parse_networks(
    entries: tuple[str, ...] | list[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses or CIDR blocks; raises ValueError naming the entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or CIDR block") from None
    return tuple(networks)


class Detector:
    """Applies the rules; every alert goes to the sinks and (up to a cap) to `alerts`."""

    def __init__(
        self, settings: DetectionSettings | None = None, sinks: list[AlertSink] | None = None, keep_alerts: bool = True
    ) -> None:
        # By raw address: a flood of SYNs must not cost a formatted address each.
        self._scan_sources: OrderedDict[bytes, _ScanSource] = OrderedDict()
        # One-destination sources wait in `scan` (monitor/tcp/scan_probation.py; made by the settings setter), which
        # the flow table calls directly for every SYN: this detector sees only the sources it tracks.
        self.settings = settings or DetectionSettings()
        self.sinks = list(sinks or [])
        # An offline report lists the alerts at the end; a live sensor hands each to its sinks and keeps none.
        self.keep_alerts = keep_alerts
        self.alerts: list[Alert] = []
        self.alerts_dropped = 0
        self.counts: Counter[str] = Counter()
        self._smb1_pairs: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.pairs_forgotten = 0
        self.scan_sources_forgotten = 0
        # Raw client + server address -> failures; a pair with one failure is a `_FirstFailure` tuple.
        self._logon_pairs: OrderedDict[bytes, _LogonFailures | _FirstFailure] = OrderedDict()
        self._grooming_pairs: OrderedDict[tuple[str, str], _Grooming] = OrderedDict()
        # Pairs (and scanning sources) a memory forgot for want of room (least recent first), by memory:
        # bruteforce, grooming, smb1_negotiated, attack_pairs, scanners.
        self.pairs_evicted: Counter[str] = Counter()
        self.users_dropped = 0  # brute-force failures naming a user past MAX_USERS_PER_PAIR
        # Who attacked whom (client, server) -> alert kinds, and scanning sources: the retirement report
        # keeps their SMB1 traffic apart. Capped like the other memories.
        self.attack_pairs: OrderedDict[tuple[str, str], set[str]] = OrderedDict()
        self.scanners: OrderedDict[str, None] = OrderedDict()
        # SMB1 use by allowed legacy devices: counted, never alerted on.
        self.smb1_allowed = 0
        self.activity = ActivityRules(self._settings, self._activity_alert, self.pairs_evicted)

    @property
    def settings(self) -> DetectionSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: DetectionSettings) -> None:
        self._settings = settings
        activity: ActivityRules | None = getattr(self, "activity", None)
        if activity is not None:
            activity.settings = settings
        self._smb1_allow = parse_networks(settings.smb1_allow)
        scan: ScanProbation | None = getattr(self, "scan", None)
        if scan is None:
            self.scan = ScanProbation(
                settings.scan_probation_slots, settings.scan_window, settings.scan_destinations, self._scan_sources
            )
            return
        # The flow table holds this object: a reload changes it in place (a resize forgets who waits).
        if scan.size != settings.scan_probation_slots:
            scan.resize(settings.scan_probation_slots)
        scan.window = settings.scan_window
        scan.one_destination_is_enough = settings.scan_destinations <= 1

    @property
    def scan_sources_displaced(self) -> int:
        """One-destination sources overwritten in their probation slot by another source."""
        return self.scan.displaced

    @property
    def scan_sources_tracked(self) -> int:
        """Sources with two destinations or more in the scan window's tracked table."""
        return len(self._scan_sources)

    def anomalies(self) -> Counter[AnomalyKind]:
        """The detectors' caps that bit (pairs forgotten; sources have their own counters and metric)."""
        counts: Counter[AnomalyKind] = Counter()
        total = sum(self.pairs_evicted.values())
        if total:
            counts[AnomalyKind.DETECTOR_PAIRS_FULL] = total
        if self.users_dropped:
            counts[AnomalyKind.NAMES_KEPT_FULL] = self.users_dropped
        return counts

    def smb1_allowed_address(self, ip: str) -> bool:
        """The address is in `smb1_allow`: a known legacy device."""
        if not self._smb1_allow:
            return False
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self._smb1_allow)

    def attacks_between(self, client: str, server: str) -> list[str]:
        """The attack alert kinds `client` raised against `server`, or as a scanner."""
        kinds = set(self.attack_pairs.get((client, server), ()))
        if client in self.scanners:
            kinds.add(ALERT_SCAN_445)
        return sorted(kinds)

    def _remember_attack(self, alert: Alert) -> None:
        limit = self.settings.max_tracked_pairs
        if alert.kind == ALERT_SCAN_445:
            self.scanners[alert.src] = None
            self.scanners.move_to_end(alert.src)
            if len(self.scanners) > limit:
                self.scanners.popitem(last=False)
                self.pairs_evicted["scanners"] += 1
            return
        pair = (alert.src, alert.dst)
        kinds = self.attack_pairs.get(pair)
        if kinds is None:
            kinds = self.attack_pairs[pair] = set()
            if len(self.attack_pairs) > limit:
                self.attack_pairs.popitem(last=False)
                self.pairs_evicted["attack_pairs"] += 1
        kinds.add(alert.kind)

    def _raise(self, alert: Alert) -> Alert:
        self.counts[alert.kind] += 1
        if alert.kind in ATTACK_ALERT_KINDS:
            self._remember_attack(alert)
        if self.keep_alerts:
            if len(self.alerts) < self.settings.max_alerts_kept:
                self.alerts.append(alert)
            else:
                self.alerts_dropped += 1
        for sink in self.sinks:
            sink(alert)
        return alert

    def finding(self, kind: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]) -> Alert | None:
        """A pattern the per-connection state recognised: the first alert it raised, if any."""
        alerts = self.finding_alerts(kind, connection, ts, evidence)
        return alerts[0] if alerts else None

    def finding_alerts(self, kind: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]) -> list[Alert]:
        """A pattern the per-connection state recognised (a probe and its answer, a call, a file
        change): the alerts it raised. A probe alerts each time; grooming connections when enough of
        them come together; the activity rules as monitor/detect/activity.py says."""
        client, server = connection.client_ip, connection.server_ip
        if kind in FINDING_KINDS:
            return self.activity.finding(kind, connection, ts, evidence)
        if kind == FINDING_SRVNET_GROOMING:
            alert = self._grooming_connection(client, server, connection, ts, evidence)
            return [alert] if alert is not None else []
        return [self._raise(Alert(kind, ts, client, server, evidence, connection))]

    def _activity_alert(
        self,
        kind: str,
        ts: float,
        connection: ConnectionRef,
        detail: dict[str, Any],
        connections: tuple[ConnectionRef, ...],
    ) -> Alert:
        alert = Alert(kind, ts, connection.client_ip, connection.server_ip, detail, connection, connections)
        return self._raise(alert)

    def _grooming_connection(
        self, client: str, server: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]
    ) -> Alert | None:
        settings = self.settings
        pair = (client, server)
        grooming = self._grooming_pairs.pop(pair, None) or _Grooming()
        self._grooming_pairs[pair] = grooming  # most recently active last
        if len(self._grooming_pairs) > settings.max_grooming_pairs:
            self._grooming_pairs.popitem(last=False)
            self.pairs_evicted["grooming"] += 1
        horizon = ts - settings.grooming_window
        grooming.times = [t for t in grooming.times if t >= horizon][-settings.grooming_connections :]
        grooming.times.append(ts)
        _keep_recent(grooming.connections, connection)
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
            return self._raise(
                Alert(ALERT_ETERNALBLUE, ts, client, server, detail, connection, tuple(grooming.connections))
            )
        return None

    def smb1_used(self, connection: ConnectionRef, ts: float, evidence: dict[str, Any]) -> Alert | None:
        """A connection uses SMB1 (negotiated, or an SMB1 command crossed it). Between allowed
        legacy devices it is only counted."""
        client, server = connection.client_ip, connection.server_ip
        if self.smb1_allowed_address(client) or self.smb1_allowed_address(server):
            self.smb1_allowed += 1
            return None
        pair = (client, server)
        last = self._smb1_pairs.get(pair)
        if last is not None and ts - last < self.settings.smb1_alert_period:
            return None
        self._smb1_pairs[pair] = ts
        self._smb1_pairs.move_to_end(pair)
        if len(self._smb1_pairs) > self.settings.max_tracked_pairs:
            self._smb1_pairs.popitem(last=False)
            self.pairs_forgotten += 1
            self.pairs_evicted["smb1_negotiated"] += 1
        return self._raise(Alert(ALERT_SMB1_NEGOTIATED, ts, client, server, evidence, connection))

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
            tracked = self._scan_sources[source] = _ScanSource()
            if len(self._scan_sources) > settings.max_scan_sources:
                self._scan_sources.popitem(last=False)
                self.scan_sources_forgotten += 1
            if earlier is not None:
                tracked.attempt(earlier, self.scan.earlier_ts, settings)
        else:
            self._scan_sources.move_to_end(source)
        tracked.attempt(destination, ts, settings)
        _keep_recent(tracked.connections, connection)
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

    def session_result(self, connection: ConnectionRef, ts: float, status: int, user: str | None) -> Alert | None:
        """A SESSION_SETUP's final status: failures count towards brute force; a success after
        a brute-force alert is called out."""
        settings = self.settings
        # By raw addresses: a flood of clients failing once each must not cost two formatted addresses each.
        pair = connection.client[0] + connection.server[0]
        failures = self._logon_pairs.get(pair)
        if status in LOGON_FAILURE_STATUSES:
            if user is not None:
                user = sys.intern(user)  # a flood repeats a handful of user names
            if failures is None:
                if settings.bruteforce_failures > 1:
                    # One failure is what most clients ever have: a small tuple until a second one comes.
                    self._logon_pairs[pair] = (ts, connection.packed(), connection.source_file, user)
                else:
                    failures = self._logon_pairs[pair] = _LogonFailures()
                if len(self._logon_pairs) > settings.max_bruteforce_pairs:
                    self._logon_pairs.popitem(last=False)
                    self.pairs_evicted["bruteforce"] += 1
                if failures is None:
                    return None
            else:
                self._logon_pairs.move_to_end(pair)
                if isinstance(failures, tuple):
                    failures = self._logon_pairs[pair] = _LogonFailures.from_first(*failures)
            horizon = ts - settings.bruteforce_window
            failures.times = [t for t in failures.times if t >= horizon][-2 * settings.bruteforce_failures :]
            failures.times.append(ts)
            _keep_recent(failures.connections, connection)
            if user is not None and user not in failures.users:
                if len(failures.users) < MAX_USERS_PER_PAIR:
                    failures.users[user] = None
                else:
                    self.users_dropped += 1  # each failure of a user not listed: `names_kept_full`
            if len(failures.times) >= settings.bruteforce_failures and not failures.alerted:
                failures.alerted = True
                evidence = {
                    "failures": len(failures.times),
                    "window_seconds": settings.bruteforce_window,
                    "users": list(failures.users),
                    "last_status": nt_status_name(status),
                }
                return self._bruteforce_alert(connection, ts, evidence, failures)
        elif status == 0 and failures is not None:
            del self._logon_pairs[pair]
            if isinstance(failures, _LogonFailures) and failures.alerted:
                evidence = {"success_after_failures": True, "user": user, "failures_before": len(failures.times)}
                return self._bruteforce_alert(connection, ts, evidence, failures)
        return None

    def _bruteforce_alert(
        self, connection: ConnectionRef, ts: float, evidence: dict[str, Any], failures: _LogonFailures
    ) -> Alert:
        """A `bruteforce` alert about the pair, listing its recent failed connections."""
        return self._raise(
            Alert(
                ALERT_BRUTEFORCE,
                ts,
                connection.client_ip,
                connection.server_ip,
                evidence,
                connection,
                tuple(failures.connections),
            )
        )

    def attempt_ended(self, source: bytes, failed: bool) -> None:
        """How an attempt ended: failed is a reset before any data, or no answer at all."""
        tracked = self._scan_sources.get(source)
        if tracked is not None:
            tracked.closed += 1
            tracked.failed += failed


def _keep_recent(connections: list[ConnectionRef], connection: ConnectionRef) -> None:
    """The most recent `MAX_CONNECTIONS_PER_ALERT` connections of a pattern, oldest first."""
    connections.append(connection)
    if len(connections) > MAX_CONNECTIONS_PER_ALERT:
        del connections[0]


class _Grooming:
    """Recent grooming connections of one source to one server (times, capped)."""

    __slots__ = ("alerted_at", "connections", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.connections: list[ConnectionRef] = []
        self.alerted_at: float | None = None


# A pair's first failed logon: time, `ConnectionRef.packed()`, input file, user.
_FirstFailure = tuple[float, bytes, "str | None", "str | None"]


class _LogonFailures:
    """Recent failed logons of one source against one server (times oldest first, capped)."""

    __slots__ = ("alerted", "connections", "times", "users")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.connections: list[ConnectionRef] = []
        self.users: dict[str, None] = {}
        self.alerted = False

    @classmethod
    def from_first(cls, ts: float, packed: bytes, source_file: str | None, user: str | None) -> _LogonFailures:
        """The pair's second failure came: the first one, kept compactly, as the start of the record."""
        failures = cls()
        failures.times.append(ts)
        failures.connections.append(ConnectionRef.unpacked(packed, source_file))
        if user is not None:
            failures.users[user] = None
        return failures


class _ScanSource:
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
