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


def smb1_header(command: int, *, reply: bool, status: int = 0, tid: int = 0x0800, uid: int = 0x0800) -> bytes:
    flags = 0x98 if reply else 0x18
    flags2 = 0x4001  # NT status codes, long names; OEM strings
    return struct.pack("<4sBIBHH8s2sHHHH", b"\xffSMB", command, status, flags, flags2, 0, bytes(8), bytes(2),
                       tid, 0xFEFF, uid, 64)  # fmt: skip


def peek_named_pipe_request() -> bytes:
    """[MS-CIFS] 2.2.4.33.1 with SetupCount 2: TRANS_PEEK_NMPIPE (0x0023) on FID 0, Name "\\PIPE\\"."""
    name = b"\\PIPE\\\x00"
    words = struct.pack("<HHHHBxHIxxHHHHBx", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0, 74, 0, 74, 2) + struct.pack(
        "<HH", 0x23, 0
    )
    return smb1_header(0x25, reply=False) + bytes([len(words) // 2]) + words + struct.pack("<H", len(name)) + name


def error_response(status: int) -> bytes:
    return smb1_header(0x25, reply=True, status=status) + b"\x00\x00\x00"


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


def session(exchanges: list[tuple[str, bytes]]) -> list:
    frames = []
    seq = {"c": 1000, "s": 5000}
    clock = [START]

    def emit(side: str, flags: str, payload: bytes = b"") -> None:
        src, dst = (CLIENT, SERVER) if side == "c" else (SERVER, CLIENT)
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


if __name__ == "__main__":
    main()
