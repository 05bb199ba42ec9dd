"""The connection-oriented DCE/RPC reader (dissectors/dcerpc) against tshark on real captures, and on crafted bytes.

The differential part reads each PDU's exact bytes out of the recorded capture
with tshark (`-T json -x`: the `dcerpc_raw` bytes of every PDU) and tshark's
own dissection of the same PDUs (`-T fields`), and checks that the reader
agrees on every field both decode. The crafted part covers what the recordings
do not hold: big-endian data representation, fragmented calls, authentication
verifiers, caps, and garbage.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.constants import enum_name
from dissectors.dcerpc.constants import (
    NDR_TRANSFER_SYNTAX,
    AuthType,
    ContDefResult,
    PfcFlags,
    PType,
)
from dissectors.dcerpc.names import auth_level_name, auth_type_name, operation_name
from dissectors.dcerpc.pdu import MAX_CONTEXTS, MAX_TRANSFER_SYNTAXES, parse_header, parse_pdu
from dissectors.dcerpc.records import (
    RpcBind,
    RpcBindAck,
    RpcBindNak,
    RpcCall,
    RpcFault,
    RpcPdu,
    RpcRequest,
    RpcResponse,
)
from dissectors.dcerpc.stream import RpcStream
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    KerberosApReq,
    NtlmsspAuthenticate,
    NtlmsspNegotiate,
    SpnegoToken,
)
from tests import auth_samples

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from generate_rpc_interfaces import _pcap as _probe_pcap

RECORDED = Path(__file__).resolve().parents[1] / "pcaps" / "recorded"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
FIRST_LAST = int(PfcFlags.PFC_FIRST_FRAG | PfcFlags.PFC_LAST_FRAG)

# --- tshark on the recorded captures -------------------------------------------------

FIELDS = (
    "frame.number",
    "tcp.srcport",
    "dcerpc.ver",
    "dcerpc.ver_minor",
    "dcerpc.pkt_type",
    "dcerpc.cn_flags",
    "dcerpc.drep.byteorder",
    "dcerpc.cn_frag_len",
    "dcerpc.cn_auth_len",
    "dcerpc.cn_call_id",
    "dcerpc.cn_max_xmit",
    "dcerpc.cn_max_recv",
    "dcerpc.cn_assoc_group",
    "dcerpc.cn_ctx_id",
    "dcerpc.cn_bind_to_uuid",
    "dcerpc.cn_bind_if_ver",
    "dcerpc.cn_bind_if_ver_minor",
    "dcerpc.cn_bind_trans_id",
    "dcerpc.cn_sec_addr",
    "dcerpc.cn_ack_result",
    "dcerpc.cn_ack_reason",
    "dcerpc.cn_ack_trans_id",
    "dcerpc.cn_alloc_hint",
    "dcerpc.opnum",
    "dcerpc.cn_cancel_count",
)


def _tshark(*arguments: str) -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install.sh installs it)")
    result = subprocess.run([tshark, *arguments], capture_output=True, text=True, check=True, timeout=120)
    return result.stdout


def tshark_pdus(capture: Path) -> list[tuple[dict[str, str], bytes]]:
    """(tshark's fields, the PDU's exact bytes) of each DCE/RPC PDU in `capture`, one PDU per frame."""
    field_arguments = [argument for name in FIELDS for argument in ("-e", name)]
    lines = _tshark("-r", str(capture), "-Y", "dcerpc", "-T", "fields", *field_arguments).splitlines()
    facts = {}
    for line in lines:
        values = dict(zip(FIELDS, line.split("\t"), strict=True))
        facts[values["frame.number"]] = values
    packets = json.loads(_tshark("-r", str(capture), "-Y", "dcerpc", "-T", "json", "-x", "-j", "frame dcerpc"))
    found = []
    for packet in packets:
        layers = packet["_source"]["layers"]
        raw = layers["dcerpc_raw"]
        assert isinstance(raw[0], str), "one PDU per frame in these captures"
        number = layers["frame"]["frame.number"]
        found.append((facts[number], bytes.fromhex(raw[0])))
    assert len(found) == len(facts)
    return found


def _int(text: str) -> int:
    return int(text, 0)


CAPTURES = {
    # rpcclient srvinfo over SMB1: bind srvsvc v3, NetSrvGetInfo (opnum 21).
    "smb1_named_pipe.pcap": 21,
    # smbclient -L over SMB2: srvsvc over IPC$, NetShareEnumAll (opnum 15).
    "auth_anonymous.pcap": 15,
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_each_recorded_pdu_reads_as_tshark_reads_it(name: str) -> None:
    pdus = tshark_pdus(RECORDED / name)
    assert [int(facts["dcerpc.pkt_type"]) for facts, _ in pdus] == [
        PType.BIND,
        PType.BIND_ACK,
        PType.REQUEST,
        PType.RESPONSE,
    ]
    for facts, raw in pdus:
        pdu = parse_pdu(raw)
        frame = facts["frame.number"]
        assert isinstance(pdu, RpcPdu), frame
        assert pdu.anomalies == () and pdu.complete, frame
        header = pdu.header
        assert header.rpc_vers == int(facts["dcerpc.ver"])
        assert header.rpc_vers_minor == int(facts["dcerpc.ver_minor"])
        assert header.ptype == int(facts["dcerpc.pkt_type"])
        assert header.pfc_flags == _int(facts["dcerpc.cn_flags"])
        assert header.big_endian == (facts["dcerpc.drep.byteorder"] == "0")
        assert header.frag_length == int(facts["dcerpc.cn_frag_len"]) == len(raw)
        assert header.auth_length == int(facts["dcerpc.cn_auth_len"])
        assert header.call_id == int(facts["dcerpc.cn_call_id"])
        body = pdu.body
        if isinstance(body, RpcBind):
            assert (body.max_xmit_frag, body.max_recv_frag, body.assoc_group_id) == (
                int(facts["dcerpc.cn_max_xmit"]),
                int(facts["dcerpc.cn_max_recv"]),
                _int(facts["dcerpc.cn_assoc_group"]),
            )
            (context,) = body.contexts
            assert context.p_cont_id == int(facts["dcerpc.cn_ctx_id"])
            assert context.abstract_syntax.uuid == facts["dcerpc.cn_bind_to_uuid"] == SRVSVC
            assert context.abstract_syntax.version_major == int(facts["dcerpc.cn_bind_if_ver"]) == 3
            assert context.abstract_syntax.version_minor == int(facts["dcerpc.cn_bind_if_ver_minor"])
            assert [syntax.uuid for syntax in context.transfer_syntaxes] == facts["dcerpc.cn_bind_trans_id"].split(",")
            assert context.transfer_syntaxes[0].uuid == NDR_TRANSFER_SYNTAX
        elif isinstance(body, RpcBindAck):
            assert (body.max_xmit_frag, body.max_recv_frag, body.assoc_group_id) == (
                int(facts["dcerpc.cn_max_xmit"]),
                int(facts["dcerpc.cn_max_recv"]),
                _int(facts["dcerpc.cn_assoc_group"]),
            )
            assert body.secondary_address == facts["dcerpc.cn_sec_addr"]
            assert body.secondary_address.lower() == "\\pipe\\srvsvc"
            (result,) = body.results
            assert (result.result, result.transfer_syntax.uuid) == (
                int(facts["dcerpc.cn_ack_result"]),
                facts["dcerpc.cn_ack_trans_id"],
            )
            # tshark shows the provider reason only for a rejected context.
            assert result.reason == int(facts["dcerpc.cn_ack_reason"] or 0)
            assert body.results[0].result == ContDefResult.ACCEPTANCE
        elif isinstance(body, RpcRequest):
            assert body.opnum == int(facts["dcerpc.opnum"]) == CAPTURES[name]
            assert body.p_cont_id == int(facts["dcerpc.cn_ctx_id"])
            assert body.alloc_hint == int(facts["dcerpc.cn_alloc_hint"]) == body.stub_length
            assert body.object_uuid is None
        elif isinstance(body, RpcResponse):
            assert body.p_cont_id == int(facts["dcerpc.cn_ctx_id"])
            assert body.cancel_count == int(facts["dcerpc.cn_cancel_count"])
            assert body.alloc_hint == int(facts["dcerpc.cn_alloc_hint"]) == body.stub_length
        else:
            pytest.fail(f"frame {frame}: unexpected body {body!r}")
        # Every prefix of the real PDU: a record or an anomaly, the header read once it is in.
        for cut in range(len(raw)):
            prefix = parse_pdu(raw[:cut])
            if cut < 16:
                assert isinstance(prefix, Anomaly) and prefix.kind == AnomalyKind.DCERPC_MALFORMED
            else:
                assert isinstance(prefix, RpcPdu) and prefix.header == header and not prefix.complete
                assert prefix.anomalies == ()


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_recorded_directions_stream_into_calls(name: str) -> None:
    """Each direction's PDUs fed to one RpcStream, in pieces: the calls tshark shows, nothing left over."""
    directions: dict[str, list[bytes]] = {}
    for facts, raw in tshark_pdus(RECORDED / name):
        directions.setdefault(facts["tcp.srcport"], []).append(raw)
    assert len(directions) == 2
    calls = []
    for pieces in directions.values():
        stream = RpcStream()
        data = b"".join(pieces)
        header_only = RpcStream(max_kept=0)  # kept: the least there is (40 bytes), all the rest passed over
        header_only.feed(data)
        kept_calls = [event for event in header_only.pdus() if isinstance(event, RpcCall)]
        assert [call.opnum for call in kept_calls if call.ptype == PType.REQUEST] in ([], [CAPTURES[name]])
        assert header_only.fragments_beyond_kept == len(pieces) and header_only.buffered == 0
        for at in range(0, len(data), 7):
            stream.feed(data[at : at + 7])
        stream.eof()
        events = stream.pdus()
        assert not [event for event in events if isinstance(event, Anomaly)]
        assert stream.buffered == 0 and stream.calls_in_flight == 0
        assert [event.header.ptype for event in events if isinstance(event, RpcPdu)] in (
            [PType.BIND, PType.REQUEST],
            [PType.BIND_ACK, PType.RESPONSE],
        )
        calls += [event for event in events if isinstance(event, RpcCall)]
    request, response = sorted(calls, key=lambda call: call.ptype)
    assert (request.ptype, request.opnum, request.call_id, request.fragments) == (PType.REQUEST, CAPTURES[name], 2, 1)
    assert (response.ptype, response.opnum, response.call_id) == (PType.RESPONSE, None, 2)


