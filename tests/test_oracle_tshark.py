"""Differential test: Wireshark (tshark 4.0) is the oracle for what smbwatch counts per TCP connection.

For every capture in `pcaps/` and in ../shared/pcaps-public/suricata-verify/, per TCP connection
(smbwatch's `connections[*]` matched to tshark's `tcp.stream` by client and server ip+port):
the negotiated dialect, the dialects offered, the SMB1 / SMB2 / encrypted / compressed message
counts and the per-command request/response counts must agree, and so must the authentication:
the sessions (by SMB2 SessionId / SMB1 UID) with their final SESSION_SETUP status, the user,
domain and host of the NTLMSSP AUTHENTICATE (or account and primary domain of a legacy SMB1
session setup), the SMB2 session flags and the realm and SPN of a Kerberos AP-REQ; the paths of
the TREE_CONNECT requests in order, and the status and session of each answered tree connect.

The oracle is read through pyshark for `pcaps/` (the design's choice); the public captures hold
~10k SMB frames, which pyshark (PDML, ~130 frames/s here) needs over a minute for, so they are
read with one `tshark -T fields` run each. `test_backends_agree` proves both readers give the
same facts. Every difference that is not a smbwatch bug is listed, with its reason, in
`ORACLE_FROM_ORIGINAL` or `KNOWN_DIFFERENCES`; both are exact, so a stale entry fails too.
"""

from __future__ import annotations

import io
import json
import subprocess
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import oracle
import pytest

from monitor.cli import analyze_files, main
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits

pytestmark = pytest.mark.oracle

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
PUBLIC = REPO.parent / "shared" / "pcaps-public"
SURICATA_VERIFY = PUBLIC / "suricata-verify"
PUBLIC_PREFIX = "public/"
MESSAGE_KINDS = ("smb1", "smb2", "encrypted", "compressed")
SESSION_FACTS = ("status", "user", "domain", "workstation", "session_flags")
KERBEROS_FACTS = ("realm", "service_principal")
# A Kerberos session: tshark shows the ticket's realm and SPN (compared) but no user, because the
# client's name is in the encrypted authenticator; smbwatch reports user "" for it (no user visible).
KERBEROS_USER = ""

if not oracle.tshark_available():
    pytest.skip("tshark is not on PATH: the Wireshark oracle is unavailable", allow_module_level=True)


@cache
def manifest_errors() -> dict[str, str]:
    with (PCAPS / "manifest.toml").open("rb") as handle:
        return {capture["file"]: capture.get("error", "") for capture in tomllib.load(handle)["capture"]}


def capture_ids() -> list[str]:
    """`pcaps/<rel>` for the project's captures, `public/<test>/<file>` for the peer's."""
    ids = [f"pcaps/{p.relative_to(PCAPS).as_posix()}" for p in sorted(PCAPS.rglob("*.pcap*")) if p.is_file()]
    if SURICATA_VERIFY.is_dir():
        ids += [
            PUBLIC_PREFIX + p.relative_to(SURICATA_VERIFY).as_posix()
            for p in sorted(SURICATA_VERIFY.rglob("*.pcap*"))
            if p.is_file()
        ]
    else:
        ids.append(PUBLIC_PREFIX + "absent")
    return ids


def capture_path(capture: str) -> Path:
    if capture.startswith(PUBLIC_PREFIX):
        if not SURICATA_VERIFY.is_dir():
            pytest.skip(f"../shared/pcaps-public absent: {SURICATA_VERIFY} not found, public captures not compared")
        return SURICATA_VERIFY / capture.removeprefix(PUBLIC_PREFIX)
    return REPO / capture


@cache
def oracle_frames(capture: str) -> tuple[oracle.FrameFacts, ...]:
    """tshark's view of a capture, read once per session: pyshark for pcaps/, tshark -T fields for the
    public captures (pyshark is ~100x slower; see the module docstring)."""
    path = capture_path(capture)
    if capture.startswith(PUBLIC_PREFIX):
        return tuple(oracle.frames_via_tshark_fields(path))
    return tuple(oracle.frames_via_pyshark(path))


