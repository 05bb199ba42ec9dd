"""TCP flows and reassembly, driven by the segments of a real recorded session.

Each test reorders, repeats, drops or rewrites those segments and checks that
the SMB facts come out as from the clean recording, or that the damage is
counted where facts are lost.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from dissectors.records import AnomalyKind
from monitor.input.capture import CaptureFile
from monitor.input.decode import TCP_ACK, TCP_RST, TCP_SYN, Decoder, TcpSegment
from monitor.pipeline import ConnectionRecord, Pipeline
from monitor.tcp.flows import CloseReason, FlowLimits, HalfOpenTable, seq_diff
from monitor.tcp.scan_probation import ScanProbation

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
CLIENT = bytes([192, 0, 2, 10])


def recorded_segments(name: str = "smb3_1_1.pcap") -> list[tuple[float, TcpSegment]]:
    decoder = Decoder()
    segments = []
    for ts, linktype, frame in CaptureFile(str(PCAPS / "recorded" / name)):
        segment = decoder.decode(linktype, frame)
        if segment is not None:
            segments.append((ts, segment))
    return segments


SESSION = recorded_segments()


def run(
    segments: list[tuple[float, TcpSegment]], limits: FlowLimits | None = None
) -> tuple[Pipeline, list[ConnectionRecord]]:
    records: list[ConnectionRecord] = []
    pipeline = Pipeline(limits, sinks=[records.append])
    for ts, segment in segments:
        pipeline.flows.process(ts, segment)
    pipeline.finish()
    return pipeline, records


def facts(record: ConnectionRecord) -> tuple[object, ...]:
    return (record["dialect"], record["dialects_offered"], record["messages"], record["commands"])


CLEAN_PIPELINE, [CLEAN] = run(SESSION)


def test_clean_session() -> None:
    assert CLEAN["dialect"] == "3.1.1"
    assert CLEAN["client"]["ip"] == "192.0.2.10" and CLEAN["server"]["port"] == 445
    assert CLEAN["end"] == "closed_fin" and not CLEAN["midstream"]
    assert CLEAN["tcp"]["gaps"] == 0 and CLEAN["tcp"]["retransmitted_bytes"] == 0
    assert CLEAN_PIPELINE.flows.gaps == 0


def test_out_of_order_within_a_window_gives_the_same_facts() -> None:
    rng = random.Random(7)
    for _ in range(20):
        shuffled = list(SESSION)
        for start in range(0, len(shuffled), 4):
            window = shuffled[start : start + 4]
            rng.shuffle(window)
            shuffled[start : start + 4] = window
        _, [record] = run(shuffled)
        assert facts(record) == facts(CLEAN)
        assert record["tcp"]["gaps"] == 0


def test_every_segment_retransmitted() -> None:
    doubled = [item for item in SESSION for _ in range(2)]
    _, [record] = run(doubled)
    assert facts(record) == facts(CLEAN)
    data_bytes = sum(len(segment.payload) for _, segment in SESSION)
    assert record["tcp"]["retransmitted_bytes"] == data_bytes


def test_overlapping_resegmentation() -> None:
    """Each data segment is sent again as a copy that starts halfway into it and runs into the next."""
    overlapped = []
    for ts, segment in SESSION:
        overlapped.append((ts, segment))
        if len(segment.payload) > 8:
            half = len(segment.payload) // 2
            overlapped.append((ts, segment._replace(seq=segment.seq + half, payload=segment.payload[half:])))
    _, [record] = run(overlapped)
    assert facts(record) == facts(CLEAN)
    assert record["tcp"]["retransmitted_bytes"] > 0


def test_sequence_numbers_wrapping_around() -> None:
    shifted = []
    for ts, segment in SESSION:
        # Put the client's stream right before 2**32 so it wraps mid-session.
        if segment.src == CLIENT:
            segment = segment._replace(seq=(segment.seq - SESSION[0][1].seq - 300) & 0xFFFFFFFF)
        else:
            segment = segment._replace(ack=(segment.ack - SESSION[0][1].seq - 300) & 0xFFFFFFFF)
        shifted.append((ts, segment))
    _, [record] = run(shifted)
    assert facts(record) == facts(CLEAN)
    assert seq_diff(5, 0xFFFFFFF0) == 21 and seq_diff(0xFFFFFFF0, 5) == -21


def data_indexes(direction_src: bytes) -> list[int]:
    return [i for i, (_, s) in enumerate(SESSION) if s.payload and s.src == direction_src]


def test_lost_segment_is_a_counted_gap_and_later_messages_survive() -> None:
    client_data = data_indexes(CLIENT)
    lost = client_data[len(client_data) // 2]
    _, [record] = run(SESSION[:lost] + SESSION[lost + 1 :])
    assert record["tcp"]["gaps"] == 1
    assert record["tcp"]["gap_bytes"] == len(SESSION[lost][1].payload)
    assert record["dialect"] == "3.1.1"
    clean_requests = CLEAN["messages"]["smb2"]
    assert clean_requests - 3 <= record["messages"]["smb2"] < clean_requests


def test_hole_is_declared_when_the_peer_acknowledges_past_it() -> None:
    client_data = data_indexes(CLIENT)
    lost = client_data[2]
    pipeline = Pipeline(FlowLimits(acked_hole_timeout=1.0))
    after = SESSION[lost + 1 : lost + 6]
    for ts, segment in SESSION[:lost] + after:
        pipeline.flows.process(ts, segment)
    [flow] = pipeline.flows.flows()
    client = flow.halves[0]
    # Acknowledged but only just: a mirror port may still deliver the missing segment.
    assert client.gaps == 0 and client.pending and client.hole_acked_since is not None
    ts, server_ack = next((ts, s) for ts, s in SESSION[lost + 6 :] if s.src != CLIENT)
    pipeline.flows.process(ts + 2.0, server_ack)
    assert client.gaps == 1
    assert not client.pending


def test_out_of_order_store_is_capped() -> None:
    limits = FlowLimits(max_out_of_order_bytes=600)
    client_data = data_indexes(CLIENT)
    without_first_request = [item for i, item in enumerate(SESSION) if i != client_data[0]]
    # Strip the acknowledgements so only the cap can end the wait for the hole.
    no_acks = [(ts, s._replace(flags=s.flags & ~TCP_ACK)) for ts, s in without_first_request]
    pipeline, [record] = run(no_acks, limits)
    assert pipeline.flows.anomalies[AnomalyKind.OUT_OF_ORDER_BUFFER_FULL] >= 1
    assert record["tcp"]["gaps"] >= 1


def test_midstream_pickup_decides_roles_by_port() -> None:
    first_request = data_indexes(CLIENT)[3]
    # Starting with the server's answer: the sender is on 445, so it is the server.
    start = first_request + 1
    _, [record] = run(SESSION[start:])
    assert record["midstream"]
    assert record["client"]["ip"] == "192.0.2.10" and record["server"]["port"] == 445
    assert record["dialect"] is None
    assert record["messages"]["smb2"] > 10


def test_syn_ack_first_makes_its_sender_the_server() -> None:
    syn_ack_index = next(i for i, (_, s) in enumerate(SESSION) if s.flags & TCP_SYN and s.flags & TCP_ACK)
    _, [record] = run(SESSION[syn_ack_index:])
    assert record["server"]["ip"] == "192.0.2.20" and not record["midstream"]
    assert facts(record) == facts(CLEAN)


def test_reset_and_port_reuse_make_two_connections() -> None:
    ts_last, last = SESSION[-1]
    reset = (ts_last + 0.1, last._replace(flags=TCP_RST, payload=b""))
    later = [
        (ts + 100.0, segment._replace(seq=segment.seq + 5000) if segment.src == CLIENT else segment)
        for ts, segment in SESSION
    ]
    pipeline, records = run([*SESSION[:-3], reset, *later])
    assert len(records) == 2
    assert pipeline.flows.closed[CloseReason.PORT_REUSED] + pipeline.flows.closed[CloseReason.CLOSED] >= 1
    assert records[0]["end"] in ("reset", "closed_fin")


def test_idle_flows_are_evicted_by_packet_time() -> None:
    limits = FlowLimits(established_timeout=30.0)
    midpoint = len(SESSION) // 2
    first, second = SESSION[:midpoint], SESSION[midpoint:]
    later = [(ts + 3600.0, segment) for ts, segment in second]
    pipeline, records = run(first + later, limits)
    assert pipeline.flows.closed[CloseReason.IDLE] == 1
    assert len(records) == 2  # the part after the idle time is picked up midstream
    assert records[1]["midstream"]


def test_flow_table_cap_evicts_the_oldest() -> None:
    limits = FlowLimits(max_flows=100)
    template = SESSION[data_indexes(CLIENT)[0]][1]  # data: each picked up as a flow of its own
    pipeline = Pipeline(limits)
    for i in range(1000):
        src = bytes([198, 51, i >> 8, i & 0xFF])
        pipeline.flows.process(float(i) / 1000, template._replace(src=src, sport=40000 + i % 1000))
        assert len(pipeline.flows) <= 100
    # Every live flow evicted is counted once: the anomaly counts flows, not eviction rounds.
    assert pipeline.flows.anomalies[AnomalyKind.FLOW_TABLE_FULL] == pipeline.flows.closed[CloseReason.TABLE_FULL]
    assert pipeline.flows.closed[CloseReason.TABLE_FULL] >= 900
    assert pipeline.flows.created == 1000


def test_stray_reset_opens_nothing() -> None:
    pipeline = Pipeline(FlowLimits())
    pipeline.flows.process(0.0, SESSION[5][1]._replace(flags=TCP_RST, payload=b""))
    assert len(pipeline.flows) == 0


def test_out_of_order_anomalies_are_counted_once() -> None:
    """The flow table counts them; the connection's record lists them; the totals add them once."""
    from monitor.cli import analyze_files
    from monitor.output.report import build_document

    capture = Path(__file__).resolve().parents[1] / "pcaps" / "crafted" / "out_of_order.pcap"
    no_room = FlowLimits(max_out_of_order_segments=0, max_out_of_order_bytes=0)
    document = build_document(analyze_files([str(capture)], no_room, 10))
    per_connection = Counter()
    for connection in document["connections"]:
        per_connection.update(connection["anomalies"])
    totals = document["stats"]["anomalies"]
    for kind in ("overlap_data_differs", "out_of_order_buffer_full"):
        assert totals.get(kind, 0) == per_connection.get(kind, 0)
    assert per_connection["out_of_order_buffer_full"] == 2  # the two segments that arrived early


