"""The Prometheus metrics of the live sensor: a public contract (README "Metrics").

Two kinds of series. Events the pipeline reports as they happen (negotiations,
session setups, tree connects, SMB1 use, alerts, finished connections) are
prometheus-client counters, safe to increment from the capture thread. What a
connection did after the login (DCE/RPC binds and calls, file actions) is
counted from its record when the pipeline reports the connection, the record's
`rpc` and `files` lists being the only place that activity is summed up. State
of the pipeline (capture statistics, message and anomaly totals, flows, hosts)
is copied into a snapshot by the capture thread (`refresh`) and served from it
by a custom collector, so a scrape never walks a table the capture thread is
changing. The registry is passed in: tests use a fresh `CollectorRegistry`.

Every label value is bounded (enums, dialect names, "unknown"; RPC interfaces and
operations by the generated name table, anything else "other"), and counters
are created at zero for every listed value so `increase()` works from the
first scrape. Per-IP series exist only when the user opts in, capped.
"""

from __future__ import annotations

import platform
import threading
from collections import Counter as CountOf
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dissectors.dcerpc.constants import FaultStatus
from dissectors.dcerpc.interfaces import OPERATIONS
from dissectors.dcerpc.names import interface_name, operation_name
from dissectors.records import AnomalyKind
from monitor.detect import ALERT_KINDS, LOGON_FAILURE_STATUSES, Alert
from monitor.input.capture import InterfaceStatistics
from monitor.output.inventory import Inventory, dialect_order, is_smb2_family
from monitor.pipeline import MESSAGE_PROTOCOLS, ConnectionRecord, Endpoints, Pipeline
from monitor.smb.files import ACTION_ORDER
from monitor.smb.rpc import RESULT_NO_ANSWER, RESULT_OK
from monitor.smb.session import SmbConnection
from monitor.tcp.flows import CloseReason

PREFIX = "smbwatch"
DIALECT_LABELS = ("smb1", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "2.???", "none", "unknown")
HOST_DIALECT_LABELS = ("smb1", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "unknown")
SMB1_OFFER_OUTCOMES = ("smb1", "upgraded", "refused")
AUTH_KINDS = ("ntlmv1", "ntlmv2", "lm", "plaintext", "kerberos", "anonymous", "guest", "unknown")
SESSION_RESULTS = ("success", "logon_failure", "other_failure")
TREE_RESULTS = ("success", "failure")
TRANSPORTS = ("tcp445", "netbios139")
HOST_ROLES = ("client", "server")
# What the server made of a DCE/RPC call: ran it (ok), answered with a non-zero return code (error),
# sent a fault PDU (fault), or never answered before the pipe or the connection ended (no_answer).
RPC_RESULT_CLASSES = ("ok", "error", "fault", "no_answer")
# A bound interface's bind_result in the connection record ([C706] 12.6.3.1 p_cont_def_result_t;
# "rejected" is a bind_nak), and "other" for a result value the spec does not define.
RPC_BIND_RESULTS = ("accepted", "user_rejection", "provider_rejection", "rejected", "no_answer", "other")
# How an accepted bind's own verifier authenticated: the session kinds, or none (no verifier: over a
# named pipe the SMB session's user is the caller, counted in smbwatch_session_setups_total).
RPC_BIND_AUTH_KINDS = (*AUTH_KINDS, "none")
FILE_ACTIONS = ACTION_ORDER  # open, create, overwrite, read, write, rename, delete
# An interface UUID or an operation number the generated table (dissectors.dcerpc.interfaces) lacks.
OTHER = "other"
_FAULT_NAMES = frozenset(status.name for status in FaultStatus)
# [C706] Appendix E: the nca_s_* fault status codes are 0x1C00xxxx and 0x1C01xxxx.
_NCA_STATUS_FIRST, _NCA_STATUS_LAST = 0x1C000000, 0x1C01FFFF
# The opt-in per-host SMB1 series: a sensor on a big network must not grow without bound.
DEFAULT_MAX_HOST_SERIES = 1000


def dialect_label(dialect: str | None) -> str:
    """A negotiated dialect as a bounded label value: SMB1 dialect strings all become "smb1"."""
    if dialect is None:
        return "none"
    if is_smb2_family(dialect):
        return dialect if dialect in DIALECT_LABELS else "unknown"
    if dialect.startswith("unknown"):
        return "unknown"
    return "smb1"


