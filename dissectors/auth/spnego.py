"""SPNEGO security blobs (RFC 4178, [MS-SPNG]) and what they carry: NTLMSSP or a Kerberos AP-REQ.

The SMB security buffer holds either a GSS-API InitialContextToken with a
NegTokenInit (the first leg), a bare NegTokenResp (later legs), or, from old
clients, raw NTLMSSP. Parsing goes only as deep as the facts smbwatch reports.
"""

from __future__ import annotations

from dataclasses import replace

from dissectors.auth import der, kerberos, ntlmssp
from dissectors.records import Anomaly, AnomalyKind, KerberosApReq, NtlmsspMessage, SpnegoToken

OID_SPNEGO = "1.3.6.1.5.5.2"
OID_NTLMSSP = "1.3.6.1.4.1.311.2.2.10"
OID_KERBEROS = "1.2.840.113554.1.2.2"
OID_MS_KERBEROS = "1.2.840.48018.1.2.2"  # Windows 2000's mistaken encoding, still offered first by Windows
OID_KERBEROS_USER_TO_USER = "1.2.840.113554.1.2.2.3"
OID_NEGOEX = "1.3.6.1.4.1.311.2.2.30"
MECHANISM_NAMES = {
    OID_NTLMSSP: "NTLMSSP",
    OID_KERBEROS: "Kerberos",
    OID_MS_KERBEROS: "MS Kerberos",
    OID_KERBEROS_USER_TO_USER: "Kerberos user-to-user",
    OID_NEGOEX: "NegoEx",
}

GSS_APPLICATION_0 = der.CLASS_APPLICATION | der.CONSTRUCTED | 0  # InitialContextToken
NEG_TOKEN_INIT = der.CLASS_CONTEXT | der.CONSTRUCTED | 0
NEG_TOKEN_RESP = der.CLASS_CONTEXT | der.CONSTRUCTED | 1
MAX_MECH_TYPES = 16


class NegState:
    """RFC 4178 4.2.2 negState."""

    ACCEPT_COMPLETED = 0
    ACCEPT_INCOMPLETE = 1
    REJECT = 2
    REQUEST_MIC = 3


def mechanism_name(oid: str) -> str:
    return MECHANISM_NAMES.get(oid, oid)


def token_anomalies(body: object) -> tuple[Anomaly, ...]:
    """What the security token of a SESSION_SETUP body was decoded despite; () for any other body."""
    security = getattr(body, "security", None)
    return security.anomalies if isinstance(security, SpnegoToken) else ()


def parse_security_blob(blob: bytes) -> SpnegoToken | Anomaly:
    """A security buffer of SMB1 SESSION_SETUP_ANDX (extended security) or SMB2 SESSION_SETUP.

    A token that decodes carries in `anomalies` what it was decoded despite, each kind at most
    once per token (the framing layer emits them after its message, so each is counted once):
    - `spnego_mech_types_full`: mechTypes held more than MAX_MECH_TYPES; the first are kept.
    - `der_length_beyond_buffer`: some DER element (at any depth, the Kerberos AP-REQ included)
      claimed more bytes than its parent or the blob holds. One cut crosses every level that
      encloses it, so it is one anomaly for the token, not one per level; what was complete
      before the cut is kept. If the token does not decode at all, the cut is still its one
      anomaly (returned instead of the token; the detail names what failed after it).
    - `kerberos_name_components_full`: the Kerberos ticket's service name had more than
      kerberos.MAX_NAME_COMPONENTS components; the first are kept.
    - `spnego_malformed`: a NegTokenInit/NegTokenResp with more than der.MAX_ELEMENTS members
      (RFC 4178 defines five): its members are not read.
    """
    if blob[:8] == ntlmssp.NTLMSSP_SIGNATURE:
        message = ntlmssp.parse(blob)
        if isinstance(message, Anomaly):
            return message
        return SpnegoToken("raw", (), None, None, message, None)
    damage = der.Damage()
    result = _parse_token(blob, damage)
    cut = damage.length_beyond_buffer
    if isinstance(result, Anomaly):
        if cut is not None:
            return Anomaly(AnomalyKind.DER_LENGTH_BEYOND_BUFFER, f"{cut} (then {result.kind.value}: {result.detail})")
        return result
    notes = list(result.anomalies)
    if result.kerberos is not None:
        notes.extend(result.kerberos.anomalies)  # once per token: the token has one AP-REQ
    if cut is not None:
        notes.append(Anomaly(AnomalyKind.DER_LENGTH_BEYOND_BUFFER, cut))
    if damage.elements_full:
        notes.append(Anomaly(AnomalyKind.SPNEGO_MALFORMED, f"a member list longer than {der.MAX_ELEMENTS}: not read"))
    return replace(result, anomalies=tuple(notes)) if notes else result


