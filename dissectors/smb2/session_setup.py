"""SMB2 SESSION_SETUP request and response ([MS-SMB2] 2.2.5, 2.2.6) with their security blobs."""

from __future__ import annotations

import struct

from dissectors.auth import spnego
from dissectors.records import Anomaly, AnomalyKind, Smb2SessionSetupRequest, Smb2SessionSetupResponse, SpnegoToken

SMB2_HEADER_SIZE = 64
SESSION_SETUP_REQUEST_STRUCTURE_SIZE = 25
SESSION_SETUP_RESPONSE_STRUCTURE_SIZE = 9
_REQUEST = struct.Struct("<HBBIIHHQ")
_RESPONSE = struct.Struct("<HHHH")


def _security_buffer(message: bytes, offset: int, length: int) -> SpnegoToken | Anomaly | None:
    """The blob at `offset` (from the SMB2 header) of `length` bytes, decoded."""
    if not length:
        return None
    if offset < SMB2_HEADER_SIZE or offset + length > len(message):
        return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"security buffer ({length} bytes at {offset}) outside")
    return spnego.parse_security_blob(message[offset : offset + length])


def parse_request(message: bytes) -> Smb2SessionSetupRequest | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _REQUEST.size:
        return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, "request shorter than its fixed part")
    (structure_size, flags, security_mode, capabilities, _channel, blob_offset, blob_length,
     previous_session) = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != SESSION_SETUP_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"request StructureSize {structure_size}")
    security = _security_buffer(message, blob_offset, blob_length)
    if isinstance(security, Anomaly):
        return security
    return Smb2SessionSetupRequest(flags, security_mode, capabilities, previous_session, security)


def parse_response(message: bytes) -> Smb2SessionSetupResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _RESPONSE.size:
        return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, "response shorter than its fixed part")
    structure_size, session_flags, blob_offset, blob_length = _RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)
    if structure_size != SESSION_SETUP_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"response StructureSize {structure_size}")
    security = _security_buffer(message, blob_offset, blob_length)
    if isinstance(security, Anomaly):
        return security
    return Smb2SessionSetupResponse(session_flags, security)