@cache
def smbwatch_document(capture: str) -> dict[str, Any]:
    """The CLI's JSON document, built in-process."""
    return build_document(analyze_files([str(capture_path(capture))], FlowLimits(), 200_000))


# --- intended differences ----------------------------------------------------------------------


@dataclass(frozen=True)
class FromOriginal:
    """The capture is an edited copy of `original`; tshark cannot read the edit, so the oracle is
    tshark's view of the original, less what the edit legitimately removes."""

    original: str
    reason: str
    lost: dict[str, int] = field(default_factory=dict)  # field path -> messages smbwatch must lose
    lost_trees: tuple[str, ...] = ()  # paths of the TREE_CONNECT requests the edit destroyed
    # Frames of the original missing from the edited copy; each must carry no SMB header of its own
    # (tshark without TCP reassembly shows them as continuations), so no message is lost with them.
    removed_frames: tuple[int, ...] = ()


ORACLE_FROM_ORIGINAL: dict[str, FromOriginal] = {
    "pcaps/crafted/negotiate_split.pcap": FromOriginal(
        original="pcaps/recorded/smb3_1_1.pcap",
        reason="recorded/smb3_1_1.pcap re-segmented (manifest); tshark 4.0 does not reassemble a NetBIOS "
        "header split across TCP segments ('NBSS Continuation Message') and misses the NEGOTIATE request",
    ),
    "pcaps/crafted/gap_then_smb.pcap": FromOriginal(
        original="pcaps/recorded/smb3_1_1.pcap",
        reason="recorded/smb3_1_1.pcap with 50 client bytes missing (manifest): the gap takes the tail of the "
        "TREE_CONNECT (data) request and the head of the pipelined CREATE request; tshark never resynchronises "
        "the client direction after a gap while it reassembles, smbwatch does on the next request",
        lost={"commands.smb2.TREE_CONNECT.requests": 1, "commands.smb2.CREATE.requests": 1, "messages.smb2": 2},
        lost_trees=("\\\\192.0.2.20\\data",),
    ),
    "public/smb2-frames-gap-payload-logging/smb2-peter-minus-p191.pcap": FromOriginal(
        original="public/smb2-01/smb2-peter.pcap",
        reason="smb2-peter.pcap without frame 191 (peer README): a 2896-byte segment inside the 8192-byte READ "
        "response of frame 190; smbwatch keeps only the header of big READs and still counts it; tshark "
        "(reassembling out-of-order segments) waits for the hole and dissects nothing more from the server",
        removed_frames=(191,),
    ),
    "public/smb2-frames-gap-payload-logging-02/smb2-peter-minus-p191-p192.pcap": FromOriginal(
        original="public/smb2-01/smb2-peter.pcap",
        reason="smb2-peter.pcap without frames 191 and 192: the last 3044 bytes of the READ response of frame "
        "190 (see smb2-peter-minus-p191.pcap)",
        removed_frames=(191, 192),
    ),
}

SEGMENTATION_RANDOM_OFFERED = [
    "PC NETWORK PROGRAM 1.0",
    "MICROSOFT NETWORKS 1.03",
    "MICROSOFT NETWORKS 3.0",
    "LANMAN1.0",
    "LM1.2X002",
    "DOS LANMAN2.1",
    "LANMAN2.1",
    "Samba",
    "NT LANMAN 1.0",
    "NT LM 0.12",
]

ONE_SIDED_8629 = (
    "one-sided capture (peer README: dcerpc-smb-test-01 reduced to the client->server direction): the "
    "server's responses were removed, so tshark lists the Kerberos SESSION_SETUP and the two TREE_CONNECT "
    "requests; smbwatch reports a session or a tree connect only once the server answers it",
    {
        "stream 0: sessions.unanswered": (["kerberos CONTOSO.LOCAL cifs/dc1.contoso.local"], []),
        "stream 0: trees": (["\\\\dc1\\IPC$", "\\\\dc1\\ADMIN$"], []),
    },
)

