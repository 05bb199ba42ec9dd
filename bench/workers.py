#!/usr/bin/env python3
"""Python-side workloads timed by bench/run.py, each run in its own process.

``python3 bench/workers.py {rawloop|scapy|pyshark} FILE`` prints one JSON line such as
``{"packets": N, "smb_packets": K, "seconds": T}`` where ``seconds`` is the time
spent reading/dissecting (interpreter start-up and imports excluded, so the
rates are not flattered by short samples being dominated by start-up).
"""

from __future__ import annotations

import json
import mmap
import struct
import sys
import time
from pathlib import Path

SMB_PORTS = frozenset((445, 139))
DISPLAY_FILTER = "smb || smb2"

RELEASE_CHUNK = 16 << 20  # multiple of the page size
_RECORD = struct.Struct("<IIII")
_RECORD_BE = struct.Struct(">IIII")
_U16_BE = struct.Struct("!H")
_PORTS = struct.Struct("!HH")


def raw_read_classify(path: Path) -> dict[str, int]:
    """Walk the pcap's record headers via mmap and classify TCP 445/139 vs other.

    The minimal pure-Python "read + classify" loop: no reassembly, no parsing
    beyond Ethernet/IPv4/TCP port numbers.
    """
    counts = {"packets": 0, "smb_packets": 0, "other_tcp": 0, "other": 0, "bytes": 0}
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        magic = struct.unpack_from("<I", data, 0)[0]
        record = _RECORD if magic in (0xA1B2C3D4, 0xA1B23C4D) else _RECORD_BE
        linktype = struct.unpack_from(record.format[0] + "I", data, 20)[0] & 0xFFFF
        if linktype != 1:
            raise SystemExit(f"{path}: link type {linktype} is not Ethernet")
        unpack_record = record.unpack_from
        unpack_u16 = _U16_BE.unpack_from
        unpack_ports = _PORTS.unpack_from
        offset, end = 24, len(data)
        packets = smb = other_tcp = other = 0
        release_below = RELEASE_CHUNK
        while offset + 16 <= end:
            if offset > release_below:  # drop pages already walked so RSS stays flat
                data.madvise(mmap.MADV_DONTNEED, release_below - RELEASE_CHUNK, RELEASE_CHUNK)
                release_below += RELEASE_CHUNK
            captured = unpack_record(data, offset)[2]
            frame = offset + 16
            offset = frame + captured
            packets += 1
            if captured >= 34 and unpack_u16(data, frame + 12)[0] == 0x0800 and data[frame + 23] == 6:
                header_len = (data[frame + 14] & 0x0F) * 4
                source_port, destination_port = unpack_ports(data, frame + 14 + header_len)
                if source_port in SMB_PORTS or destination_port in SMB_PORTS:
                    smb += 1
                else:
                    other_tcp += 1
            else:
                other += 1
        counts.update(packets=packets, smb_packets=smb, other_tcp=other_tcp, other=other, bytes=end)
    return counts


def scapy_full_dissection(path: Path) -> dict[str, int]:
    """scapy's PcapReader with every layer dissected and the SMB facts read."""
    from scapy.layers.smb import SMB_Header, SMBNegotiate_Request
    from scapy.layers.smb2 import SMB2_Header, SMB2_Negotiate_Protocol_Response
    from scapy.utils import PcapReader

    packets = smb = 0
    facts: set[tuple[object, ...]] = set()
    with PcapReader(str(path)) as reader:
        for packet in reader:
            packets += 1
            layer = packet
            while layer:  # touch every dissected layer
                layer = layer.payload
            if SMB2_Header in packet:
                smb += 1
                header = packet[SMB2_Header]
                command = header.Command
                if SMB2_Negotiate_Protocol_Response in packet:
                    response = packet[SMB2_Negotiate_Protocol_Response]
                    facts.add((command, response.DialectRevision, response.SecurityMode))
            elif SMB_Header in packet:
                smb += 1
                if SMBNegotiate_Request in packet:
                    dialects = packet[SMBNegotiate_Request].Dialects
                    facts.add((packet[SMB_Header].Command, tuple(d.DialectString for d in dialects)))
    return {"packets": packets, "smb_packets": smb, "distinct_facts": len(facts)}


def pyshark_fields(path: Path) -> dict[str, int]:
    """pyshark FileCapture with the tshark display filter, reading the same fields."""
    import pyshark

    capture = pyshark.FileCapture(str(path), display_filter=DISPLAY_FILTER, keep_packets=False)
    matched = 0
    facts: set[tuple[object, ...]] = set()
    try:
        for packet in capture:
            matched += 1
            for layer in packet.layers:
                if layer.layer_name == "smb2":
                    facts.add(
                        (
                            layer.get_field("dialect"),
                            layer.get_field("cmd"),
                            layer.get_field("sec_mode_sign_required"),
                        )
                    )
                elif layer.layer_name == "smb":
                    facts.add((layer.get_field("dialect_name"), layer.get_field("cmd")))
    finally:
        capture.close()
    # pyshark yields only the matching packets; run.py divides by the file's packet count
    return {"smb_packets": matched, "distinct_facts": len(facts)}


WORKLOADS = {
    "rawloop": raw_read_classify,
    "scapy": scapy_full_dissection,
    "pyshark": pyshark_fields,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WORKLOADS:
        print(f"usage: workers.py {{{'|'.join(WORKLOADS)}}} FILE", file=sys.stderr)
        return 2
    name, path = argv
    workload = WORKLOADS[name]
    if name == "scapy":  # import outside the timed region
        import scapy.layers.smb2  # noqa: F401
    elif name == "pyshark":
        import pyshark  # noqa: F401
    started = time.perf_counter()
    result: dict[str, float | int] = dict(workload(Path(path)))
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
