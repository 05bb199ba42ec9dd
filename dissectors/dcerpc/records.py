"""Frozen records of the connection-oriented DCE/RPC reader ([C706] chapter 12, [MS-RPCE] 2.2.2).

Like `dissectors.records`, they hold decoded values only: no stub bytes, no
credentials bytes (only what the NTLMSSP or SPNEGO parser made of them).
Errors are `Anomaly` records of the pipeline's `AnomalyKind` (the `DCERPC_*`
members), counted like every other anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass

from dissectors.records import Anomaly, KerberosApReq, NtlmsspMessage, SpnegoToken


@dataclass(frozen=True, slots=True)
class RpcCommonHeader:
    """[C706] 12.6.3.1 common fields of every connection-oriented PDU (16 bytes).

    `drep` is the 4-byte data representation format label ([C706] 14.1);
    `big_endian` is its integer representation (drep[0] & 0xF0 == 0), by which
    every multi-byte integer of the PDU was read.
    """

    rpc_vers: int
    rpc_vers_minor: int
    ptype: int
    pfc_flags: int
    drep: bytes
    big_endian: bool
    frag_length: int
    auth_length: int
    call_id: int


@dataclass(frozen=True, slots=True)
class RpcSyntaxId:
    """[C706] 12.6.3.1 p_syntax_id_t: interface UUID (text form) and version (major: low 16 bits)."""

    uuid: str
    version_major: int
    version_minor: int


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """[C706] 12.6.4.9 request PDU; `stub_length` is this fragment's stub data (no bytes kept)."""

    alloc_hint: int
    p_cont_id: int
    opnum: int
    object_uuid: str | None
    stub_length: int


@dataclass(frozen=True, slots=True)
class RpcResponse:
    """[C706] 12.6.4.10 response PDU. `return_value` is the stub's last four bytes when this fragment's
    stub is in the kept bytes: the operation's return code (a Win32 error, NTSTATUS or HRESULT; 0 is
    success) for the NDR-encoded operations of [MS-SCMR], [MS-RPRN], [MS-EFSR], [MS-DFSNM] and most
    others, which return it last."""

    alloc_hint: int
    p_cont_id: int
    cancel_count: int
    stub_length: int
    return_value: int | None = None


@dataclass(frozen=True, slots=True)
class RpcFault:
    """[C706] 12.6.4.7 fault PDU; `status` is the NCA/Win32 fault code ([MS-RPCE] 2.2.2.11)."""

    alloc_hint: int
    p_cont_id: int
    cancel_count: int
    status: int


@dataclass(frozen=True, slots=True)
class RpcPresentationContext:
    """[C706] 12.6.3.1 p_cont_elem_t; transfer syntaxes past the kept count are only counted."""

    p_cont_id: int
    abstract_syntax: RpcSyntaxId
    transfer_syntaxes: tuple[RpcSyntaxId, ...]
    transfer_syntaxes_dropped: int = 0


@dataclass(frozen=True, slots=True)
class RpcBind:
    """[C706] 12.6.4.3 bind PDU, and 12.6.4.1 alter_context (same layout: the header's ptype tells)."""

    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    contexts: tuple[RpcPresentationContext, ...]
    contexts_dropped: int = 0


@dataclass(frozen=True, slots=True)
class RpcContextResult:
    """[C706] 12.6.3.1 p_result_t: result and provider reason of one presentation context."""

    result: int
    reason: int
    transfer_syntax: RpcSyntaxId


@dataclass(frozen=True, slots=True)
class RpcBindAck:
    """[C706] 12.6.4.4 bind_ack, and 12.6.4.2 alter_context_resp (same layout).

    `secondary_address` is port_spec without its terminating NUL (e.g. "\\PIPE\\srvsvc").
    """

    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    secondary_address: str
    results: tuple[RpcContextResult, ...]
    results_dropped: int = 0


@dataclass(frozen=True, slots=True)
class RpcBindNak:
    """[C706] 12.6.4.5 bind_nak: the reject reason and the protocol versions offered instead."""

    reject_reason: int
    versions: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class RpcAuth3:
    """[MS-RPCE] 2.2.2.10 rpc_auth_3: only its auth verifier matters."""


@dataclass(frozen=True, slots=True)
class RpcHeaderOnly:
    """shutdown, co_cancel, orphaned ([C706] 12.6.4.6, 12.6.4.8, 12.6.4.11), or a PTYPE with no body kept."""


RpcBody = RpcRequest | RpcResponse | RpcFault | RpcBind | RpcBindAck | RpcBindNak | RpcAuth3 | RpcHeaderOnly


@dataclass(frozen=True, slots=True)
class RpcAuthVerifier:
    """[C706] 13.2.6.1 sec_trailer (auth_verifier_co_t) and what its auth_value decoded to.

    `token` is the NTLMSSP message (auth_type RPC_C_AUTHN_WINNT) or SPNEGO token
    (RPC_C_AUTHN_GSS_NEGOTIATE), the Kerberos AP-REQ (RPC_C_AUTHN_GSS_KERBEROS),
    an `Anomaly` when those bytes do not decode,
    or None for other providers and empty values (PKT_INTEGRITY/PRIVACY
    signatures are not tokens). The bytes themselves are not kept.
    """

    auth_type: int
    auth_level: int
    auth_pad_length: int
    auth_context_id: int
    auth_length: int
    token: NtlmsspMessage | SpnegoToken | KerberosApReq | Anomaly | None


@dataclass(frozen=True, slots=True)
class RpcPdu:
    """One connection-oriented PDU: header, body (None when it could not be read), auth verifier.

    `complete` is False when only the first bytes of the fragment were kept (a
    fragment larger than the stream keeps): the body is read from them, the
    auth verifier, which sits at the end, is not. `anomalies` lists what the
    PDU was read despite.
    """

    header: RpcCommonHeader
    body: RpcBody | None
    auth: RpcAuthVerifier | None
    complete: bool = True
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True, slots=True)
class RpcCall:
    """A whole request or response: its fragments put together by call_id ([C706] 12.6.3.1 pfc_flags).

    `opnum` is None for a response. `stub_length` is the total of the stub data
    of every fragment; no stub byte is kept.
    """

    ptype: int
    call_id: int
    p_cont_id: int
    opnum: int | None
    alloc_hint: int
    stub_length: int
    fragments: int
    return_value: int | None = None  # of a response: its last fragment's `RpcResponse.return_value`
