"""SMB2 QUERY_DIRECTORY request ([MS-SMB2] 2.2.33): which directory is listed, and with what pattern."""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import Anomaly, AnomalyKind, Smb2FileId, Smb2QueryDirectoryRequest
from dissectors.smb2.buffers import SMB2_HEADER_SIZE, buffer_problem
from dissectors.text import utf16le

QUERY_DIRECTORY_REQUEST_STRUCTURE_SIZE: Final = 33
_REQUEST: Final = struct.Struct("<HBBIQQHHI")  # 32 bytes
_REQUEST_FIXED_END: Final = SMB2_HEADER_SIZE + _REQUEST.size


def parse_request(message: bytes, message_length: int) -> Smb2QueryDirectoryRequest | Anomaly:
    if len(message) < _REQUEST_FIXED_END:
        return Anomaly(AnomalyKind.QUERY_DIRECTORY_MALFORMED, "request shorter than its fixed part")
    (structure_size, info_class, flags, file_index, persistent, volatile, name_offset, name_length,
     output_buffer_length) = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != QUERY_DIRECTORY_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.QUERY_DIRECTORY_MALFORMED, f"request StructureSize {structure_size}")
    problem = buffer_problem(name_offset, name_length, _REQUEST_FIXED_END, message_length)
    if problem is not None:
        return Anomaly(AnomalyKind.QUERY_DIRECTORY_MALFORMED, f"pattern: {problem}")
    pattern = utf16le(message[name_offset : name_offset + name_length]) if name_length else ""
    file_id = Smb2FileId(persistent, volatile)
    return Smb2QueryDirectoryRequest(info_class, flags, file_index, file_id, pattern, output_buffer_length)
