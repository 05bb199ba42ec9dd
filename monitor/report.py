"""Offline analysis output: the JSON document (a public contract) and the readable tables."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from dissectors.records import AnomalyKind
from dissectors.text import printable
from monitor.capture import CaptureError, CaptureFile
from monitor.inventory import Inventory
from monitor.pipeline import ConnectionRecord, Pipeline

ANALYSIS_SCHEMA = "smbwatch.analysis/1"


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
        }


@dataclass(slots=True)
class Analysis:
    pipeline: Pipeline
    inventory: Inventory
    sources: list[SourceResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(source.error for source in self.sources)


def build_document(analysis: Analysis) -> dict[str, Any]:
    """The `smbwatch.analysis/1` document (../shared/DESIGN.md section 4)."""
    pipeline = analysis.pipeline
    anomalies: Counter[AnomalyKind] = pipeline.anomalies() + analysis.inventory.anomalies()
    interface_drops = [drops for source in analysis.sources for drops in source.capture.interface_drops.values()]
    flows = pipeline.flows
    return {
        "schema": ANALYSIS_SCHEMA,
        "connections": sorted(analysis.inventory.connections, key=lambda record: record["first_seen"]),
        "hosts": analysis.inventory.describe_hosts(),
        "alerts": [],
        "stats": {
            "packets": pipeline.packets,
            "smb_packets": pipeline.smb_segments,
            "skipped_packets": dict(sorted(pipeline.decoder.skipped.items())),
            "unsupported_linktypes": {str(k): v for k, v in sorted(pipeline.decoder.unsupported_linktypes.items())},
            "smb_messages": {name: pipeline.smb_messages[name] for name in ("smb1", "smb2", "encrypted", "compressed")},
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
            },
            "connections_not_listed": analysis.inventory.records_dropped,
            "files": [source.describe() for source in analysis.sources],
        },
    }


def write_json(analysis: Analysis, out: TextIO) -> None:
    json.dump(build_document(analysis), out, indent=1)
    out.write("\n")


def _endpoint(endpoint: dict[str, Any]) -> str:
    ip = endpoint["ip"]
    return f"[{ip}]:{endpoint['port']}" if ":" in ip else f"{ip}:{endpoint['port']}"


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _signing_column(required: bool | None) -> str:
    return "?" if required is None else "required" if required else "not required"


def _smb1_column(record: ConnectionRecord) -> str:
    if record["smb1_used"]:
        return "USED"
    return "offered" if record["smb1_offered"] else "-"


def _table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [
        max(len(headers[i]), *(len(row[i]) for row in rows)) if rows else len(headers[i]) for i in range(len(headers))
    ]
    out.write("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def write_table(analysis: Analysis, out: TextIO) -> None:
    document = build_document(analysis)
    connections = document["connections"]
    out.write(f"SMB connections ({len(connections)})\n")
    rows = [
        [
            f"{_endpoint(c['client'])} -> {_endpoint(c['server'])}",
            c["transport"],
            printable(c["dialect"]) if c["dialect"] else "-",
            _smb1_column(c),
            _signing_column(c["signing_required"]),
            _yes_no(c["encrypted"]),
            str(c["messages"]["smb1"] + c["messages"]["smb2"] + c["messages"]["encrypted"]),
        ]
        for c in connections
    ]
    _table(["CLIENT -> SERVER", "TRANSPORT", "DIALECT", "SMB1", "SIGNING", "ENCRYPTED", "MESSAGES"], rows, out)
    hosts = document["hosts"]
    out.write(f"\nHosts ({len(hosts)})\n")
    host_rows = [
        [
            h["ip"],
            "+".join(h["roles"]),
            ", ".join(printable(d) for d in h["dialects_as_client"]) or "-",
            ", ".join(printable(d) for d in h["dialects_as_server"]) or "-",
            "USED" if h["smb1"] else ("offered" if h["smb1_offered"] else "-"),
        ]
        for h in hosts
    ]
    _table(["HOST", "ROLES", "AS CLIENT", "AS SERVER", "SMB1"], host_rows, out)
    stats = document["stats"]
    messages = stats["smb_messages"]
    out.write(
        f"\n{stats['packets']} packets, {stats['smb_packets']} on SMB ports; SMB messages: "
        f"{messages['smb1']} SMB1, {messages['smb2']} SMB2, {messages['encrypted']} encrypted, "
        f"{messages['compressed']} compressed; {stats['reassembly_gaps']} reassembly gaps\n"
    )
    if stats["anomalies"]:
        out.write("anomalies: " + ", ".join(f"{kind} {count}" for kind, count in stats["anomalies"].items()) + "\n")
    if stats["connections_not_listed"]:
        out.write(f"{stats['connections_not_listed']} connections not listed (record cap); hosts include them\n")
