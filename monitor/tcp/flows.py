"""TCP flow table and per-direction ordered reassembly.

A flow is one TCP connection to or from port 445/139, keyed by its 4-tuple in
both orientations. The client is the SYN sender; without a SYN, the side not
on a well-known port (else the sender of the first segment seen). Each
direction puts segments in sequence order (out of order, retransmitted and
overlapping segments handled) and hands the bytes to its `SmbStream`; a hole
that cannot be filled becomes a gap the stream resynchronises after.

Time is always the packets' own timestamps, so a pcap and a live interface
age flows alike. Every structure that grows with input is capped, and hitting
a cap is counted as an anomaly.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from librt.vecs import vec

from dissectors.constants import NETBIOS_SESSION_PORT, SMB_DIRECT_TCP_PORT, SMB_PORTS
from dissectors.records import AnomalyKind, StreamEvent
from dissectors.stream import SmbStream
from monitor.input.decode import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TcpSegment
from monitor.tcp.scan_probation import ScanProbation

SEQ_MASK: Final = 0xFFFFFFFF
SEQ_HALF: Final = 0x80000000
# The most a TCP sender can have in flight: a 65,535-byte window scaled by 2^14 (RFC 7323 2.3). A segment
# further ahead of or behind what was delivered is no retransmission and no hole a retransmission can
# fill: the sequence jumped (a capture spliced from two, a middlebox, a crafted stream).
MAX_TCP_WINDOW: Final = 1 << 30
# How far (bytes of sequence space) a new SYN's ISN must be from the flow's position to mean port reuse.
PORT_REUSE_DISTANCE: Final = 1 << 20


class Direction(IntEnum):
    CLIENT_TO_SERVER = 0
    SERVER_TO_CLIENT = 1


class FlowState(Enum):
    OPENING = "opening"  # SYN seen, no data or answer yet
    ESTABLISHED = "established"
    CLOSED_FIN = "closed_fin"
    RESET = "reset"


_OPENING: Final = FlowState.OPENING
_CLOSED_FIN: Final = FlowState.CLOSED_FIN
_RESET: Final = FlowState.RESET
_CONTROL_FLAGS: Final = TCP_SYN | TCP_RST | TCP_FIN


class CloseReason(Enum):
    """Why a flow left the table."""

    CLOSED = "closed"  # FIN or RST, then the closed timeout passed
    IDLE = "idle"
    TABLE_FULL = "table_full"
    PORT_REUSED = "port_reused"
    END_OF_INPUT = "end_of_input"


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """Caps and timeouts; defaults follow Suricata's and Zeek's flow handling."""

    max_flows: int = 50_000
    # Connection attempts that have seen nothing but the client's SYN wait in a compact table (about
    # 0.3 KiB each, no per-connection objects) until an answer or data makes them flows: a SYN flood
    # then costs a few dict operations a packet, and cannot push real connections out of the flow table.
    # 50,000 hold 5 s of a 10,000-SYN/s flood, where a real server answers within milliseconds; the
    # table is then 16 MiB (measured: 32 MiB at 100,000 took a 1.56 M-SYN flood to 106 MiB, now 83).
    max_half_open: int = 50_000
    # Out-of-order bytes and segments held per direction before the earliest hole is declared a gap.
    max_out_of_order_bytes: int = 256 * 1024
    max_out_of_order_segments: int = 1024
    established_timeout: float = 600.0
    opening_timeout: float = 60.0
    closed_timeout: float = 10.0
    sweep_interval: float = 5.0
    # A hole the receiver has acknowledged is given up after this long: a mirror port may
    # deliver the two directions slightly out of order, so an ACK alone is not proof of loss.
    acked_hole_timeout: float = 1.0
    # A hole nobody acknowledged is given up after this long: a mirror port that shows one
    # direction only never shows the ACK, and what waits behind the hole must not wait for the
    # connection's end. TCP retransmits a lost segment well within this (RTO starts at 1 s).
    unacked_hole_timeout: float = 5.0
    # How often (packet time) the table looks at its time-outs between sweeps: holes above, and
    # the consumer's own (answers that never came), so evidence is complete soon after it is due.
    tick_interval: float = 0.25


def _trim_seen(half: HalfConnection, payload: bytes, missing: int, overlap: int) -> tuple[bytes, int] | None:
    """The part of a segment after its first `overlap` bytes, already delivered; None if nothing is new."""
    length = len(payload) + missing
    if overlap >= length:
        half.retransmitted_bytes += length
        return None
    half.retransmitted_bytes += overlap
    if overlap >= len(payload):
        return b"", missing - (overlap - len(payload))
    return payload[overlap:], missing


def _port_bytes(source_port: int, destination_port: int) -> bytes:
    return bytes((source_port >> 8, source_port & 0xFF, destination_port >> 8, destination_port & 0xFF))


def wire_key(source: tuple[bytes, int], destination: tuple[bytes, int]) -> bytes:
    """IPv4 source and destination addresses then TCP ports, as bytes 12-24 of an option-less IPv4 packet."""
    return source[0] + destination[0] + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big")


def seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space (RFC 793 modular comparison)."""
    diff = (a - b) & SEQ_MASK
    return diff - 0x100000000 if diff >= SEQ_HALF else diff