# --- crafted bytes -------------------------------------------------------------------


def craft(
    ptype: int,
    body: bytes,
    *,
    flags: int = FIRST_LAST,
    call_id: int = 1,
    big: bool = False,
    auth: bytes = b"",
    frag_length: int | None = None,
    version: int = 5,
) -> bytes:
    """A PDU: common header ([C706] 12.6.3.1) in the chosen byte order, `body`, and `auth` as the whole verifier."""
    order = ">" if big else "<"
    drep = b"\x00\x00\x00\x00" if big else b"\x10\x00\x00\x00"
    auth_length = max(len(auth) - 8, 0)
    length = 16 + len(body) + len(auth) if frag_length is None else frag_length
    header = struct.pack(f"{order}BBBB4sHHI", version, 0, ptype, flags, drep, length, auth_length, call_id)
    return header + body + auth


def request_body(opnum: int, stub: int, *, big: bool = False, alloc_hint: int = 0, p_cont_id: int = 0) -> bytes:
    order = ">" if big else "<"
    return struct.pack(f"{order}IHH", alloc_hint, p_cont_id, opnum) + bytes(stub)


def syntax(text: str, major: int, minor: int = 0, *, big: bool = False) -> bytes:
    value = uuid.UUID(text)
    raw = value.bytes if big else value.bytes_le
    return raw + struct.pack(">I" if big else "<I", major | minor << 16)


