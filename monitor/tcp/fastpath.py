"""The bulk fast path: segments of known IPv4 flows whose handling is trivial, applied from raw bytes.

On a file-server link most packets are full-size segments of READ/WRITE data
that `SmbStream` passes over unseen, and the ACKs that answer them. Decoding
each into a `TcpSegment` and walking the flow table's general path costs more
than everything else together. For an untagged Ethernet/IPv4 frame without IP
options whose 4-tuple is already in `FlowTable.wire_index`, this module reads
the few fields that matter straight from the frame and:

- a pure ACK: only refreshes the flow's activity time;
- in-order data that lies wholly inside the part of a frame the stream skips:
  advances the sequence and the stream's skip counter;

and, for a 4-tuple not in the index, a bare SYN to 445/139 (no payload, not a
fragment, the frame not cut): hands the 12 key bytes straight to
`FlowTable.syn`, so each SYN of a flood costs a slice and a few table operations
instead of a decoded `TcpSegment` and the general path.

Anything else (SYN/FIN/RST, a hole or stored out-of-order data on either side,
data the stream must see, a cut or padded frame, housekeeping due) returns False
and takes the normal path, so the results are the same with or without it;
tests/test_fastpath.py checks exactly that.

`FastPath.feed` is the per-frame loop itself (fast path first, else decode and
the flow table), here rather than in `Pipeline` so that it is compiled with the
rest of the hot path (setup.py): the loop and its calls then run as C.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from dissectors.constants import NETBIOS_SESSION_PORT, SMB_DIRECT_TCP_PORT
from monitor.input.decode import (
    IPPROTO_TCP,
    IPV4_NO_OPTIONS,
    LINKTYPE_ETHERNET,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Decoder,
)
from monitor.tcp.flows import SEQ_MASK, FlowTable

_IPV4: Final = 14  # IPv4 header offset in an untagged Ethernet frame
_TCP: Final = _IPV4 + 20
_KEY_START: Final = _IPV4 + 12  # source address, destination address, then the TCP ports
_KEY_END: Final = _TCP + 4
_CONTROL_FLAGS: Final = TCP_SYN | TCP_FIN | TCP_RST
_MIN_FRAME: Final = _TCP + 20
_SYN_ACK_RST: Final = TCP_SYN | TCP_ACK | TCP_RST
_DIRECT_TCP: Final[int] = SMB_DIRECT_TCP_PORT
_NETBIOS: Final[int] = NETBIOS_SESSION_PORT


class FastPath:
    """Applies trivial segments of known flows without decoding them (Ethernet/IPv4 only)."""

    __slots__ = ("enabled", "flows", "frames", "packets", "segments")

    def __init__(self, flows: FlowTable, enabled: bool = True) -> None:
        self.flows = flows
        self.enabled = enabled
        self.packets = 0  # frames handled here
        self.frames = 0  # frames `feed` took, whichever path handled them
        self.segments = 0  # frames `feed` decoded into a segment for the flow table

    def feed(self, frames: Iterable[tuple[float, int, bytes]], decoder: Decoder) -> None:
        """Each frame through the fast path, else `decoder` and the flow table, in capture order.
        The counters include the frames before an exception of the frame source."""
        # Direct method calls rather than bound-method locals: compiled, they are plain C calls.
        enabled = self.enabled
        flows = self.flows
        count = 0
        segments = 0
        try:
            for ts, linktype, frame in frames:
                count += 1
                if enabled and linktype == LINKTYPE_ETHERNET and self.apply(frame, ts):
                    continue
                segment = decoder.decode(linktype, frame)
                if segment is not None:
                    segments += 1
                    flows.process(ts, segment)
        finally:
            self.frames += count
            self.segments += segments

    def apply(self, frame: bytes, ts: float) -> bool:
        """True if the Ethernet `frame` was fully handled here."""
        if (
            not self.enabled
            or len(frame) < _MIN_FRAME
            or frame[14] != IPV4_NO_OPTIONS
            or frame[12] != 0x08
            or frame[13]
        ):
            return False
        flows = self.flows
        if ts >= flows.next_housekeeping:
            return False
        key = frame[_KEY_START:_KEY_END]
        entry = flows.wire_index.get(key)
        if entry is None:
            return self._waiting_syn(frame, key, ts)
        flow, direction = entry
        if frame[_TCP + 13] & _CONTROL_FLAGS or flow.finished or frame[_IPV4 + 6] & 0x3F or frame[_IPV4 + 7]:
            return False
        # Unpacked rather than indexed by `direction`: compiled, indexing the halves by a variable builds a tuple.
        to_server, to_client = flow.halves
        half, other = (to_client, to_server) if direction else (to_server, to_client)
        if other.pending:
            return False  # the ACK may settle a hole: the general path decides
        payload_length = (frame[_IPV4 + 2] << 8 | frame[_IPV4 + 3]) - 20 - (frame[_TCP + 12] >> 4) * 4
        if payload_length == 0:
            flow.last_ts = ts
            self.packets += 1
            return True
        stream = half.stream
        if (
            stream is None
            or half.pending
            or payload_length < 0
            or payload_length > stream.skip_remaining
            or len(frame) != _TCP + (frame[_TCP + 12] >> 4) * 4 + payload_length
        ):
            return False
        seq = frame[_TCP + 4] << 24 | frame[_TCP + 5] << 16 | frame[_TCP + 6] << 8 | frame[_TCP + 7]
        next_seq = half.next_seq
        if next_seq is None or seq != next_seq:
            return False
        stream.skip(payload_length)
        half.next_seq = (seq + payload_length) & SEQ_MASK
        half.bytes_delivered += payload_length
        flow.last_ts = ts
        self.packets += 1
        return True

    def _waiting_syn(self, frame: bytes, key: bytes, ts: float) -> bool:
        """A bare client SYN to 445/139 for no known flow goes to the half-open table from the bytes."""
        if (
            frame[_TCP + 13] & _SYN_ACK_RST != TCP_SYN
            or frame[_IPV4 + 9] != IPPROTO_TCP
            or frame[_IPV4 + 6] & 0x3F
            or frame[_IPV4 + 7]
        ):
            return False
        data_offset = frame[_TCP + 12]
        total_length = frame[_IPV4 + 2] << 8 | frame[_IPV4 + 3]
        if data_offset < 0x50 or total_length != 20 + (data_offset >> 4) * 4 or len(frame) < _IPV4 + total_length:
            return False  # payload, a bad header or a cut frame: the decoder says what
        destination_port = frame[_TCP + 2] << 8 | frame[_TCP + 3]
        source_port = frame[_TCP] << 8 | frame[_TCP + 1]
        flows = self.flows
        if (
            (destination_port != _DIRECT_TCP and destination_port != _NETBIOS)
            or source_port == _DIRECT_TCP
            or source_port == _NETBIOS
            or flows.syn_from_smb_port_seen  # this SYN may answer a waiting one: the general path checks
        ):
            return False
        seq = frame[_TCP + 4] << 24 | frame[_TCP + 5] << 16 | frame[_TCP + 6] << 8 | frame[_TCP + 7]
        flows.syn(ts, key, seq)
        self.packets += 1
        return True
