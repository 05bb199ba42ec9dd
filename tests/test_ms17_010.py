"""EternalBlue and DoublePulsar patterns: the crafted fixtures, real nmap traffic, the rules one by one,
the look-alikes that must stay quiet, and the caps on per-connection memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.records import (
    Smb1EchoRequest,
    Smb1Header,
    Smb1Message,
    Smb1NtTransactRequest,
    Smb1TransactionRequest,
    ZeroedMessageHeader,
)
from monitor.cli import analyze_files
from monitor.detect import DetectionSettings, Detector
from monitor.detect.ms17_010 import (
    ALERT_DOUBLEPULSAR,
    ALERT_ETERNALBLUE,
    FINDING_SRVNET_GROOMING,
    MAX_ANSWERED_REQUESTS,
    MAX_OPEN_EXCHANGES,
    MAX_OUTSTANDING_REQUESTS,
    Finding,
    Ms17010Watch,
    doublepulsar_verdict,
)
from monitor.output.report import build_document
from monitor.tcp.flows import FlowLimits
from monitor.tcp.identity import ConnectionRef

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
NT_TRANSACT, TRANS2, TRANS2_SECONDARY, NT_TRANSACT_SECONDARY, ECHO, READ_ANDX = 0xA0, 0x32, 0x33, 0xA1, 0x2B, 0x2E
NORMAL_FLAGS2 = 0xC807


def header(
    command: int,
    *,
    reply: bool = False,
    status: int = 0,
    pid: int = 100,
    mid: int = 1,
    flags2: int = NORMAL_FLAGS2,
    tid: int = 7,
    uid: int = 9,
) -> Smb1Header:
    return Smb1Header(command, status, 0x98 if reply else 0x18, flags2, tid, pid, uid, mid)


def request(command: int, body: object = None, **fields: int) -> Smb1Message:
    return Smb1Message(header(command, **fields), body, False)  # type: ignore[arg-type]


def response(command: int, **fields: int) -> Smb1Message:
    return Smb1Message(header(command, reply=True, **fields), None, False)


def trans2(subcommand: int, data_count: int = 0) -> Smb1TransactionRequest:
    return Smb1TransactionRequest(0, data_count, 0, data_count, (subcommand,), "")


def nt_transact(total_data: int) -> Smb1NtTransactRequest:
    return Smb1NtTransactRequest(0, total_data, 0, 0, 0, ())


def watch(messages: list[Smb1Message], trusted: bool = True) -> list[Finding]:
    findings: list[Finding] = []
    rules = Ms17010Watch(findings, trusted)
    for ts, message in enumerate(messages):
        rules.message(message, float(ts))
    rules.close()
    return findings


def alerts(name: str) -> list[dict]:
    return build_document(analyze_files([str(PCAPS / name)], FlowLimits(), 100))["alerts"]


def test_crafted_eternalblue_patterns_each_alert_once() -> None:
    found = [a for a in alerts("crafted/eternalblue_patterns.pcap") if a["kind"] == ALERT_ETERNALBLUE]
    by_pattern = {a["detail"]["pattern"]: a for a in found}
    assert sorted(by_pattern) == ["echo_marker", "nt_transact_trans2_secondary", "srvnet_grooming"]
    assert len(found) == 3
    nt_trans = by_pattern["nt_transact_trans2_secondary"]["detail"]
    assert nt_trans["total_data_count"] == 0x10FE8 and nt_trans["mid"] == 0
    assert "pid_0xfeff" in nt_trans["weak_signals"]
    grooming = by_pattern["srvnet_grooming"]
    assert (grooming["src"], grooming["dst"]) == ("192.0.2.66", "192.0.2.20")
    assert grooming["detail"]["connections"] == 3 and grooming["detail"]["frame_length"] == 0xFFF7
    assert all(a["detail"]["server_port"] == 445 for a in found)


def test_crafted_doublepulsar_patterns() -> None:
    found = [a["detail"] for a in alerts("crafted/doublepulsar_patterns.pcap") if a["kind"] == ALERT_DOUBLEPULSAR]
    assert [(d["pattern"], d["verdict"]) for d in found] == [
        ("trans2_session_setup", "implant present (MID + 0x10)"),
        ("payload_upload", "implant present: payload ran (MID 82)"),
        ("unsolicited_response", "the server answered a (PID, MID) the client never used"),
    ]
    assert (found[0]["request_mid"], found[0]["response_mid"]) == (65, 81)
    assert found[1]["data_count"] == 4096
    assert found[2]["pid"] == 0x1234 and found[2]["mid"] == 0x4321


def test_nmap_doublepulsar_check_against_samba_finds_no_implant() -> None:
    """Real software: nmap's smb-double-pulsar-backdoor; Samba answers with the MID it was asked."""
    [alert] = [a for a in alerts("recorded/nmap_double_pulsar.pcap") if a["kind"] == ALERT_DOUBLEPULSAR]
    assert alert["detail"]["verdict"] == "no implant answered"
    assert (alert["detail"]["request_mid"], alert["detail"]["response_mid"]) == (65, 65)
    assert alert["detail"]["status"] == "STATUS_ACCESS_DENIED"
    assert (alert["src"], alert["dst"]) == ("192.0.2.10", "192.0.2.20")


