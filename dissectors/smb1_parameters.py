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


def split_parameters(message: bytes, offset: int = SMB1_HEADER_SIZE) -> Smb1Block | Anomaly:
    """The parameter words and data bytes of the block whose WordCount is at `offset`."""
    if len(message) < offset + 1:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, "no WordCount")
    word_count = message[offset]
    words_end = offset + 1 + 2 * word_count
    if len(message) < words_end + 2:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"WordCount {word_count} runs past the message")
    byte_count = int.from_bytes(message[words_end : words_end + 2], "little")
    data = message[words_end + 2 : words_end + 2 + byte_count]
    if len(data) < byte_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"ByteCount {byte_count} runs past the message")
    return Smb1Block(message[offset + 1 : words_end], data, words_end + 2)


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


def read_strings(block: Smb1Block, position: int, count: int, unicode: bool) -> list[str]:
    """`count` consecutive strings from `position`; missing ones are empty."""
    strings = []
    for _ in range(count):
        text, position = read_string(block, position, unicode)
        strings.append(text)
    return strings
