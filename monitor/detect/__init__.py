"""Detections: rules over per-connection state that turn facts into alerts, one module per rule family.

`Detector` (here) holds the rules' memories and raises every alert (`_raise`: counted, kept for a
report, handed to the sinks); each family adds its part: `smb1` (`smb1_negotiated`, once per
client/server pair per period), `scan` (`scan_445`, fed by `monitor.tcp.scan_probation`),
`bruteforce` (and a success that follows it), `grooming` (EternalBlue's pool grooming across
connections; `ms17_010` recognises the per-connection MS17-010 patterns), `rpc` and `activity`
(what happens after the login). `settings` holds the thresholds and caps, `alerts` the `Alert`
record. Every memory is capped (least recently active entries are forgotten first), and so is the
list of alerts kept for a report; what the caps drop is counted.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from dissectors.records import AnomalyKind
from monitor.detect.activity import ACTIVITY_ALERT_KINDS, FINDING_KINDS, ActivityRules
from monitor.detect.alerts import MAX_CONNECTIONS_PER_ALERT, Alert, AlertSink
from monitor.detect.bruteforce import (
    ALERT_BRUTEFORCE,
    LOGON_FAILURE_STATUSES,
    MAX_USERS_PER_PAIR,
    BruteForceRules,
    FirstFailure,
    LogonFailures,
)
from monitor.detect.grooming import Grooming, GroomingRules
from monitor.detect.ms17_010 import ALERT_DOUBLEPULSAR, ALERT_ETERNALBLUE, ALERT_MS17_010_PROBE, FINDING_SRVNET_GROOMING
from monitor.detect.rpc import ALERT_RPC_BIG_ENDIAN, ALERT_RPC_COERCION
from monitor.detect.scan import ALERT_SCAN_445, ScanRules, ScanSource
from monitor.detect.settings import DetectionSettings, parse_networks
from monitor.detect.smb1 import ALERT_SMB1_NEGOTIATED, Smb1Rules
from monitor.tcp.identity import ConnectionRef
from monitor.tcp.scan_probation import ScanProbation

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


class Detector(Smb1Rules, ScanRules, BruteForceRules, GroomingRules):
    """Applies the rules; every alert goes to the sinks and (up to a cap) to `alerts`."""

    def __init__(
        self, settings: DetectionSettings | None = None, sinks: list[AlertSink] | None = None, keep_alerts: bool = True
    ) -> None:
        # By raw address: a flood of SYNs must not cost a formatted address each.
        self._scan_sources: OrderedDict[bytes, ScanSource] = OrderedDict()
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
        # Raw client + server address -> failures; a pair with one failure is a `FirstFailure` tuple.
        self._logon_pairs: OrderedDict[bytes, LogonFailures | FirstFailure] = OrderedDict()
        self._grooming_pairs: OrderedDict[tuple[str, str], Grooming] = OrderedDict()
        # Pairs (and scanning sources) a memory forgot for want of room (least recent first), by memory:
        # bruteforce, grooming, smb1_negotiated, attack_pairs, scanners.
        self.pairs_evicted: Counter[str] = Counter()
        self.users_dropped = 0  # brute-force failures naming a user past MAX_USERS_PER_PAIR
        self.empty_user_logon_failures = 0  # failed logons with an empty user name: not brute force
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

    def anomalies(self) -> Counter[AnomalyKind]:
        """The detectors' caps that bit (pairs forgotten; sources have their own counters and metric)."""
        counts: Counter[AnomalyKind] = Counter()
        total = sum(self.pairs_evicted.values())
        if total:
            counts[AnomalyKind.DETECTOR_PAIRS_FULL] = total
        if self.users_dropped:
            counts[AnomalyKind.NAMES_KEPT_FULL] = self.users_dropped
        return counts

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


__all__ = [
    "ALERT_BRUTEFORCE",
    "ALERT_KINDS",
    "ALERT_SCAN_445",
    "ALERT_SMB1_NEGOTIATED",
    "ATTACK_ALERT_KINDS",
    "LOGON_FAILURE_STATUSES",
    "MAX_CONNECTIONS_PER_ALERT",
    "MAX_USERS_PER_PAIR",
    "Alert",
    "AlertSink",
    "ConnectionRef",
    "DetectionSettings",
    "Detector",
    "parse_networks",
]