def test_nt_transact_needs_a_large_declared_size_and_a_trans2_secondary_with_the_same_ids() -> None:
    big = request(NT_TRANSACT, nt_transact(0x10000), mid=5)
    assert watch([big, request(TRANS2_SECONDARY, mid=5)])
    assert not watch([request(NT_TRANSACT, nt_transact(0xFFFF), mid=5), request(TRANS2_SECONDARY, mid=5)])
    assert not watch([big, request(NT_TRANSACT_SECONDARY, mid=5)])  # a legitimate large transaction's own secondary
    assert not watch([big, request(TRANS2_SECONDARY, mid=6)])
    assert not watch([big, request(TRANS2_SECONDARY, mid=5, tid=8)])
    assert not watch([big, request(TRANS2_SECONDARY, mid=5, uid=10)])
    assert not watch([big, request(TRANS2_SECONDARY, mid=5, pid=101)])
    repeated = watch([big, *[request(TRANS2_SECONDARY, mid=5) for _ in range(20)]])
    assert [kind for kind, _, _ in repeated] == [ALERT_ETERNALBLUE]  # once per connection, not per secondary


def test_echo_marker_needs_both_flags2_and_data() -> None:
    marker = Smb1EchoRequest(1, b"JlJmIhClBsr\x00")
    assert watch([request(ECHO, marker, flags2=0xC007)])
    assert not watch([request(ECHO, marker)])
    assert not watch([request(ECHO, Smb1EchoRequest(1, b"ordinary echo"), flags2=0xC007)])


def test_weak_signals_alone_raise_nothing() -> None:
    messages = [request(ECHO, Smb1EchoRequest(1, b"x"), pid=0xFEFF, mid=65), response(ECHO, pid=0xFEFF, mid=65)]
    assert not watch(messages)


def test_doublepulsar_verdicts() -> None:
    assert (
        doublepulsar_verdict(65, header(TRANS2, reply=True, status=0xC0000002, mid=81))
        == "implant present (MID + 0x10)"
    )
    assert doublepulsar_verdict(66, header(TRANS2, reply=True, status=0xC0000002, mid=82)).endswith(
        "payload ran (MID 82)"
    )
    assert doublepulsar_verdict(65, header(TRANS2, reply=True, status=0xC0000002, mid=65)) == "no implant answered"
    assert doublepulsar_verdict(65, None) == "no answer"
    [(kind, _, evidence)] = watch([request(TRANS2, trans2(0x000E), mid=65)])
    assert kind == ALERT_DOUBLEPULSAR and evidence["verdict"] == "no answer"


def test_ordinary_trans2_is_no_doublepulsar() -> None:
    find_first2 = request(TRANS2, trans2(0x0001), mid=3)
    assert not watch([find_first2, response(TRANS2, mid=3)])


def test_multi_part_answers_and_late_answers_are_not_unsolicited() -> None:
    messages = [request(0x25, mid=1), response(0x25, mid=1), response(0x25, mid=1)]  # a transaction answered in parts
    messages += [request(READ_ANDX, mid=2)]
    messages += [request(ECHO, Smb1EchoRequest(1, b""), mid=1000 + i) for i in range(MAX_ANSWERED_REQUESTS * 2)]
    messages += [response(ECHO, mid=1000 + i) for i in range(MAX_ANSWERED_REQUESTS * 2)]
    messages += [response(READ_ANDX, mid=2)]  # answered long after, behind hundreds of other exchanges
    assert not watch(messages)


def test_unsolicited_answers_count_only_on_connections_seen_whole() -> None:
    stray = [response(ECHO, pid=0x1234, mid=0x4321)]
    assert [e["pattern"] for _, _, e in watch(stray)] == ["unsolicited_response"]
    assert not watch(stray, trusted=False)  # picked up midstream: the request may predate the capture
    findings: list[Finding] = []
    rules = Ms17010Watch(findings, trusted=True)
    rules.lost_sync()  # a gap may have swallowed the request
    rules.message(stray[0], 0.0)
    assert not findings


