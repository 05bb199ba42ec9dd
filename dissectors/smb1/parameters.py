"""SMB1 parameter blocks ([MS-CIFS] 2.2.3.2, 2.2.3.3) and the strings in their data bytes."""

from __future__ import annotations

from typing import NamedTuple

from dissectors.records import Anomaly, AnomalyKind
from dissectors.text import oem, utf16le

SMB1_HEADER_SIZE = 32


class Smb1Block(NamedTuple):
    """One command's parameter block ([MS-CIFS] 2.2.3.2, 2.2.3.3): its words and bytes, and where the
    bytes start in the message (Unicode strings align on that offset)."""

    words: bytes
    data: bytes
    data_offset: int
    # True when smbwatch kept only the first bytes of the message (a READ/WRITE, dissectors/message.py):
    # `data` then holds the ByteCount bytes that were kept, possibly fewer than ByteCount says.
    cut: bool = False


def split_parameters(
    message: bytes, offset: int = SMB1_HEADER_SIZE, cut: bool = False, words_size: int | None = None
) -> Smb1Block | Anomaly:
    """The parameter words and data bytes of the block whose WordCount is at `offset`.

    With `cut` (the message was cut by smbwatch's own cap), data bytes missing past the end of
    `message` are no anomaly. `words_size` overrides the size WordCount gives (see
    `nt_create_response_words_size`).
    """
    if len(message) < offset + 1:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, "no WordCount")
    word_count = message[offset]
    words_end = offset + 1 + (2 * word_count if words_size is None else words_size)
    if len(message) < words_end + 2:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"WordCount {word_count} runs past the message")
    byte_count = int.from_bytes(message[words_end : words_end + 2], "little")
    data = message[words_end + 2 : words_end + 2 + byte_count]
    if len(data) < byte_count and not cut:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"ByteCount {byte_count} runs past the message")
    return Smb1Block(message[offset + 1 : words_end], data, words_end + 2, cut)


# [MS-SMB] 2.2.4.9.2: the extended NT_CREATE_ANDX response says WordCount 42 but Windows sends 50 words
# (100 bytes: VolumeGUID, FileId, MaximalAccessRights, GuestMaximalAccessRights), ByteCount after them.
NT_CREATE_EXTENDED_WORD_COUNT = 42
NT_CREATE_EXTENDED_WORDS_SIZE = 100


def nt_create_response_words_size(message: bytes, offset: int) -> int | None:
    """The real size of an extended NT_CREATE_ANDX response's words, or None to trust WordCount.

    The 50-word layout is taken when its ByteCount ends the message (or meets the AndXOffset of a
    chained command) and the 42-word one's does not.
    """
    if len(message) <= offset or message[offset] != NT_CREATE_EXTENDED_WORD_COUNT:
        return None

    def fits(size: int) -> bool:
        end = offset + 1 + size
        if len(message) < end + 2:
            return False
        block_end = end + 2 + int.from_bytes(message[end : end + 2], "little")
        andx_command = message[offset + 1]
        andx_offset = int.from_bytes(message[offset + 3 : offset + 5], "little")
        if andx_command != 0xFF:
            return block_end == andx_offset
        return block_end == len(message)

    if fits(2 * NT_CREATE_EXTENDED_WORD_COUNT) or not fits(NT_CREATE_EXTENDED_WORDS_SIZE):
        return None
    return NT_CREATE_EXTENDED_WORDS_SIZE


def read_string(block: Smb1Block, position: int, unicode: bool) -> tuple[str, int]:
    """The NUL-terminated string at `position` (an offset into block.data) and the offset after it.

    Unicode strings begin on an even offset from the SMB header ([MS-CIFS] 2.2.3.3), so a pad
    byte may come first. A string the sender left out (data already ended) is empty.
    """
    data = block.data
    if unicode:
        if (block.data_offset + position) % 2:
            position += 1
        end = position
        while end + 1 < len(data) and data[end : end + 2] != b"\x00\x00":
            end += 2
        return utf16le(data[position : min(end, len(data))]), end + 2
    end = data.find(b"\x00", position)
    if end < 0:
        end = len(data)
    return oem(data[position:end]), end + 1


def read_buffer_format_string(block: Smb1Block, position: int, unicode: bool) -> tuple[str, int] | None:
    """An SMB_STRING behind its 0x04 BufferFormat byte ([MS-CIFS] 2.2.1.1.1), or None if the byte at
    `position` is not 0x04 (or the data ended)."""
    if position >= len(block.data) or block.data[position] != 0x04:
        return None
    return read_string(block, position + 1, unicode)


def read_strings(block: Smb1Block, position: int, count: int, unicode: bool) -> list[str]:
    """`count` consecutive strings from `position`; missing ones are empty."""
    strings = []
    for _ in range(count):
        text, position = read_string(block, position, unicode)
        strings.append(text)
    return strings
