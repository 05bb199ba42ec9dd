"""SMB2 SET_INFO request and response ([MS-SMB2] 2.2.39, 2.2.40).

Of the information a client sets, renames and deletes tell what happened to a file:
FileRenameInformation ([MS-FSCC] 2.4.42.2), FileDispositionInformation (2.4.11) and
FileDispositionInformationEx (2.4.12) are decoded; any other class is kept by its number.
"""

from __future__ import annotations

import struct
from typing import Final

from dissectors.constants import FileInformationClass, Smb2InfoType
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    FileDispositionInformation,
    FileDispositionInformationEx,
    FileRenameInformation,
    SetInfoBuffer,
    Smb2FileId,
    Smb2SetInfoRequest,
    Smb2SetInfoResponse,
)
from dissectors.smb2.buffers import SMB2_HEADER_SIZE, buffer_problem
from dissectors.text import utf16le

SET_INFO_REQUEST_STRUCTURE_SIZE: Final = 33
SET_INFO_RESPONSE_STRUCTURE_SIZE: Final = 2
_REQUEST: Final = struct.Struct("<HBBIHHIQQ")  # 32 bytes
_REQUEST_FIXED_END: Final = SMB2_HEADER_SIZE + _REQUEST.size
_RENAME: Final = struct.Struct("<B7xQI")  # ReplaceIfExists, Reserved, RootDirectory, FileNameLength
_DISPOSITION_EX: Final = struct.Struct("<I")
_INFO_FILE: Final = int(Smb2InfoType.SMB2_0_INFO_FILE)
_RENAME_CLASS: Final = int(FileInformationClass.FileRenameInformation)
_DISPOSITION_CLASS: Final = int(FileInformationClass.FileDispositionInformation)
_DISPOSITION_EX_CLASS: Final = int(FileInformationClass.FileDispositionInformationEx)


def _decode(file_info_class: int, buffer: bytes) -> SetInfoBuffer | Anomaly | None:
    if file_info_class == _RENAME_CLASS:
        if len(buffer) < _RENAME.size:
            return Anomaly(AnomalyKind.SET_INFO_MALFORMED, f"FileRenameInformation of {len(buffer)} bytes")
        replace, root_directory, name_length = _RENAME.unpack_from(buffer)
        if _RENAME.size + name_length > len(buffer):
            detail = f"FileRenameInformation: FileNameLength {name_length} past its {len(buffer)}-byte buffer"
            return Anomaly(AnomalyKind.SET_INFO_MALFORMED, detail)
        return FileRenameInformation(
            bool(replace), root_directory, utf16le(buffer[_RENAME.size : _RENAME.size + name_length])
        )
    if file_info_class == _DISPOSITION_CLASS:
        if not buffer:
            return Anomaly(AnomalyKind.SET_INFO_MALFORMED, "FileDispositionInformation of 0 bytes")
        return FileDispositionInformation(bool(buffer[0]))
    if file_info_class == _DISPOSITION_EX_CLASS:
        if len(buffer) < _DISPOSITION_EX.size:
            return Anomaly(AnomalyKind.SET_INFO_MALFORMED, f"FileDispositionInformationEx of {len(buffer)} bytes")
        return FileDispositionInformationEx(_DISPOSITION_EX.unpack_from(buffer)[0])
    return None


def parse_request(message: bytes, message_length: int) -> Smb2SetInfoRequest | Anomaly:
    if len(message) < _REQUEST_FIXED_END:
        return Anomaly(AnomalyKind.SET_INFO_MALFORMED, "request shorter than its fixed part")
    (structure_size, info_type, file_info_class, buffer_length, buffer_offset, _reserved, additional,
     persistent, volatile) = _REQUEST.unpack_from(message, SMB2_HEADER_SIZE)  # fmt: skip
    if structure_size != SET_INFO_REQUEST_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.SET_INFO_MALFORMED, f"request StructureSize {structure_size}")
    problem = buffer_problem(buffer_offset, buffer_length, _REQUEST_FIXED_END, message_length)
    if problem is not None:
        return Anomaly(AnomalyKind.SET_INFO_MALFORMED, f"buffer: {problem}")
    decoded: SetInfoBuffer | None = None
    if info_type == _INFO_FILE:
        buffer = _decode(file_info_class, message[buffer_offset : buffer_offset + buffer_length])
        if isinstance(buffer, Anomaly):
            return buffer
        decoded = buffer
    file_id = Smb2FileId(persistent, volatile)
    return Smb2SetInfoRequest(info_type, file_info_class, buffer_length, additional, file_id, decoded)


def parse_response(message: bytes, message_length: int) -> Smb2SetInfoResponse | Anomaly:
    if len(message) < SMB2_HEADER_SIZE + 2:
        return Anomaly(AnomalyKind.SET_INFO_MALFORMED, "response shorter than its fixed part")
    structure_size = message[SMB2_HEADER_SIZE] | message[SMB2_HEADER_SIZE + 1] << 8
    if structure_size != SET_INFO_RESPONSE_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.SET_INFO_MALFORMED, f"response StructureSize {structure_size}")
    return Smb2SetInfoResponse()