def test_per_connection_memory_is_capped() -> None:
    findings: list[Finding] = []
    rules = Ms17010Watch(findings, trusted=True)
    for mid in range(20_000):
        rules.message(request(READ_ANDX, mid=mid % 65536, pid=mid // 65536), 0.0)
        rules.message(request(TRANS2, trans2(0x000E), mid=mid), 0.0)
        rules.message(request(NT_TRANSACT, nt_transact(0x20000), mid=mid), 0.0)
    assert len(rules._outstanding) <= MAX_OUTSTANDING_REQUESTS
    assert len(rules._pulsar_requests) <= MAX_OPEN_EXCHANGES
    assert len(rules._big_nt_transacts) <= MAX_OPEN_EXCHANGES


def test_grooming_alerts_when_enough_connections_come_together() -> None:
    settings = DetectionSettings(grooming_connections=3, grooming_window=60.0)
    detector = Detector(settings)
    evidence = {"frame_length": 0xFFF7, "protocol_id": "fe534d42"}
    detector.finding(FINDING_SRVNET_GROOMING, ConnectionRef.between("192.0.2.66", "192.0.2.20"), 0.0, evidence)
    detector.finding(FINDING_SRVNET_GROOMING, ConnectionRef.between("192.0.2.66", "192.0.2.20"), 30.0, evidence)
    detector.finding(
        FINDING_SRVNET_GROOMING, ConnectionRef.between("192.0.2.66", "192.0.2.21"), 31.0, evidence
    )  # another server
    detector.finding(
        FINDING_SRVNET_GROOMING, ConnectionRef.between("192.0.2.66", "192.0.2.20"), 100.0, evidence
    )  # the first left the window
    assert not detector.alerts
    for ts in (101.0, 102.0, 103.0):
        detector.finding(FINDING_SRVNET_GROOMING, ConnectionRef.between("192.0.2.66", "192.0.2.20"), ts, evidence)
    [alert] = detector.alerts
    assert alert.kind == ALERT_ETERNALBLUE and alert.detail["pattern"] == "srvnet_grooming"
    assert alert.detail["connections"] == 3


def test_grooming_needs_the_exploit_frame_length() -> None:
    findings: list[Finding] = []
    rules = Ms17010Watch(findings, trusted=True)
    rules.opening_frame(ZeroedMessageHeader(b"\xfeSMB", 0x1000), 0.0)
    assert not findings
    rules.opening_frame(ZeroedMessageHeader(b"BAAD", 0xFFF7), 0.0)
    assert [kind for kind, _, _ in findings] == [FINDING_SRVNET_GROOMING]


@pytest.mark.parametrize(
    "name", ["recorded/smb1_nt1.pcap", "recorded/auth_ntlmv2_smb1.pcap", "recorded/nmap_ms17_010.pcap"]
)
def test_real_smb1_sessions_raise_no_exploit_alert(name: str) -> None:
    kinds = {a["kind"] for a in alerts(name)}
    assert not kinds & {ALERT_ETERNALBLUE, ALERT_DOUBLEPULSAR}


bodies = st.one_of(
    st.none(),
    st.builds(Smb1EchoRequest, st.integers(0, 0xFFFF), st.binary(max_size=16)),
    st.builds(
        Smb1NtTransactRequest,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 0xFFFF),
        st.lists(st.integers(0, 0xFFFF), max_size=3).map(tuple),
    ),
    st.builds(
        Smb1TransactionRequest,
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.sampled_from((0, 4096, 0xFFFF)),
        st.lists(st.sampled_from((0x000E, 0x0023, 0)), max_size=3).map(tuple),
        st.sampled_from(("", "\\PIPE\\")),
    ),
)
messages = st.builds(
    lambda command, reply, status, ids, body, chained: Smb1Message(
        Smb1Header(command, status, 0x98 if reply else 0x18, 0xC007, *ids), body, chained
    ),
    st.sampled_from((0x25, 0x2B, 0x32, 0x33, 0xA0, 0xA1, 0x2E, 0x72)),
    st.booleans(),
    st.sampled_from((0, 0xC0000002, 0xC0000205, 0xC0000022)),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.sampled_from((64, 65, 66, 81, 82))),
    bodies,
    st.booleans(),
)


@given(st.lists(messages, max_size=60), st.booleans(), st.lists(st.integers(0, 60), max_size=3))
def test_any_message_sequence_is_watched_without_error(sequence: list, trusted: bool, gaps: list[int]) -> None:
    findings: list[Finding] = []
    rules = Ms17010Watch(findings, trusted)
    for ts, message in enumerate(sequence):
        if ts in gaps:
            rules.lost_sync()
        rules.message(message, float(ts))
        rules.opening_frame(ZeroedMessageHeader(b"\xfeSMB", 0xFFF7 if ts % 2 else 64), float(ts))
    rules.close()
    patterns = [(kind, evidence.get("pattern")) for kind, _, evidence in findings if kind != FINDING_SRVNET_GROOMING]
    doublepulsar = [p for p in patterns if p[0] == ALERT_DOUBLEPULSAR]
    eternalblue = [p for p in patterns if p[0] == ALERT_ETERNALBLUE]
    # One alert per pattern and verdict per connection: a handful, however long the sequence.
    assert len(eternalblue) <= 2 and len(doublepulsar) <= 10
