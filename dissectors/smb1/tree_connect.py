"""SMB_COM_TREE_CONNECT_ANDX request and response ([MS-CIFS] 2.2.4.55, [MS-SMB] 2.2.4.7)."""

from __future__ import annotations

import struct

from dissectors.constants import Smb1Flags2
from dissectors.records import Anomaly, AnomalyKind, Smb1Header, Smb1TreeConnectRequest, Smb1TreeConnectResponse
from dissectors.smb1.parameters import Smb1Block, read_string

_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def parse_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1TreeConnectRequest | Anomaly | None:
    """WordCount 4: AndX, Flags, PasswordLength; data: Password, Path, Service (always OEM)."""
    if len(block.words) != 8:
        return None if header.status else Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, "request WordCount")
    _flags, password_length = struct.unpack_from("<HH", block.words, 4)
    if password_length > len(block.data):
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, "PasswordLength past the data")
    path, position = read_string(block, password_length, bool(header.flags2 & _UNICODE))
    service, _ = read_string(block, position, False)
    return Smb1TreeConnectRequest(path=path, service=service)


def parse_response(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1TreeConnectResponse | Anomaly | None:
    """WordCount 3 (or 7 with access rights): AndX, OptionalSupport; data: Service (OEM), NativeFileSystem."""
    if not block.words:
        return None
    if len(block.words) not in (6, 14):
        return Anomaly(AnomalyKind.TREE_CONNECT_MALFORMED, f"response WordCount {len(block.words) // 2}")
    optional_support = int.from_bytes(block.words[4:6], "little")
    service, position = read_string(block, 0, False)
    file_system, _ = read_string(block, position, bool(header.flags2 & _UNICODE))
    return Smb1TreeConnectResponse(service=service, native_file_system=file_system, optional_support=optional_support)
