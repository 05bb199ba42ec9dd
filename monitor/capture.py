"""The only code that reads capture files (and, later, live interfaces).

`CaptureFile` yields raw frames ``(timestamp, linktype, bytes)`` from classic
pcap (either byte order, micro- or nanosecond stamps), pcapng (any number of
sections and interfaces, each with its own link type and time resolution) and
gzip-compressed copies of either, from a path or ``-`` for standard input.

Records are read with `struct` over large buffered chunks: measured faster
than scapy's readers and than per-packet file reads, and it needs no libpcap.
Damage (a file that is no capture, a cut or corrupt record) raises
`CaptureError` naming the file and the byte offset; frames before it have
already been yielded, so nothing read so far is lost.
"""

from __future__ import annotations

import gzip
import struct
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

Frame = tuple[float, int, bytes]

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_MAGIC_NANOSECONDS = 0xA1B23C4D
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_INTERFACE_DESCRIPTION = 0x00000001
PCAPNG_PACKET_OBSOLETE = 0x00000002
PCAPNG_SIMPLE_PACKET = 0x00000003
PCAPNG_INTERFACE_STATISTICS = 0x00000005
PCAPNG_ENHANCED_PACKET = 0x00000006
# The smallest length of each block type that holds its fixed fields (pcapng spec, section 4).
PCAPNG_MIN_BLOCK_LENGTH = {
    PCAPNG_SECTION_HEADER: 28,
    PCAPNG_INTERFACE_DESCRIPTION: 20,
    PCAPNG_PACKET_OBSOLETE: 32,
    PCAPNG_SIMPLE_PACKET: 16,
    PCAPNG_INTERFACE_STATISTICS: 24,
    PCAPNG_ENHANCED_PACKET: 32,
}
PCAPNG_OPTION_END = 0
PCAPNG_OPTION_IF_TSRESOL = 9
PCAPNG_OPTION_IF_TSOFFSET = 14
PCAPNG_OPTION_ISB_IFDROP = 5
GZIP_MAGIC = b"\x1f\x8b"

# No link layer carries a frame this large; a record claiming more is corrupt.
MAX_RECORD_BYTES = 1 << 20
MAX_BLOCK_BYTES = MAX_RECORD_BYTES + 4096
_CHUNK_BYTES = 4 << 20


class CaptureError(Exception):
    """A capture file cannot be read (further); `offset` is where in the file it broke."""

    def __init__(self, source: str, message: str, offset: int | None = None) -> None:
        self.source = source
        self.offset = offset
        self.message = message
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{source}: {message}{where}")


class _Chunks:
    """A window over a byte stream, refilled in large reads; `base` is the file offset of buf[0].

    Read failures (I/O errors, damaged gzip data) become `CaptureError` here, so
    the record loops need no handler of their own.
    """

    __slots__ = ("base", "buf", "eof", "name", "owned", "stream")

    def __init__(self, name: str, stream: BinaryIO, initial: bytes, owned: bool) -> None:
        self.name = name
        self.stream = stream
        self.owned = owned
        self.buf = initial
        self.base = 0
        self.eof = False

    def fill(self, position: int, needed: int) -> int:
        """Ensure `needed` bytes from `position`; returns the new position of that byte."""
        buf = self.buf
        if position:
            buf = buf[position:]
            self.base += position
            position = 0
        while len(buf) < needed and not self.eof:
            more = self.read(max(_CHUNK_BYTES, needed - len(buf)))
            if not more:
                self.eof = True
            buf += more
        self.buf = buf
        return 0

    def read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except EOFError:
            raise CaptureError(self.name, "compressed data ends early") from None
        except (OSError, zlib.error) as error:  # OSError includes gzip's BadGzipFile
            raise CaptureError(self.name, f"read failed: {error}") from None

    def close(self) -> None:
        if self.owned:
            self.stream.close()


