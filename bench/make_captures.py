#!/usr/bin/env python3
"""Write the benchmark captures (bulk, mixed and the floods) as classic pcap.

Everything is built with ``struct`` (no scapy) so that a million packets take
seconds, and everything is drawn from a seeded ``random.Random`` so the same
arguments always give byte-identical files.

* ``bulk.pcap``  - a few TCP/445 connections that negotiate SMB 3.x, set up a
  session, open a file and then stream 1 MiB SMB2 READ responses in full-size
  1448-byte segments (1514-byte frames), the client ACKing every second one.
* ``mixed.pcap`` - >= N (default 1,000,000) mostly small packets: many short,
  interleaved SMB2 sessions (some starting with an SMB1 multi-protocol
  NEGOTIATE), SMB1-only negotiations, SYN scans of port 445 answered by RST,
  and 30-40 % non-SMB noise (HTTP, TLS, DNS, ARP).
* ``synflood.pcap`` (``synflood_200k.pcap``) - 1,560,000 (200,000) spoofed SYNs to
  port 445 of 256 servers over 156 s (20 s), 0.1 % answered by RST/ACK, with one
  scanner (SCANNER_IP) hidden in it: 30 SYNs to 30 distinct servers, every 52,000th
  (6,666th) SYN. ``synflood_frames`` / ``synflood_pcap`` build any size in memory.
* ``logon_flood.pcap`` - 100,000 failed SMB logons, one connection each from 100,000
  clients to three servers over ~100 s, the SMB2 bytes copied from
  pcaps/recorded/auth_wrong_password.pcap; BRUTE_FORCER_IP fails 12 times among them
  against the first server (``logon_flood_frames`` / ``logon_flood_pcap``).

Usage: ``python3 bench/make_captures.py OUTDIR [--only NAME] [--mixed-packets N] [--bulk-mb M]``
"""

from __future__ import annotations

import argparse
import heapq
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20240611
DEFAULT_MIXED_PACKETS = 1_000_000
DEFAULT_BULK_MB = 500
MSS = 1448  # 1500 MTU - 20 IP - 20 TCP - 12 TCP timestamp option

# --------------------------------------------------------------------------
# pcap writer
# --------------------------------------------------------------------------

PCAP_MAGIC_USEC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
CAPTURE_START_EPOCH = 1_718_064_000  # 2024-06-11 00:00:00 UTC; frame times are offsets from it


class PcapFileWriter:
    """Buffered writer of a little-endian, microsecond pcap file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._file.write(struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self._buffer = bytearray()
        self.packets = 0
        self.bytes_written = 24

    def write(self, time_us: int, frame: bytes) -> None:
        """Append ``frame`` at ``time_us`` microseconds after CAPTURE_START_EPOCH."""
        sec, usec = divmod(time_us, 1_000_000)
        sec += CAPTURE_START_EPOCH
        self._buffer += struct.pack("<IIII", sec, usec, len(frame), len(frame))
        self._buffer += frame
        self.packets += 1
        self.bytes_written += 16 + len(frame)
        if len(self._buffer) > 8 << 20:
            self._file.write(self._buffer)
            self._buffer.clear()

    def close(self) -> None:
        self._file.write(self._buffer)
        self._buffer.clear()
        self._file.close()


# --------------------------------------------------------------------------
# Ethernet / IPv4 / TCP / UDP / ARP
# --------------------------------------------------------------------------

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ETHERTYPE_IPV4, ETHERTYPE_ARP = 0x0800, 0x0806
IPPROTO_TCP, IPPROTO_UDP = 6, 17
BROADCAST_MAC = b"\xff" * 6


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum; the one's-complement sum of 16-bit words is the
    big-endian integer modulo 0xFFFF (since 0x10000 == 1 mod 0xFFFF)."""
    if len(data) & 1:
        data += b"\x00"
    folded = int.from_bytes(data, "big") % 0xFFFF
    return 0xFFFF - folded


def ip_address(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def mac_for(ip: bytes) -> bytes:
    """Locally administered MAC derived from the IPv4 address."""
    return b"\x02\x00" + ip


def ipv4_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src_ip: bytes,
    dst_ip: bytes,
    ip_id: int,
    ttl: int,
    protocol: int,
    l4: bytes,
) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        ip_id & 0xFFFF,
        0x4000,
        ttl,
        protocol,
        0,
        src_ip,
        dst_ip,
    )
    checksum = internet_checksum(header)
    header = header[:10] + struct.pack("!H", checksum) + header[12:]
    return dst_mac + src_mac + b"\x08\x00" + header + l4


def udp_datagram(src_ip: bytes, dst_ip: bytes, src_port: int, dst_port: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!xBH", IPPROTO_UDP, length)
    header = struct.pack("!HHHH", src_port, dst_port, length, 0)
    checksum = internet_checksum(pseudo + header + payload)
    return struct.pack("!HHHH", src_port, dst_port, length, checksum) + payload


def arp_frame(
    operation: int,
    sender_mac: bytes,
    sender_ip: bytes,
    target_mac: bytes,
    target_ip: bytes,
    eth_dst: bytes,
) -> bytes:
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETHERTYPE_IPV4,
        6,
        4,
        operation,
        sender_mac,
        sender_ip,
        target_mac,
        target_ip,
    )
    frame = eth_dst + sender_mac + b"\x08\x06" + body
    return frame + b"\x00" * (60 - len(frame))


@dataclass
class Endpoint:
    mac: bytes
    ip: bytes
    port: int
    next_seq: int
    ip_id: int
    ttl: int
    window: int
    ts_offset: int
    last_tsval: int = 0


Timed = tuple[int, bytes]  # (timestamp in microseconds, Ethernet frame)