def session_result(status: int) -> str:
    if status == 0:
        return "success"
    return "logon_failure" if status in LOGON_FAILURE_STATUSES else "other_failure"


def rpc_interface_label(uuid: str, version: int) -> str:
    """The interface's name from the generated table, or "other" for a UUID it does not know."""
    name = interface_name(uuid, version)
    return OTHER if name == uuid.lower() else name


def rpc_operation_label(uuid: str, opnum: int) -> str:
    """The operation's name from the generated table, or "other" for an (interface, opnum) it lacks."""
    return operation_name(uuid, opnum) if (uuid.lower(), opnum) in OPERATIONS else OTHER


def rpc_result_class(status: str) -> str:
    """A call's `status` in the connection record (monitor.smb.rpc) as one of RPC_RESULT_CLASSES.

    Fault PDUs carry nca_s_* names (FaultStatus), responses Win32 error or NTSTATUS names. A code
    neither table names reads "unknown-0x…" in both cases: it counts as a fault in the nca range of
    [C706] Appendix E, as an error otherwise.
    """
    if status == RESULT_OK:
        return "ok"
    if status == RESULT_NO_ANSWER:
        return "no_answer"
    if status in _FAULT_NAMES:
        return "fault"
    if status.startswith("unknown-0x"):
        try:
            code = int(status[len("unknown-0x") :], 16)
        except ValueError:
            return "error"
        return "fault" if _NCA_STATUS_FIRST <= code <= _NCA_STATUS_LAST else "error"
    return "error"


def rpc_bind_auth(auth: dict[str, Any] | None) -> str:
    """The `auth` label of an accepted bind: its NTLMSSP kind, kerberos, none, or unknown."""
    if not auth:
        return "none"
    ntlm = auth.get("ntlm")
    if ntlm is not None:
        return ntlm if ntlm in AUTH_KINDS else "unknown"
    return "kerberos" if "realm" in auth else "unknown"


def rpc_bind_result(result: str) -> str:
    return result if result in RPC_BIND_RESULTS else OTHER


@dataclass(slots=True)
class Snapshot:
    interfaces: dict[str, InterfaceStatistics] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    gap_bytes: int = 0
    flows_active: int = 0
    flows_opened: int = 0
    flows_closed: dict[str, int] = field(default_factory=dict)
    # Sources the scan detector let go: overwritten in a probation slot, or pushed out of the tracked table.
    scan_sources_evicted: dict[str, int] = field(default_factory=dict)
    hosts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    smb1_hosts: list[tuple[str, str]] = field(default_factory=list)
    smb1_host_series_dropped: int = 0  # SMB1 host series past max_host_series in this snapshot
    last_packet_ts: float = 0.0


