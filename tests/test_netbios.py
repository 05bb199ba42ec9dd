"""RFC 1002 session service framing and [MS-SMB2] 2.1 direct TCP framing."""

from __future__ import annotations

from wire_samples import NETBIOS_SESSION_REQUEST

from dissectors.netbios import decode_netbios_name, parse_session_header, parse_session_request
from dissectors.records import Anomaly, AnomalyKind, NetbiosSessionRequest


def test_direct_tcp_uses_24_bit_length() -> None:
    assert parse_session_header(b"\x00\x01\x02\x03", 0, direct_tcp=True) == (0, 0x010203)
    assert parse_session_header(b"\x00\xff\xff\xf7", 0, direct_tcp=True) == (0, 0xFFFFF7)


def test_netbios_uses_17_bit_length() -> None:
    assert parse_session_header(b"\x00\x01\x00\x10", 0, direct_tcp=False) == (0, 0x10010)
    assert parse_session_header(b"\x00\x00\xff\xff", 0, direct_tcp=False) == (0, 0xFFFF)


def test_netbios_reserved_flag_bits_and_unknown_types() -> None:
    result = parse_session_header(b"\x00\x02\x00\x10", 0, direct_tcp=False)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NETBIOS_BAD_FLAGS
    result = parse_session_header(b"\x86\x00\x00\x00", 0, direct_tcp=False)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NETBIOS_BAD_TYPE


def test_session_service_types_on_139() -> None:
    for message_type in (0x81, 0x82, 0x83, 0x84, 0x85):
        assert parse_session_header(bytes([message_type, 0, 0, 4]), 0, direct_tcp=False) == (message_type, 4)


def test_direct_tcp_accepts_only_message_and_keepalive() -> None:
    assert parse_session_header(b"\x85\x00\x00\x00", 0, direct_tcp=True) == (0x85, 0)
    result = parse_session_header(b"\x81\x00\x00\x44", 0, direct_tcp=True)
    assert isinstance(result, Anomaly) and result.kind is AnomalyKind.NETBIOS_BAD_TYPE


def test_session_request_names_from_smbclient() -> None:
    request = parse_session_request(NETBIOS_SESSION_REQUEST[4:])
    assert isinstance(request, NetbiosSessionRequest)
    assert request.called_name == "192.0.2.20<20>"
    assert request.calling_name.endswith("<00>")


def test_bad_names() -> None:
    assert isinstance(decode_netbios_name(b"\x20" + b"Z" * 32 + b"\x00", 0), Anomaly)  # not A..P
    assert isinstance(decode_netbios_name(b"\x05abcde\x00", 0), Anomaly)  # first label not 32 bytes
    assert isinstance(decode_netbios_name(b"\x20" + b"A" * 10, 0), Anomaly)  # runs past the packet
    assert decode_netbios_name(b"\x20" + b"EB" * 15 + b"AA" + b"\x03lab\x00", 0) == ("AAAAAAAAAAAAAAA<00>.lab", 38)
