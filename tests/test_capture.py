"""Capture reading: every container variant gives the same frames; damage gives CaptureError, never a crash.

The variants are derived from a real recording: its frames are rewritten into
big-endian pcap, nanosecond pcap, multi-section pcapng and gzip here.
"""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from monitor.input import capture as capture_module
from monitor.input.capture import CaptureError, CaptureFile, Frame

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
REAL = PCAPS / "recorded" / "smb3_1_1.pcap"


def real_frames() -> list[Frame]:
    return list(CaptureFile(str(REAL)))


def write_pcap(frames: list[Frame], endian: str = "<", nanoseconds: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = bytearray(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, frames[0][1]))
    for ts, _linktype, data in frames:
        seconds = int(ts)
        fraction = round((ts - seconds) * (1e9 if nanoseconds else 1e6))
        out += struct.pack(endian + "IIII", seconds, fraction, len(data), len(data)) + data
    return bytes(out)


def pcapng_block(endian: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(endian + "II", block_type, length) + body + struct.pack(endian + "I", length)


def pcapng_section(endian: str, interfaces: list[tuple[int, int]], packets: list[tuple[int, Frame]]) -> bytes:
    """`interfaces`: (linktype, tsresol exponent); `packets`: (interface index, frame)."""
    out = pcapng_block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype, exponent in interfaces:
        options = struct.pack(endian + "HH", 9, 1) + bytes([exponent]) + bytes(3) + struct.pack(endian + "HH", 0, 0)
        out += pcapng_block(endian, 1, struct.pack(endian + "HHI", linktype, 0, 0) + options)
    for interface, (ts, _linktype, data) in packets:
        ticks = round(ts * 10 ** interfaces[interface][1])
        header = struct.pack(endian + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
        out += pcapng_block(endian, 6, header + data)
    drops = struct.pack(endian + "HH", 5, 8) + struct.pack(endian + "Q", 7) + struct.pack(endian + "HH", 0, 0)
    out += pcapng_block(endian, 5, struct.pack(endian + "III", 0, 0, 0) + drops)
    return out


def read(tmp_path: Path, name: str, content: bytes) -> tuple[CaptureFile, list[Frame]]:
    path = tmp_path / name
    path.write_bytes(content)
    capture = CaptureFile(str(path))
    return capture, list(capture)


def assert_same_frames(got: list[Frame], expected: list[Frame], tolerance: float = 1e-6) -> None:
    assert [(linktype, data) for _, linktype, data in got] == [(linktype, data) for _, linktype, data in expected]
    assert all(abs(a[0] - b[0]) <= tolerance for a, b in zip(got, expected, strict=True))


def test_real_pcap_reads_every_frame() -> None:
    capture = CaptureFile(str(REAL))
    frames = list(capture)
    assert capture.format == "pcap"
    assert capture.frames == len(frames) > 20
    assert capture.linktypes == {1}
    assert all(frames[i][0] <= frames[i + 1][0] for i in range(len(frames) - 1))


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nanoseconds: bool) -> None:
    expected = real_frames()
    _, frames = read(tmp_path, "x.pcap", write_pcap(expected, endian, nanoseconds))
    assert_same_frames(frames, expected)


def test_recorded_nanosecond_pcap_keeps_nanoseconds() -> None:
    frames = list(CaptureFile(str(PCAPS / "recorded" / "nanosecond.pcap")))
    assert any(round(ts * 1e9) % 1000 for ts, _, _ in frames)  # sub-microsecond digits survive


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_sections_interfaces_and_drop_statistics(tmp_path: Path, endian: str) -> None:
    expected = real_frames()
    half = len(expected) // 2
    first = pcapng_section(endian, [(1, 6), (113, 9)], [(0, frame) for frame in expected[:half]])
    # A second section in the other byte order resets the interface list.
    other = ">" if endian == "<" else "<"
    second = pcapng_section(other, [(1, 9)], [(0, frame) for frame in expected[half:]])
    capture, frames = read(tmp_path, "x.pcapng", first + second)
    assert_same_frames(frames, expected)
    assert capture.format == "pcapng"
    assert capture.linktypes == {1, 113}
    assert capture.interface_drops == {0: 7}


def test_recorded_pcapng_with_two_link_types() -> None:
    capture = CaptureFile(str(PCAPS / "recorded" / "pcapng_two_ifaces.pcapng"))
    frames = list(capture)
    assert capture.linktypes == {1, 276}
    assert {linktype for _, linktype, _ in frames} == {1, 276}


def test_gzip_compressed(tmp_path: Path) -> None:
    expected = real_frames()
    capture, frames = read(tmp_path, "x.pcap.gz", gzip.compress(write_pcap(expected)))
    assert capture.format == "gzip+pcap"
    assert_same_frames(frames, expected)


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = real_frames()
    fake_stdin = io.TextIOWrapper(io.BytesIO(REAL.read_bytes()))
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    capture = CaptureFile("-")
    assert capture.name == "<stdin>"
    assert_same_frames(list(capture), expected)


def test_missing_file() -> None:
    with pytest.raises(CaptureError, match="No such file") as caught:
        list(CaptureFile("/nonexistent/x.pcap"))
    assert "/nonexistent/x.pcap" in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"abc", b"hello world, not a capture", b"\x1f\x8bnot gzip"])
