"""SMB_COM_READ_ANDX and SMB_COM_WRITE_ANDX requests and responses
([MS-CIFS] 2.2.4.42, 2.2.4.43; [MS-SMB] 2.2.4.2, 2.2.4.3: the high halves for large files and I/O).

These carry the bulk data of a file server, so smbwatch keeps only the first
BULK_MESSAGE_PREFIX bytes of a large one (dissectors/message.py): the fixed
words are always there, the data only in part. The records say how much data
was declared, keep what arrived, and tell whether that is all of it; a message
cut by smbwatch itself is never called malformed.
"""

from __future__ import annotations

import struct

from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1Header,
    Smb1ReadAndxRequest,
    Smb1ReadAndxResponse,
    Smb1WriteAndxRequest,
    Smb1WriteAndxResponse,
)
from dissectors.smb1.parameters import Smb1Block

# AndX (4 bytes), FID, Offset, MaxCountOfBytesToReturn, MinCountOfBytesToReturn, Timeout_or_MaxCountHigh,
# Remaining ([MS-CIFS] 2.2.4.42.1: WordCount 0x0A; 0x0C adds OffsetHigh).
_READ_REQUEST = struct.Struct("<4xHIHHIH")
# AndX, Available, DataCompactionMode, Reserved1, DataLength, DataOffset, DataLengthHigh ([MS-SMB] 2.2.4.2.2),
# Reserved2 ([MS-CIFS] 2.2.4.42.2: WordCount 0x0C).
_READ_RESPONSE = struct.Struct("<4xH4xHHH8x")
# AndX, FID, Offset, Timeout, WriteMode, Remaining, DataLengthHigh ([MS-SMB] 2.2.4.3.1), DataLength,
# DataOffset ([MS-CIFS] 2.2.4.43.1: WordCount 0x0C; 0x0E adds OffsetHigh).
_WRITE_REQUEST = struct.Struct("<4xHIIHHHHH")
# AndX, Count, Available, CountHigh ([MS-SMB] 2.2.4.3.2), Reserved ([MS-CIFS] 2.2.4.43.2: WordCount 0x06).
_WRITE_RESPONSE = struct.Struct("<4xHHHxx")
_OFFSET_HIGH = struct.Struct("<I")
# [MS-SMB] 2.2.4.2.1: a Timeout_or_MaxCountHigh of 0xFFFFFFFF is a timeout (a pipe read), not a count.
_NO_MAX_COUNT_HIGH = 0xFFFFFFFF


def parse_read_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1ReadAndxRequest | Anomaly:
    words = block.words
    if len(words) not in (_READ_REQUEST.size, _READ_REQUEST.size + 4):
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"READ_ANDX WordCount {len(words) // 2}, not 10 or 12")
    fid, offset, max_count, min_count, timeout, remaining = _READ_REQUEST.unpack_from(words)
    if len(words) > _READ_REQUEST.size:
        (offset_high,) = _OFFSET_HIGH.unpack_from(words, _READ_REQUEST.size)
        offset |= offset_high << 32
    if timeout != _NO_MAX_COUNT_HIGH:
        max_count |= (timeout & 0xFFFF) << 16
    return Smb1ReadAndxRequest(fid, offset, max_count, min_count, remaining, timeout)


def parse_read_response(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1ReadAndxResponse | Anomaly | None:
    words = block.words
    if not words:
        return None  # an error response
    if len(words) != _READ_RESPONSE.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"READ_ANDX response WordCount {len(words) // 2}, not 12")
    available, length, data_offset, length_high = _READ_RESPONSE.unpack_from(words)
    length |= length_high << 16
    data = _data(message, block, data_offset, length, "READ_ANDX response")
    if isinstance(data, Anomaly):
        return data
    return Smb1ReadAndxResponse(available, length, data_offset, data, len(data) == length)


def parse_write_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1WriteAndxRequest | Anomaly:
    words = block.words
    if len(words) not in (_WRITE_REQUEST.size, _WRITE_REQUEST.size + 4):
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"WRITE_ANDX WordCount {len(words) // 2}, not 12 or 14")
    fid, offset, _timeout, write_mode, remaining, length_high, length, data_offset = _WRITE_REQUEST.unpack_from(words)
    if len(words) > _WRITE_REQUEST.size:
        (offset_high,) = _OFFSET_HIGH.unpack_from(words, _WRITE_REQUEST.size)
        offset |= offset_high << 32
    length |= length_high << 16
    data = _data(message, block, data_offset, length, "WRITE_ANDX")
    if isinstance(data, Anomaly):
        return data
    return Smb1WriteAndxRequest(fid, offset, write_mode, remaining, length, data_offset, data, len(data) == length)


def parse_write_response(
    message: bytes, block: Smb1Block, header: Smb1Header
) -> Smb1WriteAndxResponse | Anomaly | None:
    words = block.words
    if not words:
        return None
    if len(words) != _WRITE_RESPONSE.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"WRITE_ANDX response WordCount {len(words) // 2}, not 6")
    count, available, count_high = _WRITE_RESPONSE.unpack_from(words)
    return Smb1WriteAndxResponse(count | count_high << 16, available)


def _data(message: bytes, block: Smb1Block, data_offset: int, length: int, what: str) -> bytes | Anomaly:
    """The data bytes at DataOffset (from the SMB header) that the message holds.

    They must lie in the data bytes. A whole message must hold them all; one smbwatch cut may not.
    ByteCount is not checked against DataLength: past 64 KiB ([MS-SMB] CAP_LARGE_READX/WRITEX) it
    cannot say the length.
    """
    if not length:
        return b""
    if data_offset < block.data_offset:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"{what} DataOffset {data_offset} inside the parameter words")
    end = data_offset + length
    if end > len(message) and not block.cut:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"{what} data of {length} bytes at {data_offset} past the message")
    return message[data_offset:end]
