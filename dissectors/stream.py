"""One direction of one SMB connection, sans-IO: `feed` bytes, `gap`, `eof`, pull `events`.

The caller (the TCP reassembler) hands over bytes in order. `SmbStream` cuts them
into NetBIOS frames, keeps only the bytes worth decoding (`message.bytes_to_keep`),
skips the rest without copying it, and turns each frame into records.

After a gap the frame boundaries are lost unless the gap fell wholly inside the
skipped part of a frame; the stream then searches for the next NetBIOS type-0
header followed by an SMB protocol id, as Suricata does, and counts what it
skipped. A stream that starts midstream begins in that search state.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from dissectors import netbios
from dissectors.constants import NetbiosSessionType
from dissectors.message import BULK_MESSAGE_PREFIX, PEEK_SIZE, bytes_to_keep, dissect_session_message
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    NetbiosSessionPacket,
    ReassemblyGap,
    StreamEvent,
)

# A NetBIOS session header (type 0, flags, 16 length bits) then 0xFF/0xFE/0xFD/0xFC 'SMB'.
_RESYNC_PATTERN: Final = re.compile(rb"\x00[\x00-\xff]{3}[\xfc-\xff]SMB", re.DOTALL)
_RESYNC_TAIL: Final = 7  # bytes that may hold the start of a pattern split across feeds
# The smallest frame that can hold an SMB message: the 16-byte compression header.
MIN_SMB_FRAME: Final = 16
# Session service packets other than SESSION MESSAGE are a few dozen bytes (RFC 1002 4.3).
MAX_KEPT_CONTROL_PACKET: Final = 1024


class StreamState(Enum):
    HEADER = "header"  # expecting the 4-byte session header
    BODY = "body"  # collecting the kept part of a frame
    RESYNC = "resync"  # frame boundaries unknown: searching for the next header


# The same states as plain ints for the per-frame loop (an Enum comparison costs ~10x more).
_HEADER: Final = 0
_BODY: Final = 1
_RESYNC: Final = 2
_STATES: Final = (StreamState.HEADER, StreamState.BODY, StreamState.RESYNC)
_SESSION_MESSAGE: Final = int(NetbiosSessionType.SESSION_MESSAGE)
_SESSION_REQUEST: Final = int(NetbiosSessionType.SESSION_REQUEST)
_HEADER_SIZE: Final = netbios.NETBIOS_HEADER_SIZE


class SmbStream:
    """Framing and dissection of one direction of an SMB connection.

    `direct_tcp` is True on port 445 ([MS-SMB2] 2.1), False on 139 (RFC 1002).
    `midstream` starts in the resynchronising state: the capture began after
    the connection did, so the first byte need not start a frame.
    """

    __slots__ = (
        "_buffer",
        "_direct_tcp",
        "_events",
        "_frame_length",
        "_frame_type",
        "_keep",
        "_keep_decided",
        "_resync_run",
        "_skip",
        "_state",
        "frames",
        "resync_skipped_bytes",
    )

    def __init__(self, direct_tcp: bool, midstream: bool = False) -> None:
        self._direct_tcp = direct_tcp
        self._buffer = bytearray()  # bytes of an unfinished header or kept frame part, nothing else
        self._events: list[StreamEvent] = []
        self._state = _RESYNC if midstream else _HEADER
        self._frame_type = 0
        self._frame_length = 0
        self._keep = 0
        self._keep_decided = False
        self._skip = 0  # bytes of the current frame still to pass over unbuffered
        self._resync_run = 0  # bytes passed over since sync was lost
        self.frames = 0
        self.resync_skipped_bytes = 0

    @property
    def state(self) -> StreamState:
        return _STATES[self._state]

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def skip_remaining(self) -> int:
        """Bytes the stream will pass over unseen before the next frame header."""
        return self._skip

    def skip(self, size: int) -> None:
        """Pass over `size` bytes known to lie within `skip_remaining` (a fast path for bulk data)."""
        self._skip -= size

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def events(self) -> list[StreamEvent]:
        """The records produced since the last call."""
        events = self._events
        self._events = []
        return events

    def feed(self, data: bytes) -> None:
        """Next in-order bytes of this direction."""
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        buffer = self._buffer
        if buffer:
            buffer += data
            consumed = self._drain(buffer)
            del buffer[:consumed]
        else:
            # Common case: whole frames in one segment are cut straight from `data`, never copied to the buffer.
            consumed = self._drain(data)
            if consumed < len(data):
                buffer += data[consumed:]

    def gap(self, size: int) -> None:
        """`size` bytes of this direction were lost (never captured)."""
        if size <= 0:
            return
        self._events.append(ReassemblyGap(size))
        if self._skip:
            if size <= self._skip:
                self._skip -= size  # lost bytes of bulk data nobody decodes: framing holds
                return
            self._skip = 0
            self._lose_sync()
            return
        if self._state == _BODY:
            frame_left = self._frame_length - len(self._buffer)
            if size < frame_left:
                # The frame is damaged, but the next header's position is still known.
                self._buffer.clear()
                self._skip = frame_left - size
                self._state = _HEADER
                return
            if size == frame_left:
                self._buffer.clear()
                self._state = _HEADER
                return
        self._lose_sync()

    def lost_position(self) -> None:
        """Bytes of unknown number were lost (the sequence jumped): a gap of size 0, and framing
        resynchronises on the next plausible header."""
        self._events.append(ReassemblyGap(0))
        self._skip = 0
        self._lose_sync()

    def eof(self) -> None:
        """The direction ended (FIN, RST, eviction or end of capture).

        A frame the connection ended inside is one `netbios_frame_cut_short`: its header arrived
        (or part of it) but not all the bytes it announced, whether they were being kept (BODY) or
        passed over (`_skip`, also after a gap inside the frame: the bytes after the gap never came
        either). In RESYNC no frame is open (what was passed over counts as resync skipped bytes),
        and a gap that reached the frame's end closed it: neither is cut short.
        """
        state = self._state
        if state == _BODY:
            self._cut_short(self._frame_length - len(self._buffer))
        elif state == _HEADER and self._skip:
            self._cut_short(self._skip)
        elif state == _HEADER and self._buffer:
            self._events.append(
                Anomaly(
                    AnomalyKind.NETBIOS_FRAME_CUT_SHORT,
                    f"connection ended inside a frame header ({len(self._buffer)} of {_HEADER_SIZE} bytes)",
                )
            )
        elif state == _RESYNC:
            self.resync_skipped_bytes += self._resync_run + len(self._buffer)
            self._resync_run = 0
        self._buffer.clear()
        self._skip = 0
        self._state = _HEADER

    def _cut_short(self, missing: int) -> None:
        self._events.append(
            Anomaly(
                AnomalyKind.NETBIOS_FRAME_CUT_SHORT,
                f"connection ended {missing} bytes short of a {self._frame_length}-byte frame",
            )
        )

    def _lose_sync(self) -> None:
        self._buffer.clear()
        self._state = _RESYNC

    def _drain(self, data: bytes | bytearray) -> int:
        """Frames and records from `data`; returns how many leading bytes are done with."""
        position = 0
        end = len(data)
        direct_tcp = self._direct_tcp
        while True:
            state = self._state
            if state == _HEADER:
                if end - position < _HEADER_SIZE:
                    return position
                if direct_tcp and data[position] == _SESSION_MESSAGE:
                    frame_type = _SESSION_MESSAGE
                    frame_length = data[position + 1] << 16 | data[position + 2] << 8 | data[position + 3]
                else:
                    header = netbios.parse_session_header(data, position, direct_tcp)
                    if isinstance(header, Anomaly):
                        self._events.append(header)
                        self._state = _RESYNC
                        position += 1
                        continue
                    frame_type, frame_length = header
                position += _HEADER_SIZE
                self._frame_type = frame_type
                self._frame_length = frame_length
                if frame_type == _SESSION_MESSAGE:
                    if frame_length <= BULK_MESSAGE_PREFIX:
                        # Small enough to keep whole whatever it is: no need to peek at the command.
                        self._keep = frame_length
                        self._keep_decided = True
                    else:
                        self._keep = PEEK_SIZE
                        self._keep_decided = False
                else:
                    self._keep = min(frame_length, MAX_KEPT_CONTROL_PACKET)
                    self._keep_decided = True
                self._state = _BODY
            elif state == _BODY:
                keep = self._keep
                if end - position < keep:
                    return position
                if not self._keep_decided:
                    self._keep = bytes_to_keep(data[position : position + PEEK_SIZE], self._frame_length)
                    self._keep_decided = True
                    continue
                kept = data[position : position + keep]
                if type(kept) is not bytes:
                    kept = bytes(kept)
                position += keep
                self._dispatch(kept)
                rest = self._frame_length - keep
                self._state = _HEADER
                if rest:
                    if rest > end - position:
                        self._skip = rest - (end - position)
                        return end
                    position += rest
            else:
                position = self._resync(data, position)
                if self._state == _RESYNC:
                    return position

    def _resync(self, data: bytes | bytearray, position: int) -> int:
        while True:
            match = _RESYNC_PATTERN.search(data, position)
            if match is None:
                keep_from = max(position, len(data) - _RESYNC_TAIL)
                self._resync_run += keep_from - position
                return keep_from
            start = match.start()
            header = netbios.parse_session_header(data, start, self._direct_tcp)
            if (
                not isinstance(header, Anomaly)
                and header[0] == NetbiosSessionType.SESSION_MESSAGE
                and header[1] >= MIN_SMB_FRAME
            ):
                skipped = self._resync_run + start - position
                if skipped:
                    self.resync_skipped_bytes += skipped
                    self._events.append(
                        Anomaly(AnomalyKind.RESYNC_SKIPPED_BYTES, f"{skipped} bytes before the next frame")
                    )
                self._resync_run = 0
                self._state = _HEADER
                return start
            self._resync_run += start + 1 - position
            position = start + 1

    def _dispatch(self, kept: bytes) -> None:
        self.frames += 1
        frame_type = self._frame_type
        if frame_type == _SESSION_MESSAGE:
            if kept:
                self._events.extend(dissect_session_message(kept, self._frame_length))
        elif frame_type == _SESSION_REQUEST:
            self._events.append(netbios.parse_session_request(kept))
        else:
            self._events.append(NetbiosSessionPacket(frame_type, self._frame_length))
        if frame_type != _SESSION_MESSAGE and len(kept) < self._frame_length:
            self._events.append(
                Anomaly(
                    AnomalyKind.MESSAGE_CUT_AT_KEPT_BYTES,
                    f"NetBIOS packet type 0x{frame_type:02x} of {self._frame_length} bytes: {len(kept)} kept",
                )
            )
