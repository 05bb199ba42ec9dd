"""The `smbwatch analyze` command: output contract, exit status and error lines."""

from __future__ import annotations

import array
import fcntl
import gzip
import json
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import zlib
from pathlib import Path

import pytest

from monitor.cli import __version__, main

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
UPGRADED = PCAPS / "recorded" / "smb1_offered_upgraded.pcap"
SMB1 = PCAPS / "recorded" / "smb1_nt1.pcap"
TRUNCATED = PCAPS / "crafted" / "truncated.pcap"
BULK = PCAPS / "recorded" / "bulk_3_0_2.pcap"  # 1,102 frames


def analyze_json(capsys: pytest.CaptureFixture[str], *files: Path | str) -> tuple[int, dict, str]:
    status = main(["analyze", "--format", "json", *map(str, files)])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def test_json_document_contract(capsys: pytest.CaptureFixture[str]) -> None:
    status, document, err = analyze_json(capsys, UPGRADED)
    assert status == 0 and err == ""
    assert document["schema"] == "smbwatch.analysis/1"
    assert set(document) == {"schema", "connections", "hosts", "alerts", "stats"}
    assert document["alerts"] == []
    [connection] = document["connections"]
    for key in ("client", "server", "transport", "dialects_offered", "smb1_offered", "dialect", "signing_required"):
        assert key in connection
    [session] = connection["sessions"]
    assert (session["user"], session["domain"], session["auth"], session["status"]) == (
        "alice",
        "SMBWLAB",
        "ntlmv2",
        "STATUS_SUCCESS",
    )
    assert [tree["path"].rsplit("\\", 1)[-1] for tree in connection["trees"]] == ["IPC$", "data"]
    assert connection["dialects_offered"] == [
        "NT LANMAN 1.0",
        "NT LM 0.12",
        "SMB 2.002",
        "SMB 2.???",
        "2.0.2",
        "2.1",
        "3.0",
        "3.0.2",
        "3.1.1",
    ]
    assert connection["smb1_offered"] and not connection["smb1_used"]
    assert connection["commands"]["smb1"]["NEGOTIATE"] == {"requests": 1, "responses": 0}
    assert connection["commands"]["smb2"]["NEGOTIATE"] == {"requests": 1, "responses": 2}
    assert connection["negotiate"]["server"]["dialect"] == "3.1.1"
    cipher_context = next(c for c in connection["negotiate"]["client"]["contexts"] if c["type"] == "encryption")
    assert "AES_128_GCM" in cipher_context["ciphers"]
    assert isinstance(connection["first_seen"], float)
    stats = document["stats"]
    assert stats["packets"] == stats["smb_packets"] > 0
    assert stats["smb_messages"]["smb1"] == 1
    assert stats["files"] == [
        {
            "name": str(UPGRADED),
            "format": "pcap",
            "frames": stats["packets"],
            "linktypes": [1],
            "error": None,
            "error_offset": None,
            "error_stream_offset": None,
        }
    ]


def test_hosts_summary(capsys: pytest.CaptureFixture[str]) -> None:
    _, document, _ = analyze_json(capsys, SMB1, UPGRADED)
    hosts = {host["ip"]: host for host in document["hosts"]}
    client, server = hosts["192.0.2.10"], hosts["192.0.2.20"]
    assert client["roles"] == ["client"] and server["roles"] == ["server"]
    assert client["smb1"] and server["smb1"]
    assert client["dialects_as_client"] == ["NT LANMAN 1.0", "3.1.1"]
    assert server["highest_dialect"] == "3.1.1"
    assert client["connections_as_client"] == 2
    assert len(document["connections"]) == 2


def test_truncated_capture_reports_what_was_read_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    status, document, err = analyze_json(capsys, TRUNCATED, SMB1)
    assert status == 1
    [line] = err.strip().splitlines()
    assert str(TRUNCATED) in line and "truncated" in line and "at byte" in line
    files = document["stats"]["files"]
    assert files[0]["error"] and files[0]["frames"] > 0 and files[0]["error_offset"] > 0
    assert files[1]["error"] is None
    dialects = [connection["dialect"] for connection in document["connections"]]
    assert "3.1.1" in dialects and "NT LANMAN 1.0" in dialects  # both files' facts are kept


