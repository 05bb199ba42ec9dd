"""Offline analysis output: the JSON document (a public contract) and the readable tables."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from dissectors.records import AnomalyKind
from dissectors.text import printable
from monitor.detect import Alert
from monitor.input.capture import CaptureError, CaptureFile
from monitor.output.inventory import Inventory
from monitor.output.retirement import STATUS_ORDER, offered_but_upgraded, smb1_retirement
from monitor.pipeline import MESSAGE_PROTOCOLS, ConnectionRecord, Pipeline
from monitor.smb.files import ACTION_ORDER

ANALYSIS_SCHEMA = "smbwatch.analysis/1"
# /2: pairs carry `uses` and a `status`; hosts whose only SMB1 was refused are in; the attack-only
# pairs are no longer "breaks"; the document gains `summary` and `offered_but_upgraded`.
SMB1_REPORT_SCHEMA = "smbwatch.smb1-retirement/2"


@dataclass(slots=True)
class SourceResult:
    """One input file: what was read from it and, if it broke, where."""

    capture: CaptureFile
    error: CaptureError | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.capture.name,
            "format": self.capture.format or None,
            "frames": self.capture.frames,
            "linktypes": sorted(self.capture.linktypes),
            "error": str(self.error) if self.error else None,
            "error_offset": self.error.offset if self.error else None,
            "error_stream_offset": self.error.stream_offset if self.error else None,
        }


@dataclass(slots=True)
class Analysis:
    pipeline: Pipeline
    inventory: Inventory
    sources: list[SourceResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(source.error for source in self.sources)


def _stats(analysis: Analysis) -> dict[str, Any]:
    pipeline = analysis.pipeline
    anomalies: Counter[AnomalyKind] = pipeline.anomalies() + analysis.inventory.anomalies()
    interface_drops = [drops for source in analysis.sources for drops in source.capture.interface_drops.values()]
    flows = pipeline.flows
    return {
        "packets": pipeline.packets,
        "smb_packets": pipeline.smb_packets,
        "skipped_packets": dict(sorted(pipeline.decoder.skipped.items())),
        "unsupported_linktypes": {str(k): v for k, v in sorted(pipeline.decoder.unsupported_linktypes.items())},
        "smb_messages": {name: pipeline.smb_messages[name] for name in MESSAGE_PROTOCOLS},
        "anomalies": {kind.value: count for kind, count in sorted(anomalies.items(), key=lambda kv: kv[0].value)},
        "reassembly_gaps": flows.gaps,
        "reassembly_gap_bytes": flows.gap_bytes,
        "capture_drops": sum(interface_drops) if interface_drops else None,
        "flows": {
            "created": flows.created,
            "closed": {
                reason.value: count for reason, count in sorted(flows.closed.items(), key=lambda kv: kv[0].value)
            },
            "without_smb": pipeline.connections_without_smb,
            # Attempts that saw only a SYN are kept compactly until answered (FlowLimits.max_half_open).
            "half_open": {
                "waiting": flows.half_open,
                "promoted": flows.half_open_promoted,
                "evicted": flows.half_open_evicted,
            },
        },
        "connections_not_listed": analysis.inventory.records_dropped,
        "hosts_not_listed": analysis.inventory.hosts_not_listed,
        "alerts": dict(sorted(pipeline.detector.counts.items())),
        "smb1_allowed_connections": pipeline.detector.smb1_allowed,
        "empty_user_logon_failures": pipeline.detector.empty_user_logon_failures,
        "detector_pairs_evicted": dict(sorted(pipeline.detector.pairs_evicted.items())),
        "scan_sources": {
            "tracked": pipeline.detector.scan_sources_tracked,
            "evicted_from_probation": pipeline.detector.scan_sources_displaced,
            "evicted_from_tracked": pipeline.detector.scan_sources_forgotten,
        },
        "alerts_not_listed": pipeline.detector.alerts_dropped,
        "files": [source.describe() for source in analysis.sources],
    }


def _sorted_alerts(analysis: Analysis) -> list[Alert]:
    return sorted(analysis.pipeline.detector.alerts, key=lambda alert: alert.ts)


def _alerts(analysis: Analysis) -> list[dict[str, Any]]:
    return [alert.describe() for alert in _sorted_alerts(analysis)]


def _hosts(analysis: Analysis) -> list[dict[str, Any]]:
    """Every host's facts; hosts that used SMB1 carry their retirement entry, the others null."""
    return list(_iter_hosts(analysis))