def _parse_token(blob: bytes, damage: der.Damage) -> SpnegoToken | Anomaly:
    outer = der.read_element(blob, 0, None, damage)
    if outer is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "security blob is not a DER element")
    if outer.tag == GSS_APPLICATION_0:
        parts = der.children(blob, outer, damage)
        if not parts or der.read_oid(blob, parts[0]) != OID_SPNEGO or len(parts) < 2:
            return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "InitialContextToken without the SPNEGO OID")
        outer = parts[1]
    if outer.tag == NEG_TOKEN_INIT:
        return _neg_token_init(blob, outer, damage)
    if outer.tag == NEG_TOKEN_RESP:
        return _neg_token_resp(blob, outer, damage)
    return Anomaly(AnomalyKind.SPNEGO_MALFORMED, f"unexpected token tag 0x{outer.tag:02x}")


def _inner_sequence(blob: bytes, wrapper: der.Element, damage: der.Damage) -> der.Element | None:
    sequence = der.read_element(blob, wrapper.start, wrapper.end, damage)
    return sequence if sequence is not None and sequence.tag == der.TAG_SEQUENCE else None


def _neg_token_init(blob: bytes, wrapper: der.Element, damage: der.Damage) -> SpnegoToken | Anomaly:
    """NegTokenInit: mechTypes [0], reqFlags [1], mechToken [2], mechListMIC [3] (negHints [3] in [MS-SPNG])."""
    sequence = _inner_sequence(blob, wrapper, damage)
    if sequence is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "NegTokenInit is not a SEQUENCE")
    fields = der.context_fields(blob, sequence, damage)
    mech_types: list[str] = []
    notes: tuple[Anomaly, ...] = ()
    mech_list = fields.get(0)
    if mech_list is not None and mech_list.tag == der.TAG_SEQUENCE:
        # One more than is kept tells that more follow, without reading a hostile list to its end.
        elements = der.first_children(blob, mech_list, MAX_MECH_TYPES + 1, damage)
        if len(elements) > MAX_MECH_TYPES:
            notes = (Anomaly(AnomalyKind.SPNEGO_MECH_TYPES_FULL, f"more than {MAX_MECH_TYPES} mechTypes"),)
        for element in elements[:MAX_MECH_TYPES]:
            oid = der.read_oid(blob, element)
            if oid is not None:
                mech_types.append(oid)
    inner = _mech_token(der.read_octets(blob, fields.get(2)), damage)
    if isinstance(inner, Anomaly):
        return inner
    return SpnegoToken("init", tuple(mech_types), None, None, *inner, anomalies=notes)


def _neg_token_resp(blob: bytes, wrapper: der.Element, damage: der.Damage) -> SpnegoToken | Anomaly:
    """NegTokenResp: negState [0], supportedMech [1], responseToken [2], mechListMIC [3]."""
    sequence = _inner_sequence(blob, wrapper, damage)
    if sequence is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "NegTokenResp is not a SEQUENCE")
    fields = der.context_fields(blob, sequence, damage)
    neg_state = der.read_integer(blob, fields.get(0))
    supported = der.read_oid(blob, fields.get(1))
    inner = _mech_token(der.read_octets(blob, fields.get(2)), damage)
    if isinstance(inner, Anomaly):
        return inner
    return SpnegoToken("response", (), neg_state, supported, *inner)


def _mech_token(
    token: bytes | None, damage: der.Damage
) -> tuple[NtlmsspMessage | None, KerberosApReq | None] | Anomaly:
    """What a mechToken/responseToken holds: NTLMSSP, a Kerberos AP-REQ, or nothing smbwatch decodes."""
    if not token:
        return None, None
    if token[:8] == ntlmssp.NTLMSSP_SIGNATURE:
        message = ntlmssp.parse(token)
        return message if isinstance(message, Anomaly) else (message, None)
    ap_req = kerberos.parse_gss_token(token, damage)
    return ap_req if isinstance(ap_req, Anomaly) else (None, ap_req)
