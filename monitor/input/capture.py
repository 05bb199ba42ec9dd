"""The only code that reads capture files (and, later, live interfaces).

`CaptureFile` yields raw frames ``(timestamp, linktype, bytes)`` from classic
pcap (either byte order, micro- or nanosecond stamps), pcapng (any number of
sections and interfaces, each with its own link type and time resolution) and
gzip-compressed copies of either, from a path or ``-`` for standard input.

Records are read with `struct` over large buffered chunks: measured faster
than scapy's readers and than per-packet file reads, and it needs no libpcap.
gzip is decompressed incrementally (zlib, member after member), so a cut or
corrupt .pcap.gz gives every frame decompressed before the damage. Damage (a
file that is no capture, a cut or corrupt record, broken gzip data) raises
`CaptureError` naming the file and the byte offset (for gzip: in the
compressed file and in the decompressed capture); frames before it have
already been yielded, so nothing read so far is lost. Pipes are read as data
arrives, and a `ReadInterrupt` (set by a signal handler) stops reading between
reads, never losing what a read returned.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import select
import socket
import stat
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from monitor.input.pcap_records import PcapRecords

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
    """A capture file cannot be read (further).

    `offset` is where in the file as stored it broke (for a gzip file: in the compressed bytes), when
    known; `stream_offset` is where in the decompressed capture stream of a gzip file it broke.
    """

    def __init__(self, source: str, message: str, offset: int | None = None, stream_offset: int | None = None) -> None:
        self.source = source
        self.offset = offset
        self.stream_offset = stream_offset
        self.message = message
        if stream_offset is None:
            where = f" at byte {offset}" if offset is not None else ""
        elif offset is None:
            where = f" at byte {stream_offset} of the decompressed capture"
        else:
            where = f" at compressed byte {offset}, byte {stream_offset} of the decompressed capture"
        super().__init__(f"{source}: {message}{where}")


class ReadInterrupted(Exception):
    """Reading stopped because a `ReadInterrupt` was requested (by a signal handler, say)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"reading interrupted by signal {signum}")