def bind_body(contexts: int, transfers: int = 1, *, big: bool = False) -> bytes:
    order = ">" if big else "<"
    body = struct.pack(f"{order}HHIB3x", 4280, 4280, 0x1234, contexts)
    for index in range(contexts):
        body += struct.pack(f"{order}HBx", index, transfers) + syntax(SRVSVC, 3, 1, big=big)
        body += syntax(NDR_TRANSFER_SYNTAX, 2, big=big) * transfers
    return body


def test_big_endian_request_header_fields() -> None:
    """CVE-2022-26809 exploits send big-endian drep: every integer, and the object UUID, in that order."""
    object_uuid = "12345678-9abc-def0-1122-334455667788"
    body = struct.pack(">IHH", 0x01020304, 0x0506, 0x0708) + uuid.UUID(object_uuid).bytes + bytes(12)
    flags = FIRST_LAST | int(PfcFlags.PFC_OBJECT_UUID)
    pdu = parse_pdu(craft(PType.REQUEST, body, flags=flags, call_id=0x0A0B0C0D, big=True))
    assert isinstance(pdu, RpcPdu)
    assert pdu.header.big_endian and pdu.header.drep == b"\x00\x00\x00\x00"
    assert (pdu.header.frag_length, pdu.header.auth_length, pdu.header.call_id) == (16 + 8 + 16 + 12, 0, 0x0A0B0C0D)
    assert pdu.body == RpcRequest(0x01020304, 0x0506, 0x0708, object_uuid, 12)
    # The same PDU read as little-endian would give other numbers: the drep is what decides.
    assert parse_header(craft(PType.REQUEST, body, flags=flags, call_id=1, big=False)).big_endian is False


def test_big_endian_bind_reads_uuid_and_version() -> None:
    pdu = parse_pdu(craft(PType.BIND, bind_body(1, big=True), big=True))
    assert isinstance(pdu, RpcPdu) and isinstance(pdu.body, RpcBind)
    (context,) = pdu.body.contexts
    assert (context.abstract_syntax.uuid, context.abstract_syntax.version_major) == (SRVSVC, 3)
    assert context.abstract_syntax.version_minor == 1
    assert context.transfer_syntaxes[0].uuid == NDR_TRANSFER_SYNTAX
    assert pdu.body.assoc_group_id == 0x1234


def test_fault_and_bind_nak() -> None:
    fault = parse_pdu(craft(PType.FAULT, struct.pack("<IHBxII", 0, 3, 1, 0x1C010002, 0)))
    assert isinstance(fault, RpcPdu) and fault.body == RpcFault(0, 3, 1, 0x1C010002)
    nak = parse_pdu(craft(PType.BIND_NAK, struct.pack("<HB", 4, 1) + b"\x05\x00"))
    assert isinstance(nak, RpcPdu) and nak.body == RpcBindNak(4, ((5, 0),))
    assert enum_name(PType, 99, 1) == "unknown-0x63" and enum_name(AuthType, 10) == "RPC_C_AUTHN_WINNT"


