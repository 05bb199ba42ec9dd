#!/usr/bin/env python3
"""Build the CRAFTED detection fixtures in pcaps/crafted/ (scapy; deterministic).

    python3 pcaps/crafted/make_detection_fixtures.py

Real software here cannot produce what these show (Samba is not vulnerable to
MS17-010), so each file carries only the on-the-wire fields a detection keys
on, around real bytes where real bytes exist. Nothing here is exploit code or
payload: no overflow, no shellcode, no implant; data fields are absent.

  ms17_010_unpatched.pcap
      A real SMB1 NEGOTIATE exchange (first two messages of
      recorded/smb1_nt1.pcap), then a TRANSACTION (0x25) request with Setup
      [0x0023 PeekNamedPipe, FID 0] to "\\PIPE\\" and the answer an unpatched
      server gives, STATUS_INSUFF_SERVER_RESOURCES (0xC0000205). Header fields
      and setup words only; parameter and data counts are zero.

  eternalblue_patterns.pcap
      Three EternalBlue patterns, each on its own connection from 192.0.2.66:
      (1) after the real NEGOTIATE, an ECHO with Flags2 0xC007 and the data
      "JlJmIhClBsr\0" the public tools send; (2) after the real NEGOTIATE, an
      NT_TRANSACT (Function 0) declaring TotalDataCount 0x10FE8 with no data,
      its interim answer, then three TRANSACTION2_SECONDARY requests with the
      same TID/UID/PID/MID, declaring counts but carrying no data; (3) four
      connections that each send only a NetBIOS header of length 0x00FFF7 and
      0xFE 'SMB' plus 60 zero bytes, then close. No FEA list, no overflow,
      no shellcode: the fields the detections key on, nothing else.

  doublepulsar_patterns.pcap
      After the real NEGOTIATE: a TRANS2 (0x32) request with subcommand
      SESSION_SETUP (0x000E), PID 0xFEFF, MID 65 and no data, answered
      STATUS_NOT_IMPLEMENTED with MID 81 (how the implant says it is there);
      a second one, MID 66, carrying 4,096 zero bytes (the size of an upload
      piece; zeros, not a payload), answered with MID 82 (how it says the
      payload ran). On a second connection the server sends an ECHO response
      with a PID and MID the client never used.

  alerts_open_connections.pcap
      For the live-latency test: the same header-only patterns, each on a
      connection that stays open long after its evidence (no FIN until the
      capture's last second, 12 s after the start), one pattern a second: an
      ECHO marker (t+0.5 s), an NT_TRANSACT continued by TRANSACTION2_SECONDARY
      (t+1.5 s), an MS17-010 probe answered STATUS_INSUFF_SERVER_RESOURCES
      (t+2.5 s), a DoublePulsar upload piece (4,096 zero bytes) that is never
      answered (t+3.5 s: "no answer" is due after the answer timeout), and
      three grooming connections (t+4.5 s). A sensor replaying it at real speed
      must raise each alert while the connections are still open.
"""

from __future__ import annotations

import struct
from pathlib import Path

from scapy.all import IP, TCP, Ether, Raw, rdpcap, wrpcap  # type: ignore

HERE = Path(__file__).resolve().parent
RECORDED = HERE.parent / "recorded" / "smb1_nt1.pcap"
CLIENT, SERVER = ("192.0.2.66", 49200), ("192.0.2.20", 445)
CLIENT_MAC, SERVER_MAC = "02:00:00:5b:00:66", "02:00:00:5b:00:20"
START = 1700000500.0
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205


