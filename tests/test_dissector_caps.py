"""Caps and damage the dissectors used to pass over silently, each now one counted anomaly.

- `spnego_mech_types_full`: a NegTokenInit listing more mechTypes than are kept;
- `der_length_beyond_buffer`: a DER element claiming more bytes than follow;
- `netbios_frame_cut_short`: a connection ending inside a NetBIOS session message.

Real clients send none of the first two, so those tokens are crafted and put into a real
recorded session (pcaps/recorded/smb3_1_1.pcap) in place of its first SESSION_SETUP request.
The cut frame is a real capture with its last data packet shortened.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from test_authentication_dissectors import context, kerberos_spnego_blob, oid, tlv
from test_flows import recorded_segments, run
from test_stream import frame, read_response
from wire_samples import SMB2_NEGOTIATE_REQUEST_311

from dissectors.auth import der, kerberos, spnego
from dissectors.message import dissect_session_message
from dissectors.records import Anomaly, AnomalyKind, Smb2Message, Smb2SessionSetupRequest, SpnegoToken
from dissectors.stream import SmbStream
from monitor.cli import analyze_files
from monitor.input.decode import TcpSegment
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
THE_THREE = {
    AnomalyKind.SPNEGO_MECH_TYPES_FULL,
    AnomalyKind.DER_LENGTH_BEYOND_BUFFER,
    AnomalyKind.NETBIOS_FRAME_CUT_SHORT,
}
SEQ_MASK = 0xFFFFFFFF
SESSION = recorded_segments("smb3_1_1.pcap")
SMB2_HEADER_SIZE = 64
_SESSION_SETUP_FIXED = struct.Struct("<HBBIIHHQ")


def extra_mech_types(count: int) -> list[str]:
    return [f"1.3.6.1.4.1.32473.{number}" for number in range(count)]  # 32473: the example enterprise number


def neg_token_init(mech_types: list[str], *members: bytes) -> bytes:
    mech_list = context(0, tlv(der.TAG_SEQUENCE, b"".join(oid(mech) for mech in mech_types)))
    sequence = tlv(der.TAG_SEQUENCE, mech_list + b"".join(members))
    return tlv(0x60, oid(spnego.OID_SPNEGO) + context(0, sequence))


def first_session_setup() -> tuple[int, bytes, spnego.SpnegoToken]:
    """Index of the recorded client SESSION_SETUP request (NegTokenInit), its message, its token."""
    for index, (_, segment) in enumerate(SESSION):
        if segment.dport != 445 or not segment.payload:
            continue
        [message] = dissect_session_message(segment.payload[4:], len(segment.payload) - 4)
        assert isinstance(message, Smb2Message)
        if isinstance(message.body, Smb2SessionSetupRequest) and message.body.security is not None:
            return index, segment.payload[4:], message.body.security
    raise AssertionError("no SESSION_SETUP request in smb3_1_1.pcap")


SETUP_INDEX, SETUP_MESSAGE, SETUP_TOKEN = first_session_setup()


def recorded_mech_token() -> bytes:
    """The NTLMSSP NEGOTIATE inside the recorded NegTokenInit, bytes as sent."""
    fixed = _SESSION_SETUP_FIXED.unpack_from(SETUP_MESSAGE, SMB2_HEADER_SIZE)
    blob = SETUP_MESSAGE[fixed[5] : fixed[5] + fixed[6]]
    outer = der.read_element(blob)
    assert outer is not None
    _, inner = der.children(blob, outer) or ()
    sequence = der.read_element(blob, inner.start, inner.end)
    assert sequence is not None
    token = der.read_octets(blob, der.context_fields(blob, sequence).get(2))
    assert token is not None and token.startswith(b"NTLMSSP\x00")
    return token


MECH_TOKEN = recorded_mech_token()


def with_blob(blob: bytes) -> bytes:
    """The recorded SESSION_SETUP request frame carrying `blob` instead of its own."""
    fields = list(_SESSION_SETUP_FIXED.unpack_from(SETUP_MESSAGE, SMB2_HEADER_SIZE))
    offset = SMB2_HEADER_SIZE + _SESSION_SETUP_FIXED.size
    fields[5], fields[6] = offset, len(blob)
    return frame(SETUP_MESSAGE[:SMB2_HEADER_SIZE] + _SESSION_SETUP_FIXED.pack(*fields) + blob)


def replaced(index: int, payload: bytes) -> list[tuple[float, TcpSegment]]:
    """The recorded session with segment `index` carrying `payload`; later sequence numbers follow."""
    original = SESSION[index][1]
    delta = len(payload) - len(original.payload)
    segments = []
    for position, (ts, segment) in enumerate(SESSION):
        if position == index:
            segment = segment._replace(payload=payload)
        elif position > index and segment.sport == original.sport:
            segment = segment._replace(seq=(segment.seq + delta) & SEQ_MASK)
        elif position > index and segment.flags & 0x10:
            segment = segment._replace(ack=(segment.ack + delta) & SEQ_MASK)
        segments.append((ts, segment))
    return segments


def three(counts: Counter[AnomalyKind]) -> Counter[AnomalyKind]:
    return Counter({kind: count for kind, count in counts.items() if kind in THE_THREE})


# --- spnego_mech_types_full ---------------------------------------------------------------


def test_recorded_token_is_clean() -> None:
    assert SETUP_TOKEN.anomalies == ()
    assert spnego.parse_security_blob(kerberos_spnego_blob(etype=18)).anomalies == ()  # type: ignore[union-attr]


@pytest.mark.parametrize("count", [spnego.MAX_MECH_TYPES, spnego.MAX_MECH_TYPES + 4, der.MAX_ELEMENTS + 44])
def test_mech_types_past_the_cap_keep_the_first_and_count_once(count: int) -> None:
    mech_types = [spnego.OID_NTLMSSP, *extra_mech_types(count - 1)]
    token = spnego.parse_security_blob(neg_token_init(mech_types, context(2, tlv(der.TAG_OCTET_STRING, MECH_TOKEN))))
    assert isinstance(token, SpnegoToken)
    assert token.mech_types == tuple(mech_types[: spnego.MAX_MECH_TYPES])
    assert token.ntlmssp is not None  # the token is still decoded
    full = [note for note in token.anomalies if note.kind is AnomalyKind.SPNEGO_MECH_TYPES_FULL]
    assert len(full) == (count > spnego.MAX_MECH_TYPES)
    assert len(token.anomalies) == len(full)


def test_twenty_mech_types_through_the_pipeline_count_once() -> None:
    """16 of the 20 are listed for the session; one anomaly in the connection and the totals."""
    mech_types = [spnego.OID_NTLMSSP, *extra_mech_types(19)]
    blob = neg_token_init(mech_types, context(2, tlv(der.TAG_OCTET_STRING, MECH_TOKEN)))
    events = dissect_session_message(with_blob(blob)[4:], len(with_blob(blob)) - 4)
    assert [type(event).__name__ for event in events] == ["Smb2Message", "Anomaly"]
    pipeline, [record] = run(replaced(SETUP_INDEX, with_blob(blob)))
    [session] = record["sessions"]
    assert len(session["mechanisms"]) == spnego.MAX_MECH_TYPES and session["mechanisms"][0] == "NTLMSSP"
    assert session["auth"] == "ntlmv2" and session["status"] == "STATUS_SUCCESS"  # the login is still followed
    assert record["anomalies"] == {"spnego_mech_types_full": 1}
    assert three(pipeline.anomalies()) == Counter({AnomalyKind.SPNEGO_MECH_TYPES_FULL: 1})


def test_a_member_list_past_der_max_elements_is_counted() -> None:
    """A NegTokenInit SEQUENCE of 257 members (RFC 4178 defines five) used to decode as an empty token."""
    members = context(2, tlv(der.TAG_OCTET_STRING, MECH_TOKEN)) * (der.MAX_ELEMENTS + 1)
    blob = tlv(0x60, oid(spnego.OID_SPNEGO) + context(0, tlv(der.TAG_SEQUENCE, members)))
    token = spnego.parse_security_blob(blob)
    assert isinstance(token, SpnegoToken)
    assert [note.kind for note in token.anomalies] == [AnomalyKind.SPNEGO_MALFORMED]


# --- der_length_beyond_buffer ---------------------------------------------------------------


def test_length_beyond_the_parent_keeps_the_fields_before_it() -> None:
    """A mechListMIC [3] claiming 200 bytes where 4 follow: mechTypes and the NTLMSSP token are kept."""
    mic = bytes([0xA3, 0x81, 200]) + b"\x04\x02\x00\x00"
    blob = neg_token_init([spnego.OID_NTLMSSP], context(2, tlv(der.TAG_OCTET_STRING, MECH_TOKEN)), mic)
    token = spnego.parse_security_blob(blob)
    assert isinstance(token, SpnegoToken)
    assert token.mech_types == (spnego.OID_NTLMSSP,) and token.ntlmssp == SETUP_TOKEN.ntlmssp
    [note] = token.anomalies
    assert note.kind is AnomalyKind.DER_LENGTH_BEYOND_BUFFER and "claims 203 bytes, 7 follow" in note.detail


def test_a_cut_across_every_level_is_one_anomaly() -> None:
    """A blob cut short: the outer wrapper, NegTokenInit, its SEQUENCE and the member the cut falls in all
    claim bytes that are not there; the token gets one anomaly and keeps what came before the cut."""
    blob = kerberos_spnego_blob(etype=18)
    mech_types_end = blob.index(oid(spnego.OID_NTLMSSP)) + len(oid(spnego.OID_NTLMSSP))
    for cut in range(1, len(blob)):
        result = spnego.parse_security_blob(blob[:cut])
        notes = [result] if isinstance(result, Anomaly) else list(result.anomalies)
        assert [note.kind for note in notes] == [AnomalyKind.DER_LENGTH_BEYOND_BUFFER], cut
        if cut >= mech_types_end:
            assert isinstance(result, SpnegoToken) and len(result.mech_types) == 3


def test_a_cut_inside_the_kerberos_ticket_keeps_the_ticket_facts() -> None:
    """The mechToken OCTET STRING is whole, but its AP-REQ claims 40 bytes more than it holds: the
    ticket's realm, service and cipher (before the cut) are kept, the authenticator's is not."""
    whole = spnego.parse_security_blob(kerberos_spnego_blob(etype=18))
    assert isinstance(whole, SpnegoToken) and whole.kerberos is not None
    blob = kerberos_spnego_blob(etype=18)
    start = blob.index(b"\x6e\x82")  # AP-REQ [APPLICATION 14] with a two-octet length (tlv() above)
    ap_req = blob[start : start + 4 + int.from_bytes(blob[start + 2 : start + 4], "big")]
    # The AP-REQ ends before its authenticator [4], its own length and its SEQUENCE's left as they were.
    cut_ap_req = ap_req[: ap_req.rindex(b"\xa4")]
    gss = tlv(0x60, oid(spnego.OID_KERBEROS) + kerberos.KRB5_TOK_ID_AP_REQ + cut_ap_req)
    mech_token = context(2, tlv(der.TAG_OCTET_STRING, gss))
    token = spnego.parse_security_blob(neg_token_init([spnego.OID_KERBEROS], mech_token))
    assert isinstance(token, SpnegoToken) and token.kerberos is not None
    assert (token.kerberos.realm, token.kerberos.service_principal, token.kerberos.ticket_etype) == (
        whole.kerberos.realm,
        whole.kerberos.service_principal,
        whole.kerberos.ticket_etype,
    )
    assert token.kerberos.authenticator_etype is None
    assert [note.kind for note in token.anomalies] == [AnomalyKind.DER_LENGTH_BEYOND_BUFFER]


def test_a_length_beyond_the_buffer_through_the_pipeline_counts_once() -> None:
    mic = bytes([0xA3, 0x81, 200]) + b"\x04\x02\x00\x00"
    blob = neg_token_init([spnego.OID_NTLMSSP], context(2, tlv(der.TAG_OCTET_STRING, MECH_TOKEN)), mic)
    pipeline, [record] = run(replaced(SETUP_INDEX, with_blob(blob)))
    assert record["sessions"][0]["auth"] == "ntlmv2"
    assert record["anomalies"] == {"der_length_beyond_buffer": 1}
    assert three(pipeline.anomalies()) == Counter({AnomalyKind.DER_LENGTH_BEYOND_BUFFER: 1})


def test_strict_reads_are_unchanged_without_damage() -> None:
    """Callers that pass no `Damage` still get None for an element past the buffer."""
    assert der.read_element(b"\x30\x05\x02\x01") is None
    damage = der.Damage()
    assert der.read_element(b"\x30\x05\x02\x01", 0, None, damage) == der.Element(0x30, 2, 4)  # clipped
    assert der.read_element(b"\x04\x05\x02\x01", 0, None, damage) is None  # a primitive cut short: dropped
    assert damage.overruns == 2 and damage.length_beyond_buffer is not None
    assert der.read_element(b"\x30\x05", 2, None, damage) is None and damage.overruns == 2  # nothing there


# --- netbios_frame_cut_short ------------------------------------------------------------------


def cut_short(stream: SmbStream) -> list[Anomaly]:
    stream.eof()
    return [e for e in stream.events() if isinstance(e, Anomaly) and e.kind is AnomalyKind.NETBIOS_FRAME_CUT_SHORT]


def test_eof_inside_a_kept_frame() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(SMB2_NEGOTIATE_REQUEST_311[:50])
    [note] = cut_short(stream)
    assert note.detail == "connection ended 174 bytes short of a 220-byte frame"


def test_eof_inside_bulk_data_passed_over() -> None:
    """A READ response cut in its file data: those bytes are skipped, never buffered (was silent)."""
    stream = SmbStream(direct_tcp=True)
    data = read_response(100_000)
    stream.feed(data[:30_000])
    assert stream.skip_remaining > 0
    [note] = cut_short(stream)
    assert note.detail == f"connection ended {len(data) - 30_000} bytes short of a {len(data) - 4}-byte frame"


def test_eof_inside_a_frame_header() -> None:
    stream = SmbStream(direct_tcp=True)
    stream.feed(SMB2_NEGOTIATE_REQUEST_311 + SMB2_NEGOTIATE_REQUEST_311[:2])
    [note] = cut_short(stream)
    assert "frame header (2 of 4 bytes)" in note.detail


def test_eof_after_whole_frames_or_in_resync_is_not_cut_short() -> None:
    whole = SmbStream(direct_tcp=True)
    whole.feed(SMB2_NEGOTIATE_REQUEST_311)
    assert cut_short(whole) == []
    searching = SmbStream(direct_tcp=True, midstream=True)
    searching.feed(b"\x17" * 5000)  # no frame boundary found: these bytes are resync's, not a frame's
    assert cut_short(searching) == []
    assert searching.resync_skipped_bytes == 5000


def test_gap_to_the_frame_end_closes_the_frame() -> None:
    stream = SmbStream(direct_tcp=True)
    data = read_response(10_000)
    stream.feed(data[:3000])
    stream.gap(len(data) - 3000)
    assert cut_short(stream) == []


def test_gap_past_the_frame_end_is_resync_not_cut_short() -> None:
    stream = SmbStream(direct_tcp=True)
    data = read_response(10_000)
    stream.feed(data[:3000])
    stream.gap(len(data))  # beyond the frame: boundaries lost
    stream.feed(b"\x17" * 100)
    assert cut_short(stream) == []
    assert stream.resync_skipped_bytes == 100


def test_gap_inside_the_frame_then_close_is_cut_short() -> None:
    """The bytes after the gap never came either: the frame really is unfinished at close."""
    stream = SmbStream(direct_tcp=True)
    data = read_response(10_000)
    stream.feed(data[:3000])
    stream.gap(1000)
    stream.feed(data[4000:6000])
    [note] = cut_short(stream)
    assert f"{len(data) - 6000} bytes short" in note.detail


def test_recorded_session_cut_at_close_counts_once_per_direction() -> None:
    """The last data segment of the recorded session loses its last 10 bytes; FIN follows as recorded."""
    last = max(index for index, (_, segment) in enumerate(SESSION) if segment.payload)
    segment = SESSION[last][1]
    segments = list(SESSION)
    segments[last] = (SESSION[last][0], segment._replace(payload=segment.payload[:-10]))
    pipeline, [record] = run(segments)
    assert three(pipeline.anomalies()) == Counter({AnomalyKind.NETBIOS_FRAME_CUT_SHORT: 1})
    assert record["anomalies"] == {"netbios_frame_cut_short": 1}
    assert record["dialect"] == "3.1.1"


def test_truncated_capture_file_end_to_end(tmp_path: Path) -> None:
    """The same cut made to the pcap with scapy, then `analyze_files`: once in stats.anomalies."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap, wrpcap

    packets = rdpcap(str(PCAPS / "recorded" / "smb3_1_1.pcap"))
    last = max(index for index, packet in enumerate(packets) if TCP in packet and bytes(packet[TCP].payload))
    packet = packets[last]
    tcp = packet[TCP]
    payload = bytes(tcp.payload)
    tcp.remove_payload()
    tcp.add_payload(payload[:-10])
    del packet[IP].len, packet[IP].chksum, tcp.chksum  # recomputed when written
    cut = tmp_path / "smb3_1_1_cut.pcap"
    wrpcap(str(cut), packets)
    document = build_document(analyze_files([str(cut)], FlowLimits(), 1000))
    assert document["stats"]["anomalies"] == {"netbios_frame_cut_short": 1}
    [connection] = document["connections"]
    assert connection["anomalies"] == {"netbios_frame_cut_short": 1}


