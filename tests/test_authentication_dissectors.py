"""NTLMSSP, SPNEGO, Kerberos, SESSION_SETUP and TREE_CONNECT dissectors on recorded and crafted messages."""

from __future__ import annotations

import struct

from auth_samples import (
    SMB1_SESSION_SETUP_AUTHENTICATE,
    SMB1_SESSION_SETUP_RESPONSE,
    SMB1_TREE_CONNECT_REQUEST,
    SMB1_TREE_CONNECT_RESPONSE,
    SMB2_SESSION_SETUP_AUTHENTICATE,
    SMB2_SESSION_SETUP_CHALLENGE,
    SMB2_SESSION_SETUP_NEGOTIATE,
    SMB2_TREE_CONNECT_REQUEST,
    SMB2_TREE_CONNECT_RESPONSE,
)

from dissectors.auth import der, kerberos, ntlmssp, spnego
from dissectors.message import dissect_session_message
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    KerberosApReq,
    NtlmsspAuthenticate,
    NtlmsspChallenge,
    NtlmsspNegotiate,
    Smb1Message,
    Smb1SessionSetupRequest,
    Smb1SessionSetupResponse,
    Smb1TreeConnectRequest,
    Smb1TreeConnectResponse,
    Smb2Message,
    Smb2SessionSetupRequest,
    Smb2SessionSetupResponse,
    Smb2TreeConnectRequest,
    Smb2TreeConnectResponse,
)
from dissectors.smb1 import message as smb1


def body_of(frame: bytes) -> object:
    [message] = dissect_session_message(frame[4:], len(frame) - 4)
    assert isinstance(message, Smb1Message | Smb2Message)
    return message.body


def test_smb2_session_setup_legs() -> None:
    first = body_of(SMB2_SESSION_SETUP_NEGOTIATE)
    assert isinstance(first, Smb2SessionSetupRequest) and first.security is not None
    assert first.security.kind == "init" and first.security.mech_types == (spnego.OID_NTLMSSP,)
    assert isinstance(first.security.ntlmssp, NtlmsspNegotiate)
    challenge = body_of(SMB2_SESSION_SETUP_CHALLENGE)  # answered STATUS_MORE_PROCESSING_REQUIRED: still decoded
    assert isinstance(challenge, Smb2SessionSetupResponse) and challenge.security is not None
    assert challenge.security.neg_state == spnego.NegState.ACCEPT_INCOMPLETE
    server = challenge.security.ntlmssp
    assert isinstance(server, NtlmsspChallenge)
    assert (server.nb_computer_name, server.nb_domain_name) == ("SMBWLAB-SRV", "SMBWLAB-SRV")
    assert server.version is not None and str(server.version) == "6.1.0"
    second = body_of(SMB2_SESSION_SETUP_AUTHENTICATE)
    assert isinstance(second, Smb2SessionSetupRequest) and second.security is not None
    auth = second.security.ntlmssp
    assert isinstance(auth, NtlmsspAuthenticate)
    assert (auth.user, auth.domain, auth.workstation, auth.auth) == ("alice", "SMBWLAB", "SMBWLAB-CLI", "ntlmv2")
    assert auth.nt_response_length > 24


def test_smb2_tree_connect() -> None:
    request = body_of(SMB2_TREE_CONNECT_REQUEST)
    assert request == Smb2TreeConnectRequest(flags=0, path="\\\\192.0.2.20\\IPC$")
    response = body_of(SMB2_TREE_CONNECT_RESPONSE)
    assert isinstance(response, Smb2TreeConnectResponse) and response.share_type == 2  # pipe


def test_smb1_session_setup_and_tree_connect() -> None:
    request = body_of(SMB1_SESSION_SETUP_AUTHENTICATE)
    assert isinstance(request, Smb1SessionSetupRequest) and request.form == "extended"
    assert request.security is not None and isinstance(request.security.ntlmssp, NtlmsspAuthenticate)
    assert request.security.ntlmssp.user == "alice"
    assert (request.native_os, request.native_lanman) == ("Unix", "Samba")
    response = body_of(SMB1_SESSION_SETUP_RESPONSE)
    assert isinstance(response, Smb1SessionSetupResponse) and not response.guest
    assert (response.native_os, response.primary_domain) == ("Windows 6.1", "SMBWLAB")
    tree = body_of(SMB1_TREE_CONNECT_REQUEST)
    assert tree == Smb1TreeConnectRequest(path="\\\\192.0.2.20\\IPC$", service="IPC")
    answer = body_of(SMB1_TREE_CONNECT_RESPONSE)
    assert isinstance(answer, Smb1TreeConnectResponse) and answer.service == "IPC"