def _verifier(auth_type: int, value: bytes, pad: int = 0, context_id: int = 7) -> bytes:
    return struct.pack("<BBBBI", auth_type, 2, pad, 0, context_id) + value


NTLMSSP_NEGOTIATE = auth_samples.SMB2_SESSION_SETUP_NEGOTIATE[
    auth_samples.SMB2_SESSION_SETUP_NEGOTIATE.index(b"NTLMSSP\x00") :
]
SPNEGO_INIT = auth_samples.SMB2_SESSION_SETUP_NEGOTIATE[4 + 0x58 : 4 + 0x58 + 0x4A]


def test_auth_verifier_ntlmssp_and_spnego() -> None:
    """sec_trailer at frag_length - auth_length - 8; the token decoded, its bytes not kept."""
    pdu = parse_pdu(craft(PType.BIND, bind_body(1), auth=_verifier(AuthType.RPC_C_AUTHN_WINNT, NTLMSSP_NEGOTIATE)))
    assert isinstance(pdu, RpcPdu) and isinstance(pdu.body, RpcBind) and pdu.anomalies == ()
    assert pdu.auth is not None
    assert (pdu.auth.auth_type, pdu.auth.auth_level, pdu.auth.auth_context_id) == (10, 2, 7)
    assert pdu.auth.auth_length == len(NTLMSSP_NEGOTIATE)
    assert isinstance(pdu.auth.token, NtlmsspNegotiate)
    spnego = parse_pdu(craft(PType.ALTER_CONTEXT, bind_body(1), auth=_verifier(9, SPNEGO_INIT)))
    assert isinstance(spnego, RpcPdu) and isinstance(spnego.auth.token, SpnegoToken)
    assert isinstance(spnego.auth.token.ntlmssp, NtlmsspNegotiate)


def test_request_stub_length_leaves_out_auth_and_pad() -> None:
    """A signed request: its verifier is a signature, not a token; the stub stops before the pad."""
    body = request_body(21, 20) + bytes(4)  # 20 stub bytes, then 4 pad bytes before the sec_trailer
    pdu = parse_pdu(craft(PType.REQUEST, body, auth=_verifier(AuthType.RPC_C_AUTHN_WINNT, bytes(16), pad=4)))
    assert isinstance(pdu, RpcPdu) and isinstance(pdu.body, RpcRequest)
    assert pdu.body.stub_length == 20 and pdu.auth.auth_pad_length == 4 and pdu.auth.token is None


def test_multi_fragment_request_reassembled() -> None:
    first = craft(PType.REQUEST, request_body(9, 100, alloc_hint=250), flags=int(PfcFlags.PFC_FIRST_FRAG), call_id=5)
    middle = craft(PType.REQUEST, request_body(9, 100), flags=0, call_id=5)
    last = craft(PType.REQUEST, request_body(9, 50), flags=int(PfcFlags.PFC_LAST_FRAG), call_id=5)
    other = craft(PType.REQUEST, request_body(3, 8), call_id=6)  # a whole call between the fragments
    stream = RpcStream()
    data = first + middle + other + last
    for at in range(0, len(data), 13):
        stream.feed(data[at : at + 13])
    calls = [event for event in stream.pdus() if isinstance(event, RpcCall)]
    assert calls == [
        RpcCall(PType.REQUEST, 6, 0, 3, 0, 8, 1),
        RpcCall(PType.REQUEST, 5, 0, 9, 250, 250, 3),
    ]
    assert stream.calls_in_flight == 0 and stream.buffered == 0


def test_big_endian_fragments_reassembled() -> None:
    first = craft(PType.REQUEST, request_body(0x0102, 30, big=True), flags=1, call_id=0x01000000, big=True)
    last = craft(PType.REQUEST, request_body(0x0102, 2, big=True), flags=2, call_id=0x01000000, big=True)
    stream = RpcStream()
    stream.feed(first + last)
    (call,) = [event for event in stream.pdus() if isinstance(event, RpcCall)]
    assert (call.call_id, call.opnum, call.stub_length, call.fragments) == (0x01000000, 0x0102, 32, 2)


def test_fault_ends_a_fragmented_response() -> None:
    stream = RpcStream()
    stream.feed(craft(PType.RESPONSE, struct.pack("<IHBx", 0, 0, 0) + bytes(40), flags=1, call_id=8))
    assert stream.calls_in_flight == 1
    stream.feed(craft(PType.FAULT, struct.pack("<IHBxII", 0, 0, 0, 5, 0), call_id=8))
    stream.eof()
    assert stream.calls_in_flight == 0 and _kinds(stream.pdus()) == []


def _kinds(events: list) -> list[AnomalyKind]:
    return [event.kind for event in events if isinstance(event, Anomaly)]


