"""Connection-oriented DCE/RPC PDUs ([C706] chapter 12, [MS-RPCE] 2.2.2): bytes in, `RpcPdu` out.

`parse_pdu` reads one PDU (or the first bytes of one: see `RpcPdu.complete`)
and never raises: input too short for the common header, or lengths and counts
pointing outside the PDU, give a `Anomaly` naming what; a version other
than 5 gives `NOT_DCERPC`. Every multi-byte integer is read in the byte order
the PDU's data representation label names (drep[0] & 0xF0: 0 big-endian, 1
little-endian), big-endian PDUs included, as CVE-2022-26809 exploits send them.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Final

from dissectors.auth import kerberos, ntlmssp, spnego
from dissectors.dcerpc.constants import (
    COMMON_HEADER_SIZE,
    RPC_VERS,
    SEC_TRAILER_SIZE,
    SYNTAX_ID_SIZE,
    UUID_SIZE,
    AuthType,
    PfcFlags,
    PType,
)
from dissectors.dcerpc.records import (
    RpcAuth3,
    RpcAuthVerifier,
    RpcBind,
    RpcBindAck,
    RpcBindNak,
    RpcBody,
    RpcCommonHeader,
    RpcContextResult,
    RpcFault,
    RpcHeaderOnly,
    RpcPdu,
    RpcPresentationContext,
    RpcRequest,
    RpcResponse,
    RpcSyntaxId,
)
from dissectors.records import Anomaly, AnomalyKind, KerberosApReq, NtlmsspMessage, SpnegoToken

# Windows binds a handful of contexts (NDR, NDR64, bind time feature negotiation each);
# caps keep hostile counts (up to 255) from costing time and memory.
MAX_CONTEXTS: Final = 16
MAX_TRANSFER_SYNTAXES: Final = 8
MAX_RESULTS: Final = 16
MAX_SECONDARY_ADDRESS: Final = 256

_MALFORMED: Final = AnomalyKind.DCERPC_MALFORMED
_OBJECT_UUID: Final = int(PfcFlags.PFC_OBJECT_UUID)
# Only these PDUs carry an authentication token; the verifier of a request or response
# at PKT_INTEGRITY or PKT_PRIVACY is a signature ([MS-RPCE] 2.2.2.11-2.2.2.13), not decoded.
_TOKEN_PTYPES: Final = frozenset(
    {PType.BIND, PType.BIND_ACK, PType.ALTER_CONTEXT, PType.ALTER_CONTEXT_RESP, PType.AUTH3}
)
_HEADER_LE: Final = struct.Struct("<BBBB4sHHI")
_HEADER_BE: Final = struct.Struct(">BBBB4sHHI")


class _Reader:
    """Integers in the PDU's byte order; every read is bounds-checked by the caller's `need`."""

    __slots__ = ("big", "data")

    def __init__(self, data: bytes, big_endian: bool) -> None:
        self.data = data
        self.big = big_endian

    def u8(self, at: int) -> int:
        return self.data[at]

    def u16(self, at: int) -> int:
        return int.from_bytes(self.data[at : at + 2], "big" if self.big else "little")

    def u32(self, at: int) -> int:
        return int.from_bytes(self.data[at : at + 4], "big" if self.big else "little")

    def uuid(self, at: int) -> str:
        """[C706] appendix A uuid_t: time_low, time_mid, time_hi_and_version in drep order, then 8 bytes."""
        raw = self.data[at : at + UUID_SIZE]
        return str(uuid.UUID(bytes=raw) if self.big else uuid.UUID(bytes_le=raw))

    def syntax(self, at: int) -> RpcSyntaxId:
        """p_syntax_id_t: if_uuid then if_version (u_int32: major in the low 16 bits, minor in the high)."""
        version = self.u32(at + UUID_SIZE)
        return RpcSyntaxId(self.uuid(at), version & 0xFFFF, version >> 16)


def is_big_endian(drep: bytes) -> bool:
    """[C706] 14.1: integer representation is the high nibble of drep[0]; 0 is big-endian."""
    return (drep[0] & 0xF0) == 0


def parse_header(data: bytes) -> RpcCommonHeader | Anomaly:
    """[C706] 12.6.3.1 the 16-byte common header; `NOT_DCERPC` unless rpc_vers is 5."""
    if len(data) < COMMON_HEADER_SIZE:
        return Anomaly(_MALFORMED, f"{len(data)} bytes, shorter than the common header")
    if data[0] != RPC_VERS:
        return Anomaly(AnomalyKind.DCERPC_NOT_DCERPC, f"rpc_vers {data[0]}, not {RPC_VERS}")
    big = is_big_endian(data[4:8])
    fields = (_HEADER_BE if big else _HEADER_LE).unpack_from(data)
    vers, minor, ptype, flags, drep, frag_length, auth_length, call_id = fields
    return RpcCommonHeader(vers, minor, ptype, flags, drep, big, frag_length, auth_length, call_id)


def parse_pdu(data: bytes) -> RpcPdu | Anomaly:
    """One PDU: `data` is the whole fragment, or its first bytes when the fragment is longer than kept.

    Bytes past frag_length are ignored. A body whose fixed part is cut off gives
    an `RpcPdu` with body None and an anomaly when the fragment was whole, and
    body None without one when only a prefix was kept and the cut is ours.
    """
    header = parse_header(data)
    if isinstance(header, Anomaly):
        return header
    if header.frag_length < COMMON_HEADER_SIZE:
        return Anomaly(_MALFORMED, f"frag_length {header.frag_length} shorter than the common header")
    complete = len(data) >= header.frag_length
    pdu = data[: header.frag_length] if complete else data
    anomalies: list[Anomaly] = []
    auth: RpcAuthVerifier | None = None
    # Where the body ends: before the sec_trailer and auth value, when there is one.
    body_end = header.frag_length
    if header.auth_length:
        trailer = header.frag_length - header.auth_length - SEC_TRAILER_SIZE
        if trailer < COMMON_HEADER_SIZE:
            anomalies.append(Anomaly(_MALFORMED, f"auth_length {header.auth_length} larger than frag_length allows"))
        else:
            body_end = trailer
            if complete:
                auth = _auth_verifier(pdu, trailer, header, anomalies)
                body_end -= min(auth.auth_pad_length, trailer - COMMON_HEADER_SIZE)
    reader = _Reader(pdu, header.big_endian)
    parser = _BODY_PARSERS.get(header.ptype)
    body: RpcBody | None
    if parser is None:
        body = RpcHeaderOnly()
    else:
        result = parser(reader, header, body_end)
        if isinstance(result, Anomaly):
            # A cut that falls in bytes the stream chose not to keep is not the sender's fault.
            if complete or body_end <= len(pdu):
                anomalies.append(result)
            body = None
        else:
            body = result
            dropped = _dropped(body)
            if dropped:
                anomalies.append(Anomaly(AnomalyKind.DCERPC_CONTEXTS_FULL, f"{dropped} past the kept count not listed"))
    return RpcPdu(header, body, auth, complete, tuple(anomalies))


def _dropped(body: RpcBody) -> str:
    """What a bind or bind_ack listed past MAX_CONTEXTS, MAX_TRANSFER_SYNTAXES or MAX_RESULTS."""
    if isinstance(body, RpcBind):
        syntaxes = sum(context.transfer_syntaxes_dropped for context in body.contexts)
        parts = [f"{body.contexts_dropped} contexts" if body.contexts_dropped else ""]
        parts.append(f"{syntaxes} transfer syntaxes" if syntaxes else "")
        return ", ".join(part for part in parts if part)
    if isinstance(body, RpcBindAck) and body.results_dropped:
        return f"{body.results_dropped} results"
    return ""


def _auth_verifier(pdu: bytes, at: int, header: RpcCommonHeader, anomalies: list[Anomaly]) -> RpcAuthVerifier:
    """[C706] 13.2.6.1 sec_trailer at frag_length - auth_length - 8, then auth_length bytes of auth_value."""
    reader = _Reader(pdu, header.big_endian)
    auth_type, auth_level, pad = pdu[at], pdu[at + 1], pdu[at + 2]
    context_id = reader.u32(at + 4)
    if pad > at - COMMON_HEADER_SIZE:
        anomalies.append(Anomaly(_MALFORMED, f"auth_pad_length {pad} larger than the body"))
    value = pdu[at + SEC_TRAILER_SIZE : at + SEC_TRAILER_SIZE + header.auth_length]
    token: NtlmsspMessage | SpnegoToken | KerberosApReq | Anomaly | None = None
    if header.ptype in _TOKEN_PTYPES and value:
        if auth_type == AuthType.RPC_C_AUTHN_WINNT and value[:8] == ntlmssp.NTLMSSP_SIGNATURE:
            token = ntlmssp.parse(value)
        elif auth_type == AuthType.RPC_C_AUTHN_GSS_NEGOTIATE:
            token = spnego.parse_security_blob(value)
        elif auth_type == AuthType.RPC_C_AUTHN_GSS_KERBEROS:
            # The GSS-API token of an AP-REQ; an AP-REP or KRB_ERROR token (bind_ack) decodes to None.
            token = kerberos.parse_gss_token(value)
    return RpcAuthVerifier(auth_type, auth_level, pad, context_id, header.auth_length, token)


def _cut(name: str, need: int, end: int) -> Anomaly:
    return Anomaly(_MALFORMED, f"{name} needs {need} bytes, the body ends at {end}")


def _request(r: _Reader, header: RpcCommonHeader, end: int) -> RpcRequest | Anomaly:
    """[C706] 12.6.4.9: alloc_hint, p_cont_id, opnum, object (when PFC_OBJECT_UUID), stub data."""
    stub_at = 24 + (UUID_SIZE if header.pfc_flags & _OBJECT_UUID else 0)
    if stub_at > min(end, len(r.data)):
        return _cut("request header", stub_at, min(end, len(r.data)))
    obj = r.uuid(24) if header.pfc_flags & _OBJECT_UUID else None
    return RpcRequest(r.u32(16), r.u16(20), r.u16(22), obj, end - stub_at)


def _response(r: _Reader, header: RpcCommonHeader, end: int) -> RpcResponse | Anomaly:
    """[C706] 12.6.4.10: alloc_hint, p_cont_id, cancel_count, reserved, stub data."""
    if min(end, len(r.data)) < 24:
        return _cut("response header", 24, min(end, len(r.data)))
    return_value = r.u32(end - 4) if end - 24 >= 4 and end <= len(r.data) else None
    return RpcResponse(r.u32(16), r.u16(20), r.u8(22), end - 24, return_value)


def _fault(r: _Reader, header: RpcCommonHeader, end: int) -> RpcFault | Anomaly:
    """[C706] 12.6.4.7: alloc_hint, p_cont_id, cancel_count, reserved, status, reserved."""
    if min(end, len(r.data)) < 28:
        return _cut("fault header", 28, min(end, len(r.data)))
    return RpcFault(r.u32(16), r.u16(20), r.u8(22), r.u32(24))


def _bind(r: _Reader, header: RpcCommonHeader, end: int) -> RpcBind | Anomaly:
    """[C706] 12.6.4.3 / 12.6.4.1: max_xmit_frag, max_recv_frag, assoc_group_id, p_context_elem_t."""
    end = min(end, len(r.data))
    if end < 28:
        return _cut("bind header", 28, end)
    count = r.u8(24)
    contexts: list[RpcPresentationContext] = []
    at = 28
    for index in range(min(count, MAX_CONTEXTS)):
        if at + 4 + SYNTAX_ID_SIZE > end:
            return _cut(f"presentation context {index}", at + 4 + SYNTAX_ID_SIZE, end)
        p_cont_id, n_transfer = r.u16(at), r.u8(at + 2)
        abstract = r.syntax(at + 4)
        at += 4 + SYNTAX_ID_SIZE
        if at + n_transfer * SYNTAX_ID_SIZE > end:
            return _cut(f"transfer syntaxes of context {index}", at + n_transfer * SYNTAX_ID_SIZE, end)
        kept = min(n_transfer, MAX_TRANSFER_SYNTAXES)
        transfers = tuple(r.syntax(at + i * SYNTAX_ID_SIZE) for i in range(kept))
        at += n_transfer * SYNTAX_ID_SIZE
        contexts.append(RpcPresentationContext(p_cont_id, abstract, transfers, n_transfer - kept))
    return RpcBind(r.u16(16), r.u16(18), r.u32(20), tuple(contexts), max(count - MAX_CONTEXTS, 0))


def _bind_ack(r: _Reader, header: RpcCommonHeader, end: int) -> RpcBindAck | Anomaly:
    """[C706] 12.6.4.4 / 12.6.4.2: max frags, assoc_group_id, sec_addr (port_spec_t), pad to 4, p_result_list_t."""
    end = min(end, len(r.data))
    if end < 26:
        return _cut("bind_ack header", 26, end)
    address_length = r.u16(24)
    if 26 + address_length > end:
        return _cut("secondary address", 26 + address_length, end)
    raw = r.data[26 : 26 + min(address_length, MAX_SECONDARY_ADDRESS)]
    address = raw.split(b"\x00", 1)[0].decode("latin-1")
    at = (26 + address_length + 3) & ~3  # aligned on 4 from the start of the PDU
    if at + 4 > end:
        return _cut("result list", at + 4, end)
    count = r.u8(at)
    at += 4
    results: list[RpcContextResult] = []
    for index in range(min(count, MAX_RESULTS)):
        if at + 4 + SYNTAX_ID_SIZE > end:
            return _cut(f"result {index}", at + 4 + SYNTAX_ID_SIZE, end)
        results.append(RpcContextResult(r.u16(at), r.u16(at + 2), r.syntax(at + 4)))
        at += 4 + SYNTAX_ID_SIZE
    return RpcBindAck(r.u16(16), r.u16(18), r.u32(20), address, tuple(results), max(count - MAX_RESULTS, 0))


def _bind_nak(r: _Reader, header: RpcCommonHeader, end: int) -> RpcBindNak | Anomaly:
    """[C706] 12.6.4.5: provider_reject_reason, then p_rt_versions_supported_t (may be absent)."""
    end = min(end, len(r.data))
    if end < 18:
        return _cut("bind_nak reason", 18, end)
    versions: tuple[tuple[int, int], ...] = ()
    if end > 18:
        count = r.u8(18)
        if 19 + 2 * count <= end:
            versions = tuple((r.u8(19 + 2 * i), r.u8(20 + 2 * i)) for i in range(count))
    return RpcBindNak(r.u16(16), versions)


def _auth3(r: _Reader, header: RpcCommonHeader, end: int) -> RpcAuth3:
    """[MS-RPCE] 2.2.2.10: four bytes of padding, then the auth verifier."""
    return RpcAuth3()


_BODY_PARSERS: Final[dict[int, Callable[[_Reader, RpcCommonHeader, int], RpcBody | Anomaly]]] = {
    PType.REQUEST: _request,
    PType.RESPONSE: _response,
    PType.FAULT: _fault,
    PType.BIND: _bind,
    PType.ALTER_CONTEXT: _bind,
    PType.BIND_ACK: _bind_ack,
    PType.ALTER_CONTEXT_RESP: _bind_ack,
    PType.BIND_NAK: _bind_nak,
    PType.AUTH3: _auth3,
}
