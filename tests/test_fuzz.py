"""Fuzz and property tests: nothing raises on network data, loops, or keeps unbounded memory.

../shared/DESIGN.md section 2: "Never raise on data from the network ... a fuzz test
proves there are none" and "Cap everything that grows with input". Every parser,
`SmbStream`, the link decoder, the capture reader and the whole pipeline get
pure random bytes, structure-aware inputs (valid prefixes with random fields) and
mutations of real messages cut from ``pcaps/recorded/``. Each example runs under
a wall-clock alarm, so an endless loop fails instead of hanging the suite.

Profiles live in tests/conftest.py: "ci" by default, ``HYPOTHESIS_PROFILE=dev`` to hunt.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import signal
import struct
import threading
import time
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from dissectors import message, netbios
from dissectors.constants import SMB_PORTS
from dissectors.message import MAX_KEPT_MESSAGE, PEEK_SIZE
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    CompressionCapabilities,
    EncryptionCapabilities,
    NetbiosSessionRequest,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    RdmaTransformCapabilities,
    ReassemblyGap,
    SigningCapabilities,
    Smb1Body,
    Smb1Header,
    Smb1Message,
    Smb1NegotiateRequest,
    Smb1NegotiateResponse,
    Smb2Body,
    Smb2CompressionTransformHeader,
    Smb2Header,
    Smb2Message,
    Smb2NegotiateRequest,
    Smb2NegotiateResponse,
    Smb2TransformHeader,
    StreamEvent,
    TransportCapabilities,
    UnknownNegotiateContext,
)
from dissectors.smb1 import message as smb1
from dissectors.smb2 import message as smb2
from dissectors.smb2 import negotiate as smb2_negotiate
from dissectors.stream import MAX_KEPT_CONTROL_PACKET, SmbStream
from monitor.input.capture import MAX_RECORD_BYTES, CaptureError, CaptureFile
from monitor.input.decode import Decoder, TcpSegment
from monitor.pipeline import ConnectionRecord, Pipeline
from monitor.tcp.flows import FlowLimits

# --- limits the properties check --------------------------------------------------------

# Far above what any single example needs; only an endless (or quadratic) loop reaches it.
EXAMPLE_TIME_LIMIT = 10.0
# SmbStream after any call: HEADER keeps < 4 bytes, BODY < the kept part of one frame
# (<= MAX_KEPT_MESSAGE, or MAX_KEPT_CONTROL_PACKET, or PEEK_SIZE while deciding), RESYNC
# the 7-byte tail that may start an 8-byte header + protocol id split across feeds.
RESYNC_PATTERN_SIZE = 8
STREAM_BUFFER_BOUND = max(
    MAX_KEPT_MESSAGE, MAX_KEPT_CONTROL_PACKET, PEEK_SIZE, netbios.NETBIOS_HEADER_SIZE, RESYNC_PATTERN_SIZE - 1
)
STREAM_EVENT_TYPES: tuple[type, ...] = typing.get_args(StreamEvent)
SMB1_BODY_TYPES: tuple[type, ...] = typing.get_args(Smb1Body)
SMB2_BODY_TYPES: tuple[type, ...] = typing.get_args(Smb2Body)
NEGOTIATE_CONTEXT_TYPES = (
    PreauthIntegrityCapabilities,
    EncryptionCapabilities,
    CompressionCapabilities,
    NetnameNegotiateContextId,
    TransportCapabilities,
    RdmaTransformCapabilities,
    SigningCapabilities,
    UnknownNegotiateContext,
)
# Most events one SMB2 frame can give: two per compound message, plus the chain's anomaly.
MAX_EVENTS_PER_SMB2_FRAME = 2 * smb2.MAX_COMPOUND_MESSAGES + 1

LINKTYPES_HANDLED = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)
SMB1_NEGOTIATE = 0x72
SMB2_NEGOTIATE = 0x0000
SMB2_READ = 0x0008
SMB2_WRITE = 0x0009
SMB2_DIALECTS = (0x0202, 0x0210, 0x02FF, 0x0300, 0x0302, 0x0311)
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class LoopSuspected(AssertionError):
    """An example ran past EXAMPLE_TIME_LIMIT: an endless or quadratic loop."""


@contextmanager
def time_limit(seconds: float = EXAMPLE_TIME_LIMIT) -> Iterator[None]:
    """Raise `LoopSuspected` inside the code under test if it runs longer than `seconds`."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise LoopSuspected(f"no return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- wire builders ------------------------------------------------------------------------


def netbios_frame(body: bytes) -> bytes:
    """A direct-TCP / NetBIOS SESSION MESSAGE header (type 0, length) and `body`."""
    return (len(body) & 0xFFFFFF).to_bytes(4, "big") + body


def smb2_header(
    command: int,
    *,
    flags: int = 0,
    status: int = 0,
    next_command: int = 0,
    message_id: int = 0,
    structure_size: int = 64,
) -> bytes:
    """[MS-SMB2] 2.2.1.2 sync header."""
    return struct.pack(
        "<4sHHIHHIIQQQ16s",
        b"\xfeSMB",
        structure_size,
        0,
        status,
        command,
        1,
        flags,
        next_command,
        message_id,
        0,
        0,
        b"\x00" * 16,
    )


def negotiate_contexts(contexts: Sequence[tuple[int, bytes]], start: int) -> bytes:
    """[MS-SMB2] 2.2.3.1 contexts, each 8-byte aligned counting from the SMB2 header at offset 0."""
    out = bytearray()
    for context_type, data in contexts:
        out += b"\x00" * (-(start + len(out)) % 8)
        out += struct.pack("<HHI", context_type, len(data) & 0xFFFF, 0) + data
    return bytes(out)


def smb2_negotiate_request(
    dialects: Sequence[int], contexts: Sequence[tuple[int, bytes]] = (), security_mode: int = 1
) -> bytes:
    """[MS-SMB2] 2.2.3 NEGOTIATE request (header included), contexts after 8-byte padding."""
    dialect_bytes = struct.pack(f"<{len(dialects)}H", *dialects)
    fixed_end = 64 + 36 + len(dialect_bytes)
    context_offset = (fixed_end + 7) & ~7 if contexts else 0
    fixed = struct.pack(
        "<HHHHI16sIH2x", 36, len(dialects), security_mode, 0, 0x7F, b"G" * 16, context_offset, len(contexts)
    )
    body = smb2_header(SMB2_NEGOTIATE) + fixed + dialect_bytes
    if contexts:
        body += b"\x00" * (context_offset - len(body)) + negotiate_contexts(contexts, context_offset)
    return body


def smb2_negotiate_response(dialect: int, contexts: Sequence[tuple[int, bytes]] = (), blob: bytes = b"") -> bytes:
    """[MS-SMB2] 2.2.4 NEGOTIATE response (header included)."""
    blob_offset = 64 + 64
    context_offset = (blob_offset + len(blob) + 7) & ~7 if contexts else 0
    fixed = struct.pack(
        "<HHHH16sIIIIQQHHI",
        65,
        3,
        dialect,
        len(contexts),
        b"S" * 16,
        0x2F,
        8 << 20,
        8 << 20,
        8 << 20,
        0,
        0,
        blob_offset,
        len(blob),
        context_offset,
    )
    body = smb2_header(SMB2_NEGOTIATE, flags=1) + fixed + blob
    if contexts:
        body += b"\x00" * (context_offset - len(body)) + negotiate_contexts(contexts, context_offset)
    return body


CONTEXTS_311 = (
    (1, struct.pack("<HHH", 1, 32, 1) + b"\x5a" * 32),  # preauth SHA-512 with a 32-byte salt
    (2, struct.pack("<HHH", 2, 2, 1)),  # encryption AES-128-GCM, AES-128-CCM
    (3, struct.pack("<HHIH", 1, 0, 0, 2)),  # compression LZ77
    (5, "fileserver".encode("utf-16-le")),  # netname
    (6, struct.pack("<I", 1)),  # transport
    (7, struct.pack("<HHIH", 1, 0, 0, 1)),  # RDMA transform
    (8, struct.pack("<HH", 1, 2)),  # signing AES-GMAC
)


def smb1_header(command: int, *, flags: int = 0x18, flags2: int = 0xC853, status: int = 0) -> bytes:
    """[MS-CIFS] 2.2.3.1 SMB_Header."""
    return struct.pack("<4sBIBHH8xxxHHHH", b"\xffSMB", command, status, flags, flags2, 0, 0, 0xFEFF, 0, 1)


def smb1_message(command: int, words: bytes, data: bytes, *, flags: int = 0x18, word_count: int | None = None) -> bytes:
    count = len(words) // 2 if word_count is None else word_count
    return smb1_header(command, flags=flags) + bytes([count & 0xFF]) + words + struct.pack("<H", len(data)) + data


def smb1_negotiate_request(dialects: Sequence[bytes]) -> bytes:
    return smb1_message(SMB1_NEGOTIATE, b"", b"".join(b"\x02" + d + b"\x00" for d in dialects))


