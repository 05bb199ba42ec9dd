#!/usr/bin/env python3
"""Build pcaps/derived/ from recorded captures (plain struct, deterministic).

The lab kernel has neither the 8021q module nor bridge VLAN filtering, so
VLAN-tagged traffic cannot be recorded there.  Instead the tags are inserted
into the real Ethernet frames of a recorded capture; every other byte
(timestamps, IP, TCP, SMB) is kept as recorded.

    python3 pcaps/lab/derive.py            # reads pcaps/recorded/smb3_1_1.pcap

Outputs:
  derived/vlan_8021q.pcap  one 802.1Q tag (TPID 0x8100, VLAN 100, PCP 0)
                           after the source MAC of every frame.
  derived/vlan_qinq.pcap   two tags: outer 802.1ad S-tag (TPID 0x88a8,
                           VLAN 200), inner 802.1Q C-tag (TPID 0x8100, VLAN 100).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

PCAPS = Path(__file__).resolve().parent.parent
SOURCE = PCAPS / "recorded" / "smb3_1_1.pcap"
OUT = PCAPS / "derived"

LINKTYPE_ETHERNET = 1
MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": ">",
}


def read_pcap(path: Path) -> tuple[bytes, str, list[tuple[bytes, bytes]]]:
    """Return (global header, endianness, [(record header, data), ...])."""
    raw = path.read_bytes()
    endian = MAGICS.get(raw[:4])
    if endian is None:
        sys.exit(f"{path}: not a classic pcap file")
    ghdr = raw[:24]
    linktype = struct.unpack(endian + "I", ghdr[20:24])[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        sys.exit(f"{path}: link type {linktype}, need Ethernet (1)")
    records = []
    off = 24
    while off + 16 <= len(raw):
        rhdr = raw[off : off + 16]
        caplen = struct.unpack(endian + "I", rhdr[8:12])[0]
        data = raw[off + 16 : off + 16 + caplen]
        if len(data) != caplen:
            sys.exit(f"{path}: truncated record at offset {off}")
        records.append((rhdr, data))
        off += 16 + caplen
    return ghdr, endian, records


def write_tagged(path: Path, ghdr: bytes, endian: str, records: list[tuple[bytes, bytes]], tags: bytes) -> None:
    out = bytearray(ghdr)
    for rhdr, data in records:
        ts_sec, ts_frac, caplen, origlen = struct.unpack(endian + "IIII", rhdr)
        frame = data[:12] + tags + data[12:]
        out += struct.pack(endian + "IIII", ts_sec, ts_frac, caplen + len(tags), origlen + len(tags))
        out += frame
    path.write_bytes(bytes(out))


def tag(tpid: int, vid: int, pcp: int = 0) -> bytes:
    return struct.pack("!HH", tpid, (pcp << 13) | vid)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ghdr, endian, records = read_pcap(SOURCE)
    write_tagged(OUT / "vlan_8021q.pcap", ghdr, endian, records, tag(0x8100, 100))
    write_tagged(OUT / "vlan_qinq.pcap", ghdr, endian, records, tag(0x88A8, 200) + tag(0x8100, 100))
    print(f"derived 2 files from {SOURCE.name} ({len(records)} frames) into {OUT}")


if __name__ == "__main__":
    main()