# capture -> (reason, {difference path: (tshark value, smbwatch value)}), exactly as `differences` reports.
KNOWN_DIFFERENCES: dict[str, tuple[str, dict[str, tuple[Any, Any]]]] = {
    "public/smb-eicar-file-segmentation-random/input.pcap": (
        "a proxy cut every client message into random pieces; the first is 1 byte of the NetBIOS header "
        "(frame 4), which tshark 4.0 cannot reassemble ('NBSS Continuation Message'), so it never finds a "
        "client message and sees the server's 8 responses only, with dialect index 9 of a request it did "
        "not see. smbwatch reads all 8 requests (one per response) and index 9 = 'NT LM 0.12' of the 10 "
        "dialects smbclient -m NT1 offers (the same list as in smb-eicar-file/input.pcap)",
        {
            "stream 0: dialect": ("unknown", "NT LM 0.12"),
            "stream 0: dialects_offered": ([], SEGMENTATION_RANDOM_OFFERED),
            "stream 0: messages.smb1": (8, 16),
            "stream 0: commands.smb1.NEGOTIATE.requests": (0, 1),
            "stream 0: commands.smb1.SESSION_SETUP_ANDX.requests": (0, 2),
            "stream 0: commands.smb1.TREE_CONNECT_ANDX.requests": (0, 1),
            "stream 0: commands.smb1.NT_CREATE_ANDX.requests": (0, 1),
            "stream 0: commands.smb1.WRITE_ANDX.requests": (0, 1),
            "stream 0: commands.smb1.CLOSE.requests": (0, 1),
            "stream 0: commands.smb1.TREE_DISCONNECT.requests": (0, 1),
            # and with the requests, the NTLMSSP AUTHENTICATE (anonymous, from HOST, as in
            # smb-eicar-file/input.pcap) and the TREE_CONNECT_ANDX path
            "stream 0: sessions.0x1000.user": (None, ""),
            "stream 0: sessions.0x1000.domain": (None, ""),
            "stream 0: sessions.0x1000.workstation": (None, "HOST"),
            "stream 0: trees": ([], ["\\\\127.0.0.1\\PUBLIC"]),
            "stream 0: tree_connects": (
                ["None STATUS_SUCCESS (session 0x1000)"],
                ["\\\\127.0.0.1\\PUBLIC STATUS_SUCCESS (session 0x1000)"],
            ),
        },
    ),
    "public/bug-8629/input.pcap": ONE_SIDED_8629,
    "public/bug-8629-async-oneside/input.pcap": ONE_SIDED_8629,
}


# --- comparison --------------------------------------------------------------------------------


def endpoint_key(connection: dict[str, Any]) -> tuple[str, int, str, int]:
    client, server = connection["client"], connection["server"]
    return (client["ip"], client["port"], server["ip"], server["port"])


def tree_connect(tree: dict[str, Any]) -> str:
    return f"{tree['path']} {tree['status']} (session {tree['session_id']})"