def test_not_a_capture(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as caught:
        list(CaptureFile(str(path)))
    assert str(path) in str(caught.value)


def test_truncated_pcap_yields_the_intact_records_then_fails(tmp_path: Path) -> None:
    expected = real_frames()
    content = write_pcap(expected)
    capture = CaptureFile(str(tmp_path / "cut.pcap"))
    (tmp_path / "cut.pcap").write_bytes(content[:-10])
    frames: list[Frame] = []
    with pytest.raises(CaptureError, match="truncated") as caught:
        frames.extend(capture)
    assert len(frames) == len(expected) - 1
    assert caught.value.offset == len(content) - 16 - len(expected[-1][2])  # where the cut record starts


def test_corrupt_record_length(tmp_path: Path) -> None:
    expected = real_frames()
    content = bytearray(write_pcap(expected))
    third = 24 + sum(16 + len(frame[2]) for frame in expected[:2])
    content[third + 8 : third + 12] = struct.pack("<I", 0x7FFFFFFF)
    capture = CaptureFile(str(tmp_path / "bad.pcap"))
    (tmp_path / "bad.pcap").write_bytes(bytes(content))
    frames: list[Frame] = []
    with pytest.raises(CaptureError, match="corrupt record 3") as caught:
        frames.extend(capture)
    assert len(frames) == 2
    assert caught.value.offset == third


def test_corrupt_pcapng_block(tmp_path: Path) -> None:
    expected = real_frames()
    content = bytearray(pcapng_section("<", [(1, 6)], [(0, frame) for frame in expected]))
    content[-4:] = b"\xf0\x00\x00\x00"  # the statistics block's trailing length no longer matches
    capture = CaptureFile(str(tmp_path / "bad.pcapng"))
    (tmp_path / "bad.pcapng").write_bytes(bytes(content))
    frames: list[Frame] = []
    with pytest.raises(CaptureError, match="lengths"):
        frames.extend(capture)
    assert len(frames) == len(expected)


def test_pcapng_packet_for_undefined_interface(tmp_path: Path) -> None:
    frame = real_frames()[0]
    section = pcapng_block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    header = struct.pack("<IIIII", 3, 0, 0, len(frame[2]), len(frame[2]))
    content = section + pcapng_block("<", 6, header + frame[2])
    with pytest.raises(CaptureError, match="undefined interface 3"):
        read(tmp_path, "x.pcapng", content)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_reading_refills_per_window_not_per_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A refill copies what is left of the 4 MiB window; refilling per record made pcapng reading quadratic
    (a 200,000-packet pcapng took 44 s instead of 4). Count refills instead of timing them."""
    frames = real_frames()[:20] * 1000
    packets = [(0, frame) for frame in frames]
    content = pcapng_section("<", [(1, 6)], packets) if kind == "pcapng" else write_pcap(frames)
    path = tmp_path / f"many.{kind}"
    path.write_bytes(content)
    calls = []
    original = capture_module._Chunks.fill

    def counting_fill(self: object, position: int, needed: int) -> int:
        calls.append(position)
        return original(self, position, needed)  # type: ignore[arg-type]

    monkeypatch.setattr(capture_module._Chunks, "fill", counting_fill)
    assert sum(1 for _ in CaptureFile(str(path))) == len(frames)
    assert len(calls) < 10 + len(content) // (1 << 20)  # a few per MiB, not one per record


# --- gzip: everything decompressed before the damage is read ---------------------------------

BULK = PCAPS / "recorded" / "bulk_3_0_2.pcap"  # 1,102 frames, 1.4 MB: a few hundred kB of deflate data


def decompressed_prefix(compressed: bytes) -> bytes:
    """What zlib can decompress from the first bytes of a gzip member (no error for a cut)."""
    return zlib.decompressobj(31).decompress(compressed)


def complete_records(data: bytes) -> int:
    """Whole records in a little-endian classic pcap prefix."""
    count, position = 0, 24
    while position + 16 <= len(data):
        position += 16 + int.from_bytes(data[position + 8 : position + 12], "little")
        if position > len(data):
            break
        count += 1
    return count


def read_until_error(path: Path) -> tuple[list[Frame], CaptureError | None]:
    frames: list[Frame] = []
    try:
        frames.extend(CaptureFile(str(path)))
    except CaptureError as error:
        return frames, error
    return frames, None


@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 0.77, 0.999])
def test_cut_gzip_yields_every_frame_decompressed_before_the_cut(tmp_path: Path, fraction: float) -> None:
    """gzip.GzipFile raised EOFError for the whole 4 MiB read, so a cut .pcap.gz gave 0 frames."""
    original = BULK.read_bytes()
    expected = list(CaptureFile(str(BULK)))
    packed = gzip.compress(original, mtime=0)
    cut = int(len(packed) * fraction)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(packed[:cut])
    frames, error = read_until_error(path)
    prefix = decompressed_prefix(packed[:cut])
    assert len(frames) == complete_records(prefix) > 0
    assert frames == expected[: len(frames)]
    assert error is not None and "gzip data ends early (file truncated)" in str(error)
    assert f"after {len(frames)} frames" in str(error)
    assert (error.offset, error.stream_offset) == (cut, len(prefix))
    assert f"at compressed byte {cut}, byte {len(prefix)} of the decompressed capture" in str(error)


def test_corrupt_gzip_keeps_the_frames_before_the_damage(tmp_path: Path) -> None:
    original = BULK.read_bytes()
    expected = list(CaptureFile(str(BULK)))
    packed = gzip.compress(original, mtime=0)
    for position in (len(packed) // 5, len(packed) // 2, len(packed) - 20):
        damaged = bytearray(packed)
        damaged[position] ^= 0x55
        path = tmp_path / "bad.pcap.gz"
        path.write_bytes(bytes(damaged))
        frames, error = read_until_error(path)
        # Bytes decompressed from before the damaged one are exact; after it the deflate stream may
        # still decode (into garbage that the record parser or the CRC check then refuses).
        intact = complete_records(decompressed_prefix(packed[:position]))
        assert intact > 0 and frames[:intact] == expected[:intact]
        assert error is not None, position
    # A damaged CRC: every frame was decompressed before the check failed.
    damaged = bytearray(packed)
    damaged[-6] ^= 0x01
    path.write_bytes(bytes(damaged))
    frames, error = read_until_error(path)
    assert frames == expected
    assert error is not None and "corrupt gzip data (incorrect data check)" in str(error)
    assert error.stream_offset == len(original) and error.offset is not None and error.offset < len(packed)


def test_corrupt_deflate_data_names_the_damaged_byte(tmp_path: Path) -> None:
    """A deflate block header with the reserved block type 3 is refused where it is: the output before it
    (a first member) is read, and the offset is the damaged byte's."""
    original = BULK.read_bytes()
    first = gzip.compress(original[:300_000], mtime=0)
    second = bytearray(gzip.compress(original[300_000:], mtime=0))
    second[10] = 0xFF  # BFINAL 1, BTYPE 3: "invalid block type"
    path = tmp_path / "bad.pcap.gz"
    path.write_bytes(first + bytes(second))
    frames, error = read_until_error(path)
    assert len(frames) == complete_records(original[:300_000])
    assert error is not None and "invalid block type" in str(error)
    assert (error.offset, error.stream_offset) == (len(first) + 10, 300_000)


def test_concatenated_gzip_members_and_padding(tmp_path: Path) -> None:
    original = BULK.read_bytes()
    expected = list(CaptureFile(str(BULK)))
    members = b"".join(gzip.compress(original[i : i + 100_001], mtime=0) for i in range(0, len(original), 100_001))
    for tail, error_text in ((b"", None), (bytes(512), None), (b"junk", "not gzip data after the last gzip member")):
        path = tmp_path / "members.pcap.gz"
        path.write_bytes(members + tail)
        frames, error = read_until_error(path)
        assert frames == expected
        assert (error is None) if error_text is None else (error is not None and error_text in str(error))
    cut = len(members) - 5_000  # inside the last member
    path.write_bytes(members[:cut])
    frames, error = read_until_error(path)
    assert error is not None and error.offset == cut
    assert 0 < len(frames) < len(expected) and frames == expected[: len(frames)]


def test_gzip_on_a_pipe_reads_what_arrived(tmp_path: Path) -> None:
    """Standard input that is a pipe is read as data arrives; a cut stream gives what was before the cut."""
    packed = gzip.compress(BULK.read_bytes(), mtime=0)
    cut = len(packed) // 2
    script = (
        "import sys; from monitor.input.capture import CaptureFile, CaptureError\n"
        "c = CaptureFile('-')\n"
        "try:\n    n = sum(1 for _ in c)\nexcept CaptureError as e:\n    print(c.frames, e.offset, e.stream_offset)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=packed[:cut], capture_output=True, check=True, timeout=60
    )
    frames, offset, stream_offset = map(int, result.stdout.split())
    prefix = decompressed_prefix(packed[:cut])
    assert (frames, offset, stream_offset) == (complete_records(prefix), cut, len(prefix))
