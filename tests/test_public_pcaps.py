"""The peer's public SMB captures (Suricata's verification suite) against the facts recorded for them.

../shared/pcaps-public/suricata-verify/facts.json holds, per test folder, `pcaps[*].tshark_facts`
(read with tshark 4.0.17 and its default preferences) and `peer_checks` (Suricata's eve.json
expectations). For every capture listed there smbwatch must run without an exception and with
exit status 0, and its JSON must agree with these facts, after the mappings documented in
`smbwatch_facts` and `fact_values`, or differ exactly as `KNOWN_FACT_DIFFERENCES` explains.

Facts not covered yet, and why:
- `smb1_native_os`, `smb1_plain_account` and the peer checks' `smb.ntlmssp.version`,
  `smb.request.native_*` fields: not in smbwatch's public JSON contract (`smb1_plain_account` is
  empty for every capture); the peer's NTLMSSP user/domain/host and tree connect checks are
  compared by `test_peer_session_and_tree_checks`;
- `trees` counts: tshark shows the tree of every message on it, so they count frames, not tree
  connects; the tree names are compared (and test_oracle_tshark compares tree connects per connection);
- `trans2_*`, `nt_transact_*`, `peeknamedpipe_status_c0000205`, the EternalBlue /
  DoublePulsar indicators and `syn_*` (scan) facts: the detections are not implemented yet
  (`alerts` is always empty);
- `smb1_frames` / `smb2_frames`: tshark frames, not messages (compound SMB2, several NetBIOS
  messages per segment); message counts are compared through the per-command counts instead;
- `smb2_negotiate_context_types`: smbwatch reports contexts only under `negotiate`, outside the
  public contract of ../shared/DESIGN.md section 4;
- peer checks other than `smb.dialect` (event counts, file names, fuids...): Suricata's own
  transaction model (README trap 3), not facts smbwatch reports.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main

pytestmark = pytest.mark.public

PUBLIC = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps-public"
SURICATA_VERIFY = PUBLIC / "suricata-verify"
FACTS = SURICATA_VERIFY / "facts.json"
ABSENT = f"../shared/pcaps-public absent: {FACTS} not found, the peer's captures are not tested"

SMB2_DIALECTS = frozenset({"2.0.2", "2.1", "2.2.2", "2.2.4", "3.0", "3.0.2", "3.1", "3.1.1", "2.???"})
# facts.json names revision 0x0310 (a Windows 10 preview of 3.1.1) "3.1.0", smbwatch "3.1".
FACTS_SMB2_DIALECT_NAMES = {"3.1.0": "3.1"}
FACTS_SMB2_WILDCARD = "2.??(0x02ff wildcard)"
# Suricata's smb.dialect for SMB2/3; SMB1 dialects are the negotiated strings in both.
SURICATA_SMB2_DIALECTS = {"2.02": "2.0.2", "2.10": "2.1", "3.00": "3.0", "3.02": "3.0.2", "3.11": "3.1.1"}
NON_TCP_CLASS = "(non-TCP SMB1 frames present, e.g. UDP/138 browser mailslot)"
FACTS_EMPTY_STRING = "NULL"
# smbwatch puts the negotiate flags of an NTLMSSP AUTHENTICATE in its session: the sessions that
# facts.json's `ntlmssp_auth` (one per AUTHENTICATE message tshark shows) can be compared with.
NTLMSSP_AUTHENTICATE_READ = "ntlm_flags"
SMB1_SESSION = "SMB1 session (SMB1 negotiated/used)"
SMB1_UPGRADED = "SMB1 NEGOTIATE request only, upgraded to SMB2"
SMB2_ONLY = "SMB2/3 only"


def load_facts() -> dict[str, Any]:
    return json.loads(FACTS.read_text()) if FACTS.is_file() else {}


def cases() -> list[tuple[str, str]]:
    facts = load_facts()
    if not facts:
        return [("absent", "absent")]
    return [(test, pcap["file"]) for test, entry in sorted(facts.items()) for pcap in entry["pcaps"]]


def case_id(case: tuple[str, str]) -> str:
    return f"{case[0]}/{case[1]}"


CASES = cases()


def facts_of(test: str, file: str) -> dict[str, Any]:
    if not FACTS.is_file():
        pytest.skip(ABSENT)
    (pcap,) = [pcap for pcap in load_facts()[test]["pcaps"] if pcap["file"] == file]
    return pcap


@cache
def run_smbwatch(test: str, file: str) -> tuple[int, dict[str, Any], str]:
    """`smbwatch analyze --format json` in-process: (exit status, document, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["analyze", "--format", "json", str(SURICATA_VERIFY / test / file)])
    return status, json.loads(out.getvalue()), err.getvalue()


