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

from dissectors import netbios
from dissectors.constants import NetbiosSessionType
from dissectors.message import PEEK_SIZE, bytes_to_keep, dissect_session_message
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    NetbiosSessionPacket,
    ReassemblyGap,
    StreamEvent,
)

# A NetBIOS session header (type 0, flags, 16 length bits) then 0xFF/0xFE/0xFD/0xFC 'SMB'.
_RESYNC_PATTERN = re.compile(rb"\x00[\x00-\xff]{3}[\xfc-\xff]SMB", re.DOTALL)
_RESYNC_TAIL = 7  # bytes that may hold the start of a pattern split across feeds
# The smallest frame that can hold an SMB message: the 16-byte compression header.
MIN_SMB_FRAME = 16
# Session service packets other than SESSION MESSAGE are a few dozen bytes (RFC 1002 4.3).
MAX_KEPT_CONTROL_PACKET = 1024


class StreamState(Enum):
    HEADER = "header"  # expecting the 4-byte session header
    BODY = "body"  # collecting the kept part of a frame
    RESYNC = "resync"  # frame boundaries unknown: searching for the next header


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
        self._buffer = bytearray()
        self._events: list[StreamEvent] = []
        self._state = StreamState.RESYNC if midstream else StreamState.HEADER
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
        return self._state

    @property
    def buffered(self) -> int:
        return len(self._buffer)

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
        self._buffer += data
        self._drain()

    def gap(self, size: int) -> None:
        """`size` bytes of this direction were lost (never captured)."""
        if size <= 0:
            return
        self._events.append(ReassemblyGap(size))
        if self._skip:
            if size <= self._skip:
                self._skip -= size  # lost bytes of bulk data nobody decodes: framing holds
                return
            size -= self._skip
            self._skip = 0
            self._lose_sync()
            return
        if self._state is StreamState.BODY:
            frame_left = self._frame_length - len(self._buffer)
            if size < frame_left:
                # The frame is damaged, but the next header's position is still known.
                self._buffer.clear()
                self._skip = frame_left - size
                self._state = StreamState.HEADER
                return
            if size == frame_left:
                self._buffer.clear()
                self._state = StreamState.HEADER
                return
        self._lose_sync()

    def eof(self) -> None:
        """The direction ended (FIN, RST, eviction or end of capture)."""
        if self._state is StreamState.BODY or (self._state is StreamState.HEADER and self._buffer):
            self._events.append(
                Anomaly(
                    AnomalyKind.NETBIOS_MALFORMED,
                    f"stream ended inside a frame ({len(self._buffer)} bytes buffered)",
                )
            )
        elif self._state is StreamState.RESYNC:
            self.resync_skipped_bytes += self._resync_run + len(self._buffer)
            self._resync_run = 0
        self._buffer.clear()
        self._skip = 0
        self._state = StreamState.HEADER

    def _lose_sync(self) -> None:
        self._buffer.clear()
        self._state = StreamState.RESYNC

    def _drain(self) -> None:
        buffer = self._buffer
        position = 0
        direct_tcp = self._direct_tcp
        while True:
            state = self._state
            if state is StreamState.HEADER:
                if len(buffer) - position < netbios.NETBIOS_HEADER_SIZE:
                    break
                header = netbios.parse_session_header(buffer, position, direct_tcp)
                if isinstance(header, Anomaly):
                    self._events.append(header)
                    self._state = StreamState.RESYNC
                    position += 1
                    continue
                self._frame_type, self._frame_length = header
                position += netbios.NETBIOS_HEADER_SIZE
                if self._frame_type == NetbiosSessionType.SESSION_MESSAGE:
                    self._keep = min(self._frame_length, PEEK_SIZE)
                    self._keep_decided = self._frame_length <= PEEK_SIZE
                else:
                    self._keep = min(self._frame_length, MAX_KEPT_CONTROL_PACKET)
                    self._keep_decided = True
                self._state = StreamState.BODY
            elif state is StreamState.BODY:
                available = len(buffer) - position
                if available < self._keep:
                    break
                if not self._keep_decided:
                    self._keep = bytes_to_keep(buffer[position : position + PEEK_SIZE], self._frame_length)
                    self._keep_decided = True
                    continue
                kept = bytes(buffer[position : position + self._keep])
                position += self._keep
                self._dispatch(kept)
                rest = self._frame_length - self._keep
                self._state = StreamState.HEADER
                if rest:
                    in_buffer = min(rest, len(buffer) - position)
                    position += in_buffer
                    if rest > in_buffer:
                        self._skip = rest - in_buffer
                        break
            else:
                position = self._resync(position)
                if self._state is StreamState.RESYNC:
                    break
        if position:
            del buffer[:position]

    def _resync(self, position: int) -> int:
        buffer = self._buffer
        while True:
            match = _RESYNC_PATTERN.search(buffer, position)
            if match is None:
                keep_from = max(position, len(buffer) - _RESYNC_TAIL)
                self._resync_run += keep_from - position
                return keep_from
            start = match.start()
            header = netbios.parse_session_header(buffer, start, self._direct_tcp)
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
                self._state = StreamState.HEADER
                return start
            self._resync_run += start + 1 - position
            position = start + 1

    def _dispatch(self, kept: bytes) -> None:
        self.frames += 1
        frame_type = self._frame_type
        if frame_type == NetbiosSessionType.SESSION_MESSAGE:
            if kept:
                self._events.extend(dissect_session_message(kept, self._frame_length))
        elif frame_type == NetbiosSessionType.SESSION_REQUEST:
            self._events.append(netbios.parse_session_request(kept))
        else:
            self._events.append(NetbiosSessionPacket(frame_type, self._frame_length))