def netbios(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


def smb1_header(
    command: int,
    *,
    reply: bool,
    status: int = 0,
    tid: int = 0x0800,
    uid: int = 0x0800,
    pid: int = 0xFEFF,
    mid: int = 64,
    flags2: int = 0x4001,  # NT status codes, long names; OEM strings
) -> bytes:
    flags = 0x98 if reply else 0x18
    return struct.pack("<4sBIBHH8s2sHHHH", b"\xffSMB", command, status, flags, flags2, 0, bytes(8), bytes(2),
                       tid, pid, uid, mid)  # fmt: skip


def peek_named_pipe_request() -> bytes:
    """[MS-CIFS] 2.2.4.33.1 with SetupCount 2: TRANS_PEEK_NMPIPE (0x0023) on FID 0, Name "\\PIPE\\"."""
    name = b"\\PIPE\\\x00"
    words = struct.pack("<HHHHBxHIxxHHHHBx", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0, 74, 0, 74, 2) + struct.pack(
        "<HH", 0x23, 0
    )
    return smb1_header(0x25, reply=False) + bytes([len(words) // 2]) + words + struct.pack("<H", len(name)) + name


def error_response(status: int, command: int = 0x25, **header: int) -> bytes:
    return smb1_header(command, reply=True, status=status, **header) + b"\x00\x00\x00"


def echo_request(data: bytes, flags2: int) -> bytes:
    """[MS-CIFS] 2.2.4.39.1: EchoCount 1, then the data to echo."""
    return smb1_header(0x2B, reply=False, flags2=flags2, mid=65) + b"\x01\x01\x00" + struct.pack("<H", len(data)) + data


def nt_transact_request(total_data_count: int, mid: int) -> bytes:
    """[MS-CIFS] 2.2.4.62.1 with SetupCount 0 and Function 0; declared counts only, no data."""
    words = struct.pack("<B2xIIIIIIIIBH", 1, 0, total_data_count, 0, 0, 0, 0, 0, 0, 0, 0)
    return smb1_header(0xA0, reply=False, mid=mid) + bytes([len(words) // 2]) + words + b"\x00\x00"


def trans2_secondary_request(displacement: int, mid: int) -> bytes:
    """[MS-CIFS] 2.2.4.47.1 (WordCount 9): counts and displacements, no data."""
    words = struct.pack("<HHHHHHHHH", 0, 0x10FE8 & 0xFFFF, 0, 0, 0, 0, 0, displacement & 0xFFFF, 0xFFFF)
    return smb1_header(0x33, reply=False, mid=mid) + bytes([len(words) // 2]) + words + b"\x00\x00"


def trans2_session_setup_request(mid: int, data: bytes) -> bytes:
    """[MS-CIFS] 2.2.4.46.1 with SetupCount 1: subcommand TRANS2_SESSION_SETUP (0x000E)."""
    header_size, fixed_words = 32, 15
    data_offset = header_size + 1 + 2 * (fixed_words + 1) + 2 + 1  # +1: pad to a 4-byte boundary
    words = struct.pack(
        "<HHHHBxHIxxHHHHBx", 0, len(data), 0, 0, 0, 0, 0, 0, 0, len(data), data_offset if data else 0, 1
    ) + struct.pack("<H", 0x000E)
    body = b"\x00" + data
    parameters = bytes([len(words) // 2]) + words + struct.pack("<H", len(body)) + body
    return smb1_header(0x32, reply=False, mid=mid) + parameters


def real_negotiate() -> tuple[bytes, bytes]:
    """The first client and server payloads of the recorded SMB1 session (NEGOTIATE request and response)."""
    client = server = b""
    for packet in rdpcap(str(RECORDED)):
        if TCP in packet and packet[TCP].payload and bytes(packet[TCP].payload):
            payload = bytes(packet[TCP].payload)
            if packet[TCP].dport == 445 and not client:
                client = payload
            elif packet[TCP].sport == 445 and client and not server:
                server = payload
    return client, server


def session(
    exchanges: list[tuple[str, bytes]],
    client_port: int = CLIENT[1],
    start: float = START,
    close_at: float | None = None,
) -> list:
    """One connection: handshake, the exchanges 0.1 ms apart, then FIN (at `close_at` if given)."""
    frames = []
    seq = {"c": 1000, "s": 5000}
    clock = [start]
    client = (CLIENT[0], client_port)

    def emit(side: str, flags: str, payload: bytes = b"") -> None:
        src, dst = (client, SERVER) if side == "c" else (SERVER, client)
        macs = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        other = "s" if side == "c" else "c"
        tcp = TCP(
            sport=src[1], dport=dst[1], flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0, window=65535
        )
        packet = Ether(src=macs[0], dst=macs[1]) / IP(src=src[0], dst=dst[0]) / tcp
        if payload:
            packet = packet / Raw(payload)
        packet.time = clock[0]
        clock[0] += 0.0001
        frames.append(packet)
        seq[side] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    emit("c", "S")
    emit("s", "SA")
    emit("c", "A")
    for side, payload in exchanges:
        emit(side, "PA", payload)
    if close_at is not None:
        clock[0] = max(clock[0], close_at)
    emit("c", "FA")
    emit("s", "FA")
    emit("c", "A")
    return frames


def main() -> None:
    negotiate_request, negotiate_response = real_negotiate()
    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(peek_named_pipe_request())),
        ("s", netbios(error_response(STATUS_INSUFF_SERVER_RESOURCES))),
    ])  # fmt: skip
    wrpcap(str(HERE / "ms17_010_unpatched.pcap"), frames, linktype=1)
    print("wrote ms17_010_unpatched.pcap")

    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(echo_request(b"JlJmIhClBsr\x00", flags2=0xC007))),
        ("s", netbios(error_response(0, command=0x2B, mid=65, flags2=0xC007))),
    ], client_port=49301, start=START)  # fmt: skip
    frames += session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(nt_transact_request(0x10FE8, mid=0))),
        ("s", netbios(error_response(0, command=0xA0, mid=0))),
        *[("c", netbios(trans2_secondary_request(0x1000 * i, mid=0))) for i in range(3)],
    ], client_port=49302, start=START + 1)  # fmt: skip
    grooming_frame = (0x00FFF7).to_bytes(4, "big") + b"\xfeSMB" + bytes(60)
    for i in range(4):
        frames += session([("c", grooming_frame)], client_port=49310 + i, start=START + 2 + i * 0.01)
    wrpcap(str(HERE / "eternalblue_patterns.pcap"), frames, linktype=1)
    print("wrote eternalblue_patterns.pcap")

    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(trans2_session_setup_request(65, b""))),
        ("s", netbios(error_response(0xC0000002, command=0x32, mid=81))),
        ("c", netbios(trans2_session_setup_request(66, bytes(4096)))),
        ("s", netbios(error_response(0xC0000002, command=0x32, mid=82))),
    ], client_port=49401, start=START + 10)  # fmt: skip
    frames += session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("s", netbios(error_response(0, command=0x2B, pid=0x1234, mid=0x4321))),
    ], client_port=49402, start=START + 11)  # fmt: skip
    wrpcap(str(HERE / "doublepulsar_patterns.pcap"), frames, linktype=1)
    print("wrote doublepulsar_patterns.pcap")

    start, close = START + 500, START + 512
    negotiate = [("c", negotiate_request), ("s", negotiate_response)]
    frames = session(
        [*negotiate, ("c", netbios(echo_request(b"JlJmIhClBsr\x00", flags2=0xC007)))],
        client_port=49501, start=start + 0.5, close_at=close,
    )  # fmt: skip
    frames += session([
        *negotiate,
        ("c", netbios(nt_transact_request(0x10FE8, mid=0))),
        ("s", netbios(error_response(0, command=0xA0, mid=0))),
        ("c", netbios(trans2_secondary_request(0, mid=0))),
    ], client_port=49502, start=start + 1.5, close_at=close)  # fmt: skip
    frames += session([
        *negotiate,
        ("c", netbios(peek_named_pipe_request())),
        ("s", netbios(error_response(STATUS_INSUFF_SERVER_RESOURCES))),
    ], client_port=49503, start=start + 2.5, close_at=close)  # fmt: skip
    frames += session(
        [*negotiate, ("c", netbios(trans2_session_setup_request(66, bytes(4096))))],
        client_port=49504, start=start + 3.5, close_at=close,
    )  # fmt: skip
    for i in range(3):
        frames += session([("c", grooming_frame)], client_port=49510 + i, start=start + 4.5 + i * 0.01, close_at=close)
    frames.sort(key=lambda packet: float(packet.time))
    wrpcap(str(HERE / "alerts_open_connections.pcap"), frames, linktype=1)
    print("wrote alerts_open_connections.pcap")


if __name__ == "__main__":
    main()