class ReadInterrupt:
    """A request to stop reading capture files, safe to make from a signal handler (it only stores a number).

    Readers look at it before every read of the underlying file, and every `READ_POLL_SECONDS` while a
    read of a pipe waits for data, and raise `ReadInterrupted` there: never between a read and the parsing
    of what it returned, so every byte read before the request reaches the record parser.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise ReadInterrupted(self.signum)


# How long a read of a pipe waits before it looks at its ReadInterrupt again.
READ_POLL_SECONDS = 0.2
# A pipe holds 64 KiB (1 MiB at most): os.read allocates what it is asked for, so ask no more.
_PIPE_READ_BYTES = 1 << 20


class _RawSource:
    """The bytes of a file, a pipe or standard input; read failures become `CaptureError`.

    A regular file is read in full-sized pieces. A pipe (or socket, or terminal) is read through its file
    descriptor: each read returns what has arrived (so frames reach the pipeline as they come, and a
    reader that is stopped loses nothing it already took from the pipe), waiting in select() so that a
    `ReadInterrupt` is noticed while no data comes.
    """

    __slots__ = ("fd", "interrupt", "name", "offset", "owned", "stream")

    def __init__(self, name: str, stream: BinaryIO, owned: bool, interrupt: ReadInterrupt | None) -> None:
        self.name = name
        self.stream = stream
        self.owned = owned
        self.interrupt = interrupt
        self.offset = 0  # bytes read so far
        self.fd: int | None = None
        try:
            fd = stream.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.fd = fd
        except (OSError, ValueError):  # no descriptor (an in-memory stream): read it as a file
            pass

    def read(self, size: int) -> bytes:
        interrupt = self.interrupt
        try:
            if interrupt is not None:
                interrupt.check()
            fd = self.fd
            if fd is None:
                data = self.stream.read(size)
            else:
                if interrupt is not None:
                    while not select.select([fd], [], [], READ_POLL_SECONDS)[0]:
                        interrupt.check()
                data = os.read(fd, min(size, _PIPE_READ_BYTES))
        except OSError as error:
            raise CaptureError(self.name, f"read failed: {error.strerror or error}", self.offset) from None
        self.offset += len(data)
        return data

    def close(self) -> None:
        if self.owned:
            self.stream.close()


# Compressed bytes handed to the decompressor per call: on damage, the call is replayed byte by byte from
# a copy of the decompressor taken before it, to find the damaged byte and keep every byte before it.
_GZIP_INPUT_BYTES = 64 << 10


class _GzipStream:
    """The decompressed bytes of a gzip file, decompressed incrementally.

    Concatenated members read as one stream (as gzip(1) reads them); zero bytes after the last member
    (tape or block padding) are ignored. On damage (the compressed data ends early, a corrupt deflate
    stream, a bad CRC, other bytes after a member) every byte decompressed before it is returned first;
    the next read raises `CaptureError` naming both offsets (compressed file, decompressed stream) and
    the frames read (`frames_read()`, asked when it is raised).
    """

    __slots__ = (
        "_decompressor",
        "_failure",
        "_frames_read",
        "_input",
        "_input_offset",
        "_padding",
        "_raw_eof",
        "name",
        "produced",
        "raw",
    )

    def __init__(self, name: str, raw: _RawSource, head: bytes, frames_read: Callable[[], int]) -> None:
        self.name = name
        self.raw = raw
        self._frames_read = frames_read
        self._input = head  # compressed bytes read but not yet given to the decompressor
        self._input_offset = 0  # file offset of self._input[0]
        self._raw_eof = False
        self._decompressor = zlib.decompressobj(31)
        self._failure: tuple[str, int] | None = None  # (what broke, compressed offset)
        self._padding = False  # past the last member, in zero bytes
        self.produced = 0  # decompressed bytes returned

    def read(self, size: int) -> bytes:
        """Up to `size` decompressed bytes; b"" only at the (undamaged) end."""
        while True:
            if self._failure is not None:
                what, offset = self._failure
                raise CaptureError(self.name, f"{what} after {self._frames_read()} frames", offset, self.produced)
            if not self._input and not self._raw_eof:
                self._input = self.raw.read(_CHUNK_BYTES)
                self._raw_eof = not self._input
            if not self._input:  # the end of the file
                if not self._padding and not self._decompressor.eof:
                    self._failure = ("gzip data ends early (file truncated)", self._input_offset)
                    continue
                return b""
            if self._padding or self._decompressor.eof:
                self._next_member()
                continue
            out = self._decompress(size)
            if out:
                self.produced += len(out)
                return out

    def _decompress(self, size: int) -> bytes:
        """Feeds up to _GZIP_INPUT_BYTES of input; on damage, returns what came before it and records the failure."""
        piece = self._input[:_GZIP_INPUT_BYTES]
        decompressor = self._decompressor
        before = decompressor.copy()
        try:
            out = decompressor.decompress(piece, size)
        except zlib.error:
            return self._salvage(before, piece)
        # At the end of a member the rest is in unused_data (and unconsumed_tail keeps a stale copy of it).
        consumed = len(piece) - len(decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail)
        self._consume(consumed)
        return out

    def _salvage(self, decompressor: Any, piece: bytes) -> bytes:
        """Replays `piece` one byte at a time to find the damaged byte; keeps the output before it."""
        out = []
        for index in range(len(piece)):
            try:
                out.append(decompressor.decompress(piece[index : index + 1]))
            except zlib.error as error:
                self._failure = (f"corrupt gzip data ({error.args[0].split(': ', 1)[-1]})", self._input_offset + index)
                break
            if decompressor.eof:
                # The replay consumed the byte that completed the member: continue after it.
                self._decompressor = decompressor
                self._consume(index + 1)
                break
        else:  # (the damage showed only with a larger input: should not happen) stop at the piece's end
            self._failure = ("corrupt gzip data", self._input_offset + len(piece))
        return b"".join(out)

    def _consume(self, count: int) -> None:
        self._input = self._input[count:]
        self._input_offset += count

    def _next_member(self) -> None:
        """After a member (or in the padding after the last one): a new member, padding, or garbage."""
        data = self._input
        if not self._padding and data[:1] == b"\x1f":
            if len(data) < 2 and not self._raw_eof:
                more = self.raw.read(_CHUNK_BYTES)
                self._raw_eof = not more
                self._input = data + more
                return
            if data[:2] == GZIP_MAGIC:
                self._decompressor = zlib.decompressobj(31)
                return
        zeros = len(data) - len(data.lstrip(b"\0"))
        if zeros:
            self._padding = True
            self._consume(zeros)
            return
        self._failure = ("not gzip data after the last gzip member", self._input_offset)


class _Chunks:
    """A window over a byte stream, refilled in large reads; `base` is the stream offset of buf[0].

    Read failures (I/O errors, damaged gzip data) arrive as `CaptureError` from the stream, so the
    record loops need no handler of their own; `error()` makes theirs, with the right offsets.
    """

    __slots__ = ("base", "buf", "compressed", "eof", "name", "raw", "stream")

    def __init__(self, name: str, raw: _RawSource) -> None:
        self.name = name
        self.raw = raw
        self.stream: _RawSource | _GzipStream = raw
        self.compressed = False
        self.buf = b""
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
        return self.stream.read(size)

    def read_head(self, size: int) -> bytes:
        """`size` bytes (fewer only at the end), however the stream splits them."""
        head = b""
        while len(head) < size:
            more = self.read(size - len(head))
            if not more:
                break
            head += more
        return head

    def error(self, message: str, position: int) -> CaptureError:
        """An error about the record at `position` of the window."""
        if self.compressed:
            return CaptureError(self.name, message, None, self.base + position)
        return CaptureError(self.name, message, self.base + position)

    def close(self) -> None:
        self.raw.close()


class CaptureFile:
    """One capture source. Iterate it for frames; counters are filled as it is read.

    With an `interrupt`, a request on it (from a signal handler) ends the reading with
    `ReadInterrupted` at the next read of the file, also while a pipe waits for data.
    """

    def __init__(self, path: str, interrupt: ReadInterrupt | None = None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.interrupt = interrupt
        self.format = ""
        self._frames = 0  # pcapng frames; a classic pcap's are counted by its compiled reader
        self._pcap: PcapRecords | None = None
        self.linktypes: set[int] = set()
        # Drops the capturing host reported (pcapng interface statistics), by interface.
        self.interface_drops: dict[int, int] = {}

    @property
    def frames(self) -> int:
        """Frames read so far (counted as they are read, so an error or interruption reports them)."""
        return self._frames + (self._pcap.frames if self._pcap is not None else 0)

    def __iter__(self) -> Iterator[Frame]:
        """The frame reader for this file's format. Opening and format errors raise here."""
        try:
            stream: BinaryIO = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115
        except OSError as error:
            raise CaptureError(self.name, error.strerror or str(error)) from None
        raw = _RawSource(self.name, stream, stream is not sys.stdin.buffer, self.interrupt)
        chunks = _Chunks(self.name, raw)
        try:
            head = chunks.read_head(4)
            if head[:2] == GZIP_MAGIC:
                chunks.stream = _GzipStream(self.name, raw, head, lambda: self.frames)
                chunks.compressed = True
                head = chunks.read_head(4)
                self.format = "gzip+"
            if len(head) < 4:
                raise chunks.error(f"not a capture file: only {len(head)} bytes", 0)
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
            raise chunks.error(f"not a pcap or pcapng file (magic 0x{magic_le:08x})", 0)
        except BaseException:
            chunks.close()
            raise

    def _truncated(self, chunks: _Chunks, position: int, what: str) -> CaptureError:
        return chunks.error(f"{what} cut short after {self.frames} frames (file truncated)", position)

    def _read_pcap(self, chunks: _Chunks, endian: str, nanoseconds: bool) -> Iterator[Frame]:
        """The records of a classic pcap stream: a compiled loop (monitor/input/pcap_records.py)."""
        self._pcap = PcapRecords(chunks, endian == "<", nanoseconds, MAX_RECORD_BYTES, self.linktypes)
        return self._pcap.read()

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
            buf = chunks.buf
            if len(buf) - position < 12:
                # Refill only near the window's end: a refill copies what is left of the window.
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
                    raise chunks.error("pcapng section has a bad byte-order magic", position)
                interfaces = []
            block_length = struct.unpack_from(endian + "I", buf, position + 4)[0]
            if (
                block_length < PCAPNG_MIN_BLOCK_LENGTH.get(block_type, 12)
                or block_length % 4
                or block_length > MAX_BLOCK_BYTES
            ):
                raise chunks.error(f"corrupt pcapng block (type 0x{block_type:08x}): length {block_length}", position)
            if len(buf) - position < block_length:
                position = chunks.fill(position, block_length)
                buf = chunks.buf
                if len(buf) < block_length:
                    raise self._truncated(chunks, position, "pcapng block")
            trailer = struct.unpack_from(endian + "I", buf, position + block_length - 4)[0]
            if trailer != block_length:
                raise chunks.error(f"corrupt pcapng block: lengths {block_length} and {trailer} differ", position)
            block = buf[position : position + block_length]
            position += block_length
            if block_type in (PCAPNG_ENHANCED_PACKET, PCAPNG_PACKET_OBSOLETE):
                if block_type == PCAPNG_ENHANCED_PACKET:
                    interface, high, low, captured = struct.unpack_from(endian + "IIII", block, 8)
                else:
                    interface, _drops, high, low, captured = struct.unpack_from(endian + "HHIII", block, 8)
                if interface >= len(interfaces):
                    raise chunks.error(f"packet for undefined interface {interface}", position - block_length)
                if 28 + captured > block_length - 4:
                    raise chunks.error("corrupt pcapng packet: data past its block", position - block_length)
                linktype, tick, offset_seconds, _ = interfaces[interface]
                self._frames += 1
                yield ((high << 32) | low) * tick + offset_seconds, linktype, block[28 : 28 + captured]
            elif block_type == PCAPNG_SIMPLE_PACKET:
                if not interfaces:
                    raise chunks.error("simple packet before any interface", position)
                linktype, _tick, _offset, snaplen = interfaces[0]
                original = struct.unpack_from(endian + "I", block, 8)[0]
                captured = min(original, block_length - 16, snaplen or original)
                self._frames += 1
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


