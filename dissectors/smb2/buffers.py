"""Pieces the SMB2 file and pipe commands share: the FileId and the offset/length buffers.

A command's variable part is located by an offset from the start of the SMB2 header and a
length ([MS-SMB2] 2.2.13, 2.2.19 - 2.2.33, 2.2.39). Two lengths matter: the message as sent
(`message_length`) and the bytes of it smbwatch kept (`len(message)`): READ/WRITE keep only
their first 256 bytes, everything else the first 128 KiB (`dissectors/message.py`). A buffer
that ends past the message is malformed; one that ends past the kept bytes is only cut.
"""

from __future__ import annotations

import struct
from typing import Final

from dissectors.records import Smb2FileId

SMB2_HEADER_SIZE: Final = 64
_FILE_ID: Final = struct.Struct("<QQ")


def file_id_at(message: bytes, offset: int) -> Smb2FileId:
    """[MS-SMB2] 2.2.14.1 SMB2_FILEID at `offset` (the caller checked the 16 bytes are there)."""
    persistent, volatile = _FILE_ID.unpack_from(message, offset)
    return Smb2FileId(persistent, volatile)


def buffer_problem(offset: int, length: int, fixed_end: int, message_length: int) -> str | None:
    """Why a buffer of `length` bytes at `offset` cannot be where it says, or None.

    `fixed_end` is where the command's fixed part ends (the header plus StructureSize & ~1):
    a buffer never overlaps the fixed part. An empty buffer's offset is not looked at
    (clients leave it zero or pointing at the end of the fixed part).
    """
    if not length:
        return None
    if offset < fixed_end:
        return f"{length} bytes at {offset}, inside the fixed part (ends at {fixed_end})"
    if offset + length > message_length:
        return f"{length} bytes at {offset}, past the end of the {message_length}-byte message"
    return None