def test_syn_only_attempts_wait_in_the_half_open_table() -> None:
    """A SYN flood fills only the compact half-open table: flows are made when an answer comes."""
    limits = FlowLimits(max_flows=10, max_half_open=1_000)
    syn = SESSION[0][1]
    assert syn.flags & TCP_SYN and not syn.flags & TCP_ACK
    pipeline = Pipeline(limits)
    for i in range(5_000):
        pipeline.flows.process(i / 1000, syn._replace(src=bytes([198, 51, i >> 8, i & 0xFF])))
    flows = pipeline.flows
    assert len(flows) == 0 and flows.half_open == 1_000 and flows.half_open_evicted == 4_000
    assert flows.created == 5_000 and flows.closed[CloseReason.TABLE_FULL] == 4_000
    # The real session after the flood: its SYN waits, its SYN+ACK makes the flow, which sees SMB.
    records: list[ConnectionRecord] = []
    pipeline.sinks.append(records.append)
    for ts, segment in SESSION:
        pipeline.flows.process(10.0 + ts, segment)
    pipeline.finish()
    assert flows.half_open_promoted == 1 and len(records) == 1 and records[0]["dialect"]
    assert not records[0]["midstream"] and records[0]["first_seen"] == 10.0 + SESSION[0][0]
    # The waiting attempts got no answer by the end: failed, no SMB, counted once.
    expired = flows.closed[CloseReason.IDLE] + flows.closed[CloseReason.END_OF_INPUT]
    assert flows.half_open == 0 and expired >= 1_000
    assert pipeline.connections_without_smb == 5_000


