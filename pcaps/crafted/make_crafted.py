#!/usr/bin/env python3
"""Build the crafted captures in pcaps/crafted/ from the REAL bytes of a
recorded session (pcaps/recorded/smb3_1_1.pcap).

    python3 pcaps/crafted/make_crafted.py

The TCP payloads of the recorded session are reassembled per direction and
cut into NetBIOS-framed SMB2 messages.  Each file below re-emits those bytes
as a fresh TCP session (same MACs, addresses, ports and initial sequence
numbers as the recording; handshake and FIN teardown included unless said
otherwise) with consistent seq/ack numbers, but with a different TCP
segmentation.  No SMB byte is changed.  Output is deterministic: fixed
timestamps (1700000000.0 + 100 us per packet), IP ids counting from 1 per
direction, window 65535, no TCP options except MSS on the SYNs.

What each file tests:

  negotiate_split.pcap
      The client's NEGOTIATE request is split across 3 TCP segments: one cut
      inside the 4-byte NetBIOS session header (after byte 2) and one inside
      the 64-byte SMB2 header (after byte 30).  Tests reassembly of a header
      that arrives in pieces.
  out_of_order.pcap
      The server's NEGOTIATE response is sent as 2 segments in the order
      2,1 and the client's first SESSION_SETUP request as 3 segments in the
      order 1,3,2.  Tests buffering of out-of-order segments; no gap.
  retransmission_overlap.pcap
      The first SESSION_SETUP request is sent as bytes [0,100) and then
      [60,end) (40 bytes overlap, same bytes); the second SESSION_SETUP
      request (NTLMSSP_AUTH) is sent twice, identical (a retransmission).
      Tests that duplicates/overlaps are not parsed twice; no gap.
  gap_then_smb.pcap
      The client's second TREE_CONNECT request is sent as [0,len-20); the
      next segment, carrying its last 20 bytes plus the first 30 bytes of the
      following (pipelined) CREATE request, is missing from the capture (the
      server still ACKs it); the CREATE's remaining bytes follow, then the
      rest of the session.  Tests gap counting (exactly 1 gap, 50 bytes, in
      the client->server direction) and resynchronisation on the next
      NetBIOS+SMB2 header.
  two_messages_one_segment.pcap
      The client's last CLOSE request and the following TREE_DISCONNECT
      request travel in one TCP segment (two NetBIOS frames), followed by the
      two responses.  Tests that a segment may hold more than one message.
  midstream.pcap
      No TCP handshake and no NEGOTIATE exchange: the capture starts with the
      client's first SESSION_SETUP request.  Tests joining a session midway
      (server side found from port 445, dialect unknown).
  truncated.pcap
      The recorded smb3_1_1.pcap byte-for-byte, cut in the middle of the data
      of its middle record (the last record's data is shorter than its
      caplen says).  Tests a clean stop with a "truncated" error instead of a
      crash.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from scapy.all import IP, TCP, Ether, Raw, rdpcap, wrpcap  # type: ignore

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "recorded" / "smb3_1_1.pcap"

T0 = 1700000000.0
DT = 0.0001
MSS = 1448
C2S, S2C = 0, 1

SMB2_SESSION_SETUP = 0x01
SMB2_TREE_CONNECT = 0x03
SMB2_TREE_DISCONNECT = 0x04
SMB2_CLOSE = 0x06


@dataclass(frozen=True)
class Msg:
    direction: int
    start: int  # offset in the direction's stream
    end: int

    def cmd(self, streams: list[bytes]) -> int:
        b = streams[self.direction][self.start : self.end]
        if b[4:8] != b"\xfeSMB":
            return -1
        return struct.unpack_from("<H", b, 4 + 12)[0]


class Recording:
    """The recorded session: endpoints, ISNs, both byte streams, messages."""

    def __init__(self, path: Path) -> None:
        pkts = [p for p in rdpcap(str(path)) if p.haslayer(TCP) and p.haslayer(IP)]
        syn = next(p for p in pkts if p[TCP].flags == "S")
        synack = next(p for p in pkts if p[TCP].flags == "SA")
        self.mac = (syn[Ether].src, syn[Ether].dst)
        self.ip = (syn[IP].src, syn[IP].dst)
        self.port = (syn[TCP].sport, syn[TCP].dport)
        self.isn = (syn[TCP].seq, synack[TCP].seq)
        chunks: list[dict[int, bytes]] = [{}, {}]
        order: list[tuple[int, int, int]] = []  # (direction, offset, length) per data packet
        for p in pkts:
            payload = bytes(p[TCP].payload)
            if not payload:
                continue
            d = C2S if (p[IP].src, p[TCP].sport) == (self.ip[0], self.port[0]) else S2C
            off = (p[TCP].seq - self.isn[d] - 1) & 0xFFFFFFFF
            chunks[d][off] = payload
            order.append((d, off, len(payload)))
        self.streams: list[bytes] = []
        for d in (C2S, S2C):
            buf = bytearray()
            for off in sorted(chunks[d]):
                if off > len(buf):
                    sys.exit(f"{path}: hole in direction {d} at {len(buf)}")
                buf[off : off + len(chunks[d][off])] = chunks[d][off]
            self.streams.append(bytes(buf))
        # cut each stream into NetBIOS session messages
        msgs: list[Msg] = []
        for d in (C2S, S2C):
            s, off = self.streams[d], 0
            while off + 4 <= len(s):
                length = int.from_bytes(s[off + 1 : off + 4], "big")
                msgs.append(Msg(d, off, off + 4 + length))
                off += 4 + length
            if off != len(s):
                sys.exit(f"{path}: direction {d} does not end on a message boundary")

        # global order = index of the captured packet holding a message's first byte
        def rank(m: Msg) -> int:
            return next(i for i, (d, off, n) in enumerate(order) if d == m.direction and off <= m.start < off + n)

        self.msgs = sorted(msgs, key=lambda m: (rank(m), m.start))

    def find(self, direction: int, cmd: int, nth: int = 0) -> int:
        """Index in self.msgs of the nth message of `direction` with `cmd`."""
        hits = [i for i, m in enumerate(self.msgs) if m.direction == direction and m.cmd(self.streams) == cmd]
        return hits[nth]


class Writer:
    """Emits frames of one TCP connection with consistent seq/ack numbers."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.frames: list = []
        self.ipid = [1, 1]
        self.acked = [0, 0]  # stream bytes the peer has received per direction
        self.fin = [0, 0]  # 1 once a FIN was sent in that direction

    def _frame(self, d: int, flags: str, seq: int, ack: int | None, payload: bytes = b"", options=None) -> None:
        r = self.rec
        src, dst = d, 1 - d
        tcp = TCP(
            sport=r.port[src],
            dport=r.port[dst],
            seq=seq & 0xFFFFFFFF,
            ack=(ack or 0) & 0xFFFFFFFF,
            flags=flags,
            window=65535,
            options=options or [],
        )
        pkt = (
            Ether(src=r.mac[src], dst=r.mac[dst])
            / IP(src=r.ip[src], dst=r.ip[dst], id=self.ipid[d], flags="DF", ttl=64)
            / tcp
        )
        if payload:
            pkt = pkt / Raw(payload)
        pkt = Ether(bytes(pkt))  # freeze lengths and checksums
        pkt.time = T0 + DT * len(self.frames)
        self.ipid[d] += 1
        self.frames.append(pkt)

    def _ack_for(self, d: int) -> int:
        peer = 1 - d
        return self.rec.isn[peer] + 1 + self.acked[peer] + self.fin[peer]

    def handshake(self) -> None:
        r = self.rec
        self._frame(C2S, "S", r.isn[C2S], None, options=[("MSS", 1460)])
        self._frame(S2C, "SA", r.isn[S2C], r.isn[C2S] + 1, options=[("MSS", 1460)])
        self._frame(C2S, "A", r.isn[C2S] + 1, r.isn[S2C] + 1)

    def data(self, d: int, start: int, end: int, *, emit: bool = True) -> None:
        """Send stream bytes [start, end) of direction d as one segment.
        emit=False: the segment was sent (the peer ACKs it) but is missing
        from the capture."""
        if end > self.rec.streams[d].__len__() or start >= end:
            raise ValueError("bad range")
        if emit:
            self._frame(d, "PA", self.rec.isn[d] + 1 + start, self._ack_for(d), self.rec.streams[d][start:end])
        else:
            self.ipid[d] += 1
        self.acked[d] = max(self.acked[d], end)

    def message(self, m: Msg) -> None:
        """A whole message, in MSS-sized segments."""
        for off in range(m.start, m.end, MSS):
            self.data(m.direction, off, min(off + MSS, m.end))

    def teardown(self) -> None:
        r = self.rec
        self._frame(C2S, "FA", r.isn[C2S] + 1 + self.acked[C2S], self._ack_for(C2S))
        self.fin[C2S] = 1
        self._frame(S2C, "FA", r.isn[S2C] + 1 + self.acked[S2C], self._ack_for(S2C))
        self.fin[S2C] = 1
        self._frame(C2S, "A", r.isn[C2S] + 1 + self.acked[C2S] + 1, self._ack_for(C2S))

    def write(self, name: str) -> None:
        wrpcap(str(HERE / name), self.frames, linktype=1)
        print(f"  {name}: {len(self.frames)} frames")


