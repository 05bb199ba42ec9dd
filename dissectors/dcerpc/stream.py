"""One direction of one DCE/RPC association, sans-IO: `feed` bytes, `eof`, pull `pdus`.

The caller (the SMB layer, from named-pipe WRITE/READ/IOCTL/TRANSACT data)
hands over the bytes of one direction in order. `RpcStream` cuts them into
PDUs by frag_length ([C706] 12.6.3.1), keeps at most `max_kept` bytes of each
(a longer fragment has its first bytes read and the rest passed over without
being buffered), and puts the fragments of a request or response together by
call_id (PFC_FIRST_FRAG ... PFC_LAST_FRAG) into one `RpcCall` with its opnum
and total stub length. No stub byte is kept: only lengths are added up.

Everything that grows with input is capped and counted: bytes kept per PDU,
calls reassembled at once, stub length per call. Bytes that are not DCE/RPC
(rpc_vers other than 5, frag_length shorter than a header) end the reading of
the stream: PDU boundaries cannot be found again, and the rest is only counted.
"""

from __future__ import annotations

from typing import Final

from dissectors.constants import enum_name
from dissectors.dcerpc.constants import COMMON_HEADER_SIZE, PfcFlags, PType
from dissectors.dcerpc.pdu import parse_header, parse_pdu
from dissectors.dcerpc.records import (
    RpcCall,
    RpcFault,
    RpcPdu,
    RpcRequest,
    RpcResponse,
)
from dissectors.records import Anomaly, AnomalyKind

MAX_KEPT_PDU: Final = 64 * 1024
# Never keep less than a request's fixed part with its object UUID ([C706] 12.6.4.9): opnum must be read.
MIN_KEPT_PDU: Final = 40
MAX_CALL_STUB: Final = 1024 * 1024
MAX_CALLS_IN_FLIGHT: Final = 16
# Calls given up on (over a cap) whose later fragments are passed over without a new anomaly.
MAX_FORGOTTEN_CALLS: Final = 64

_FIRST: Final = int(PfcFlags.PFC_FIRST_FRAG)
_LAST: Final = int(PfcFlags.PFC_LAST_FRAG)

RpcStreamEvent = RpcPdu | RpcCall | Anomaly


class _Call:
    """A fragmented call being put together: its first fragment's fields and the stub so far."""

    __slots__ = ("alloc_hint", "fragments", "opnum", "p_cont_id", "return_value", "stub_length")

    def __init__(self, body: RpcRequest | RpcResponse) -> None:
        self.p_cont_id = body.p_cont_id
        self.opnum = body.opnum if isinstance(body, RpcRequest) else None
        self.alloc_hint = body.alloc_hint
        self.stub_length = body.stub_length
        self.return_value = body.return_value if isinstance(body, RpcResponse) else None
        self.fragments = 1