def test_a_reset_answer_ends_the_attempt_as_failed() -> None:
    syn = SESSION[0][1]
    pipeline = Pipeline(FlowLimits())
    pipeline.flows.process(0.0, syn)
    reset = syn._replace(src=syn.dst, sport=syn.dport, dst=syn.src, dport=syn.sport, flags=TCP_RST | TCP_ACK)
    pipeline.flows.process(0.001, reset)
    assert pipeline.flows.half_open == 0 and len(pipeline.flows) == 0
    assert pipeline.flows.closed[CloseReason.CLOSED] == 1 and pipeline.connections_without_smb == 1


def jumped(jump: int, from_client_data: int) -> list[tuple[float, TcpSegment]]:
    """The session with the client's sequence numbers moved by `jump` from its n-th data segment on
    (the server's acknowledgements with them), as a capture spliced from two connections looks."""
    start = data_indexes(CLIENT)[from_client_data]
    moved = []
    for index, (ts, segment) in enumerate(SESSION):
        if index >= start:
            if segment.src == CLIENT:
                segment = segment._replace(seq=(segment.seq + jump) & 0xFFFFFFFF)
            elif segment.ack:
                segment = segment._replace(ack=(segment.ack + jump) & 0xFFFFFFFF)
        moved.append((ts, segment))
    return moved