def test_complete_recorded_captures_show_none_of_the_three() -> None:
    kinds = {kind.value for kind in THE_THREE}
    for path in sorted((PCAPS / "recorded").glob("*.pcap*")):
        document = build_document(analyze_files([str(path)], FlowLimits(), 200_000))
        assert not kinds & set(document["stats"]["anomalies"]), path.name


# --- kerberos_name_components_full --------------------------------------------------------


def kerberos_blob_with_sname(parts: list[bytes]) -> bytes:
    """kerberos_spnego_blob's token with the ticket's service name made of `parts`."""
    from test_authentication_dissectors import encrypted_data, integer

    names = tlv(der.TAG_SEQUENCE, b"".join(tlv(der.TAG_GENERAL_STRING, part) for part in parts))
    sname = tlv(der.TAG_SEQUENCE, context(0, integer(2)) + context(1, names))
    ticket = tlv(0x61, tlv(der.TAG_SEQUENCE, context(0, integer(5)) + context(1, tlv(der.TAG_GENERAL_STRING,
        b"LAB.EXAMPLE")) + context(2, sname) + context(3, encrypted_data(18))))  # fmt: skip
    fields = context(0, integer(5)) + context(1, integer(14)) + context(2, tlv(der.TAG_BIT_STRING, bytes(5)))
    ap_req = tlv(0x6E, tlv(der.TAG_SEQUENCE, fields + context(3, ticket) + context(4, encrypted_data(18))))
    mech_token = tlv(0x60, oid(spnego.OID_KERBEROS) + kerberos.KRB5_TOK_ID_AP_REQ + ap_req)
    mech_types = tlv(der.TAG_SEQUENCE, oid(spnego.OID_KERBEROS))
    init = context(0, tlv(der.TAG_SEQUENCE, context(0, mech_types) + context(2, tlv(der.TAG_OCTET_STRING, mech_token))))
    return tlv(0x60, oid(spnego.OID_SPNEGO) + init)