def _iter_hosts(analysis: Analysis) -> Iterator[dict[str, Any]]:
    retirement = smb1_retirement(analysis.inventory, analysis.pipeline.detector)
    for host in analysis.inventory.iter_described_hosts():
        host["smb1_retirement"] = retirement.get(host["ip"])
        yield host


def build_document(analysis: Analysis) -> dict[str, Any]:
    """The `smbwatch.analysis/1` document (../shared/DESIGN.md section 4), all in memory."""
    return {
        "schema": ANALYSIS_SCHEMA,
        "connections": list(analysis.inventory.connections),
        "hosts": _hosts(analysis),
        "alerts": _alerts(analysis),
        "stats": _stats(analysis),
    }


def write_json(analysis: Analysis, out: TextIO) -> None:
    """The same document as `build_document`, streamed: connection records go from the log
    to `out` one per line, so memory does not grow with their number."""
    out.write(f'{{"schema":{json.dumps(ANALYSIS_SCHEMA)},\n"connections":[')
    separator = "\n"
    for line in analysis.inventory.connections.json_lines():
        out.write(separator)
        out.write(line.decode())
        separator = ",\n"
    out.write("\n],\n")
    # Hosts and alerts one per line too: a flood of 100,000 clients must not become one string.
    for key, items in (("hosts", _iter_hosts(analysis)), ("alerts", map(Alert.describe, _sorted_alerts(analysis)))):
        out.write(f'"{key}":[')
        separator = "\n"
        for item in items:
            out.write(separator)
            out.write(json.dumps(item, separators=(",", ":")))
            separator = ",\n"
        out.write("\n],\n")
    out.write(f'"stats":{json.dumps(_stats(analysis), indent=1)}\n}}\n')


def _endpoint(endpoint: dict[str, Any]) -> str:
    ip = endpoint["ip"]
    return f"[{ip}]:{endpoint['port']}" if ":" in ip else f"{ip}:{endpoint['port']}"


# What the tables' placeholders mean, printed once above them.
LEGEND = "(? = not seen or unknown, - = none)"
# Distinct rows the sessions table folds identical sessions into; sessions beyond are counted, not listed
# (the JSON lists every one). 10,000 rows is more than a person reads and keeps a 100,000-client flood
# under 200 MiB.
MAX_SESSION_ROWS = 10_000


def format_time(ts: float, local_time: bool = False) -> str:
    """ISO 8601 with microseconds: UTC with a Z (2018-05-01T00:10:54.078881Z), or local time with its
    offset. A stamp no calendar can show (a corrupt capture's) is given in seconds."""
    try:
        if local_time:
            return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="microseconds")
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _signing_column(required: bool | None) -> str:
    return "?" if required is None else "required" if required else "not required"


def _smb1_column(record: ConnectionRecord) -> str:
    if record["smb1_used"]:
        return "USED"
    return "offered" if record["smb1_offered"] else "-"


def _dialect_column(record: ConnectionRecord) -> str:
    """The dialect; without one, "midstream" for a connection picked up after its NEGOTIATE."""
    if record["dialect"]:
        return printable(record["dialect"])
    return "midstream" if record.get("midstream") else "?"