def smb1_negotiate_response_nt(index: int, security_mode: int = 0x03, capabilities: int = 0x8000F3FD) -> bytes:
    words = struct.pack("<HBHHIIIIQhB", index, security_mode, 50, 1, 16644, 65536, 0, capabilities, 0, 0, 0)
    return smb1_message(SMB1_NEGOTIATE, words, b"U" * 16 + b"\x60\x28", flags=0x98)


def netbios_name(name: str, suffix: int = 0x20, scope: Sequence[bytes] = ()) -> bytes:
    """RFC 1001 14.1 first-level encoding of a NetBIOS name, with optional scope labels."""
    raw = name.encode("latin-1").ljust(15, b" ")[:15] + bytes([suffix])
    encoded = bytes(b for byte in raw for b in (0x41 + (byte >> 4), 0x41 + (byte & 0x0F)))
    labels = b"\x20" + encoded + b"".join(bytes([len(label)]) + label for label in scope)
    return labels + b"\x00"


def session_request(called: str, calling: str) -> bytes:
    """RFC 1002 4.3.2 SESSION REQUEST packet, header included."""
    body = netbios_name(called) + netbios_name(calling, 0x00)
    return bytes([0x81, 0]) + len(body).to_bytes(2, "big") + body


def transform_header(original_size: int = 200, session_id: int = 0x1234) -> bytes:
    return struct.pack("<4s16s16sIHHQ", b"\xfdSMB", b"\x11" * 16, b"\x22" * 16, original_size, 0, 1, session_id)


def compression_header(original_size: int = 4096) -> bytes:
    return struct.pack("<4sIHHI", b"\xfcSMB", original_size, 1, 0, 0)


