"""NTLMSSP messages ([MS-NLMP] 2.2.1): who authenticates, from where, and with which NTLM version.

Every (length, offset) field is checked against the message before it is read;
a field that points outside gives an `Anomaly`, never an exception. Responses
and keys are not kept: only their lengths, which tell NTLMv1 from NTLMv2.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag

from dissectors.records import (
    Anomaly,
    AnomalyKind,
    NtlmsspAuthenticate,
    NtlmsspChallenge,
    NtlmsspMessage,
    NtlmsspNegotiate,
    NtlmVersion,
)
from dissectors.text import oem, utf16le

NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
_FIELD = struct.Struct("<HHI")  # Len, MaxLen, BufferOffset
_VERSION = struct.Struct("<BBH3xB")
MAX_AV_PAIRS = 64


class NtlmMessageType(IntEnum):
    """[MS-NLMP] 2.2.1 MessageType."""

    NEGOTIATE = 1
    CHALLENGE = 2
    AUTHENTICATE = 3


class NtlmNegotiateFlags(IntFlag):
    """[MS-NLMP] 2.2.2.5 NEGOTIATE."""

    NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
    NTLM_NEGOTIATE_OEM = 0x00000002
    NTLMSSP_REQUEST_TARGET = 0x00000004
    NTLMSSP_NEGOTIATE_SIGN = 0x00000010
    NTLMSSP_NEGOTIATE_SEAL = 0x00000020
    NTLMSSP_NEGOTIATE_DATAGRAM = 0x00000040
    NTLMSSP_NEGOTIATE_LM_KEY = 0x00000080
    NTLMSSP_NEGOTIATE_NTLM = 0x00000200
    NTLMSSP_NEGOTIATE_ANONYMOUS = 0x00000800
    NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x00001000
    NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x00002000
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
    NTLMSSP_TARGET_TYPE_DOMAIN = 0x00010000
    NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
    NTLMSSP_NEGOTIATE_IDENTIFY = 0x00100000
    NTLMSSP_REQUEST_NON_NT_SESSION_KEY = 0x00400000
    NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
    NTLMSSP_NEGOTIATE_VERSION = 0x02000000
    NTLMSSP_NEGOTIATE_128 = 0x20000000
    NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
    NTLMSSP_NEGOTIATE_56 = 0x80000000


class AvId(IntEnum):
    """[MS-NLMP] 2.2.2.1 AV_PAIR AvId."""

    MsvAvEOL = 0x0000
    MsvAvNbComputerName = 0x0001
    MsvAvNbDomainName = 0x0002
    MsvAvDnsComputerName = 0x0003
    MsvAvDnsDomainName = 0x0004
    MsvAvDnsTreeName = 0x0005
    MsvAvFlags = 0x0006
    MsvAvTimestamp = 0x0007
    MsvAvSingleHost = 0x0008
    MsvAvTargetName = 0x0009
    MsvAvChannelBindings = 0x000A


_UNICODE = int(NtlmNegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE)
_VERSION_PRESENT = int(NtlmNegotiateFlags.NTLMSSP_NEGOTIATE_VERSION)


def _field(message: bytes, at: int, name: str) -> bytes | Anomaly:
    """The bytes a (Len, MaxLen, BufferOffset) field at `at` points to."""
    if at + _FIELD.size > len(message):
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, f"{name} field past the message")
    length, _max_length, offset = _FIELD.unpack_from(message, at)
    if length and (offset < at or offset + length > len(message)):
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, f"{name} ({length} bytes at {offset}) outside the message")
    return message[offset : offset + length]


def _text(raw: bytes, flags: int) -> str:
    return utf16le(raw) if flags & _UNICODE else oem(raw)


def _version(message: bytes, at: int, flags: int, payload_start: int) -> NtlmVersion | None:
    """The VERSION field, present when the flag says so and the payload does not start before it."""
    if not flags & _VERSION_PRESENT or at + _VERSION.size > len(message) or payload_start < at + _VERSION.size:
        return None
    major, minor, build, revision = _VERSION.unpack_from(message, at)
    return NtlmVersion(major, minor, build, revision)


def _payload_start(message: bytes, field_offsets: tuple[int, ...]) -> int:
    """Where the payload begins: the lowest offset any non-empty field points to."""
    starts = [
        _FIELD.unpack_from(message, at)[2]
        for at in field_offsets
        if at + _FIELD.size <= len(message) and _FIELD.unpack_from(message, at)[0]
    ]
    return min(starts, default=len(message))


def parse_negotiate(message: bytes) -> NtlmsspNegotiate | Anomaly:
    """[MS-NLMP] 2.2.1.1: NegotiateFlags at 12, DomainNameFields at 16, WorkstationFields at 24, Version at 32."""
    if len(message) < 16:
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, "NEGOTIATE shorter than its flags")
    flags = int.from_bytes(message[12:16], "little")
    if len(message) < 32:  # early clients send no name fields at all
        return NtlmsspNegotiate(flags, "", "", None)
    domain = _field(message, 16, "DomainName")
    if isinstance(domain, Anomaly):
        return domain
    workstation = _field(message, 24, "Workstation")
    if isinstance(workstation, Anomaly):
        return workstation
    version = _version(message, 32, flags, _payload_start(message, (16, 24)))
    # Names in NEGOTIATE are always OEM ([MS-NLMP] 2.2.1.1).
    return NtlmsspNegotiate(flags, oem(domain), oem(workstation), version)


def parse_challenge(message: bytes) -> NtlmsspChallenge | Anomaly:
    """[MS-NLMP] 2.2.1.2: TargetNameFields at 12, NegotiateFlags at 20, TargetInfoFields at 40, Version at 48."""
    if len(message) < 32:
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, "CHALLENGE shorter than its fixed part")
    flags = int.from_bytes(message[20:24], "little")
    target_name = _field(message, 12, "TargetName")
    if isinstance(target_name, Anomaly):
        return target_name
    names: dict[int, str] = {}
    version = None
    if len(message) >= 48:
        target_info = _field(message, 40, "TargetInfo")
        if isinstance(target_info, Anomaly):
            return target_info
        pairs = _av_pairs(target_info)
        if isinstance(pairs, Anomaly):
            return pairs
        names = pairs
        version = _version(message, 48, flags, _payload_start(message, (12, 40)))
    return NtlmsspChallenge(
        flags=flags,
        target_name=_text(target_name, flags),
        nb_computer_name=names.get(AvId.MsvAvNbComputerName),
        nb_domain_name=names.get(AvId.MsvAvNbDomainName),
        dns_computer_name=names.get(AvId.MsvAvDnsComputerName),
        dns_domain_name=names.get(AvId.MsvAvDnsDomainName),
        dns_tree_name=names.get(AvId.MsvAvDnsTreeName),
        version=version,
    )


_NAME_AV_IDS = frozenset(
    (
        AvId.MsvAvNbComputerName,
        AvId.MsvAvNbDomainName,
        AvId.MsvAvDnsComputerName,
        AvId.MsvAvDnsDomainName,
        AvId.MsvAvDnsTreeName,
    )
)


def _av_pairs(data: bytes) -> dict[int, str] | Anomaly:
    """[MS-NLMP] 2.2.2.1: the name pairs of a TargetInfo list (always UTF-16LE)."""
    names: dict[int, str] = {}
    position = 0
    for _ in range(MAX_AV_PAIRS):
        if position + 4 > len(data):
            return names  # some servers omit MsvAvEOL
        av_id, length = struct.unpack_from("<HH", data, position)
        if av_id == AvId.MsvAvEOL:
            return names
        value = data[position + 4 : position + 4 + length]
        if len(value) < length:
            return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, f"AV pair 0x{av_id:04x} runs past TargetInfo")
        if av_id in _NAME_AV_IDS:
            names[av_id] = utf16le(value)
        position += 4 + length
    return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, f"more than {MAX_AV_PAIRS} AV pairs")


def parse_authenticate(message: bytes) -> NtlmsspAuthenticate | Anomaly:
    """[MS-NLMP] 2.2.1.3: six (Len, MaxLen, Offset) fields from 12, NegotiateFlags at 60, Version at 64."""
    if len(message) < 64:
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, "AUTHENTICATE shorter than its fixed part")
    flags = int.from_bytes(message[60:64], "little")
    fields = {}
    for name, at in (("LmChallengeResponse", 12), ("NtChallengeResponse", 20), ("DomainName", 28),
                     ("UserName", 36), ("Workstation", 44), ("EncryptedRandomSessionKey", 52)):  # fmt: skip
        value = _field(message, at, name)
        if isinstance(value, Anomaly):
            return value
        fields[name] = value
    version = _version(message, 64, flags, _payload_start(message, (12, 20, 28, 36, 44, 52)))
    return NtlmsspAuthenticate(
        flags=flags,
        user=_text(fields["UserName"], flags),
        domain=_text(fields["DomainName"], flags),
        workstation=_text(fields["Workstation"], flags),
        lm_response_length=len(fields["LmChallengeResponse"]),
        nt_response_length=len(fields["NtChallengeResponse"]),
        version=version,
    )


def parse(message: bytes) -> NtlmsspMessage | Anomaly:
    """Any NTLMSSP message, by its MessageType."""
    if len(message) < 12 or message[:8] != NTLMSSP_SIGNATURE:
        return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, "no NTLMSSP signature")
    message_type = int.from_bytes(message[8:12], "little")
    if message_type == NtlmMessageType.NEGOTIATE:
        return parse_negotiate(message)
    if message_type == NtlmMessageType.CHALLENGE:
        return parse_challenge(message)
    if message_type == NtlmMessageType.AUTHENTICATE:
        return parse_authenticate(message)
    return Anomaly(AnomalyKind.NTLMSSP_MALFORMED, f"MessageType {message_type}")
