"""What one NetBIOS SESSION MESSAGE carries: SMB1, SMB2 (compound), encrypted or compressed.

`bytes_to_keep` decides, from a frame's first bytes, how much of it is worth
buffering: headers always, whole messages for the commands smbwatch decodes,
never the bulk data of READ/WRITE. That is what keeps file-server links cheap.
"""

from __future__ import annotations

from dissectors.constants import (
    SMB1_PROTOCOL_ID,
    SMB2_COMPRESSION_PROTOCOL_ID,
    SMB2_PROTOCOL_ID,
    SMB2_TRANSFORM_PROTOCOL_ID,
    Smb1Command,
    Smb2Command,
)
from dissectors.records import Anomaly, AnomalyKind, StreamEvent, ZeroedMessageHeader
from dissectors.smb1 import message as smb1
from dissectors.smb2 import message as smb2

# Bytes needed to decide how much of a frame to keep: the SMB2 header is the longest.
PEEK_SIZE = smb2.SMB2_HEADER_SIZE
# Largest message smbwatch decodes whole. A Kerberos AP-REQ in a SESSION_SETUP stays
# below Windows' MaxTokenSize (48,000 bytes by default, 65,535 at most).
MAX_KEPT_MESSAGE = 128 * 1024
# For bulk-data commands the header and the fixed part of the body are enough.
BULK_MESSAGE_PREFIX = 256
# ... unless the message is small: READ/WRITE on a named pipe carry one DCE/RPC fragment each (at
# most 4,280 bytes as Windows and Samba negotiate them, [MS-RPCE] 3.3.3.5.4), which must be read
# whole; which handle is a pipe only the per-connection state knows. 4,280 bytes with the SMB2
# header and the WRITE request's fixed part fit in 4.5 KiB; file transfers use 64 KiB to 8 MiB.
SMALL_IO_KEPT = 4608

_SMB2_BULK_COMMANDS = frozenset((int(Smb2Command.READ), int(Smb2Command.WRITE)))
_SMB1_BULK_COMMANDS = frozenset(
    int(command)
    for command in (
        Smb1Command.SMB_COM_READ,
        Smb1Command.SMB_COM_WRITE,
        Smb1Command.SMB_COM_READ_ANDX,
        Smb1Command.SMB_COM_WRITE_ANDX,
        Smb1Command.SMB_COM_READ_RAW,
        Smb1Command.SMB_COM_WRITE_RAW,
        Smb1Command.SMB_COM_WRITE_AND_CLOSE,
        Smb1Command.SMB_COM_LOCK_AND_READ,
        Smb1Command.SMB_COM_WRITE_AND_UNLOCK,
    )
)
_SMB2_STRUCTURE_SIZE_OFFSET = 4
_SMB2_COMMAND_OFFSET = 12
_SMB2_NEXT_COMMAND_OFFSET = 20
_SMB1_COMMAND_OFFSET = 4
_SMB1_MARKER = SMB1_PROTOCOL_ID[0]
_SMB2_MARKER = SMB2_PROTOCOL_ID[0]
_TRANSFORM_MARKER = SMB2_TRANSFORM_PROTOCOL_ID[0]
_COMPRESSION_MARKER = SMB2_COMPRESSION_PROTOCOL_ID[0]


def bytes_to_keep(prefix: bytes | bytearray, frame_length: int) -> int:
    """How many leading bytes of a `frame_length`-byte frame to buffer, given its first bytes."""
    if len(prefix) < 5 or prefix[1:4] != b"SMB":
        return min(frame_length, PEEK_SIZE)
    marker = prefix[0]
    if marker == _SMB2_MARKER:
        if len(prefix) >= PEEK_SIZE:
            if prefix[_SMB2_STRUCTURE_SIZE_OFFSET] != smb2.SMB2_HEADER_STRUCTURE_SIZE:
                # Not an SMB2 header: nothing past it can be decoded, so the rest is not worth buffering.
                return PEEK_SIZE
            command = prefix[_SMB2_COMMAND_OFFSET] | prefix[_SMB2_COMMAND_OFFSET + 1] << 8
            if (
                command in _SMB2_BULK_COMMANDS
                and frame_length > SMALL_IO_KEPT
                and not any(prefix[_SMB2_NEXT_COMMAND_OFFSET : _SMB2_NEXT_COMMAND_OFFSET + 4])
            ):
                return BULK_MESSAGE_PREFIX
        return min(frame_length, MAX_KEPT_MESSAGE)
    if marker == _SMB1_MARKER:
        if prefix[_SMB1_COMMAND_OFFSET] in _SMB1_BULK_COMMANDS and frame_length > SMALL_IO_KEPT:
            return BULK_MESSAGE_PREFIX
        return min(frame_length, MAX_KEPT_MESSAGE)
    if marker == _TRANSFORM_MARKER:
        return min(frame_length, smb2.SMB2_TRANSFORM_HEADER_SIZE)
    if marker == _COMPRESSION_MARKER:
        return min(frame_length, smb2.SMB2_COMPRESSION_HEADER_SIZE)
    return min(frame_length, PEEK_SIZE)


def dissect_session_message(kept: bytes, frame_length: int) -> list[StreamEvent]:
    """Records for one SESSION MESSAGE of which `kept` are the first bytes."""
    protocol = kept[:4]
    if protocol == SMB2_PROTOCOL_ID:
        if kept[_SMB2_STRUCTURE_SIZE_OFFSET : _SMB2_STRUCTURE_SIZE_OFFSET + 1] == b"\x00" and is_zeroed_header(kept):
            return [ZeroedMessageHeader(protocol, frame_length)]
        return smb2.parse_compound(kept, frame_length)
    if protocol == SMB1_PROTOCOL_ID:
        events = smb1.parse_message(kept, frame_length)
        if len(kept) == MAX_KEPT_MESSAGE < frame_length:  # a bulk command keeps BULK_MESSAGE_PREFIX: no cut
            events.append(
                Anomaly(
                    AnomalyKind.MESSAGE_CUT_AT_KEPT_BYTES,
                    f"SMB1 message of {frame_length} bytes: the first {MAX_KEPT_MESSAGE} decoded",
                )
            )
        return events
    if protocol == SMB2_TRANSFORM_PROTOCOL_ID:
        return [smb2.parse_transform_header(kept)]
    if protocol == SMB2_COMPRESSION_PROTOCOL_ID:
        return [smb2.parse_compression_header(kept)]
    if is_zeroed_header(kept):
        return [ZeroedMessageHeader(protocol, frame_length)]
    return [Anomaly(AnomalyKind.NOT_SMB, f"frame of {frame_length} bytes starts {protocol.hex()}")]


def is_zeroed_header(kept: bytes) -> bool:
    """The 60 bytes after the protocol id are there and all zero."""
    return len(kept) >= PEEK_SIZE and kept.count(0, 4, PEEK_SIZE) == PEEK_SIZE - 4
