"""SMB2 CREATE request and response ([MS-SMB2] 2.2.13, 2.2.14) with their create contexts' names."""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import Anomaly, AnomalyKind, Smb2CreateRequest, Smb2CreateResponse, Smb2FileId
from dissectors.smb2.buffers import SMB2_HEADER_SIZE, buffer_problem
from dissectors.text import utf16le

CREATE_REQUEST_STRUCTURE_SIZE: Final = 57
CREATE_RESPONSE_STRUCTURE_SIZE: Final = 89
# Create contexts named per message. Real clients send fewer than ten; the rest are counted.
MAX_CREATE_CONTEXTS: Final = 16
_REQUEST: Final = struct.Struct("<HBBIQQIIIIIHHII")  # 56 bytes
_RESPONSE: Final = struct.Struct("<HBBIQQQQQQIIQQII")  # 88 bytes
_CONTEXT: Final = struct.Struct("<IHHHHI")  # 2.2.13.2 SMB2_CREATE_CONTEXT, 16 bytes before its buffer
_REQUEST_FIXED_END: Final = SMB2_HEADER_SIZE + _REQUEST.size
_RESPONSE_FIXED_END: Final = SMB2_HEADER_SIZE + _RESPONSE.size
_TAG_LENGTH: Final = 4


def context_name(raw: bytes) -> str:
    """A context's Name: the 4 ASCII characters most are named with ("MxAc"), else hex (the
    16-byte GUID names such as SMB2_CREATE_APP_INSTANCE_ID)."""
    if len(raw) == _TAG_LENGTH and all(0x20 < byte < 0x7F for byte in raw):
        return raw.decode("ascii")
    return raw.hex()


def _context_names(
    message: bytes, message_length: int, offset: int, length: int, fixed_end: int
) -> tuple[tuple[str, ...], int, tuple[Anomaly, ...]]:
    """Names of the create contexts chained at `offset` (2.2.13.2: each `Next` bytes after the
    last, 0 ends the chain), how many the cap dropped, and what was odd about the chain."""
    if not length:
        return (), 0, ()
    problem = buffer_problem(offset, length, fixed_end, message_length)
    if problem is not None:
        return (), 0, (Anomaly(AnomalyKind.CREATE_MALFORMED, f"create contexts: {problem}"),)
    end = min(offset + length, len(message))  # contexts past the kept bytes are not looked at
    names: list[str] = []
    dropped = 0
    anomalies: list[Anomaly] = []
    position = offset
    while position + _CONTEXT.size <= end:
        next_offset, name_offset, name_length, _reserved, _data_offset, _data_length = _CONTEXT.unpack_from(
            message, position
        )
        name_start = position + name_offset
        if name_length == 0 or name_offset < _CONTEXT.size or name_start + name_length > end:
            detail = f"create context at {position}: name of {name_length} bytes at +{name_offset} outside it"
            anomalies.append(Anomaly(AnomalyKind.CREATE_MALFORMED, detail))
            break
        if len(names) < MAX_CREATE_CONTEXTS:
            names.append(context_name(message[name_start : name_start + name_length]))
        else:
            dropped += 1
        if not next_offset:
            break
        if next_offset < _CONTEXT.size or next_offset % 8:
            detail = f"create context at {position}: Next {next_offset}"
            anomalies.append(Anomaly(AnomalyKind.CREATE_MALFORMED, detail))
            break
        position += next_offset
    if dropped:
        detail = f"{dropped} create contexts past the {MAX_CREATE_CONTEXTS} named"
        anomalies.append(Anomaly(AnomalyKind.CREATE_CONTEXTS_FULL, detail))
    return tuple(names), dropped, tuple(anomalies)


def parse_request(message: bytes, message_length: int) -> Smb2CreateRequest | Anomaly:
    """The name is relative to the tree's share (no leading backslash); "" opens the share's root."""
    if len(message) < _REQUEST_FIXED_END:
        return Anomaly(AnomalyKind.CREATE_MALFORMED, "request shorter than its fixed part")
    (structure_size, _security_flags, oplock, impersonation, _smb_create_flags, _reserved, desired_access,
     file_attributes, share_access, disposition, options, name_offset, name_length, contexts_offset,
     contexts_length) = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != CREATE_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.CREATE_MALFORMED, f"request StructureSize {structure_size}")
    problem = buffer_problem(name_offset, name_length, _REQUEST_FIXED_END, message_length)
    if problem is not None:
        return Anomaly(AnomalyKind.CREATE_MALFORMED, f"name: {problem}")
    name = utf16le(message[name_offset : name_offset + name_length]) if name_length else ""
    names, dropped, anomalies = _context_names(
        message, message_length, contexts_offset, contexts_length, _REQUEST_FIXED_END
    )
    return Smb2CreateRequest(
        name,
        oplock,
        impersonation,
        desired_access,
        file_attributes,
        share_access,
        disposition,
        options,
        names,
        dropped,
        anomalies,
    )


def parse_response(message: bytes, message_length: int) -> Smb2CreateResponse | Anomaly:
    if len(message) < _RESPONSE_FIXED_END:
        return Anomaly(AnomalyKind.CREATE_MALFORMED, "response shorter than its fixed part")
    (structure_size, oplock, flags, action, _creation, _last_access, _last_write, _change, allocation_size,
     end_of_file, file_attributes, _reserved, persistent, volatile, contexts_offset,
     contexts_length) = _RESPONSE.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != CREATE_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.CREATE_MALFORMED, f"response StructureSize {structure_size}")
    names, dropped, anomalies = _context_names(
        message, message_length, contexts_offset, contexts_length, _RESPONSE_FIXED_END
    )
    return Smb2CreateResponse(
        oplock,
        flags,
        action,
        allocation_size,
        end_of_file,
        file_attributes,
        Smb2FileId(persistent, volatile),
        names,
        dropped,
        anomalies,
    )