def flat_facts(connection: oracle.OracleConnection | dict[str, Any]) -> dict[str, Any]:
    """The compared facts, flattened to `path -> value` (commands as `commands.smb2.READ.requests`,
    sessions as `sessions.0x1234.status`)."""
    if isinstance(connection, oracle.OracleConnection):
        described = {**connection.describe(), "dialects_offered": connection.dialects_offered}
        trees_requested = list(connection.trees_requested)
        unanswered = connection.unanswered_session_setups()
    else:
        described = connection
        # smbwatch reports a tree connect, and a session, once the server answered it.
        trees_requested = [tree["path"] for tree in connection["trees"]]
        unanswered = []
    flat: dict[str, Any] = {
        "dialect": described["dialect"],
        "dialects_offered": list(described["dialects_offered"]),
    }
    for kind in MESSAGE_KINDS:
        flat[f"messages.{kind}"] = described["messages"].get(kind, 0)
    for protocol, commands in described["commands"].items():
        for name, counts in commands.items():
            for direction in ("requests", "responses"):
                flat[f"commands.{protocol}.{name}.{direction}"] = counts.get(direction, 0)
    flat["sessions"] = [session["session_id"] for session in described["sessions"]]
    flat["sessions.unanswered"] = unanswered
    for session in described["sessions"]:
        prefix = f"sessions.{session['session_id']}"
        for name in SESSION_FACTS:
            flat[f"{prefix}.{name}"] = session[name]
        kerberos = session["kerberos"] or {}
        if isinstance(connection, oracle.OracleConnection) and kerberos and session["user"] is None:
            flat[f"{prefix}.user"] = KERBEROS_USER
        for name in KERBEROS_FACTS:
            flat[f"{prefix}.kerberos.{name}"] = kerberos.get(name)
    flat["trees"] = trees_requested
    flat["tree_connects"] = [tree_connect(tree) for tree in described["trees"]]
    return flat


def differences(
    expected: dict[int, oracle.OracleConnection], connections: list[dict[str, Any]]
) -> dict[str, tuple[Any, Any]]:
    """`{"stream N: path": (tshark, smbwatch)}` for every fact that differs; commands absent on one
    side count 0 there."""
    ours = {endpoint_key(connection): connection for connection in connections}
    out: dict[str, tuple[Any, Any]] = {}
    matched = set()
    for stream, theirs in sorted(expected.items()):
        label = f"stream {stream}"
        mine = ours.get(theirs.key)
        if mine is None:
            out[f"{label}: connection"] = (theirs.key, None)
            continue
        matched.add(theirs.key)
        a, b = flat_facts(theirs), flat_facts(mine)
        # A session seen on one side only is reported once, under "sessions", not field by field.
        one_sided = {f"sessions.{session_id}." for session_id in set(a["sessions"]) ^ set(b["sessions"])}
        for path in sorted(set(a) | set(b)):
            if path.startswith(tuple(one_sided)):
                continue
            default = 0 if path.startswith(("messages.", "commands.")) else None
            if a.get(path, default) != b.get(path, default):
                out[f"{label}: {path}"] = (a.get(path, default), b.get(path, default))
    for key in sorted(set(ours) - matched):
        out[f"smbwatch only {key[0]}:{key[1]}->{key[2]}:{key[3]}: connection"] = (None, key)
    return out


def apply_lost(expected: dict[int, oracle.OracleConnection], lost: dict[str, int], trees: tuple[str, ...] = ()) -> None:
    """Take the messages (and tree connects) an edit removed away from the (single) connection of the original."""
    if not lost and not trees:
        return
    assert len(expected) == 1, "a loss can only be applied to a capture with one connection"
    connection = next(iter(expected.values()))
    for path in trees:
        connection.trees_requested.remove(path)
        (answered,) = [tree for tree in connection.trees if tree["path"] == path]
        connection.trees.remove(answered)
    for path, count in lost.items():
        parts = path.split(".")
        if parts[0] == "messages":
            connection.messages[parts[1]] -= count
        else:
            _, protocol, name, direction = parts
            connection.commands[protocol][name][direction] -= count