@pytest.mark.parametrize("count", [2, kerberos.MAX_NAME_COMPONENTS, kerberos.MAX_NAME_COMPONENTS + 5])
def test_service_name_components_past_the_cap_keep_the_first_and_count_once(count: int) -> None:
    parts = [f"part{index}".encode() for index in range(count)]
    token = spnego.parse_security_blob(kerberos_blob_with_sname(parts))
    assert isinstance(token, SpnegoToken) and token.kerberos is not None
    kept = parts[: kerberos.MAX_NAME_COMPONENTS]
    assert token.kerberos.service_principal == "/".join(part.decode() for part in kept)
    full = count > kerberos.MAX_NAME_COMPONENTS
    assert [note.kind for note in token.anomalies] == [AnomalyKind.KERBEROS_NAME_COMPONENTS_FULL] * full


def test_a_long_service_name_through_the_pipeline_counts_once() -> None:
    parts = [f"part{index}".encode() for index in range(kerberos.MAX_NAME_COMPONENTS + 3)]
    pipeline, [record] = run(replaced(SETUP_INDEX, with_blob(kerberos_blob_with_sname(parts))))
    assert record["anomalies"].get("kerberos_name_components_full") == 1
    assert pipeline.anomalies()[AnomalyKind.KERBEROS_NAME_COMPONENTS_FULL] == 1