def legacy_session_setup(oem: bytes, unicode: bytes, account: str, andx: tuple[int, int] = (0xFF, 0)) -> bytes:
    """A crafted NT LM 0.12 SESSION_SETUP_ANDX without extended security (WordCount 13, OEM strings)."""
    header = b"\xffSMB\x73" + bytes(4) + b"\x18" + struct.pack("<H", 0x0001) + bytes(20)
    words = struct.pack("<BBHHHHIHHII", andx[0], 0, andx[1], 4356, 50, 0, 0, len(oem), len(unicode), 0, 0)
    data = oem + unicode + account.encode() + b"\x00" + b"WORKGROUP\x00" + b"Windows XP\x00" + b"LM\x00"
    return header + bytes([13]) + words + struct.pack("<H", len(data)) + data


def test_legacy_session_setup_keeps_lengths_not_passwords() -> None:
    [message] = smb1.parse_message(legacy_session_setup(b"L" * 24, b"N" * 24, "bob"))
    assert isinstance(message, Smb1Message)
    body = message.body
    assert isinstance(body, Smb1SessionSetupRequest) and body.form == "nt"
    assert (body.oem_password_length, body.unicode_password_length) == (24, 24)
    assert (body.account, body.primary_domain, body.native_os) == ("bob", "WORKGROUP", "Windows XP")
    assert "NNNN" not in repr(body) and "LLLL" not in repr(body)


def test_andx_chain_yields_each_command() -> None:
    session = legacy_session_setup(b"", b"", "", andx=(0x75, 0))
    tree_offset = len(session)
    tree = bytes([4]) + struct.pack("<BBHHH", 0xFF, 0, 0, 0, 1) + struct.pack("<H", 7) + b"\x00A:\x00\x00??"
    message = bytearray(session + tree)
    message[33 + 2 : 33 + 4] = struct.pack("<H", tree_offset)  # AndXOffset of the first block
    events = smb1.parse_message(bytes(message))
    assert [type(e).__name__ for e in events] == ["Smb1Message", "Smb1Message"]
    first, second = events
    assert isinstance(first, Smb1Message) and isinstance(second, Smb1Message)
    assert not first.chained and second.chained and second.header.command == 0x75


def test_andx_offset_going_backwards_is_an_anomaly() -> None:
    events = smb1.parse_message(legacy_session_setup(b"", b"", "", andx=(0x75, 10)))
    assert isinstance(events[-1], Anomaly) and events[-1].kind is AnomalyKind.SMB1_ANDX_CHAIN_INVALID


def test_ntlmssp_field_outside_the_message() -> None:
    message = bytearray(b"NTLMSSP\x00" + struct.pack("<I", 3) + bytes(52))
    message[36:44] = struct.pack("<HHI", 10, 10, 500)  # UserName 10 bytes at offset 500
    message += struct.pack("<I", 0)
    result = ntlmssp.parse(bytes(message))
    assert isinstance(result, Anomaly) and "UserName" in result.detail


def test_anonymous_and_lm_only_classification() -> None:
    anonymous = NtlmsspAuthenticate(0, "", "", "", 1, 0, None)
    assert anonymous.auth == "anonymous"
    assert NtlmsspAuthenticate(0, "bob", "", "", 24, 0, None).auth == "lm"
    assert NtlmsspAuthenticate(0, "bob", "", "", 24, 24, None).auth == "ntlmv1"


# --- a crafted Kerberos AP-REQ (structure only: no keys, no real ticket) -------------------


def tlv(tag: int, value: bytes) -> bytes:
    length = len(value)
    encoded = bytes([length]) if length < 0x80 else bytes([0x82]) + length.to_bytes(2, "big")
    return bytes([tag]) + encoded + value