def test_caps_counted() -> None:
    # Presentation contexts and transfer syntaxes past the kept count.
    pdu = parse_pdu(craft(PType.BIND, bind_body(MAX_CONTEXTS + 4, MAX_TRANSFER_SYNTAXES + 2)))
    assert isinstance(pdu, RpcPdu) and isinstance(pdu.body, RpcBind)
    assert len(pdu.body.contexts) == MAX_CONTEXTS and pdu.body.contexts_dropped == 4
    assert {context.transfer_syntaxes_dropped for context in pdu.body.contexts} == {2}
    (full,) = pdu.anomalies
    assert full.kind == AnomalyKind.DCERPC_CONTEXTS_FULL and full.detail.startswith("4 contexts, 32 transfer syntaxes")
    results = (struct.pack("<HH", 0, 0) + syntax(NDR_TRANSFER_SYNTAX, 2)) * 20  # 20 results, 16 kept
    ack_pdu = parse_pdu(craft(PType.BIND_ACK, struct.pack("<HHIH2xB3x", 10, 10, 1, 0, 20) + results))
    assert isinstance(ack_pdu.body, RpcBindAck) and ack_pdu.body.results_dropped == 4
    assert _kinds(list(ack_pdu.anomalies)) == [AnomalyKind.DCERPC_CONTEXTS_FULL]
    # A fragment longer than kept: header and body fields read, the rest passed over unbuffered.
    stream = RpcStream(max_kept=64)
    big = craft(PType.REQUEST, request_body(15, 5000, alloc_hint=5000), call_id=3)
    stream.feed(big[:100])
    assert stream.buffered == 0
    stream.feed(big[100:] + craft(PType.REQUEST, request_body(16, 4), call_id=4))
    events = stream.pdus()
    assert _kinds(events) == [AnomalyKind.DCERPC_FRAGMENT_BEYOND_KEPT_BYTES]
    assert stream.fragments_beyond_kept == 1
    first, second = [event for event in events if isinstance(event, RpcPdu)]
    assert second.complete and second.anomalies == ()
    assert not first.complete and first.body == RpcRequest(5000, 0, 15, None, 5000)
    assert [(c.opnum, c.stub_length) for c in events if isinstance(c, RpcCall)] == [(15, 5000), (16, 4)]
    # Calls in flight past the cap, then later fragments of a forgotten call pass silently.
    stream = RpcStream(max_calls=2)
    for call_id in range(3):
        stream.feed(craft(PType.REQUEST, request_body(1, 4), flags=1, call_id=call_id))
    stream.feed(craft(PType.REQUEST, request_body(1, 4), flags=2, call_id=2))
    assert _kinds(stream.pdus()) == [AnomalyKind.DCERPC_CALLS_FULL] and stream.calls_full == 1
    # A call's stub past the reassembly cap is forgotten.
    stream = RpcStream(max_call_stub=100)
    stream.feed(craft(PType.REQUEST, request_body(1, 60), flags=1, call_id=9))
    stream.feed(craft(PType.REQUEST, request_body(1, 60), flags=0, call_id=9))
    stream.feed(craft(PType.REQUEST, request_body(1, 60), flags=2, call_id=9))
    events = stream.pdus()
    assert _kinds(events) == [AnomalyKind.DCERPC_REASSEMBLY_FULL] and stream.reassembly_full == 1
    assert not [event for event in events if isinstance(event, RpcCall)] and stream.calls_in_flight == 0
    # A later fragment whose call was never started.
    stream = RpcStream()
    stream.feed(craft(PType.REQUEST, request_body(1, 4), flags=2, call_id=11))
    assert _kinds(stream.pdus()) == [AnomalyKind.DCERPC_FRAGMENT_OUT_OF_CALL] and stream.fragments_out_of_call == 1
    # The stream ends inside a call and inside a PDU.
    stream.feed(craft(PType.REQUEST, request_body(1, 4), flags=1, call_id=12) + b"\x05\x00")
    stream.eof()
    assert _kinds(stream.pdus()) == [AnomalyKind.DCERPC_STREAM_CUT_SHORT] * 2


def test_not_dcerpc_stops_the_stream() -> None:
    assert parse_pdu(craft(PType.REQUEST, request_body(1, 4), version=4)).kind == AnomalyKind.DCERPC_NOT_DCERPC
    stream = RpcStream()
    stream.feed(b"\xffSMB" + bytes(40))
    stream.feed(craft(PType.REQUEST, request_body(1, 4)))
    assert _kinds(stream.pdus()) == [AnomalyKind.DCERPC_NOT_DCERPC]
    assert stream.lost and stream.ignored_bytes == 44 + 16 + 8 + 4


def test_malformed_lengths_name_what() -> None:
    short = parse_pdu(b"\x05\x00\x00\x03")
    assert isinstance(short, Anomaly) and short.kind == AnomalyKind.DCERPC_MALFORMED
    tiny = parse_pdu(craft(PType.REQUEST, b"", frag_length=8))
    assert isinstance(tiny, Anomaly) and "frag_length" in tiny.detail
    cut = parse_pdu(craft(PType.BIND, bind_body(3))[:60])
    assert isinstance(cut, RpcPdu) and cut.body is None and not cut.complete
    lying = craft(PType.BIND, bind_body(1)[:8] + b"\x05" + bind_body(1)[9:])  # five contexts claimed, one sent
    pdu = parse_pdu(lying)
    assert isinstance(pdu, RpcPdu) and pdu.body is None
    assert _kinds(list(pdu.anomalies)) == [AnomalyKind.DCERPC_MALFORMED]
    over = bytearray(craft(PType.REQUEST, request_body(1, 4), auth=_verifier(10, bytes(12))))
    over[10:12] = (100).to_bytes(2, "little")  # auth_length past the start of the PDU
    over = parse_pdu(bytes(over))
    assert isinstance(over, RpcPdu) and _kinds(list(over.anomalies)) == [AnomalyKind.DCERPC_MALFORMED]


