"""Fuzz: SPNEGO, NTLMSSP, Kerberos and DER parsing never raise, never loop, never allocate without bound.

Inputs are random bytes and mutations (flips, cuts, insertions) of real security blobs
cut from the recordings (tests/auth_samples.py) and of a crafted Kerberos AP-REQ.
"""

from __future__ import annotations

import struct
import typing

from auth_samples import (
    SMB1_SESSION_SETUP_AUTHENTICATE,
    SMB1_SESSION_SETUP_RESPONSE,
    SMB2_SESSION_SETUP_AUTHENTICATE,
    SMB2_SESSION_SETUP_CHALLENGE,
    SMB2_SESSION_SETUP_NEGOTIATE,
)
from hypothesis import given
from hypothesis import strategies as st
from test_authentication_dissectors import kerberos_spnego_blob

from dissectors.auth import der, kerberos, ntlmssp, spnego
from dissectors.message import dissect_session_message
from dissectors.records import Anomaly, SpnegoToken, StreamEvent

SEEDS = [
    SMB2_SESSION_SETUP_NEGOTIATE,
    SMB2_SESSION_SETUP_CHALLENGE,
    SMB2_SESSION_SETUP_AUTHENTICATE,
    SMB1_SESSION_SETUP_AUTHENTICATE,
    SMB1_SESSION_SETUP_RESPONSE,
]


def smb2_security_blob(frame: bytes) -> bytes:
    """The security buffer of an SMB2 SESSION_SETUP (frame with its 4-byte NetBIOS header)."""
    message = frame[4:]
    at = 64 + (4 if message[16] & 1 else 12)  # response: offset at +4, request: at +12 ([MS-SMB2] 2.2.5, 2.2.6)
    offset, length = struct.unpack_from("<HH", message, at)
    return message[offset : offset + length]


SMB2_SEEDS = (SMB2_SESSION_SETUP_NEGOTIATE, SMB2_SESSION_SETUP_CHALLENGE, SMB2_SESSION_SETUP_AUTHENTICATE)
BLOBS = [kerberos_spnego_blob(18), kerberos_spnego_blob(23)] + [smb2_security_blob(seed) for seed in SMB2_SEEDS]
NTLM_MESSAGES = [seed[seed.find(b"NTLMSSP\x00") :] for seed in SEEDS if b"NTLMSSP\x00" in seed]
EVENT_TYPES = typing.get_args(StreamEvent)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.integers(0, 3))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if choice == 0 and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif choice == 1:
            del data[position:]
        elif choice == 2:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            data[position] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF)))
    return bytes(data)


@given(blob=st.one_of(st.binary(max_size=300), mutated(BLOBS)))
def test_spnego_and_kerberos_never_raise(blob: bytes) -> None:
    token = spnego.parse_security_blob(blob)
    assert isinstance(token, SpnegoToken | Anomaly)
    if isinstance(token, SpnegoToken):
        assert len(token.mech_types) <= spnego.MAX_MECH_TYPES
    assert kerberos.parse_gss_token(blob) is None or True  # must return, whatever it finds
    element = der.read_element(blob)
    if element is not None:
        assert element.start <= element.end <= len(blob)
        members = der.children(blob, element)
        assert members is None or len(members) <= der.MAX_ELEMENTS


@given(message=st.one_of(st.binary(max_size=300), mutated(NTLM_MESSAGES)))
def test_ntlmssp_never_raises(message: bytes) -> None:
    result = ntlmssp.parse(message)
    assert isinstance(result, Anomaly) or len(repr(result)) < 4 * len(message) + 1000


@given(frame=mutated([seed[4:] for seed in SEEDS]))
def test_session_setup_messages_never_raise(frame: bytes) -> None:
    for event in dissect_session_message(frame, len(frame)):
        assert isinstance(event, EVENT_TYPES)


def test_seeds_parse_cleanly() -> None:
    assert all(not isinstance(spnego.parse_security_blob(blob), Anomaly) for blob in BLOBS)
    assert all(not isinstance(ntlmssp.parse(message), Anomaly) for message in NTLM_MESSAGES)