def context(number: int, value: bytes) -> bytes:
    return tlv(0xA0 | number, value)


def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | arc & 0x7F)
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(der.TAG_OID, bytes(body))


def integer(value: int) -> bytes:
    return tlv(der.TAG_INTEGER, value.to_bytes(1, "big"))


def encrypted_data(etype: int) -> bytes:
    return tlv(der.TAG_SEQUENCE, context(0, integer(etype)) + context(2, tlv(der.TAG_OCTET_STRING, bytes(16))))


def kerberos_spnego_blob(etype: int) -> bytes:
    sname = tlv(der.TAG_SEQUENCE, context(0, integer(2)) + context(1, tlv(der.TAG_SEQUENCE, b"".join(
        tlv(der.TAG_GENERAL_STRING, part) for part in (b"cifs", b"fs1.lab.example")))))  # fmt: skip
    ticket = tlv(0x61, tlv(der.TAG_SEQUENCE, context(0, integer(5)) + context(1, tlv(der.TAG_GENERAL_STRING,
        b"LAB.EXAMPLE")) + context(2, sname) + context(3, encrypted_data(etype))))  # fmt: skip
    ap_options = context(2, tlv(der.TAG_BIT_STRING, bytes(5)))
    fields = context(0, integer(5)) + context(1, integer(14)) + ap_options + context(3, ticket)
    ap_req = tlv(0x6E, tlv(der.TAG_SEQUENCE, fields + context(4, encrypted_data(18))))
    mech_token = tlv(0x60, oid(spnego.OID_KERBEROS) + kerberos.KRB5_TOK_ID_AP_REQ + ap_req)
    mech_types = tlv(der.TAG_SEQUENCE, oid(spnego.OID_MS_KERBEROS) + oid(spnego.OID_KERBEROS) + oid(spnego.OID_NTLMSSP))
    init = context(0, tlv(der.TAG_SEQUENCE, context(0, mech_types) + context(2, tlv(der.TAG_OCTET_STRING, mech_token))))
    return tlv(0x60, oid(spnego.OID_SPNEGO) + init)


def test_kerberos_ap_req_in_spnego() -> None:
    token = spnego.parse_security_blob(kerberos_spnego_blob(etype=23))
    assert not isinstance(token, Anomaly)
    assert [spnego.mechanism_name(m) for m in token.mech_types] == ["MS Kerberos", "Kerberos", "NTLMSSP"]
    assert token.kerberos == KerberosApReq(
        realm="LAB.EXAMPLE", service_principal="cifs/fs1.lab.example", ticket_etype=23, authenticator_etype=18
    )
    assert token.kerberos.ticket_etype in kerberos.WEAK_ENCRYPTION_TYPES  # RC4-HMAC


def test_truncated_blobs_are_anomalies() -> None:
    """A cut blob is one der_length_beyond_buffer: the result itself, or a note on what decoded before the cut."""
    blob = kerberos_spnego_blob(etype=18)
    for cut in (1, 2, 10, len(blob) // 2, len(blob) - 1):
        result = spnego.parse_security_blob(blob[:cut])
        notes = [result] if isinstance(result, Anomaly) else list(result.anomalies)
        assert [note.kind for note in notes] == [AnomalyKind.DER_LENGTH_BEYOND_BUFFER]
        assert isinstance(result, Anomaly) or result.kerberos is None  # the cut AP-REQ is not reported


def test_der_reader_bounds() -> None:
    assert der.read_element(b"\x30\x84\xff\xff\xff\xff") is None  # length past the data
    assert der.read_element(b"\x30\x80\x00\x00") is None  # indefinite length is not DER
    assert der.read_element(b"\x1f\x01\x00") is None  # multi-octet tag
    assert der.read_oid(b"\x06\x03\x2b\x06\x81", der.Element(6, 2, 5)) is None  # last arc unterminated
    assert der.read_oid(oid("1.2.840.113554.1.2.2"), der.read_element(oid("1.2.840.113554.1.2.2"))) == (
        "1.2.840.113554.1.2.2"
    )
    many = tlv(der.TAG_SEQUENCE, integer(1) * (der.MAX_ELEMENTS + 1))
    assert der.children(many, der.read_element(many)) is None  # type: ignore[arg-type]
