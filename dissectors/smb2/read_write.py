"""SMB2 READ and WRITE requests and responses ([MS-SMB2] 2.2.19 - 2.2.22).

Every message of a bulk transfer passes here, so each is one `unpack_from` and one slice.
A READ response or WRITE request larger than 256 bytes reaches the dissector as its first
256 bytes only (`message.BULK_MESSAGE_PREFIX`): its `data` is then the start of the data and
`data_complete` is False; only data said to go on past the message as sent is malformed.
"""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb2FileId,
    Smb2ReadRequest,
    Smb2ReadResponse,
    Smb2WriteRequest,
    Smb2WriteResponse,
)
from dissectors.smb2.buffers import SMB2_HEADER_SIZE, buffer_problem

READ_REQUEST_STRUCTURE_SIZE: Final = 49
READ_RESPONSE_STRUCTURE_SIZE: Final = 17
WRITE_REQUEST_STRUCTURE_SIZE: Final = 49
WRITE_RESPONSE_STRUCTURE_SIZE: Final = 17
_READ_REQUEST: Final = struct.Struct("<HBBIQQQIII")  # up to RemainingBytes: 44 bytes
_READ_RESPONSE: Final = struct.Struct("<HBxII")  # up to DataRemaining: 12 bytes
_WRITE_REQUEST: Final = struct.Struct("<HHIQQQIIHHI")  # 48 bytes
_WRITE_RESPONSE: Final = struct.Struct("<HxxII")  # up to Remaining: 12 bytes
# Where the data may start: after the fixed part (StructureSize without its buffer byte).
_READ_DATA_START: Final = SMB2_HEADER_SIZE + READ_RESPONSE_STRUCTURE_SIZE - 1
_WRITE_DATA_START: Final = SMB2_HEADER_SIZE + WRITE_REQUEST_STRUCTURE_SIZE - 1


def parse_read_request(message: bytes, message_length: int) -> Smb2ReadRequest | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _READ_REQUEST.size:
        return Anomaly(AnomalyKind.READ_MALFORMED, "request shorter than its fixed part")
    (structure_size, _padding, flags, length, offset, persistent, volatile, minimum_count, channel,
     remaining) = _READ_REQUEST.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != READ_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.READ_MALFORMED, f"request StructureSize {structure_size}")
    return Smb2ReadRequest(flags, length, offset, Smb2FileId(persistent, volatile), minimum_count, channel, remaining)


def parse_read_response(message: bytes, message_length: int) -> Smb2ReadResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _READ_RESPONSE.size:
        return Anomaly(AnomalyKind.READ_MALFORMED, "response shorter than its fixed part")
    structure_size, data_offset, data_length, data_remaining = _READ_RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)
    if structure_size != READ_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.READ_MALFORMED, f"response StructureSize {structure_size}")
    problem = buffer_problem(data_offset, data_length, _READ_DATA_START, message_length)
    if problem is not None:
        return Anomaly(AnomalyKind.READ_MALFORMED, f"data: {problem}")
    data = message[data_offset : data_offset + data_length] if data_length else b""
    return Smb2ReadResponse(data_offset, data_length, data_remaining, data)


def parse_write_request(message: bytes, message_length: int) -> Smb2WriteRequest | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _WRITE_REQUEST.size:
        return Anomaly(AnomalyKind.WRITE_MALFORMED, "request shorter than its fixed part")
    (structure_size, data_offset, data_length, offset, persistent, volatile, channel, remaining,
     _channel_info_offset, _channel_info_length, flags) = _WRITE_REQUEST.unpack_from(
        message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != WRITE_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.WRITE_MALFORMED, f"request StructureSize {structure_size}")
    problem = buffer_problem(data_offset, data_length, _WRITE_DATA_START, message_length)
    if problem is not None:
        return Anomaly(AnomalyKind.WRITE_MALFORMED, f"data: {problem}")
    data = message[data_offset : data_offset + data_length] if data_length else b""
    return Smb2WriteRequest(
        data_offset, data_length, offset, Smb2FileId(persistent, volatile), channel, remaining, flags, data
    )


def parse_write_response(message: bytes, message_length: int) -> Smb2WriteResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + _WRITE_RESPONSE.size:
        return Anomaly(AnomalyKind.WRITE_MALFORMED, "response shorter than its fixed part")
    structure_size, count, remaining = _WRITE_RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)
    if structure_size != WRITE_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.WRITE_MALFORMED, f"response StructureSize {structure_size}")
    return Smb2WriteResponse(count, remaining)
