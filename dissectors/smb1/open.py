"""SMB_COM_NT_CREATE_ANDX and SMB_COM_OPEN_ANDX requests and responses
([MS-CIFS] 2.2.4.64, 2.2.4.41; [MS-SMB] 2.2.4.9.2, 2.2.4.1.2).

The name a client opens tells what a connection is used for: a named pipe on
IPC$ (``\\srvsvc``, ``\\spoolss``, ``\\lsarpc``), a file on a disk share. The
response gives the FID every later READ, WRITE, CLOSE and pipe transaction
names, and what the server did (opened, created, overwrote).
"""

from __future__ import annotations

import struct

from dissectors.constants import Smb1Flags2
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1Header,
    Smb1NtCreateResponse,
    Smb1OpenAndxResponse,
    Smb1OpenRequest,
)
from dissectors.smb1.parameters import NT_CREATE_EXTENDED_WORDS_SIZE, Smb1Block, read_string

# AndXCommand, AndXReserved, AndXOffset, Reserved, NameLength, Flags, RootDirectoryFID, DesiredAccess,
# AllocationSize, ExtFileAttributes, ShareAccess, CreateDisposition, CreateOptions, ImpersonationLevel,
# SecurityFlags ([MS-CIFS] 2.2.4.64.1: WordCount 0x18).
_NT_CREATE_WORDS = struct.Struct("<BBHxHIIIQIIIIIB")
# AndXCommand, AndXReserved, AndXOffset, OpLockLevel, FID, CreateDisposition, CreateTime, LastAccessTime,
# LastWriteTime, LastChangeTime, ExtFileAttributes, AllocationSize, EndOfFile, ResourceType, NMPipeStatus,
# Directory ([MS-CIFS] 2.2.4.64.2: WordCount 0x22).
_NT_CREATE_RESPONSE_WORDS = struct.Struct("<BBHBHIQQQQIQQHHB")
# [MS-SMB] 2.2.4.9.2 after those: VolumeGUID, FileId, MaximalAccessRights, GuestMaximalAccessRights.
_NT_CREATE_EXTENSION = struct.Struct("<16sQII")
# AndXCommand, AndXReserved, AndXOffset, Flags, AccessMode, SearchAttrs, FileAttrs, CreationTime, OpenMode,
# AllocationSize, Timeout, Reserved ([MS-CIFS] 2.2.4.41.1: WordCount 0x0F).
_OPEN_ANDX_WORDS = struct.Struct("<BBHHHHHIHII4x")
# AndXCommand, AndXReserved, AndXOffset, FID, FileAttrs, LastWriteTime, FileDataSize, AccessRights,
# ResourceType, NMPipeStatus, OpenResults, Reserved ([MS-CIFS] 2.2.4.41.2: WordCount 0x0F; [MS-SMB]
# 2.2.4.1.2 adds four words after it: WordCount 0x13).
_OPEN_ANDX_RESPONSE_WORDS = struct.Struct("<BBHHHIIHHHH6x")
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def parse_nt_create_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1OpenRequest | Anomaly:
    words = block.words
    if len(words) != _NT_CREATE_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"NT_CREATE_ANDX WordCount {len(words) // 2}, not 24")
    (_, _, _, _name_length, flags, root_fid, desired_access, allocation_size, ext_attributes, share_access,
     disposition, options, _impersonation, _security_flags) = _NT_CREATE_WORDS.unpack(words)  # fmt: skip
    name, _ = read_string(block, 0, bool(header.flags2 & _UNICODE))
    return Smb1OpenRequest(
        name,
        desired_access,
        disposition,
        options,
        share_access=share_access,
        ext_file_attributes=ext_attributes,
        flags=flags,
        root_directory_fid=root_fid,
        allocation_size=allocation_size,
    )


def parse_nt_create_response(
    message: bytes, block: Smb1Block, header: Smb1Header
) -> Smb1NtCreateResponse | Anomaly | None:
    """WordCount 34, or 42 (extended: the block then holds 50 words, see smb1_parameters); None for
    an error response without parameters."""
    words = block.words
    if not words:
        return None
    if len(words) < _NT_CREATE_RESPONSE_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"NT_CREATE_ANDX response WordCount {len(words) // 2}")
    (_, _, _, oplock_level, fid, action, create_time, access_time, write_time, change_time, attributes,
     allocation_size, end_of_file, resource_type, pipe_status,
     directory) = _NT_CREATE_RESPONSE_WORDS.unpack_from(words)  # fmt: skip
    volume_guid = file_id = maximal_access = guest_access = None
    extended = len(words) > _NT_CREATE_RESPONSE_WORDS.size
    if len(words) >= NT_CREATE_EXTENDED_WORDS_SIZE:
        volume_guid, file_id, maximal_access, guest_access = _NT_CREATE_EXTENSION.unpack_from(
            words, _NT_CREATE_RESPONSE_WORDS.size
        )
    return Smb1NtCreateResponse(
        oplock_level,
        fid,
        action,
        create_time,
        access_time,
        write_time,
        change_time,
        attributes,
        allocation_size,
        end_of_file,
        resource_type,
        pipe_status,
        bool(directory),
        extended,
        volume_guid,
        file_id,
        maximal_access,
        guest_access,
    )


def parse_open_andx_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1OpenRequest | Anomaly:
    if len(block.words) != _OPEN_ANDX_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"OPEN_ANDX WordCount {len(block.words) // 2}, not 15")
    (_, _, _, flags, access_mode, _search_attributes, file_attributes, _creation_time, open_mode, allocation_size,
     _timeout) = _OPEN_ANDX_WORDS.unpack(block.words)  # fmt: skip
    name, _ = read_string(block, 0, bool(header.flags2 & _UNICODE))
    return Smb1OpenRequest(
        name,
        flags=flags,
        allocation_size=allocation_size,
        access_mode=access_mode,
        open_mode=open_mode,
        file_attributes=file_attributes,
    )


def parse_open_andx_response(
    message: bytes, block: Smb1Block, header: Smb1Header
) -> Smb1OpenAndxResponse | Anomaly | None:
    words = block.words
    if not words:
        return None
    if len(words) < _OPEN_ANDX_RESPONSE_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"OPEN_ANDX response WordCount {len(words) // 2}")
    (_, _, _, fid, attributes, write_time, size, access_rights, resource_type, pipe_status,
     open_results) = _OPEN_ANDX_RESPONSE_WORDS.unpack_from(words)  # fmt: skip
    return Smb1OpenAndxResponse(
        fid, attributes, write_time, size, access_rights, resource_type, pipe_status, open_results
    )
