"""SMB1 commands that close, delete, rename and make or remove directories by name
([MS-CIFS] 2.2.4.5 CLOSE, 2.2.4.7 DELETE, 2.2.4.8 RENAME, 2.2.4.66 NT_RENAME,
2.2.4.1 CREATE_DIRECTORY, 2.2.4.2 DELETE_DIRECTORY: requests; their responses carry no parameters).

Each name in the data bytes follows a 0x04 BufferFormat byte ([MS-CIFS] 2.2.1.1.1).
"""

from __future__ import annotations

import struct

from dissectors.constants import Smb1Flags2
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1CloseRequest,
    Smb1DeleteRequest,
    Smb1DirectoryRequest,
    Smb1Header,
    Smb1RenameRequest,
)
from dissectors.smb1.parameters import Smb1Block, read_buffer_format_string

_CLOSE_WORDS = struct.Struct("<HI")  # FID, LastTimeModified ([MS-CIFS] 2.2.4.5.1: WordCount 0x03)
_NT_RENAME_WORDS = struct.Struct("<HHI")  # SearchAttributes, InformationLevel, Reserved (2.2.4.66.1: 0x04)
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def parse_close_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1CloseRequest | Anomaly:
    if len(block.words) != _CLOSE_WORDS.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"CLOSE WordCount {len(block.words) // 2}, not 3")
    fid, last_time_modified = _CLOSE_WORDS.unpack(block.words)
    return Smb1CloseRequest(fid, last_time_modified)


def parse_delete_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1DeleteRequest | Anomaly:
    if len(block.words) != 2:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"DELETE WordCount {len(block.words) // 2}, not 1")
    name = read_buffer_format_string(block, 0, bool(header.flags2 & _UNICODE))
    if name is None:
        return _no_buffer_format(block, 0, "DELETE FileName")
    return Smb1DeleteRequest(int.from_bytes(block.words, "little"), name[0])


def parse_rename_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1RenameRequest | Anomaly:
    """SMB_COM_RENAME (WordCount 1) and SMB_COM_NT_RENAME (WordCount 4): two names."""
    words = block.words
    level = None
    if len(words) == _NT_RENAME_WORDS.size:
        search_attributes, level, _reserved = _NT_RENAME_WORDS.unpack(words)
    elif len(words) == 2:
        search_attributes = int.from_bytes(words, "little")
    else:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"RENAME WordCount {len(words) // 2}")
    unicode = bool(header.flags2 & _UNICODE)
    old = read_buffer_format_string(block, 0, unicode)
    if old is None:
        return _no_buffer_format(block, 0, "RENAME OldFileName")
    old_name, position = old
    new = read_buffer_format_string(block, position, unicode)
    if new is None:
        return _no_buffer_format(block, position, "RENAME NewFileName")
    return Smb1RenameRequest(search_attributes, old_name, new[0], level)


def parse_directory_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1DirectoryRequest | Anomaly:
    """CREATE_DIRECTORY and DELETE_DIRECTORY: WordCount 0, the name in the data."""
    if block.words:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"directory request WordCount {len(block.words) // 2}, not 0")
    name = read_buffer_format_string(block, 0, bool(header.flags2 & _UNICODE))
    if name is None:
        return _no_buffer_format(block, 0, "DirectoryName")
    return Smb1DirectoryRequest(name[0])


def _no_buffer_format(block: Smb1Block, position: int, what: str) -> Anomaly:
    if position >= len(block.data):
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"{what} missing")
    return Anomaly(AnomalyKind.SMB1_MALFORMED, f"{what} BufferFormat 0x{block.data[position]:02x}, not 0x04")
