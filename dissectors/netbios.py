"""NetBIOS session service framing (RFC 1002 4.3) and direct TCP framing ([MS-SMB2] 2.1).

On port 139 the 4-byte header is type, flags and a 16-bit length whose 17th bit
is the flags' E (length extension) bit. On port 445 the first byte must be zero
and the next three bytes are a 24-bit length.
"""

from __future__ import annotations

from typing import Final

from dissectors.constants import NetbiosSessionType
from dissectors.records import Anomaly, AnomalyKind, NetbiosSessionRequest

NETBIOS_HEADER_SIZE: Final = 4
NETBIOS_LENGTH_EXTENSION: Final = 0x01  # RFC 1002 4.3.1: the E bit of FLAGS
NETBIOS_MAX_LENGTH: Final = 0x1FFFF  # 17 bits on port 139
DIRECT_TCP_MAX_LENGTH: Final = 0xFFFFFF  # 24 bits on port 445
NETBIOS_ENCODED_NAME_LENGTH: Final = 32  # RFC 1001 14.1 first-level encoding of 16 bytes

_NETBIOS_TYPES: Final = frozenset(t.value for t in NetbiosSessionType)


def parse_session_header(data: bytes | bytearray, offset: int, direct_tcp: bool) -> tuple[int, int] | Anomaly:
    """Type and length of the frame whose header starts at `offset` (4 bytes must be there).

    `direct_tcp` selects the port-445 form ([MS-SMB2] 2.1): zero byte + 24-bit length.
    """
    message_type = data[offset]
    if direct_tcp:
        if message_type == NetbiosSessionType.SESSION_MESSAGE:
            return 0, int.from_bytes(data[offset + 1 : offset + 4], "big")
        if message_type == NetbiosSessionType.SESSION_KEEP_ALIVE:
            # Some stacks send NetBIOS keep-alives on 445 too; their length must be zero.
            length = int.from_bytes(data[offset + 2 : offset + 4], "big")
            return message_type, length
        return Anomaly(AnomalyKind.NETBIOS_BAD_TYPE, f"type 0x{message_type:02x} on direct TCP")
    if message_type not in _NETBIOS_TYPES:
        return Anomaly(AnomalyKind.NETBIOS_BAD_TYPE, f"type 0x{message_type:02x}")
    flags = data[offset + 1]
    if flags & ~NETBIOS_LENGTH_EXTENSION:
        return Anomaly(AnomalyKind.NETBIOS_BAD_FLAGS, f"flags 0x{flags:02x}")
    length = ((flags & NETBIOS_LENGTH_EXTENSION) << 16) | (data[offset + 2] << 8) | data[offset + 3]
    return message_type, length


def decode_netbios_name(data: bytes, offset: int) -> tuple[str, int] | Anomaly:
    """RFC 1001 14.1 / RFC 1002 4.1: an encoded name (label length 32, scope labels, zero).

    Returns the name (trailing padding stripped, the 16th byte as ``<xx>``,
    scope appended after a dot) and the offset just past it.
    """
    labels: list[bytes] = []
    position = offset
    while True:
        if position >= len(data):
            return Anomaly(AnomalyKind.NETBIOS_MALFORMED, "name runs past the packet")
        label_length = data[position]
        position += 1
        if label_length == 0:
            break
        if label_length > 63 or position + label_length > len(data) or len(labels) > 16:
            return Anomaly(AnomalyKind.NETBIOS_MALFORMED, f"bad name label at {position - 1}")
        labels.append(data[position : position + label_length])
        position += label_length
    if not labels or len(labels[0]) != NETBIOS_ENCODED_NAME_LENGTH:
        return Anomaly(AnomalyKind.NETBIOS_MALFORMED, "first name label is not 32 bytes")
    encoded = labels[0]
    raw = bytearray()
    for i in range(0, NETBIOS_ENCODED_NAME_LENGTH, 2):
        high, low = encoded[i] - 0x41, encoded[i + 1] - 0x41
        if not (0 <= high < 16 and 0 <= low < 16):
            return Anomaly(AnomalyKind.NETBIOS_MALFORMED, "name is not first-level encoded")
        raw.append(high << 4 | low)
    suffix = raw[15]
    name = raw[:15].decode("latin-1").rstrip(" ")
    text = f"{name}<{suffix:02x}>"
    if len(labels) > 1:
        text += "." + ".".join(label.decode("latin-1") for label in labels[1:])
    return text, position


def parse_session_request(body: bytes) -> NetbiosSessionRequest | Anomaly:
    """RFC 1002 4.3.2 SESSION REQUEST: CALLED NAME then CALLING NAME."""
    called = decode_netbios_name(body, 0)
    if isinstance(called, Anomaly):
        return called
    calling = decode_netbios_name(body, called[1])
    if isinstance(calling, Anomaly):
        return calling
    return NetbiosSessionRequest(called_name=called[0], calling_name=calling[0])