class SegmentStore(dict[int, tuple[bytes, int]]):
    """Segments that arrived ahead of a hole in one direction, earliest first.

    A dict from offsets (from an anchor: the direction's position when the store
    was last empty, so order survives 32-bit sequence wrap) to (payload, missing
    bytes); a heap hands out the earliest in O(log n) however many are held. It
    is a dict so that the hot path's emptiness test costs nothing.
    """

    __slots__ = ("_heap", "anchor", "bytes")

    def __init__(self) -> None:
        super().__init__()
        self.anchor = 0
        self.bytes = 0  # captured bytes held
        self._heap: list[int] = []

    def segment_at(self, seq: int) -> tuple[bytes, int] | None:
        return self.get(seq_diff(seq, self.anchor)) if self else None

    def put(self, seq: int, payload: bytes, missing: int, position: int) -> None:
        """Hold a segment; `position` is the direction's next expected sequence number."""
        if not self:
            self.anchor = position
        key = seq_diff(seq, self.anchor)
        previous = self.get(key)
        if previous is None:
            heapq.heappush(self._heap, key)
        else:
            self.bytes -= len(previous[0])
        self[key] = (payload, missing)
        self.bytes += len(payload)

    def earliest(self) -> int:
        """Sequence number of the earliest segment held (the store must not be empty)."""
        return (self.anchor + self._heap[0]) & SEQ_MASK

    def pop_earliest(self) -> tuple[int, bytes, int]:
        key = heapq.heappop(self._heap)
        payload, missing = self.pop(key)
        self.bytes -= len(payload)
        return (self.anchor + key) & SEQ_MASK, payload, missing


class HalfConnection:
    """One direction: sequence tracking, out-of-order store, and the SMB stream it feeds."""

    __slots__ = (
        "bytes_delivered",
        "ended",
        "fin",
        "gap_bytes",
        "gaps",
        "hole_acked_since",
        "hole_since",
        "next_seq",
        "pending",
        "retransmitted_bytes",
        "stream",
    )

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending = SegmentStore()
        # Packet time at which the peer was first seen acknowledging past the hole before `pending`,
        # and at which the first segment was stored behind the hole.
        self.hole_acked_since: float | None = None
        self.hole_since = 0.0
        self.stream: SmbStream | None = None
        self.fin = False
        self.ended = False  # the stream was told eof: later bytes are not fed
        self.bytes_delivered = 0
        self.retransmitted_bytes = 0
        self.gaps = 0
        self.gap_bytes = 0

    @property
    def pending_bytes(self) -> int:
        return self.pending.bytes


class Flow:
    """One TCP connection between a client and an SMB server."""

    __slots__ = (
        "anomalies",
        "client",
        "finished",
        "first_ts",
        "halves",
        "last_ts",
        "midstream",
        "owner",
        "server",
        "state",
        "syn_seen",
        "transport",
    )

    def __init__(self, client: tuple[bytes, int], server: tuple[bytes, int], ts: float, syn_seen: bool) -> None:
        self.client = client
        self.server = server
        self.transport = "netbios139" if server[1] == NETBIOS_SESSION_PORT else "tcp445"
        self.first_ts = ts
        self.last_ts = ts
        self.syn_seen = syn_seen
        self.midstream = not syn_seen
        self.state = FlowState.OPENING if syn_seen else FlowState.ESTABLISHED
        self.halves = (HalfConnection(), HalfConnection())
        # Reported to the consumer already; kept only to absorb stragglers until the closed timeout.
        self.finished = False
        self.anomalies: Counter[AnomalyKind] | None = None  # created on the first anomaly
        # Whatever the consumer attaches (the per-connection SMB session state).
        self.owner: object = None

    def count_anomaly(self, kind: AnomalyKind) -> None:
        if self.anomalies is None:
            self.anomalies = Counter()
        self.anomalies[kind] += 1


_DIRECT_TCP: Final[int] = SMB_DIRECT_TCP_PORT
_NETBIOS: Final[int] = NETBIOS_SESSION_PORT

# How a waiting attempt ended (FlowTable._attempt_ended): reset (failed), forgotten for want of room,
# never answered within the opening timeout (failed), or the input ended (failed: no answer seen).
_ATTEMPT_RESET: Final = 0
_ATTEMPT_TABLE_FULL: Final = 1
_ATTEMPT_UNANSWERED: Final = 2
_ATTEMPT_END_OF_INPUT: Final = 3

_C2S: Final = Direction.CLIENT_TO_SERVER
_S2C: Final = Direction.SERVER_TO_CLIENT

