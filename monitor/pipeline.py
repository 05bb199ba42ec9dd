"""The analysis pipeline shared by offline and live use: frames in, connection facts out.

capture → decode → flows (reassembly, `SmbStream`) → session → `on_connection` sinks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from dissectors.constants import SMB_PORTS
from dissectors.records import AnomalyKind, StreamEvent
from monitor.detect import ATTACK_ALERT_KINDS, Alert, Detector
from monitor.detect.activity import FINDING_KINDS as ACTIVITY_FINDING_KINDS
from monitor.input.capture import Frame
from monitor.input.decode import Decoder
from monitor.smb.session import SmbConnection
from monitor.tcp.fastpath import FastPath
from monitor.tcp.flows import CloseReason, Direction, Flow, FlowLimits, FlowState, FlowTable
from monitor.tcp.identity import ConnectionRef, community_id, connection_uid, format_ip

ConnectionRecord = dict[str, Any]
# The keys of every connection's `messages` and of the totals (JSON `stats.smb_messages`, the metric's label).
MESSAGE_PROTOCOLS = ("smb1", "smb2", "encrypted", "compressed")
ConnectionSink = Callable[[ConnectionRecord], None]


class Endpoints(NamedTuple):
    """Who talks to whom on a connection, formatted for sinks."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    transport: str
    uid: str
    community_id: str


