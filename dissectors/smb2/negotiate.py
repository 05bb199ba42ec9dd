"""SMB2 NEGOTIATE request and response with their negotiate contexts ([MS-SMB2] 2.2.3, 2.2.4).

Functions take one whole SMB2 message (header included: the spec's offsets count
from the start of the SMB2 header) and return a record or an `Anomaly`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from dissectors.constants import Smb2Dialect, Smb2NegotiateContextType
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    CompressionCapabilities,
    EncryptionCapabilities,
    NegotiateContext,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    RdmaTransformCapabilities,
    SigningCapabilities,
    Smb2NegotiateRequest,
    Smb2NegotiateResponse,
    TransportCapabilities,
    UnknownNegotiateContext,
)
from dissectors.text import utf16le

SMB2_HEADER_SIZE = 64
NEGOTIATE_REQUEST_STRUCTURE_SIZE = 36
NEGOTIATE_RESPONSE_STRUCTURE_SIZE = 65
# Windows sends at most a handful; a cap keeps hostile counts from costing time.
MAX_NEGOTIATE_CONTEXTS = 32
MAX_DIALECTS = 64
_NEGOTIATE_CONTEXT_HEADER = struct.Struct("<HHI")
_REQUEST_FIXED = struct.Struct("<HHHHI16sIH2x")
_RESPONSE_FIXED = struct.Struct("<HHHH16sIIIIQQHHI")


def _u16_list(data: bytes, offset: int, count: int) -> tuple[int, ...] | None:
    end = offset + 2 * count
    if end > len(data):
        return None
    return struct.unpack_from(f"<{count}H", data, offset)


def _preauth(data: bytes) -> NegotiateContext | None:
    if len(data) < 4:
        return None
    count, salt_length = struct.unpack_from("<HH", data)
    algorithms = _u16_list(data, 4, count)
    if algorithms is None or 4 + 2 * count + salt_length > len(data):
        return None
    return PreauthIntegrityCapabilities(hash_algorithms=algorithms, salt_length=salt_length)


def _encryption(data: bytes) -> NegotiateContext | None:
    if len(data) < 2:
        return None
    ciphers = _u16_list(data, 2, int.from_bytes(data[:2], "little"))
    return None if ciphers is None else EncryptionCapabilities(ciphers=ciphers)


def _compression(data: bytes) -> NegotiateContext | None:
    if len(data) < 8:
        return None
    count, _padding, flags = struct.unpack_from("<HHI", data)
    algorithms = _u16_list(data, 8, count)
    return None if algorithms is None else CompressionCapabilities(flags=flags, algorithms=algorithms)


def _netname(data: bytes) -> NegotiateContext | None:
    return NetnameNegotiateContextId(net_name=utf16le(data))


def _transport(data: bytes) -> NegotiateContext | None:
    if len(data) < 4:
        return None
    return TransportCapabilities(flags=int.from_bytes(data[:4], "little"))


def _rdma(data: bytes) -> NegotiateContext | None:
    if len(data) < 8:
        return None
    transforms = _u16_list(data, 8, int.from_bytes(data[:2], "little"))
    return None if transforms is None else RdmaTransformCapabilities(transform_ids=transforms)


def _signing(data: bytes) -> NegotiateContext | None:
    if len(data) < 2:
        return None
    algorithms = _u16_list(data, 2, int.from_bytes(data[:2], "little"))
    return None if algorithms is None else SigningCapabilities(algorithms=algorithms)


_CONTEXT_PARSERS: dict[int, Callable[[bytes], NegotiateContext | None]] = {
    Smb2NegotiateContextType.SMB2_PREAUTH_INTEGRITY_CAPABILITIES: _preauth,
    Smb2NegotiateContextType.SMB2_ENCRYPTION_CAPABILITIES: _encryption,
    Smb2NegotiateContextType.SMB2_COMPRESSION_CAPABILITIES: _compression,
    Smb2NegotiateContextType.SMB2_NETNAME_NEGOTIATE_CONTEXT_ID: _netname,
    Smb2NegotiateContextType.SMB2_TRANSPORT_CAPABILITIES: _transport,
    Smb2NegotiateContextType.SMB2_RDMA_TRANSFORM_CAPABILITIES: _rdma,
    Smb2NegotiateContextType.SMB2_SIGNING_CAPABILITIES: _signing,
}


def parse_negotiate_contexts(message: bytes, offset: int, count: int) -> tuple[NegotiateContext, ...] | Anomaly:
    """[MS-SMB2] 2.2.3.1: `count` contexts from `offset` (from the header), each 8-byte aligned."""
    if count > MAX_NEGOTIATE_CONTEXTS:
        return Anomaly(AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED, f"{count} contexts (cap {MAX_NEGOTIATE_CONTEXTS})")
    if count and offset < SMB2_HEADER_SIZE:
        return Anomaly(AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED, f"context offset {offset} inside the header")
    contexts: list[NegotiateContext] = []
    position = offset
    for index in range(count):
        position = (position + 7) & ~7
        if position + _NEGOTIATE_CONTEXT_HEADER.size > len(message):
            return Anomaly(AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED, f"context {index} past the message")
        context_type, data_length, _ = _NEGOTIATE_CONTEXT_HEADER.unpack_from(message, position)
        data_start = position + _NEGOTIATE_CONTEXT_HEADER.size
        data = message[data_start : data_start + data_length]
        if len(data) < data_length:
            return Anomaly(AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED, f"context {index} data past the message")
        parser = _CONTEXT_PARSERS.get(context_type)
        if parser is None:
            context: NegotiateContext | None = UnknownNegotiateContext(context_type, data_length)
        else:
            context = parser(data)
        if context is None:
            return Anomaly(
                AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED,
                f"context {index} type 0x{context_type:04x} inconsistent with its length {data_length}",
            )
        contexts.append(context)
        position = data_start + data_length
    return tuple(contexts)


def parse_negotiate_request(message: bytes) -> Smb2NegotiateRequest | Anomaly:
    """[MS-SMB2] 2.2.3 SMB2 NEGOTIATE Request."""
    body = SMB2_HEADER_SIZE
    if len(message) < body + _REQUEST_FIXED.size:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, "request shorter than its fixed part")
    (
        structure_size,
        dialect_count,
        security_mode,
        _reserved,
        capabilities,
        client_guid,
        context_offset,
        context_count,
    ) = _REQUEST_FIXED.unpack_from(message, body)
    if structure_size != NEGOTIATE_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, f"request StructureSize {structure_size}")
    if dialect_count == 0 or dialect_count > MAX_DIALECTS:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS, f"DialectCount {dialect_count}")
    dialects = _u16_list(message, body + NEGOTIATE_REQUEST_STRUCTURE_SIZE, dialect_count)
    if dialects is None:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS, f"{dialect_count} dialects past the message")
    contexts: tuple[NegotiateContext, ...] = ()
    # Only a 3.1.1 offer carries contexts; otherwise these bytes are ClientStartTime.
    if Smb2Dialect.SMB3_1_1 in dialects:
        parsed = parse_negotiate_contexts(message, context_offset, context_count)
        if isinstance(parsed, Anomaly):
            return parsed
        contexts = parsed
    return Smb2NegotiateRequest(
        dialects=dialects,
        security_mode=security_mode,
        capabilities=capabilities,
        client_guid=bytes(client_guid),
        contexts=contexts,
    )


def parse_negotiate_response(message: bytes) -> Smb2NegotiateResponse | Anomaly:
    """[MS-SMB2] 2.2.4 SMB2 NEGOTIATE Response."""
    body = SMB2_HEADER_SIZE
    if len(message) < body + _RESPONSE_FIXED.size:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, "response shorter than its fixed part")
    (
        structure_size,
        security_mode,
        dialect,
        context_count,
        server_guid,
        capabilities,
        max_transact,
        max_read,
        max_write,
        system_time,
        _start_time,
        _blob_offset,
        blob_length,
        context_offset,
    ) = _RESPONSE_FIXED.unpack_from(message, body)
    if structure_size != NEGOTIATE_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, f"response StructureSize {structure_size}")
    contexts: tuple[NegotiateContext, ...] = ()
    if dialect == Smb2Dialect.SMB3_1_1:
        parsed = parse_negotiate_contexts(message, context_offset, context_count)
        if isinstance(parsed, Anomaly):
            return parsed
        contexts = parsed
    return Smb2NegotiateResponse(
        security_mode=security_mode,
        dialect=dialect,
        server_guid=bytes(server_guid),
        capabilities=capabilities,
        max_transact_size=max_transact,
        max_read_size=max_read,
        max_write_size=max_write,
        system_time=system_time,
        security_buffer_length=blob_length,
        contexts=contexts,
    )