def complete_pcap_records(data: bytes) -> int:
    """How many whole records a classic little-endian pcap prefix holds."""
    count, position = 0, 24
    while position + 16 <= len(data):
        position += 16 + int.from_bytes(data[position + 8 : position + 12], "little")
        if position > len(data):
            break
        count += 1
    return count


def test_truncated_pcap_messages_count_the_frames_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The message said "after 0 frames" for any cut pcap: the count was only updated once reading ended."""
    status, document, err = analyze_json(capsys, TRUNCATED)
    frames = document["stats"]["files"][0]["frames"]
    assert status == 1 and frames == document["stats"]["packets"] == 23
    assert "record 24 cut short after 23 frames (file truncated)" in err
    content = BULK.read_bytes()
    for cut in (24 + 7, len(content) // 3, len(content) // 2 + 5, len(content) - 1):
        path = tmp_path / f"cut{cut}.pcap"
        path.write_bytes(content[:cut])
        status, document, err = analyze_json(capsys, path)
        expected = complete_pcap_records(content[:cut])
        assert status == 1 and document["stats"]["files"][0]["frames"] == document["stats"]["packets"] == expected
        assert f"cut short after {expected} frames (file truncated)" in err


def tshark_frames(path: Path) -> int | None:
    """Wireshark's count of the frames it read (None where tshark is not installed)."""
    if shutil.which("tshark") is None:
        return None
    result = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True, check=False, timeout=120)
    return len(result.stdout.splitlines())


@pytest.mark.parametrize("fraction", [0.03, 0.3, 0.6, 0.9])
def test_cut_pcap_gz_reports_every_frame_before_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fraction: float
) -> None:
    """A cut .pcap.gz reported 0 packets (tshark read about 500 frames of the same file)."""
    packed = gzip.compress(BULK.read_bytes(), mtime=0)
    cut = int(len(packed) * fraction)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(packed[:cut])
    prefix = zlib.decompressobj(31).decompress(packed[:cut])
    expected = complete_pcap_records(prefix)
    status, document, err = analyze_json(capsys, path)
    assert status == 1 and expected > 0
    assert document["stats"]["packets"] == document["stats"]["files"][0]["frames"] == expected
    [line] = err.splitlines()
    assert f"gzip data ends early (file truncated) after {expected} frames" in line
    assert f"at compressed byte {cut}, byte {len(prefix)} of the decompressed capture" in line
    assert document["stats"]["files"][0]["error_offset"] == cut
    assert document["stats"]["files"][0]["error_stream_offset"] == len(prefix)
    assert tshark_frames(path) in (None, expected)


def test_corrupt_pcap_gz_reports_the_frames_before_the_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = gzip.compress(BULK.read_bytes(), mtime=0)
    position = len(packed) // 3
    damaged = bytearray(packed)
    damaged[position] ^= 0xFF
    path = tmp_path / "bad.pcap.gz"
    path.write_bytes(bytes(damaged))
    status, document, err = analyze_json(capsys, path)
    before = complete_pcap_records(zlib.decompressobj(31).decompress(packed[:position]))
    assert status == 1 and len(err.splitlines()) == 1 and str(path) in err
    assert before <= document["stats"]["packets"] < 1102


def test_missing_and_non_capture_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    status, document, err = analyze_json(capsys, tmp_path / "absent.pcap", text)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "absent.pcap" in lines[0] and "No such file" in lines[0]
    assert "notes.txt" in lines[1] and "not a pcap or pcapng file" in lines[1]
    assert document["connections"] == []


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(SMB1), str(UPGRADED)]) == 0
    out = capsys.readouterr().out
    assert "192.0.2.10:" in out and "-> 192.0.2.20:445" in out
    assert "NT LANMAN 1.0" in out and "USED" in out and "offered" in out
    assert "Hosts (2)" in out


