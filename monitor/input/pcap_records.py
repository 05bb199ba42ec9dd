"""The record loop of a classic pcap file (libpcap format: a 24-byte file header, then per frame
a 16-byte record header and the captured bytes), for `monitor/input/capture.py`.

It is the one part of reading a capture that runs for every frame, so it is compiled with the hot
path (setup.py): as Python code its generator cost about half the instructions of a SYN flood's
whole analysis (callgrind, bench/README.md). `CaptureFile` opens the file, finds the format and
owns the window (`chunks`: its `buf`, `fill`, `error` and `close`); this loop only walks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

PCAP_FILE_HEADER: Final = 24
PCAP_RECORD_HEADER: Final = 16


def _u32(buf: bytes, position: int, little_endian: bool) -> int:
    if little_endian:
        return buf[position] | buf[position + 1] << 8 | buf[position + 2] << 16 | buf[position + 3] << 24
    return buf[position] << 24 | buf[position + 1] << 16 | buf[position + 2] << 8 | buf[position + 3]


class PcapRecords:
    """The frames of one classic pcap stream as (packet time, link type, frame bytes); `frames`
    counts them as they are read, so an error or an interruption reports the frames actually read."""

    def __init__(
        self, chunks: Any, little_endian: bool, nanoseconds: bool, max_record_bytes: int, linktypes: set[int]
    ) -> None:
        self.chunks = chunks
        self.little_endian = little_endian
        self.scale = 1e-9 if nanoseconds else 1e-6
        self.max_record_bytes = max_record_bytes
        self.linktypes = linktypes  # the capture's set of link types seen: this adds the file's one
        self.frames = 0

    def truncated(self, position: int, what: str) -> Exception:
        error: Exception = self.chunks.error(f"{what} cut short after {self.frames} frames (file truncated)", position)
        return error

    def read(self) -> Iterator[tuple[float, int, bytes]]:
        chunks = self.chunks
        little_endian = self.little_endian
        try:
            chunks.fill(0, PCAP_FILE_HEADER)
            buf: bytes = chunks.buf
            if len(buf) < PCAP_FILE_HEADER:
                raise self.truncated(0, "pcap file header")
            linktype = _u32(buf, 20, little_endian) & 0xFFFF  # upper bits may carry the FCS length
            self.linktypes.add(linktype)
            scale = self.scale
            position = PCAP_FILE_HEADER
            while True:
                if len(buf) - position < PCAP_RECORD_HEADER:
                    position = chunks.fill(position, PCAP_RECORD_HEADER)
                    buf = chunks.buf
                    if len(buf) < PCAP_RECORD_HEADER:
                        if buf:
                            raise self.truncated(position, "record header")
                        return
                seconds = _u32(buf, position, little_endian)
                fraction = _u32(buf, position + 4, little_endian)
                captured = _u32(buf, position + 8, little_endian)
                if captured > self.max_record_bytes:
                    error: Exception = chunks.error(
                        f"corrupt record {self.frames + 1}: claims {captured} bytes", position
                    )
                    raise error
                end = position + PCAP_RECORD_HEADER + captured
                if end > len(buf):
                    position = chunks.fill(position, PCAP_RECORD_HEADER + captured)
                    buf = chunks.buf
                    end = PCAP_RECORD_HEADER + captured
                    if end > len(buf):
                        raise self.truncated(position, f"record {self.frames + 1}")
                self.frames += 1
                yield seconds + fraction * scale, linktype, buf[position + PCAP_RECORD_HEADER : end]
                position = end
        finally:
            chunks.close()