def _table(headers: list[str], rows: Callable[[], Iterator[list[str]]], out: TextIO) -> None:
    """Aligned columns; `rows` is called twice (widths, then output) so rows need not be held in memory."""
    widths = [len(header) for header in headers]
    for row in rows():
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    out.write("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in rows():
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def _connection_row(c: ConnectionRecord) -> list[str]:
    return [
        f"{_endpoint(c['client'])} -> {_endpoint(c['server'])}",
        c["transport"],
        _dialect_column(c),
        _smb1_column(c),
        _signing_column(c["signing_required"]),
        _yes_no(c["encrypted"]),
        str(c["messages"]["smb1"] + c["messages"]["smb2"] + c["messages"]["encrypted"]),
    ]


def _activity_rows(c: ConnectionRecord) -> Iterator[list[str]]:
    """One row per connection that touched files or called DCE/RPC: counts by action and the
    operations per interface, never one line per READ (the JSON has every file and call)."""
    files = c.get("files") or []
    rpc = c.get("rpc") or []
    if not files and not rpc:
        return
    actions: Counter[str] = Counter(action for entry in files for action in entry["actions"])
    file_text = ", ".join(f"{action} {actions[action]}" for action in ACTION_ORDER if actions[action])
    if c.get("files_not_listed"):
        file_text += f" (+{c['files_not_listed']} files not listed)"
    interfaces = []
    for entry in rpc:
        calls = ", ".join(
            f"{call['operation']}"
            + (f" x{call['count']}" if call["count"] > 1 else "")
            + ("" if call["status"] == "ok" else f" [{call['status']}]")
            for call in entry["calls"]
        )
        bind = "" if entry["bind_result"] == "accepted" else f" (bind {entry['bind_result']})"
        auth = entry.get("auth") or {}
        if auth.get("user"):  # the RPC verifier's own NTLM user (over a pipe the SMB session's is in Sessions)
            domain = auth.get("domain")
            bind += f" as {domain}\\{auth['user']}" if domain else f" as {auth['user']}"
        interfaces.append(f"{entry['interface']}{bind}: {calls or '-'}")
    yield [
        f"{_endpoint(c['client'])} -> {_endpoint(c['server'])}",
        printable(file_text) or "-",
        printable("; ".join(interfaces)) or "-",
    ]


def _user_column(session: dict[str, Any]) -> str:
    """user@domain; for Kerberos, whose client principal is encrypted, the realm and the service asked for."""
    user = session["user"]
    if not user and session["auth"] == "kerberos":
        kerberos = session.get("kerberos") or {}
        return f"?@{kerberos.get('realm') or '?'} for {kerberos.get('service_principal') or '?'}"
    if user is None:
        return "?"
    if not user:
        return "-"
    return f"{user}@{session['domain']}" if session["domain"] else user


def _session_row(c: ConnectionRecord, session: dict[str, Any]) -> list[str]:
    """One session, without the client's port, so the sessions of a client's many connections fold."""
    shares = [(path or "?").rsplit("\\", 1)[-1] for path in session.get("trees", ())]
    workstation = session["workstation"]
    return [
        f"{printable(c['client']['ip'])} -> {_endpoint(c['server'])}",
        printable(_user_column(session)),
        "?" if workstation is None else printable(workstation) or "-",
        session["auth"],
        (session["status"] or "in progress").removeprefix("STATUS_"),
        printable(", ".join(shares)) or "-",
    ]


def _evidence_value(value: Any) -> str:
    """One value of alert evidence, printable; quoted (logfmt style) where it has spaces, commas, '=' or
    quotes, or is empty, so every pair reads back unambiguously."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ";".join(f"{key}={_evidence_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ",".join(_evidence_value(item) for item in value)
    text = printable(str(value))
    if isinstance(value, float) and text.endswith(".0"):
        text = text[:-2]
    if not text or any(char in text for char in ' ,="'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _evidence_pairs(detail: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in detail.items():
        name = f"{prefix}{printable(str(key))}"
        if value is None or (isinstance(value, list | tuple | dict | str) and not value):
            continue
        if isinstance(value, dict):
            yield from _evidence_pairs(value, name + ".")
        else:
            yield f"{name}={_evidence_value(value)}"


def alert_evidence(detail: dict[str, Any]) -> str:
    """An alert's evidence as `key=value` pairs: lists joined with commas, nested dicts as `a.b=value`,
    empty values left out, every character printable."""
    return " ".join(_evidence_pairs(detail))


@dataclass(slots=True)
class _ConnectionSummary:
    """What the tables need from one pass over the connection records: the sessions folded into
    identical rows, and per host and role whether every connection was picked up midstream."""

    session_rows: dict[tuple[str, ...], int] = field(default_factory=dict)
    sessions: int = 0
    sessions_not_listed: int = 0
    # (ip, "client" or "server") of connections that showed no dialect, picked up midstream or not: a
    # host without a dialect in a role is "midstream" there when all its connections were. Only
    # dialect-less connections are kept, so a flood of hosts that negotiated costs nothing here.
    midstream_without_dialect: set[tuple[str, str]] = field(default_factory=set)
    plain_without_dialect: set[tuple[str, str]] = field(default_factory=set)

    def midstream_only(self, ip: str, role: str) -> bool:
        """Every connection of `ip` in `role` was picked up midstream and never showed a dialect."""
        key = (ip, role)
        return key in self.midstream_without_dialect and key not in self.plain_without_dialect

    def add(self, record: ConnectionRecord) -> None:
        for session in record["sessions"]:
            self.sessions += 1
            row = tuple(_session_row(record, session))
            if row in self.session_rows:
                self.session_rows[row] += 1
            elif len(self.session_rows) < MAX_SESSION_ROWS:
                self.session_rows[row] = 1
            else:
                self.sessions_not_listed += 1
        if record["dialect"] is None:
            keys = self.midstream_without_dialect if record.get("midstream") else self.plain_without_dialect
            keys.add((record["client"]["ip"], "client"))
            keys.add((record["server"]["ip"], "server"))


def _host_dialects(host: dict[str, Any], role: str, summary: _ConnectionSummary) -> str:
    dialects = host[f"dialects_as_{role}"]
    if dialects:
        return ", ".join(printable(d) for d in dialects)
    if role not in host["roles"]:
        return "-"
    return "midstream" if summary.midstream_only(host["ip"], role) else "?"


def _alerts_by_source(alerts: list[dict[str, Any]]) -> list[list[str]]:
    """Per source host: its alerts counted by kind, the busiest source first."""
    kinds: dict[str, Counter[str]] = {}
    for alert in alerts:
        kinds.setdefault(alert["src"], Counter())[alert["kind"]] += 1
    ordered = sorted(kinds.items(), key=lambda item: (-item[1].total(), item[0]))
    return [
        [printable(source), ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))]
        for source, counts in ordered
    ]


def write_table(analysis: Analysis, out: TextIO, local_time: bool = False) -> None:
    """The readable report: connections, sessions (identical ones folded), alerts (by source host, then
    one by one), hosts and totals. Times are ISO 8601, UTC unless `local_time`."""
    connections = analysis.inventory.connections
    summary = _ConnectionSummary()
    for record in connections:
        summary.add(record)
    out.write(LEGEND + "\n\n")
    out.write(f"SMB connections ({len(connections)})\n")
    _table(
        ["CLIENT -> SERVER", "TRANSPORT", "DIALECT", "SMB1", "SIGNING", "ENCRYPTED", "MESSAGES"],
        lambda: (_connection_row(c) for c in connections),
        out,
    )

    session_rows = [[*row, f"x{count}" if count > 1 else ""] for row, count in summary.session_rows.items()]
    rows = len(session_rows)
    folded = f", in {rows} row{'s' if rows != 1 else ''}" if rows < summary.sessions else ""
    out.write(f"\nSessions ({summary.sessions}{folded})\n")
    _table(["CLIENT -> SERVER", "USER", "FROM", "AUTH", "RESULT", "SHARES", "COUNT"], lambda: iter(session_rows), out)
    if summary.sessions_not_listed:
        out.write(f"{summary.sessions_not_listed} more sessions not listed (row cap); the JSON output has them\n")
    activity_rows = [row for c in connections for row in _activity_rows(c)]
    if activity_rows:
        plural = "s" if len(activity_rows) != 1 else ""
        out.write(f"\nActivity ({len(activity_rows)} connection{plural} with files or DCE/RPC)\n")
        _table(
            ["CLIENT -> SERVER", "FILES BY ACTION", "DCE/RPC INTERFACES: OPERATIONS"], lambda: iter(activity_rows), out
        )
    alerts = _alerts(analysis)
    out.write(f"\nAlerts ({len(alerts)})\n")
    if alerts:
        by_source = _alerts_by_source(alerts)
        _table(["SOURCE", "ALERTS BY KIND"], lambda: iter(by_source), out)
        out.write("\n")
    alert_rows = [
        [
            a["kind"],
            format_time(a["ts"], local_time),
            f"{printable(a['src'])} -> {printable(a['dst'])}",
            alert_evidence(a["detail"]),
        ]
        for a in alerts
    ]
    _table(["KIND", "TIME", "SOURCE -> DESTINATION", "EVIDENCE"], lambda: iter(alert_rows), out)
    out.write(f"\nHosts ({len(analysis.inventory.hosts)})\n")

    def host_rows() -> Iterator[list[str]]:
        # Described one at a time, twice (widths, then output): 100,000 hosts are never a list.
        for h in analysis.inventory.iter_described_hosts():
            yield [
                h["ip"],
                "+".join(h["roles"]),
                _host_dialects(h, "client", summary),
                _host_dialects(h, "server", summary),
                "USED" if h["smb1"] else ("offered" if h["smb1_offered"] else "-"),
            ]

    _table(["HOST", "ROLES", "AS CLIENT", "AS SERVER", "SMB1"], host_rows, out)
    stats = _stats(analysis)
    messages = stats["smb_messages"]
    out.write(
        f"\n{stats['packets']} packets, {stats['smb_packets']} on SMB ports; SMB messages: "
        f"{messages['smb1']} SMB1, {messages['smb2']} SMB2, {messages['encrypted']} encrypted, "
        f"{messages['compressed']} compressed; {stats['reassembly_gaps']} reassembly gaps\n"
    )
    if stats["anomalies"]:
        out.write("anomalies: " + ", ".join(f"{kind} {count}" for kind, count in stats["anomalies"].items()) + "\n")
    if stats["hosts_not_listed"]:
        out.write(f"{stats['hosts_not_listed']} more hosts, counted but not listed (host cap, --max-hosts)\n")
    if stats["connections_not_listed"]:
        out.write(f"{stats['connections_not_listed']} connections not listed (record cap); hosts include them\n")


def build_smb1_report(analysis: Analysis) -> dict[str, Any]:
    """`--report smb1 --format json`: the hosts in SMB1 pairs, each with its retirement entry; pairs
    counted by status; the clients that offered SMB1 but were upgraded."""
    hosts = [host for host in _hosts(analysis) if host["smb1_retirement"] is not None]
    summary = dict.fromkeys(STATUS_ORDER, 0)
    for host in hosts:
        for pair in host["smb1_retirement"]["pairs"]:
            if pair["role"] == "client":  # each pair appears under both hosts: count it once
                summary[pair["status"]] += 1
    return {
        "schema": SMB1_REPORT_SCHEMA,
        "summary": {"pairs_by_status": summary, "hosts": len(hosts)},
        "hosts": hosts,
        "offered_but_upgraded": offered_but_upgraded(analysis.inventory),
    }


# How the table report names each status, in the order it lists them.
STATUS_HEADINGS = {
    "breaks": "BREAKS if SMB1 is disabled",
    "already_failing": "Already failing (the server refuses SMB1)",
    "unknown": "Unknown (the negotiation was not captured)",
    "safe": "Safe to disable (every use works over SMB2/3)",
    "attack_only": "Attack traffic only (not a dependency: investigate instead)",
}


def write_smb1_table(analysis: Analysis, out: TextIO) -> None:
    """`--report smb1`: SMB1 pairs grouped by status (what breaks first, attack traffic apart), then
    the hosts with their dialects and OS hints, then the clients whose SMB1 offer can simply go."""
    report = build_smb1_report(analysis)
    hosts = report["hosts"]
    counts = report["summary"]["pairs_by_status"]
    out.write(
        f"SMB1 retirement report: {len(hosts)} hosts in {sum(counts.values())} SMB1 client/server pairs: "
        + ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER)
        + "\n(OS hints are guesses from what each host sent; a host may claim anything)\n"
    )
    pairs = [(host, pair) for host in hosts for pair in host["smb1_retirement"]["pairs"] if pair["role"] == "client"]
    for status in STATUS_ORDER:
        rows = [
            [
                f"{host['ip']} -> {pair['peer']}",
                str(pair["connections"]),
                printable(", ".join(pair["smb1_dialects"])) or "-",
                printable(", ".join(_use_label(pair, use) for use in pair["uses"])),
                "allowed" if pair["allowed"] else "",
                printable(pair["reason"]),
            ]
            for host, pair in pairs
            if pair["status"] == status
        ]
        if not rows:
            continue
        out.write(f"\n{STATUS_HEADINGS[status]} ({len(rows)})\n")
        _table(["CLIENT -> SERVER", "CONNS", "SMB1 DIALECT", "USES", "", "WHY"], lambda rows=rows: iter(rows), out)
    out.write("\nHosts\n")
    host_rows = []
    for host in hosts:
        entry = host["smb1_retirement"]
        hint = entry["os_hint"]
        hint_text = "-"
        if hint:
            hint_text = printable(hint["hint"]) + (" (from attack traffic)" if hint["from_attack_traffic"] else "")
        host_rows.append(
            [
                host["ip"] + (" (allowed)" if entry["allowed"] else ""),
                "+".join(host["roles"]),
                printable(entry["highest_dialect_offered"] or "-"),
                printable(entry["highest_dialect_accepted"] or "-"),
                hint_text,
                printable(", ".join(host["names"][:3])) or "-",
            ]
        )
    _table(["HOST", "ROLES", "OFFERED UP TO", "ACCEPTED UP TO", "OS HINT", "NAMES"], lambda: iter(host_rows), out)
    if any(host["smb1_retirement"]["pairs_capped"] for host in hosts):
        out.write("  (SMB1 pair list capped: some pairs not shown)\n")
    upgraded = report["offered_but_upgraded"]
    if upgraded:
        out.write(f"\nOffered SMB1 but upgraded to SMB2/3 ({len(upgraded)}): their SMB1 client side can be removed\n")
        rows = [
            [
                entry["client"],
                str(entry["connections"]),
                ", ".join(entry["dialects"]),
                ", ".join(entry["servers"]) + (", ..." if entry["servers_capped"] else ""),
            ]
            for entry in upgraded
        ]
        _table(["CLIENT", "CONNS", "UPGRADED TO", "SERVERS"], lambda: iter(rows), out)


def _use_label(pair: dict[str, Any], use: str) -> str:
    """A use with what names it: the pipes of named_pipe, the RAP functions of browsing."""
    names = {"named_pipe": pair["named_pipes"], "browsing": pair["rap_functions"]}.get(use)
    return f"{use} ({' '.join(names)})" if names else use
