"""SMB2 TREE_CONNECT request and response ([MS-SMB2] 2.2.9, 2.2.10)."""

from __future__ import annotations

import struct

from dissectors.records import Anomaly, AnomalyKind, Smb2TreeConnectRequest, Smb2TreeConnectResponse
from dissectors.text import utf16le

SMB2_HEADER_SIZE = 64
TREE_CONNECT_REQUEST_STRUCTURE_SIZE = 9
TREE_CONNECT_RESPONSE_STRUCTURE_SIZE = 16
_REQUEST = struct.Struct("<HHHH")
_RESPONSE = struct.Struct("<HBxIII")


def parse_request(message: bytes) -> Smb2TreeConnectRequest | Anomaly:
    """PathOffset/PathLength locate the share path, also when a 3.1.1 extension precedes it (2.2.9.1)."""
    if len(message) < SMB2_HEADER_SIZE + _REQUEST.size:
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, "request shorter than its fixed part")
    structure_size, flags, path_offset, path_length = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)
    if structure_size != TREE_CONNECT_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, f"request StructureSize {structure_size}")
    if path_length and (path_offset < SMB2_HEADER_SIZE or path_offset + path_length > len(message)):
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, f"path ({path_length} bytes at {path_offset}) outside")
    return Smb2TreeConnectRequest(flags, utf16le(message[path_offset : path_offset + path_length]))


def parse_response(message: bytes) -> Smb2TreeConnectResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _RESPONSE.size:
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, "response shorter than its fixed part")
    structure_size, share_type, share_flags, capabilities, maximal_access = _RESPONSE.unpack_from(
        message, SMB2_HEADER_SIZE
    )
    if structure_size != TREE_CONNECT_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, f"response StructureSize {structure_size}")
    return Smb2TreeConnectResponse(share_type, share_flags, capabilities, maximal_access)
