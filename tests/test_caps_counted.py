"""Issue 15: a cap that drops data is counted, once per item dropped, in the connection's record
and in `stats.anomalies` (what `smbwatch_anomalies_total` reads too). The captures here are built
byte by byte: one TCP connection, seen from its SYN, carrying SMB1 requests."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dissectors.records import AnomalyKind
from monitor.cli import analyze_files
from monitor.detect.ms17_010 import MAX_ANSWERED_REQUESTS, MAX_OPEN_EXCHANGES, MAX_OUTSTANDING_REQUESTS, Ms17010Watch
from monitor.output.report import build_document
from monitor.smb.session import MAX_DIALECTS_KEPT
from monitor.smb.uses import MAX_TREES_TRACKED
from monitor.tcp.flows import FlowLimits
from tests.test_ms17_010 import ECHO, NT_TRANSACT, TRANS2, nt_transact, request, response, trans2

CLIENT, SERVER = b"\xc0\x00\x02\x0a", b"\xc0\x00\x02\x14"
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
SEGMENT = 32768  # TCP payload per packet (an IPv4 packet holds at most 65,535 bytes)
# TotalParameterCount .. Reserved3 of a TRANSACTION2 request (dissectors/smb1/transaction.py).
TRANS2_FIXED = struct.Struct("<HHHHBxHIxxHHHHBx")


def smb1(command: int, mid: int, words: bytes = b"", *, tid: int = 7, pid: int = 100, reply: bool = False) -> bytes:
    """[MS-CIFS] 2.2.3.1 header, then WordCount, the words and an empty ByteCount."""
    header = struct.pack(
        "<4sBIBHH8sHHHHH", b"\xffSMB", command, 0, 0x98 if reply else 0x18, 0xC807, 0, b"", 0, tid, pid, 9, mid
    )
    return header + bytes([len(words) // 2]) + words + b"\x00\x00"


def trans2_request(subcommand: int, mid: int, tid: int = 7) -> bytes:
    words = TRANS2_FIXED.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1) + struct.pack("<H", subcommand)
    return smb1(TRANS2, mid, words, tid=tid)


def ip_tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0, src, dst)
    return ip + struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def connection_pcap(path: Path, to_server: Sequence[bytes], to_client: Sequence[bytes] = ()) -> str:
    """A raw-IP pcap: handshake, the client's SMB messages, the server's, FIN both ways."""
    client_seq, server_seq = 1000, 5000
    packets = [
        ip_tcp(CLIENT, SERVER, 50000, 445, client_seq, 0, SYN, b""),
        ip_tcp(SERVER, CLIENT, 445, 50000, server_seq, client_seq + 1, SYN | ACK, b""),
    ]
    client_seq, server_seq = client_seq + 1, server_seq + 1
    packets.append(ip_tcp(CLIENT, SERVER, 50000, 445, client_seq, server_seq, ACK, b""))
    for message in to_server:
        data = struct.pack("!I", len(message)) + message  # NetBIOS SESSION MESSAGE
        for start in range(0, len(data), SEGMENT):
            chunk = data[start : start + SEGMENT]
            packets.append(ip_tcp(CLIENT, SERVER, 50000, 445, client_seq, server_seq, ACK | PSH, chunk))
            client_seq += len(chunk)
    for message in to_client:
        data = struct.pack("!I", len(message)) + message
        for start in range(0, len(data), SEGMENT):
            chunk = data[start : start + SEGMENT]
            packets.append(ip_tcp(SERVER, CLIENT, 445, 50000, server_seq, client_seq, ACK | PSH, chunk))
            server_seq += len(chunk)
    packets.append(ip_tcp(CLIENT, SERVER, 50000, 445, client_seq, server_seq, FIN | ACK, b""))
    packets.append(ip_tcp(SERVER, CLIENT, 445, 50000, server_seq, client_seq + 1, FIN | ACK, b""))
    packets.append(ip_tcp(CLIENT, SERVER, 50000, 445, client_seq + 1, server_seq + 1, ACK, b""))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    for index, packet in enumerate(packets):
        out += struct.pack("<IIII", 1_700_000_000, index, len(packet), len(packet)) + packet
    path.write_bytes(bytes(out))
    return str(path)


def analyze(path: str) -> dict[str, Any]:
    return build_document(analyze_files([path], FlowLimits(), 1000))


def counted(document: dict[str, Any], kind: str) -> tuple[int, int]:
    """(the count in stats.anomalies, the count in the one connection's record)."""
    [record] = document["connections"]
    return document["stats"]["anomalies"].get(kind, 0), record["anomalies"].get(kind, 0)


# --- 1. the MS17-010 watch lists ---------------------------------------------------------


def test_ms17_010_watch_counts_each_request_it_turns_away_or_forgets() -> None:
    rules = Ms17010Watch([], trusted=True)
    extra = 5
    for mid in range(MAX_OPEN_EXCHANGES + extra):
        rules.message(request(TRANS2, trans2(0x000E), mid=mid), 0.0)  # DoublePulsar pings
        rules.message(request(NT_TRANSACT, nt_transact(0x20000), mid=1000 + mid), 0.0)
    assert rules.anomalies == {AnomalyKind.MS17_010_WATCH_FULL: 2 * extra}
    rules.message(request(TRANS2, trans2(0x000E), mid=0), 0.0)  # one already watched: nothing turned away
    assert rules.anomalies == {AnomalyKind.MS17_010_WATCH_FULL: 2 * extra}
    for mid in range(2000, 2000 + MAX_OUTSTANDING_REQUESTS):  # requests never answered push the first out
        rules.message(request(ECHO, mid=mid), 0.0)
    forgotten = 2 * (MAX_OPEN_EXCHANGES + extra)  # the pings and NT_TRANSACTs, oldest first
    assert rules.anomalies == {AnomalyKind.MS17_010_WATCH_FULL: 2 * extra + forgotten}


def test_ms17_010_answered_window_moving_on_is_not_counted() -> None:
    rules = Ms17010Watch([], trusted=True)
    for mid in range(4 * MAX_ANSWERED_REQUESTS):  # an ordinary long SMB1 connection
        rules.message(request(ECHO, mid=mid), 0.0)
        rules.message(response(ECHO, mid=mid), 0.0)
    assert not rules.anomalies and not rules.findings


def test_ms17_010_watch_full_reaches_the_totals_once(tmp_path: Path) -> None:
    pings = [trans2_request(0x000E, mid) for mid in range(MAX_OPEN_EXCHANGES + 4)]  # 4 not watched
    fillers = [trans2_request(0x0001, 10_000 + mid) for mid in range(MAX_OUTSTANDING_REQUESTS)]  # never answered
    document = analyze(connection_pcap(tmp_path / "flood.pcap", pings + fillers))
    forgotten = len(pings) + len(fillers) - MAX_OUTSTANDING_REQUESTS
    assert counted(document, "ms17_010_watch_full") == (4 + forgotten, 4 + forgotten)


# --- 5. use tracking ---------------------------------------------------------------------


def test_requests_on_trees_past_those_tracked_reach_the_totals_once(tmp_path: Path) -> None:
    extra = 6
    requests = [trans2_request(0x0001, mid, tid=100 + mid) for mid in range(MAX_TREES_TRACKED + extra)]
    requests += [trans2_request(0x0001, 1000 + mid, tid=100 + mid) for mid in range(MAX_TREES_TRACKED + extra)]
    document = analyze(connection_pcap(tmp_path / "trees.pcap", requests))
    assert counted(document, "use_tracking_full") == (2 * extra, 2 * extra)  # two requests on each untracked tree
    assert "ms17_010_watch_full" not in document["stats"]["anomalies"]


# --- 6. dialects offered -----------------------------------------------------------------


def smb1_negotiate(dialects: Sequence[str]) -> bytes:
    """An SMB1 NEGOTIATE request: WordCount 0, then the 0x02-prefixed dialect strings."""
    data = b"".join(b"\x02" + dialect.encode() + b"\x00" for dialect in dialects)
    return smb1(0x72, 1)[:-2] + struct.pack("<H", len(data)) + data


def test_dialects_past_those_kept_reach_the_totals_once(tmp_path: Path) -> None:
    extra = 6
    offered = [f"DIALECT {i}" for i in range(MAX_DIALECTS_KEPT + extra)]
    offered += [offered[0], offered[-1]]  # listed twice: one offer each
    document = analyze(connection_pcap(tmp_path / "dialects.pcap", [smb1_negotiate(offered)]))
    assert counted(document, "dialects_full") == (extra, extra)
    [record] = document["connections"]
    assert record["dialects_offered"] == offered[:MAX_DIALECTS_KEPT]


# --- 7. lists of names kept per object: names_kept_full ------------------------------------


def test_names_past_a_connections_lists_are_counted_per_request() -> None:
    from dissectors.records import Smb1Header, Smb1TransactionRequest
    from monitor.smb.uses import MAX_NAMES_KEPT, UseTracker

    tracker = UseTracker()
    header = Smb1Header(0x25, 0, 0x18, 0xC807, 7, 100, 9, 1)
    extra = 3
    for index in range(MAX_NAMES_KEPT + extra):
        tracker.smb1_request(header, Smb1TransactionRequest(0, 0, 0, 0, (0x26, 1), f"\\PIPE\\pipe{index}"))
    tracker.smb1_request(header, Smb1TransactionRequest(0, 0, 0, 0, (0x26, 1), "\\PIPE\\pipe0"))  # kept: not counted
    for opcode in range(MAX_NAMES_KEPT + extra):
        tracker.smb1_request(header, Smb1TransactionRequest(0, 0, 0, 0, (), "\\PIPE\\LANMAN", rap_opcode=opcode))
    tracker.smb1_request(header, Smb1TransactionRequest(0, 0, 0, 0, (), "\\PIPE\\LANMAN", rap_opcode=0))
    assert tracker.anomalies == {AnomalyKind.NAMES_KEPT_FULL: 2 * extra}
    assert len(tracker.rap_functions) == MAX_NAMES_KEPT
    from dissectors.records import Smb1OpenRequest

    for mid in range(extra):  # opens never answered: listed at the end if there is room, and there is none
        tracker.smb1_request(header._replace(command=0xA2, mid=100 + mid), Smb1OpenRequest(f"\\late{mid}"))
    tracker.smb1_request(header._replace(command=0xA2, mid=200), Smb1OpenRequest("\\pipe0"))  # listed already
    assert tracker.anomalies == {AnomalyKind.NAMES_KEPT_FULL: 2 * extra}
    tracker.end()
    assert tracker.anomalies == {AnomalyKind.NAMES_KEPT_FULL: 3 * extra}


def test_files_opened_on_a_disk_share_take_no_pipe_name_place() -> None:
    """A file copy opens hundreds of names on C$: they are files, not pipes, and must leave the
    `named_pipes` places to the pipes opened on IPC$ (the psexec capture lost \\wkssvc that way)."""
    from dissectors.records import Smb1Header, Smb1OpenRequest
    from monitor.smb.uses import MAX_NAMES_KEPT, UseTracker

    trees = [
        {"tree_id": 5, "status": "STATUS_SUCCESS", "share_type": "disk", "path": "\\\\fs\\C$"},
        {"tree_id": 9, "status": "STATUS_SUCCESS", "share_type": "pipe", "path": "\\\\fs\\IPC$"},
    ]
    tracker = UseTracker(trees=trees)
    open_request = Smb1Header(0xA2, 0, 0x18, 0xC807, 5, 100, 9, 1)
    for mid in range(MAX_NAMES_KEPT * 4):
        tracker.smb1_request(open_request._replace(mid=mid), Smb1OpenRequest(f"\\Windows\\file{mid}.txt"))
        tracker.smb1_response(open_request._replace(mid=mid, flags=0x98))
    tracker.smb1_request(open_request._replace(tid=9, mid=999), Smb1OpenRequest("\\wkssvc"))
    tracker.smb1_response(open_request._replace(tid=9, mid=999, flags=0x98))
    tracker.end()
    described = tracker.describe(trees, 1, True, False, False)
    assert described["named_pipes"] == ["\\wkssvc"] and not tracker.anomalies
    assert described["uses"] == ["file_access", "named_pipe"]


def test_names_past_a_brute_force_pairs_users_are_counted() -> None:
    from monitor.detect import MAX_USERS_PER_PAIR, ConnectionRef, DetectionSettings, Detector

    detector = Detector(DetectionSettings(bruteforce_failures=1000))
    pair = ConnectionRef.between("192.0.2.66", "192.0.2.20")
    extra = 4
    for index in range(MAX_USERS_PER_PAIR + extra):
        detector.session_result(pair, float(index), 0xC000006D, f"user{index}")
    detector.session_result(pair, 100.0, 0xC000006D, "user0")  # listed already
    assert detector.anomalies() == {AnomalyKind.NAMES_KEPT_FULL: extra}


def test_names_dialects_and_hints_past_an_inventorys_lists_reach_the_totals_once(tmp_path: Path) -> None:
    from monitor.output.inventory import MAX_DIALECTS_PER_PAIR, MAX_HINTS_PER_HOST, MAX_NAMES_PER_PAIR, Inventory

    pings = [trans2_request(0x0001, mid) for mid in range(2)]
    [record] = analyze(connection_pcap(tmp_path / "one.pcap", pings))["connections"]
    assert record["smb1_used"]
    inventory = Inventory()
    extra = 2
    for index in range(MAX_NAMES_PER_PAIR + extra):
        inventory(
            {
                **record,
                "attack_alerts": [],
                "uses": ["named_pipe"],
                "dialects_offered": ["NT LM 0.12"],
                "named_pipes": [f"\\p{index}", "\\p0"],  # \p0 again: kept, not counted
                "rap_functions": [],
                "dialect": f"D{index}" if index < MAX_NAMES_PER_PAIR else "D0",  # D0 again: kept
                "client_hints": {"native_os": f"Windows {index}", "workstation": f"HOST{index}"},
                "server_hints": {},
            }
        )
    names_left_out = extra
    dialects_left_out = MAX_NAMES_PER_PAIR - MAX_DIALECTS_PER_PAIR  # D8 .. D15
    hints_left_out = 2 * (MAX_NAMES_PER_PAIR + extra - MAX_HINTS_PER_HOST)  # an OS hint and a name each
    total = names_left_out + dialects_left_out + hints_left_out
    assert inventory.anomalies()[AnomalyKind.NAMES_KEPT_FULL] == total


# --- 8. bytes kept of a message: message_cut_at_kept_bytes -------------------------------


def test_smb1_messages_and_netbios_packets_past_the_bytes_kept_count_once_each() -> None:
    from dissectors.message import MAX_KEPT_MESSAGE
    from dissectors.stream import MAX_KEPT_CONTROL_PACKET, SmbStream
    from tests.test_smb2 import smb2_header

    def session_message(body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + body

    big_smb1 = trans2_request(0x0001, 1) + bytes(MAX_KEPT_MESSAGE)  # one byte-for-byte cut each
    read_andx = smb1(0x2E, 2, reply=True) + bytes(2 * MAX_KEPT_MESSAGE)  # bulk: kept 256 by design
    ioctl = smb2_header(0x0B) + bytes(2 * MAX_KEPT_MESSAGE)  # SMB2: what it cuts counts by what it breaks
    exact = trans2_request(0x0001, 3)
    exact += bytes(MAX_KEPT_MESSAGE - len(exact))  # exactly the bytes kept: not cut
    stream = SmbStream(direct_tcp=True)
    cuts = 3
    for data in [big_smb1] * cuts + [read_andx, ioctl, exact]:
        stream.feed(session_message(data))
    events = stream.events()
    found = [e for e in events if getattr(e, "kind", None) is AnomalyKind.MESSAGE_CUT_AT_KEPT_BYTES]
    assert len(found) == cuts

    on_139 = SmbStream(direct_tcp=False)
    for length in (MAX_KEPT_CONTROL_PACKET + 1, MAX_KEPT_CONTROL_PACKET, 10, 5000):
        on_139.feed(bytes([0x85, 0x01 if length > 0xFFFF else 0]) + (length & 0xFFFF).to_bytes(2, "big"))
        on_139.feed(bytes(length))
    events = on_139.events()
    assert [type(e).__name__ for e in events].count("NetbiosSessionPacket") == 4
    found = [e for e in events if getattr(e, "kind", None) is AnomalyKind.MESSAGE_CUT_AT_KEPT_BYTES]
    assert len(found) == 2


def test_smb1_messages_cut_at_the_bytes_kept_reach_the_totals_once(tmp_path: Path) -> None:
    from dissectors.message import MAX_KEPT_MESSAGE

    cuts = 3
    big = [trans2_request(0x0001, mid) + bytes(MAX_KEPT_MESSAGE) for mid in range(cuts)]
    document = analyze(connection_pcap(tmp_path / "big.pcap", big))
    assert counted(document, "message_cut_at_kept_bytes") == (cuts, cuts)