def session(rec: Recording, special: dict, *, handshake: bool = True, skip_until: int = 0) -> Writer:
    """Emit the whole session; messages whose index is in `special` are
    emitted by the given function instead of normally."""
    w = Writer(rec)
    if handshake:
        w.handshake()
    if skip_until:
        for m in rec.msgs[:skip_until]:
            w.acked[m.direction] = max(w.acked[m.direction], m.end)
    done: set[int] = set()
    for i, m in enumerate(rec.msgs):
        if i < skip_until or i in done:
            continue
        if i in special:
            done |= set(special[i](w) or ())
        else:
            w.message(m)
    w.teardown()
    return w


def make_negotiate_split(rec: Recording) -> Writer:
    m = rec.msgs[0]
    assert m.direction == C2S and m.cmd(rec.streams) == 0, "first message is not NEGOTIATE"

    def split(w: Writer):
        w.data(C2S, m.start, m.start + 2)  # inside the NetBIOS header
        w.data(C2S, m.start + 2, m.start + 30)  # inside the SMB2 header
        w.data(C2S, m.start + 30, m.end)

    return session(rec, {0: split})


def make_out_of_order(rec: Recording) -> Writer:
    i_resp = 1
    i_ss = rec.find(C2S, SMB2_SESSION_SETUP, 0)
    resp, ss = rec.msgs[i_resp], rec.msgs[i_ss]
    assert resp.direction == S2C

    def resp_21(w: Writer):
        mid = resp.start + (resp.end - resp.start) // 2
        w.data(S2C, mid, resp.end)
        w.data(S2C, resp.start, mid)

    def ss_132(w: Writer):
        n = ss.end - ss.start
        a, b = ss.start + n // 3, ss.start + 2 * n // 3
        w.data(C2S, ss.start, a)
        w.data(C2S, b, ss.end)
        w.data(C2S, a, b)

    return session(rec, {i_resp: resp_21, i_ss: ss_132})