SAMPLES = [
    craft(PType.BIND, bind_body(2, 2), auth=_verifier(10, NTLMSSP_NEGOTIATE)),
    craft(PType.ALTER_CONTEXT, bind_body(1), auth=_verifier(9, SPNEGO_INIT)),
    craft(PType.REQUEST, request_body(21, 20), flags=1, big=True),
    craft(PType.REQUEST, request_body(21, 20), flags=2, big=True),
    craft(PType.BIND_ACK, struct.pack("<HHIH", 10, 10, 1, 13) + b"\\pipe\\srvsvc\x00\x00" + b"\x01\x00\x00\x00"),
]


@given(st.sampled_from(SAMPLES), st.integers(0, 200), st.binary(max_size=40), st.integers(0, 40))
def test_damaged_pdus_never_raise(sample: bytes, cut: int, garbage: bytes, at: int) -> None:
    data = sample[:at] + garbage + sample[at + len(garbage) :]
    for candidate in (data, data[:cut], sample[:cut]):
        result = parse_pdu(candidate)
        assert isinstance(result, RpcPdu | Anomaly)


@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    for candidate in (data, b"\x05" + data, b"\x05\x00\x00\x03\x10\x00\x00\x00" + data):
        assert isinstance(parse_pdu(candidate), RpcPdu | Anomaly)


@given(st.lists(st.sampled_from(SAMPLES) | st.binary(max_size=30), max_size=8), st.integers(1, 50))
def test_stream_of_damaged_pieces_never_raises(pieces: list[bytes], step: int) -> None:
    stream = RpcStream(max_kept=48, max_call_stub=30, max_calls=1)
    data = b"".join(pieces)
    for at in range(0, len(data), step):
        stream.feed(data[at : at + step])
    stream.eof()
    stream.pdus()
    assert stream.buffered == 0


# --- the peer's public captures (../shared/pcaps-public) --------------------------------

SURICATA_VERIFY = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps-public" / "suricata-verify"
PUBLIC_CAPTURES = (
    "dcerpc-smb-fail/input.pcap",  # NTLMSSP-authenticated binds (auth_type 10) and ~1,450 calls
    "dcerpc-smb-test-01/input.pcap",
    "smb-dce_opnum/input.pcap",
    "smb2-06/20171220_smb_net_user.pcap",
    "smb2-07/20171220_smb_psexec_add_user.pcap",
)


