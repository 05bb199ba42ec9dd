"""Files, pipes, binds and DCE/RPC calls of every recorded capture, against tshark's account of them.

pcaps/lab/activity.py derives these facts from tshark's fields when a capture is recorded and writes
them into pcaps/manifest.toml (`files`, `binds`, `calls` per connection): an independent reading of
the same bytes. smbwatch's `connections[].files` and `connections[].rpc` must say the same.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from dissectors.dcerpc.constants import ContDefResult, FaultStatus
from monitor.smb.rpc import RESULT_OK, fault_status_name, return_value_name
from tests.retirement_reports import document_of

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
MANIFEST = tomllib.loads((PCAPS / "manifest.toml").read_text(encoding="utf-8"))
ACTIVITY_KEYS = ("files", "binds", "calls")
CAPTURES = [
    capture
    for capture in MANIFEST["capture"]
    if any(key in connection for connection in capture.get("connection", []) for key in ACTIVITY_KEYS)
]
# tshark's names for bind results ([C706] p_cont_def_result_t) -> smbwatch's.
BIND_RESULTS = {
    "acceptance": "accepted",
    "provider_rejection": "provider_rejection",
    "user_rejection": "user_rejection",
}


def _paths(files: list[dict[str, Any]], action: str) -> set[str]:
    return {entry["path"] for entry in files if action in entry["actions"]}


# Wireshark's names of the fault statuses these captures hold -> the [MS-RPCE] 3.1.1.5.5 names smbwatch uses.
WIRESHARK_FAULTS = {
    "nca_s_op_rng_error": fault_status_name(0x1C010002),
    "nca_s_fault_context_mismatch": fault_status_name(0x1C00001A),
    "nca_s_unk_if": fault_status_name(0x1C010003),
}


ANSWERED = "a response"
FAULT_NAMES = {member.name for member in FaultStatus}


def _expected_status(kind: str, code: str) -> str:
    """A tshark call fact: ("response", return code in hex) or (fault status name, "")."""
    if kind == "response":
        return return_value_name(int(code, 16))
    return WIRESHARK_FAULTS[kind]


@pytest.mark.parametrize("capture", CAPTURES, ids=[c["file"] for c in CAPTURES])
def test_files_binds_and_calls_agree_with_tshark(capture: dict[str, Any]) -> None:
    document = document_of(capture["file"])
    expected_connections = capture["connection"]
    connections = document["connections"]
    assert len(connections) == len(expected_connections)
    for index, (expected, seen) in enumerate(zip(expected_connections, connections, strict=True)):
        where = f"{capture['file']} connection {index}"
        files = seen["files"]
        facts = expected.get("files", {})
        for tshark_key, action in (
            ("created", "create"),
            ("written", "write"),
            ("read", "read"),
            ("deleted", "delete"),
        ):
            want = {path.lstrip("\\") for path in facts.get(tshark_key, [])}
            assert _paths(files, action) == want, f"{where}: {action}"
        renamed = {(old.lstrip("\\"), new.lstrip("\\")) for old, new in facts.get("renamed", [])}
        assert {(e["path"], e["renamed_to"].lstrip("\\")) for e in files if e["renamed_to"]} == renamed, where
        binds = {
            (uuid, int(version.split(".")[0]), BIND_RESULTS[result])
            for uuid, version, result in expected.get("binds", [])
        }
        assert {(r["uuid"], r["version"], r["bind_result"]) for r in seen["rpc"]} == binds, f"{where}: binds"
        calls: dict[tuple[str, int, str], int] = {}
        unread = set()  # (uuid, opnum) answered with a response whose return code tshark did not decode
        for uuid, opnum, kind, code in expected.get("calls", []):
            if kind == "response" and not code:
                unread.add((uuid, opnum))
                key = (uuid, opnum, ANSWERED)
            else:
                key = (uuid, opnum, _expected_status(kind, code))
            calls[key] = calls.get(key, 0) + 1
        seen_calls: dict[tuple[str, int, str], int] = {}
        for r in seen["rpc"]:
            for call in r["calls"]:
                status = call["status"]
                if (r["uuid"], call["opnum"]) in unread and status not in FAULT_NAMES and status != "no_answer":
                    status = ANSWERED  # a response: its return code is compared where tshark decodes it
                key = (r["uuid"], call["opnum"], status)
                seen_calls[key] = seen_calls.get(key, 0) + call["count"]
        assert seen_calls == calls, f"{where}: calls"


def test_the_names_agree_with_the_result_codes_used_above() -> None:
    # The comparison above maps tshark's codes through smbwatch's own naming: check the naming once.
    assert return_value_name(0) == RESULT_OK
    assert return_value_name(5) == "ERROR_ACCESS_DENIED"
    assert return_value_name(0xC0000022) == "STATUS_ACCESS_DENIED"
    assert fault_status_name(0x1C010002) == "nca_op_rng_error"
    assert ContDefResult.PROVIDER_REJECTION.name.lower() == BIND_RESULTS["provider_rejection"]


PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "pcaps-public" / "suricata-verify"


@pytest.mark.skipif(not (PUBLIC / "smb2-delete").is_dir(), reason="peer captures not present (../shared/pcaps-public)")
def test_a_delete_in_a_compound_chain_is_seen_through_the_related_file_id() -> None:
    """macOS deletes with CREATE (DELETE_ON_CLOSE) + CLOSE in one compound, the CLOSE naming the open by the
    related FileId (all ones): the peer's expectation is one `delete on close` of "test" (its test.yaml)."""
    (path,) = sorted((PUBLIC / "smb2-delete").glob("*.pcap"))
    deleted = [
        entry["path"]
        for connection in document_of(str(path))["connections"]
        for entry in connection["files"]
        if "delete" in entry["actions"]
    ]
    assert deleted == ["test"]