class SensorMetrics:
    """Counters fed by the pipeline's observers and sinks, and the snapshot collector.

    Register it as a pipeline observer, a connection sink and a detector alert sink.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        version: str,
        host_series: bool = False,
        max_host_series: int = DEFAULT_MAX_HOST_SERIES,
        process_metrics: bool = True,
    ) -> None:
        # The `_created` companion of each counter is not in the contract and doubles the series count.
        disable_created_metrics()
        self.registry = registry
        self.host_series = host_series
        self.max_host_series = max_host_series
        # The most smbwatch_smb1_host_info series ever left out at once: `host_series_full`.
        self._most_host_series_dropped = 0
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        build = Gauge(f"{PREFIX}_build_info", "smbwatch version (value 1)", ["version", "python"], registry=registry)
        build.labels(version, platform.python_version()).set(1)
        self.negotiations = Counter(
            f"{PREFIX}_negotiations",
            "Finished NEGOTIATE exchanges by negotiated dialect",
            ["dialect"],
            registry=registry,
        )
        self.smb1_offers = Counter(
            f"{PREFIX}_smb1_offers",
            "Connections whose client offered SMB1 dialects, by what the server chose",
            ["outcome"],
            registry=registry,
        )
        self.smb1_connections = Counter(
            f"{PREFIX}_smb1_connections",
            "Connections that used SMB1 (an SMB1 dialect selected or an SMB1 command beyond an upgraded negotiate)",
            registry=registry,
        )
        self.session_setups = Counter(
            f"{PREFIX}_session_setups",
            "Finished SESSION_SETUP exchanges by authentication kind and result",
            ["auth", "result"],
            registry=registry,
        )
        self.tree_connects = Counter(
            f"{PREFIX}_tree_connects", "Finished TREE_CONNECT exchanges by result", ["result"], registry=registry
        )
        self.alerts = Counter(f"{PREFIX}_alerts", "Alerts raised, by kind", ["kind"], registry=registry)
        self.connections = Counter(
            f"{PREFIX}_connections",
            "Finished connections that carried SMB, by transport",
            ["transport"],
            registry=registry,
        )
        for value in DIALECT_LABELS:
            self.negotiations.labels(value)
        for value in SMB1_OFFER_OUTCOMES:
            self.smb1_offers.labels(value)
        for auth in AUTH_KINDS:
            for result in SESSION_RESULTS:
                self.session_setups.labels(auth, result)
        for value in TREE_RESULTS:
            self.tree_connects.labels(value)
        self.rpc_calls = Counter(
            f"{PREFIX}_rpc_calls",
            "DCE/RPC calls over named pipes by interface, operation and what the server made of them, "
            "counted when their connection ends",
            ["interface", "operation", "result_class"],
            registry=registry,
        )
        self.rpc_binds = Counter(
            f"{PREFIX}_rpc_binds",
            "DCE/RPC interfaces bound on a named pipe (once per pipe and interface per connection), by the "
            "bind's answer, counted when their connection ends",
            ["interface", "result"],
            registry=registry,
        )
        self.rpc_bind_auth = Counter(
            f"{PREFIX}_rpc_bind_auth",
            "Accepted DCE/RPC binds on named pipes by how their own verifier authenticated (as SMB sessions "
            "are counted by auth kind; none: no verifier, the SMB session's user calls), counted when their "
            "connection ends",
            ["auth"],
            registry=registry,
        )
        self.file_actions = Counter(
            f"{PREFIX}_file_actions",
            "File opens by what was done through them (how the open ended: open, create, overwrite; then "
            "read, write, rename, delete, each counted once per open), counted when their connection ends",
            ["action"],
            registry=registry,
        )
        for value in ALERT_KINDS:
            self.alerts.labels(value)
        for value in TRANSPORTS:
            self.connections.labels(value)
        # Named interfaces and operations appear when first seen: all of the table's would be ~3,800 series.
        for value in RPC_RESULT_CLASSES:
            self.rpc_calls.labels(OTHER, OTHER, value)
        for value in RPC_BIND_RESULTS:
            self.rpc_binds.labels(OTHER, value)
        for value in FILE_ACTIONS:
            self.file_actions.labels(value)
        for value in RPC_BIND_AUTH_KINDS:
            self.rpc_bind_auth.labels(value)
        registry.register(_SnapshotCollector(self))
        if process_metrics:
            ProcessCollector(registry=registry)

    # --- pipeline observer ---------------------------------------------------------------

    def negotiated(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        label = dialect_label(connection.dialect)
        self.negotiations.labels(label).inc()
        if connection.smb1_offered:
            outcome = "smb1" if label == "smb1" else "refused" if label == "none" else "upgraded"
            self.smb1_offers.labels(outcome).inc()

    def smb1_used(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        self.smb1_connections.inc()

    def session_setup(self, endpoints: Endpoints, session: dict[str, Any], status: int, ts: float) -> None:
        auth = session.get("auth")
        self.session_setups.labels(auth if auth in AUTH_KINDS else "unknown", session_result(status)).inc()

    def tree_connect(self, endpoints: Endpoints, tree: dict[str, Any], ts: float) -> None:
        self.tree_connects.labels("success" if tree.get("status") == "STATUS_SUCCESS" else "failure").inc()

    # --- sinks ---------------------------------------------------------------------------

    def alert(self, alert: Alert) -> None:
        self.alerts.labels(alert.kind if alert.kind in ALERT_KINDS else "unknown").inc()

    def connection_closed(self, record: ConnectionRecord) -> None:
        transport = record["transport"]
        self.connections.labels(transport if transport in TRANSPORTS else "tcp445").inc()
        self._count_activity(record)

    def _count_activity(self, record: ConnectionRecord) -> None:
        """The connection's `rpc` and `files` lists (capped per connection, like the record itself)."""
        for bound in record.get("rpc") or ():
            uuid, version = bound["uuid"], bound["version"]
            interface = rpc_interface_label(uuid, version)
            self.rpc_binds.labels(interface, rpc_bind_result(bound["bind_result"])).inc()
            if bound["bind_result"] == "accepted":
                self.rpc_bind_auth.labels(rpc_bind_auth(bound.get("auth"))).inc()
            for call in bound["calls"]:
                operation = rpc_operation_label(uuid, call["opnum"]) if interface != OTHER else OTHER
                self.rpc_calls.labels(interface, operation, rpc_result_class(call["status"])).inc(call["count"])
        actions: CountOf[str] = CountOf()
        for entry in record.get("files") or ():
            actions.update(entry["actions"])
        for action, count in actions.items():
            if action in FILE_ACTIONS:
                self.file_actions.labels(action).inc(count)

    # --- snapshot --------------------------------------------------------------------------

    def refresh(
        self,
        pipeline: Pipeline,
        inventory: Inventory | None,
        interfaces: Mapping[str, InterfaceStatistics],
        last_packet_ts: float,
        include_hosts: bool = True,
    ) -> None:
        """Copy the pipeline's state for the next scrapes; call it from the thread that runs the pipeline,
        between frames. Counting hosts walks the whole host table (0.3 s at 100,000 hosts), so a caller
        may leave it out and keep the last counts."""
        messages: CountOf[str] = CountOf(pipeline.smb_messages)
        for flow in pipeline.flows.flows():
            connection = flow.owner
            if isinstance(connection, SmbConnection):
                messages["smb1"] += connection.smb1_messages
                messages["smb2"] += connection.smb2_messages
                messages["encrypted"] += connection.encrypted_messages
                messages["compressed"] += connection.compressed_messages
        flows = pipeline.flows
        snapshot = Snapshot(
            interfaces={name: replace(counts) for name, counts in interfaces.items()},
            messages={protocol: messages[protocol] for protocol in MESSAGE_PROTOCOLS},
            # The host inventory's caps and dropped hints count too (hosts_full, implausible_host_hint).
            anomalies={
                kind.value: count
                for kind, count in (pipeline.anomalies() + (inventory.anomalies() if inventory else Counter())).items()
            },
            gaps=flows.gaps,
            gap_bytes=flows.gap_bytes,
            flows_active=len(flows),
            flows_opened=flows.created,
            flows_closed={reason.value: count for reason, count in flows.closed.items()},
            scan_sources_evicted={
                "probation": pipeline.detector.scan_sources_displaced,
                "tracked": pipeline.detector.scan_sources_forgotten,
            },
            last_packet_ts=last_packet_ts,
        )
        if inventory is not None and include_hosts:
            snapshot.hosts, snapshot.smb1_hosts, dropped = _host_counts(inventory, self.max_host_series)
            snapshot.smb1_host_series_dropped = dropped if self.host_series else 0
        else:
            previous = self.snapshot()
            snapshot.hosts, snapshot.smb1_hosts = previous.hosts, previous.smb1_hosts
            snapshot.smb1_host_series_dropped = previous.smb1_host_series_dropped
        # A host can leave the SMB1 series (a dialect newer than SMB1 seen later), so the number
        # left out can fall: the gauge has it; the counter keeps the most ever left out at once,
        # set (not added) at each snapshot so a scrape counts each series left out once.
        self._most_host_series_dropped = max(self._most_host_series_dropped, snapshot.smb1_host_series_dropped)
        if self._most_host_series_dropped:
            snapshot.anomalies[AnomalyKind.HOST_SERIES_FULL.value] = self._most_host_series_dropped
        with self._lock:
            self._snapshot = snapshot

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot


def _host_dialect(dialects: Iterable[str]) -> str:
    known = list(dialects)
    if not known:
        return "unknown"
    label = dialect_label(max(known, key=dialect_order))
    return label if label in HOST_DIALECT_LABELS else "unknown"


def _host_counts(
    inventory: Inventory, max_smb1_series: int
) -> tuple[dict[tuple[str, str, str], int], list[tuple[str, str]], int]:
    """Hosts by role, highest dialect and SMB1 use; the first SMB1 (ip, role) series; how many more."""
    counts: CountOf[tuple[str, str, str]] = CountOf()
    smb1_hosts: list[tuple[str, str]] = []
    dropped = 0
    for facts in list(inventory.hosts.values()):
        for role, dialects, connections in (
            ("client", facts.dialects_as_client, facts.connections_as_client),
            ("server", facts.dialects_as_server, facts.connections_as_server),
        ):
            if not (connections or dialects):
                continue
            smb1 = any(dialect_label(d) == "smb1" for d in dialects) or (facts.smb1 and not dialects)
            counts[role, _host_dialect(dialects), "true" if smb1 else "false"] += 1
            if smb1:
                if len(smb1_hosts) < max_smb1_series:
                    smb1_hosts.append((facts.ip, role))
                else:
                    dropped += 1
    return dict(counts), smb1_hosts, dropped


