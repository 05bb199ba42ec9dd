"""[MS-CIFS]/[MS-SMB] SMB1 header and NEGOTIATE, on messages recorded from Samba 4.17."""

from __future__ import annotations

import struct

from wire_samples import SMB1_NEGOTIATE_REQUEST, SMB1_NEGOTIATE_RESPONSE

from dissectors.constants import Smb1Capabilities, Smb1Command, Smb1SecurityMode
from dissectors.records import Anomaly, AnomalyKind, Smb1Message, Smb1NegotiateRequest, Smb1NegotiateResponse
from dissectors.smb1.message import parse_header, parse_message, parse_negotiate_request, parse_negotiate_response

REQUEST = SMB1_NEGOTIATE_REQUEST[4:]
RESPONSE = SMB1_NEGOTIATE_RESPONSE[4:]


def test_header_fields() -> None:
    header = parse_header(REQUEST)
    assert not isinstance(header, Anomaly)
    assert header.command == Smb1Command.SMB_COM_NEGOTIATE
    assert not header.is_response
    assert header.flags2 == 0xC843
    assert header.pid == 0xFFFE
    assert (header.tid, header.uid, header.mid) == (0, 0, 0)


def test_negotiate_request_dialects() -> None:
    request = parse_negotiate_request(REQUEST)
    assert request == Smb1NegotiateRequest(dialects=("NT LANMAN 1.0", "NT LM 0.12"))


def test_negotiate_response_nt_form() -> None:
    response = parse_negotiate_response(RESPONSE)
    assert isinstance(response, Smb1NegotiateResponse)
    assert response.word_count == 17
    assert response.dialect_index == 0
    # Samba's default for SMB1: user security with encrypted passwords, signing off.
    assert response.security_mode == (
        Smb1SecurityMode.NEGOTIATE_USER_SECURITY | Smb1SecurityMode.NEGOTIATE_ENCRYPT_PASSWORDS
    )
    assert response.capabilities is not None and response.capabilities & Smb1Capabilities.CAP_EXTENDED_SECURITY
    assert response.server_guid == b"smbwlab-srv".ljust(16, b"\0")
    assert response.max_mpx_count == 50


def test_message_yields_header_and_body() -> None:
    [message] = parse_message(RESPONSE)
    assert isinstance(message, Smb1Message) and message.header.is_response
    assert isinstance(message.body, Smb1NegotiateResponse)


def test_lanman_and_core_response_forms() -> None:
    header = RESPONSE[:32]
    lanman_words = struct.pack("<HHHHHHIHHhHH", 1, 3, 4356, 50, 1, 0, 0, 0, 0, 0, 8, 0)
    lanman = header + bytes([13]) + lanman_words + b"\x00\x00"
    response = parse_negotiate_response(lanman)
    assert isinstance(response, Smb1NegotiateResponse)
    assert (response.word_count, response.dialect_index, response.security_mode) == (13, 1, 3)
    refused = header + bytes([1]) + b"\xff\xff" + b"\x00\x00"
    response = parse_negotiate_response(refused)
    assert isinstance(response, Smb1NegotiateResponse) and response.dialect_index == 0xFFFF
    assert parse_negotiate_response(header + b"\x00\x00\x00") is None  # error reply without parameters


def test_malformed_inputs_are_anomalies_not_exceptions() -> None:
    assert isinstance(parse_header(REQUEST[:31]), Anomaly)
    no_terminator = REQUEST[:-1]
    no_terminator = no_terminator[:33] + struct.pack("<H", len(no_terminator) - 35) + no_terminator[35:]
    result = parse_negotiate_request(no_terminator)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_MALFORMED_DIALECTS
    bad_format = bytearray(REQUEST)
    bad_format[35] = 0x01
    result = parse_negotiate_request(bytes(bad_format))
    assert isinstance(result, Anomaly) and "BufferFormat" in result.detail
    overlong = bytearray(REQUEST)
    overlong[33:35] = struct.pack("<H", 500)
    assert isinstance(parse_negotiate_request(bytes(overlong)), Anomaly)
    odd_words = RESPONSE[:32] + bytes([5]) + bytes(10) + b"\x00\x00"
    result = parse_negotiate_response(odd_words)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NEGOTIATE_MALFORMED


def test_malformed_body_still_counts_the_message() -> None:
    bad_format = bytearray(REQUEST)
    bad_format[35] = 0x01
    events = parse_message(bytes(bad_format))
    assert isinstance(events[0], Smb1Message) and events[0].body is None
    assert isinstance(events[1], Anomaly)
