"""Link, IP and TCP decoding: every link type and IPv6 extension header reaches the same TCP segment."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dissectors.records import AnomalyKind
from monitor.input.capture import CaptureFile
from monitor.input.decode import Decoder, TcpSegment

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"


def first_data_frame(name: str) -> bytes:
    """The first Ethernet frame of a recording whose TCP segment carries data."""
    decoder = Decoder()
    for _, linktype, frame in CaptureFile(str(PCAPS / "recorded" / name)):
        segment = decoder.decode(linktype, frame)
        if segment is not None and segment.payload:
            return frame
    raise AssertionError("no data segment")


ETHERNET_V4 = first_data_frame("smb3_1_1.pcap")
ETHERNET_V6 = first_data_frame("ipv6.pcap")
IP_V4 = ETHERNET_V4[14:]
IP_V6 = ETHERNET_V6[14:]
EXPECTED_V4 = Decoder().decode(1, ETHERNET_V4)
EXPECTED_V6 = Decoder().decode(1, ETHERNET_V6)


def vlan(tpid: int, vid: int) -> bytes:
    return struct.pack("!HH", tpid, vid)


def ipv6_with_extensions(extensions: list[tuple[int, bytes]]) -> bytes:
    """IP_V6 with extension headers (type, body without the next-header byte) before TCP."""
    header, tcp = bytearray(IP_V6[:40]), IP_V6[40:]
    chain = b""
    next_types = [kind for kind, _ in extensions[1:]] + [6]
    for (_, body), next_type in zip(extensions, next_types, strict=True):
        chain += bytes([next_type]) + body
    header[6] = extensions[0][0]
    header[4:6] = struct.pack("!H", len(chain) + len(tcp))
    return bytes(header) + chain + tcp


def test_real_frames_decode() -> None:
    assert isinstance(EXPECTED_V4, TcpSegment) and EXPECTED_V4.dport == 445 and len(EXPECTED_V4.src) == 4
    assert isinstance(EXPECTED_V6, TcpSegment) and EXPECTED_V6.dport == 445 and len(EXPECTED_V6.src) == 16
    assert EXPECTED_V4.missing == 0 and EXPECTED_V4.payload.startswith(b"\x00\x00")


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, ETHERNET_V4[:12] + vlan(0x8100, 100) + ETHERNET_V4[12:]),
        (1, ETHERNET_V4[:12] + vlan(0x88A8, 200) + vlan(0x8100, 100) + ETHERNET_V4[12:]),
        (1, ETHERNET_V4[:12] + vlan(0x9100, 1) + vlan(0x9100, 2) + vlan(0x8100, 3) + ETHERNET_V4[12:]),
        (113, struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + IP_V4),
        (276, struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + IP_V4),
        (101, IP_V4),
        (228, IP_V4),
        (12, IP_V4),
        (0, struct.pack("<I", 2) + IP_V4),
        (0, struct.pack(">I", 2) + IP_V4),
        (108, struct.pack(">I", 2) + IP_V4),
        (1, ETHERNET_V4 + bytes(20)),  # Ethernet padding is not payload
    ],
    ids=[
        "8021q",
        "qinq",
        "triple-tag",
        "sll",
        "sll2",
        "raw",
        "ipv4",
        "dlt-raw-12",
        "null-le",
        "null-be",
        "loop",
        "pad",
    ],
)
def test_ipv4_link_types(linktype: int, frame: bytes) -> None:
    assert Decoder().decode(linktype, frame) == EXPECTED_V4


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (101, IP_V6),
        (229, IP_V6),
        (113, struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x86DD) + IP_V6),
        (276, struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, bytes(8)) + IP_V6),
        (0, struct.pack("<I", 30) + IP_V6),
    ],
    ids=["raw", "ipv6", "sll", "sll2", "null"],
)
def test_ipv6_link_types(linktype: int, frame: bytes) -> None:
    assert Decoder().decode(linktype, frame) == EXPECTED_V6


def test_ipv6_extension_headers_are_skipped() -> None:
    hop_by_hop = (0, bytes([0]) + bytes(6))  # 8 bytes
    routing = (43, bytes([1]) + bytes(14))  # 16 bytes
    atomic_fragment = (44, bytes(7))  # offset 0, M = 0
    authentication = (51, bytes([2]) + bytes(14))  # (2 + 2) * 4 = 16 bytes
    destination = (60, bytes([0]) + bytes(6))
    packet = ipv6_with_extensions([hop_by_hop, routing, atomic_fragment, authentication, destination])
    assert Decoder().decode(101, packet) == EXPECTED_V6


def test_fragments_are_counted_not_decoded() -> None:
    decoder = Decoder()
    fragment_v6 = ipv6_with_extensions([(44, bytes([0, 0x00, 0x01]) + bytes(4))])  # M flag set
    assert decoder.decode(101, fragment_v6) is None
    fragment_v4 = bytearray(IP_V4)
    fragment_v4[6] = 0x20  # More Fragments
    assert decoder.decode(101, bytes(fragment_v4)) is None
    assert decoder.anomalies[AnomalyKind.IP_FRAGMENT] == 2


def test_snaplen_cut_payload_is_reported_missing() -> None:
    segment = Decoder().decode(1, ETHERNET_V4[:80])
    assert segment is not None and EXPECTED_V4 is not None
    assert len(segment.payload) + segment.missing == len(EXPECTED_V4.payload)
    assert segment.missing > 0


def test_other_traffic_is_counted_by_reason() -> None:
    decoder = Decoder()
    arp = ETHERNET_V4[:12] + b"\x08\x06" + bytes(28)
    udp = bytearray(IP_V4)
    udp[9] = 17
    http = bytearray(IP_V4)
    ihl = (http[0] & 0x0F) * 4
    http[ihl : ihl + 4] = struct.pack("!HH", 51000, 80)
    esp = ipv6_with_extensions([(50, bytes(7))])
    assert decoder.decode(1, arp) is None
    assert decoder.decode(101, bytes(udp)) is None
    assert decoder.decode(101, bytes(http)) is None
    assert decoder.decode(101, esp) is None
    assert decoder.decode(147, IP_V4) is None
    assert decoder.skipped == {"not_ip": 1, "not_tcp": 2, "other_port": 1}
    assert decoder.unsupported_linktypes == {147: 1}


@pytest.mark.parametrize("cut", [0, 5, 13, 20, 30, 40])
def test_short_frames_are_malformed_not_errors(cut: int) -> None:
    decoder = Decoder()
    assert decoder.decode(1, ETHERNET_V4[:cut]) is None
    assert sum(decoder.anomalies.values()) + sum(decoder.skipped.values()) == 1


def test_bad_header_lengths() -> None:
    decoder = Decoder()
    bad_ihl = bytearray(IP_V4)
    bad_ihl[0] = 0x43
    assert decoder.decode(101, bytes(bad_ihl)) is None
    bad_tcp = bytearray(IP_V4)
    ihl = (bad_tcp[0] & 0x0F) * 4
    bad_tcp[ihl + 12] = 0x20  # data offset 8 bytes
    assert decoder.decode(101, bytes(bad_tcp)) is None
    assert decoder.anomalies == {AnomalyKind.IP_MALFORMED: 1, AnomalyKind.TCP_MALFORMED: 1}


def test_too_many_vlan_tags() -> None:
    decoder = Decoder()
    frame = ETHERNET_V4[:12] + vlan(0x8100, 1) * 9 + ETHERNET_V4[12:]
    assert decoder.decode(1, frame) is None
    assert decoder.anomalies[AnomalyKind.FRAME_MALFORMED] == 1