def make_retransmission_overlap(rec: Recording) -> Writer:
    i1 = rec.find(C2S, SMB2_SESSION_SETUP, 0)
    i2 = rec.find(C2S, SMB2_SESSION_SETUP, 1)
    m1, m2 = rec.msgs[i1], rec.msgs[i2]
    assert m1.end - m1.start > 100

    def overlap(w: Writer):
        w.data(C2S, m1.start, m1.start + 100)
        w.data(C2S, m1.start + 60, m1.end)

    def retrans(w: Writer):
        w.message(m2)
        w.message(m2)

    return session(rec, {i1: overlap, i2: retrans})


def make_gap_then_smb(rec: Recording) -> Writer:
    i1 = rec.find(C2S, SMB2_TREE_CONNECT, 1)
    m1 = rec.msgs[i1]
    i_resp = i1 + 1
    i2 = next(i for i in range(i1 + 1, len(rec.msgs)) if rec.msgs[i].direction == C2S)
    m2 = rec.msgs[i2]
    assert rec.msgs[i_resp].direction == S2C and i2 == i1 + 2
    assert m2.start == m1.end and m2.end - m2.start > 30

    def gap(w: Writer):
        w.data(C2S, m1.start, m1.end - 20)
        w.data(C2S, m1.end - 20, m2.start + 30, emit=False)  # the lost segment
        w.message(rec.msgs[i_resp])
        w.data(C2S, m2.start + 30, m2.end)
        return [i_resp, i2]

    return session(rec, {i1: gap})


def make_two_messages_one_segment(rec: Recording) -> Writer:
    i_close = max(i for i, m in enumerate(rec.msgs) if m.direction == C2S and m.cmd(rec.streams) == SMB2_CLOSE)
    i_tdis = i_close + 2
    m_close, m_tdis = rec.msgs[i_close], rec.msgs[i_tdis]
    assert m_tdis.direction == C2S and m_tdis.cmd(rec.streams) == SMB2_TREE_DISCONNECT
    assert m_close.end == m_tdis.start

    def pipelined(w: Writer):
        w.data(C2S, m_close.start, m_tdis.end)
        w.message(rec.msgs[i_close + 1])
        w.message(rec.msgs[i_close + 3])
        return [i_close + 1, i_tdis, i_close + 3]

    return session(rec, {i_close: pipelined})


def make_midstream(rec: Recording) -> Writer:
    i_ss = rec.find(C2S, SMB2_SESSION_SETUP, 0)
    return session(rec, {}, handshake=False, skip_until=i_ss)


def make_truncated() -> None:
    raw = SOURCE.read_bytes()
    endian = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offsets = []
    off = 24
    while off + 16 <= len(raw):
        caplen = struct.unpack_from(endian + "I", raw, off + 8)[0]
        offsets.append((off, caplen))
        off += 16 + caplen
    rec_off, caplen = offsets[len(offsets) // 2]
    cut = rec_off + 16 + caplen // 2
    (HERE / "truncated.pcap").write_bytes(raw[:cut])
    print(
        f"  truncated.pcap: {len(offsets) // 2} whole records + "
        f"{caplen // 2} of {caplen} bytes of record {len(offsets) // 2 + 1}"
    )


def main() -> None:
    rec = Recording(SOURCE)
    print(f"from {SOURCE.name}: {len(rec.msgs)} SMB messages, {len(rec.streams[0])}+{len(rec.streams[1])} bytes")
    make_negotiate_split(rec).write("negotiate_split.pcap")
    make_out_of_order(rec).write("out_of_order.pcap")
    make_retransmission_overlap(rec).write("retransmission_overlap.pcap")
    make_gap_then_smb(rec).write("gap_then_smb.pcap")
    make_two_messages_one_segment(rec).write("two_messages_one_segment.pcap")
    make_midstream(rec).write("midstream.pcap")
    make_truncated()


if __name__ == "__main__":
    main()