class CaptureFile:
    """One capture source. Iterate it for frames; counters are filled as it is read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.format = ""
        self.frames = 0
        self.linktypes: set[int] = set()
        # Drops the capturing host reported (pcapng interface statistics), by interface.
        self.interface_drops: dict[int, int] = {}

    def __iter__(self) -> Iterator[Frame]:
        """The frame reader for this file's format. Opening and format errors raise here."""
        try:
            stream: BinaryIO = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115
        except OSError as error:
            raise CaptureError(self.name, error.strerror or str(error)) from None
        chunks = _Chunks(self.name, stream, b"", owned=stream is not sys.stdin.buffer)
        try:
            head = chunks.read(4)
            if head[:2] == GZIP_MAGIC:
                chunks.stream = gzip.GzipFile(fileobj=_Prepend(head, stream))  # type: ignore[assignment,call-overload]
                head = chunks.read(4)
                self.format = "gzip+"
            if len(head) < 4:
                raise CaptureError(self.name, f"not a capture file: only {len(head)} bytes", 0)
            chunks.buf = head
            magic_le = int.from_bytes(head, "little")
            if magic_le == PCAPNG_SECTION_HEADER:
                self.format += "pcapng"
                return self._read_pcapng(chunks)
            for endian in "<>":
                magic = struct.unpack(endian + "I", head)[0]
                if magic in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS):
                    self.format += "pcap"
                    return self._read_pcap(chunks, endian, magic == PCAP_MAGIC_NANOSECONDS)
            raise CaptureError(self.name, f"not a pcap or pcapng file (magic 0x{magic_le:08x})", 0)
        except BaseException:
            chunks.close()
            raise

    def _truncated(self, chunks: _Chunks, position: int, what: str) -> CaptureError:
        return CaptureError(
            self.name,
            f"{what} cut short after {self.frames} frames (file truncated)",
            chunks.base + position,
        )

    def _read_pcap(self, chunks: _Chunks, endian: str, nanoseconds: bool) -> Iterator[Frame]:
        position = chunks.fill(0, 24)
        if len(chunks.buf) < 24:
            raise self._truncated(chunks, 0, "pcap file header")
        network = struct.unpack_from(endian + "I", chunks.buf, 20)[0]
        linktype = network & 0xFFFF  # upper bits may carry the FCS length
        self.linktypes.add(linktype)
        scale = 1e-9 if nanoseconds else 1e-6
        record = struct.Struct(endian + "IIII")
        unpack = record.unpack_from
        position = 24
        buf = chunks.buf
        frames = 0
        try:
            while True:
                if len(buf) - position < 16:
                    position = chunks.fill(position, 16)
                    buf = chunks.buf
                    if len(buf) < 16:
                        if buf:
                            raise self._truncated(chunks, position, "record header")
                        return
                seconds, fraction, captured, _original = unpack(buf, position)
                if captured > MAX_RECORD_BYTES:
                    raise CaptureError(
                        self.name,
                        f"corrupt record {frames + 1}: claims {captured} bytes",
                        chunks.base + position,
                    )
                end = position + 16 + captured
                if end > len(buf):
                    position = chunks.fill(position, 16 + captured)
                    buf = chunks.buf
                    end = 16 + captured
                    if end > len(buf):
                        raise self._truncated(chunks, position, f"record {frames + 1}")
                frames += 1
                yield seconds + fraction * scale, linktype, buf[position + 16 : end]
                position = end
        finally:
            self.frames += frames
            chunks.close()

    def _read_pcapng(self, chunks: _Chunks) -> Iterator[Frame]:
        try:
            yield from self._pcapng_blocks(chunks)
        finally:
            chunks.close()

    def _pcapng_blocks(self, chunks: _Chunks) -> Iterator[Frame]:
        endian = "<"
        # Per interface of the current section: (linktype, seconds per tick, offset seconds, snaplen).
        interfaces: list[tuple[int, float, int, int]] = []
        position = 0
        while True:
            position = chunks.fill(position, 12)
            buf = chunks.buf
            if len(buf) - position < 12:
                if len(buf) > position:
                    raise self._truncated(chunks, position, "block header")
                return
            block_type = struct.unpack_from(endian + "I", buf, position)[0]
            if block_type == PCAPNG_SECTION_HEADER:
                byte_order = struct.unpack_from("<I", buf, position + 8)[0]
                if byte_order == PCAPNG_BYTE_ORDER_MAGIC:
                    endian = "<"
                elif byte_order == int.from_bytes(PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "little"), "big"):
                    endian = ">"
                else:
                    raise CaptureError(self.name, "pcapng section has a bad byte-order magic", chunks.base + position)
                interfaces = []
            block_length = struct.unpack_from(endian + "I", buf, position + 4)[0]
            if (
                block_length < PCAPNG_MIN_BLOCK_LENGTH.get(block_type, 12)
                or block_length % 4
                or block_length > MAX_BLOCK_BYTES
            ):
                raise CaptureError(
                    self.name,
                    f"corrupt pcapng block (type 0x{block_type:08x}): length {block_length}",
                    chunks.base + position,
                )
            if len(buf) - position < block_length:
                position = chunks.fill(position, block_length)
                buf = chunks.buf
                if len(buf) < block_length:
                    raise self._truncated(chunks, position, "pcapng block")
            trailer = struct.unpack_from(endian + "I", buf, position + block_length - 4)[0]
            if trailer != block_length:
                raise CaptureError(
                    self.name,
                    f"corrupt pcapng block: lengths {block_length} and {trailer} differ",
                    chunks.base + position,
                )
            block = buf[position : position + block_length]
            position += block_length
            if block_type in (PCAPNG_ENHANCED_PACKET, PCAPNG_PACKET_OBSOLETE):
                if block_type == PCAPNG_ENHANCED_PACKET:
                    interface, high, low, captured = struct.unpack_from(endian + "IIII", block, 8)
                else:
                    interface, _drops, high, low, captured = struct.unpack_from(endian + "HHIII", block, 8)
                if interface >= len(interfaces):
                    raise CaptureError(
                        self.name, f"packet for undefined interface {interface}", chunks.base + position - block_length
                    )
                if 28 + captured > block_length - 4:
                    raise CaptureError(
                        self.name, "corrupt pcapng packet: data past its block", chunks.base + position - block_length
                    )
                linktype, tick, offset_seconds, _ = interfaces[interface]
                self.frames += 1
                yield ((high << 32) | low) * tick + offset_seconds, linktype, block[28 : 28 + captured]
            elif block_type == PCAPNG_SIMPLE_PACKET:
                if not interfaces:
                    raise CaptureError(self.name, "simple packet before any interface", chunks.base + position)
                linktype, _tick, _offset, snaplen = interfaces[0]
                original = struct.unpack_from(endian + "I", block, 8)[0]
                captured = min(original, block_length - 16, snaplen or original)
                self.frames += 1
                yield 0.0, linktype, block[12 : 12 + captured]
            elif block_type == PCAPNG_INTERFACE_DESCRIPTION:
                interfaces.append(self._interface(block, endian))
            elif block_type == PCAPNG_INTERFACE_STATISTICS:
                self._statistics(block, endian)

    def _options(self, block: bytes, start: int, endian: str) -> Iterator[tuple[int, bytes]]:
        position = start
        end = len(block) - 4
        while position + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", block, position)
            if code == PCAPNG_OPTION_END:
                return
            value = block[position + 4 : position + 4 + length]
            yield code, value
            position += 4 + ((length + 3) & ~3)

    def _interface(self, block: bytes, endian: str) -> tuple[int, float, int, int]:
        linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", block, 8)
        tick = 1e-6
        offset_seconds = 0
        for code, value in self._options(block, 16, endian):
            if code == PCAPNG_OPTION_IF_TSRESOL and value:
                resolution = value[0]
                exponent = resolution & 0x7F
                tick = 2.0**-exponent if resolution & 0x80 else 10.0**-exponent
            elif code == PCAPNG_OPTION_IF_TSOFFSET and len(value) == 8:
                offset_seconds = struct.unpack(endian + "q", value)[0]
        self.linktypes.add(linktype)
        return linktype, tick, offset_seconds, snaplen

    def _statistics(self, block: bytes, endian: str) -> None:
        interface = struct.unpack_from(endian + "I", block, 8)[0]
        for code, value in self._options(block, 20, endian):
            if code == PCAPNG_OPTION_ISB_IFDROP and len(value) == 8:
                self.interface_drops[interface] = struct.unpack(endian + "Q", value)[0]


class _Prepend:
    """A read-only stream that first returns bytes already read from `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size < 0:
                return head + self._stream.read()
            if size <= len(head):
                self._head = head[size:]
                return head[:size]
            return head + self._stream.read(size - len(head))
        return self._stream.read(size)