def removed_frames_carrying_smb(original: str, frames: tuple[int, ...]) -> list[int]:
    """Frames (of `original`) that start an SMB message when each TCP segment is dissected alone."""
    command = ["tshark", "-n", "-r", str(capture_path(original)), "-o", "tcp.desegment_tcp_streams:FALSE"]
    command += ["-Y", " || ".join(f"frame.number == {n}" for n in frames), "-T", "fields", "-e", "frame.number"]
    command += ["-e", "smb.server_component", "-e", "smb2.protocol_id"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    rows = [line.split("\t", 1) for line in result.stdout.splitlines()]
    assert len(rows) == len(frames), f"{original}: frames {frames} not all present"
    return [int(number) for number, smb in rows if smb.strip()]


def frame_count(path: Path) -> int:
    result = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return len(result.stdout.splitlines())


def expected_connections(capture: str) -> dict[int, oracle.OracleConnection]:
    substitute = ORACLE_FROM_ORIGINAL.get(capture)
    if substitute is None:
        return oracle.connections(oracle_frames(capture))
    expected = oracle.connections(oracle_frames(substitute.original))
    own = oracle.connections(oracle_frames(capture))
    # Premise: the edited copy is the same conversation (same endpoints) as the original.
    assert {c.key for c in own.values()} <= {c.key for c in expected.values()}, substitute.reason
    apply_lost(expected, substitute.lost, substitute.lost_trees)
    return expected


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", capture_ids())
def test_smbwatch_agrees_with_tshark(capture: str) -> None:
    path = capture_path(capture)
    if not capture.startswith(PUBLIC_PREFIX) and manifest_errors().get(capture.removeprefix("pcaps/")):
        pytest.skip("damaged capture: covered by test_truncated_capture_reports_what_it_read")
    document = smbwatch_document(capture)
    assert not any(source["error"] for source in document["stats"]["files"]), f"smbwatch failed to read {path}"
    got = differences(expected_connections(capture), document["connections"])
    reason, expected_differences = KNOWN_DIFFERENCES.get(capture, ("", {}))
    assert got == expected_differences, (
        f"{capture}: smbwatch differs from tshark\n"
        + "\n".join(
            f"  {path}: tshark {theirs!r}, smbwatch {mine!r}"
            + ("" if expected_differences.get(path) == (theirs, mine) else "  <- unexplained")
            for path, (theirs, mine) in sorted(got.items())
        )
        + "".join(f"\n  {path}: explained difference no longer seen" for path in expected_differences.keys() - got)
        + (f"\n  explained: {reason}" if reason else "")
    )


@pytest.mark.parametrize("capture", sorted(c for c, s in ORACLE_FROM_ORIGINAL.items() if s.removed_frames))
def test_removed_frames_held_no_smb_header(capture: str) -> None:
    """The premise of ORACLE_FROM_ORIGINAL for captures made by deleting frames: exactly those frames
    are missing, and none of them started an SMB message."""
    substitute = ORACLE_FROM_ORIGINAL[capture]
    original = capture_path(substitute.original)
    assert frame_count(original) - frame_count(capture_path(capture)) == len(substitute.removed_frames)
    assert removed_frames_carrying_smb(substitute.original, substitute.removed_frames) == []


def test_truncated_capture_reports_what_it_read() -> None:
    """A capture cut inside a record: exit status 1, and the JSON still reports what was read."""
    damaged = [rel for rel, error in manifest_errors().items() if error == "truncated"]
    assert damaged, "the manifest lists no truncated capture"
    for rel in damaged:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["analyze", "--format", "json", str(PCAPS / rel)])
        assert status == 1, rel
        document = json.loads(out.getvalue())
        (source,) = document["stats"]["files"]
        assert source["error"], rel
        assert source["frames"] > 0 and document["stats"]["packets"] == source["frames"], rel
        assert document["connections"], f"{rel}: nothing reported of what was read before the cut"
        assert "error" in err.getvalue(), rel