# --- what smbwatch says, in the facts' vocabulary ----------------------------------------------


def classify(connection: dict[str, Any]) -> str:
    """facts.json's `tcp_stream_classification` of one smbwatch connection."""
    messages = connection["messages"]
    if connection["smb1_used"]:
        return SMB1_SESSION
    if messages["smb1"] and (messages["smb2"] or messages["encrypted"]):
        return SMB1_UPGRADED
    if not messages["smb1"]:
        return SMB2_ONLY
    return "SMB1 NEGOTIATE only, nothing selected"  # no such class in facts.json: reported as a difference


def smbwatch_facts(document: dict[str, Any]) -> dict[str, Any]:
    """smbwatch's connections folded into the facts' keys (flat: one value per key)."""
    connections = document["connections"]
    flat: dict[str, Any] = {}
    for protocol in ("smb1", "smb2"):
        for connection in connections:
            for name, counts in connection["commands"].get(protocol, {}).items():
                for kind, direction in (("REQ", "requests"), ("RESP", "responses")):
                    key = f"{protocol}_cmds {kind} {name}"
                    flat[key] = flat.get(key, 0) + counts[direction]
    offered = {dialect for connection in connections for dialect in connection["dialects_offered"]}
    flat["smb1_dialects_offered"] = sorted(offered - SMB2_DIALECTS)
    flat["smb2_dialects_offered"] = sorted(offered & SMB2_DIALECTS)
    dialects = Counter(connection["dialect"] for connection in connections if connection["dialect"] is not None)
    for dialect, count in dialects.items():
        if dialect not in SMB2_DIALECTS:
            flat[f"smb1_dialect_selected {dialect}"] = count
        elif dialect != "2.???":
            flat[f"smb2_dialect_negotiated {dialect}"] = count
    for name, count in Counter(classify(connection) for connection in connections).items():
        flat[f"tcp_stream_classification {name}"] = count
    flat["smb_streams"] = len(connections)
    flat["smb1_streams"] = sum(1 for c in connections if c["messages"]["smb1"])
    flat["smb2_streams"] = sum(1 for c in connections if c["messages"]["smb2"] or c["messages"]["encrypted"])
    flat["server_ports"] = sorted({str(connection["server"]["port"]) for connection in connections})
    flat["smb2_compressed_frames"] = sum(connection["messages"]["compressed"] for connection in connections)
    for connection in connections:
        for session in connection["sessions"]:
            if NTLMSSP_AUTHENTICATE_READ in session:
                key = "ntlmssp_auth " + ntlmssp_identity(session["user"], session["domain"], session["workstation"])
                flat[key] = flat.get(key, 0) + 1
    flat["trees"] = sorted({tree["path"] for connection in connections for tree in connection["trees"]})
    return flat


def ntlmssp_identity(user: str | None, domain: str | None, host: str | None) -> str:
    """facts.json's form of an NTLMSSP AUTHENTICATE: tshark shows an empty string as NULL."""
    user, domain, host = (value or FACTS_EMPTY_STRING for value in (user, domain, host))
    return f"user={user!r} domain={domain!r} host={host!r}"


def fact_values(facts: dict[str, Any]) -> dict[str, Any]:
    """The tshark facts in the same flat shape, with the documented mappings applied."""
    flat: dict[str, Any] = {}
    non_tcp = NON_TCP_CLASS in facts["tcp_stream_classification"]
    udp_mailslot_frames = facts["server_ports"].get("138", 0) if non_tcp else 0
    for protocol in ("smb1", "smb2"):
        for key, count in facts[f"{protocol}_cmds"].items():
            flat[f"{protocol}_cmds {key}"] = count
    if udp_mailslot_frames:
        # Browser announcements: SMB_COM_TRANSACTION requests to \MAILSLOT\BROWSE over UDP/138.
        # smbwatch analyses TCP only.
        key = "smb1_cmds REQ TRANSACTION"
        flat[key] -= udp_mailslot_frames
    flat["smb1_dialects_offered"] = sorted(facts["smb1_dialects_offered"])
    flat["smb2_dialects_offered"] = sorted(FACTS_SMB2_DIALECT_NAMES.get(d, d) for d in facts["smb2_dialects_offered"])
    for name, count in facts["smb1_dialect_selected"].items():
        # "index N (request not seen)": the response without its request; smbwatch says "unknown".
        key = "smb1_dialect_selected " + ("unknown" if name.startswith("index ") else name)
        flat[key] = flat.get(key, 0) + count
    for name, count in facts["smb2_dialect_negotiated"].items():
        # One count per NEGOTIATE response: the 0x02FF wildcard answer to a multi-protocol SMB1
        # negotiate is followed by the real one on the same connection, and smbwatch reports the
        # real one only (test_wildcard_answers_are_followed checks there are enough of them).
        if name != FACTS_SMB2_WILDCARD:
            flat[f"smb2_dialect_negotiated {FACTS_SMB2_DIALECT_NAMES.get(name, name)}"] = count
    for name, count in facts["tcp_stream_classification"].items():
        if name != NON_TCP_CLASS:
            flat[f"tcp_stream_classification {name}"] = count
    flat["smb_streams"] = facts["smb_streams"]
    flat["smb1_streams"] = facts["smb1_streams"]
    flat["smb2_streams"] = facts["smb2_streams"]
    flat["server_ports"] = sorted(port for port in facts["server_ports"] if not (non_tcp and port == "138"))
    flat["smb2_compressed_frames"] = facts["smb2_compressed_frames"]
    for identity, count in facts["ntlmssp_auth"].items():
        flat[f"ntlmssp_auth {identity}"] = count
    # `trees` counts the frames that name each tree (tshark shows the tree of every message on it),
    # not tree connects: the names are compared, not the counts.
    flat["trees"] = sorted(facts.get("trees", {}))
    return flat