# ---------------------------------------------------------------------------------------------
# Live capture: AF_PACKET sockets with a TPACKET_V3 mmap ring and a kernel BPF filter.
#
# Chosen by measurement (bench/live_rate.py, bench/README.md): scapy's sniff() lost most of a
# burst without reporting it; a TPACKET_V3 ring read in Python keeps up with more and reports
# exact kernel drops. Constants and layouts are from <linux/if_packet.h> and <linux/filter.h>.
# ---------------------------------------------------------------------------------------------

DEFAULT_FILTER = "tcp port 445 or tcp port 139"
DEFAULT_BUFFER_BYTES = 64 << 20
LINKTYPE_ETHERNET = 1

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_RX_RING = 5
_PACKET_STATISTICS = 6
_PACKET_VERSION = 10
_TPACKET_V3 = 2
_PACKET_MR_PROMISC = 1
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_TP_STATUS_KERNEL = 0
_TP_STATUS_USER = 1
_TP_STATUS_VLAN_VALID = 0x10
_TP_STATUS_VLAN_TPID_VALID = 0x40
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772
# A 1 MiB block holds a GRO/TSO super-frame of up to 64 KiB many times over; blocks are the
# unit the kernel hands over, so the ring is a whole number of them.
_BLOCK_BYTES = 1 << 20
_MIN_BLOCKS = 2
# A block that is not full is handed over after this long, so a quiet link still delivers promptly.
_BLOCK_TIMEOUT_MS = 50
# poll() timeout: stop() wakes the loop at once through a pipe; this only bounds a missed wake-up.
_POLL_MS = 200
# The filter's accept length: libpcap compiles `ret #snaplen`; anything up to a GRO frame is kept whole.
_SNAPLEN = 262144

# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 (block_status, num_pkts,
# offset_to_first_pkt, ...) - the three fields read here start at byte 8.
_BLOCK_HEADER = struct.Struct("=III")
_BLOCK_STATUS_OFFSET = 8
# struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac, tp_net,
# hv1.tp_rxhash, hv1.tp_vlan_tci, hv1.tp_vlan_tpid.
_PACKET_HEADER = struct.Struct("=IIIIIIHHIIH")
# The struct sockaddr_ll that follows the header at TPACKET_ALIGN(sizeof(tpacket3_hdr)); sll_pkttype is byte 10.
_SOCKADDR_LL_OFFSET = 48
_PKTTYPE_OFFSET = _SOCKADDR_LL_OFFSET + 10
_TPACKET_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt


class LiveCaptureError(CaptureError):
    """A live interface cannot be opened or read; the message names the interface and, for
    missing privileges, the capability needed."""

    def __init__(self, interface: str, message: str) -> None:
        super().__init__(interface, message)


@dataclass(slots=True)
class InterfaceStatistics:
    """Counters of one captured interface.

    `packets`/`bytes` are what smbwatch received (frames yielded, captured bytes); `kernel_packets`
    is what passed the kernel filter (including the dropped ones) and `kernel_drops` what the ring
    had no room for, both accumulated here because PACKET_STATISTICS resets on every read.
    `buffer_bytes` is the ring actually allocated (smaller than asked if the kernel refused).
    """

    interface: str
    packets: int = 0
    bytes: int = 0
    kernel_packets: int = 0
    kernel_drops: int = 0
    buffer_bytes: int = 0
    link_down: int = 0


