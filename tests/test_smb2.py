"""[MS-SMB2] 2.2.1 header, compound chains, 2.2.41/2.2.42 transform headers."""

from __future__ import annotations

import struct

from wire_samples import SMB2_NEGOTIATE_REQUEST_311, SMB2_NEGOTIATE_RESPONSE_311

from dissectors.constants import Smb2Command, Smb2Flags
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb2CompressionTransformHeader,
    Smb2Message,
    Smb2NegotiateResponse,
    Smb2TransformHeader,
)
from dissectors.smb2.message import (
    MAX_COMPOUND_MESSAGES,
    parse_compound,
    parse_compression_header,
    parse_header,
    parse_transform_header,
)

REQUEST = SMB2_NEGOTIATE_REQUEST_311[4:]
RESPONSE = SMB2_NEGOTIATE_RESPONSE_311[4:]


def smb2_header(
    command: int, *, flags: int = 0, next_command: int = 0, message_id: int = 0, status: int = 0, tree_or_async: int = 0
) -> bytes:
    return struct.pack(
        "<4sHHIHHIIQQQ16s",
        b"\xfeSMB",
        64,
        1,
        status,
        command,
        1,
        flags,
        next_command,
        message_id,
        tree_or_async,
        0x1122334455667788,
        bytes(16),
    )


def test_sync_header_of_a_real_request() -> None:
    header = parse_header(REQUEST)
    assert not isinstance(header, Anomaly)
    assert header.command == Smb2Command.NEGOTIATE
    assert not header.is_response
    assert header.credits == 31
    assert header.tree_id == 0 and header.async_id is None


def test_async_header_keeps_async_id() -> None:
    raw = smb2_header(Smb2Command.CHANGE_NOTIFY, flags=Smb2Flags.SMB2_FLAGS_ASYNC_COMMAND | 1, tree_or_async=77)
    header = parse_header(raw)
    assert not isinstance(header, Anomaly)
    assert header.async_id == 77 and header.tree_id is None and header.is_response


def test_sync_header_tree_id_is_the_high_word() -> None:
    header = parse_header(smb2_header(Smb2Command.CREATE, tree_or_async=5 << 32))
    assert not isinstance(header, Anomaly) and header.tree_id == 5


def test_compound_chain_of_three() -> None:
    # Commands smbwatch does not decode, so the zeroed bodies are no anomaly (CREATE, READ and
    # CLOSE chains of real clients are in tests/test_smb2_files_dissectors.py).
    first = smb2_header(Smb2Command.FLUSH, next_command=72, message_id=1) + bytes(8)
    second = smb2_header(Smb2Command.LOCK, next_command=72, message_id=2, flags=4) + bytes(8)
    third = smb2_header(Smb2Command.QUERY_INFO, message_id=3, flags=4) + bytes(24)
    frame = first + second + third
    events = parse_compound(frame, len(frame))
    assert [e.header.command for e in events if isinstance(e, Smb2Message)] == [7, 10, 16]
    assert all(isinstance(e, Smb2Message) for e in events)


def test_next_command_misaligned_or_beyond_frame() -> None:
    frame = smb2_header(Smb2Command.CREATE, next_command=70) + bytes(100)
    events = parse_compound(frame, len(frame))
    assert isinstance(events[-1], Anomaly) and events[-1].kind is AnomalyKind.SMB2_NEXT_COMMAND_INVALID
    frame = smb2_header(Smb2Command.CREATE, next_command=4096) + bytes(100)
    events = parse_compound(frame, len(frame))
    assert isinstance(events[-1], Anomaly) and events[-1].kind is AnomalyKind.SMB2_NEXT_COMMAND_INVALID


def test_chain_beyond_kept_prefix_is_reported() -> None:
    frame = smb2_header(Smb2Command.CREATE, next_command=1024) + bytes(100)
    events = parse_compound(frame, frame_length=4096)
    assert isinstance(events[0], Smb2Message)
    assert isinstance(events[-1], Anomaly) and events[-1].kind is AnomalyKind.SMB2_COMPOUND_BEYOND_KEPT_BYTES


def test_chain_walk_is_capped() -> None:
    link = smb2_header(Smb2Command.ECHO, next_command=64)
    frame = link * (MAX_COMPOUND_MESSAGES + 5)
    events = parse_compound(frame, len(frame))
    assert sum(isinstance(e, Smb2Message) for e in events) == MAX_COMPOUND_MESSAGES
    assert isinstance(events[-1], Anomaly) and events[-1].kind is AnomalyKind.SMB2_COMPOUND_TOO_LONG


def test_negotiate_body_is_dispatched() -> None:
    [message] = parse_compound(RESPONSE, len(RESPONSE))
    assert isinstance(message, Smb2Message) and isinstance(message.body, Smb2NegotiateResponse)


def test_error_response_has_no_body_and_no_anomaly() -> None:
    error = smb2_header(Smb2Command.NEGOTIATE, flags=1, status=0xC00000BB) + struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"
    [message] = parse_compound(error, len(error))
    assert isinstance(message, Smb2Message) and message.body is None


def test_malformed_negotiate_keeps_the_message() -> None:
    truncated = REQUEST[:80]
    events = parse_compound(truncated, len(truncated))
    assert isinstance(events[0], Smb2Message) and events[0].body is None
    assert isinstance(events[1], Anomaly) and events[1].kind is AnomalyKind.NEGOTIATE_MALFORMED


def test_bad_header_structure_size() -> None:
    raw = bytearray(smb2_header(Smb2Command.ECHO))
    raw[4:6] = b"\x40\x01"
    result = parse_header(bytes(raw))
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.SMB2_MALFORMED


def test_transform_header() -> None:
    raw = struct.pack("<4s16s16sIHHQ", b"\xfdSMB", bytes(16), bytes(16), 1234, 0, 1, 0xABCDEF)
    assert parse_transform_header(raw + b"ciphertext") == Smb2TransformHeader(
        original_message_size=1234, flags=1, session_id=0xABCDEF
    )
    assert isinstance(parse_transform_header(raw[:51]), Anomaly)


def test_compression_header() -> None:
    raw = struct.pack("<4sIHHI", b"\xfcSMB", 65536, 2, 1, 0)
    assert parse_compression_header(raw) == Smb2CompressionTransformHeader(
        original_size=65536, algorithm=2, flags=1, offset_or_length=0
    )
    assert isinstance(parse_compression_header(raw[:15]), Anomaly)
