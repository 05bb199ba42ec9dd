"""SMB1 header and the commands smbwatch decodes ([MS-CIFS], [MS-SMB]).

Every function takes one whole SMB1 message (from the 0xFF 'SMB' protocol id on)
and returns a record or an `Anomaly`; none raises on network data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from dissectors.auth import spnego
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
from dissectors.smb1 import echo as smb1_echo
from dissectors.smb1 import file as smb1_file
from dissectors.smb1 import open as smb1_open
from dissectors.smb1 import read_write as smb1_read_write
from dissectors.smb1 import session_setup as smb1_session_setup
from dissectors.smb1 import transaction as smb1_transaction
from dissectors.smb1 import tree_connect as smb1_tree_connect
from dissectors.smb1.parameters import SMB1_HEADER_SIZE, Smb1Block, nt_create_response_words_size, split_parameters
from dissectors.text import oem

_HEADER: Final = struct.Struct("<4sBIBHH8xxxHHHH")
# [MS-CIFS] 2.2.4.52.2, NT LM 0.12 form (WordCount 17).
_NEGOTIATE_RESPONSE_NT: Final = struct.Struct("<HBHHIIIIQhB")
# [MS-CIFS] 2.2.4.52.2, LANMAN form (WordCount 13): DialectIndex, SecurityMode, MaxBufferSize, MaxMpxCount.
_NEGOTIATE_RESPONSE_LANMAN: Final = struct.Struct("<HHHH")
SMB1_DIALECT_BUFFER_FORMAT: Final = 0x02  # [MS-CIFS] 2.2.4.52.1 BufferFormat of each dialect string
_SERVER_GUID_SIZE: Final = 16
_SESSION_SETUP_ANDX: Final = int(Smb1Command.SMB_COM_SESSION_SETUP_ANDX)


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


def parse_negotiate_request(
    message: bytes, block: Smb1Block | None = None, header: Smb1Header | None = None
) -> Smb1NegotiateRequest | Anomaly:
    """[MS-CIFS] 2.2.4.52.1: a list of 0x02-prefixed, NUL-terminated OEM dialect strings."""
    parameters = block or split_parameters(message)
    if isinstance(parameters, Anomaly):
        return parameters
    words, data = parameters.words, parameters.data
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


def parse_negotiate_response(
    message: bytes, block: Smb1Block | None = None, header: Smb1Header | None = None
) -> Smb1NegotiateResponse | Anomaly | None:
    """[MS-CIFS] 2.2.4.52.2 / [MS-SMB] 2.2.4.5.2; None for an error reply without parameters."""
    parameters = block or split_parameters(message)
    if isinstance(parameters, Anomaly):
        return parameters
    words, data = parameters.words, parameters.data
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


Smb1Parser = Callable[[bytes, Smb1Block, Smb1Header], Smb1Body | Anomaly | None]
_REQUEST_PARSERS: Final[dict[int, Smb1Parser]] = {
    Smb1Command.SMB_COM_NEGOTIATE: parse_negotiate_request,
    Smb1Command.SMB_COM_SESSION_SETUP_ANDX: smb1_session_setup.parse_request,
    Smb1Command.SMB_COM_TREE_CONNECT_ANDX: smb1_tree_connect.parse_request,
    Smb1Command.SMB_COM_TRANSACTION: smb1_transaction.parse_request,
    Smb1Command.SMB_COM_TRANSACTION2: smb1_transaction.parse_request,
    Smb1Command.SMB_COM_NT_TRANSACT: smb1_transaction.parse_nt_transact_request,
    Smb1Command.SMB_COM_ECHO: smb1_echo.parse_request,
    Smb1Command.SMB_COM_NT_CREATE_ANDX: smb1_open.parse_nt_create_request,
    Smb1Command.SMB_COM_OPEN_ANDX: smb1_open.parse_open_andx_request,
    Smb1Command.SMB_COM_READ_ANDX: smb1_read_write.parse_read_request,
    Smb1Command.SMB_COM_WRITE_ANDX: smb1_read_write.parse_write_request,
    Smb1Command.SMB_COM_CLOSE: smb1_file.parse_close_request,
    Smb1Command.SMB_COM_DELETE: smb1_file.parse_delete_request,
    Smb1Command.SMB_COM_RENAME: smb1_file.parse_rename_request,
    Smb1Command.SMB_COM_NT_RENAME: smb1_file.parse_rename_request,
    Smb1Command.SMB_COM_CREATE_DIRECTORY: smb1_file.parse_directory_request,
    Smb1Command.SMB_COM_DELETE_DIRECTORY: smb1_file.parse_directory_request,
    Smb1Command.SMB_COM_TRANSACTION_SECONDARY: smb1_transaction.parse_secondary_request,
    Smb1Command.SMB_COM_TRANSACTION2_SECONDARY: smb1_transaction.parse_secondary_request,
}
_RESPONSE_PARSERS: Final[dict[int, Smb1Parser]] = {
    Smb1Command.SMB_COM_NEGOTIATE: parse_negotiate_response,
    Smb1Command.SMB_COM_SESSION_SETUP_ANDX: smb1_session_setup.parse_response,
    Smb1Command.SMB_COM_TREE_CONNECT_ANDX: smb1_tree_connect.parse_response,
    Smb1Command.SMB_COM_NT_CREATE_ANDX: smb1_open.parse_nt_create_response,
    Smb1Command.SMB_COM_OPEN_ANDX: smb1_open.parse_open_andx_response,
    Smb1Command.SMB_COM_READ_ANDX: smb1_read_write.parse_read_response,
    Smb1Command.SMB_COM_WRITE_ANDX: smb1_read_write.parse_write_response,
    Smb1Command.SMB_COM_TRANSACTION: smb1_transaction.parse_response,
    Smb1Command.SMB_COM_TRANSACTION2: smb1_transaction.parse_response,
}
# The commands whose messages smbwatch may keep only the first bytes of (dissectors/message.py): their
# parsers read the fixed words of a cut message and tell how much data arrived.
_CUT_TOLERANT_COMMANDS: Final = frozenset((int(Smb1Command.SMB_COM_READ_ANDX), int(Smb1Command.SMB_COM_WRITE_ANDX)))
_NT_CREATE_ANDX: Final = int(Smb1Command.SMB_COM_NT_CREATE_ANDX)
# [MS-CIFS] 2.2.4: the commands whose parameter words start with AndXCommand, AndXReserved, AndXOffset.
ANDX_COMMANDS: Final = frozenset(
    int(command)
    for command in (
        Smb1Command.SMB_COM_LOCKING_ANDX,
        Smb1Command.SMB_COM_OPEN_ANDX,
        Smb1Command.SMB_COM_READ_ANDX,
        Smb1Command.SMB_COM_WRITE_ANDX,
        Smb1Command.SMB_COM_SESSION_SETUP_ANDX,
        Smb1Command.SMB_COM_LOGOFF_ANDX,
        Smb1Command.SMB_COM_TREE_CONNECT_ANDX,
        Smb1Command.SMB_COM_NT_CREATE_ANDX,
    )
)
SMB_COM_NO_ANDX_COMMAND: Final = 0xFF
# Real chains hold two or three commands; the walk stops here whatever the offsets say.
MAX_ANDX_CHAIN: Final = 8


def parse_message(message: bytes, frame_length: int | None = None) -> list[StreamEvent]:
    """One SMB1 message: its header, and each command of its AndX chain with its decoded body.

    A malformed body still yields the command (with body None) so it is counted,
    followed by the anomaly. `frame_length` is the message's real size when only
    its first bytes were kept: a chain continuing past them is then reported.
    """
    header = parse_header(message)
    if isinstance(header, Anomaly):
        return [header]
    response = bool(header.flags & 0x80)
    parsers = _RESPONSE_PARSERS if response else _REQUEST_PARSERS
    cut = frame_length is not None and len(message) < frame_length
    events: list[StreamEvent] = []
    command = header.command
    offset = SMB1_HEADER_SIZE
    for index in range(MAX_ANDX_CHAIN):
        words_size = nt_create_response_words_size(message, offset) if response and command == _NT_CREATE_ANDX else None
        block = split_parameters(message, offset, cut and command in _CUT_TOLERANT_COMMANDS, words_size)
        command_header = header if index == 0 else header._replace(command=command)
        if isinstance(block, Anomaly):
            events.append(Smb1Message(command_header, None, index > 0))
            if len(message) >= (frame_length or len(message)):
                events.append(block)  # a message cut by smbwatch's own cap is not malformed
            return events
        parser = parsers.get(command)
        body = parser(message, block, command_header) if parser is not None else None
        if isinstance(body, Anomaly):
            events.append(Smb1Message(command_header, None, index > 0))
            events.append(body)
        else:
            events.append(Smb1Message(command_header, body, index > 0))
            if body is not None and command == _SESSION_SETUP_ANDX:
                events.extend(spnego.token_anomalies(body))  # a token decoded despite a cap or a cut
        if command not in ANDX_COMMANDS or len(block.words) < 4:
            return events
        command = block.words[0]
        next_offset = int.from_bytes(block.words[2:4], "little")
        if command == SMB_COM_NO_ANDX_COMMAND:
            return events
        if next_offset <= offset or next_offset >= len(message):
            if next_offset > offset and frame_length is not None and len(message) < frame_length:
                return events  # the chain goes on past the bytes smbwatch kept of a bulk message
            events.append(Anomaly(AnomalyKind.SMB1_ANDX_CHAIN_INVALID, f"AndXOffset {next_offset} after {offset}"))
            return events
        offset = next_offset
    events.append(Anomaly(AnomalyKind.SMB1_ANDX_CHAIN_INVALID, f"more than {MAX_ANDX_CHAIN} chained commands"))
    return events