def compile_filter(expression: str) -> list[tuple[int, int, int, int]]:
    """Compile a tcpdump filter expression for Ethernet into classic BPF `(code, jt, jf, k)` rows.

    libpcap's own compiler through ctypes on a "dead" handle: no interface, no privilege and no
    subprocess needed (the same route as scapy's compile_filter, without importing scapy).
    """
    import ctypes
    import ctypes.util

    class BpfInsn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class BpfProgram(ctypes.Structure):
        _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(BpfInsn))]

    name = ctypes.util.find_library("pcap")
    try:
        libpcap = ctypes.CDLL(name or "libpcap.so.0.8")
    except OSError:
        raise LiveCaptureError(
            "filter", f"cannot compile filter {expression!r}: libpcap not found (install libpcap0.8)"
        ) from None
    libpcap.pcap_open_dead.restype = ctypes.c_void_p
    libpcap.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    libpcap.pcap_compile.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint,
    ]
    libpcap.pcap_geterr.restype = ctypes.c_char_p
    libpcap.pcap_geterr.argtypes = [ctypes.c_void_p]
    libpcap.pcap_freecode.argtypes = [ctypes.POINTER(BpfProgram)]
    libpcap.pcap_close.argtypes = [ctypes.c_void_p]
    handle = libpcap.pcap_open_dead(LINKTYPE_ETHERNET, _SNAPLEN)
    if not handle:
        raise LiveCaptureError("filter", f"cannot compile filter {expression!r}: pcap_open_dead failed")
    program = BpfProgram()
    try:
        if libpcap.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, 0xFFFFFFFF) != 0:
            reason = (libpcap.pcap_geterr(handle) or b"unknown error").decode(errors="replace")
            raise LiveCaptureError("filter", f"invalid filter expression {expression!r}: {reason}")
        try:
            rows = [(i.code, i.jt, i.jf, i.k) for i in program.bf_insns[: program.bf_len]]
        finally:
            libpcap.pcap_freecode(ctypes.byref(program))
    finally:
        libpcap.pcap_close(handle)
    return rows


