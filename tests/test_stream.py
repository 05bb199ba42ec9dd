"""SmbStream: framing, keeping only what is decoded, gaps, resynchronisation, midstream."""

from __future__ import annotations

import struct

from test_smb2 import smb2_header
from wire_samples import (
    NETBIOS_SESSION_REQUEST,
    SMB1_NEGOTIATE_REQUEST,
    SMB2_NEGOTIATE_REQUEST_311,
    SMB2_NEGOTIATE_RESPONSE_311,
)

from dissectors.constants import Smb2Command
from dissectors.message import BULK_MESSAGE_PREFIX, MAX_KEPT_MESSAGE
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    NetbiosSessionPacket,
    NetbiosSessionRequest,
    ReassemblyGap,
    Smb1Message,
    Smb2IoctlRequest,
    Smb2Message,
    Smb2NegotiateRequest,
    Smb2NegotiateResponse,
)
from dissectors.stream import SmbStream, StreamState


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def read_response(data_length: int, message_id: int = 9) -> bytes:
    """An SMB2 READ response frame carrying `data_length` bytes of file data."""
    body = smb2_header(Smb2Command.READ, flags=1, message_id=message_id)
    body += struct.pack("<HBBIII", 17, 80, 0, data_length, 0, 0)
    return frame(body + b"\xab" * data_length)


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_whole_frames_in_one_feed() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(SMB2_NEGOTIATE_REQUEST_311 + SMB1_NEGOTIATE_REQUEST)
    events = stream.events()
    assert kinds(events) == ["Smb2Message", "Smb1Message"]
    assert isinstance(events[0], Smb2Message) and isinstance(events[0].body, Smb2NegotiateRequest)
    assert stream.events() == []  # drained
    assert stream.buffered == 0


def test_byte_by_byte_gives_the_same_records() -> None:
    whole = SmbStream(direct_tcp=True)
    whole.feed(SMB2_NEGOTIATE_RESPONSE_311)
    expected = whole.events()
    split = SmbStream(direct_tcp=True)
    for i in range(len(SMB2_NEGOTIATE_RESPONSE_311)):
        split.feed(SMB2_NEGOTIATE_RESPONSE_311[i : i + 1])
    assert split.events() == expected
    assert isinstance(expected[0], Smb2Message) and isinstance(expected[0].body, Smb2NegotiateResponse)


