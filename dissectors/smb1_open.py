"""SMB_COM_NT_CREATE_ANDX and SMB_COM_OPEN_ANDX requests ([MS-CIFS] 2.2.4.64.1, 2.2.4.41.1).

The name a client opens tells what a connection is used for: a named pipe on
IPC$ (``\\srvsvc``, ``\\spoolss``, ``\\lsarpc``), a file on a disk share. Only the
name and the access fields are read.
"""

from __future__ import annotations

import struct

from dissectors.constants import Smb1Flags2
from dissectors.records import Anomaly, AnomalyKind, Smb1Header, Smb1OpenRequest
from dissectors.smb1_parameters import Smb1Block, read_string

# AndXCommand, AndXReserved, AndXOffset, Reserved, NameLength, Flags, RootDirectoryFID, DesiredAccess,
# AllocationSize, ExtFileAttributes, ShareAccess, CreateDisposition, CreateOptions, ImpersonationLevel,
# SecurityFlags ([MS-CIFS] 2.2.4.64.1: WordCount 0x18).
_NT_CREATE_WORDS = struct.Struct("<BBHxHIIIQIIIIIB")
# AndXCommand, AndXReserved, AndXOffset, Flags, AccessMode, SearchAttrs, FileAttrs, CreationTime, OpenMode,
# AllocationSize, Timeout, Reserved ([MS-CIFS] 2.2.4.41.1: WordCount 0x0F).
_OPEN_ANDX_WORDS_SIZE = 30
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def parse_nt_create_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1OpenRequest | Anomaly:
    words = block.words
    if len(words) != _NT_CREATE_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"NT_CREATE_ANDX WordCount {len(words) // 2}, not 24")
    fields = _NT_CREATE_WORDS.unpack(words)
    desired_access, disposition, options = fields[7], fields[11], fields[12]
    name, _ = read_string(block, 0, bool(header.flags2 & _UNICODE))
    return Smb1OpenRequest(name, desired_access, disposition, options)


def parse_open_andx_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1OpenRequest | Anomaly:
    if len(block.words) != _OPEN_ANDX_WORDS_SIZE:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"OPEN_ANDX WordCount {len(block.words) // 2}, not 15")
    name, _ = read_string(block, 0, bool(header.flags2 & _UNICODE))
    return Smb1OpenRequest(name)