class _SnapshotCollector(Collector):
    """Serves the last snapshot; a scrape never touches the pipeline itself."""

    def __init__(self, metrics: SensorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        snapshot = self._metrics.snapshot()
        name = PREFIX
        families = {
            "packets": CounterMetricFamily(f"{name}_capture_packets", "Frames received", labels=["interface"]),
            "bytes": CounterMetricFamily(f"{name}_capture_bytes", "Bytes of frames received", labels=["interface"]),
            "kernel_packets": CounterMetricFamily(
                f"{name}_capture_kernel_packets", "Frames the kernel saw for the capture socket", labels=["interface"]
            ),
            "kernel_drops": CounterMetricFamily(
                f"{name}_capture_kernel_drops", "Frames the kernel dropped (ring full)", labels=["interface"]
            ),
        }
        for interface, counts in sorted(snapshot.interfaces.items()):
            for key, family in families.items():
                family.add_metric([interface], getattr(counts, key))
        yield from families.values()
        messages = CounterMetricFamily(f"{name}_smb_messages", "SMB messages by protocol", labels=["protocol"])
        for protocol in MESSAGE_PROTOCOLS:
            messages.add_metric([protocol], snapshot.messages.get(protocol, 0))
        yield messages
        anomalies = CounterMetricFamily(f"{name}_anomalies", "Anomalies by kind", labels=["kind"])
        for kind in AnomalyKind:
            anomalies.add_metric([kind.value], snapshot.anomalies.get(kind.value, 0))
        yield anomalies
        yield CounterMetricFamily(f"{name}_reassembly_gaps", "TCP gaps (bytes never captured)", value=snapshot.gaps)
        yield CounterMetricFamily(f"{name}_reassembly_gap_bytes", "Bytes lost in TCP gaps", value=snapshot.gap_bytes)
        yield GaugeMetricFamily(f"{name}_flows_active", "TCP flows in the flow table", value=snapshot.flows_active)
        yield CounterMetricFamily(f"{name}_flows_opened", "TCP flows created", value=snapshot.flows_opened)
        evicted = CounterMetricFamily(
            f"{name}_flows_evicted", "TCP flows that left the table, by why", labels=["reason"]
        )
        for reason in CloseReason:
            evicted.add_metric([reason.value], snapshot.flows_closed.get(reason.value, 0))
        yield evicted
        scan = CounterMetricFamily(
            f"{name}_scan_sources_evicted",
            "Sources the scan detector let go: overwritten on probation (one destination), or out of the tracked table",
            labels=["table"],
        )
        for table in ("probation", "tracked"):
            scan.add_metric([table], snapshot.scan_sources_evicted.get(table, 0))
        yield scan
        hosts = GaugeMetricFamily(
            f"{name}_hosts",
            "Hosts seen in SMB by role, highest negotiated dialect and SMB1 use",
            labels=["role", "highest_dialect", "smb1"],
        )
        for role in HOST_ROLES:
            for dialect in HOST_DIALECT_LABELS:
                for smb1 in ("true", "false"):
                    hosts.add_metric([role, dialect, smb1], snapshot.hosts.get((role, dialect, smb1), 0))
        yield hosts
        yield GaugeMetricFamily(
            f"{name}_last_packet_timestamp_seconds",
            "Capture time of the newest packet",
            value=snapshot.last_packet_ts,
        )
        if self._metrics.host_series:
            info = GaugeMetricFamily(
                f"{name}_smb1_host_info", "Hosts that used SMB1 (opt-in, capped)", labels=["ip", "role"]
            )
            for ip, role in snapshot.smb1_hosts:
                info.add_metric([ip, role], 1)
            yield info
            yield GaugeMetricFamily(
                f"{name}_smb1_host_series_dropped",
                "SMB1 hosts (ip, role) left out of smbwatch_smb1_host_info by max_host_series",
                value=snapshot.smb1_host_series_dropped,
            )
