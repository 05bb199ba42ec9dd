"""A minimal, bounded reader of ASN.1 DER (X.690), enough for SPNEGO and Kerberos AP-REQ.

Written here rather than taken from an ASN.1 library because smbwatch needs
only to walk tag-length-value elements and read a few INTEGERs, OIDs and
strings out of untrusted bytes: every read is checked against the buffer, the
nesting depth and element count are capped, and nothing raises (a malformed
element is `None`). The full libraries (pyasn1, asn1crypto) decode whole
schemas and raise on bad input, which would need wrapping everywhere.

A parser that wants to keep what comes before damage passes a `Damage` (one per
token) to `read_element`, `children`, `first_children` and `context_fields`: an
element whose header or length runs past the bytes its parent holds is then noted
there once, a constructed one is clipped to what is there (its complete members
are still read), a primitive one (an OID, INTEGER or OCTET STRING cut short would
be wrong) is `None`. The caller turns the note into one anomaly per token, however
many nested levels the cut crossed. Without a `Damage` every such element is `None`.
"""

from __future__ import annotations

from typing import NamedTuple

# Tag classes (X.690 8.1.2.2).
CLASS_UNIVERSAL = 0x00
CLASS_APPLICATION = 0x40
CLASS_CONTEXT = 0x80
CONSTRUCTED = 0x20

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_SEQUENCE = 0x30
TAG_GENERAL_STRING = 0x1B

# Far more than SPNEGO or Kerberos nest, and a bound on work for hostile input.
MAX_ELEMENTS = 256
MAX_LENGTH_OCTETS = 4


class Element(NamedTuple):
    """One TLV: `tag` is the identifier octet (single-octet tags only), the value is data[start:end]."""

    tag: int
    start: int
    end: int

    @property
    def constructed(self) -> bool:
        return bool(self.tag & CONSTRUCTED)


class Damage:
    """What one walk over one token met and worked around (see the module docstring); mutable, per token."""

    __slots__ = ("elements_full", "length_beyond_buffer", "overruns")

    def __init__(self) -> None:
        # The first element that claimed more bytes than were there, described; None if none did.
        self.length_beyond_buffer: str | None = None
        self.overruns = 0  # how many elements did (one cut is met again at each level it crosses)
        # A constructed element held more than MAX_ELEMENTS members (children() gave up on it).
        self.elements_full = False

    def note_length(self, tag: int, offset: int, claimed: int, available: int) -> None:
        self.overruns += 1
        if self.length_beyond_buffer is None:
            self.length_beyond_buffer = f"element 0x{tag:02x} at {offset} claims {claimed} bytes, {available} follow"


def read_element(
    data: bytes, offset: int = 0, limit: int | None = None, damage: Damage | None = None
) -> Element | None:
    """The element at `offset`, whose value must end by `limit` (default: end of data).

    With `damage`, an element running past `limit` is noted there and clipped (constructed) or None (primitive).
    """
    end_limit = len(data) if limit is None else min(limit, len(data))
    if offset >= end_limit:
        return None  # nothing there: absent, not damaged
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        return None  # multi-octet tags are not used by the structures smbwatch reads
    if offset + 2 > end_limit:
        if damage is not None:
            damage.note_length(tag, offset, 2, end_limit - offset)  # the length octet itself is missing
        return None
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > MAX_LENGTH_OCTETS:
            return None  # indefinite length is not DER
        if position + count > end_limit:
            if damage is not None:
                damage.note_length(tag, offset, 2 + count, end_limit - offset)
            return None
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > end_limit:
        if damage is None:
            return None
        damage.note_length(tag, offset, position + length - offset, end_limit - offset)
        if not tag & CONSTRUCTED:
            return None
        return Element(tag, position, end_limit)
    return Element(tag, position, position + length)


def children(data: bytes, parent: Element, damage: Damage | None = None) -> list[Element] | None:
    """The elements inside a constructed element, or None if they do not tile it exactly.

    With `damage`, members before one that runs past the parent's end are returned (the overrun is
    noted), and a parent with more than MAX_ELEMENTS members is noted as `elements_full`.
    """
    found: list[Element] = []
    position = parent.start
    while position < parent.end:
        if len(found) >= MAX_ELEMENTS:
            if damage is not None:
                damage.elements_full = True
            return None
        overruns = damage.overruns if damage is not None else 0
        element = read_element(data, position, parent.end, damage)
        if element is None:
            overran = damage is not None and damage.overruns > overruns
            return found if overran else None
        found.append(element)
        position = element.end
    return found


def first_children(data: bytes, parent: Element, count: int, damage: Damage | None = None) -> list[Element]:
    """Up to `count` leading elements inside a constructed element; the rest are not read.

    Ask for one more than you keep to learn whether more follow. Reading stops at the first
    element that cannot be read (an overrun is noted in `damage`).
    """
    found: list[Element] = []
    position = parent.start
    while position < parent.end and len(found) < count:
        element = read_element(data, position, parent.end, damage)
        if element is None:
            break
        found.append(element)
        position = element.end
    return found


def context_fields(data: bytes, sequence: Element, damage: Damage | None = None) -> dict[int, Element]:
    """[n]-tagged members of a SEQUENCE by n, each unwrapped to the element it holds explicitly."""
    members = children(data, sequence, damage)
    fields: dict[int, Element] = {}
    for member in members or ():
        if member.tag & 0xC0 != CLASS_CONTEXT or not member.constructed:
            continue
        inner = read_element(data, member.start, member.end, damage)
        if inner is not None:
            fields[member.tag & 0x1F] = inner
    return fields


def read_integer(data: bytes, element: Element | None) -> int | None:
    if element is None or element.tag not in (TAG_INTEGER, TAG_ENUMERATED) or not 0 < element.end - element.start <= 8:
        return None
    return int.from_bytes(data[element.start : element.end], "big", signed=True)


def read_oid(data: bytes, element: Element | None) -> str | None:
    """Dotted OID text (X.690 8.19)."""
    if element is None or element.tag != TAG_OID or element.end <= element.start or element.end - element.start > 64:
        return None
    arcs: list[int] = []
    value = 0
    for byte in data[element.start : element.end]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if data[element.end - 1] & 0x80:
        return None
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def read_octets(data: bytes, element: Element | None) -> bytes | None:
    if element is None or element.tag != TAG_OCTET_STRING:
        return None
    return data[element.start : element.end]


def read_string(data: bytes, element: Element | None) -> str | None:
    """GeneralString/KerberosString: ASCII in practice; every byte kept (latin-1)."""
    if element is None or element.constructed:
        return None
    return data[element.start : element.end].decode("latin-1")