def _find(tree: object, key: str) -> object:
    """The first value of `key` anywhere in a tshark JSON layer (fields sit in nested subtrees)."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name == key:
                return value
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for value in tree:
            found = _find(value, key)
            if found is not None:
                return found
    return None


@pytest.mark.oracle
@pytest.mark.public
@pytest.mark.parametrize("name", PUBLIC_CAPTURES)
def test_public_pdus_read_as_tshark_reads_them(name: str) -> None:
    capture = SURICATA_VERIFY / name
    if not capture.exists():
        pytest.skip(f"{capture} absent: the peer's captures are not tested")
    output = _tshark(
        "-r", str(capture), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "dcerpc", "-T", "json", "-x", "-J",
        "frame dcerpc",
    )  # fmt: skip
    tokens = []
    compared = 0
    for packet in json.loads(output):
        layers = packet["_source"]["layers"]
        raws, dissected = layers["dcerpc_raw"], layers["dcerpc"]
        raws = [raws] if isinstance(raws[0], str) else raws
        dissected = [dissected] if isinstance(dissected, dict) else dissected
        assert len(raws) == len(dissected)
        for raw, layer in zip(raws, dissected, strict=True):
            pdu = parse_pdu(bytes.fromhex(raw[0]))
            where = f"frame {layers['frame']['frame.number']}"
            assert isinstance(pdu, RpcPdu) and pdu.complete and pdu.anomalies == (), where
            header = pdu.header
            assert header.frag_length == int(_find(layer, "dcerpc.cn_frag_len")), where
            assert header.call_id == int(_find(layer, "dcerpc.cn_call_id")), where
            assert header.ptype == int(_find(layer, "dcerpc.pkt_type")), where
            assert header.pfc_flags == int(_find(layer, "dcerpc.cn_flags"), 0), where
            if isinstance(pdu.body, RpcRequest):
                assert pdu.body.opnum == int(_find(layer, "dcerpc.opnum")), where
            if isinstance(pdu.body, RpcBind):
                assert pdu.body.contexts[0].abstract_syntax.uuid == _find(layer, "dcerpc.cn_bind_to_uuid"), where
            auth_type = _find(layer, "dcerpc.auth_type")
            if auth_type is None:
                assert pdu.auth is None, where
            else:
                assert pdu.auth is not None, where
                assert (pdu.auth.auth_type, pdu.auth.auth_level, pdu.auth.auth_context_id) == (
                    int(auth_type),
                    int(_find(layer, "dcerpc.auth_level")),
                    int(_find(layer, "dcerpc.auth_ctx_id")),
                ), where
                if pdu.auth.token is not None:
                    tokens.append((header.ptype, type(pdu.auth.token).__name__))
                if isinstance(pdu.auth.token, NtlmsspAuthenticate):
                    # tshark: ntlmssp.auth.username "DC$", ntlmssp.auth.domain "NULL", ntlmssp.auth.hostname "WIN10".
                    assert (pdu.auth.token.user, pdu.auth.token.domain, pdu.auth.token.workstation) == (
                        "DC$",
                        "",
                        "WIN10",
                    ), where
            compared += 1
    assert compared > 0
    if name.startswith("dcerpc-smb-fail"):
        assert tokens == [
            (PType.BIND, "NtlmsspNegotiate"),
            (PType.BIND_ACK, "NtlmsspChallenge"),
            (PType.AUTH3, "NtlmsspAuthenticate"),
        ]


@pytest.mark.oracle
@pytest.mark.public
@pytest.mark.parametrize("name", [*PUBLIC_CAPTURES, "filestore-filecontainer-smb/filecontainer-smb.pcap"])
def test_public_directions_stream_into_the_calls_tshark_reassembles(name: str) -> None:
    """Each direction of each connection fed to one RpcStream: one call per last fragment, fragmented
    calls (filecontainer-smb: three responses of 2 and 3 fragments) with tshark's fragment count and length."""
    capture = SURICATA_VERIFY / name
    if not capture.exists():
        pytest.skip(f"{capture} absent: the peer's captures are not tested")
    preference = ("-o", "tcp.reassemble_out_of_order:TRUE")
    fields = ("frame.number", "tcp.stream", "tcp.srcport", "dcerpc.cn_call_id", "dcerpc.fragment.count")
    fields += ("dcerpc.reassembled.length",)
    arguments = [argument for field in fields for argument in ("-e", field)]
    rows = _tshark("-r", str(capture), *preference, "-Y", "dcerpc", "-T", "fields", *arguments).splitlines()
    facts = {row.split("\t")[0]: dict(zip(fields, row.split("\t"), strict=True)) for row in rows}
    packets = json.loads(
        _tshark("-r", str(capture), *preference, "-Y", "dcerpc", "-T", "json", "-x", "-j", "frame dcerpc")
    )
    directions: dict[tuple[str, str], list[bytes]] = {}
    for packet in packets:
        layers = packet["_source"]["layers"]
        row = facts[layers["frame"]["frame.number"]]
        raws = layers["dcerpc_raw"]
        for raw in [raws] if isinstance(raws[0], str) else raws:
            directions.setdefault((row["tcp.stream"], row["tcp.srcport"]), []).append(bytes.fromhex(raw[0]))
    expected = sorted(
        (int(row["dcerpc.cn_call_id"]), int(row["dcerpc.fragment.count"]), int(row["dcerpc.reassembled.length"]))
        for row in facts.values()
        if row["dcerpc.reassembled.length"]
    )
    fragmented = []
    last_fragments = 0
    calls = 0
    for pdus in directions.values():
        stream = RpcStream()
        for raw in pdus:
            stream.feed(raw)
            header = parse_header(raw)
            assert not isinstance(header, Anomaly)
            if header.ptype in (PType.REQUEST, PType.RESPONSE) and header.pfc_flags & PfcFlags.PFC_LAST_FRAG:
                last_fragments += 1
        stream.eof()
        events = stream.pdus()
        assert _kinds(events) == []
        for call in (event for event in events if isinstance(event, RpcCall)):
            calls += 1
            if call.fragments > 1:
                fragmented.append((call.call_id, call.fragments, call.stub_length))
    assert calls == last_fragments > 0
    assert sorted(fragmented) == expected
    if name.startswith("filestore"):
        assert expected == [(3, 3, 10052), (14, 2, 7812), (573, 3, 10052)]


# --- authentication verifiers carrying real tokens (crafted PDUs, real tokens) -----------


def _first_field(capture: str, display_filter: str, field: str) -> bytes:
    lines = _tshark("-r", str(RECORDED / capture), "-Y", display_filter, "-T", "fields", "-e", field).split()
    assert lines, f"{capture}: no {field}"
    return bytes.fromhex(lines[0].replace(":", ""))