_FINISHED_HALVES: Final = (HalfConnection(), HalfConnection())
for _half in _FINISHED_HALVES:
    _half.ended = True

EventSink = Callable[[Flow, Direction, list[StreamEvent], float], None]
CloseSink = Callable[[Flow, CloseReason], None]
# A first-seen connection: client, server, packet time (a SYN, or a flow picked up without one).
OpenSink = Callable[[tuple[bytes, int], tuple[bytes, int], float], None]
# A connection attempt that never became a flow ended: client, server, and whether it failed
# (reset or no answer) rather than being forgotten for want of room.
AttemptEndSink = Callable[[tuple[bytes, int], tuple[bytes, int], bool], None]
TickSink = Callable[[float], None]
# A waiting attempt's key: the SYN's `wire_key` (source and destination address, then the ports), the
# bytes a fast path slices out of a frame in one go.
HalfOpenKey = bytes


# A waiting attempt: the SYN's packet time and initial sequence number.
HalfOpenEntry = tuple[float, int]
_MIN_RING: Final = 64


class HalfOpenTable:
    """Connection attempts with only a SYN seen, by `HalfOpenKey`, and their order of arrival.

    `entries` is a plain dict the flow table looks keys up in. The order lives beside it in a ring of
    keys and SYN times: an OrderedDict does the same, but looks each key up twice more per insert and
    eviction, and taking the oldest out of a plain dict walks over every entry deleted before it
    (measured: 1.56 M SYNs took 158 s instead of seconds). The times are a machine-word vector, not
    float objects, so a ring slot costs no allocation. An attempt taken out of `entries` (answered,
    reset) leaves a stale slot behind: a slot is live only while `entries` holds its key with its
    time, so a key that came back later is not taken for its old arrival.
    """

    def __init__(self) -> None:
        self.entries: dict[HalfOpenKey, HalfOpenEntry] = {}
        self._keys: list[HalfOpenKey | None] = [None] * _MIN_RING
        self._times: vec[float] = vec[float]([0.0] * _MIN_RING)
        self._head = 0  # the oldest ring slot in use
        self._used = 0  # ring slots in use, live or stale

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, key: HalfOpenKey, ts: float, isn: int) -> None:
        """A new attempt (`key` not in `entries`)."""
        self.entries[key] = (ts, isn)
        capacity = len(self._keys)
        if self._used == capacity:
            self._compact()
            capacity = len(self._keys)
        slot = self._head + self._used
        if slot >= capacity:
            slot -= capacity
        self._keys[slot] = key
        self._times[slot] = ts
        self._used += 1

    def _live(self, key: HalfOpenKey | None, ts: float) -> bool:
        if key is None:
            return False
        entry = self.entries.get(key)
        return entry is not None and entry[0] == ts

    def pop_oldest(self, before: float = float("inf")) -> HalfOpenKey | None:
        """The key of the oldest waiting attempt, taken out, if it arrived before `before`; else None."""
        keys = self._keys
        times = self._times
        capacity = len(keys)
        while self._used:
            head = self._head
            key = keys[head]
            ts = times[head]
            live = self._live(key, ts)
            if live and ts >= before:
                return None
            keys[head] = None
            self._head = head + 1 if head + 1 < capacity else 0
            self._used -= 1
            if live and key is not None:
                del self.entries[key]
                return key
        return None

    def clear(self) -> None:
        self.entries.clear()
        self._keys = [None] * _MIN_RING
        self._times = vec[float]([0.0] * _MIN_RING)
        self._head = 0
        self._used = 0

    def _compact(self) -> None:
        """The ring is full: keep its live slots in arrival order, in a ring twice their number."""
        keys = self._keys
        times = self._times
        capacity = len(keys)
        live_keys: list[HalfOpenKey | None] = []
        live_times: list[float] = []
        for offset in range(self._used):
            slot = self._head + offset
            if slot >= capacity:
                slot -= capacity
            key = keys[slot]
            if self._live(key, times[slot]):
                live_keys.append(key)
                live_times.append(times[slot])
        size = max(_MIN_RING, 2 * len(live_keys))
        self._used = len(live_keys)
        self._head = 0
        self._keys = live_keys + [None] * (size - len(live_keys))
        self._times = vec[float](live_times + [0.0] * (size - len(live_times)))


def split_wire_key(key: bytes) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
    """The (address, port) endpoints of a `wire_key`: source, destination."""
    size = (len(key) - 4) >> 1
    ports = 2 * size
    return (key[:size], key[ports] << 8 | key[ports + 1]), (key[size:ports], key[ports + 2] << 8 | key[ports + 3])


