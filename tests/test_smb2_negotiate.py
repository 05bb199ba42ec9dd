"""[MS-SMB2] 2.2.3 / 2.2.4 NEGOTIATE, on messages recorded from Samba 4.17."""

from __future__ import annotations

import struct

from wire_samples import SMB2_NEGOTIATE_REQUEST_311, SMB2_NEGOTIATE_RESPONSE_311

from dissectors.records import (
    Anomaly,
    AnomalyKind,
    CompressionCapabilities,
    EncryptionCapabilities,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    SigningCapabilities,
    Smb2NegotiateRequest,
    Smb2NegotiateResponse,
    UnknownNegotiateContext,
)
from dissectors.smb2.negotiate import parse_negotiate_contexts, parse_negotiate_request, parse_negotiate_response

REQUEST = SMB2_NEGOTIATE_REQUEST_311[4:]
RESPONSE = SMB2_NEGOTIATE_RESPONSE_311[4:]


def test_request_dialects_guid_and_contexts() -> None:
    request = parse_negotiate_request(REQUEST)
    assert isinstance(request, Smb2NegotiateRequest)
    assert request.dialects == (0x0311,)  # smbclient with client min/max protocol = SMB3_11
    assert request.security_mode == 0x0001  # signing enabled, not required
    assert request.capabilities == 0x7F
    assert request.client_guid.hex() == "dd2bad05300d4e40b41e31e2227cb526"
    kinds = [type(context) for context in request.contexts]
    assert kinds == [
        PreauthIntegrityCapabilities,
        EncryptionCapabilities,
        SigningCapabilities,
        NetnameNegotiateContextId,
    ]
    preauth, encryption, signing, netname = request.contexts
    assert preauth.hash_algorithms == (1,) and preauth.salt_length == 32
    assert encryption.ciphers == (2, 1, 4, 3)  # AES-128-GCM, AES-128-CCM, AES-256-GCM, AES-256-CCM
    assert signing.algorithms == (2, 1, 0)
    assert netname.net_name == "192.0.2.20"


def test_response_dialect_and_contexts() -> None:
    response = parse_negotiate_response(RESPONSE)
    assert isinstance(response, Smb2NegotiateResponse)
    assert response.dialect == 0x0311
    assert response.security_mode == 0x0001
    assert response.max_read_size == 8 * 1024 * 1024
    assert response.security_buffer_length == 74
    assert {type(c) for c in response.contexts} >= {PreauthIntegrityCapabilities, EncryptionCapabilities}
    encryption = next(c for c in response.contexts if isinstance(c, EncryptionCapabilities))
    assert len(encryption.ciphers) == 1


def test_request_with_bad_structure_size_is_an_anomaly() -> None:
    broken = bytearray(REQUEST)
    broken[64:66] = struct.pack("<H", 35)
    result = parse_negotiate_request(bytes(broken))
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_MALFORMED


def test_dialect_list_past_the_message() -> None:
    broken = bytearray(REQUEST[:100])
    broken[66:68] = struct.pack("<H", 40)  # 40 dialects, 80 bytes, cannot fit
    result = parse_negotiate_request(bytes(broken))
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS


def test_zero_dialects() -> None:
    broken = bytearray(REQUEST)
    broken[66:68] = b"\x00\x00"
    result = parse_negotiate_request(bytes(broken))
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS


def test_contexts_offset_inside_header_and_past_end() -> None:
    assert isinstance(parse_negotiate_contexts(REQUEST, 8, 1), Anomaly)
    assert isinstance(parse_negotiate_contexts(REQUEST, len(REQUEST) + 8, 1), Anomaly)
    too_many = parse_negotiate_contexts(REQUEST, 104, 1000)
    assert isinstance(too_many, Anomaly) and "cap" in too_many.detail


def test_unknown_and_compression_contexts() -> None:
    message = bytearray(64)
    compression = struct.pack("<HHIHH", 2, 0, 1, 2, 5)  # LZ77, LZ4, chained flag
    message += struct.pack("<HHI", 3, len(compression), 0) + compression
    message += bytes((-len(message)) % 8)
    message += struct.pack("<HHI", 0x7777, 3, 0) + b"abc"
    contexts = parse_negotiate_contexts(bytes(message), 64, 2)
    assert contexts == (
        CompressionCapabilities(flags=1, algorithms=(2, 5)),
        UnknownNegotiateContext(context_type=0x7777, data_length=3),
    )


def test_context_whose_count_overruns_its_data() -> None:
    message = bytes(64) + struct.pack("<HHI", 2, 2, 0) + struct.pack("<H", 9)  # 9 ciphers, 0 bytes of them
    result = parse_negotiate_contexts(message, 64, 1)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_CONTEXT_MALFORMED


def test_contexts_ignored_without_311() -> None:
    broken = bytearray(REQUEST)
    # Drop 3.1.1 from the offered list: the context fields become ClientStartTime and are not parsed.
    broken[64 + 36 : 64 + 36 + 2] = struct.pack("<H", 0x0302)
    request = parse_negotiate_request(bytes(broken))
    assert isinstance(request, Smb2NegotiateRequest)
    assert request.contexts == ()