def _attach_filter(sock: socket.socket, rows: list[tuple[int, int, int, int]]) -> None:
    import ctypes

    code = b"".join(struct.pack("=HBBI", *row) for row in rows)
    buffer = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the kernel copies the
    # program during setsockopt, so the buffer only has to outlive this call.
    fprog = struct.pack("HL", len(rows), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


class _Ring:
    """One interface: its packet socket, its mapped TPACKET_V3 ring and its counters."""

    def __init__(self, interface: str, rows: list[tuple[int, int, int, int]], buffer_bytes: int, promiscuous: bool):
        self.interface = interface
        self.stats = InterfaceStatistics(interface)
        self.block = 0
        self.map: mmap.mmap | None = None
        try:
            index = socket.if_nametoindex(interface)
        except OSError:
            raise LiveCaptureError(interface, "no such network interface") from None
        try:
            # Protocol 0: the socket receives nothing until bind() names ETH_P_ALL below, so no
            # unfiltered packet can slip in before the filter is attached (the AF_PACKET race
            # libpcap works around by draining).
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise LiveCaptureError(
                interface, "permission denied opening a packet socket: live capture needs CAP_NET_RAW (or root)"
            ) from None
        try:
            self._open(index, rows, buffer_bytes, promiscuous)
        except BaseException:
            self.close()
            raise

    def _open(self, index: int, rows: list[tuple[int, int, int, int]], buffer_bytes: int, promiscuous: bool) -> None:
        sock = self.sock
        interface = self.interface
        _attach_filter(sock, rows)
        sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
        blocks = max(_MIN_BLOCKS, buffer_bytes // _BLOCK_BYTES)
        while True:
            # struct tpacket_req3: block size, block count, frame size, frame count, retire timeout,
            # private area size, feature word. Frames only size the ring in V3: one "frame" per block.
            request = struct.pack("=7I", _BLOCK_BYTES, blocks, _BLOCK_BYTES, blocks, _BLOCK_TIMEOUT_MS, 0, 0)
            try:
                sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, request)
                break
            except OSError as error:
                # Memory refused: settle for a smaller ring rather than not capturing at all.
                if error.errno != errno.ENOMEM or blocks <= _MIN_BLOCKS:
                    raise LiveCaptureError(interface, f"cannot set up the capture ring: {error.strerror}") from None
                blocks = max(_MIN_BLOCKS, blocks // 2)
        self.blocks = blocks
        self.stats.buffer_bytes = blocks * _BLOCK_BYTES
        self.map = mmap.mmap(sock.fileno(), blocks * _BLOCK_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            sock.bind((interface, _ETH_P_ALL))
        except OSError as error:
            raise LiveCaptureError(interface, f"cannot bind to the interface: {error.strerror}") from None
        hatype = sock.getsockname()[3]
        if hatype not in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK):
            raise LiveCaptureError(interface, f"link type ARPHRD {hatype} is not supported (Ethernet only)")
        # On loopback every packet passes twice (out, then in); keep the incoming copy, as libpcap does.
        self.skip_outgoing = hatype == _ARPHRD_LOOPBACK
        if promiscuous:
            membership = struct.pack("=iHH8s", index, _PACKET_MR_PROMISC, 0, b"")
            try:
                sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, membership)
            except OSError as error:
                raise LiveCaptureError(interface, f"cannot enable promiscuous mode: {error.strerror}") from None

    def fileno(self) -> int:
        return self.sock.fileno()

    def take_block(self) -> list[Frame] | None:
        """Copies out the frames of the next block if the kernel has handed it over, and hands the
        block straight back: the ring refills while the caller processes the copies."""
        ring = self.map
        if ring is None:
            return None
        start = self.block * _BLOCK_BYTES
        status, count, first = _BLOCK_HEADER.unpack_from(ring, start + _BLOCK_STATUS_OFFSET)
        if not status & _TP_STATUS_USER:
            return None
        unpack = _PACKET_HEADER.unpack_from
        skip_outgoing = self.skip_outgoing
        frames: list[Frame] = []
        size = 0
        position = start + first
        for _ in range(count):
            next_offset, seconds, nanoseconds, captured, _length, packet_status, mac, _net, _hash, tci, tpid = unpack(
                ring, position
            )
            if not (skip_outgoing and ring[position + _PKTTYPE_OFFSET] == _PACKET_OUTGOING):
                data = ring[position + mac : position + mac + captured]
                if packet_status & _TP_STATUS_VLAN_VALID:
                    # The NIC or driver stripped the 802.1Q tag into metadata; put it back so the
                    # frame reads as it was on the wire (the decoder handles VLAN tags).
                    if not packet_status & _TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
                frames.append((seconds + nanoseconds * 1e-9, LINKTYPE_ETHERNET, data))
                size += len(data)
            position += next_offset
        struct.pack_into("=I", ring, start + _BLOCK_STATUS_OFFSET, _TP_STATUS_KERNEL)
        self.block = (self.block + 1) % self.blocks
        self.stats.packets += len(frames)
        self.stats.bytes += size
        return frames

    def read_kernel_statistics(self) -> None:
        if self.map is None:
            return
        try:
            raw = self.sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS_V3.size)
        except OSError:
            return
        packets, drops, _freezes = _TPACKET_STATS_V3.unpack(raw)
        # The kernel already adds drops into tp_packets when reporting.
        self.stats.kernel_packets += packets
        self.stats.kernel_drops += drops

    def socket_error(self) -> None:
        """After POLLERR: an interface going down is counted (capture resumes when it comes back up),
        anything else ends the capture."""
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == errno.ENETDOWN:
            self.stats.link_down += 1
        elif code:
            raise LiveCaptureError(self.interface, f"capture failed: {os.strerror(code)}")

    def close(self) -> None:
        self.read_kernel_statistics()
        if self.map is not None:
            self.map.close()
            self.map = None
        self.sock.close()