class PipelineObserver(Protocol):
    """What a live sink (metrics, event log) hears as it happens, not only when a connection ends."""

    def negotiated(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None: ...

    def session_setup(self, endpoints: Endpoints, session: dict[str, Any], status: int, ts: float) -> None: ...

    def tree_connect(self, endpoints: Endpoints, tree: dict[str, Any], ts: float) -> None: ...

    def smb1_used(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None: ...


def endpoints_of(flow: Flow) -> Endpoints:
    client, server = flow.client, flow.server
    return Endpoints(
        format_ip(client[0]),
        client[1],
        format_ip(server[0]),
        server[1],
        flow.transport,
        connection_uid(client, server, flow.first_ts),
        community_id(client, server),
    )


def connection_ref(flow: Flow, source_file: str | None) -> ConnectionRef:
    return ConnectionRef(flow.client, flow.server, flow.first_ts, source_file)


class Pipeline:
    """Feeds frames through decoding, flows and sessions; hands each finished connection to sinks."""

    def __init__(
        self,
        limits: FlowLimits | None = None,
        sinks: Iterable[ConnectionSink] = (),
        fast_path: bool = True,
        detector: Detector | None = None,
        observers: Iterable[PipelineObserver] = (),
    ) -> None:
        self.decoder = Decoder()
        self.detector = detector or Detector()
        self.flows = FlowTable(
            limits or FlowLimits(),
            self._on_events,
            self._on_close,
            self._on_open,
            self._on_tick,
            self._on_attempt_end,
            scan=self.detector.scan,
            on_scan_candidate=self._on_scan_candidate,
        )
        # Off only to check that it changes nothing (tests/test_fastpath.py).
        self.fastpath = FastPath(self.flows, enabled=fast_path)
        self.sinks = list(sinks)
        self.observers = list(observers)
        self.packets = 0
        self.smb_segments = 0
        self._flows_without_smb = 0
        self.smb_messages: Counter[str] = Counter()
        self.connection_anomalies: Counter[AnomalyKind] = Counter()
        # The input file being read (set by whoever feeds several files), named in records and alerts.
        self.source_file: str | None = None
        # Flows whose connection waits for answers that may never come, by id (see `_on_tick`).
        self._awaiting: dict[int, Flow] = {}

    def advance(self, now: float) -> None:
        """Packet time has reached `now` without a packet (a live sensor's idle heartbeat, with its
        estimate of capture time): what is due by then is done now, not at the next packet."""
        self.flows.housekeeping(now)

    def feed(self, frames: Iterable[Frame]) -> None:
        """Process frames in capture order. Exceptions of the frame source propagate after
        the frames before them were processed."""
        fastpath = self.fastpath
        frames_before, segments_before = fastpath.frames, fastpath.segments
        try:
            fastpath.feed(frames, self.decoder)
        finally:
            self.packets += fastpath.frames - frames_before
            self.smb_segments += fastpath.segments - segments_before

    @property
    def smb_packets(self) -> int:
        """Packets on the SMB ports, whichever path handled them."""
        return self.smb_segments + self.fastpath.packets

    def finish(self) -> None:
        """End of input: close every flow so its facts reach the sinks."""
        self.flows.close_all()

    def anomalies(self) -> Counter[AnomalyKind]:
        total: Counter[AnomalyKind] = Counter()
        total.update(self.decoder.anomalies)
        total.update(self.flows.anomalies)
        total.update(self.connection_anomalies)
        total.update(self.detector.anomalies())
        return total

    def _on_events(self, flow: Flow, direction: Direction, events: list[StreamEvent], ts: float) -> None:
        connection = flow.owner
        if not isinstance(connection, SmbConnection):
            connection = flow.owner = SmbConnection(flow.first_ts, flow.midstream, self.source_file)
        connection.handle(direction, events, ts)
        # Hand what the connection learnt to the detector and the observers.
        if self.observers:
            self._observe(flow, connection, ts)
        if connection.smb1_used and not connection.smb1_reported:
            connection.smb1_reported = True
            self._report_smb1(flow, connection, ts)
        if connection.findings:
            self._report_findings(flow, connection)
        if connection.ms17_010.awaiting_answers:
            self._awaiting[id(flow)] = flow
        results = connection.auth.results
        if results:
            ref = connection_ref(flow, connection.source_file)
            for result_ts, status, session in results:
                self._count_alert(connection, self.detector.session_result(ref, result_ts, status, session.get("user")))
            results.clear()

    def _on_tick(self, now: float) -> None:
        """Requests that expected an answer and got none within the answer timeout are findings now."""
        if not self._awaiting:
            return
        horizon = now - self.detector.settings.answer_timeout
        for key, flow in list(self._awaiting.items()):
            connection = flow.owner
            if not isinstance(connection, SmbConnection):
                del self._awaiting[key]
                continue
            connection.ms17_010.expire(horizon)
            if connection.findings:
                self._report_findings(flow, connection)
            if not connection.ms17_010.awaiting_answers:
                del self._awaiting[key]

    @staticmethod
    def _count_alert(connection: SmbConnection, alert: Alert | None) -> None:
        if alert is not None:
            connection.alert_kinds[alert.kind] += 1

    def _observe(self, flow: Flow, connection: SmbConnection, ts: float) -> None:
        """Tell the observers what is new on this connection since the last batch of events."""
        trees = connection.auth.trees
        news = (
            connection.negotiations != connection.negotiations_reported
            or connection.auth.results
            or len(trees) != connection.trees_reported
            or (connection.smb1_used and not connection.smb1_reported)
        )
        if not news:
            return
        endpoints = endpoints_of(flow)
        for observer in self.observers:
            if connection.negotiations != connection.negotiations_reported:
                observer.negotiated(endpoints, connection, ts)
            if connection.smb1_used and not connection.smb1_reported:
                observer.smb1_used(endpoints, connection, ts)
            for result_ts, status, session in connection.auth.results:
                observer.session_setup(endpoints, session, status, result_ts)
            for tree in trees[connection.trees_reported :]:
                observer.tree_connect(endpoints, tree, ts)
        connection.negotiations_reported = connection.negotiations
        connection.trees_reported = len(trees)

    def _report_findings(self, flow: Flow, connection: SmbConnection) -> None:
        ref = connection_ref(flow, connection.source_file)
        users = connection.auth.users()
        for kind, ts, evidence in connection.findings:
            detail = {**evidence, "server_port": flow.server[1]}
            if users and kind in ACTIVITY_FINDING_KINDS and "user" not in detail:
                detail["session_users"] = users  # who the SMB session authenticated as
            for alert in self.detector.finding_alerts(kind, ref, ts, detail):
                self._count_alert(connection, alert)
        connection.findings.clear()

    def _report_smb1(self, flow: Flow, connection: SmbConnection, ts: float) -> None:
        evidence = {
            "dialect": connection.dialect,
            "dialects_offered": connection.dialects_offered[:16],
            "client_port": flow.client[1],
            "server_port": flow.server[1],
            "transport": flow.transport,
        }
        self._count_alert(
            connection, self.detector.smb1_used(connection_ref(flow, connection.source_file), ts, evidence)
        )

    def _on_open(self, client: tuple[bytes, int], server: tuple[bytes, int], ts: float) -> None:
        if server[1] in SMB_PORTS:
            self.detector.connection_attempt(ConnectionRef(client, server, ts, self.source_file), ts)

    def _on_scan_candidate(self, client: tuple[bytes, int], server: tuple[bytes, int], ts: float) -> None:
        """A waiting attempt whose source the scan probation table says needs a look."""
        self.detector.scan_candidate(ConnectionRef(client, server, ts, self.source_file), ts)

    def _on_attempt_end(self, client: tuple[bytes, int], server: tuple[bytes, int], failed: bool) -> None:
        """An attempt of a tracked source that never became a flow (no answer, or reset)."""
        self.detector.attempt_ended(client[0], failed)

    @property
    def connections_without_smb(self) -> int:
        """Connections no SMB crossed: flows, and attempts that never became one."""
        return self._flows_without_smb + self.flows.attempts_ended

    def _on_close(self, flow: Flow, reason: CloseReason) -> None:
        # A failed attempt: no answer (never established) or a reset before any data.
        failed = flow.state is FlowState.OPENING or (
            flow.state is FlowState.RESET and not any(half.bytes_delivered for half in flow.halves)
        )
        self.detector.attempt_ended(flow.client[0], failed)
        connection = flow.owner
        if not isinstance(connection, SmbConnection):
            self._flows_without_smb += 1
            return
        self._awaiting.pop(id(flow), None)
        connection.unanswered_findings()
        connection.uses.end()
        if self.observers and connection.dialect is not None and not connection.negotiations:
            # Only the multi-protocol wildcard was answered: the client never finished the negotiation.
            connection.negotiations = 1
            self._observe(flow, connection, flow.last_ts)
        if connection.findings:
            self._report_findings(flow, connection)
        self.connection_anomalies.update(connection.anomalies)
        self.connection_anomalies.update(connection.auth.cap_anomalies())
        # The flow's own anomalies (out of order, overlaps) are in the flow table's totals already:
        # the record lists them, the totals count them once.
        messages = {
            "smb1": connection.smb1_messages,
            "smb2": connection.smb2_messages,
            "encrypted": connection.encrypted_messages,
            "compressed": connection.compressed_messages,
        }
        self.smb_messages.update(messages)
        if not (any(messages.values()) or connection.netbios_called_name):
            self._flows_without_smb += 1
            return
        record = describe_connection(flow, connection, reason, messages)
        client_ip, server_ip = record["client"]["ip"], record["server"]["ip"]
        # Attack traffic: this connection alerted, or its client attacked this server (or scanned).
        attacks = set(connection.alert_kinds) & ATTACK_ALERT_KINDS
        attacks.update(self.detector.attacks_between(client_ip, server_ip))
        record["attack_alerts"] = sorted(attacks)
        record["smb1_allowed"] = connection.smb1_used and (
            self.detector.smb1_allowed_address(client_ip) or self.detector.smb1_allowed_address(server_ip)
        )
        for sink in self.sinks:
            sink(record)


def describe_connection(
    flow: Flow, connection: SmbConnection, reason: CloseReason, messages: dict[str, int]
) -> ConnectionRecord:
    """The JSON-ready facts of one connection (../shared/DESIGN.md section 4)."""
    to_server, to_client = flow.halves
    netbios = None
    if connection.netbios_called_name is not None:
        netbios = {"called_name": connection.netbios_called_name, "calling_name": connection.netbios_calling_name}
    return {
        "uid": connection_uid(flow.client, flow.server, flow.first_ts),
        "community_id": community_id(flow.client, flow.server),
        "source_file": connection.source_file,
        "client": {"ip": format_ip(flow.client[0]), "port": flow.client[1]},
        "server": {"ip": format_ip(flow.server[0]), "port": flow.server[1]},
        "transport": flow.transport,
        "first_seen": flow.first_ts,
        "last_seen": flow.last_ts,
        "midstream": flow.midstream,
        "end": flow.state.value if reason is CloseReason.CLOSED else reason.value,
        "dialects_offered": list(connection.dialects_offered),
        "smb1_offered": connection.smb1_offered,
        "smb1_used": connection.smb1_used,
        "dialect": connection.dialect,
        "signing_required": connection.signing_required,
        "signing": {
            "client_required": connection.client_signing_required,
            "server_required": connection.server_signing_required,
            "signed_messages": connection.signed_messages,
        },
        "encrypted": connection.encrypted,
        "negotiate": {"client": connection.client_negotiate, "server": connection.server_negotiate},
        "netbios": netbios,
        "sessions": connection.auth.describe_sessions(),
        "trees": list(connection.auth.trees),
        **connection.describe_uses(),
        "files": connection.files.describe(),
        "files_not_listed": connection.files.entries_dropped,
        "directory_listings": connection.files.directory_listings,
        "rpc": connection.rpc.describe(),
        "alerts": dict(sorted(connection.alert_kinds.items())),
        "client_hints": dict(connection.auth.client_hints),
        "server_hints": dict(connection.auth.server_hints),
        "messages": messages,
        "commands": connection.command_counts(),
        "tcp": {
            "bytes_client_to_server": to_server.bytes_delivered,
            "bytes_server_to_client": to_client.bytes_delivered,
            "gaps": to_server.gaps + to_client.gaps,
            "gap_bytes": to_server.gap_bytes + to_client.gap_bytes,
            "retransmitted_bytes": to_server.retransmitted_bytes + to_client.retransmitted_bytes,
        },
        "anomalies": _by_name(connection.anomalies, flow.anomalies or Counter(), connection.auth.cap_anomalies()),
        "anomaly_samples": list(connection.anomaly_samples),
    }


def _by_name(*counters: Counter[AnomalyKind]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for counts in counters:
        for kind, count in counts.items():
            merged[kind.value] = merged.get(kind.value, 0) + count
    return dict(sorted(merged.items()))