def test_a_sequence_jump_is_a_counted_gap_then_resynchronised_never_retransmission() -> None:
    # More than 2^31 ahead reads as "behind" in modular arithmetic: before, every later byte was
    # counted as retransmitted and the NEGOTIATE after the jump was lost without a gap or anomaly.
    for jump in (2**31 + 12_345, 2**30 + 4_096, -(2**30) - 4_096):
        pipeline, [record] = run(jumped(jump, 0))  # between the handshake and the NEGOTIATE
        assert record["tcp"]["gaps"] == 1 and record["tcp"]["gap_bytes"] == 0, jump
        assert record["tcp"]["retransmitted_bytes"] == 0, jump
        assert pipeline.anomalies()[AnomalyKind.SEQUENCE_JUMP] == 1, jump
        assert facts(record) == facts(CLEAN), jump  # resynchronised on the NEGOTIATE: nothing lost
    pipeline, [record] = run(jumped(2**31 + 12_345, 2))  # mid-session, between two requests
    assert pipeline.anomalies()[AnomalyKind.SEQUENCE_JUMP] == 1 and record["tcp"]["retransmitted_bytes"] == 0
    assert record["dialect"] == "3.1.1" and record["messages"] == CLEAN["messages"]
    # Within any window a sender can have, a jump is a hole as before, not a sequence jump.
    pipeline, _ = run(jumped(2**20, 2))
    assert AnomalyKind.SEQUENCE_JUMP not in pipeline.anomalies()


def test_a_forward_jump_in_packet_time_is_counted_once() -> None:
    midpoint = len(SESSION) // 2
    later = [(ts + 3600.0, segment) for ts, segment in SESSION[midpoint:]]
    pipeline, records = run(SESSION[:midpoint] + later)
    assert pipeline.anomalies()[AnomalyKind.PACKET_TIME_JUMP] == 1
    assert len(records) == 2 and records[1]["midstream"]  # the split the jump causes (README)
    assert AnomalyKind.PACKET_TIME_JUMP not in CLEAN_PIPELINE.anomalies()


def test_half_open_table_evicts_in_arrival_order_and_skips_answered_attempts() -> None:
    table = HalfOpenTable()
    keys = [bytes([n]) * 12 for n in range(200)]  # enough to fill and compact the ring several times
    for n, key in enumerate(keys):
        table.add(key, float(n), n)
    for key in keys[::2]:  # answered or reset: taken out of the dict, a stale ring slot left behind
        del table.entries[key]
    table.add(keys[0], 500.0, 7)  # the same 4-tuple tries again later: its old slot is not its arrival
    assert table.pop_oldest() == keys[1]
    assert table.pop_oldest(before=3.0) is None  # the next one (key 3, time 3.0) is not older than 3.0
    assert table.pop_oldest(before=3.5) == keys[3]
    order = []
    while (key := table.pop_oldest()) is not None:
        order.append(key)
    assert order == [*keys[5::2], keys[0]]
    assert not table.entries and len(table) == 0


def test_scan_probation_gives_back_the_first_destination_of_ipv4_and_ipv6_sources() -> None:
    for source, first, second in (
        (bytes([10, 0, 0, 1]), bytes([172, 16, 0, 1]), bytes([172, 16, 0, 2])),
        (b"\xfd" + b"\x01" * 15, b"\xff" * 8 + b"\x80" * 8, b"\xfe\x80" + b"\x00" * 13 + b"\x02"),
    ):
        probation = ScanProbation(1024, 60.0, 3, {})
        assert probation.attempt(source, first, 1_700_000_000.25) is False
        assert probation.attempt(source, first, 1_700_000_001.0) is False  # the same destination again
        assert probation.attempt(source, second, 1_700_000_002.0) is True
        assert probation.earlier_destination == first
        assert probation.earlier_ts == 1_700_000_000.25
        # Outside the window a second destination is a first one again.
        other = ScanProbation(1024, 1.0, 3, {})
        other.attempt(source, first, 10.0)
        assert other.attempt(source, second, 12.0) is False
