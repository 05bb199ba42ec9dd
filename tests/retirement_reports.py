"""Reading the analysis document of bundled captures, for the retirement tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.cli import analyze_files
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"


def document_of(*names: str) -> dict[str, Any]:
    """The analysis document of these captures (paths relative to pcaps/), read as one input."""
    return build_document(analyze_files([str(PCAPS / name) for name in names], FlowLimits(), 1000))


def hosts_of(*names: str) -> dict[str, dict[str, Any]]:
    return {host["ip"]: host for host in document_of(*names)["hosts"]}


def pairs_of(*names: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The client-side pair entries of the captures' retirement report, by (client, server)."""
    return {
        (host["ip"], pair["peer"]): pair
        for host in hosts_of(*names).values()
        if host["smb1_retirement"]
        for pair in host["smb1_retirement"]["pairs"]
        if pair["role"] == "client"
    }
