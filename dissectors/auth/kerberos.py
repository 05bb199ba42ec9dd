"""The Kerberos AP-REQ inside SPNEGO (RFC 4120 5.5.1, RFC 4121 4.1): realm, service and ticket cipher.

Only the cleartext parts of the ticket are read. The client's name sits in the
encrypted authenticator, so it is never visible to a passive monitor.
"""

from __future__ import annotations

from enum import IntEnum

from dissectors.auth import der
from dissectors.records import Anomaly, AnomalyKind, KerberosApReq

KRB5_TOK_ID_AP_REQ = b"\x01\x00"  # RFC 4121 4.1
GSS_APPLICATION_0 = bytes([der.CLASS_APPLICATION | der.CONSTRUCTED])  # RFC 2743 3.1 InitialContextToken
KRB_AP_REQ = der.CLASS_APPLICATION | der.CONSTRUCTED | 14
KRB_TICKET = der.CLASS_APPLICATION | der.CONSTRUCTED | 1
MAX_NAME_COMPONENTS = 8


class EncryptionType(IntEnum):
    """RFC 3961 8 / IANA Kerberos encryption type numbers seen on Windows networks."""

    des_cbc_crc = 1
    des_cbc_md5 = 3
    aes128_cts_hmac_sha1_96 = 17
    aes256_cts_hmac_sha1_96 = 18
    aes128_cts_hmac_sha256_128 = 19
    aes256_cts_hmac_sha384_192 = 20
    rc4_hmac = 23
    rc4_hmac_exp = 24


# Ciphers an administrator should retire: DES, and RC4-HMAC (its key is the NT hash).
WEAK_ENCRYPTION_TYPES = frozenset(
    (EncryptionType.des_cbc_crc, EncryptionType.des_cbc_md5, EncryptionType.rc4_hmac, EncryptionType.rc4_hmac_exp)
)


def parse_gss_token(token: bytes, damage: der.Damage | None = None) -> KerberosApReq | Anomaly | None:
    """A GSS-API Kerberos token: [APPLICATION 0] { krb5 OID, TOK_ID, AP-REQ }; None if it is another token.

    `damage` (see `dissectors.auth.der`) notes lengths past the token's end; it is consulted only once the
    token starts as a GSS-API token, so another mechanism's bytes (NegoEx) are never taken for a cut one.
    """
    if token[:1] != GSS_APPLICATION_0:
        return None
    outer = der.read_element(token, 0, None, damage)
    if outer is None:
        return None
    oid = der.read_element(token, outer.start, outer.end, damage)
    if oid is None or oid.tag != der.TAG_OID:
        return None
    if token[oid.end : oid.end + 2] != KRB5_TOK_ID_AP_REQ:
        return None  # e.g. a KRB_ERROR or AP-REP token, or NegoEx
    return parse_ap_req(token, oid.end + 2, outer.end, damage)


def parse_ap_req(data: bytes, offset: int, limit: int, damage: der.Damage | None = None) -> KerberosApReq | Anomaly:
    """AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno, msg-type, ap-options, ticket [3], authenticator [4] }

    (RFC 4120 5.5.1), read between `offset` and `limit`.
    """
    wrapper = der.read_element(data, offset, limit, damage)
    if wrapper is None or wrapper.tag != KRB_AP_REQ:
        return Anomaly(AnomalyKind.KERBEROS_MALFORMED, "no AP-REQ after the token id")
    sequence = der.read_element(data, wrapper.start, wrapper.end, damage)
    if sequence is None or sequence.tag != der.TAG_SEQUENCE:
        return Anomaly(AnomalyKind.KERBEROS_MALFORMED, "AP-REQ is not a SEQUENCE")
    fields = der.context_fields(data, sequence, damage)
    ticket = fields.get(3)
    if ticket is None or ticket.tag != KRB_TICKET:
        return Anomaly(AnomalyKind.KERBEROS_MALFORMED, "AP-REQ without a ticket")
    ticket_sequence = der.read_element(data, ticket.start, ticket.end, damage)
    if ticket_sequence is None or ticket_sequence.tag != der.TAG_SEQUENCE:
        return Anomaly(AnomalyKind.KERBEROS_MALFORMED, "ticket is not a SEQUENCE")
    ticket_fields = der.context_fields(data, ticket_sequence, damage)
    realm = der.read_string(data, ticket_fields.get(1))
    service, components = _principal_name(data, ticket_fields.get(2), damage)
    ticket_etype = _etype(data, ticket_fields.get(3), damage)
    if realm is None or service is None or ticket_etype is None:
        return Anomaly(AnomalyKind.KERBEROS_MALFORMED, "ticket without realm, sname or enc-part etype")
    notes: tuple[Anomaly, ...] = ()
    if components > MAX_NAME_COMPONENTS:
        notes = (
            Anomaly(
                AnomalyKind.KERBEROS_NAME_COMPONENTS_FULL,
                f"service name of {components} components: the first {MAX_NAME_COMPONENTS} kept",
            ),
        )
    return KerberosApReq(
        realm=realm,
        service_principal=service,
        ticket_etype=ticket_etype,
        authenticator_etype=_etype(data, fields.get(4), damage),
        anomalies=notes,
    )


def _principal_name(data: bytes, element: der.Element | None, damage: der.Damage | None) -> tuple[str | None, int]:
    """PrincipalName ::= SEQUENCE { name-type [0], name-string [1] SEQUENCE OF KerberosString }, its
    first MAX_NAME_COMPONENTS components joined by '/'; and how many components it has."""
    if element is None or element.tag != der.TAG_SEQUENCE:
        return None, 0
    names = der.context_fields(data, element, damage).get(1)
    if names is None or names.tag != der.TAG_SEQUENCE:
        return None, 0
    components = der.children(data, names, damage) or ()
    parts = [der.read_string(data, part) for part in components[:MAX_NAME_COMPONENTS]]
    if not parts or any(part is None for part in parts):
        return None, len(components)
    return "/".join(part for part in parts if part is not None), len(components)


def _etype(data: bytes, element: der.Element | None, damage: der.Damage | None) -> int | None:
    """EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] OPTIONAL, cipher [2] }."""
    if element is None or element.tag != der.TAG_SEQUENCE:
        return None
    return der.read_integer(data, der.context_fields(data, element, damage).get(0))