@pytest.mark.oracle
def test_crafted_auth3_with_the_recorded_ntlmssp_authenticate() -> None:
    """No capture here carries an NTLMSSP AUTHENTICATE in an auth3 of a pipe we recorded (the public
    dcerpc-smb-fail one is checked above), so a crafted auth3 carries the real AUTHENTICATE of
    auth_ntlmv2_smb2.pcap (tshark: alice / SMBWLAB / SMBWLAB-CLI) at PKT_PRIVACY."""
    blob = _first_field("auth_ntlmv2_smb2.pcap", "ntlmssp.messagetype == 3", "smb2.security_blob")
    message = blob[blob.index(b"NTLMSSP\x00") :]
    level = 6  # RPC_C_AUTHN_LEVEL_PKT_PRIVACY
    verifier = struct.pack("<BBBBI", AuthType.RPC_C_AUTHN_WINNT, level, 0, 0, 79231) + message
    pdu = parse_pdu(craft(PType.AUTH3, b"\x00\x00\x00\x00", auth=verifier))
    assert isinstance(pdu, RpcPdu) and pdu.anomalies == () and pdu.auth is not None
    token = pdu.auth.token
    assert isinstance(token, NtlmsspAuthenticate)
    assert (token.user, token.domain, token.workstation) == ("alice", "SMBWLAB", "SMBWLAB-CLI")
    assert (pdu.auth.auth_context_id, pdu.auth.auth_length) == (79231, len(message))
    assert auth_type_name(pdu.auth.auth_type) == "RPC_C_AUTHN_WINNT"
    assert auth_level_name(pdu.auth.auth_level) == "RPC_C_AUTHN_LEVEL_PKT_PRIVACY"
    assert auth_type_name(0x33) == auth_level_name(0x33) == "unknown-0x33"
    # The same bytes at the wrong auth_type are not taken for a token they are not.
    other = parse_pdu(craft(PType.AUTH3, bytes(4), auth=struct.pack("<BBBBI", 0x44, level, 0, 0, 1) + message))
    assert isinstance(other, RpcPdu) and other.auth.token is None


@pytest.mark.oracle
def test_crafted_bind_with_the_recorded_kerberos_ap_req() -> None:
    """auth_type 16 (RPC_C_AUTHN_GSS_KERBEROS): the recorded AP-REQ of auth_kerberos.pcap in a bind."""
    token = _first_field("auth_kerberos.pcap", "smb2.cmd == 1 && smb2.flags.response == 0", "spnego.mechToken")
    realm = _tshark("-r", str(RECORDED / "auth_kerberos.pcap"), "-Y", "kerberos.msg_type == 14", "-T", "fields",
                    "-e", "kerberos.realm").split()[0]  # fmt: skip
    verifier = struct.pack("<BBBBI", AuthType.RPC_C_AUTHN_GSS_KERBEROS, 6, 0, 0, 1) + token
    pdu = parse_pdu(craft(PType.BIND, bind_body(1), auth=verifier))
    assert isinstance(pdu, RpcPdu) and pdu.anomalies == () and isinstance(pdu.body, RpcBind)
    assert isinstance(pdu.auth.token, KerberosApReq)
    assert pdu.auth.token.realm == realm
    assert auth_type_name(pdu.auth.auth_type) == "RPC_C_AUTHN_GSS_KERBEROS"


@pytest.mark.oracle
def test_crafted_big_endian_copy_of_a_recorded_request() -> None:
    """The recorded NetSrvGetInfo request of smb1_named_pipe.pcap, its header and request fields
    rewritten big-endian with drep[0] = 0x00 (crafted, as CVE-2022-26809 exploits send them):
    the same fields read back, and the header says big-endian."""
    (raw,) = [raw for facts, raw in tshark_pdus(RECORDED / "smb1_named_pipe.pcap") if facts["dcerpc.pkt_type"] == "0"]
    little = parse_pdu(raw)
    assert isinstance(little, RpcPdu) and not little.header.big_endian and isinstance(little.body, RpcRequest)
    fields = struct.unpack_from("<BBBB4sHHIIHH", raw)
    big = struct.pack(">BBBB4sHHIIHH", *fields[:4], b"\x00" + fields[4][1:], *fields[5:]) + raw[24:]
    pdu = parse_pdu(big)
    assert isinstance(pdu, RpcPdu) and pdu.anomalies == ()
    assert pdu.header.big_endian and pdu.header.drep[0] == 0
    assert (pdu.header.frag_length, pdu.header.call_id) == (little.header.frag_length, little.header.call_id)
    assert pdu.body == little.body and pdu.body.opnum == 21
    assert operation_name(SRVSVC, pdu.body.opnum) == "NetrServerGetInfo"
    # tshark reads the crafted copy the same way.
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "big_endian.pcap"
        capture.write_bytes(_probe_pcap([(4242, big)]))
        shown = _tshark("-r", str(capture), "-d", "tcp.port==135,dcerpc", "-T", "fields", "-e", "dcerpc.drep.byteorder",
                        "-e", "dcerpc.opnum", "-e", "dcerpc.cn_frag_len", "-e", "dcerpc.cn_call_id")  # fmt: skip
    assert shown.split() == ["0", "21", str(pdu.header.frag_length), str(pdu.header.call_id)]
