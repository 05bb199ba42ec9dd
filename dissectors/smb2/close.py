"""SMB2 CLOSE request and response ([MS-SMB2] 2.2.15, 2.2.16)."""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import Anomaly, AnomalyKind, Smb2CloseRequest, Smb2CloseResponse, Smb2FileId
from dissectors.smb2.buffers import SMB2_HEADER_SIZE

CLOSE_REQUEST_STRUCTURE_SIZE: Final = 24
CLOSE_RESPONSE_STRUCTURE_SIZE: Final = 60
_REQUEST: Final = struct.Struct("<HHIQQ")
_RESPONSE: Final = struct.Struct("<HHIQQQQQQI")


def parse_request(message: bytes, message_length: int) -> Smb2CloseRequest | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _REQUEST.size:
        return Anomaly(AnomalyKind.CLOSE_MALFORMED, "request shorter than its fixed part")
    structure_size, flags, _reserved, persistent, volatile = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)
    if structure_size != CLOSE_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.CLOSE_MALFORMED, f"request StructureSize {structure_size}")
    return Smb2CloseRequest(flags, Smb2FileId(persistent, volatile))


def parse_response(message: bytes, message_length: int) -> Smb2CloseResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _RESPONSE.size:
        return Anomaly(AnomalyKind.CLOSE_MALFORMED, "response shorter than its fixed part")
    (structure_size, flags, _reserved, _creation, _last_access, _last_write, _change, allocation_size,
     end_of_file, file_attributes) = _RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != CLOSE_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.CLOSE_MALFORMED, f"response StructureSize {structure_size}")
    return Smb2CloseResponse(flags, allocation_size, end_of_file, file_attributes)
