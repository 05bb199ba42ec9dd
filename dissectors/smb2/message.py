"""SMB2 header, compound chains and the transform headers ([MS-SMB2] 2.2.1, 2.2.41, 2.2.42)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from dissectors.auth import spnego
from dissectors.constants import SMB2_FLAGS_ASYNC_COMMAND, SMB2_FLAGS_SERVER_TO_REDIR, Smb2Command
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb2Body,
    Smb2CompressionTransformHeader,
    Smb2CreateRequest,
    Smb2CreateResponse,
    Smb2Header,
    Smb2Message,
    Smb2TransformHeader,
    StreamEvent,
)
from dissectors.smb2 import close as smb2_close
from dissectors.smb2 import create as smb2_create
from dissectors.smb2 import ioctl as smb2_ioctl
from dissectors.smb2 import negotiate as smb2_negotiate
from dissectors.smb2 import query_directory as smb2_query_directory
from dissectors.smb2 import read_write as smb2_read_write
from dissectors.smb2 import session_setup as smb2_session_setup
from dissectors.smb2 import set_info as smb2_set_info
from dissectors.smb2 import tree_connect as smb2_tree_connect

SMB2_HEADER_SIZE: Final = 64
SMB2_HEADER_STRUCTURE_SIZE: Final = 64
SMB2_ERROR_RESPONSE_STRUCTURE_SIZE: Final = 9  # [MS-SMB2] 2.2.2
STATUS_MORE_PROCESSING_REQUIRED: Final = 0xC0000016
SMB2_TRANSFORM_HEADER_SIZE: Final = 52
SMB2_COMPRESSION_HEADER_SIZE: Final = 16
# [MS-SMB2] 3.3.5.2.7 lets a chain be as long as the frame; real ones hold a few. Cap the walk.
MAX_COMPOUND_MESSAGES: Final = 32

_SESSION_SETUP: Final = int(Smb2Command.SESSION_SETUP)
_CREATE: Final = int(Smb2Command.CREATE)

_HEADER: Final = struct.Struct("<4sHHIHHIIQQQ16s")
_TRANSFORM: Final = struct.Struct("<4s16s16sIHHQ")
_COMPRESSION: Final = struct.Struct("<4sIHHI")

# A body parser gets the bytes kept of its message and the message's length as sent: they differ
# for a READ/WRITE cut to its first 256 bytes, whose data is then partly absent but not malformed.
Smb2BodyParser = Callable[[bytes, int], Smb2Body | Anomaly]


def _kept_bytes_only(parse: Callable[[bytes], Smb2Body | Anomaly]) -> Smb2BodyParser:
    """A parser of the login commands, which always have their whole message, as a `Smb2BodyParser`."""

    def parse_body(message: bytes, _message_length: int) -> Smb2Body | Anomaly:
        return parse(message)

    return parse_body


_REQUEST_PARSERS: Final[dict[int, Smb2BodyParser]] = {
    Smb2Command.NEGOTIATE: _kept_bytes_only(smb2_negotiate.parse_negotiate_request),
    Smb2Command.SESSION_SETUP: _kept_bytes_only(smb2_session_setup.parse_request),
    Smb2Command.TREE_CONNECT: _kept_bytes_only(smb2_tree_connect.parse_request),
    Smb2Command.CREATE: smb2_create.parse_request,
    Smb2Command.CLOSE: smb2_close.parse_request,
    Smb2Command.READ: smb2_read_write.parse_read_request,
    Smb2Command.WRITE: smb2_read_write.parse_write_request,
    Smb2Command.IOCTL: smb2_ioctl.parse_request,
    Smb2Command.QUERY_DIRECTORY: smb2_query_directory.parse_request,
    Smb2Command.SET_INFO: smb2_set_info.parse_request,
}
_RESPONSE_PARSERS: Final[dict[int, Smb2BodyParser]] = {
    Smb2Command.NEGOTIATE: _kept_bytes_only(smb2_negotiate.parse_negotiate_response),
    Smb2Command.SESSION_SETUP: _kept_bytes_only(smb2_session_setup.parse_response),
    Smb2Command.TREE_CONNECT: _kept_bytes_only(smb2_tree_connect.parse_response),
    Smb2Command.CREATE: smb2_create.parse_response,
    Smb2Command.CLOSE: smb2_close.parse_response,
    Smb2Command.READ: smb2_read_write.parse_read_response,
    Smb2Command.WRITE: smb2_read_write.parse_write_response,
    Smb2Command.IOCTL: smb2_ioctl.parse_response,
    Smb2Command.SET_INFO: smb2_set_info.parse_response,
}


def parse_header(message: bytes | bytearray, offset: int = 0) -> Smb2Header | Anomaly:
    """[MS-SMB2] 2.2.1: the 64-byte header at `offset`, in its sync or async form."""
    if len(message) - offset < SMB2_HEADER_SIZE:
        return Anomaly(AnomalyKind.SMB2_MALFORMED, f"header needs 64 bytes, has {len(message) - offset}")
    (
        _,
        structure_size,
        credit_charge,
        status,
        command,
        credits,
        flags,
        next_command,
        message_id,
        async_or_tree,
        session_id,
        signature,
    ) = _HEADER.unpack_from(message, offset)
    if structure_size != SMB2_HEADER_STRUCTURE_SIZE:
        return Anomaly(AnomalyKind.SMB2_MALFORMED, f"header StructureSize {structure_size}")
    if flags & SMB2_FLAGS_ASYNC_COMMAND:
        async_id, tree_id = async_or_tree, None
    else:
        async_id, tree_id = None, async_or_tree >> 32
    return Smb2Header(
        credit_charge,
        status,
        command,
        credits,
        flags,
        next_command,
        message_id,
        async_id,
        tree_id,
        session_id,
        signature,
    )


def _parse_body(header: Smb2Header, message: bytes, message_length: int) -> Smb2Body | Anomaly | None:
    is_response = header.flags & SMB2_FLAGS_SERVER_TO_REDIR
    parser = (_RESPONSE_PARSERS if is_response else _REQUEST_PARSERS).get(header.command)
    if parser is None:
        return None
    if is_response and header.status and len(message) >= SMB2_HEADER_SIZE + 2:
        structure_size = int.from_bytes(message[SMB2_HEADER_SIZE : SMB2_HEADER_SIZE + 2], "little")
        # [MS-SMB2] 3.3.4.4: a failed request gets an ERROR Response (StructureSize 9), except the
        # SESSION_SETUP legs answered STATUS_MORE_PROCESSING_REQUIRED, whose own StructureSize is also 9.
        more_processing = (
            header.command == Smb2Command.SESSION_SETUP and header.status == STATUS_MORE_PROCESSING_REQUIRED
        )
        if structure_size == SMB2_ERROR_RESPONSE_STRUCTURE_SIZE and not more_processing:
            return None  # [MS-SMB2] 2.2.2 ERROR Response: nothing more to decode
    return parser(message, message_length)


def parse_compound(frame: bytes, frame_length: int) -> list[StreamEvent]:
    """All messages of a frame, following NextCommand ([MS-SMB2] 3.2.4.1.4).

    `frame` holds the first bytes of the frame and `frame_length` its real size;
    when smbwatch kept only a prefix, a chain that continues past it is reported.
    """
    events: list[StreamEvent] = []
    offset = 0
    for _ in range(MAX_COMPOUND_MESSAGES):
        header = parse_header(frame, offset)
        if isinstance(header, Anomaly):
            events.append(header)
            return events
        next_command = header.next_command
        end = offset + next_command if next_command else len(frame)
        message = frame[offset:end] if offset or next_command else frame
        body = _parse_body(header, message, next_command or frame_length - offset)
        if isinstance(body, Anomaly):
            events.append(Smb2Message(header, None))
            events.append(body)
        else:
            events.append(Smb2Message(header, body))
            if body is not None:
                command = header.command
                if command == _SESSION_SETUP:
                    events.extend(spnego.token_anomalies(body))  # a token decoded despite a cap or a cut
                elif command == _CREATE and isinstance(body, (Smb2CreateRequest, Smb2CreateResponse)):
                    events.extend(body.anomalies)  # a context chain decoded despite a break or the cap
        if not next_command:
            return events
        if next_command < SMB2_HEADER_SIZE or next_command % 8 or offset + next_command >= frame_length:
            events.append(Anomaly(AnomalyKind.SMB2_NEXT_COMMAND_INVALID, f"NextCommand {next_command}"))
            return events
        offset += next_command
        if offset + SMB2_HEADER_SIZE > len(frame) and len(frame) < frame_length:
            events.append(Anomaly(AnomalyKind.SMB2_COMPOUND_BEYOND_KEPT_BYTES, f"next message at {offset}"))
            return events
    events.append(Anomaly(AnomalyKind.SMB2_COMPOUND_TOO_LONG, f"more than {MAX_COMPOUND_MESSAGES}"))
    return events


def parse_transform_header(frame: bytes) -> Smb2TransformHeader | Anomaly:
    """[MS-SMB2] 2.2.41 SMB2 TRANSFORM_HEADER (encrypted message follows)."""
    if len(frame) < SMB2_TRANSFORM_HEADER_SIZE:
        return Anomaly(AnomalyKind.TRANSFORM_MALFORMED, f"needs 52 bytes, has {len(frame)}")
    _, _signature, _nonce, original_size, _reserved, flags, session_id = _TRANSFORM.unpack_from(frame)
    return Smb2TransformHeader(original_message_size=original_size, flags=flags, session_id=session_id)


def parse_compression_header(frame: bytes) -> Smb2CompressionTransformHeader | Anomaly:
    """[MS-SMB2] 2.2.42 SMB2 COMPRESSION_TRANSFORM_HEADER."""
    if len(frame) < SMB2_COMPRESSION_HEADER_SIZE:
        return Anomaly(AnomalyKind.COMPRESSION_MALFORMED, f"needs 16 bytes, has {len(frame)}")
    _, original_size, algorithm, flags, offset_or_length = _COMPRESSION.unpack_from(frame)
    return Smb2CompressionTransformHeader(
        original_size=original_size, algorithm=algorithm, flags=flags, offset_or_length=offset_or_length
    )
