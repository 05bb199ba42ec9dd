"""SPNEGO security blobs (RFC 4178, [MS-SPNG]) and what they carry: NTLMSSP or a Kerberos AP-REQ.

The SMB security buffer holds either a GSS-API InitialContextToken with a
NegTokenInit (the first leg), a bare NegTokenResp (later legs), or, from old
clients, raw NTLMSSP. Parsing goes only as deep as the facts smbwatch reports.
"""

from __future__ import annotations

from dissectors import der, kerberos, ntlmssp
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


def parse_security_blob(blob: bytes) -> SpnegoToken | Anomaly:
    """A security buffer of SMB1 SESSION_SETUP_ANDX (extended security) or SMB2 SESSION_SETUP."""
    if blob[:8] == ntlmssp.NTLMSSP_SIGNATURE:
        message = ntlmssp.parse(blob)
        if isinstance(message, Anomaly):
            return message
        return SpnegoToken("raw", (), None, None, message, None)
    outer = der.read_element(blob)
    if outer is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "security blob is not a DER element")
    if outer.tag == GSS_APPLICATION_0:
        parts = der.children(blob, outer)
        if not parts or der.read_oid(blob, parts[0]) != OID_SPNEGO or len(parts) < 2:
            return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "InitialContextToken without the SPNEGO OID")
        outer = parts[1]
    if outer.tag == NEG_TOKEN_INIT:
        return _neg_token_init(blob, outer)
    if outer.tag == NEG_TOKEN_RESP:
        return _neg_token_resp(blob, outer)
    return Anomaly(AnomalyKind.SPNEGO_MALFORMED, f"unexpected token tag 0x{outer.tag:02x}")


def _inner_sequence(blob: bytes, wrapper: der.Element) -> der.Element | None:
    sequence = der.read_element(blob, wrapper.start, wrapper.end)
    return sequence if sequence is not None and sequence.tag == der.TAG_SEQUENCE else None


def _neg_token_init(blob: bytes, wrapper: der.Element) -> SpnegoToken | Anomaly:
    """NegTokenInit: mechTypes [0], reqFlags [1], mechToken [2], mechListMIC [3] (negHints [3] in [MS-SPNG])."""
    sequence = _inner_sequence(blob, wrapper)
    if sequence is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "NegTokenInit is not a SEQUENCE")
    fields = der.context_fields(blob, sequence)
    mech_types: list[str] = []
    mech_list = fields.get(0)
    if mech_list is not None and mech_list.tag == der.TAG_SEQUENCE:
        for element in (der.children(blob, mech_list) or ())[:MAX_MECH_TYPES]:
            oid = der.read_oid(blob, element)
            if oid is not None:
                mech_types.append(oid)
    inner = _mech_token(der.read_octets(blob, fields.get(2)))
    if isinstance(inner, Anomaly):
        return inner
    return SpnegoToken("init", tuple(mech_types), None, None, *inner)


def _neg_token_resp(blob: bytes, wrapper: der.Element) -> SpnegoToken | Anomaly:
    """NegTokenResp: negState [0], supportedMech [1], responseToken [2], mechListMIC [3]."""
    sequence = _inner_sequence(blob, wrapper)
    if sequence is None:
        return Anomaly(AnomalyKind.SPNEGO_MALFORMED, "NegTokenResp is not a SEQUENCE")
    fields = der.context_fields(blob, sequence)
    neg_state = der.read_integer(blob, fields.get(0))
    supported = der.read_oid(blob, fields.get(1))
    inner = _mech_token(der.read_octets(blob, fields.get(2)))
    if isinstance(inner, Anomaly):
        return inner
    return SpnegoToken("response", (), neg_state, supported, *inner)


def _mech_token(token: bytes | None) -> tuple[NtlmsspMessage | None, KerberosApReq | None] | Anomaly:
    """What a mechToken/responseToken holds: NTLMSSP, a Kerberos AP-REQ, or nothing smbwatch decodes."""
    if not token:
        return None, None
    if token[:8] == ntlmssp.NTLMSSP_SIGNATURE:
        message = ntlmssp.parse(token)
        return message if isinstance(message, Anomaly) else (message, None)
    ap_req = kerberos.parse_gss_token(token)
    return ap_req if isinstance(ap_req, Anomaly) else (None, ap_req)