class TcpFlow:
    """One TCP connection; keeps seq/ack, IP ids and timestamps consistent.

    Every method yields ``(time_us, frame)`` with non-decreasing times; ``self.now``
    is the flow's own clock.
    """

    def __init__(
        self,
        rng: random.Random,
        start_us: int,
        client_ip: bytes,
        client_port: int,
        server_ip: bytes,
        server_port: int,
        *,
        client_window: int = 502,
        server_window: int = 8212,
    ) -> None:
        self.rng = rng
        self.now = start_us
        self.client = Endpoint(
            mac_for(client_ip),
            client_ip,
            client_port,
            rng.getrandbits(32),
            rng.getrandbits(16),
            128,
            client_window,
            rng.getrandbits(31),
        )
        self.server = Endpoint(
            mac_for(server_ip),
            server_ip,
            server_port,
            rng.getrandbits(32),
            rng.getrandbits(16),
            64,
            server_window,
            rng.getrandbits(31),
        )

    def packet(
        self,
        from_client: bool,
        flags: int,
        payload: bytes = b"",
        delay_us: int = 0,
        syn_options: bytes | None = None,
    ) -> Timed:
        self.now += delay_us
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        tsval = (self.now // 1000 + src.ts_offset) & 0xFFFFFFFF
        src.last_tsval = tsval
        timestamp = struct.pack("!BBII", 8, 10, tsval, dst.last_tsval if flags & TCP_ACK else 0)
        if flags & TCP_SYN:
            if syn_options is None:  # MSS, SACK permitted, timestamps, NOP, window scale 7
                syn_options = b"\x02\x04\x05\xb4\x04\x02" + timestamp + b"\x01\x03\x03\x07"
            options = syn_options
            window = 64240 if not flags & TCP_ACK else 65160
        elif flags & TCP_RST:
            options, window = b"", 0
        else:
            options = b"\x01\x01" + timestamp
            window = src.window
        ack = dst.next_seq if flags & TCP_ACK else 0
        header_len = 20 + len(options)
        header = (
            struct.pack(
                "!HHIIBBHHH",
                src.port,
                dst.port,
                src.next_seq,
                ack,
                header_len << 2,
                flags,
                window,
                0,
                0,
            )
            + options
        )
        pseudo = src.ip + dst.ip + struct.pack("!xBH", IPPROTO_TCP, header_len + len(payload))
        checksum = internet_checksum(pseudo + header + payload)
        segment = header[:16] + struct.pack("!H", checksum) + header[18:] + payload
        src.next_seq = (src.next_seq + len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & 0xFFFFFFFF
        src.ip_id += 1
        return self.now, ipv4_frame(src.mac, dst.mac, src.ip, dst.ip, src.ip_id, src.ttl, IPPROTO_TCP, segment)

    def handshake(self, rtt_us: int) -> Iterator[Timed]:
        yield self.packet(True, TCP_SYN)
        yield self.packet(False, TCP_SYN | TCP_ACK, delay_us=rtt_us // 2)
        yield self.packet(True, TCP_ACK, delay_us=rtt_us // 2)

    def send(
        self,
        from_client: bool,
        data: bytes,
        delay_us: int,
        segment_gap_us: int = 12,
        ack_every: int = 2,
        ack_delay_us: int = 2,
    ) -> Iterator[Timed]:
        """Send ``data`` in MSS-sized segments; the peer ACKs every ``ack_every`` segments."""
        view = memoryview(data)
        total = len(data)
        for index, offset in enumerate(range(0, total, MSS)):
            chunk = bytes(view[offset : offset + MSS])
            last = offset + MSS >= total
            flags = TCP_PSH | TCP_ACK if last else TCP_ACK
            yield self.packet(from_client, flags, chunk, delay_us if index == 0 else segment_gap_us)
            if not last and index % ack_every == ack_every - 1:
                yield self.packet(not from_client, TCP_ACK, delay_us=ack_delay_us)

    def exchange(self, request: bytes, response: bytes, rtt_us: int, server_us: int) -> Iterator[Timed]:
        yield from self.send(True, request, delay_us=self.rng.randint(20, 400))
        yield from self.send(False, response, delay_us=rtt_us // 2 + server_us)

    def close(self, rtt_us: int) -> Iterator[Timed]:
        yield self.packet(True, TCP_FIN | TCP_ACK, delay_us=self.rng.randint(50, 2000))
        yield self.packet(False, TCP_FIN | TCP_ACK, delay_us=rtt_us // 2)
        yield self.packet(True, TCP_ACK, delay_us=rtt_us // 2)


# --------------------------------------------------------------------------
# SPNEGO / NTLMSSP security blobs (minimal but well-formed DER)
# --------------------------------------------------------------------------

OID_SPNEGO = bytes.fromhex("2b0601050502")
OID_NTLMSSP = bytes.fromhex("2b06010401823702020a")


def der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        encoded_length = bytes([length])
    elif length < 0x100:
        encoded_length = bytes([0x81, length])
    else:
        encoded_length = bytes([0x82]) + struct.pack("!H", length)
    return bytes([tag]) + encoded_length + content


def spnego_init(mech_token: bytes | None) -> bytes:
    fields = der(0xA0, der(0x30, der(0x06, OID_NTLMSSP)))
    if mech_token is not None:
        fields += der(0xA2, der(0x04, mech_token))
    return der(0x60, der(0x06, OID_SPNEGO) + der(0xA0, der(0x30, fields)))


def spnego_response(state: int, token: bytes | None, with_mech: bool) -> bytes:
    fields = der(0xA0, der(0x0A, bytes([state])))
    if with_mech:
        fields += der(0xA1, der(0x06, OID_NTLMSSP))
    if token is not None:
        fields += der(0xA2, der(0x04, token))
    return der(0xA1, der(0x30, fields))


NTLM_FLAGS = 0x60088215  # 128, key exchange, NTLM, sign, unicode, request target, ext. session security


def ntlmssp_negotiate() -> bytes:
    return b"NTLMSSP\x00" + struct.pack("<II", 1, NTLM_FLAGS) + struct.pack("<HHIHHI", 0, 0, 0, 0, 0, 0)


def ntlmssp_challenge(rng: random.Random, server_name: str) -> bytes:
    target = server_name.encode("utf-16-le")
    av_pairs = (
        struct.pack("<HH", 2, len(target))
        + target
        + struct.pack("<HH", 1, len(target))
        + target
        + struct.pack("<HH", 7, 8)
        + struct.pack("<Q", 133_000_000_000_000_000 + rng.getrandbits(40))
        + struct.pack("<HH", 0, 0)
    )
    header_len = 48
    return (
        b"NTLMSSP\x00"
        + struct.pack("<I", 2)
        + struct.pack("<HHI", len(target), len(target), header_len)
        + struct.pack("<I", NTLM_FLAGS | 0x00800000)  # + target info
        + rng.randbytes(8)
        + b"\x00" * 8
        + struct.pack("<HHI", len(av_pairs), len(av_pairs), header_len + len(target))
        + target
        + av_pairs
    )


def ntlmssp_authenticate(rng: random.Random, domain: str, user: str, workstation: str) -> bytes:
    lm_response = b"\x00" * 24
    nt_response = rng.randbytes(24)
    domain_bytes, user_bytes, host_bytes = (s.encode("utf-16-le") for s in (domain, user, workstation))
    session_key = rng.randbytes(16)
    offset = 64
    fields = b""
    payload = b""
    for item in (lm_response, nt_response, domain_bytes, user_bytes, host_bytes, session_key):
        fields += struct.pack("<HHI", len(item), len(item), offset + len(payload))
        payload += item
    return b"NTLMSSP\x00" + struct.pack("<I", 3) + fields + struct.pack("<I", NTLM_FLAGS) + payload


# --------------------------------------------------------------------------
# NetBIOS session service, SMB1, SMB2
# --------------------------------------------------------------------------


def nbss(message: bytes) -> bytes:
    """NetBIOS session message: type 0x00 and a 24-bit big-endian length."""
    return struct.pack("!I", len(message)) + message


SMB1_NEGOTIATE = 0x72
SMB1_FLAGS_REPLY = 0x80
SMB1_LEGACY_DIALECTS = (
    "PC NETWORK PROGRAM 1.0",
    "LANMAN1.0",
    "Windows for Workgroups 3.1a",
    "LM1.2X002",
    "LANMAN2.1",
    "NT LM 0.12",
)
SMB1_MULTI_PROTOCOL_DIALECTS = ("NT LM 0.12", "SMB 2.002", "SMB 2.???")


def smb1_header(command: int, flags: int, flags2: int, pid: int, mid: int) -> bytes:
    return struct.pack(
        "<4sBIBHH8sHHHHH",
        b"\xffSMB",
        command,
        0,
        flags,
        flags2,
        0,
        b"\x00" * 8,
        0,
        0xFFFF,
        pid,
        0,
        mid,
    )


def smb1_negotiate_request(dialects: tuple[str, ...], flags2: int, pid: int) -> bytes:
    data = b"".join(b"\x02" + name.encode("ascii") + b"\x00" for name in dialects)
    return smb1_header(SMB1_NEGOTIATE, 0x18, flags2, pid, 0) + struct.pack("<BH", 0, len(data)) + data


def smb1_negotiate_response(rng: random.Random, dialect_index: int, pid: int, domain: str) -> bytes:
    """NT LM 0.12 response without extended security: word count 17, challenge + OEM domain."""
    capabilities = 0x0000E3F9  # no CAP_UNICODE, no CAP_EXTENDED_SECURITY
    words = struct.pack(
        "<HBHHIIIIQhB",
        dialect_index,
        0x03,
        50,
        1,
        16644,
        65536,
        rng.getrandbits(32),
        capabilities,
        133_000_000_000_000_000 + rng.getrandbits(40),
        0,
        8,
    )
    data = rng.randbytes(8) + domain.encode("ascii") + b"\x00"
    header = smb1_header(SMB1_NEGOTIATE, SMB1_FLAGS_REPLY | 0x08, 0x4001, pid, 0)
    return header + bytes([17]) + words + struct.pack("<H", len(data)) + data


SMB2_NEGOTIATE, SMB2_SESSION_SETUP, SMB2_TREE_CONNECT = 0x0000, 0x0001, 0x0003
SMB2_CREATE, SMB2_CLOSE, SMB2_READ, SMB2_WRITE = 0x0005, 0x0006, 0x0008, 0x0009
SMB2_FLAGS_RESPONSE, SMB2_FLAGS_SIGNED = 0x00000001, 0x00000008
STATUS_SUCCESS, STATUS_MORE_PROCESSING_REQUIRED = 0x00000000, 0xC0000016
SMB2_DIALECT_WILDCARD = 0x02FF
SMB2_CLIENT_DIALECT_PROFILES: tuple[tuple[int, ...], ...] = (
    (0x0202, 0x0210),  # Windows 7 / Server 2008 R2
    (0x0202, 0x0210, 0x0300),  # Windows 8
    (0x0202, 0x0210, 0x0300, 0x0302),  # Windows 8.1
    (0x0202, 0x0210, 0x0300, 0x0302, 0x0311),  # Windows 10/11
    (0x0210, 0x0300, 0x0302, 0x0311),  # Samba / macOS
    (0x0311,),  # hardened client
)


def smb2_header(
    command: int,
    message_id: int,
    *,
    response: bool = False,
    status: int = 0,
    credit_charge: int = 1,
    credits: int = 1,
    session_id: int = 0,
    tree_id: int = 0,
    signature: bytes | None = None,
) -> bytes:
    flags = (SMB2_FLAGS_RESPONSE if response else 0) | (SMB2_FLAGS_SIGNED if signature else 0)
    return struct.pack(
        "<4sHHIHHIIQIIQ16s",
        b"\xfeSMB",
        64,
        credit_charge,
        status,
        command,
        credits,
        flags,
        0,
        message_id,
        0xFEFF,
        tree_id,
        session_id,
        signature or b"\x00" * 16,
    )


def pad8(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 8)


def negotiate_context(context_type: int, data: bytes) -> bytes:
    return struct.pack("<HHI", context_type, len(data), 0) + data


def smb2_negotiate_contexts(rng: random.Random, ciphers: tuple[int, ...]) -> list[bytes]:
    preauth = struct.pack("<HHH", 1, 32, 0x0001) + rng.randbytes(32)  # SHA-512, 32-byte salt
    encryption = struct.pack("<H", len(ciphers)) + b"".join(struct.pack("<H", c) for c in ciphers)
    return [negotiate_context(1, preauth), negotiate_context(2, encryption)]


def join_contexts(contexts: list[bytes]) -> bytes:
    return b"".join(pad8(c) for c in contexts[:-1]) + contexts[-1]


def smb2_negotiate_request(
    rng: random.Random,
    message_id: int,
    dialects: tuple[int, ...],
    security_mode: int,
    client_guid: bytes,
) -> bytes:
    dialect_bytes = b"".join(struct.pack("<H", d) for d in dialects)
    fixed_end = 64 + 36 + len(dialect_bytes)
    if 0x0311 in dialects:
        contexts = smb2_negotiate_contexts(rng, (0x0002, 0x0001))
        context_offset = fixed_end + (-fixed_end % 8)
        tail = b"\x00" * (context_offset - fixed_end) + join_contexts(contexts)
        third = struct.pack("<IHH", context_offset, len(contexts), 0)
    else:
        tail = b""
        third = b"\x00" * 8  # ClientStartTime
    body = struct.pack("<HHHHI16s", 36, len(dialects), security_mode, 0, 0x7F, client_guid) + third
    return smb2_header(SMB2_NEGOTIATE, message_id, credit_charge=0) + body + dialect_bytes + tail


def smb2_negotiate_response(
    rng: random.Random, message_id: int, dialect: int, security_mode: int, server_guid: bytes
) -> bytes:
    security_blob = spnego_init(None)
    buffer_offset = 64 + 64
    contexts = smb2_negotiate_contexts(rng, (0x0002,)) if dialect == 0x0311 else []
    if contexts:
        end = buffer_offset + len(security_blob)
        context_offset = end + (-end % 8)
        tail = b"\x00" * (context_offset - end) + join_contexts(contexts)
    else:
        context_offset, tail = 0, b""
    capabilities = 0x2F if dialect >= 0x0300 else (0x07 if dialect == 0x0210 else 0x01)
    body = struct.pack(
        "<HHHH16sIIIIQQHHI",
        65,
        security_mode,
        dialect,
        len(contexts),
        server_guid,
        capabilities,
        8 << 20,
        8 << 20,
        8 << 20,
        133_000_000_000_000_000 + rng.getrandbits(40),
        0,
        buffer_offset,
        len(security_blob),
        context_offset,
    )
    return smb2_header(SMB2_NEGOTIATE, message_id, response=True, credit_charge=0) + body + security_blob + tail


def smb2_session_setup_request(
    message_id: int, security_mode: int, blob: bytes, credit_charge: int, session_id: int = 0
) -> bytes:
    body = struct.pack("<HBBIIHHQ", 25, 0, security_mode, 0x01, 0, 64 + 24, len(blob), 0)
    header = smb2_header(
        SMB2_SESSION_SETUP,
        message_id,
        credit_charge=credit_charge,
        credits=33,
        session_id=session_id,
    )
    return header + body + blob


def smb2_session_setup_response(
    message_id: int,
    status: int,
    blob: bytes,
    session_id: int,
    credit_charge: int,
    signature: bytes | None = None,
) -> bytes:
    body = struct.pack("<HHHH", 9, 0, 64 + 8 if blob else 0, len(blob))
    header = smb2_header(
        SMB2_SESSION_SETUP,
        message_id,
        response=True,
        status=status,
        credit_charge=credit_charge,
        credits=33,
        session_id=session_id,
        signature=signature,
    )
    return header + body + blob


@dataclass
class Smb2Session:
    """Per-connection SMB2 state after negotiation (ids and signing)."""

    rng: random.Random
    dialect: int
    signing: bool
    message_id: int = 0
    session_id: int = 0
    tree_id: int = 0

    @property
    def credit_charge(self) -> int:
        return 0 if self.dialect == 0x0202 else 1

    def signature(self) -> bytes | None:
        return self.rng.randbytes(16) if self.signing and self.session_id else None

    def next_message_id(self, charge: int = 1) -> int:
        message_id = self.message_id
        self.message_id += max(charge, 1)
        return message_id

    def request(self, command: int, body: bytes, charge: int | None = None) -> tuple[int, bytes]:
        charge = self.credit_charge if charge is None else charge
        message_id = self.next_message_id(charge)
        header = smb2_header(
            command,
            message_id,
            credit_charge=charge,
            credits=32,
            session_id=self.session_id,
            tree_id=self.tree_id,
            signature=self.signature(),
        )
        return message_id, header + body

    def response(self, command: int, message_id: int, body: bytes, charge: int | None = None) -> bytes:
        charge = self.credit_charge if charge is None else charge
        header = smb2_header(
            command,
            message_id,
            response=True,
            credit_charge=charge,
            credits=32,
            session_id=self.session_id,
            tree_id=self.tree_id,
            signature=self.signature(),
        )
        return header + body


def tree_connect_request(path: str) -> bytes:
    path_bytes = path.encode("utf-16-le")
    return struct.pack("<HHHH", 9, 0, 64 + 8, len(path_bytes)) + path_bytes


def tree_connect_response() -> bytes:
    return struct.pack("<HBBIII", 16, 0x01, 0, 0x00000800, 0, 0x001F01FF)


def create_request(name: str) -> bytes:
    name_bytes = name.encode("utf-16-le")
    return (
        struct.pack(
            "<HBBIQQIIIIIHHII",
            57,
            0,
            0,
            2,
            0,
            0,
            0x00120089,
            0x80,
            0x07,
            1,
            0x40,
            64 + 56,
            len(name_bytes),
            0,
            0,
        )
        + name_bytes
    )


def create_response(rng: random.Random, file_id: bytes, size: int) -> bytes:
    stamp = 133_000_000_000_000_000 + rng.getrandbits(40)
    return struct.pack(
        "<HBBIQQQQQQII16sII",
        89,
        0,
        0,
        1,
        stamp,
        stamp,
        stamp,
        stamp,
        (size + 4095) & ~4095,
        size,
        0x20,
        0,
        file_id,
        0,
        0,
    )


def close_request(file_id: bytes) -> bytes:
    return struct.pack("<HHI16s", 24, 0, 0, file_id)


def close_response() -> bytes:
    return struct.pack("<HHIQQQQQQI", 60, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def read_request(file_id: bytes, length: int, offset: int) -> bytes:
    return struct.pack("<HBBIQ16sIIIHH", 49, 0x50, 0, length, offset, file_id, 0, 0, 0, 0, 0) + b"\x00"


def read_response_header(data_length: int) -> bytes:
    return struct.pack("<HBBIII", 17, 0x50, 0, data_length, 0, 0)


def write_request(file_id: bytes, data: bytes, offset: int) -> bytes:
    return struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), offset, file_id, 0, 0, 0, 0, 0) + data


def write_response(count: int) -> bytes:
    return struct.pack("<HHIIHH", 17, 0, count, 0, 0, 0)


# --------------------------------------------------------------------------
# SMB2 session script shared by both captures
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SmbServer:
    name: str
    ip: bytes
    max_dialect: int
    signing_required: bool
    guid: bytes


def smb2_setup(
    flow: TcpFlow,
    server: SmbServer,
    client_dialects: tuple[int, ...],
    rtt_us: int,
    via_smb1: bool,
    user_index: int,
) -> Iterator[Timed | Smb2Session]:
    """Negotiate, authenticate (NTLMSSP in SPNEGO), tree connect; finally yields the session."""
    rng = flow.rng
    server_us = rng.randint(30, 300)
    common = [d for d in client_dialects if d <= server.max_dialect]
    dialect = max(common) if common else client_dialects[0]
    client_security_mode = 0x02 if rng.random() < 0.2 else 0x01
    server_security_mode = 0x03 if server.signing_required else 0x01
    session = Smb2Session(rng, dialect, signing=server.signing_required or client_security_mode == 0x02)
    if via_smb1:
        request = smb1_negotiate_request(SMB1_MULTI_PROTOCOL_DIALECTS, 0xC853, rng.getrandbits(16))
        answer = 0x0202 if dialect == 0x0202 else SMB2_DIALECT_WILDCARD
        response = smb2_negotiate_response(rng, 0, answer, server_security_mode, server.guid)
        yield from flow.exchange(nbss(request), nbss(response), rtt_us, server_us)
        session.message_id = 1
    if not via_smb1 or dialect != 0x0202:
        message_id = session.next_message_id()
        request = smb2_negotiate_request(rng, message_id, client_dialects, client_security_mode, rng.randbytes(16))
        response = smb2_negotiate_response(rng, message_id, dialect, server_security_mode, server.guid)
        yield from flow.exchange(nbss(request), nbss(response), rtt_us, server_us)
    charge = session.credit_charge
    message_id = session.next_message_id()
    request = smb2_session_setup_request(message_id, client_security_mode, spnego_init(ntlmssp_negotiate()), charge)
    session.session_id = (rng.getrandbits(44) << 4) | 0x1
    challenge = spnego_response(1, ntlmssp_challenge(rng, server.name), with_mech=True)
    response = smb2_session_setup_response(
        message_id, STATUS_MORE_PROCESSING_REQUIRED, challenge, session.session_id, charge
    )
    yield from flow.exchange(nbss(request), nbss(response), rtt_us, server_us)
    message_id = session.next_message_id()
    auth = der(
        0xA1,
        der(
            0x30,
            der(
                0xA2,
                der(
                    0x04,
                    ntlmssp_authenticate(rng, "EXAMPLE", f"user{user_index}", f"PC{user_index:05d}"),
                ),
            ),
        ),
    )
    request = smb2_session_setup_request(message_id, client_security_mode, auth, charge, session.session_id)
    response = smb2_session_setup_response(
        message_id,
        STATUS_SUCCESS,
        spnego_response(0, None, False),
        session.session_id,
        charge,
        session.signature(),
    )
    yield from flow.exchange(nbss(request), nbss(response), rtt_us, server_us)
    message_id, request = session.request(SMB2_TREE_CONNECT, tree_connect_request(f"\\\\{server.name}\\share"))
    session.tree_id = rng.randint(1, 0xFFFF)
    response = session.response(SMB2_TREE_CONNECT, message_id, tree_connect_response())
    yield from flow.exchange(nbss(request), nbss(response), rtt_us, server_us)
    yield session


def smb2_open(flow: TcpFlow, session: Smb2Session, name: str, size: int, rtt_us: int) -> Iterator[Timed | bytes]:
    """CREATE a file; finally yields its 16-byte FileId."""
    rng = flow.rng
    file_id = rng.randbytes(16)
    message_id, request = session.request(SMB2_CREATE, create_request(name))
    response = session.response(SMB2_CREATE, message_id, create_response(rng, file_id, size))
    yield from flow.exchange(nbss(request), nbss(response), rtt_us, rng.randint(50, 500))
    yield file_id


def smb2_close(flow: TcpFlow, session: Smb2Session, file_id: bytes, rtt_us: int) -> Iterator[Timed]:
    message_id, request = session.request(SMB2_CLOSE, close_request(file_id))
    response = session.response(SMB2_CLOSE, message_id, close_response())
    yield from flow.exchange(nbss(request), nbss(response), rtt_us, flow.rng.randint(20, 200))


def drain(script: Iterator[object], sink: list[object]) -> Iterator[Timed]:
    """Yield the frames of ``script``; append its other yielded values to ``sink``."""
    for item in script:
        if isinstance(item, tuple):
            yield item
        else:
            sink.append(item)


# --------------------------------------------------------------------------
# interleaving scheduler
# --------------------------------------------------------------------------


@dataclass
class FlowSpec:
    category: str
    frames: Iterator[Timed]


def interleave(
    writer: PcapFileWriter,
    start_flow: Callable[[int], FlowSpec | None],
    concurrency: int,
    rng: random.Random,
    per_category: Counter[str],
) -> None:
    """Run up to ``concurrency`` flows at once, writing frames in time order.

    ``start_flow(now_us)`` returns a new flow or ``None`` once enough was written;
    ``per_category`` counts the frames written per ``FlowSpec.category``.
    """
    heap: list[tuple[int, int, bytes, Iterator[Timed], str]] = []
    serial = 0
    starting = True

    def launch(now_us: int) -> bool:
        nonlocal serial
        spec = start_flow(now_us + rng.randint(0, 3000))
        if spec is None:
            return False
        first = next(spec.frames, None)
        if first is not None:
            serial += 1
            heapq.heappush(heap, (first[0], serial, first[1], spec.frames, spec.category))
        return True

    for _ in range(concurrency):
        if not launch(0):
            starting = False
            break
    while heap:
        time_us, _, frame, frames, category = heapq.heappop(heap)
        writer.write(time_us, frame)
        per_category[category] += 1
        following = next(frames, None)
        if following is not None:
            serial += 1
            heapq.heappush(heap, (max(following[0], time_us), serial, following[1], frames, category))
        elif starting:
            starting = launch(time_us)


# --------------------------------------------------------------------------
# bulk capture
# --------------------------------------------------------------------------

READ_SIZE = 1 << 20
READS_IN_FLIGHT = 8


def bulk_connection(
    rng: random.Random,
    writer: PcapFileWriter,
    target_bytes: int,
    index: int,
    start_us: int,
    server: SmbServer,
    file_data: bytes,
) -> Iterator[Timed]:
    client_ip = bytes((192, 0, 2, 20 + index))
    flow = TcpFlow(rng, start_us, client_ip, 50000 + index, server.ip, 445, client_window=8192)
    rtt_us = rng.randint(150, 400)
    yield from flow.handshake(rtt_us)
    dialects = (0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    values: list[object] = []
    yield from drain(smb2_setup(flow, server, dialects, rtt_us, via_smb1=False, user_index=index), values)
    session = values.pop()
    assert isinstance(session, Smb2Session)
    file_size = 64 << 30
    yield from drain(smb2_open(flow, session, f"vm\\disk{index}.vhdx", file_size, rtt_us), values)
    file_id = values.pop()
    assert isinstance(file_id, bytes)
    read_charge = READ_SIZE // 65536
    file_offset = 0
    while writer.bytes_written < target_bytes:
        requests, responses = [], []
        for _ in range(READS_IN_FLIGHT):
            message_id, request = session.request(
                SMB2_READ, read_request(file_id, READ_SIZE, file_offset), charge=read_charge
            )
            requests.append(nbss(request))
            start = file_offset % (len(file_data) - READ_SIZE)
            body = read_response_header(READ_SIZE) + file_data[start : start + READ_SIZE]
            responses.append(nbss(session.response(SMB2_READ, message_id, body, charge=read_charge)))
            file_offset += READ_SIZE
        yield from flow.send(True, b"".join(requests), delay_us=rng.randint(20, 80))
        # 10 GbE-ish pacing: one full segment every ~4 us per connection
        yield from flow.send(
            False,
            b"".join(responses),
            delay_us=rtt_us // 2 + rng.randint(20, 100),
            segment_gap_us=4,
            ack_every=2,
            ack_delay_us=1,
        )
    yield from smb2_close(flow, session, file_id, rtt_us)
    yield from flow.close(rtt_us)


def write_bulk(path: Path, bulk_mb: int, seed: int, connections: int = 4) -> tuple[int, int]:
    rng = random.Random(seed)
    writer = PcapFileWriter(path)
    target_bytes = bulk_mb * 1_000_000
    server = SmbServer("FILER1", ip_address("203.0.113.10"), 0x0311, True, rng.randbytes(16))
    server_302 = SmbServer("FILER2", ip_address("203.0.113.11"), 0x0302, False, rng.randbytes(16))
    file_data = rng.randbytes(4 * READ_SIZE + 4096)
    started = 0

    def start_flow(now_us: int) -> FlowSpec | None:
        nonlocal started
        if started >= connections:
            return None
        started += 1
        chosen = server if started % 2 else server_302
        frames = bulk_connection(rng, writer, target_bytes, started, now_us + started * 1000, chosen, file_data)
        return FlowSpec("smb-bulk", frames)

    interleave(writer, start_flow, connections, rng, Counter())
    writer.close()
    return writer.packets, writer.bytes_written


# --------------------------------------------------------------------------
# mixed capture
# --------------------------------------------------------------------------

NOISE_FRACTION = 0.35
SMB2_SERVERS = (
    ("FS01", "203.0.113.10", 0x0311, True),
    ("FS02", "203.0.113.11", 0x0302, False),
    ("NAS03", "203.0.113.12", 0x0210, False),
    ("OLDSRV", "203.0.113.13", 0x0202, False),
)
LEGACY_SMB1_SERVER = ("LEGACY", "203.0.113.20")
WEB_SERVER, DNS_SERVER, GATEWAY = "203.0.113.80", "203.0.113.53", "192.0.2.1"


def random_client_ip(rng: random.Random) -> bytes:
    prefix = (192, 0, 2) if rng.random() < 0.5 else (198, 51, 100)
    return bytes((*prefix, rng.randint(2, 254)))


class MixedCaptureFlows:
    """Factory of the short flows that make up ``mixed.pcap``."""

    def __init__(self, rng: random.Random, target_packets: int, writer: PcapFileWriter) -> None:
        self.rng = rng
        self.target_packets = target_packets
        self.writer = writer
        self.servers = [
            SmbServer(name, ip_address(ip), dialect, signing, rng.randbytes(16))
            for name, ip, dialect, signing in SMB2_SERVERS
        ]
        self.legacy_server = ip_address(LEGACY_SMB1_SERVER[1])
        self.flow_counter = 0
        self.per_category: Counter[str] = Counter()

    def next_port(self) -> int:
        self.flow_counter += 1
        return 49152 + (self.flow_counter * 7919) % 16384

    def start(self, now_us: int) -> FlowSpec | None:
        if self.writer.packets >= self.target_packets:
            return None
        rng = self.rng
        # steer the share of non-SMB packets written so far towards NOISE_FRACTION
        noise = sum(n for category, n in self.per_category.items() if category.startswith("noise"))
        if noise < NOISE_FRACTION * self.writer.packets:
            kind = rng.choices(("http", "https", "dns", "arp"), weights=(3, 4, 4, 1))[0]
            return FlowSpec("noise-" + kind, getattr(self, kind)(now_us))
        roll = rng.random()
        if roll < 0.25:
            return FlowSpec("scan-445", self.scan(now_us))
        if roll < 0.35:
            return FlowSpec("smb1-only", self.smb1_only(now_us))
        return FlowSpec("smb2-session", self.smb2_session(now_us, via_smb1=rng.random() < 0.3))

    # -- SMB ---------------------------------------------------------------

    def smb2_session(self, now_us: int, via_smb1: bool) -> Iterator[Timed]:
        rng = self.rng
        server = rng.choice(self.servers)
        client_dialects = rng.choice(SMB2_CLIENT_DIALECT_PROFILES)
        if via_smb1 and client_dialects == (0x0311,):
            client_dialects = SMB2_CLIENT_DIALECT_PROFILES[3]
        if min(client_dialects) > server.max_dialect:
            server = self.servers[0]
        flow = TcpFlow(rng, now_us, random_client_ip(rng), self.next_port(), server.ip, 445)
        rtt_us = rng.randint(200, 5000)
        yield from flow.handshake(rtt_us)
        values: list[object] = []
        yield from drain(smb2_setup(flow, server, client_dialects, rtt_us, via_smb1, self.flow_counter), values)
        session = values.pop()
        assert isinstance(session, Smb2Session)
        if rng.random() < 0.8:
            size = rng.randint(100, 8000)
            yield from drain(
                smb2_open(flow, session, f"docs\\file{rng.randint(0, 9999)}.txt", size, rtt_us),
                values,
            )
            file_id = values.pop()
            assert isinstance(file_id, bytes)
            for _ in range(rng.randint(1, 3)):
                length = rng.choice((512, 1024, 1200, 4096))
                if rng.random() < 0.6:
                    message_id, request = session.request(SMB2_READ, read_request(file_id, length, 0))
                    body = read_response_header(length) + rng.randbytes(length)
                    response = session.response(SMB2_READ, message_id, body)
                else:
                    message_id, request = session.request(SMB2_WRITE, write_request(file_id, rng.randbytes(length), 0))
                    response = session.response(SMB2_WRITE, message_id, write_response(length))
                yield from flow.exchange(nbss(request), nbss(response), rtt_us, rng.randint(30, 300))
            yield from smb2_close(flow, session, file_id, rtt_us)
        yield from flow.close(rtt_us)

    def smb1_only(self, now_us: int) -> Iterator[Timed]:
        rng = self.rng
        flow = TcpFlow(rng, now_us, random_client_ip(rng), self.next_port(), self.legacy_server, 445)
        rtt_us = rng.randint(200, 5000)
        yield from flow.handshake(rtt_us)
        pid = rng.getrandbits(16)
        request = smb1_negotiate_request(SMB1_LEGACY_DIALECTS, 0x4001, pid)
        response = smb1_negotiate_response(rng, SMB1_LEGACY_DIALECTS.index("NT LM 0.12"), pid, "WORKGROUP")
        yield from flow.exchange(nbss(request), nbss(response), rtt_us, rng.randint(30, 300))
        yield from flow.close(rtt_us)

    def scan(self, now_us: int) -> Iterator[Timed]:
        """A scanner probing 445 on a few hosts: bare SYN, answered by RST/ACK."""
        rng = self.rng
        scanner = random_client_ip(rng)
        source_port = self.next_port()
        t = now_us
        for _ in range(rng.randint(1, 4)):
            target = bytes((203, 0, 113, rng.randint(1, 254)))
            flow = TcpFlow(rng, t, scanner, source_port, target, 445)
            yield flow.packet(True, TCP_SYN, syn_options=b"\x02\x04\x05\xb4")
            yield flow.packet(False, TCP_RST | TCP_ACK, delay_us=rng.randint(100, 3000))
            t = flow.now + rng.randint(10, 500)

    # -- noise -------------------------------------------------------------

    def http(self, now_us: int) -> Iterator[Timed]:
        rng = self.rng
        flow = TcpFlow(rng, now_us, random_client_ip(rng), self.next_port(), ip_address(WEB_SERVER), 80)
        rtt_us = rng.randint(500, 20000)
        yield from flow.handshake(rtt_us)
        path = f"/static/{rng.randint(0, 99999)}.txt"
        request = (f"GET {path} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench/1.0\r\n\r\n").encode()
        body = bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz \n", k=rng.randint(100, 3000)))
        headers = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        response = f"{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
        yield from flow.exchange(request, response, rtt_us, rng.randint(100, 2000))
        yield from flow.close(rtt_us)

    def https(self, now_us: int) -> Iterator[Timed]:
        rng = self.rng
        flow = TcpFlow(rng, now_us, random_client_ip(rng), self.next_port(), ip_address(WEB_SERVER), 443)
        rtt_us = rng.randint(500, 20000)
        yield from flow.handshake(rtt_us)
        for _ in range(rng.randint(1, 2)):
            request = tls_application_data(rng.randbytes(rng.randint(80, 600)))
            response = tls_application_data(rng.randbytes(rng.randint(200, 4000)))
            yield from flow.exchange(request, response, rtt_us, rng.randint(100, 2000))
        yield from flow.close(rtt_us)

    def dns(self, now_us: int) -> Iterator[Timed]:
        rng = self.rng
        client = random_client_ip(rng)
        server = ip_address(DNS_SERVER)
        port = self.next_port()
        transaction = rng.getrandbits(16)
        name = f"host{rng.randint(0, 9999)}.example.com"
        question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"
        question += struct.pack("!HH", 1, 1)
        query = struct.pack("!HHHHHH", transaction, 0x0100, 1, 0, 0, 0) + question
        answer = struct.pack("!HHHIH4s", 0xC00C, 1, 1, 300, 4, bytes((203, 0, 113, rng.randint(1, 254))))
        reply = struct.pack("!HHHHHH", transaction, 0x8180, 1, 1, 0, 0) + question + answer
        yield (
            now_us,
            ipv4_frame(
                mac_for(client),
                mac_for(server),
                client,
                server,
                rng.getrandbits(16),
                128,
                IPPROTO_UDP,
                udp_datagram(client, server, port, 53, query),
            ),
        )
        yield (
            now_us + rng.randint(200, 5000),
            ipv4_frame(
                mac_for(server),
                mac_for(client),
                server,
                client,
                rng.getrandbits(16),
                64,
                IPPROTO_UDP,
                udp_datagram(server, client, 53, port, reply),
            ),
        )

    def arp(self, now_us: int) -> Iterator[Timed]:
        rng = self.rng
        asker = random_client_ip(rng)
        gateway = ip_address(GATEWAY)
        yield now_us, arp_frame(1, mac_for(asker), asker, b"\x00" * 6, gateway, BROADCAST_MAC)
        yield (
            now_us + rng.randint(50, 500),
            arp_frame(2, mac_for(gateway), gateway, mac_for(asker), asker, mac_for(asker)),
        )


def tls_application_data(payload: bytes) -> bytes:
    return struct.pack("!BHH", 23, 0x0303, len(payload)) + payload


def write_mixed(path: Path, target_packets: int, seed: int, concurrency: int = 256) -> tuple[int, int, Counter[str]]:
    rng = random.Random(seed + 1)
    writer = PcapFileWriter(path)
    flows = MixedCaptureFlows(rng, target_packets, writer)
    interleave(writer, flows.start, concurrency, rng, flows.per_category)
    writer.close()
    return writer.packets, writer.bytes_written, flows.per_category


# --------------------------------------------------------------------------
# floods (issue 15): a spoofed SYN flood hiding one slow scanner, a logon flood
# --------------------------------------------------------------------------

SYNFLOOD_SYNS = 1_560_000  # 30 scanner attempts x 52,000 SYNs: the scanner's last attempt fits in
SYNFLOOD_RATE = 10_000  # SYNs per second on average: the 1.56 M flood lasts 156 s
SYNFLOOD_ANSWERED = 0.001  # share of flood SYNs a server answers with RST/ACK
SYNFLOOD_SERVERS = 256  # destination servers, 172.16.0.1-172.16.1.2
SCANNER_IP = "10.66.66.66"  # the hidden scanner; never drawn as a random source
SCANNER_ATTEMPTS = 30
SCANNER_GAP = 52_000  # flood SYNs between two scanner attempts in the full flood
SYNFLOOD_VARIANTS = {"synflood": SYNFLOOD_SYNS, "synflood_200k": 200_000}

LOGON_FLOOD_CLIENTS = 100_000
LOGON_FLOOD_RATE = 1_000  # logons started per second on average: 100,000 take ~100 s
LOGON_FLOOD_SERVERS = ("172.16.0.1", "172.16.0.2", "172.16.0.3")
BRUTE_FORCER_IP = "10.99.99.99"  # the client that fails BRUTE_FORCE_ATTEMPTS times against the first server
BRUTE_FORCE_ATTEMPTS = 12
LOGON_RECORDING = Path(__file__).resolve().parent.parent / "pcaps" / "recorded" / "auth_wrong_password.pcap"

ROUTER_MAC = b"\x02\x00\x0a\x00\x00\x01"  # spoofed sources all arrive through the upstream router
MIN_FRAME = 60  # Ethernet minimum without FCS: a mirror port delivers short frames padded


def pcap_bytes(frames: Iterator[Timed]) -> bytes:
    """A whole classic pcap (the format PcapFileWriter writes) in memory, for tests."""
    out = bytearray(struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
    pack = struct.Struct("<IIII").pack
    for time_us, frame in frames:
        sec, usec = divmod(time_us, 1_000_000)
        out += pack(sec + CAPTURE_START_EPOCH, usec, len(frame), len(frame))
        out += frame
    return bytes(out)


def write_frames(path: Path, frames: Iterator[Timed]) -> tuple[int, int]:
    """Write ``frames`` to ``path``; return (packets, bytes)."""
    writer = PcapFileWriter(path)
    for time_us, frame in frames:
        writer.write(time_us, frame)
    writer.close()
    return writer.packets, writer.bytes_written


_BARE_TCP = struct.Struct("!HHIIBBHHH")


def bare_tcp_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src_ip: bytes,
    dst_ip: bytes,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    ip_id: int,
    ttl: int,
    options: bytes = b"",
) -> bytes:
    """A payload-less TCP segment (SYN, RST) in one Ethernet frame, padded to 60 bytes."""
    header_len = 20 + len(options)
    header = _BARE_TCP.pack(src_port, dst_port, seq, ack, header_len << 2, flags, window, 0, 0) + options
    pseudo = src_ip + dst_ip + struct.pack("!xBH", IPPROTO_TCP, header_len)
    checksum = internet_checksum(pseudo + header)
    segment = header[:16] + struct.pack("!H", checksum) + header[18:]
    frame = ipv4_frame(src_mac, dst_mac, src_ip, dst_ip, ip_id, ttl, IPPROTO_TCP, segment)
    return frame + b"\x00" * (MIN_FRAME - len(frame)) if len(frame) < MIN_FRAME else frame


def synflood_servers(count: int = SYNFLOOD_SERVERS) -> list[bytes]:
    return [bytes((172, 16, index // 254, 1 + index % 254)) for index in range(count)]


def synflood_frames(
    syns: int = SYNFLOOD_SYNS,
    seed: int = DEFAULT_SEED,
    *,
    rate: int = SYNFLOOD_RATE,
    answered: float = SYNFLOOD_ANSWERED,
    servers: int = SYNFLOOD_SERVERS,
    scanner_attempts: int = SCANNER_ATTEMPTS,
    scanner_gap: int | None = None,
) -> Iterator[Timed]:
    """A spoofed SYN flood on TCP 445 with one slow scanner hidden in it, in time order.

    ``syns`` SYNs in all, one every 1-199 us (mean 1/``rate`` s; at the default 10,000/s),
    from random sources in 10.0.0.0/8 (random ports, ISNs, IP ids, TTLs, windows) to
    ``servers`` destination servers; a share ``answered`` of them is answered by the
    server with RST/ACK 0.1-3 ms later. ``scanner_attempts`` of the SYNs, every
    ``scanner_gap``-th one (default ``syns // scanner_attempts``: 52,000 in the full
    flood, so a 50,000-source LRU forgets the scanner between two attempts) and centred in
    the flood, come from SCANNER_IP, one to each of as many distinct servers, and are all
    answered with RST/ACK.
    """
    if scanner_gap is None:
        scanner_gap = syns // scanner_attempts if scanner_attempts else syns
    if scanner_attempts and (scanner_gap < 1 or scanner_attempts * scanner_gap > syns):
        raise ValueError(f"{scanner_attempts} scanner attempts {scanner_gap} SYNs apart do not fit in {syns} SYNs")
    if scanner_attempts > servers:
        raise ValueError("the scanner needs as many distinct servers as attempts")
    rng = random.Random(seed + 15)
    targets = synflood_servers(servers)
    scanner = ip_address(SCANNER_IP)
    scanner_number = int.from_bytes(scanner, "big") & 0xFFFFFF
    scanner_targets = rng.sample(targets, scanner_attempts)
    # the scanner's n-th attempt comes before flood SYN number first + n * gap (centred in the flood)
    first = (syns - (scanner_attempts - 1) * scanner_gap) // 2 if scanner_attempts else syns
    mean_gap_us = 1_000_000 / rate
    low, high = max(1, round(mean_gap_us / 100)), max(1, round(mean_gap_us * 2 - mean_gap_us / 100))
    mss = b"\x02\x04\x05\xb4"
    replies: list[tuple[int, int, bytes]] = []  # (time, serial, frame) of RSTs not yet due
    serial = 0
    now = 0
    attempt = 0
    for index in range(syns):
        now += rng.randint(low, high)
        while replies and replies[0][0] <= now:
            time_us, _, frame = heapq.heappop(replies)
            yield time_us, frame
        if attempt < scanner_attempts and index == first + attempt * scanner_gap:
            source, ttl, answer = scanner, 64, True
            destination = scanner_targets[attempt]
            attempt += 1
        else:
            number = rng.getrandbits(24)
            while number == scanner_number or number in (0, 0xFFFFFF):
                number = rng.getrandbits(24)
            source, ttl = b"\x0a" + number.to_bytes(3, "big"), rng.randint(32, 255)
            destination = targets[rng.randrange(servers)]
            answer = rng.random() < answered
        port = rng.randint(1024, 65535)
        seq = rng.getrandbits(32)
        server_mac = mac_for(destination)
        window = rng.choice((512, 1024, 29200, 64240))
        syn = bare_tcp_frame(
            ROUTER_MAC,
            server_mac,
            source,
            destination,
            port,
            445,
            seq,
            0,
            TCP_SYN,
            window,
            rng.getrandbits(16),
            ttl,
            mss,
        )
        yield now, syn
        if answer:
            serial += 1
            ack = (seq + 1) & 0xFFFFFFFF
            flags = TCP_RST | TCP_ACK
            reply = bare_tcp_frame(
                server_mac, ROUTER_MAC, destination, source, 445, port, 0, ack, flags, 0, rng.getrandbits(16), 64
            )
            heapq.heappush(replies, (now + rng.randint(100, 3000), serial, reply))
    while replies:
        time_us, _, frame = heapq.heappop(replies)
        yield time_us, frame


def synflood_pcap(syns: int = SYNFLOOD_SYNS, seed: int = DEFAULT_SEED, **options: Any) -> bytes:
    """``synflood_frames`` as a classic pcap in memory (e.g. a 50,000-SYN flood for a test)."""
    return pcap_bytes(synflood_frames(syns, seed, **options))


def write_synflood(path: Path, syns: int = SYNFLOOD_SYNS, seed: int = DEFAULT_SEED, **options: Any) -> tuple[int, int]:
    return write_frames(path, synflood_frames(syns, seed, **options))


def read_pcap_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """(time in us, frame) of a classic Ethernet pcap in either byte order, us or ns timestamps."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nanoseconds = struct.unpack_from(order + "I", data)[0] == 0xA1B23C4D
    if struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not an Ethernet capture")
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset + 16 <= len(data):
        sec, fraction, captured, _ = record.unpack_from(data, offset)
        offset += 16
        yield sec * 1_000_000 + (fraction // 1000 if nanoseconds else fraction), data[offset : offset + captured]
        offset += captured


def recorded_tcp_messages(path: Path, server_port: int = 445) -> list[tuple[bool, bytes]]:
    """The TCP payload of the first connection to ``server_port`` in a recorded capture, as
    (from_client, bytes) runs: consecutive segments of one direction joined, in capture order."""
    runs: list[tuple[bool, bytes]] = []
    connection: tuple[bytes, int] | None = None  # (client ip, client port)
    for _, frame in read_pcap_records(path):
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != IPPROTO_TCP:
            continue
        ip_header = (frame[14] & 0x0F) * 4
        total_length = struct.unpack_from("!H", frame, 16)[0]
        tcp = 14 + ip_header
        source_port, destination_port = struct.unpack_from("!HH", frame, tcp)
        flags = frame[tcp + 13]
        payload = frame[tcp + (frame[tcp + 12] >> 4) * 4 : 14 + total_length]
        source = (frame[26:30], source_port)
        destination = (frame[30:34], destination_port)
        if connection is None and destination_port == server_port and flags & TCP_SYN:
            connection = source
        if connection not in (source, destination):
            continue
        if flags & TCP_FIN and not payload:
            break
        if payload:
            from_client = source == connection
            if runs and runs[-1][0] == from_client:
                runs[-1] = (from_client, runs[-1][1] + payload)
            else:
                runs.append((from_client, payload))
    return runs


def failed_logon_messages(path: Path = LOGON_RECORDING) -> list[tuple[bytes, bytes]]:
    """(request, response) NetBIOS-framed SMB exchanges of the recorded failed logon:
    NEGOTIATE, SESSION_SETUP (NTLMSSP NEGOTIATE/CHALLENGE), SESSION_SETUP (AUTHENTICATE,
    STATUS_LOGON_FAILURE)."""
    runs = recorded_tcp_messages(path)
    if len(runs) % 2 or not all(from_client == (index % 2 == 0) for index, (from_client, _) in enumerate(runs)):
        raise ValueError(f"{path}: the first connection is not request/response pairs")
    pairs = [(runs[index][1], runs[index + 1][1]) for index in range(0, len(runs), 2)]
    last_status = struct.unpack_from("<I", pairs[-1][1], 4 + 8)[0]
    if last_status != 0xC000006D:
        raise ValueError(f"{path}: the last response is 0x{last_status:08x}, not STATUS_LOGON_FAILURE")
    return pairs


def failed_logon(
    rng: random.Random, start_us: int, client: bytes, port: int, server: bytes, messages: list[tuple[bytes, bytes]]
) -> Iterator[Timed]:
    """One short connection: handshake, the recorded exchanges re-addressed, client FIN."""
    flow = TcpFlow(rng, start_us, client, port, server, 445)
    rtt_us = rng.randint(200, 2000)
    yield from flow.handshake(rtt_us)
    for request, response in messages:
        yield from flow.exchange(request, response, rtt_us, rng.randint(50, 1500))
    yield from flow.close(rtt_us)


def logon_flood_frames(
    clients: int = LOGON_FLOOD_CLIENTS,
    seed: int = DEFAULT_SEED,
    *,
    rate: int = LOGON_FLOOD_RATE,
    servers: tuple[str, ...] = LOGON_FLOOD_SERVERS,
    brute_force_attempts: int = BRUTE_FORCE_ATTEMPTS,
    recording: Path = LOGON_RECORDING,
) -> Iterator[Timed]:
    """``clients`` failed SMB logons, each from its own address in 10.0.0.0/8 to one of
    ``servers``, started every 1-1999 us (mean 1/``rate`` s), in time order. Each is a
    whole TCP connection (12 frames) carrying the SMB2 messages of the first connection of
    ``recording`` (SMB 3.1.1 NEGOTIATE, NTLMSSP NEGOTIATE/CHALLENGE, AUTHENTICATE as
    SMBWLAB\\alice -> STATUS_LOGON_FAILURE) byte for byte. On top, BRUTE_FORCER_IP makes
    ``brute_force_attempts`` such logons against the first server, spread evenly over the flood.
    """
    rng = random.Random(seed + 16)
    messages = failed_logon_messages(recording)
    brute_forcer = ip_address(BRUTE_FORCER_IP)
    excluded = int.from_bytes(brute_forcer, "big") & 0xFFFFFF
    numbers = [n for n in rng.sample(range(1, 0xFFFFFF), clients + 1) if n != excluded][:clients]
    server_ips = [ip_address(server) for server in servers]
    step = max(1, clients // brute_force_attempts) if brute_force_attempts else 0
    mean_gap_us = 1_000_000 / rate
    low, high = max(1, round(mean_gap_us / 1000)), max(1, round(mean_gap_us * 2 - mean_gap_us / 1000))
    active: list[tuple[int, int, bytes, Iterator[Timed]]] = []
    serial = 0
    now = 0
    brute_forced = 0

    def start(flow: Iterator[Timed]) -> None:
        nonlocal serial
        first = next(flow)
        serial += 1
        heapq.heappush(active, (first[0], serial, first[1], flow))

    def drain_until(limit: int | None) -> Iterator[Timed]:
        nonlocal serial
        while active and (limit is None or active[0][0] <= limit):
            time_us, _, frame, flow = heapq.heappop(active)
            yield time_us, frame
            following = next(flow, None)
            if following is not None:
                serial += 1
                heapq.heappush(active, (max(following[0], time_us), serial, following[1], flow))

    for index, number in enumerate(numbers):
        now += rng.randint(low, high)
        yield from drain_until(now)
        client = b"\x0a" + number.to_bytes(3, "big")
        start(failed_logon(rng, now, client, rng.randint(49152, 65535), rng.choice(server_ips), messages))
        if step and brute_forced < brute_force_attempts and index == step // 2 + brute_forced * step:
            brute_forced += 1
            port = 49152 + (brute_forced * 7919) % 16384
            start(failed_logon(rng, now + rng.randint(1, 500), brute_forcer, port, server_ips[0], messages))
    yield from drain_until(None)


def logon_flood_pcap(clients: int = LOGON_FLOOD_CLIENTS, seed: int = DEFAULT_SEED, **options: Any) -> bytes:
    """``logon_flood_frames`` as a classic pcap in memory."""
    return pcap_bytes(logon_flood_frames(clients, seed, **options))


def write_logon_flood(
    path: Path, clients: int = LOGON_FLOOD_CLIENTS, seed: int = DEFAULT_SEED, **options: Any
) -> tuple[int, int]:
    return write_frames(path, logon_flood_frames(clients, seed, **options))


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


CAPTURE_NAMES = ("bulk", "mixed", *SYNFLOOD_VARIANTS, "logon_flood")


def generate(
    outdir: Path,
    mixed_packets: int = DEFAULT_MIXED_PACKETS,
    bulk_mb: int = DEFAULT_BULK_MB,
    seed: int = DEFAULT_SEED,
    only: str | None = None,
) -> dict[str, dict[str, int]]:
    """Write every capture of CAPTURE_NAMES (or just ``only``) into ``outdir``; return packets/bytes per file."""
    outdir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, int]] = {}
    if only in (None, "bulk"):
        started = time.perf_counter()
        packets, size = write_bulk(outdir / "bulk.pcap", bulk_mb, seed)
        written["bulk.pcap"] = {"packets": packets, "bytes": size}
        print(
            f"wrote {outdir / 'bulk.pcap'}: {packets:,} packets, {size:,} bytes ({time.perf_counter() - started:.1f} s)"
        )
    if only in (None, "mixed"):
        started = time.perf_counter()
        packets, size, per_category = write_mixed(outdir / "mixed.pcap", mixed_packets, seed)
        written["mixed.pcap"] = {"packets": packets, "bytes": size}
        print(
            f"wrote {outdir / 'mixed.pcap'}: {packets:,} packets, {size:,} bytes "
            f"({time.perf_counter() - started:.1f} s)"
        )
        for category, count in sorted(per_category.items()):
            print(f"  {category:14} {count:>9,} packets ({100 * count / packets:4.1f} %)")
    floods: dict[str, Callable[[Path], tuple[int, int]]] = {
        name: (lambda path, syns=syns: write_synflood(path, syns, seed)) for name, syns in SYNFLOOD_VARIANTS.items()
    }
    floods["logon_flood"] = lambda path: write_logon_flood(path, LOGON_FLOOD_CLIENTS, seed)
    for name, write in floods.items():
        if only in (None, name):
            started = time.perf_counter()
            path = outdir / f"{name}.pcap"
            packets, size = write(path)
            written[path.name] = {"packets": packets, "bytes": size}
            print(f"wrote {path}: {packets:,} packets, {size:,} bytes ({time.perf_counter() - started:.1f} s)")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument(
        "--mixed-packets",
        type=int,
        default=DEFAULT_MIXED_PACKETS,
        help="minimum packets in mixed.pcap (default %(default)s)",
    )
    parser.add_argument(
        "--bulk-mb",
        type=int,
        default=DEFAULT_BULK_MB,
        help="approximate size of bulk.pcap in MB (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", choices=CAPTURE_NAMES, help="write just one of the captures")
    args = parser.parse_args(argv)
    generate(args.outdir, args.mixed_packets, args.bulk_mb, args.seed, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
