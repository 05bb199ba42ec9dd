"""SMB_COM_SESSION_SETUP_ANDX request and response, in all three forms.

[MS-SMB] 2.2.4.6 (extended security: a security blob), [MS-CIFS] 2.2.4.53 (NT LM
0.12 with OEM and Unicode password fields, and the LANMAN form with one password
field). Passwords and responses are never kept: only their lengths, which tell
how the client authenticated.
"""

from __future__ import annotations

import struct

from dissectors.auth import spnego
from dissectors.constants import Smb1Flags2
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1Header,
    Smb1SessionSetupRequest,
    Smb1SessionSetupResponse,
    SpnegoToken,
)
from dissectors.smb1.parameters import Smb1Block, read_strings

_EXTENDED_REQUEST = struct.Struct("<4xHHHIHII")  # WordCount 12, after AndX
_NT_REQUEST = struct.Struct("<4xHHHIHHII")  # WordCount 13
_LANMAN_REQUEST = struct.Struct("<4xHHHIHI")  # WordCount 10
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def _security(blob: bytes) -> SpnegoToken | Anomaly | None:
    return spnego.parse_security_blob(blob) if blob else None


def parse_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1SessionSetupRequest | Anomaly | None:
    words, data = block.words, block.data
    unicode = bool(header.flags2 & _UNICODE)
    word_count = len(words) // 2
    if word_count == 12:
        _, _, _, _, blob_length, _, capabilities = _EXTENDED_REQUEST.unpack_from(words)
        if blob_length > len(data):
            return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"SecurityBlobLength {blob_length} past the data")
        security = _security(data[:blob_length])
        if isinstance(security, Anomaly):
            return security
        native_os, native_lanman = read_strings(block, blob_length, 2, unicode)
        return Smb1SessionSetupRequest("extended", capabilities, security, 0, 0, "", "", native_os, native_lanman)
    if word_count == 13:
        _, _, _, _, oem_length, unicode_length, _, capabilities = _NT_REQUEST.unpack_from(words)
        if oem_length + unicode_length > len(data):
            return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, "password lengths past the data")
        account, domain, native_os, native_lanman = read_strings(block, oem_length + unicode_length, 4, unicode)
        return Smb1SessionSetupRequest(
            "nt", capabilities, None, oem_length, unicode_length, account, domain, native_os, native_lanman
        )
    if word_count == 10:
        _, _, _, _, password_length, _ = _LANMAN_REQUEST.unpack_from(words)
        if password_length > len(data):
            return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, "password length past the data")
        account, domain, native_os, native_lanman = read_strings(block, password_length, 4, unicode)
        return Smb1SessionSetupRequest(
            "lanman", None, None, password_length, 0, account, domain, native_os, native_lanman
        )
    if word_count == 0 and header.status:
        return None
    return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"request WordCount {word_count}")


def parse_response(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1SessionSetupResponse | Anomaly | None:
    words, data = block.words, block.data
    unicode = bool(header.flags2 & _UNICODE)
    word_count = len(words) // 2
    if word_count == 0:
        return None  # an error reply: the status says why
    if word_count == 4:
        action, blob_length = struct.unpack_from("<HH", words, 4)
        if blob_length > len(data):
            return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"SecurityBlobLength {blob_length} past the data")
        security = _security(data[:blob_length])
        if isinstance(security, Anomaly):
            return security
        native_os, native_lanman, domain = read_strings(block, blob_length, 3, unicode)
        return Smb1SessionSetupResponse(action, security, native_os, native_lanman, domain)
    if word_count == 3:
        action = int.from_bytes(words[4:6], "little")
        native_os, native_lanman, domain = read_strings(block, 0, 3, unicode)
        return Smb1SessionSetupResponse(action, None, native_os, native_lanman, domain)
    return Anomaly(AnomalyKind.SESSION_SETUP_MALFORMED, f"response WordCount {word_count}")