BACKEND_CHECKS = [
    f"pcaps/{rel}" for rel, error in sorted(manifest_errors().items()) if not error and (PCAPS / rel).is_file()
] + [
    # Small public captures with SMB1 AndX chains and several SMB1 messages in one frame: the cases
    # where `tshark -T fields` has to split the flat smb.cmd list (oracle.split_smb1_commands).
    PUBLIC_PREFIX + "smb-eicar-andx/smbandx.pcap",
    PUBLIC_PREFIX + "smb-eicar-overlap/input.pcap",
    PUBLIC_PREFIX + "smb-eicar-file-nbss-more-ffsmb/input.pcap",
    PUBLIC_PREFIX + "smb2-delete/input.pcap",
    # Sessions and tree connects: failed logons, anonymous and several sessions (negotiateflags), a failed
    # tree connect (named-pipe-unicode), trees behind encryption (smb3-01), Kerberos and a legacy SMB1
    # session setup with an empty account, which `tshark -T fields` does not show (trunc-file-logging).
    PUBLIC_PREFIX + "smb2-ntlmssp-negotiateflags/input.pcap",
    PUBLIC_PREFIX + "smb2-named-pipe-unicode/input.pcap",
    PUBLIC_PREFIX + "smb3-01/input.pcap",
    PUBLIC_PREFIX + "smb2-09-trunc-file-logging/input.pcap",
]


@pytest.mark.parametrize("capture", BACKEND_CHECKS)
def test_backends_agree(capture: str) -> None:
    """`tshark -T fields` (used for the public captures) gives what pyshark gives."""
    path = capture_path(capture)
    via_pyshark = oracle_frames(capture) if not capture.startswith(PUBLIC_PREFIX) else oracle.frames_via_pyshark(path)
    via_fields = oracle.frames_via_tshark_fields(path)
    # A capture of a SYN sweep carries no SMB at all; every other one must, or the check proves nothing.
    assert via_pyshark or capture.endswith("scan_445_sweep.pcap"), f"{capture}: tshark shows no SMB"
    assert list(via_fields) == list(via_pyshark)


@pytest.mark.parametrize(
    ("commands", "headers", "expected"),
    [
        ([0x73, 0xFF], 1, [(0x73,)]),
        ([0x24, 0x2F, 0x04], 1, [(0x24, 0x2F, 0x04)]),  # LOCKING_ANDX -> WRITE_ANDX -> CLOSE
        ([0x2F, 0xFF, 0x2F, 0xFF], 2, [(0x2F,), (0x2F,)]),
        ([0x2B, 0x2F, 0xFF], 2, [(0x2B,), (0x2F,)]),
        ([0xA0, 0xA1], 2, [(0xA0,), (0xA1,)]),
        ([0x73, 0x73, 0xFF], 2, [(0x73,), (0x73,)]),  # an error response without AndX block, then a chain
        ([0x73, 0x75, 0xFF], 1, [(0x73, 0x75)]),  # SESSION_SETUP_ANDX -> TREE_CONNECT_ANDX
        ([0x73], 2, None),
    ],
)
def test_split_smb1_commands(commands: list[int], headers: int, expected: list[tuple[int, ...]] | None) -> None:
    assert oracle.split_smb1_commands(commands, headers) == expected


@pytest.mark.parametrize(
    ("values", "requests", "messages", "expected"),
    [
        (["\\\\s\\IPC$"], [0], 1, {0: "\\\\s\\IPC$"}),  # a TREE_CONNECT request alone
        (["\\\\s\\IPC$", "\\\\s\\C$"], [0], 1, {0: "\\\\s\\C$"}),  # after its header's generated path
        (["\\\\s\\IPC$"], [], 1, {}),  # a response: the generated path only
        ([], [0], 1, {0: None}),
        (["\\\\s\\A", "\\\\s\\B"], [0, 1], 2, {0: "\\\\s\\A", 1: "\\\\s\\B"}),
    ],
)
def test_request_paths(values: list[str], requests: list[int], messages: int, expected: dict[int, str | None]) -> None:
    assert oracle.request_paths(values, requests, messages) == expected


def test_request_paths_refuses_to_guess() -> None:
    """Two generated paths and one request that is not the frame's last message: not attributable."""
    with pytest.raises(ValueError, match="cannot attribute"):
        oracle.request_paths(["\\\\s\\A", "\\\\s\\B", "\\\\s\\C"], [0], 2)