def test_usage_errors() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["analyze"])
    assert caught.value.code == 2
    assert main(["analyze", "--max-flows", "0", str(SMB1)]) == 2


def test_console_script_reads_standard_input() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "analyze", "--format", "json", "-"],
        input=SMB1.read_bytes(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["connections"][0]["dialect"] == "NT LANMAN 1.0"
    assert document["stats"]["files"][0]["name"] == "<stdin>"


def test_each_session_lists_the_trees_it_connected(capsys: pytest.CaptureFixture[str]) -> None:
    _, document, _ = analyze_json(capsys, UPGRADED)
    [connection] = document["connections"]
    [session] = connection["sessions"]
    assert (
        session["trees"]
        == [tree["path"] for tree in connection["trees"]]
        == [
            "\\\\192.0.2.20\\IPC$",
            "\\\\192.0.2.20\\data",
        ]
    )
    assert main(["analyze", str(UPGRADED)]) == 0
    assert "SUCCESS  IPC$, data" in capsys.readouterr().out  # the sessions table's SHARES column


def first_records(data: bytes, count: int) -> bytes:
    """The file header and the first `count` records of a little-endian classic pcap."""
    position = 24
    for _ in range(count):
        position += 16 + int.from_bytes(data[position + 8 : position + 12], "little")
    return data[:position]


def signal_analyze_on_a_pipe(fed: bytes, signum: int, *args: str) -> tuple[int, str, str]:
    """`smbwatch analyze ARGS -` fed `fed` through a pipe kept open (as `tcpdump -w - | smbwatch analyze -`
    waits for more), then sent `signum` once it has read every byte fed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "analyze", *args, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    output: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, stream=stream: output.__setitem__(name, stream.read()))
        for name, stream in (("out", process.stdout), ("err", process.stderr))
    ]
    for reader in readers:
        reader.start()
    try:
        assert process.stdin is not None
        process.stdin.write(fed)
        process.stdin.flush()
        waiting = array.array("i", [0])
        deadline = time.monotonic() + 30
        while True:  # until the reader has taken every byte out of the pipe
            fcntl.ioctl(process.stdin.fileno(), termios.FIONREAD, waiting)
            if not waiting[0]:
                break
            assert time.monotonic() < deadline, "smbwatch did not read its input"
            time.sleep(0.02)
        time.sleep(0.2)
        process.send_signal(signum)
        status = process.wait(timeout=30)  # standard input still open: no end of file
    finally:
        if process.poll() is None:
            process.kill()
        process.stdin.close()  # type: ignore[union-attr]
        for reader in readers:
            reader.join(timeout=30)
    return status, output["out"].decode(), output["err"].decode()


def test_sigint_on_a_pipe_reports_what_was_read_and_exits_130() -> None:
    fed = first_records(UPGRADED.read_bytes(), 12)
    status, out, err = signal_analyze_on_a_pipe(fed, signal.SIGINT, "--format", "json")
    assert status == 130, err
    assert "Traceback" not in err
    assert err.splitlines() == ["smbwatch: error: <stdin>: reading interrupted by SIGINT after 12 frames"]
    document = json.loads(out)
    assert document["stats"]["packets"] == document["stats"]["files"][0]["frames"] == 12
    [connection] = document["connections"]
    assert connection["dialect"] == "3.1.1" and connection["end"] == "end_of_input"


def test_sigterm_on_a_pipe_prints_the_table_and_exits_143() -> None:
    fed = first_records(UPGRADED.read_bytes(), 12)
    status, out, err = signal_analyze_on_a_pipe(fed, signal.SIGTERM)
    assert status == 143 and "Traceback" not in err and "interrupted by SIGTERM after 12 frames" in err
    assert "SMB connections (1)" in out and "3.1.1" in out
    assert "12 packets, 12 on SMB ports" in out


def test_analyze_restores_the_signal_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["analyze", str(SMB1)]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"smbwatch {__version__}\n"
    assert __version__ != "0+unknown"  # the installed package's version