def fact_differences(facts: dict[str, Any], document: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    theirs, mine = fact_values(facts), smbwatch_facts(document)
    out = {}
    for key in sorted(set(theirs) | set(mine)):
        default: Any = [] if key.endswith("_offered") or key in ("server_ports", "trees") else 0
        a, b = theirs.get(key, default), mine.get(key, default)
        if a != b:
            out[key] = (a, b)
    return out


# --- explained differences ---------------------------------------------------------------------

SEGMENTATION_RANDOM_OFFERED = [
    "DOS LANMAN2.1",
    "LANMAN1.0",
    "LANMAN2.1",
    "LM1.2X002",
    "MICROSOFT NETWORKS 1.03",
    "MICROSOFT NETWORKS 3.0",
    "NT LANMAN 1.0",
    "NT LM 0.12",
    "PC NETWORK PROGRAM 1.0",
    "Samba",
]
SMB2_PETER_GAP = (
    "one READ response lost 2896 bytes of its body (frame 191 removed from smb2-peter.pcap; -02 also "
    "removed frame 192, the rest of that body); tshark drops the incomplete PDU, smbwatch keeps the "
    "header of big READs and counts the response (test_oracle_tshark compares it with the original)",
    {"smb2_cmds RESP READ": (37, 38)},
)

DCERPC_AUTH3 = (
    "the DC$ AUTHENTICATE (frame 2904) is a DCE/RPC AUTH3 on a TCP connection to port 49667 (no SMB on it); "
    "facts.json counts every NTLMSSP AUTHENTICATE in the capture, smbwatch reports those of SMB sessions",
    {"ntlmssp_auth user='DC$' domain='NULL' host='WIN10'": (1, 0)},
)
ONE_SIDED_8629 = (
    "one-sided capture (client to server only, peer README): the two TREE_CONNECT requests get no response, "
    "and smbwatch reports a tree connect only once the server answers it",
    {"trees": (["\\\\dc1\\ADMIN$", "\\\\dc1\\IPC$"], [])},
)

# test folder -> (reason, {key: (facts value, smbwatch value)}), exactly as fact_differences reports.
KNOWN_FACT_DIFFERENCES: dict[str, tuple[str, dict[str, tuple[Any, Any]]]] = {
    "smb1-02": (
        "frame 9, the NEGOTIATE request of tcp.stream 1, was captured after the server's ACK of it (frame 8); "
        "tshark's default preferences call it a spurious retransmission and do not dissect it, so the facts "
        "see that response without its request. smbwatch reads it (as tshark does with "
        "tcp.reassemble_out_of_order:TRUE), and the peer expects NT LM 0.12 on all 3 connections",
        {
            "smb1_cmds REQ NEGOTIATE": (2, 3),
            "smb1_dialect_selected NT LM 0.12": (2, 3),
            "smb1_dialect_selected unknown": (1, 0),
        },
    ),
    "smb-eicar-file-segmentation-random": (
        "every client message is cut in random pieces, the first 1 byte long (frame 4); tshark 4.0 cannot "
        "reassemble a split NetBIOS header and sees no client message at all; smbwatch reads them all "
        "(one request per response) and index 9 of the offered list is 'NT LM 0.12'",
        {
            "smb1_cmds REQ NEGOTIATE": (0, 1),
            "smb1_cmds REQ SESSION_SETUP_ANDX": (0, 2),
            "smb1_cmds REQ TREE_CONNECT_ANDX": (0, 1),
            "smb1_cmds REQ NT_CREATE_ANDX": (0, 1),
            "smb1_cmds REQ WRITE_ANDX": (0, 1),
            "smb1_cmds REQ CLOSE": (0, 1),
            "smb1_cmds REQ TREE_DISCONNECT": (0, 1),
            "smb1_dialects_offered": ([], SEGMENTATION_RANDOM_OFFERED),
            "smb1_dialect_selected unknown": (1, 0),
            "smb1_dialect_selected NT LM 0.12": (0, 1),
            # with the requests, the NTLMSSP AUTHENTICATE (as in smb-eicar-file) and the tree connect
            "ntlmssp_auth user='NULL' domain='NULL' host='HOST'": (0, 1),
            "trees": ([], ["\\\\127.0.0.1\\PUBLIC"]),
        },
    ),
    "smb2-frames-gap-payload-logging": SMB2_PETER_GAP,
    "smb2-frames-gap-payload-logging-02": SMB2_PETER_GAP,
    "bug-5162": DCERPC_AUTH3,
    "dcerpc-smb-fail": DCERPC_AUTH3,
    "bug-8629": ONE_SIDED_8629,
    "bug-8629-async-oneside": ONE_SIDED_8629,
}


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_analyses_cleanly(case: tuple[str, str]) -> None:
    """No exception, exit status 0, every frame of the capture read."""
    test, file = case
    pcap = facts_of(test, file)
    path = SURICATA_VERIFY / test / file
    assert hashlib.sha256(path.read_bytes()).hexdigest() == pcap["sha256"], (
        f"{path} is not the file facts.json describes"
    )
    status, document, stderr = run_smbwatch(test, file)
    assert status == 0, stderr
    (source,) = document["stats"]["files"]
    assert source["error"] is None
    assert source["frames"] == pcap["frames"]
    assert document["stats"]["packets"] == pcap["frames"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_agrees_with_tshark_facts(case: tuple[str, str]) -> None:
    test, file = case
    pcap = facts_of(test, file)
    _, document, _ = run_smbwatch(test, file)
    got = fact_differences(pcap["tshark_facts"], document)
    reason, expected = KNOWN_FACT_DIFFERENCES.get(test, ("", {}))
    assert got == expected, (
        f"{test}/{file}: smbwatch differs from facts.json\n"
        + "\n".join(
            f"  {key}: facts {theirs!r}, smbwatch {mine!r}"
            + ("" if expected.get(key) == (theirs, mine) else "  <- unexplained")
            for key, (theirs, mine) in got.items()
        )
        + "".join(f"\n  {key}: explained difference no longer seen" for key in expected.keys() - got)
        + (f"\n  explained: {reason}" if reason else "")
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_wildcard_answers_are_followed(case: tuple[str, str]) -> None:
    """smbwatch reports "2.???" only for connections whose wildcard answer had no real negotiate after it."""
    test, file = case
    facts = facts_of(test, file)["tshark_facts"]
    _, document, _ = run_smbwatch(test, file)
    wildcard_only = sum(1 for connection in document["connections"] if connection["dialect"] == "2.???")
    assert wildcard_only <= facts["smb2_dialect_negotiated"].get(FACTS_SMB2_WILDCARD, 0)


def expected_smbwatch_dialect(suricata: str, facts: dict[str, Any]) -> str | None:
    """Suricata's smb.dialect in smbwatch's terms. Suricata says "unknown" whenever it saw no
    NEGOTIATE request; smbwatch says "unknown" when an SMB1 response was seen without its request
    (facts: "index N (request not seen)") and null when no negotiate was seen at all (midstream)."""
    if suricata == "unknown":
        unseen = any(name.startswith("index ") for name in facts["smb1_dialect_selected"])
        return "unknown" if unseen else None
    return SURICATA_SMB2_DIALECTS.get(suricata, suricata)


def peer_dialect_cases() -> list[tuple[str, str, str]]:
    out = set()
    for test, entry in load_facts().items():
        for check in entry["peer_checks"]:
            dialect = check.get("match", {}).get("smb.dialect")
            if dialect is not None and check.get("count", 1) > 0:
                out.update((test, pcap["file"], dialect) for pcap in entry["pcaps"])
    return sorted(out) or [("absent", "absent", "absent")]


@pytest.mark.parametrize("case", peer_dialect_cases(), ids=lambda case: f"{case[0]}/{case[1]}={case[2]}")
def test_peer_dialect(case: tuple[str, str, str]) -> None:
    """Suricata's smb.dialect expectation is the dialect of some smbwatch connection."""
    test, file, suricata = case
    facts = facts_of(test, file)["tshark_facts"]
    _, document, _ = run_smbwatch(test, file)
    expected = expected_smbwatch_dialect(suricata, facts)
    assert expected in [connection["dialect"] for connection in document["connections"]], suricata


# Suricata's smb event fields for who logged in and which tree was connected, and smbwatch's names.
PEER_SESSION_FIELDS = {"smb.ntlmssp.user": "user", "smb.ntlmssp.domain": "domain", "smb.ntlmssp.host": "workstation"}
PEER_TREE_FIELDS = ("smb.share", "smb.named_pipe")  # Suricata names a tree to IPC$ (share type pipe) a named pipe


def peer_auth_cases() -> list[tuple[str, str, int]]:
    """Peer checks of a SESSION_SETUP event that names the NTLMSSP user, or of a TREE_CONNECT event."""
    out = []
    for test, entry in load_facts().items():
        for number, check in enumerate(entry["peer_checks"]):
            match = check.get("match", {})
            command = str(match.get("smb.command", ""))
            session = command.endswith("SESSION_SETUP") and bool(PEER_SESSION_FIELDS.keys() & match.keys())
            tree = command.endswith("TREE_CONNECT") and any(name in match for name in PEER_TREE_FIELDS)
            if session or tree:
                out += [(test, pcap["file"], number) for pcap in entry["pcaps"]]
    return sorted(out) or [("absent", "absent", 0)]


@pytest.mark.parametrize("case", peer_auth_cases(), ids=lambda case: f"{case[0]}/{case[1]}#{case[2]}")
def test_peer_session_and_tree_checks(case: tuple[str, str, int]) -> None:
    """Suricata's expected SESSION_SETUP (NTLMSSP user, domain, host, status) and TREE_CONNECT (share or
    named pipe, status) events: as many smbwatch sessions / tree connects match as the peer expects events
    (one event per session setup or tree connect)."""
    test, file, number = case
    facts_of(test, file)
    check = load_facts()[test]["peer_checks"][number]
    match, expected = check["match"], check.get("count", 1)
    _, document, _ = run_smbwatch(test, file)
    wanted_status = match.get("smb.status")
    if match["smb.command"].endswith("SESSION_SETUP"):
        sessions = [s for c in document["connections"] for s in c["sessions"] if NTLMSSP_AUTHENTICATE_READ in s]
        found = [
            session
            for session in sessions
            if all(session[ours] == match[theirs] for theirs, ours in PEER_SESSION_FIELDS.items() if theirs in match)
            and wanted_status in (None, session["status"])
        ]
    else:
        trees = [tree for connection in document["connections"] for tree in connection["trees"]]
        pipe = "smb.named_pipe" in match
        path = match["smb.named_pipe" if pipe else "smb.share"]
        found = [
            tree
            for tree in trees
            if tree["path"] == path
            and (tree.get("share_type") == "pipe") == pipe
            and wanted_status in (None, tree["status"])
        ]
    assert len(found) == expected, f"{match}: {len(found)} found, the peer expects {expected}"


def test_trap_smb1_01_is_smb2_midstream() -> None:
    """README trap 1: smb1-01/smb1.pcap is SMB2 picked up without its NEGOTIATE, not SMB1."""
    facts_of("smb1-01", "smb1.pcap")
    _, document, _ = run_smbwatch("smb1-01", "smb1.pcap")
    (connection,) = document["connections"]
    assert connection["messages"]["smb1"] == 0 and connection["messages"]["smb2"] > 0
    assert not connection["smb1_used"] and not connection["smb1_offered"]
    assert connection["dialect"] is None
    assert connection["midstream"] is True


def test_trap_ntlmssp_order_is_edited() -> None:
    """README trap 2: smb2-ntlmssp-order/smb2.pcap is smb2.pcap (smb2-02) with the NTLMSSP user and host
    swapped on purpose; smbwatch must read what the edited file says, not what the original said."""
    facts_of("smb2-ntlmssp-order", "smb2.pcap")
    identities = {}
    for test in ("smb2-02", "smb2-ntlmssp-order"):
        _, document, _ = run_smbwatch(test, "smb2.pcap")
        (connection,) = document["connections"]
        (session,) = connection["sessions"]
        identities[test] = (session["user"], session["domain"], session["workstation"], session["status"])
    assert identities["smb2-02"] == ("Administrator", "CONTOSO", "SERVER01", "STATUS_SUCCESS")
    assert identities["smb2-ntlmssp-order"] == ("SERVER01", "CONTOSO", "Administrator", "STATUS_SUCCESS")
