"""Every capture in pcaps/ against the facts its manifest entry says it must show."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import analyze_files
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
MANIFEST = tomllib.loads((PCAPS / "manifest.toml").read_text())["capture"]
CONNECTION_FACTS = (
    "transport",
    "dialect",
    "dialects_offered",
    "smb1_offered",
    "smb1_used",
    "signing_required",
    "encrypted",
)


def test_manifest_lists_every_capture_and_only_those() -> None:
    on_disk = {str(path.relative_to(PCAPS)) for path in PCAPS.rglob("*") if path.suffix in (".pcap", ".pcapng")}
    listed = {entry["file"] for entry in MANIFEST}
    assert on_disk == listed
    assert all(entry["origin"] in ("recorded", "derived", "crafted") for entry in MANIFEST)


SESSION_FACTS = ("status", "user", "domain", "workstation", "auth")


def assert_sessions(have: dict[str, Any], want: dict[str, Any]) -> None:
    """Sessions (who, how, with what result) and tree paths, as the manifest recorded them with tshark."""
    assert len(have["sessions"]) == len(want["sessions"])
    for got, expected in zip(have["sessions"], want["sessions"], strict=True):
        for fact in SESSION_FACTS:
            assert (got[fact] or "") == expected[fact], f"session {fact}: {got[fact]!r} != {expected[fact]!r}"
        if "realm" in expected:
            assert got["kerberos"]["realm"] == expected["realm"]
            assert got["kerberos"]["service_principal"] == expected["spn"]
    assert [tree["path"] for tree in have["trees"]] == want["trees"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_capture_shows_its_manifest_facts(entry: dict[str, Any]) -> None:
    analysis = analyze_files([str(PCAPS / entry["file"])], FlowLimits(), 200_000)
    document = build_document(analysis)
    [source] = analysis.sources
    if entry["error"] == "truncated":
        assert source.error is not None and "truncated" in str(source.error)
        assert entry["file"] in str(source.error)
        assert source.capture.frames > 0  # what came before the damage was read
    else:
        assert source.error is None
    assert sorted(source.capture.linktypes) == sorted(entry["linktypes"])
    if "reassembly_gaps" in entry:
        assert document["stats"]["reassembly_gaps"] == entry["reassembly_gaps"]
    expected = entry.get("connection", [])
    got = document["connections"]
    assert len(got) == len(expected), [(c["client"], c["server"]) for c in got]
    for want, have in zip(expected, got, strict=True):
        assert have["client"]["ip"] == want["client"]
        assert have["server"]["ip"] == want["server"]
        assert have["server"]["port"] == want["server_port"]
        for fact in CONNECTION_FACTS:
            if fact not in want:
                continue
            value = have[fact]
            if fact == "dialect" and value is None:
                value = ""
            assert value == want[fact], f"{fact}: {value!r} != {want[fact]!r}"
        if "sessions" in want:
            assert_sessions(have, want)
    # Real traffic is clean; only a capture with a hole makes the stream skip bytes to find the next frame.
    expected_anomalies = {"resync_skipped_bytes"} if entry.get("reassembly_gaps") else set()
    expected_anomalies.update(entry.get("anomalies", ()))  # what a crafted capture is made of
    assert set(document["stats"]["anomalies"]) == expected_anomalies