class LiveCapture:
    """Frames from one or more live interfaces, as `(timestamp, linktype, bytes)` like `CaptureFile`.

    Each interface gets an AF_PACKET socket with the compiled `bpf_filter` attached in the kernel,
    a TPACKET_V3 ring of about `buffer_bytes`, and promiscuous mode. Opening errors raise
    `LiveCaptureError` here, one line naming the interface. Iterate to receive frames, in arrival
    order per interface (interfaces are interleaved block by block); timestamps are the kernel's
    receive stamps. `stop()` may be called from a signal handler or another thread: iteration ends
    within milliseconds, idle link or not. `statistics()` gives per-interface counters at any time.
    Needs CAP_NET_RAW only: the ring is kernel memory that needs no CAP_NET_ADMIN to grow.
    """

    def __init__(
        self,
        interfaces: Sequence[str],
        bpf_filter: str = DEFAULT_FILTER,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        promiscuous: bool = True,
    ) -> None:
        if not interfaces:
            raise ValueError("LiveCapture needs at least one interface")
        if len(set(interfaces)) != len(interfaces):
            raise ValueError(f"interface listed twice: {list(interfaces)}")
        self.bpf_filter = bpf_filter
        rows = compile_filter(bpf_filter)
        self._stopped = False
        self._lock = threading.Lock()
        self._rings: list[_Ring] = []
        # stop() writes a byte here to wake a poll() that would otherwise wait for traffic.
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            for interface in interfaces:
                self._rings.append(_Ring(interface, rows, buffer_bytes, promiscuous))
        except BaseException:
            self.close()
            raise

    @property
    def interfaces(self) -> list[str]:
        return [ring.interface for ring in self._rings]

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames():
            if frame is not None:
                yield frame

    def frames(self, heartbeats: bool = False) -> Iterator[Frame | None]:
        """Frames as they arrive; with `heartbeats`, also `None` after each poll that found nothing
        (every 200 ms on an idle link), so a caller can do periodic work without a thread."""
        rings = self._rings
        poller = select.poll()
        by_fd = {}
        for ring in rings:
            poller.register(ring.fileno(), select.POLLIN | select.POLLERR)
            by_fd[ring.fileno()] = ring
        poller.register(self._wake_read, select.POLLIN)
        while not self._stopped:
            delivered = False
            for ring in rings:
                frames = ring.take_block()
                if frames is not None:
                    delivered = True
                    yield from frames
                    if self._stopped:
                        return
            if delivered:
                continue
            ready = poller.poll(_POLL_MS)
            for fd, events in ready:
                if events & select.POLLERR and fd in by_fd:
                    by_fd[fd].socket_error()
            if heartbeats and not ready:
                yield None

    def stop(self) -> None:
        """Ends iteration promptly; safe from signal handlers and other threads."""
        self._stopped = True
        with contextlib.suppress(OSError):  # pipe full (already woken) or closed
            os.write(self._wake_write, b"x")

    def statistics(self) -> dict[str, InterfaceStatistics]:
        """A snapshot of every interface's counters, kernel counters read now."""
        with self._lock:
            for ring in self._rings:
                ring.read_kernel_statistics()
            return {ring.interface: replace(ring.stats) for ring in self._rings}

    def close(self) -> None:
        """Stops iteration and releases sockets and rings; statistics() still answers afterwards."""
        self.stop()
        with self._lock:
            for ring in self._rings:
                ring.close()
            for fd in (self._wake_read, self._wake_write):
                if fd >= 0:
                    os.close(fd)
            self._wake_read = self._wake_write = -1

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