class FlowTable:
    """All live flows; `process` takes each decoded segment in capture order."""

    def __init__(
        self,
        limits: FlowLimits,
        on_events: EventSink,
        on_close: CloseSink,
        on_open: OpenSink | None = None,
        on_tick: TickSink | None = None,
        on_attempt_end: AttemptEndSink | None = None,
        scan: ScanProbation | None = None,
        on_scan_candidate: OpenSink | None = None,
    ) -> None:
        self.limits = limits
        # With `scan`, a waiting attempt to 445/139 goes to the scan probation table directly (a C call
        # when compiled), and on to `on_scan_candidate` only when that says the source needs a look; an
        # attempt ending reaches `on_attempt_end` only for sources the detector tracks. Without it, every
        # attempt reaches `on_open` and `on_attempt_end`.
        self.scan = scan
        self._on_scan_candidate = on_scan_candidate
        # Some waiting SYN came from port 445/139: a SYN to such a port may answer it (simultaneous
        # open), so the fast path leaves SYNs to the general path from then on.
        self.syn_from_smb_port_seen = False
        self._on_open = on_open
        self._on_tick = on_tick
        self._on_attempt_end = on_attempt_end
        self._on_events = on_events
        self._on_close = on_close
        self._by_tuple: dict[tuple[bytes, int, bytes, int], tuple[Flow, Direction]] = {}
        # IPv4 flows by their addresses and ports as they appear on the wire (see monitor/tcp/fastpath.py).
        self.wire_index: dict[bytes, tuple[Flow, Direction]] = {}
        self._flows: dict[int, Flow] = {}
        # Attempts with only a SYN seen, in order of arrival (see max_half_open).
        self._half_open = HalfOpenTable()
        self.half_open_promoted = 0  # attempts that became flows
        self.half_open_evicted = 0  # attempts forgotten for want of room (counted as table_full too)
        # How waiting attempts ended without becoming flows, by reason: plain counters, since hashing
        # an Enum member runs Python code and a flood ends an attempt for every SYN (see `closed`).
        self.attempts_ended = 0
        self._attempts_reset = 0
        self._attempts_table_full = 0
        self._attempts_unanswered = 0
        self._attempts_end_of_input = 0
        # Flows holding segments behind a hole, by id: the ticks give those holes up when due.
        self._holes: dict[int, Flow] = {}
        # Packet time of the next housekeeping (a tick, and the sweep when that is due too).
        self.next_housekeeping = 0.0
        self._next_sweep = 0.0
        self._last_housekeeping = float("inf")  # no jump before the first packet
        self.created = 0
        self._flows_closed: Counter[CloseReason] = Counter()
        self.anomalies: Counter[AnomalyKind] = Counter()
        self.gaps = 0
        self.gap_bytes = 0

    def __len__(self) -> int:
        return len(self._flows)

    @property
    def closed(self) -> Counter[CloseReason]:
        """Flows and attempts that ended, by reason."""
        closed = Counter(self._flows_closed)
        for reason, count in (
            (CloseReason.CLOSED, self._attempts_reset),
            (CloseReason.TABLE_FULL, self._attempts_table_full),
            (CloseReason.IDLE, self._attempts_unanswered),
            (CloseReason.END_OF_INPUT, self._attempts_end_of_input),
        ):
            if count:
                closed[reason] += count
        return closed

    @property
    def half_open(self) -> int:
        """Connection attempts waiting for an answer (not flows yet)."""
        return len(self._half_open)

    def flows(self) -> list[Flow]:
        return list(self._flows.values())

    def process(self, ts: float, segment: TcpSegment) -> None:
        if ts >= self.next_housekeeping:
            self.housekeeping(ts)
        key = (segment.src, segment.sport, segment.dst, segment.dport)
        entry = self._by_tuple.get(key)
        flags = segment.flags
        if entry is None:
            half_open = self._half_open.entries
            forward = segment.src + segment.dst + _port_bytes(segment.sport, segment.dport)
            reverse = segment.dst + segment.src + _port_bytes(segment.dport, segment.sport)
            if flags & TCP_SYN and not flags & (TCP_ACK | TCP_RST) and not segment.payload and reverse not in half_open:
                self.syn(ts, forward, segment.seq)
                return
            if half_open:
                # The answer to a waiting SYN (SYN+ACK, RST), or the client going on after it.
                syn_key = reverse if reverse in half_open else forward if forward in half_open else None
                if syn_key is not None:
                    syn_ts, isn = half_open.pop(syn_key)
                    if flags & TCP_RST:
                        self._attempt_ended(syn_key, _ATTEMPT_RESET)
                        return
                    entry = self._promote(syn_key, syn_ts, isn, key)
            if entry is None:
                if flags & TCP_RST:
                    return  # a reset for a connection never seen opens nothing
                entry = self._create(ts, segment)
        elif (
            flags & TCP_SYN and not flags & TCP_ACK and entry[1] == _C2S and self._is_new_connection(entry[0], segment)
        ):
            self._remove(entry[0], CloseReason.PORT_REUSED)
            entry = self._create(ts, segment)
        flow, direction = entry
        flow.last_ts = ts
        if flow.finished:
            return  # stragglers of a connection already reported (final ACKs, retransmitted FINs)
        if flags & _CONTROL_FLAGS:
            self._segment(flow, direction, segment, ts)
            return
        # Hot path: a plain data or ACK segment. The halves are unpacked rather than indexed by
        # `direction`: compiled, indexing them by a variable builds a tuple.
        to_server, to_client = flow.halves
        half, other = (to_client, to_server) if direction else (to_server, to_client)
        if flags & TCP_ACK and other.pending:
            self._check_acked_hole(flow, other, segment.ack, 1 - direction, ts)
        payload = segment.payload
        if not payload and not segment.missing:
            return
        if flow.state is _OPENING:
            flow.state = FlowState.ESTABLISHED
        stream = half.stream
        if stream is not None and segment.seq == half.next_seq and not segment.missing and not half.pending:
            size = len(payload)
            stream.feed(payload)
            half.next_seq = (segment.seq + size) & SEQ_MASK
            half.bytes_delivered += size
            if stream.has_events:
                self._on_events(flow, direction, stream.events(), ts)
            return
        self._data(flow, half, direction, segment.seq, payload, segment.missing, ts)

    def syn(self, ts: float, key: HalfOpenKey, seq: int) -> None:
        """A client SYN for no known flow (`key`: its `wire_key`): an attempt, kept compactly until
        answered. The fast path calls this straight from the frame's bytes."""
        half_open = self._half_open
        if key in half_open.entries:
            return  # a retransmitted SYN: the first one's time stays
        half_open.add(key, ts, seq)
        self.created += 1
        size = (len(key) - 4) >> 1
        source_port = key[2 * size] << 8 | key[2 * size + 1]
        if source_port in (_DIRECT_TCP, _NETBIOS):
            self.syn_from_smb_port_seen = True
        scan = self.scan
        if scan is None:
            if self._on_open is not None:
                client, server = split_wire_key(key)
                self._on_open(client, server, ts)
        else:
            destination_port = key[2 * size + 2] << 8 | key[2 * size + 3]
            if (
                destination_port in (_DIRECT_TCP, _NETBIOS)
                and scan.attempt(key[:size], key[size : 2 * size], ts)
                and self._on_scan_candidate is not None
            ):
                client, server = split_wire_key(key)
                self._on_scan_candidate(client, server, ts)
        if len(half_open.entries) > self.limits.max_half_open:
            oldest = half_open.pop_oldest()
            if oldest is not None:
                self.half_open_evicted += 1
                self._attempt_ended(oldest, _ATTEMPT_TABLE_FULL)

    def _attempt_ended(self, key: HalfOpenKey, how: int) -> None:
        """A waiting attempt ended without becoming a flow: reset, forgotten, unanswered, or input ended."""
        self.attempts_ended += 1
        if how == _ATTEMPT_RESET:
            self._attempts_reset += 1
        elif how == _ATTEMPT_TABLE_FULL:
            self._attempts_table_full += 1
        elif how == _ATTEMPT_UNANSWERED:
            self._attempts_unanswered += 1
        else:
            self._attempts_end_of_input += 1
        if self._on_attempt_end is None:
            return
        scan = self.scan
        if scan is not None and not scan.is_tracked(key[: (len(key) - 4) >> 1]):
            return  # only tracked sources keep counts of how their attempts ended
        client, server = split_wire_key(key)
        self._on_attempt_end(client, server, how != _ATTEMPT_TABLE_FULL)

    def _promote(
        self, syn_key: HalfOpenKey, syn_ts: float, isn: int, key: tuple[bytes, int, bytes, int]
    ) -> tuple[Flow, Direction]:
        """An answered (or continued) attempt becomes a flow, as if it had been one since its SYN."""
        if len(self._flows) >= self.limits.max_flows:
            self._make_room(syn_ts)
        client, server = split_wire_key(syn_key)
        flow = Flow(client, server, syn_ts, True)
        flow.halves[0].next_seq = (isn + 1) & SEQ_MASK
        self.half_open_promoted += 1
        self._register(flow)
        return self._by_tuple[key]

    def _expire_half_open(self, now: float) -> None:
        """Attempts unanswered past the opening timeout failed (oldest first: the table is in time order)."""
        half_open = self._half_open
        horizon = now - self.limits.opening_timeout
        while True:
            oldest = half_open.pop_oldest(horizon)
            if oldest is None:
                return
            self._attempt_ended(oldest, _ATTEMPT_UNANSWERED)

    def _is_new_connection(self, flow: Flow, segment: TcpSegment) -> bool:
        """A client SYN on a known flow: a new connection reusing the ports, or the same one's SYN again?"""
        if flow.state is _CLOSED_FIN or flow.state is _RESET:
            return True
        # A new ISN far from where this direction stands is a new connection on the same ports;
        # a SYN just behind it is a retransmitted or late-captured one.
        next_seq = flow.halves[0].next_seq
        return next_seq is not None and abs(seq_diff(segment.seq + 1, next_seq)) > PORT_REUSE_DISTANCE

    def _create(self, ts: float, segment: TcpSegment) -> tuple[Flow, Direction]:
        if len(self._flows) >= self.limits.max_flows:
            self._make_room(ts)
        flags = segment.flags
        src = (segment.src, segment.sport)
        dst = (segment.dst, segment.dport)
        if flags & TCP_SYN:
            # SYN alone: sender is the client. SYN+ACK: the sender is the server.
            sender_is_client = not flags & TCP_ACK
            syn_seen = True
        else:
            syn_seen = False
            if segment.dport in SMB_PORTS and segment.sport not in SMB_PORTS:
                sender_is_client = True
            elif segment.sport in SMB_PORTS and segment.dport not in SMB_PORTS:
                sender_is_client = False
            else:
                sender_is_client = segment.dport <= segment.sport
        client, server = (src, dst) if sender_is_client else (dst, src)
        flow = Flow(client, server, ts, syn_seen)
        self.created += 1
        if self._on_open is not None:
            self._on_open(client, server, ts)
        self._register(flow)
        return self._by_tuple[(segment.src, segment.sport, segment.dst, segment.dport)]

    def _register(self, flow: Flow) -> None:
        client, server = flow.client, flow.server
        self._flows[id(flow)] = flow
        forward = (client[0], client[1], server[0], server[1])
        backward = (server[0], server[1], client[0], client[1])
        self._by_tuple[forward] = (flow, _C2S)
        self._by_tuple[backward] = (flow, _S2C)
        if len(client[0]) == 4:
            self.wire_index[wire_key(client, server)] = (flow, _C2S)
            self.wire_index[wire_key(server, client)] = (flow, _S2C)

    def _segment(self, flow: Flow, direction: Direction, segment: TcpSegment, ts: float) -> None:
        """A segment with SYN, RST or FIN set."""
        to_server, to_client = flow.halves  # see process: not indexed by `direction`
        half, other = (to_client, to_server) if direction else (to_server, to_client)
        flags = segment.flags
        if flags & TCP_SYN:
            if half.next_seq is None:
                half.next_seq = (segment.seq + 1) & SEQ_MASK
            if flags & TCP_ACK and other.next_seq is None:
                # The SYN+ACK acknowledges the client's ISN, even when the SYN itself was not captured.
                other.next_seq = segment.ack
            if direction == _S2C and flow.state is _OPENING:
                flow.state = FlowState.ESTABLISHED
            return
        if flags & TCP_ACK and other.pending:
            self._check_acked_hole(flow, other, segment.ack, 1 - direction, ts)
        if flags & TCP_RST:
            flow.state = FlowState.RESET
            # The sender is done; the peer's segments already in flight may still arrive and count,
            # so the flow is reported when both directions ended or at the closed timeout.
            self._end_direction(flow, direction, ts)
            if other.ended:
                self._finish(flow, CloseReason.CLOSED)
            return
        length = len(segment.payload) + segment.missing
        if length:
            if flow.state is _OPENING:
                flow.state = FlowState.ESTABLISHED
            self._data(flow, half, direction, segment.seq, segment.payload, segment.missing, ts)
        if flags & TCP_FIN and not half.fin:
            half.fin = True
            fin_position = (segment.seq + length) & SEQ_MASK
            # A FIN that overtook data still missing ends the direction only at removal.
            if half.next_seq is None or (not half.pending and seq_diff(fin_position, half.next_seq) <= 0):
                self._end_direction(flow, direction, ts)
            if other.fin:
                flow.state = FlowState.CLOSED_FIN
                if half.ended and other.ended:
                    self._finish(flow, CloseReason.CLOSED)

    def _data(
        self, flow: Flow, half: HalfConnection, direction: Direction, seq: int, payload: bytes, missing: int, ts: float
    ) -> None:
        if half.ended:
            return
        if half.stream is None:
            midstream = half.next_seq is None
            if midstream:
                half.next_seq = seq
                flow.midstream = True
            half.stream = SmbStream(direct_tcp=flow.transport == "tcp445", midstream=midstream)
        offset = seq_diff(seq, half.next_seq)  # type: ignore[arg-type]
        if offset > MAX_TCP_WINDOW or offset < -MAX_TCP_WINDOW:
            self._sequence_jump(flow, half, direction, seq, ts)
            offset = 0
        if offset < 0:
            trimmed = _trim_seen(half, payload, missing, -offset)
            if trimmed is None:
                return
            payload, missing = trimmed
            offset = 0
        if offset == 0:
            half.hole_acked_since = None
            self._deliver(flow, half, direction, payload, missing, ts)
            if half.pending:
                self._drain_pending(flow, half, direction, ts)
            return
        self._store_out_of_order(flow, half, direction, seq, payload, missing, ts)

    def _deliver(
        self, flow: Flow, half: HalfConnection, direction: Direction, payload: bytes, missing: int, ts: float
    ) -> None:
        stream = half.stream
        assert stream is not None
        if payload:
            stream.feed(payload)
            half.bytes_delivered += len(payload)
        if missing:
            self._count_gap(flow, half, missing)
            stream.gap(missing)
        half.next_seq = (half.next_seq + len(payload) + missing) & SEQ_MASK  # type: ignore[operator]
        events = stream.events()
        if events:
            self._on_events(flow, direction, events, ts)

    def _sequence_jump(self, flow: Flow, half: HalfConnection, direction: Direction, seq: int, ts: float) -> None:
        """Data far outside any window: what waited behind holes goes out first (its holes counted),
        then one gap of unknown size, and the stream resynchronises on the data at `seq`."""
        flow.count_anomaly(AnomalyKind.SEQUENCE_JUMP)
        self.anomalies[AnomalyKind.SEQUENCE_JUMP] += 1
        while half.pending:
            self._skip_to_pending(flow, half, direction, ts)
        half.hole_acked_since = None
        self._count_gap(flow, half, 0)  # how many bytes the jump skipped is unknown: none are counted
        stream = half.stream
        assert stream is not None
        stream.lost_position()
        half.next_seq = seq
        events = stream.events()
        if events:
            self._on_events(flow, direction, events, ts)

    def _count_gap(self, flow: Flow, half: HalfConnection, size: int) -> None:
        half.gaps += 1
        half.gap_bytes += size
        self.gaps += 1
        self.gap_bytes += size

    def _store_out_of_order(
        self, flow: Flow, half: HalfConnection, direction: Direction, seq: int, payload: bytes, missing: int, ts: float
    ) -> None:
        pending = half.pending
        previous = pending.segment_at(seq)
        if previous is not None and len(previous[0]) + previous[1] >= len(payload) + missing:
            if payload[: len(previous[0])] != previous[0][: len(payload)]:
                flow.count_anomaly(AnomalyKind.OVERLAP_DATA_DIFFERS)
                self.anomalies[AnomalyKind.OVERLAP_DATA_DIFFERS] += 1
            half.retransmitted_bytes += len(payload) + missing
            return
        if not pending:
            half.hole_since = ts
            self._holes[id(flow)] = flow
        pending.put(seq, payload, missing, half.next_seq)  # type: ignore[arg-type]
        limits = self.limits
        if pending.bytes > limits.max_out_of_order_bytes or len(pending) > limits.max_out_of_order_segments:
            flow.count_anomaly(AnomalyKind.OUT_OF_ORDER_BUFFER_FULL)
            self.anomalies[AnomalyKind.OUT_OF_ORDER_BUFFER_FULL] += 1
            # Give up holes, earliest first, until what is held fits again.
            while pending.bytes > limits.max_out_of_order_bytes or len(pending) > limits.max_out_of_order_segments:
                self._skip_to_pending(flow, half, direction, ts)

    def _drain_pending(self, flow: Flow, half: HalfConnection, direction: Direction, ts: float) -> None:
        pending = half.pending
        while pending:
            offset = seq_diff(pending.earliest(), half.next_seq)  # type: ignore[arg-type]
            if offset > 0:
                return
            _, payload, missing = pending.pop_earliest()
            if offset:
                trimmed = _trim_seen(half, payload, missing, -offset)
                if trimmed is None:
                    continue
                payload, missing = trimmed
            self._deliver(flow, half, direction, payload, missing, ts)

    def _skip_to_pending(self, flow: Flow, half: HalfConnection, direction: Direction, ts: float) -> None:
        """Declare the hole before the earliest stored segment lost, then deliver what follows."""
        if not half.pending or half.next_seq is None:
            return
        hole = seq_diff(half.pending.earliest(), half.next_seq)
        if hole > 0:
            self._deliver(flow, half, direction, b"", hole, ts)
        self._drain_pending(flow, half, direction, ts)

    def _check_acked_hole(self, flow: Flow, half: HalfConnection, ack: int, direction: int, ts: float) -> None:
        """The peer acknowledged bytes past a hole that later data already follows: the hole is lost
        once that has held for `acked_hole_timeout` of packet time."""
        if not half.pending or half.next_seq is None or seq_diff(ack, half.pending.earliest()) < 0:
            return
        if half.hole_acked_since is None:
            half.hole_acked_since = ts
        elif ts - half.hole_acked_since >= self.limits.acked_hole_timeout:
            half.hole_acked_since = None
            self._skip_to_pending(flow, half, Direction(direction), ts)

    def _end_direction(self, flow: Flow, direction: Direction, ts: float) -> None:
        half = flow.halves[direction]
        if half.ended:
            return
        half.ended = True
        if half.stream is None:
            return
        while half.pending:
            self._skip_to_pending(flow, half, direction, ts)
        half.stream.eof()
        events = half.stream.events()
        if events:
            self._on_events(flow, direction, events, ts)

    def _finish(self, flow: Flow, reason: CloseReason) -> None:
        """Flush both directions and hand the flow to the consumer; its state is released."""
        if flow.finished:
            return
        ts = flow.last_ts
        for direction in (_C2S, _S2C):
            self._end_direction(flow, direction, ts)
        flow.finished = True
        self._flows_closed[reason] += 1
        self._on_close(flow, reason)
        # Nothing reads a finished flow's halves again: drop them (and the streams) for the shared pair.
        flow.halves = _FINISHED_HALVES
        flow.owner = None

    def _remove(self, flow: Flow, reason: CloseReason) -> None:
        self._finish(flow, reason)
        del self._flows[id(flow)]
        self._holes.pop(id(flow), None)
        client, server = flow.client, flow.server
        self._by_tuple.pop((client[0], client[1], server[0], server[1]), None)
        self._by_tuple.pop((server[0], server[1], client[0], client[1]), None)
        if len(client[0]) == 4:
            self.wire_index.pop(wire_key(client, server), None)
            self.wire_index.pop(wire_key(server, client), None)

    def housekeeping(self, now: float) -> None:
        """What packet time `now` makes due: holes given up, the consumer's tick, and the sweep.

        Called for the first packet past `next_housekeeping`, and by a live sensor with its
        estimate of packet time while the link is quiet, so nothing due waits for more traffic."""
        limits = self.limits
        if now - self._last_housekeeping > limits.established_timeout and (self._flows or self._half_open.entries):
            # Packet time leapt past the idle timeout with connections open: the sweep below ends
            # them as idle, and their later packets start new connections (picked up midstream).
            self.anomalies[AnomalyKind.PACKET_TIME_JUMP] += 1
        self._last_housekeeping = now
        if now >= self._next_sweep:
            self.sweep(now)
        if self._holes:
            self._give_up_holes(now)
        if self._on_tick is not None:
            self._on_tick(now)
        self.next_housekeeping = min(now + limits.tick_interval, self._next_sweep)

    def _give_up_holes(self, now: float) -> None:
        """Holes acknowledged for `acked_hole_timeout`, or unacknowledged for `unacked_hole_timeout`."""
        limits = self.limits
        for key, flow in list(self._holes.items()):
            if flow.finished:
                del self._holes[key]
                continue
            waiting = False
            for direction in (_C2S, _S2C):
                half = flow.halves[direction]
                if not half.pending:
                    continue
                acked = half.hole_acked_since
                if (acked is not None and now - acked >= limits.acked_hole_timeout) or (
                    now - half.hole_since >= limits.unacked_hole_timeout
                ):
                    half.hole_acked_since = None
                    self._skip_to_pending(flow, half, direction, now)
                    if half.pending:  # a later hole: it waits from now on
                        half.hole_since = now
                        waiting = True
                else:
                    waiting = True
            if not waiting:
                self._holes.pop(key, None)

    def sweep(self, now: float) -> None:
        """Evict flows idle past their state's timeout, by packet time."""
        limits = self.limits
        self._next_sweep = now + limits.sweep_interval
        if self._half_open.entries:
            self._expire_half_open(now)
        expired = []
        for flow in self._flows.values():
            idle = now - flow.last_ts
            if flow.state is FlowState.ESTABLISHED:
                if idle > limits.established_timeout:
                    expired.append((flow, CloseReason.IDLE))
            elif flow.state is FlowState.OPENING:
                if idle > limits.opening_timeout:
                    expired.append((flow, CloseReason.IDLE))
            elif idle > limits.closed_timeout:
                expired.append((flow, CloseReason.CLOSED))
        for flow, reason in expired:
            self._remove(flow, reason)

    def _make_room(self, now: float) -> None:
        self.sweep(now)
        if len(self._flows) < self.limits.max_flows:
            return
        # Evict a tenth at once so the cost is paid rarely: flows already reported (waiting out
        # their closed timeout) first, then the least recently active. Only losing live flows is an anomaly.
        candidates = sorted(self._flows.values(), key=lambda flow: (not flow.finished, flow.last_ts))
        victims = candidates[: max(1, len(candidates) // 10)]
        live = sum(1 for flow in victims if not flow.finished)
        if live:
            self.anomalies[AnomalyKind.FLOW_TABLE_FULL] += live  # each live flow lost, not each eviction round
        for flow in victims:
            self._remove(flow, CloseReason.TABLE_FULL)

    def close_all(self) -> None:
        """End of input: every flow is finished with what was seen; waiting attempts got no answer."""
        for key in list(self._half_open.entries):
            self._attempt_ended(key, _ATTEMPT_END_OF_INPUT)
        self._half_open.clear()
        for flow in list(self._flows.values()):
            reason = (
                CloseReason.CLOSED
                if flow.state in (FlowState.CLOSED_FIN, FlowState.RESET)
                else CloseReason.END_OF_INPUT
            )
            self._remove(flow, reason)