HANDMADE_MESSAGES: tuple[bytes, ...] = (
    smb2_negotiate_request(SMB2_DIALECTS[:2] + SMB2_DIALECTS[3:], CONTEXTS_311),
    smb2_negotiate_request((0x0202, 0x0210)),
    smb2_negotiate_response(0x0311, CONTEXTS_311[:3], blob=b"\x60" * 40),
    smb2_negotiate_response(0x0210, blob=b"\x60" * 20),
    smb2_header(7, next_command=72) + b"\x00" * 8 + smb2_header(13),  # a two-message compound (FLUSH, ECHO)
    smb2_header(SMB2_READ, flags=1) + struct.pack("<HBBIII", 17, 80, 0, 300, 0, 0) + b"\xab" * 300,
    smb1_negotiate_request((b"PC NETWORK PROGRAM 1.0", b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???")),
    smb1_negotiate_response_nt(1),
    smb1_message(SMB1_NEGOTIATE, struct.pack("<HHHH", 0, 1, 4356, 50) + b"\x00" * 18, b"", flags=0x98),
    smb1_message(SMB1_NEGOTIATE, struct.pack("<H", 0xFFFF), b"", flags=0x98),
    transform_header() + b"\x99" * 200,
    compression_header() + b"\x77" * 40,
)


# --- capture files ---------------------------------------------------------------------


def pcap_file(records: Sequence[bytes], linktype: int = 101, endian: str = "<") -> bytes:
    out = bytearray(struct.pack(endian + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for index, data in enumerate(records):
        out += struct.pack(endian + "IIII", 1_700_000_000 + index, index, len(data), len(data)) + data
    return bytes(out)


def pcapng_block(block_type: int, body: bytes, length: int | None = None, trailer: int | None = None) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    real = 12 + len(body)
    length = real if length is None else length
    trailer = length if trailer is None else trailer
    return struct.pack("<II", block_type, length & 0xFFFFFFFF) + body + struct.pack("<I", trailer & 0xFFFFFFFF)


def pcapng_section() -> bytes:
    return pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def pcapng_interface(linktype: int, options: bytes = b"") -> bytes:
    return pcapng_block(1, struct.pack("<HHI", linktype, 0, 65535) + options)


def pcapng_packet(interface: int, data: bytes, captured: int | None = None) -> bytes:
    captured = len(data) if captured is None else captured
    return pcapng_block(6, struct.pack("<IIIII", interface, 0, 0, captured & 0xFFFFFFFF, len(data)) + data)


def record_spans(data: bytes) -> list[int] | None:
    """File offsets where each packet record of an intact pcap or pcapng file ends (None: neither)."""
    if len(data) < 24:
        return None
    magic = data[:4]
    ends: list[int] = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = "<" if magic[0] in (0xD4, 0x4D) else ">"
        position = 24
        while position + 16 <= len(data):
            captured = struct.unpack_from(endian + "I", data, position + 8)[0]
            position += 16 + captured
            ends.append(position)
        return ends
    if magic == b"\x0a\x0d\x0d\x0a":
        position = 0
        while position + 12 <= len(data):
            block_type, length = struct.unpack_from("<II", data, position)
            position += length
            if block_type in (2, 3, 6):
                ends.append(position)
        return ends
    return None


# --- the corpus: real bytes from pcaps/recorded -----------------------------------------

PCAP_DIR = Path(__file__).resolve().parent.parent / "pcaps"


@dataclass
class Corpus:
    files: list[tuple[str, bytes]] = field(default_factory=list)  # whole capture files
    link_frames: list[tuple[int, bytes]] = field(default_factory=list)
    connections: list[list[tuple[float, int, bytes]]] = field(default_factory=list)  # each capture's frames
    streams: list[tuple[bool, bytes]] = field(default_factory=list)  # (direct TCP, one direction's bytes)
    messages: list[bytes] = field(default_factory=list)  # SESSION MESSAGE bodies (from the protocol id)


def _split_frames(data: bytes) -> Iterator[bytes]:
    position = 0
    while position + 4 <= len(data):
        length = int.from_bytes(data[position + 1 : position + 4], "big")
        if data[position] == 0x81 or data[position] == 0x85:
            length &= 0x1FFFF
        yield data[position : position + 4 + length]
        position += 4 + length


def _load_corpus() -> Corpus:
    corpus = Corpus()
    for path in sorted((PCAP_DIR / "recorded").glob("*.pcap*")):
        corpus.files.append((path.name, path.read_bytes()))
        decoder = Decoder()
        directions: dict[tuple[bytes, int, bytes, int], list] = {}
        frames: list[tuple[float, int, bytes]] = []
        try:
            for ts, linktype, frame in CaptureFile(str(path)):
                frames.append((ts, linktype, frame))
                segment = decoder.decode(linktype, frame)
                if segment is None or not segment.payload:
                    continue
                key = (segment.src, segment.sport, segment.dst, segment.dport)
                entry = directions.setdefault(key, [segment.seq, bytearray()])
                if segment.seq == entry[0]:  # in order; retransmissions dropped
                    entry[1] += segment.payload
                    entry[0] = (entry[0] + len(segment.payload)) & 0xFFFFFFFF
        except CaptureError:
            continue
        corpus.connections.append(frames)
        corpus.link_frames.extend((linktype, frame) for _, linktype, frame in frames)
        for (_, sport, _, dport), (_, data) in directions.items():
            corpus.streams.append((445 in (sport, dport), bytes(data)))
            for frame in _split_frames(bytes(data)):
                if frame[:1] == b"\x00" and len(frame) > 8:
                    corpus.messages.append(frame[4:])
    corpus.messages = list(dict.fromkeys(corpus.messages))
    return corpus


CORPUS = _load_corpus()
HAVE_PCAPS = bool(CORPUS.messages)
needs_pcaps = pytest.mark.skipif(not HAVE_PCAPS, reason="pcaps/recorded/ is absent")

SEED_MESSAGES: tuple[bytes, ...] = tuple(CORPUS.messages) + HANDMADE_MESSAGES
SEED_SMB1 = tuple(m for m in SEED_MESSAGES if m[:4] == b"\xffSMB")
SEED_SMB2 = tuple(m for m in SEED_MESSAGES if m[:4] == b"\xfeSMB")
SEED_STREAMS: tuple[tuple[bool, bytes], ...] = (
    *CORPUS.streams,
    (True, b"".join(netbios_frame(m) for m in HANDMADE_MESSAGES)),
    (False, session_request("FILESERVER", "CLIENT") + b"\x82\x00\x00\x00" + netbios_frame(HANDMADE_MESSAGES[6])),
)
SEED_LINK_FRAMES: tuple[tuple[int, bytes], ...] = tuple(CORPUS.link_frames)


# --- strategies -------------------------------------------------------------------------

INTERESTING_INTS: tuple[int, ...] = (0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF)
INTERESTING_INTS += (0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x1FFFF, 0xFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
INTERESTING = st.sampled_from(INTERESTING_INTS)
INT_LAYOUTS = st.sampled_from([(1, "little"), (2, "little"), (4, "little"), (2, "big"), (4, "big")])


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed with 1-8 random edits: bit flips, interesting integers, truncation, insertion, deletion, splices."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 6))
        index = draw(st.integers(0, len(data)))
        if op == 0 and data:
            index = min(index, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and data:
            index = min(index, len(data) - 1)
            data[index] = draw(st.integers(0, 255))
        elif op == 2:
            width, order = draw(INT_LAYOUTS)
            value = draw(INTERESTING) & ((1 << (8 * width)) - 1)
            data[index : index + width] = value.to_bytes(width, "big" if order == "big" else "little")
        elif op == 3:
            del data[index:]
        elif op == 4:
            data[index:index] = draw(st.binary(max_size=64))
        elif op == 5:
            del data[index : index + draw(st.integers(1, 64))]
        else:
            start = draw(st.integers(0, len(data)))
            data[index:index] = data[start : start + draw(st.integers(1, 128))]
    return bytes(data)


any_u16 = st.integers(0, 0xFFFF)
any_u32 = st.integers(0, 0xFFFFFFFF)
small_or_any = st.one_of(st.integers(0, 80), INTERESTING)


CONTEXT_TYPES = st.one_of(st.integers(1, 8), any_u16)


@st.composite
def context_lists(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """Negotiate contexts of known and unknown types, with counts inside that may lie about the data."""
    contexts = []
    for _ in range(draw(st.integers(0, 6))):
        context_type = draw(CONTEXT_TYPES)
        count = draw(st.integers(0, 20))
        shape = draw(st.integers(0, 3))
        if shape == 0:
            data = draw(st.binary(max_size=40))
        elif shape == 1:  # preauth: HashAlgorithmCount, SaltLength
            data = struct.pack("<HH", count, draw(small_or_any) & 0xFFFF) + draw(st.binary(max_size=50))
        else:  # count-prefixed 16-bit ids (encryption, signing) or after 8 bytes (compression, RDMA)
            values = draw(st.binary(min_size=2 * count, max_size=2 * count))
            data = (struct.pack("<H", count) if shape == 2 else struct.pack("<HHI", count, 0, 1)) + values
        contexts.append((context_type, data))
    return contexts


@st.composite
def smb2_negotiate_messages(draw: st.DrawFn) -> bytes:
    """NEGOTIATE request or response: valid layout, random counts, offsets, sizes and contexts."""
    dialects = draw(st.lists(st.one_of(st.sampled_from(SMB2_DIALECTS), any_u16), min_size=0, max_size=8))
    contexts = draw(context_lists())
    if draw(st.booleans()):
        if 0x0311 not in dialects and draw(st.booleans()):
            dialects.append(0x0311)
        data = bytearray(smb2_negotiate_request(dialects or [0x0311], contexts))
        fields = {66: 2, 100: 4, 104: 2, 64: 2}  # DialectCount, ContextOffset, ContextCount, StructureSize
    else:
        dialect = draw(st.one_of(st.just(0x0311), st.sampled_from(SMB2_DIALECTS), any_u16))
        data = bytearray(smb2_negotiate_response(dialect, contexts, blob=draw(st.binary(max_size=40))))
        fields = {70: 2, 124: 4, 120: 2, 64: 2}  # ContextCount, ContextOffset, SecurityBufferLength, StructureSize
    for offset, width in fields.items():
        if draw(st.integers(0, 3)) == 0:
            data[offset : offset + width] = (draw(small_or_any) & ((1 << 8 * width) - 1)).to_bytes(width, "little")
    if draw(st.booleans()):
        del data[draw(st.integers(64, len(data))) :]
    return bytes(data)


@st.composite
def smb2_frames(draw: st.DrawFn) -> bytes:
    """A chain of SMB2 headers with random fields and NextCommand values, bodies random or NEGOTIATE."""
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 2)) == 0:
            body = draw(smb2_negotiate_messages())[64:]
            command = SMB2_NEGOTIATE
        else:
            body = draw(st.binary(max_size=80))
            command = draw(st.one_of(st.integers(0, 0x13), any_u16))
        next_command = draw(st.one_of(st.just(0), st.sampled_from((64, 72, 128, 8, 63, 65)), any_u32))
        header = smb2_header(
            command,
            flags=draw(st.one_of(st.sampled_from((0, 1, 2, 3, 8, 9)), any_u32)),
            status=draw(st.sampled_from((0, 0xC0000022, 0x103))),
            next_command=next_command,
            structure_size=draw(st.sampled_from((64, 64, 64, 0, 65))),
        )
        parts.append(header + body)
    return b"".join(parts)


@st.composite
def smb1_messages(draw: st.DrawFn) -> bytes:
    """SMB1 messages: NEGOTIATE (or another command), random WordCount, words, ByteCount and data."""
    command = draw(st.one_of(st.just(SMB1_NEGOTIATE), st.integers(0, 255)))
    flags = draw(st.sampled_from((0x18, 0x98, 0x00, 0x80, 0xFF)))
    words = draw(
        st.one_of(
            st.just(b""),
            st.binary(min_size=34, max_size=34),
            st.binary(min_size=26, max_size=26),
            st.binary(min_size=2, max_size=2),
            st.binary(max_size=80),
        )
    )
    word_count = draw(st.one_of(st.none(), st.integers(0, 255)))
    dialect_strings = st.lists(st.binary(max_size=12).map(lambda s: b"\x02" + s.replace(b"\x00", b"") + b"\x00"))
    data = draw(st.one_of(st.binary(max_size=64), dialect_strings.map(b"".join)))
    message_bytes = bytearray(smb1_message(command, words, data, flags=flags, word_count=word_count))
    if draw(st.integers(0, 3)) == 0:  # a ByteCount that lies
        bytecount_at = 33 + 2 * message_bytes[32]
        message_bytes[bytecount_at : bytecount_at + 2] = (draw(small_or_any) & 0xFFFF).to_bytes(2, "little")
    return bytes(message_bytes)


@st.composite
def netbios_session_bytes(draw: st.DrawFn) -> bytes:
    """Session service packets: known and unknown types, flags and lengths, bodies of encoded names."""
    packet_type = draw(st.sampled_from((0x00, 0x81, 0x82, 0x83, 0x84, 0x85, 0x01, 0xFF)))
    flags = draw(st.sampled_from((0, 1, 2, 0xFE)))
    labels = draw(
        st.lists(
            st.one_of(
                st.text(alphabet="ABCDEFGHIJKLMNOP", min_size=32, max_size=32).map(str.encode),
                st.binary(max_size=70),
            ),
            max_size=20,
        )
    )
    body = b"".join(bytes([min(len(label), 255)]) + label for label in labels)
    if draw(st.booleans()):
        body += b"\x00"
    body += draw(st.binary(max_size=8))
    length = draw(st.one_of(st.just(len(body)), small_or_any)) & 0xFFFF
    return bytes([packet_type, flags]) + length.to_bytes(2, "big") + body


def any_message() -> st.SearchStrategy[bytes]:
    """Everything a SESSION MESSAGE may carry, valid-looking or not."""
    return st.one_of(
        st.binary(max_size=300),
        mutated(SEED_MESSAGES),
        smb2_frames(),
        smb2_negotiate_messages(),
        smb1_messages(),
        st.sampled_from((b"\xfdSMB", b"\xfcSMB", b"\xfeSMB", b"\xffSMB")).flatmap(
            lambda magic: st.binary(max_size=80).map(lambda rest: magic + rest)
        ),
    )


ANY_MESSAGE = any_message()


# --- result checks ----------------------------------------------------------------------


def check_smb2_body(body: object) -> None:
    assert body is None or isinstance(body, SMB2_BODY_TYPES)
    if isinstance(body, Smb2NegotiateRequest | Smb2NegotiateResponse):
        assert all(isinstance(context, NEGOTIATE_CONTEXT_TYPES) for context in body.contexts)
        assert len(body.contexts) <= smb2_negotiate.MAX_NEGOTIATE_CONTEXTS
    if isinstance(body, Smb2NegotiateRequest):
        assert 1 <= len(body.dialects) <= smb2_negotiate.MAX_DIALECTS


def check_event(event: object) -> None:
    """An event is one of the StreamEvent records, with the right kinds of parts."""
    assert isinstance(event, STREAM_EVENT_TYPES), type(event)
    if isinstance(event, Anomaly):
        assert isinstance(event.kind, AnomalyKind) and isinstance(event.detail, str)
    elif isinstance(event, Smb2Message):
        assert isinstance(event.header, Smb2Header)
        check_smb2_body(event.body)
    elif isinstance(event, Smb1Message):
        assert isinstance(event.header, Smb1Header)
        assert event.body is None or isinstance(event.body, SMB1_BODY_TYPES)
    elif isinstance(event, ReassemblyGap):
        assert event.size > 0


def check_stream(stream: SmbStream) -> None:
    assert 0 <= stream.buffered <= STREAM_BUFFER_BOUND, f"{stream.buffered} bytes buffered in {stream.state}"


# --- NetBIOS ----------------------------------------------------------------------------


@given(data=st.one_of(st.binary(min_size=4, max_size=12), netbios_session_bytes()), direct=st.booleans())
def test_netbios_session_header_never_raises(data: bytes, direct: bool) -> None:
    with time_limit():
        for offset in range(len(data) - 3):
            result = netbios.parse_session_header(data, offset, direct)
            if not isinstance(result, Anomaly):
                packet_type, length = result
                assert length <= (netbios.DIRECT_TCP_MAX_LENGTH if direct else netbios.NETBIOS_MAX_LENGTH)
                assert 0 <= packet_type <= 0xFF


@given(
    data=st.one_of(
        st.binary(max_size=200),
        netbios_session_bytes().map(lambda b: b[4:]),
        mutated([session_request("FILESERVER", "CLIENT")[4:], netbios_name("HOST", 0x20, (b"corp", b"example"))]),
    ),
    offset=st.integers(0, 80),
)
def test_netbios_names_never_raise(data: bytes, offset: int) -> None:
    with time_limit():
        name = netbios.decode_netbios_name(data, offset)
        if not isinstance(name, Anomaly):
            text, end = name
            assert isinstance(text, str) and offset < end <= len(data)
        request = netbios.parse_session_request(data)
        assert isinstance(request, NetbiosSessionRequest | Anomaly)


def test_netbios_known_good() -> None:
    body = session_request("FILESERVER", "CLIENT")
    assert netbios.parse_session_header(body, 0, False) == (0x81, len(body) - 4)
    assert netbios.parse_session_request(body[4:]) == NetbiosSessionRequest("FILESERVER<20>", "CLIENT<00>")
    scoped = netbios_name("HOST", 0x20, (b"corp", b"example"))
    assert netbios.decode_netbios_name(scoped, 0) == ("HOST<20>.corp.example", len(scoped))
    assert netbios.parse_session_header(b"\x00\xff\xff\xff", 0, True) == (0, 0xFFFFFF)
    assert isinstance(netbios.parse_session_header(b"\x00\x02\x00\x00", 0, False), Anomaly)


# --- SMB1 -------------------------------------------------------------------------------


@given(msg=st.one_of(st.binary(max_size=120), smb1_messages(), mutated(SEED_SMB1)))
def test_smb1_never_raises(msg: bytes) -> None:
    with time_limit():
        header = smb1.parse_header(msg)
        assert isinstance(header, Smb1Header | Anomaly)
        parts = smb1.split_parameters(msg)
        if not isinstance(parts, Anomaly):
            words, data, data_offset = parts.words, parts.data, parts.data_offset
            assert len(words) % 2 == 0 and len(words) + len(data) <= len(msg) and data_offset <= len(msg)
        request = smb1.parse_negotiate_request(msg)
        assert isinstance(request, Smb1NegotiateRequest | Anomaly)
        if isinstance(request, Smb1NegotiateRequest):
            assert len(request.dialects) <= len(msg)
        response = smb1.parse_negotiate_response(msg)
        assert response is None or isinstance(response, Smb1NegotiateResponse | Anomaly)
        events = smb1.parse_message(msg)
        # One command record (plus one anomaly) per link of an AndX chain, and one final anomaly.
        assert 1 <= len(events) <= 2 * smb1.MAX_ANDX_CHAIN + 1
        for event in events:
            check_event(event)


def test_smb1_known_good() -> None:
    [request] = smb1.parse_message(HANDMADE_MESSAGES[6])
    assert isinstance(request, Smb1Message)
    assert request.body == Smb1NegotiateRequest(("PC NETWORK PROGRAM 1.0", "NT LM 0.12", "SMB 2.002", "SMB 2.???"))
    [response] = smb1.parse_message(smb1_negotiate_response_nt(1))
    assert isinstance(response, Smb1Message) and isinstance(response.body, Smb1NegotiateResponse)
    assert (response.body.word_count, response.body.dialect_index, response.body.server_guid) == (17, 1, b"U" * 16)
    if HAVE_PCAPS:
        offered = {
            d
            for m in SEED_SMB1
            for e in smb1.parse_message(m)
            if isinstance(e, Smb1Message) and isinstance(e.body, Smb1NegotiateRequest)
            for d in e.body.dialects
        }
        assert "NT LM 0.12" in offered


# --- SMB2 -------------------------------------------------------------------------------


@given(
    frame=st.one_of(st.binary(max_size=300), smb2_frames(), mutated(SEED_SMB2), smb2_negotiate_messages()),
    extra=st.one_of(st.just(0), st.integers(0, 1 << 24)),
    offset=st.integers(0, 200),
)
def test_smb2_never_raises(frame: bytes, extra: int, offset: int) -> None:
    with time_limit():
        header = smb2.parse_header(frame, offset)
        assert isinstance(header, Smb2Header | Anomaly)
        events = smb2.parse_compound(frame, len(frame) + extra)
        assert 1 <= len(events) <= MAX_EVENTS_PER_SMB2_FRAME
        for event in events:
            check_event(event)
        assert isinstance(smb2.parse_transform_header(frame), Smb2TransformHeader | Anomaly)
        assert isinstance(smb2.parse_compression_header(frame), Smb2CompressionTransformHeader | Anomaly)


@given(
    msg=st.one_of(smb2_negotiate_messages(), mutated(SEED_SMB2), st.binary(max_size=200)),
    offset=st.one_of(st.integers(0, 300), any_u32),
    count=st.one_of(st.integers(0, 40), any_u16),
)
def test_smb2_negotiate_never_raises(msg: bytes, offset: int, count: int) -> None:
    with time_limit():
        request = smb2_negotiate.parse_negotiate_request(msg)
        assert isinstance(request, Smb2NegotiateRequest | Anomaly)
        if isinstance(request, Smb2NegotiateRequest):
            check_smb2_body(request)
        response = smb2_negotiate.parse_negotiate_response(msg)
        assert isinstance(response, Smb2NegotiateResponse | Anomaly)
        if isinstance(response, Smb2NegotiateResponse):
            check_smb2_body(response)
        contexts = smb2_negotiate.parse_negotiate_contexts(msg, offset, count)
        if not isinstance(contexts, Anomaly):
            assert len(contexts) == count <= smb2_negotiate.MAX_NEGOTIATE_CONTEXTS
            assert all(isinstance(context, NEGOTIATE_CONTEXT_TYPES) for context in contexts)


def test_smb2_known_good() -> None:
    request = smb2_negotiate.parse_negotiate_request(HANDMADE_MESSAGES[0])
    assert isinstance(request, Smb2NegotiateRequest)
    assert 0x0311 in request.dialects and len(request.contexts) == len(CONTEXTS_311)
    assert isinstance(request.contexts[3], NetnameNegotiateContextId) and request.contexts[3].net_name == "fileserver"
    [response] = smb2.parse_compound(HANDMADE_MESSAGES[2], len(HANDMADE_MESSAGES[2]))
    assert isinstance(response, Smb2Message) and isinstance(response.body, Smb2NegotiateResponse)
    assert response.body.dialect == 0x0311 and len(response.body.contexts) == 3
    assert [type(e) for e in smb2.parse_compound(HANDMADE_MESSAGES[4], len(HANDMADE_MESSAGES[4]))] == [Smb2Message] * 2
    if HAVE_PCAPS:
        selected = {
            e.body.dialect
            for m in SEED_SMB2
            for e in smb2.parse_compound(m, len(m))
            if isinstance(e, Smb2Message) and isinstance(e.body, Smb2NegotiateResponse)
        }
        assert {0x0202, 0x0210, 0x0300, 0x0302, 0x0311} <= selected, selected


def test_structured_strategies_reach_deep_code() -> None:
    """The strategies are not vacuous: they produce inputs that parse all the way to contexts."""
    deep = find(
        smb2_negotiate_messages(),
        lambda m: (
            isinstance(r := smb2_negotiate.parse_negotiate_response(m), Smb2NegotiateResponse) and len(r.contexts) >= 2
        ),
        settings=settings(max_examples=2000, database=None, phases=[Phase.generate]),
    )
    assert deep[:4] == b"\xfeSMB"
    found = find(
        smb1_messages(),
        lambda m: isinstance(smb1.parse_negotiate_request(m), Smb1NegotiateRequest),
        settings=settings(max_examples=2000, database=None, phases=[Phase.generate]),
    )
    assert found[:4] == b"\xffSMB"


# --- message.py ---------------------------------------------------------------------------


@given(kept=ANY_MESSAGE, extra=st.one_of(st.just(0), st.integers(0, 1 << 24)))
def test_message_never_raises(kept: bytes, extra: int) -> None:
    with time_limit():
        frame_length = len(kept) + extra
        keep = message.bytes_to_keep(kept[:PEEK_SIZE], frame_length)
        assert 0 <= keep <= min(frame_length, MAX_KEPT_MESSAGE)
        events = message.dissect_session_message(kept, frame_length)
        assert 1 <= len(events) <= MAX_EVENTS_PER_SMB2_FRAME
        for event in events:
            check_event(event)


def test_message_known_good() -> None:
    frame = HANDMADE_MESSAGES[0]
    assert message.bytes_to_keep(frame[:PEEK_SIZE], len(frame)) == len(frame)
    read = HANDMADE_MESSAGES[5]
    assert message.bytes_to_keep(read[:PEEK_SIZE], 1 << 20) == message.BULK_MESSAGE_PREFIX
    assert message.bytes_to_keep(smb2_header(3), 10 << 20) == MAX_KEPT_MESSAGE
    [encrypted] = message.dissect_session_message(transform_header()[:52], 252)
    assert encrypted == Smb2TransformHeader(original_message_size=200, flags=1, session_id=0x1234)


# --- SmbStream ----------------------------------------------------------------------------


class StreamDriver:
    """Calls an SmbStream and checks the invariants after every call."""

    def __init__(self, direct: bool, midstream: bool) -> None:
        self.stream = SmbStream(direct_tcp=direct, midstream=midstream)
        self.events: list[StreamEvent] = []
        self.fed = 0
        self.calls = 0
        self.frames = 0

    def _after(self) -> None:
        self.calls += 1
        check_stream(self.stream)
        assert self.stream.frames >= self.frames
        self.frames = self.stream.frames
        assert 0 <= self.stream.resync_skipped_bytes <= self.fed

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)
        self.fed += len(data)
        self._after()

    def gap(self, size: int) -> None:
        self.stream.gap(size)
        self._after()

    def drain(self) -> None:
        events = self.stream.events()
        for event in events:
            check_event(event)
        self.events.extend(events)
        # Each byte yields at most two events (header anomaly, resync note), each call one (gap, eof).
        assert len(self.events) <= 2 * self.fed + 2 * self.calls + 2, (len(self.events), self.fed, self.calls)

    def eof(self) -> None:
        self.stream.eof()
        self._after()
        assert self.stream.buffered == 0
        self.drain()


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


stream_seeds = st.sampled_from(SEED_STREAMS)


@st.composite
def stream_bytes(draw: st.DrawFn) -> tuple[bool, bytes]:
    """A real direction of a connection, perhaps with garbage or mutated frames spliced in."""
    direct, seed = draw(stream_seeds)
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.one_of(st.binary(max_size=64), ANY_MESSAGE.map(netbios_frame)))
    if draw(st.booleans()):
        return direct, draw(mutated([bytes(data)]))
    return direct, bytes(data)


@given(source=stream_bytes(), cuts=st.lists(st.integers(0, 1 << 16), max_size=40), midstream=st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_stream_split_points_do_not_matter(source: tuple[bool, bytes], cuts: list[int], midstream: bool) -> None:
    """Any bytes fed in any pieces give the same events as fed at once; invariants hold after every call."""
    direct, data = source
    with time_limit():
        whole = StreamDriver(direct, midstream)
        whole.feed(data)
        whole.eof()
        pieces = StreamDriver(direct, midstream)
        for piece in split(data, [cut % (len(data) + 1) for cut in cuts]):
            pieces.feed(piece)
            pieces.drain()
        pieces.eof()
    assert pieces.events == whole.events
    assert (pieces.stream.frames, pieces.stream.resync_skipped_bytes) == (
        whole.stream.frames,
        whole.stream.resync_skipped_bytes,
    )


@st.composite
def stream_operations(draw: st.DrawFn) -> tuple[bool, bool, list[tuple[str, object]]]:
    """A real stream cut at random points, with gaps, lost pieces, garbage, event pulls and eofs."""
    direct, data = draw(stream_bytes())
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=30))
    operations: list[tuple[str, object]] = []
    for piece in split(data, cuts):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            operations.append(("gap", len(piece)))  # the piece was lost
            continue
        if choice == 1:
            operations.append(("gap", draw(st.one_of(st.integers(-2, 300), INTERESTING))))
        elif choice == 2:
            operations.append(("feed", draw(st.binary(max_size=100))))
        elif choice == 3:
            operations.append(("eof", None))
        operations.append(("feed", piece))
        if draw(st.booleans()):
            operations.append(("events", None))
    return direct, draw(st.booleans()), operations


@given(plan=stream_operations())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_stream_with_gaps_garbage_and_eof(plan: tuple[bool, bool, list[tuple[str, object]]]) -> None:
    direct, midstream, operations = plan
    driver = StreamDriver(direct, midstream)
    with time_limit():
        for operation, argument in operations:
            if operation == "feed":
                driver.feed(argument)  # type: ignore[arg-type]
            elif operation == "gap":
                driver.gap(argument)  # type: ignore[arg-type]
            elif operation == "eof":
                driver.eof()
            else:
                driver.drain()
        driver.eof()


@given(
    direct=st.booleans(),
    midstream=st.booleans(),
    pieces=st.lists(
        st.one_of(
            st.binary(max_size=200),
            netbios_session_bytes(),
            ANY_MESSAGE.map(netbios_frame),
            st.integers(0, 1 << 25).map(lambda n: n.to_bytes(4, "big") + b"\xfeSMB"),
            st.integers(1, 1 << 20),  # a gap
        ),
        max_size=30,
    ),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_stream_random_input(direct: bool, midstream: bool, pieces: list[bytes | int]) -> None:
    driver = StreamDriver(direct, midstream)
    with time_limit():
        for piece in pieces:
            if isinstance(piece, int):
                driver.gap(piece)
            else:
                driver.feed(piece)
            driver.drain()
        driver.eof()


def test_stream_buffer_bound_is_reached_but_not_passed() -> None:
    """A big kept message is buffered whole until complete, and never more than the bound."""
    body = smb2_header(3) + b"\x00" * (MAX_KEPT_MESSAGE * 2)
    driver = StreamDriver(True, False)
    frame = netbios_frame(body)
    for start in range(0, len(frame), 1000):
        driver.feed(frame[start : start + 1000])
        driver.drain()
    assert driver.stream.frames == 1 and driver.stream.buffered == 0
    driver.eof()
    assert sum(isinstance(e, Smb2Message) for e in driver.events) == 1


@needs_pcaps
def test_stream_known_good_real_streams() -> None:
    """Every recorded direction dissects without anomalies when fed in one piece or byte by byte."""
    messages = 0
    for direct, data in CORPUS.streams:
        driver = StreamDriver(direct, False)
        driver.feed(data)
        driver.eof()
        assert not [e for e in driver.events if isinstance(e, Anomaly)], driver.events
        messages += sum(isinstance(e, Smb1Message | Smb2Message) for e in driver.events)
        if len(data) < 3000:
            single = StreamDriver(direct, False)
            for index in range(len(data)):
                single.feed(data[index : index + 1])
            single.eof()
            assert single.events == driver.events
    assert messages >= len(CORPUS.streams)


def test_stream_time_is_linear_in_random_input() -> None:
    """~5 MB of random bytes (and of near-miss headers) through resynchronising streams in time."""
    rng = random.Random(1)
    noise = rng.randbytes(4 << 20)
    near_miss_445 = b"\x00\x00\x00\x05\xfeSMB" * (128 << 10)  # length below a real frame: rejected
    near_miss_139 = b"\x00\x02\x00\x40\xffSMB" * (128 << 10)  # bad NetBIOS flags: rejected
    started = time.monotonic()
    with time_limit(60):
        for direct, data in ((True, noise), (False, noise), (True, near_miss_445), (False, near_miss_139)):
            driver = StreamDriver(direct, True)
            for start in range(0, len(data), 65536):
                driver.feed(data[start : start + 65536])
                driver.drain()
            driver.eof()
            assert driver.stream.frames <= len(data) // 8
    assert time.monotonic() - started < 20.0


# --- link/network decoding ----------------------------------------------------------------


def ipv4_tcp(
    payload: bytes,
    *,
    src: bytes = b"\xc0\x00\x02\x0a",
    dst: bytes = b"\xc0\x00\x02\x14",
    sport: int = 50000,
    dport: int = 445,
    seq: int = 0,
    ack: int = 0,
    flags: int = TCP_ACK | TCP_PSH,
    missing: int = 0,
    ihl: int = 5,
    data_offset: int = 5,
    fragment: int = 0x4000,
    protocol: int = 6,
) -> bytes:
    total = min(4 * ihl + 4 * data_offset + len(payload) + missing, 0xFFFF)
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl & 0xF, 0, total, 1, fragment, 64, protocol, 0, src, dst)
    ip += b"\x00" * (4 * ihl - 20)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (data_offset & 0xF) << 4, flags, 65535, 0, 0)
    tcp += b"\x00" * (4 * data_offset - 20)
    return ip + tcp + payload


PORTS = st.one_of(st.sampled_from((445, 139, 50000, 80)), any_u16)
PACKET_PAYLOADS = st.one_of(st.binary(max_size=64), ANY_MESSAGE.map(netbios_frame))
NIBBLES = st.one_of(st.just(5), st.integers(0, 15))
BYTES = st.integers(0, 255)
IPV4_FRAGMENT_FIELDS = st.sampled_from((0, 0x4000, 0x2000, 0x0001, 0x3FFF))
IP_PROTOCOLS = st.sampled_from((6, 6, 17, 1))
IPV6_CHAINS = st.lists(st.sampled_from((0, 43, 60, 44, 51, 135, 139, 140, 50, 59, 17)), max_size=20)
IPV6_EXTENSION_LENGTHS = st.integers(0, 3)
ETHERTYPES = st.sampled_from((0x0800, 0x86DD, 0x0806))
VLAN_TPIDS = st.sampled_from((b"\x81\x00", b"\x88\xa8", b"\x91\x00"))
LINKTYPES = st.one_of(st.sampled_from(LINKTYPES_HANDLED), st.integers(0, 300))
BSD_FAMILIES = st.tuples(st.sampled_from((2, 24, 28, 30, 0x02000000, 7)), st.sampled_from(("little", "big")))


@st.composite
def ip_packets(draw: st.DrawFn) -> bytes:
    """IPv4 (options, fragments, lying lengths) or IPv6 (extension header chains) carrying TCP."""
    payload = draw(PACKET_PAYLOADS)
    tcp = struct.pack(
        "!HHIIBBHHH", draw(PORTS), draw(PORTS), draw(any_u32), draw(any_u32), draw(NIBBLES) << 4, draw(BYTES), 0, 0, 0
    ) + draw(st.binary(max_size=40))
    if draw(st.booleans()):
        ihl = draw(NIBBLES)
        total = draw(st.one_of(st.just((4 * ihl + len(tcp) + len(payload)) & 0xFFFF), st.just(0), any_u16))
        first = draw(st.one_of(st.just(0x40 | ihl), BYTES))
        fragment = draw(IPV4_FRAGMENT_FIELDS)
        header = struct.pack(
            "!BBHHHBBH4s4s", first, 0, total, 0, fragment, 64, draw(IP_PROTOCOLS), 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02"
        )
        options = draw(st.binary(min_size=max(0, 4 * ihl - 20), max_size=max(0, 4 * ihl - 20)))
        return header + options + tcp + payload
    extensions = b""
    chain = draw(IPV6_CHAINS)
    next_headers = [*chain, draw(IP_PROTOCOLS)]
    for following in next_headers[1:]:
        length_byte = draw(IPV6_EXTENSION_LENGTHS)
        extensions += bytes([following, length_byte]) + draw(st.binary(min_size=6, max_size=6 + 8 * length_byte))
    body = extensions + tcp + payload
    length = draw(st.one_of(st.just(len(body) & 0xFFFF), st.just(0), any_u16))
    header = struct.pack("!IHBB16s16s", 0x60000000, length, next_headers[0], 64, b"\x20" * 16, b"\x21" * 16)
    return header + body


@st.composite
def link_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """A frame of any handled link type (VLAN tags, BSD loopback families), perhaps cut short."""
    linktype = draw(LINKTYPES)
    packet = draw(ip_packets())
    ethertype = draw(ETHERTYPES).to_bytes(2, "big")
    tags = b"".join(draw(VLAN_TPIDS) + b"\x00\x05" for _ in range(draw(st.integers(0, 10))))
    if linktype == 1:
        prefix = b"\x02" * 12 + tags + ethertype  # each tag: its TPID, then the TCI, then the next type
    elif linktype == 113:
        prefix = b"\x00" * 14 + tags[:4] + ethertype
    elif linktype == 276:
        prefix = tags[:2] + b"\x00" * 18 + tags[2:4] + ethertype if tags else ethertype + b"\x00" * 18
    elif linktype in (0, 108):
        family, order = draw(BSD_FAMILIES)
        prefix = family.to_bytes(4, "big" if order == "big" else "little")
    else:
        prefix = b""
    frame = prefix + packet
    if draw(st.booleans()):
        frame = frame[: draw(st.integers(0, len(frame)))]
    return linktype, frame


def check_segment(segment: TcpSegment | None) -> None:
    if segment is None:
        return
    assert isinstance(segment, TcpSegment)
    assert len(segment.src) == len(segment.dst) and len(segment.src) in (4, 16)
    assert segment.sport in SMB_PORTS or segment.dport in SMB_PORTS
    assert 0 <= segment.seq <= 0xFFFFFFFF and 0 <= segment.ack <= 0xFFFFFFFF and 0 <= segment.flags <= 0xFF
    assert isinstance(segment.payload, bytes) and 0 <= segment.missing <= 0xFFFF


seed_link = st.sampled_from(SEED_LINK_FRAMES) if SEED_LINK_FRAMES else st.nothing()


@given(
    item=st.one_of(
        link_frames(),
        st.tuples(st.sampled_from(LINKTYPES_HANDLED), st.binary(max_size=120)),
        seed_link.flatmap(lambda lf: st.tuples(st.just(lf[0]), mutated([lf[1]]))),
        seed_link.flatmap(lambda lf: st.tuples(st.sampled_from(LINKTYPES_HANDLED), st.just(lf[1]))),
    )
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_decoder_never_raises(item: tuple[int, bytes]) -> None:
    linktype, frame = item
    decoder = Decoder()
    with time_limit():
        check_segment(decoder.decode(linktype, frame))


def test_decoder_known_good() -> None:
    frame = ipv4_tcp(b"hello", seq=7)
    segment = Decoder().decode(101, frame)
    assert segment is not None and (segment.dport, segment.seq, segment.payload) == (445, 7, b"hello")
    cut = Decoder().decode(101, ipv4_tcp(b"abc", missing=10))
    assert cut is not None and cut.missing == 10
    if HAVE_PCAPS:
        decoder = Decoder()
        segments = [decoder.decode(linktype, frame) for linktype, frame in CORPUS.link_frames]
        assert sum(s is not None for s in segments) >= len(segments) // 2


# --- capture files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "capture"


def read_capture(path: Path, data: bytes) -> tuple[list[tuple[float, int, bytes]], CaptureError | None]:
    """All frames of `data` written to `path`, and the CaptureError that ended them if any."""
    path.write_bytes(data)
    frames: list[tuple[float, int, bytes]] = []
    with time_limit():
        try:
            for item in CaptureFile(str(path)):
                frames.append(item)
                assert len(item[2]) <= MAX_RECORD_BYTES
                assert len(frames) <= len(data) // 12 + 1
        except CaptureError as error:
            assert error.offset is None or 0 <= error.offset <= len(data)
            return frames, error
    return frames, None


_PLAIN_CACHE: dict[bytes, list[tuple[float, int, bytes]]] = {}


def read_capture_plain(data: bytes) -> list[tuple[float, int, bytes]]:
    """The frames of an intact capture (cached)."""
    if data not in _PLAIN_CACHE:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".cap") as handle:
            frames, error = read_capture(Path(handle.name), data)
        assert error is None, error
        _PLAIN_CACHE[data] = frames
    return _PLAIN_CACHE[data]


HANDMADE_PCAP = pcap_file([ipv4_tcp(netbios_frame(m)) for m in HANDMADE_MESSAGES[:4]])
HANDMADE_PCAP_BE = pcap_file([ipv4_tcp(b"x" * n) for n in (0, 1, 5)], endian=">")
HANDMADE_PCAPNG = (
    pcapng_section()
    + pcapng_interface(101, struct.pack("<HHB3x", 9, 1, 9) + b"\x00" * 4)
    + pcapng_packet(0, ipv4_tcp(netbios_frame(HANDMADE_MESSAGES[0])))
    + pcapng_block(3, struct.pack("<I", len(ipv4_tcp(b"simple"))) + ipv4_tcp(b"simple"))
    + pcapng_block(5, struct.pack("<III", 0, 0, 0) + struct.pack("<HHQ", 5, 8, 3) + b"\x00" * 4)
    + pcapng_block(2, struct.pack("<HHIIII", 0, 0, 0, 0, 44, 44) + ipv4_tcp(b"obsolete"))
)
# By name, so a falsifying example prints a name instead of the whole file.
CAPTURE_SEEDS: dict[str, bytes] = {
    **{name: data for name, data in CORPUS.files if len(data) < 40_000},
    "handmade.pcap": HANDMADE_PCAP,
    "handmade_be.pcap": HANDMADE_PCAP_BE,
    "handmade.pcapng": HANDMADE_PCAPNG,
}
capture_seed_names = st.sampled_from(sorted(CAPTURE_SEEDS))


@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")
        ).flatmap(lambda magic: st.binary(max_size=300).map(lambda rest: magic + rest)),
        st.binary(max_size=300).map(lambda rest: HANDMADE_PCAP[:24] + rest),
        st.binary(max_size=300).map(lambda rest: pcapng_section() + rest),
    )
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_capture_random_bytes_raise_only_capture_error(capture_path: Path, data: bytes) -> None:
    read_capture(capture_path, data)