def test_bulk_data_is_skipped_not_buffered() -> None:
    stream = SmbStream(direct_tcp=True)
    big = read_response(1 << 20)
    for start in range(0, len(big), 1448):
        stream.feed(big[start : start + 1448])
        assert stream.buffered <= BULK_MESSAGE_PREFIX + 1448
    stream.feed(SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert kinds(events) == ["Smb2Message", "Smb2Message"]
    assert events[0].header.command == Smb2Command.READ  # type: ignore[union-attr]


def test_gap_inside_skipped_data_keeps_framing() -> None:
    stream = SmbStream(direct_tcp=True)
    big = read_response(100_000)
    stream.feed(big[:3000])
    stream.gap(50_000)
    stream.feed(big[53_000:])
    stream.feed(SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert kinds(events) == ["Smb2Message", "ReassemblyGap", "Smb2Message"]
    assert stream.state is StreamState.HEADER


def test_gap_inside_a_kept_message_skips_to_the_next_frame() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(SMB2_NEGOTIATE_RESPONSE_311[:100])
    stream.gap(50)
    stream.feed(SMB2_NEGOTIATE_RESPONSE_311[150:] + SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert kinds(events) == ["ReassemblyGap", "Smb2Message"]
    assert isinstance(events[1], Smb2Message) and isinstance(events[1].body, Smb2NegotiateRequest)


def test_gap_across_frames_resynchronises() -> None:
    stream = SmbStream(direct_tcp=True)
    data = SMB2_NEGOTIATE_REQUEST_311 + SMB2_NEGOTIATE_RESPONSE_311 + SMB2_NEGOTIATE_REQUEST_311
    stream.feed(data[:100])
    stream.gap(200)  # loses the rest of frame 1 and the start of frame 2
    stream.feed(data[300:])
    events = stream.events()
    assert kinds(events) == ["ReassemblyGap", "Anomaly", "Smb2Message"]
    anomaly = events[1]
    assert isinstance(anomaly, Anomaly) and anomaly.kind is AnomalyKind.RESYNC_SKIPPED_BYTES
    assert stream.resync_skipped_bytes == len(SMB2_NEGOTIATE_REQUEST_311) + len(SMB2_NEGOTIATE_RESPONSE_311) - 300


def test_midstream_start_finds_the_first_frame() -> None:
    stream = SmbStream(direct_tcp=True, midstream=True)
    tail_of_something = b"\x00\x01\x02file data\xfeSMX" * 20
    stream.feed(tail_of_something[:77])
    stream.feed(tail_of_something[77:] + SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert kinds(events) == ["Anomaly", "Smb2Message"]
    assert stream.resync_skipped_bytes == len(tail_of_something)


def test_resync_pattern_split_across_feeds() -> None:
    stream = SmbStream(direct_tcp=True, midstream=True)
    data = b"junk" * 10 + SMB2_NEGOTIATE_REQUEST_311
    stream.feed(data[:43])  # ends inside "\x00\x00\x00\xdc\xfeSMB"
    stream.feed(data[43:])
    assert kinds(stream.events()) == ["Anomaly", "Smb2Message"]


def test_garbage_never_grows_the_buffer() -> None:
    stream = SmbStream(direct_tcp=True, midstream=True)
    for _ in range(200):
        stream.feed(b"\x00\x01" * 32_000)
        assert stream.buffered <= 7
    stream.eof()
    assert stream.resync_skipped_bytes == 200 * 64_000


def test_not_smb_frame_is_an_anomaly() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(frame(b"HTTP/1.1 200 OK\r\n\r\n") + SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert isinstance(events[0], Anomaly) and events[0].kind is AnomalyKind.NOT_SMB
    assert isinstance(events[1], Smb2Message)


def test_bad_direct_tcp_header_resynchronises() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(b"\x42\x00\x00\x10" + b"x" * 16 + SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert isinstance(events[0], Anomaly) and events[0].kind is AnomalyKind.NETBIOS_BAD_TYPE
    assert isinstance(events[-1], Smb2Message)


def test_netbios_session_request_and_keepalive_on_139() -> None:
    stream = SmbStream(direct_tcp=False)
    stream.feed(NETBIOS_SESSION_REQUEST + b"\x85\x00\x00\x00" + SMB1_NEGOTIATE_REQUEST)
    events = stream.events()
    assert kinds(events) == ["NetbiosSessionRequest", "NetbiosSessionPacket", "Smb1Message"]
    assert isinstance(events[0], NetbiosSessionRequest) and events[0].called_name.startswith("192.0.2.20")
    assert events[1] == NetbiosSessionPacket(type=0x85, length=0)
    assert isinstance(events[2], Smb1Message)


def test_eof_inside_a_frame_is_reported() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(SMB2_NEGOTIATE_REQUEST_311[:50])
    stream.eof()
    [event] = stream.events()
    assert isinstance(event, Anomaly) and event.kind is AnomalyKind.NETBIOS_FRAME_CUT_SHORT


def test_oversized_message_is_kept_only_up_to_the_cap() -> None:
    stream = SmbStream(direct_tcp=True)
    # Crafted: an FSCTL_PIPE_TRANSCEIVE request ([MS-SMB2] 2.2.31) with 256 KiB of input at 120.
    fixed = struct.pack("<HHIQQIIIIIIII", 57, 0, 0x0011C017, 1, 2, 120, MAX_KEPT_MESSAGE * 2, 0, 0, 0, 1024, 1, 0)
    body = smb2_header(Smb2Command.IOCTL) + fixed + bytes(MAX_KEPT_MESSAGE * 2)
    data = frame(body)
    for start in range(0, len(data), 65536):
        stream.feed(data[start : start + 65536])
        assert stream.buffered <= MAX_KEPT_MESSAGE + 65536
    stream.feed(SMB2_NEGOTIATE_REQUEST_311)
    events = stream.events()
    assert kinds(events) == ["Smb2Message", "Smb2Message"]
    ioctl = events[0].body
    assert isinstance(ioctl, Smb2IoctlRequest) and not ioctl.input_complete
    assert len(ioctl.input) == MAX_KEPT_MESSAGE - 120 and ioctl.input_count == MAX_KEPT_MESSAGE * 2


def test_gap_event_is_always_reported() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.gap(10)
    assert stream.events() == [ReassemblyGap(10)]
    assert stream.state is StreamState.RESYNC
