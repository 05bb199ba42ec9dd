"""SMB1 uses and retirement verdicts on the recorded browsing, printing and named-pipe captures.

pcaps/recorded/smb1_browsing_139.pcap, smb1_printing.pcap and smb1_named_pipe.pcap are real smbclient /
rpcclient <-> smbd traffic (`pcaps/lab/record.sh smb1_browsing_139 smb1_printing smb1_named_pipe`);
each use has a positive test on its capture and a negative one on another connection.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from dissectors.constants import Smb1Command, Smb2Command
from dissectors.records import AnomalyKind, Smb1Header, Smb1OpenRequest
from monitor.smb.uses import MAX_OPENS_PENDING, MAX_TREES_TRACKED, UseTracker
from tests.retirement_reports import document_of, hosts_of, pairs_of

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
BROWSING = "recorded/smb1_browsing_139.pcap"
PRINTING = "recorded/smb1_printing.pcap"
NAMED_PIPE = "recorded/smb1_named_pipe.pcap"
CLIENT, SERVER = "192.0.2.10", "192.0.2.20"
IPC = [{"tree_id": 1, "status": "STATUS_SUCCESS", "path": "\\\\192.0.2.20\\IPC$", "share_type": "pipe"}]
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034


def connections_of(*names: str) -> list[dict[str, Any]]:
    return document_of(*names)["connections"]


def smb1_connection(name: str) -> dict[str, Any]:
    [connection] = [c for c in connections_of(name) if c["smb1_used"]]
    return connection


# --- browsing: RAP over \PIPE\LANMAN on port 139 beside SMB3 -----------------------------------------


def test_browsing_on_139_names_its_rap_functions_and_breaks_beside_smb3() -> None:
    """smbclient -L forced to NT1 on port 139: RAP NetShareEnum (tshark: lanman.function_code 0, frames
    64/65) and NetServerEnum2 (104, frames 66-69), while the same pair ran an SMB 3.1.1 file session on 445."""
    smb3, browsing = connections_of(BROWSING)
    assert smb3["dialect"] == "3.1.1" and smb3["server"]["port"] == 445 and not smb3["smb1_used"]
    assert browsing["transport"] == "netbios139" and browsing["dialect"] == "NT LANMAN 1.0"
    assert browsing["uses"] == ["browsing"]
    assert browsing["rap_functions"] == ["NetShareEnum", "NetServerEnum2"]
    pair = pairs_of(BROWSING)[CLIENT, SERVER]
    assert pair["status"] == "breaks" and pair["breaks_if_smb1_disabled"]
    assert pair["uses"] == ["browsing"] and pair["rap_functions"] == ["NetShareEnum", "NetServerEnum2"]
    assert "browsing over \\PIPE\\LANMAN (NetShareEnum, NetServerEnum2) has no SMB2/3 equivalent" in pair["reason"]
    server = hosts_of(BROWSING)[SERVER]["smb1_retirement"]
    assert server["highest_dialect_accepted"] == "3.1.1" and server["breaks_if_smb1_disabled"]


def test_the_smb3_connection_beside_the_browsing_is_no_smb1_use() -> None:
    smb3 = connections_of(BROWSING)[0]
    assert smb3["uses"] == ["file_access"] and smb3["rap_functions"] == []
    pair = pairs_of(BROWSING)[CLIENT, SERVER]
    assert pair["connections"] == 1 and pair["server_ports"] == [139]
    assert "file_access" not in pair["uses"] and pair["smb1_dialects"] == ["NT LANMAN 1.0"]


def test_printing_and_named_pipe_connections_do_no_browsing() -> None:
    for name in (PRINTING, NAMED_PIPE):
        connection = smb1_connection(name)
        assert "browsing" not in connection["uses"] and connection["rap_functions"] == [], name


# --- printing: a print share, smbclient's print (NT_CREATE_ANDX, WRITE_ANDX, CLOSE) -------------------


def test_printing_is_a_print_share_and_breaks_on_an_smb1_only_client() -> None:
    """The tree connect to \\\\192.0.2.20\\LP is answered with service "LPT1:" (tshark: smb.service)."""
    connection = smb1_connection(PRINTING)
    assert connection["uses"] == ["printing"] and connection["named_pipes"] == []
    assert [(tree["path"], tree["share_type"]) for tree in connection["trees"]] == [
        ("\\\\192.0.2.20\\IPC$", "pipe"),
        ("\\\\192.0.2.20\\LP", "print"),
    ]
    pair = pairs_of(PRINTING)[CLIENT, SERVER]
    assert pair["status"] == "breaks" and pair["uses"] == ["printing"]
    assert pair["reason"] == "the client offered only SMB1 dialects on 1 connection(s) used for printing"


def test_file_browsing_and_pipe_connections_are_not_printing() -> None:
    for name in ("recorded/smb1_nt1.pcap", BROWSING, NAMED_PIPE):
        assert "printing" not in smb1_connection(name)["uses"], name
    assert all("printing" not in c["uses"] for c in connections_of(BROWSING))


# --- named pipe: DCE/RPC srvsvc over SMB1 -------------------------------------------------------------


def test_named_pipe_names_the_pipe() -> None:
    """rpcclient srvinfo: NT_CREATE_ANDX \\srvsvc -> FID, DCE/RPC bind and NetSrvGetInfo in TRANSACTIONs."""
    connection = smb1_connection(NAMED_PIPE)
    assert connection["uses"] == ["named_pipe"] and connection["named_pipes"] == ["\\srvsvc"]
    pair = pairs_of(NAMED_PIPE)[CLIENT, SERVER]
    assert pair["status"] == "breaks" and pair["uses"] == ["named_pipe"]
    assert pair["named_pipes"] == ["\\srvsvc"] and pair["rap_functions"] == []


def test_a_pipe_open_the_server_refused_is_no_named_pipe_use() -> None:
    """smbclient -L tries \\srvsvc first; smbd without DCE/RPC answers STATUS_OBJECT_NAME_NOT_FOUND
    (tshark: frame 63) and the client falls back to RAP: browsing, no pipe."""
    browsing = connections_of(BROWSING)[1]
    assert "named_pipe" not in browsing["uses"] and browsing["named_pipes"] == []
    assert pairs_of(BROWSING)[CLIENT, SERVER]["named_pipes"] == []
    # smbclient's IPC$ with only a DFS referral on it, before the print share: no pipe either.
    assert "named_pipe" not in smb1_connection(PRINTING)["uses"]


def test_the_three_uses_of_one_pair_together() -> None:
    pair = pairs_of(BROWSING, PRINTING, NAMED_PIPE)[CLIENT, SERVER]
    assert pair["uses"] == ["printing", "named_pipe", "browsing"] and pair["status"] == "breaks"
    assert pair["connections"] == 3 and pair["server_ports"] == [139, 445]
    assert pair["named_pipes"] == ["\\srvsvc"] and pair["rap_functions"] == ["NetShareEnum", "NetServerEnum2"]


# --- the open's answer decides -----------------------------------------------------------------------


def header(command: int, status: int = 0, mid: int = 7, response: bool = False) -> Smb1Header:
    return Smb1Header(command, status, 0x98 if response else 0x18, 0xC807, 1, 100, 2, mid)


def test_an_open_counts_once_answered_with_a_fid_or_left_unanswered() -> None:
    create = int(Smb1Command.SMB_COM_NT_CREATE_ANDX)
    refused = UseTracker()
    refused.smb1_request(header(create), Smb1OpenRequest("\\srvsvc"))
    refused.smb1_response(header(create, STATUS_OBJECT_NAME_NOT_FOUND, response=True))
    assert refused.describe(IPC, 1, True, False, False) == {
        "uses": ["session_only"],
        "named_pipes": [],
        "rap_functions": [],
    }
    opened = UseTracker()
    opened.smb1_request(header(create), Smb1OpenRequest("\\srvsvc"))
    opened.smb1_response(header(create, response=True))
    assert opened.describe(IPC, 1, True, False, False)["named_pipes"] == ["\\srvsvc"]
    unanswered = UseTracker()  # the capture ended, or the answer was lost: the open still counts
    unanswered.smb1_request(header(create), Smb1OpenRequest("\\spoolss"))
    assert unanswered.describe(IPC, 1, True, False, False) == {
        "uses": ["named_pipe"],
        "named_pipes": ["\\spoolss"],
        "rap_functions": [],
    }
    # An answer to another request (other MID) leaves the open pending.
    unanswered.smb1_response(header(create, STATUS_OBJECT_NAME_NOT_FOUND, mid=8, response=True))
    assert unanswered.describe(IPC, 1, True, False, False)["uses"] == ["named_pipe"]


def test_pending_opens_are_capped_and_past_the_cap_count_unanswered() -> None:
    create = int(Smb1Command.SMB_COM_NT_CREATE_ANDX)
    tracker = UseTracker()
    for mid in range(MAX_OPENS_PENDING + 1):
        tracker.smb1_request(header(create, mid=mid), Smb1OpenRequest(f"\\pipe{mid}"))
    for mid in range(MAX_OPENS_PENDING + 1):  # every open refused; the one past the cap was counted already
        tracker.smb1_response(header(create, STATUS_OBJECT_NAME_NOT_FOUND, mid=mid, response=True))
    assert tracker.describe(IPC, 1, True, False, False)["named_pipes"] == [f"\\pipe{MAX_OPENS_PENDING}"]
    assert tracker.anomalies == {AnomalyKind.USE_TRACKING_FULL: 1}  # the one open not awaited


def test_opens_and_trees_past_the_caps_are_counted_in_the_connection_s_anomalies() -> None:
    create = int(Smb1Command.SMB_COM_NT_CREATE_ANDX)
    anomalies: Counter[AnomalyKind] = Counter()
    tracker = UseTracker(anomalies)
    for mid in range(MAX_OPENS_PENDING + 3):
        tracker.smb1_request(header(create, mid=mid), Smb1OpenRequest(f"\\pipe{mid}"))
    tracker.smb1_request(header(create, mid=0), Smb1OpenRequest("\\pipe0"))  # one already waiting: not counted
    assert anomalies == {AnomalyKind.USE_TRACKING_FULL: 3}
    for tree_id in range(MAX_TREES_TRACKED + 4):  # the opens' SMB1 tree holds one of the 64: 5 of these past the cap
        tracker.smb2_request(int(Smb2Command.CREATE), 1000 + tree_id)
        tracker.smb2_request(int(Smb2Command.CREATE), 1000 + tree_id)
        tracker.smb2_request(int(Smb2Command.READ), 1000 + tree_id)  # marks no tree
    assert anomalies == {AnomalyKind.USE_TRACKING_FULL: 3 + 2 * 5}
