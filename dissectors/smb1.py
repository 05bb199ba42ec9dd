"""SMB1 header and the commands smbwatch decodes ([MS-CIFS], [MS-SMB]).

Every function takes one whole SMB1 message (from the 0xFF 'SMB' protocol id on)
and returns a record or an `Anomaly`; none raises on network data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from dissectors.constants import Smb1Capabilities, Smb1Command
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1Body,
    Smb1Header,
    Smb1Message,
    Smb1NegotiateRequest,
    Smb1NegotiateResponse,
    StreamEvent,
)
from dissectors.text import oem

SMB1_HEADER_SIZE = 32
_HEADER = struct.Struct("<4sBIBHH8xxxHHHH")
# [MS-CIFS] 2.2.4.52.2, NT LM 0.12 form (WordCount 17).
_NEGOTIATE_RESPONSE_NT = struct.Struct("<HBHHIIIIQhB")
# [MS-CIFS] 2.2.4.52.2, LANMAN form (WordCount 13): DialectIndex, SecurityMode, MaxBufferSize, MaxMpxCount.
_NEGOTIATE_RESPONSE_LANMAN = struct.Struct("<HHHH")
SMB1_DIALECT_BUFFER_FORMAT = 0x02  # [MS-CIFS] 2.2.4.52.1 BufferFormat of each dialect string
_SERVER_GUID_SIZE = 16


def parse_header(message: bytes) -> Smb1Header | Anomaly:
    """[MS-CIFS] 2.2.3.1 SMB_Header."""
    if len(message) < SMB1_HEADER_SIZE:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"header needs 32 bytes, has {len(message)}")
    (_, command, status, flags, flags2, pid_high, tid, pid_low, uid, mid) = _HEADER.unpack_from(message)
    return Smb1Header(
        command=command,
        status=status,
        flags=flags,
        flags2=flags2,
        tid=tid,
        pid=pid_high << 16 | pid_low,
        uid=uid,
        mid=mid,
    )


def split_parameters(message: bytes) -> tuple[bytes, bytes] | Anomaly:
    """[MS-CIFS] 2.2.3.2 and 2.2.3.3: the parameter words and the data bytes after the header."""
    if len(message) < SMB1_HEADER_SIZE + 1:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, "no WordCount")
    word_count = message[SMB1_HEADER_SIZE]
    words_end = SMB1_HEADER_SIZE + 1 + 2 * word_count
    if len(message) < words_end + 2:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"WordCount {word_count} runs past the message")
    byte_count = int.from_bytes(message[words_end : words_end + 2], "little")
    data = message[words_end + 2 : words_end + 2 + byte_count]
    if len(data) < byte_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"ByteCount {byte_count} runs past the message")
    return message[SMB1_HEADER_SIZE + 1 : words_end], data


def parse_negotiate_request(message: bytes) -> Smb1NegotiateRequest | Anomaly:
    """[MS-CIFS] 2.2.4.52.1: a list of 0x02-prefixed, NUL-terminated OEM dialect strings."""
    parts = split_parameters(message)
    if isinstance(parts, Anomaly):
        return parts
    words, data = parts
    if words:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, f"request WordCount {len(words) // 2}")
    dialects: list[str] = []
    position = 0
    while position < len(data):
        if data[position] != SMB1_DIALECT_BUFFER_FORMAT:
            return Anomaly(
                AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS,
                f"BufferFormat 0x{data[position]:02x} at dialect {len(dialects)}",
            )
        end = data.find(b"\x00", position + 1)
        if end < 0:
            return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS, "dialect string not terminated")
        dialects.append(oem(data[position + 1 : end]))
        position = end + 1
    if not dialects:
        return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS, "no dialects offered")
    return Smb1NegotiateRequest(dialects=tuple(dialects))


def parse_negotiate_response(message: bytes) -> Smb1NegotiateResponse | Anomaly | None:
    """[MS-CIFS] 2.2.4.52.2 / [MS-SMB] 2.2.4.5.2; None for an error reply without parameters."""
    parts = split_parameters(message)
    if isinstance(parts, Anomaly):
        return parts
    words, data = parts
    word_count = len(words) // 2
    if word_count == 0:
        return None
    if word_count == 17:
        (
            index,
            security_mode,
            max_mpx,
            _vcs,
            max_buffer,
            _raw,
            _key,
            capabilities,
            system_time,
            _tz,
            _challenge_length,
        ) = _NEGOTIATE_RESPONSE_NT.unpack_from(words)
        server_guid = blob_length = None
        if capabilities & Smb1Capabilities.CAP_EXTENDED_SECURITY and len(data) >= _SERVER_GUID_SIZE:
            server_guid = bytes(data[:_SERVER_GUID_SIZE])
            blob_length = len(data) - _SERVER_GUID_SIZE
        return Smb1NegotiateResponse(
            word_count=17,
            dialect_index=index,
            security_mode=security_mode,
            max_mpx_count=max_mpx,
            max_buffer_size=max_buffer,
            capabilities=capabilities,
            system_time=system_time,
            server_guid=server_guid,
            security_blob_length=blob_length,
        )
    if word_count == 13:
        index, security_mode, max_buffer, max_mpx = _NEGOTIATE_RESPONSE_LANMAN.unpack_from(words)
        return Smb1NegotiateResponse(
            word_count=13,
            dialect_index=index,
            security_mode=security_mode,
            max_mpx_count=max_mpx,
            max_buffer_size=max_buffer,
        )
    if word_count == 1:
        return Smb1NegotiateResponse(word_count=1, dialect_index=int.from_bytes(words, "little"))
    return Anomaly(AnomalyKind.NEGOTIATE_MALFORMED, f"response WordCount {word_count}")


_REQUEST_PARSERS: dict[int, Callable[[bytes], Smb1Body | Anomaly | None]] = {
    Smb1Command.SMB_COM_NEGOTIATE: parse_negotiate_request,
}
_RESPONSE_PARSERS: dict[int, Callable[[bytes], Smb1Body | Anomaly | None]] = {
    Smb1Command.SMB_COM_NEGOTIATE: parse_negotiate_response,
}


def parse_message(message: bytes) -> list[StreamEvent]:
    """One SMB1 message: its header and, for the commands smbwatch decodes, its body.

    A malformed body still yields the message (with body None) so it is counted,
    followed by the anomaly.
    """
    header = parse_header(message)
    if isinstance(header, Anomaly):
        return [header]
    parsers = _RESPONSE_PARSERS if header.is_response else _REQUEST_PARSERS
    parser = parsers.get(header.command)
    if parser is None:
        return [Smb1Message(header, None)]
    body = parser(message)
    if isinstance(body, Anomaly):
        return [Smb1Message(header, None), body]
    return [Smb1Message(header, body)]
