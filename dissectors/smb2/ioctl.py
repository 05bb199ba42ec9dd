"""SMB2 IOCTL request and response ([MS-SMB2] 2.2.31, 2.2.32).

An IOCTL is kept whole up to 128 KiB (`message.MAX_KEPT_MESSAGE`), so the input of a request
and the output of a response are there as sent; for FSCTL_PIPE_TRANSCEIVE they are the DCE/RPC
PDUs written to and read from the named pipe.
"""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import Anomaly, AnomalyKind, Smb2FileId, Smb2IoctlRequest, Smb2IoctlResponse
from dissectors.smb2.buffers import SMB2_HEADER_SIZE, buffer_problem

IOCTL_REQUEST_STRUCTURE_SIZE: Final = 57
IOCTL_RESPONSE_STRUCTURE_SIZE: Final = 49
_REQUEST: Final = struct.Struct("<HHIQQIIIIIIII")  # 56 bytes
_RESPONSE: Final = struct.Struct("<HHIQQIIIIII")  # 48 bytes
_REQUEST_FIXED_END: Final = SMB2_HEADER_SIZE + _REQUEST.size
_RESPONSE_FIXED_END: Final = SMB2_HEADER_SIZE + _RESPONSE.size


def parse_request(message: bytes, message_length: int) -> Smb2IoctlRequest | Anomaly:
    if len(message) < _REQUEST_FIXED_END:
        return Anomaly(AnomalyKind.IOCTL_MALFORMED, "request shorter than its fixed part")
    (structure_size, _reserved, ctl_code, persistent, volatile, input_offset, input_count, max_input_response,
     output_offset, output_count, max_output_response, flags, _reserved2) = _REQUEST.unpack_from(
        message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != IOCTL_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.IOCTL_MALFORMED, f"request StructureSize {structure_size}")
    for what, offset, count in (("input", input_offset, input_count), ("output", output_offset, output_count)):
        problem = buffer_problem(offset, count, _REQUEST_FIXED_END, message_length)
        if problem is not None:
            return Anomaly(AnomalyKind.IOCTL_MALFORMED, f"request {what}: {problem}")
    data = message[input_offset : input_offset + input_count] if input_count else b""
    file_id = Smb2FileId(persistent, volatile)
    return Smb2IoctlRequest(ctl_code, file_id, flags, input_count, max_input_response, max_output_response, data)


def parse_response(message: bytes, message_length: int) -> Smb2IoctlResponse | Anomaly:
    if len(message) < _RESPONSE_FIXED_END:
        return Anomaly(AnomalyKind.IOCTL_MALFORMED, "response shorter than its fixed part")
    (structure_size, _reserved, ctl_code, persistent, volatile, input_offset, input_count, output_offset,
     output_count, flags, _reserved2) = _RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != IOCTL_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.IOCTL_MALFORMED, f"response StructureSize {structure_size}")
    for what, offset, count in (("input", input_offset, input_count), ("output", output_offset, output_count)):
        problem = buffer_problem(offset, count, _RESPONSE_FIXED_END, message_length)
        if problem is not None:
            return Anomaly(AnomalyKind.IOCTL_MALFORMED, f"response {what}: {problem}")
    data = message[output_offset : output_offset + output_count] if output_count else b""
    file_id = Smb2FileId(persistent, volatile)
    return Smb2IoctlResponse(ctl_code, file_id, flags, input_count, output_count, data)