class RpcStream:
    """PDU framing and call reassembly of one direction of a DCE/RPC connection.

    Counters (each also reported once as a `Anomaly` event when it grows):
    `fragments_beyond_kept` (fragments longer than `max_kept`), `calls_full`
    (fragmented calls not followed: `max_calls` were in flight),
    `reassembly_full` (calls forgotten when their stub passed `max_call_stub`),
    `fragments_out_of_call` (later fragments of a call whose first was not seen),
    `ignored_bytes` (bytes after the stream stopped being DCE/RPC).
    """

    __slots__ = (
        "_buffer",
        "_calls",
        "_events",
        "_forgotten",
        "_frag_length",
        "_keep",
        "_lost",
        "_skip",
        "calls_full",
        "fragments_beyond_kept",
        "fragments_out_of_call",
        "ignored_bytes",
        "max_call_stub",
        "max_calls",
        "max_kept",
        "pdus_read",
        "reassembly_full",
    )

    def __init__(
        self,
        max_kept: int = MAX_KEPT_PDU,
        max_call_stub: int = MAX_CALL_STUB,
        max_calls: int = MAX_CALLS_IN_FLIGHT,
    ) -> None:
        self.max_kept = max(max_kept, MIN_KEPT_PDU)
        self.max_call_stub = max_call_stub
        self.max_calls = max_calls
        self._buffer = bytearray()  # the kept bytes of the current PDU, at most max_kept
        self._events: list[RpcStreamEvent] = []
        self._calls: dict[tuple[int, int], _Call] = {}  # (ptype, call_id) -> call in flight
        self._forgotten: dict[tuple[int, int], None] = {}  # insertion-ordered, at most MAX_FORGOTTEN_CALLS
        self._frag_length = 0  # of the current PDU once its header is in, else 0
        self._keep = 0
        self._skip = 0  # bytes of the current PDU still to pass over unbuffered
        self._lost = False
        self.pdus_read = 0
        self.fragments_beyond_kept = 0
        self.calls_full = 0
        self.reassembly_full = 0
        self.fragments_out_of_call = 0
        self.ignored_bytes = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def calls_in_flight(self) -> int:
        return len(self._calls)

    @property
    def lost(self) -> bool:
        """True once the bytes stopped being DCE/RPC: nothing more is read."""
        return self._lost

    def pdus(self) -> list[RpcStreamEvent]:
        """The records produced since the last call: each `RpcPdu`, each whole `RpcCall`, each anomaly."""
        events = self._events
        self._events = []
        return events

    def feed(self, data: bytes) -> None:
        """Next in-order bytes of this direction."""
        view = memoryview(data)
        while view:
            if self._lost:
                self.ignored_bytes += len(view)
                return
            if self._skip:
                passed = min(self._skip, len(view))
                self._skip -= passed
                view = view[passed:]
                continue
            buffer = self._buffer
            want = (self._keep if self._frag_length else COMMON_HEADER_SIZE) - len(buffer)
            taken = view[:want]
            buffer += taken
            view = view[len(taken) :]
            if len(taken) < want:
                return
            if not self._frag_length:
                self._start_pdu()
            else:
                self._end_pdu()

    def eof(self) -> None:
        """The direction ended: a PDU or fragmented call left unfinished is reported."""
        if (self._buffer or self._skip) and not self._lost:
            self._events.append(
                Anomaly(AnomalyKind.DCERPC_STREAM_CUT_SHORT, f"ended inside a PDU ({len(self._buffer)} bytes kept)")
            )
        for (ptype, call_id), call in self._calls.items():
            self._events.append(
                Anomaly(
                    AnomalyKind.DCERPC_STREAM_CUT_SHORT,
                    f"ended inside {enum_name(PType, ptype, 1)} call_id {call_id} after {call.fragments} fragments",
                )
            )
        self._calls.clear()
        self._buffer.clear()
        self._skip = 0
        self._frag_length = 0

    def _start_pdu(self) -> None:
        header = parse_header(bytes(self._buffer))
        if isinstance(header, Anomaly):
            self._lose(header)
            return
        if header.frag_length < COMMON_HEADER_SIZE:
            self._lose(Anomaly(AnomalyKind.DCERPC_MALFORMED, f"frag_length {header.frag_length}"))
            return
        self._frag_length = header.frag_length
        self._keep = min(header.frag_length, self.max_kept)
        if self._keep == len(self._buffer):
            self._end_pdu()

    def _end_pdu(self) -> None:
        kept = bytes(self._buffer)
        self._buffer.clear()
        self._skip = self._frag_length - len(kept)
        self._frag_length = 0
        pdu = parse_pdu(kept)
        if isinstance(pdu, Anomaly):  # the header was checked: cannot happen, but never raise
            self._lose(pdu)
            return
        self.pdus_read += 1
        if self._skip:
            self.fragments_beyond_kept += 1
            self._events.append(
                Anomaly(
                    AnomalyKind.DCERPC_FRAGMENT_BEYOND_KEPT_BYTES,
                    f"frag_length {pdu.header.frag_length}: {len(kept)} bytes read, the rest passed over",
                )
            )
        self._events.append(pdu)
        self._events.extend(pdu.anomalies)
        body = pdu.body
        if isinstance(body, RpcRequest | RpcResponse):
            self._reassemble(pdu.header.ptype, pdu.header.call_id, pdu.header.pfc_flags, body)
        elif isinstance(body, RpcFault):
            # [C706] 12.6.4.7: a fault ends the call in place of its response, fragments sent so far included.
            self._calls.pop((int(PType.RESPONSE), pdu.header.call_id), None)

    def _lose(self, anomaly: Anomaly) -> None:
        self._events.append(anomaly)
        self._lost = True
        self.ignored_bytes += len(self._buffer)
        self._buffer.clear()

    def _forget(self, key: tuple[int, int]) -> None:
        self._calls.pop(key, None)
        self._forgotten[key] = None
        if len(self._forgotten) > MAX_FORGOTTEN_CALLS:
            del self._forgotten[next(iter(self._forgotten))]

    def _reassemble(self, ptype: int, call_id: int, flags: int, body: RpcRequest | RpcResponse) -> None:
        """[C706] 12.6.3.1: a call runs from its PFC_FIRST_FRAG fragment to its PFC_LAST_FRAG one."""
        key = (ptype, call_id)
        if flags & _FIRST:
            self._calls.pop(key, None)  # a new first fragment restarts the call
            self._forgotten.pop(key, None)
            call = _Call(body)
            if flags & _LAST:
                self._emit(ptype, call_id, call)
                return
            if len(self._calls) >= self.max_calls:
                self.calls_full += 1
                self._forget(key)
                self._events.append(
                    Anomaly(
                        AnomalyKind.DCERPC_CALLS_FULL, f"call_id {call_id}: {self.max_calls} calls already in flight"
                    )
                )
                return
            self._calls[key] = call
            return
        continued = self._calls.get(key)
        if continued is None:
            if key in self._forgotten:
                if flags & _LAST:
                    del self._forgotten[key]
                return
            self.fragments_out_of_call += 1
            self._events.append(
                Anomaly(AnomalyKind.DCERPC_FRAGMENT_OUT_OF_CALL, f"call_id {call_id}: first fragment not seen")
            )
            return
        call = continued
        call.stub_length += body.stub_length
        call.fragments += 1
        if isinstance(body, RpcResponse):
            call.return_value = body.return_value  # the return code ends the stub: the last fragment has it
        if call.stub_length > self.max_call_stub:
            self.reassembly_full += 1
            self._forget(key)
            if flags & _LAST:
                del self._forgotten[key]
            self._events.append(
                Anomaly(
                    AnomalyKind.DCERPC_REASSEMBLY_FULL,
                    f"call_id {call_id}: stub past {self.max_call_stub} bytes after {call.fragments} fragments",
                )
            )
            return
        if flags & _LAST:
            del self._calls[key]
            self._emit(ptype, call_id, call)

    def _emit(self, ptype: int, call_id: int, call: _Call) -> None:
        self._events.append(
            RpcCall(
                ptype,
                call_id,
                call.p_cont_id,
                call.opnum,
                call.alloc_hint,
                call.stub_length,
                call.fragments,
                call.return_value,
            )
        )