@given(name=capture_seed_names, cut=st.integers(0, 1 << 20), compress=st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_capture_truncated_yields_exactly_the_intact_records(
    capture_path: Path, name: str, cut: int, compress: bool
) -> None:
    seed = CAPTURE_SEEDS[name]
    original = read_capture_plain(seed)
    cut %= len(seed) + 1
    ends = record_spans(seed)
    assert ends is not None and len(ends) == len(original)
    if compress:
        packed = gzip.compress(seed, mtime=0)
        cut = cut * len(packed) // max(len(seed), 1)
        frames, error = read_capture(capture_path, packed[:cut])
        assert frames == original[: len(frames)]
        assert (error is None) == (cut == len(packed))
        return
    frames, error = read_capture(capture_path, seed[:cut])
    intact = sum(end <= cut for end in ends)
    assert frames == original[:intact]
    boundary = cut == len(seed) or (cut >= 24 and cut in ends) or (cut == 24 and seed[:1] != b"\x0a")
    if seed[:1] == b"\x0a":  # pcapng: any block boundary is a clean end
        boundary = cut == len(seed) or cut in _pcapng_block_ends(seed)
    assert (error is None) == boundary, (cut, error)


def _pcapng_block_ends(data: bytes) -> set[int]:
    ends = set()
    position = 0
    while position + 12 <= len(data):
        position += struct.unpack_from("<I", data, position + 4)[0]
        ends.add(position)
    return ends


@given(name=capture_seed_names, data=st.data(), compress=st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_capture_mutated_raises_only_capture_error(
    capture_path: Path, name: str, data: st.DataObject, compress: bool
) -> None:
    """Flipped bits, bad lengths, inserted bytes: only CaptureError, and records before the damage survive."""
    seed = CAPTURE_SEEDS[name]
    original = read_capture_plain(seed)
    if compress:
        damaged = data.draw(mutated([gzip.compress(seed, mtime=0)]))
        read_capture(capture_path, damaged)
        return
    damaged = data.draw(mutated([seed]))
    frames, _ = read_capture(capture_path, damaged)
    first_change = next((i for i, (a, b) in enumerate(zip(seed, damaged, strict=False)) if a != b), None)
    if first_change is None:
        first_change = min(len(seed), len(damaged))
    ends = record_spans(seed) or []
    intact = sum(end <= first_change for end in ends) if first_change >= 24 else 0
    assert frames[:intact] == original[:intact]


@st.composite
def pcapng_files(draw: st.DrawFn) -> bytes:
    """A section header then blocks of every kind with random fields, options and length fields."""
    out = bytearray(pcapng_section() if draw(st.integers(0, 5)) else draw(st.binary(min_size=12, max_size=40)))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from((0x0A0D0D0A, 1, 2, 3, 5, 6, 6, 6, 0x0BAD)))
        options = b"".join(
            struct.pack("<HH", code, length) + draw(st.binary(min_size=0, max_size=12))
            for code, length in draw(
                st.lists(st.tuples(st.sampled_from((0, 1, 5, 9, 14, 0xFFFF)), st.sampled_from((0, 1, 4, 8, 0xFFFF))))
            )
        )
        if kind == 0x0A0D0D0A:
            order = draw(st.sampled_from((0x1A2B3C4D, 0x4D3C2B1A, 0)))
            body = struct.pack("<IHHq", order, 1, 0, -1) + options
        elif kind == 1:
            body = struct.pack("<HHI", draw(st.sampled_from((1, 101, 113, 276, 9999))), 0, draw(any_u32)) + options
        elif kind in (2, 6):
            packet = draw(st.binary(max_size=40))
            captured = draw(st.one_of(st.just(len(packet)), small_or_any))
            if kind == 6:
                body = struct.pack("<IIIII", draw(st.integers(0, 3)), 0, 0, captured, len(packet))
            else:
                body = struct.pack("<HHIIII", draw(st.integers(0, 3)), 0, 0, 0, captured, len(packet))
            body += packet + options
        elif kind == 3:
            body = struct.pack("<I", draw(small_or_any)) + draw(st.binary(max_size=40))
        elif kind == 5:
            body = struct.pack("<III", draw(st.integers(0, 3)), 0, 0) + options
        else:
            body = draw(st.binary(max_size=40))
        if draw(st.integers(0, 3)) == 0:
            body = body[: draw(st.integers(0, len(body)))]
        body += b"\x00" * (-len(body) % 4)
        length = draw(st.one_of(st.just(12 + len(body)), st.sampled_from((0, 8, 12, 16, 20, 24, 28, 13)), any_u32))
        trailer = draw(st.one_of(st.just(length), any_u32))
        out += pcapng_block(kind, body, length, trailer)
    return bytes(out)


@given(data=pcapng_files())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_capture_pcapng_blocks_raise_only_capture_error(capture_path: Path, data: bytes) -> None:
    read_capture(capture_path, data)


def test_capture_known_good(tmp_path: Path) -> None:
    frames, error = read_capture(tmp_path / "a.pcap", HANDMADE_PCAP)
    assert error is None and [f[1] for f in frames] == [101] * 4
    frames, error = read_capture(tmp_path / "b.pcapng", HANDMADE_PCAPNG)
    assert error is None and len(frames) == 3
    assert frames[0][0] == pytest.approx(0.0) and frames[0][1] == 101
    assert frames[1][2] == ipv4_tcp(b"simple")
    frames, error = read_capture(tmp_path / "c.pcap", HANDMADE_PCAP[:-3])
    assert len(frames) == 3 and isinstance(error, CaptureError)
    if HAVE_PCAPS:
        total = sum(len(read_capture_plain(data)) for _, data in CORPUS.files)
        assert total == len(CORPUS.link_frames) > 0


# --- flows and the whole pipeline ---------------------------------------------------------

CLIENT_ADDRESSES = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x03")
SERVER_ADDRESS = b"\x0a\x00\x00\x64"
FUZZ_LIMITS = FlowLimits(max_flows=3, max_out_of_order_bytes=4096, established_timeout=100.0, sweep_interval=1.0)


SEGMENT_BASES = st.sampled_from((0, 1000, 0xFFFFF000, 0x7FFFFFF0, 0xFFFFFFFF))
SEGMENT_SIZES = st.sampled_from((0, 1, 4, 64, 500, 1460, 4000))
SEGMENT_JITTER = st.sampled_from((0, 0, 0, 0, 1, -1, 3000, -3000, 1 << 31, 5000))
SEGMENT_CLIENTS = st.tuples(st.sampled_from(CLIENT_ADDRESSES), st.sampled_from((50000, 50001, 445, 139)))
SEGMENT_SERVER_PORTS = st.sampled_from((445, 445, 139, 8080))
SEGMENT_FLAGS = st.one_of(
    st.sampled_from((TCP_ACK, TCP_ACK | TCP_PSH, TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST)),
    st.integers(0, 255),
)
SEGMENT_MISSING = st.sampled_from((0, 0, 0, 1, 100, 3000, 60000))
SEGMENT_STEPS = st.sampled_from((0.0, 0.001, 0.5, 2.0, 150.0, -10.0))
SEGMENT_ACKS = st.integers(0, 70000)


@st.composite
def synthetic_segments(draw: st.DrawFn) -> list[tuple[float, int, bytes]]:
    """TCP segments of a few flows carrying real stream bytes at (mostly) consistent sequence numbers,
    reordered, duplicated, overlapping, lost, with random flags and cut-off payloads."""
    streams = [draw(stream_seeds)[1] for _ in range(2)]
    bases = [draw(SEGMENT_BASES) for _ in range(2)]
    frames: list[tuple[float, int, bytes]] = []
    ts = 1_000.0
    for _ in range(draw(st.integers(1, 40))):
        to_server = draw(st.booleans())
        stream = streams[not to_server]
        start = draw(st.integers(0, len(stream)))
        payload = stream[start : start + draw(SEGMENT_SIZES)]
        seq = (bases[not to_server] + start + draw(SEGMENT_JITTER)) & 0xFFFFFFFF
        client, client_port = draw(SEGMENT_CLIENTS)
        server_port = draw(SEGMENT_SERVER_PORTS)
        ack = (bases[to_server] + draw(SEGMENT_ACKS)) & 0xFFFFFFFF
        ends = (
            (client, SERVER_ADDRESS, client_port, server_port)
            if to_server
            else (SERVER_ADDRESS, client, server_port, client_port)
        )
        src, dst, sport, dport = ends
        frame = ipv4_tcp(
            payload,
            src=src,
            dst=dst,
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=draw(SEGMENT_FLAGS),
            missing=draw(SEGMENT_MISSING),
        )
        ts += draw(SEGMENT_STEPS)
        frames.append((ts, 101, frame))
    return frames


@st.composite
def edited_connections(draw: st.DrawFn) -> list[tuple[float, int, bytes]]:
    """A recorded capture with frames dropped, duplicated, swapped, mutated and retimed."""
    frames = list(draw(st.sampled_from(CORPUS.connections)))
    for _ in range(draw(st.integers(0, 12))):
        if not frames:
            break
        index = draw(st.integers(0, len(frames) - 1))
        ts, linktype, frame = frames[index]
        op = draw(st.integers(0, 4))
        if op == 0:
            del frames[index]
        elif op == 1:
            frames.insert(index, frames[index])
        elif op == 2:
            other = draw(st.integers(0, len(frames) - 1))
            frames[index], frames[other] = frames[other], frames[index]
        elif op == 3:
            frames[index] = (ts, linktype, draw(mutated([frame])))
        else:
            frames[index] = (ts + draw(st.sampled_from((-1000.0, 700.0, 1e6))), linktype, frame)
    return frames


def run_pipeline(frames: list[tuple[float, int, bytes]]) -> list[ConnectionRecord]:
    records: list[ConnectionRecord] = []
    pipeline = Pipeline(FUZZ_LIMITS, sinks=[records.append])
    with time_limit():
        for item in frames:
            pipeline.feed([item])
            check_flows(pipeline)
        pipeline.finish()
    assert len(pipeline.flows) == 0
    for record in records:
        json.dumps(record)
    return records


def check_flows(pipeline: Pipeline) -> None:
    limits = pipeline.flows.limits
    assert len(pipeline.flows) <= limits.max_flows
    for flow in pipeline.flows.flows():
        for half in flow.halves:
            if half.stream is not None:
                check_stream(half.stream)
            assert half.pending_bytes <= limits.max_out_of_order_bytes, half.pending_bytes
            # Segments that carry no captured bytes (only `missing` ones) are held too: their number is capped.
            assert len(half.pending) <= limits.max_out_of_order_segments, len(half.pending)


@given(frames=synthetic_segments())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_pipeline_random_segments_never_raise(frames: list[tuple[float, int, bytes]]) -> None:
    run_pipeline(frames)


@needs_pcaps
@given(frames=edited_connections() if CORPUS.connections else st.nothing())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_pipeline_edited_recordings_never_raise(frames: list[tuple[float, int, bytes]]) -> None:
    run_pipeline(frames)


@given(frames=st.lists(link_frames().map(lambda lf: (0.0, lf[0], lf[1])), max_size=8))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_pipeline_random_frames_never_raise(frames: list[tuple[float, int, bytes]]) -> None:
    run_pipeline(frames)


CLIENT: dict[str, Any] = {"src": b"\xc0\x00\x02\x0a", "dst": b"\xc0\x00\x02\x14", "sport": 50000, "dport": 445}
SERVER: dict[str, Any] = {"src": b"\xc0\x00\x02\x14", "dst": b"\xc0\x00\x02\x0a", "sport": 445, "dport": 50000}


def test_pipeline_known_good() -> None:
    request = netbios_frame(HANDMADE_MESSAGES[0])
    response = netbios_frame(HANDMADE_MESSAGES[2])
    frames = [
        (1.0, 101, ipv4_tcp(b"", seq=999, flags=TCP_SYN, **CLIENT)),
        (1.1, 101, ipv4_tcp(b"", seq=9, ack=1000, flags=TCP_SYN | TCP_ACK, **SERVER)),
        (1.2, 101, ipv4_tcp(request, seq=1000, ack=10, **CLIENT)),
        (1.3, 101, ipv4_tcp(response, seq=10, ack=1000 + len(request), **SERVER)),
    ]
    [record] = run_pipeline(frames)
    assert record["dialect"] == "3.1.1" and "3.1.1" in record["dialects_offered"]
    if HAVE_PCAPS:
        dialects = {r["dialect"] for frames in CORPUS.connections for r in run_pipeline(frames)}
        assert {"2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "NT LANMAN 1.0"} <= dialects, dialects


# --- regressions: the smallest inputs of what the properties above found ----------------------
# Each fails while its bug is there; the property that found it fails too (and prints a longer input).


def test_capture_corrupt_gzip_raises_capture_error(tmp_path: Path) -> None:
    """A damaged deflate stream makes gzip raise zlib.error, which is neither OSError nor EOFError."""
    damaged = bytearray(gzip.compress(HANDMADE_PCAP, mtime=0))
    damaged[10] = 0xFF  # first deflate block header: "invalid block type"
    frames, error = read_capture(tmp_path / "bad.pcap.gz", bytes(damaged))
    assert frames == [] and isinstance(error, CaptureError)


@pytest.mark.parametrize(
    ("block_type", "length"),
    [(6, 12), (6, 20), (2, 12), (1, 12)],
    ids=["enhanced_packet_12", "enhanced_packet_20", "obsolete_packet_12", "interface_12"],
)
def test_capture_pcapng_block_shorter_than_its_fixed_fields(tmp_path: Path, block_type: int, length: int) -> None:
    """A block whose length field passes the checks (>= 12, multiple of 4, trailer equal) but is shorter
    than the block type's fixed fields makes struct.unpack_from raise struct.error, not CaptureError."""
    data = pcapng_section() + pcapng_block(block_type, b"\x00" * (length - 12))
    frames, error = read_capture(tmp_path / "short.pcapng", data)
    assert frames == [] and isinstance(error, CaptureError)


def test_flows_pending_segment_count_is_capped() -> None:
    """Out-of-order segments whose bytes were all cut off by the snap length (payload b"", missing > 0)
    add nothing to pending_bytes, so the out-of-order cap never bites and `pending` grows per packet."""
    frames = [(1.0, 101, ipv4_tcp(b"x", seq=0, **CLIENT))]
    frames += [
        (1.0, 101, ipv4_tcp(b"", seq=10 * i, missing=1, **CLIENT))
        for i in range(1, FUZZ_LIMITS.max_out_of_order_bytes + 100)
    ]
    run_pipeline(frames)


def test_flows_out_of_order_bytes_stay_under_the_cap() -> None:
    """Past the cap, _skip_to_pending delivers only the run after the first hole. Tiny segments stored
    first (each behind its own hole) are then released one per new segment while full-size segments
    take their place: pending_bytes reaches cap x segment size (4,096-byte cap: 1.4 MB after 1,000
    segments of 1,400 bytes; the default 256 KiB cap lets it reach gigabytes)."""
    cap = FUZZ_LIMITS.max_out_of_order_bytes
    frames = [(1.0, 101, ipv4_tcp(b"x", seq=0, **CLIENT))]
    frames += [(1.0, 101, ipv4_tcp(b"y", seq=2 * i + 1, **CLIENT)) for i in range(1, cap)]
    frames += [(1.0, 101, ipv4_tcp(b"z" * 1400, seq=100_000 + 1500 * i, **CLIENT)) for i in range(200)]
    run_pipeline(frames)


def test_connection_command_counters_are_capped() -> None:
    """SmbConnection.commands gets a key per distinct (protocol, command name, kind); every undefined
    SMB2 code has its own "unknown-0x…" name, so one connection can hold 131,072 counters (measured:
    9 MB of 64-byte frames -> 31 MB of state and a 3.3 MB JSON record). SMB1 is capped by its 256 codes;
    SMB2 should not hold more distinct counters than that."""
    stream = b"".join(netbios_frame(smb2_header(code, flags=1)) for code in range(0x1000, 0x2000))
    frames = [(1.0, 101, ipv4_tcp(b"", seq=999, flags=TCP_SYN, **CLIENT))]
    frames += [(1.0, 101, ipv4_tcp(stream[i : i + 1400], seq=1000 + i, **CLIENT)) for i in range(0, len(stream), 1400)]
    [record] = run_pipeline(frames)
    assert record["messages"]["smb2"] == 0x1000
    assert len(record["commands"]["smb2"]) <= 256, len(record["commands"]["smb2"])


def _many_pending(count: int) -> Pipeline:
    """A flow whose client direction holds `count` one-byte out-of-order segments (within both caps)."""
    pipeline = Pipeline(FlowLimits(max_out_of_order_segments=count))
    assert count <= pipeline.flows.limits.max_out_of_order_bytes
    pipeline.feed([(1.0, 101, ipv4_tcp(b"x", seq=0, **CLIENT))])
    pipeline.feed((1.0, 101, ipv4_tcp(b"y", seq=10 * i, **CLIENT)) for i in range(1, count + 1))
    [flow] = pipeline.flows.flows()
    assert len(flow.halves[0].pending) == count
    return pipeline


def test_flows_many_pending_segments_cost_linear_time() -> None:
    """Each ACK past the hole scans every pending segment (min() in _check_acked_hole), and closing
    the flow rescans them once per hole (_end_direction -> _skip_to_pending -> _drain_pending): with
    n segments stored under the byte cap that is O(n) per packet and O(n^2) at close (30,000 segments:
    ~5 s per 1,000 ACKs and ~2 min to close on a laptop)."""
    pipeline = _many_pending(30_000)
    acks = [(1.0, 101, ipv4_tcp(b"", seq=1, ack=100, flags=TCP_ACK, **SERVER))] * 1000
    with time_limit(3.0):
        pipeline.feed(acks)
    with time_limit(3.0):
        pipeline.finish()
