"""User, domain and host names from the network may hold control characters or invalid UTF-16:
the table shows them escaped, the JSON keeps them exactly."""

from __future__ import annotations

import io
import json
import struct

from dissectors.auth import ntlmssp
from dissectors.records import NtlmsspAuthenticate
from monitor.output.inventory import ConnectionLog
from monitor.output.report import _session_row

HOSTILE_USER = "ev\x07il\x1b[31m\ud800"  # bell, an ANSI escape and a lone surrogate


def authenticate_message(user: bytes, domain: bytes, workstation: bytes) -> bytes:
    """A crafted NTLMSSP AUTHENTICATE (Unicode flag) with empty responses and the given raw names."""
    payload_start = 64 + 8
    fields = b""
    payload = b""
    for value in (b"", b"", domain, user, workstation, b""):  # LM, NT, Domain, User, Workstation, Key
        fields += struct.pack("<HHI", len(value), len(value), payload_start + len(payload))
        payload += value
    flags = 0x00000001 | 0x02000000  # UNICODE, VERSION
    version = struct.pack("<BBH3xB", 10, 0, 19041, 15)
    return b"NTLMSSP\x00" + struct.pack("<I", 3) + fields + struct.pack("<I", flags) + version + payload


def test_names_decode_exactly_even_when_invalid() -> None:
    raw_user = HOSTILE_USER.encode("utf-16-le", errors="surrogatepass")
    message = ntlmssp.parse(authenticate_message(raw_user, "DOM\x00AIN".encode("utf-16-le"), b"W\x00S"))
    assert isinstance(message, NtlmsspAuthenticate)
    assert message.user == HOSTILE_USER
    assert message.domain == "DOM\x00AIN"
    assert message.workstation == "W\ufffd"  # an odd byte count: the last byte cannot be a UTF-16 unit
    assert message.version is not None and str(message.version) == "10.0.19041"


def record_with(user: str) -> dict:
    return {
        "client": {"ip": "192.0.2.10", "port": 50000},
        "server": {"ip": "192.0.2.20", "port": 445},
        "first_seen": 1.0,
        "sessions": [
            {
                "session_id": "0x1",
                "user": user,
                "domain": "D",
                "workstation": "W\x00",
                "auth": "ntlmv2",
                "status": "STATUS_SUCCESS",
            }
        ],
        "trees": [],
    }


def test_table_escapes_and_json_keeps() -> None:
    record = record_with(HOSTILE_USER)
    row = _session_row(record, record["sessions"][0])
    assert all(cell.isprintable() for cell in row)
    assert "\\x07" in row[1] and "\\x1b" in row[1] and "\\ud800" in row[1]
    log = ConnectionLog()
    log.append(record)
    [line] = list(log.json_lines())
    assert b"\\ud800" in line and b"\\u0007" in line  # escaped in the JSON text...
    [again] = list(log)
    assert again["sessions"][0]["user"] == HOSTILE_USER  # ...and exactly the same string once parsed
    out = io.StringIO()
    json.dump(again, out)
    assert json.loads(out.getvalue())["sessions"][0]["workstation"] == "W\x00"
