"""Live capture through real veth pairs: recorded SMB traffic replayed with tcpreplay arrives whole.

Each test that needs the kernel builds its own pair of network namespaces joined by a
veth (names unique per run, removed in `finally`), opens `LiveCapture` on one end from
inside the capturing namespace and replays captures from `pcaps/recorded/` on the other.
The replayed frames go only into those namespaces, which have no addresses and no routes,
so nothing is answered or forwarded. Every burst is bounded in packets and time.

Needs root (namespaces, veth) plus `ip`, `tcpreplay` and `setpriv`; skipped otherwise.
The error tests for a bad filter and a missing interface run anywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.input.capture import (
    DEFAULT_FILTER,
    CaptureError,
    CaptureFile,
    Frame,
    LiveCapture,
    LiveCaptureError,
    compile_filter,
)

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "pcaps" / "recorded"
# Ethernet captures covering SMB1, SMB 3.1.1, NetBIOS on 139 and IPv6.
SMB_CAPTURES = ("smb1_nt1.pcap", "smb3_1_1.pcap", "netbios_139.pcap", "ipv6.pcap")
REPLAY_SECONDS = 30  # upper bound for any tcpreplay run here
CLONE_NEWNET = 0x40000000

HAVE_TOOLS = all(shutil.which(tool) for tool in ("ip", "tcpreplay", "setpriv"))
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not HAVE_TOOLS,
    reason="live capture tests need root (network namespaces, veth) and ip, tcpreplay, setpriv (scripts/install.sh)",
)

_libc = ctypes.CDLL(None, use_errno=True)


def run(*command: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)


@dataclass
class Link:
    """One veth pair: `send` in namespace `sender`, `capture` in namespace `capturer`."""

    sender: str
    capturer: str
    send: str
    capture: str


@contextlib.contextmanager
def veth_links(count: int = 1) -> Iterator[list[Link]]:
    """Two fresh namespaces joined by `count` veth pairs, IPv6 off so no autoconfiguration chatter."""
    tag = f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
    sender, capturer = f"smbw-s{tag}", f"smbw-c{tag}"
    links = [Link(sender, capturer, f"sw{tag}s{i}", f"sw{tag}c{i}") for i in range(count)]
    created: list[str] = []
    try:
        for namespace in (sender, capturer):
            run("ip", "netns", "add", namespace)
            created.append(namespace)
            for key in ("all", "default"):
                run("ip", "netns", "exec", namespace, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        for link in links:
            run(
                "ip", "link", "add", link.send, "netns", sender, "type", "veth", "peer", link.capture, "netns", capturer
            )
            run("ip", "-n", sender, "link", "set", link.send, "up")
            run("ip", "-n", capturer, "link", "set", link.capture, "up")
        yield links
    finally:
        for namespace in created:
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=15)


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Moves this thread into `namespace` (sockets opened here stay there) and back afterwards."""
    with open(f"/var/run/netns/{namespace}") as target, open("/proc/thread-self/ns/net") as home:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the test's namespace failed")


def open_capture(link: Link, **options: object) -> LiveCapture:
    with inside(link.capturer):
        return LiveCapture([link.capture], **options)  # type: ignore[arg-type]


def replay(link: Link, *pcaps: Path, rate: str = "--topspeed", loops: int = 1) -> None:
    run(
        "ip", "netns", "exec", link.sender,
        "tcpreplay", "-q", "-i", link.send, rate, f"--loop={loops}", *map(str, pcaps),
        timeout=REPLAY_SECONDS,
    )  # fmt: skip


class Collector(threading.Thread):
    """Iterates a capture until `expected` frames arrived (or it is stopped)."""

    def __init__(self, capture: LiveCapture, expected: int | None = None) -> None:
        super().__init__(daemon=True)
        self.capture = capture
        self.expected = expected
        self.frames: list[Frame] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for frame in self.capture:
                self.frames.append(frame)
                if self.expected is not None and len(self.frames) >= self.expected:
                    return
        except BaseException as error:  # surfaced by finish()
            self.error = error

    def finish(self, timeout: float = 10) -> list[Frame]:
        self.join(timeout)
        self.capture.stop()
        self.join(2)
        assert not self.is_alive(), "capture iteration did not end after stop()"
        if self.error is not None:
            raise self.error
        return self.frames


def recorded_frames(*names: str) -> list[bytes]:
    return [frame for name in names for _ts, _linktype, frame in CaptureFile(str(RECORDED / name))]


def smb_port(frame: bytes) -> bool:
    """Ethernet + IPv4/IPv6 + TCP to or from port 445 or 139: what the default filter keeps."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800 and frame[23] == 6:
        offset = 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and frame[20] == 6:
        offset = 54
    else:
        return False
    source, destination = struct.unpack_from("!HH", frame, offset)
    return bool({source, destination} & {445, 139})


def write_pcap(path: Path, frames: list[bytes]) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    for number, frame in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, number, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def noise_frames() -> list[bytes]:
    """Traffic the default filter must keep out: DNS over UDP, HTTP, TCP 4450 and 1445, ARP,
    and UDP 445/137 (only TCP is SMB). Addresses are from 10.x, only ever seen inside the test's namespaces."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip = IP(src="10.251.0.1", dst="10.251.0.2")
    packets = [
        ether / ip / UDP(sport=5353, dport=53) / b"dns?",
        ether / ip / TCP(sport=40000, dport=80, flags="S"),
        ether / ip / TCP(sport=40001, dport=4450, flags="S"),
        ether / ip / TCP(sport=1445, dport=40002, flags="SA"),
        ether / ip / UDP(sport=40003, dport=445) / b"not smb",
        ether / ip / UDP(sport=137, dport=137) / b"nbns",
        Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.251.0.1", pdst="10.251.0.2"),
    ]
    return [bytes(packet) for packet in packets]


# --- errors that need no privilege --------------------------------------------------------------


def test_invalid_filter_names_the_expression() -> None:
    with pytest.raises(LiveCaptureError) as caught:
        compile_filter("tcp prot 445")
    message = str(caught.value)
    assert "'tcp prot 445'" in message and "invalid filter expression" in message
    assert "\n" not in message
    with pytest.raises(CaptureError, match="tcp prot 445"):
        LiveCapture(["lo"], bpf_filter="tcp prot 445")


def test_default_filter_compiles_and_keeps_whole_frames() -> None:
    rows = compile_filter(DEFAULT_FILTER)
    assert 10 < len(rows) < 64
    returns = [k for code, _jt, _jf, k in rows if code == 0x06]
    assert 0 in returns and max(returns) >= 65535  # reject, and accept the whole frame


def test_missing_interface_is_named() -> None:
    with pytest.raises(LiveCaptureError) as caught:
        LiveCapture(["smbw-nosuch0"])
    assert str(caught.value) == "smbw-nosuch0: no such network interface"


def test_interfaces_required_once() -> None:
    with pytest.raises(ValueError):
        LiveCapture([])
    with pytest.raises(ValueError, match="twice"):
        LiveCapture(["lo", "lo"])


# --- real traffic through veth pairs ------------------------------------------------------------


@needs_root
def test_replayed_smb_arrives_byte_identical_and_in_order() -> None:
    expected = recorded_frames(*SMB_CAPTURES)
    assert all(smb_port(frame) for frame in expected)
    with veth_links() as (link,):
        capture = open_capture(link)
        try:
            collector = Collector(capture, len(expected))
            collector.start()
            started = time.time()
            replay(link, *(RECORDED / name for name in SMB_CAPTURES))
            frames = collector.finish()
            statistics = capture.statistics()[link.capture]
        finally:
            capture.close()
    assert [frame for _ts, _linktype, frame in frames] == expected
    assert {linktype for _ts, linktype, _frame in frames} == {1}
    stamps = [ts for ts, _linktype, _frame in frames]
    # Kernel receive stamps of this run, not the recording's and not time.time() at reading.
    assert stamps == sorted(stamps)
    assert started - 1 <= stamps[0] <= stamps[-1] <= time.time()
    assert statistics.packets == statistics.kernel_packets == len(expected)
    assert statistics.bytes == sum(map(len, expected))
    assert statistics.kernel_drops == 0


@needs_root
def test_filter_keeps_other_traffic_out_in_the_kernel(tmp_path: Path) -> None:
    smb = recorded_frames("smb1_nt1.pcap")
    noise = noise_frames()
    assert not any(smb_port(frame) for frame in noise)
    mixed: list[bytes] = []
    for number, frame in enumerate(smb):
        mixed.append(frame)
        mixed.append(noise[number % len(noise)])
    pcap = write_pcap(tmp_path / "mixed.pcap", mixed)
    with veth_links() as (link,):
        capture = open_capture(link)
        try:
            collector = Collector(capture, len(smb))
            collector.start()
            replay(link, pcap)
            time.sleep(0.2)  # room for a wrongly passed frame to show up
            frames = collector.finish()
            statistics = capture.statistics()[link.capture]
        finally:
            capture.close()
    assert [frame for _ts, _linktype, frame in frames] == smb
    # Counted by the kernel after the filter: the noise never reached the ring.
    assert statistics.kernel_packets == len(smb)


@needs_root
def test_custom_filter(tmp_path: Path) -> None:
    smb = recorded_frames("smb1_nt1.pcap")
    noise = noise_frames()
    pcap = write_pcap(tmp_path / "mixed.pcap", smb[:5] + noise + smb[5:])
    with veth_links() as (link,):
        capture = open_capture(link, bpf_filter="udp")
        try:
            collector = Collector(capture, 3)
            collector.start()
            replay(link, pcap)
            frames = collector.finish()
        finally:
            capture.close()
    assert [frame for _ts, _linktype, frame in frames] == [frame for frame in noise if frame[23] == 17]


@needs_root
def test_no_unfiltered_frame_slips_in_while_opening(tmp_path: Path) -> None:
    """A flood of non-SMB frames runs while the capture opens: none may be read (the filter is
    attached before the socket is bound, so nothing arrives unfiltered)."""
    pcap = write_pcap(tmp_path / "noise.pcap", noise_frames())
    with veth_links() as (link,):
        flood = subprocess.Popen(
            ["ip", "netns", "exec", link.sender, "tcpreplay", "-q", "-i", link.send, "--pps=20000", "--loop=3000",
             str(pcap)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(0.1)
            captures = []
            for _ in range(10):
                captures.append(open_capture(link))
                time.sleep(0.01)
            time.sleep(0.2)
            replay(link, RECORDED / "smb1_nt1.pcap")
            for capture in captures:
                collector = Collector(capture, 28)
                collector.start()
                frames = collector.finish(timeout=5)
                assert all(smb_port(frame) for _ts, _linktype, frame in frames)
                assert len(frames) == 28
        finally:
            flood.kill()
            flood.wait(5)
            for capture in captures:
                capture.close()


@needs_root
def test_two_interfaces_with_their_own_counters() -> None:
    first = recorded_frames("smb1_nt1.pcap")
    second = recorded_frames("netbios_139.pcap")
    with veth_links(2) as links:
        with inside(links[0].capturer):
            capture = LiveCapture([link.capture for link in links])
        try:
            assert capture.interfaces == [links[0].capture, links[1].capture]
            collector = Collector(capture, len(first) + len(second))
            collector.start()
            replay(links[0], RECORDED / "smb1_nt1.pcap")
            replay(links[1], RECORDED / "netbios_139.pcap")
            frames = [frame for _ts, _linktype, frame in collector.finish()]
            statistics = capture.statistics()
        finally:
            capture.close()
    assert [frame for frame in frames if frame in first] == first
    assert [frame for frame in frames if frame in second] == second
    assert statistics[links[0].capture].packets == len(first)
    assert statistics[links[1].capture].packets == len(second)
    assert statistics[links[1].capture].bytes == sum(map(len, second))


@needs_root
def test_loopback_frames_arrive_once() -> None:
    """On loopback the kernel shows every frame leaving and arriving; only one copy may be read."""
    expected = recorded_frames("smb1_nt1.pcap")
    with veth_links() as (link,):
        run("ip", "-n", link.capturer, "link", "set", "lo", "up")
        with inside(link.capturer):
            capture = LiveCapture(["lo"])
        try:
            collector = Collector(capture)
            collector.start()
            run("ip", "netns", "exec", link.capturer, "tcpreplay", "-q", "-i", "lo", "--topspeed",
                str(RECORDED / "smb1_nt1.pcap"))  # fmt: skip
            time.sleep(0.3)
            frames = collector.finish(timeout=0)
        finally:
            capture.close()
    assert [frame for _ts, _linktype, frame in frames] == expected


@needs_root
def test_stop_ends_an_idle_capture_promptly() -> None:
    with veth_links() as (link,):
        capture = open_capture(link)
        try:
            collector = Collector(capture)
            collector.start()
            time.sleep(0.3)
            assert collector.is_alive()
            began = time.monotonic()
            capture.stop()
            collector.join(1)
            assert not collector.is_alive()
            assert time.monotonic() - began < 0.5
        finally:
            capture.close()


@needs_root
def test_stop_from_a_signal_handler() -> None:
    with veth_links() as (link,):
        capture = open_capture(link)
        previous = signal.signal(signal.SIGALRM, lambda _signum, _frame: capture.stop())
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            began = time.monotonic()
            assert list(capture) == []
            assert time.monotonic() - began < 1.3
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            capture.close()


@needs_root
def test_a_full_ring_reports_exact_drops() -> None:
    """A 2 MiB ring left unread while ~11 MB of SMB arrive: the kernel drops, and every packet it
    counted is either read or counted as dropped."""
    with veth_links() as (link,):
        capture = open_capture(link, buffer_bytes=2 << 20)
        try:
            assert capture.statistics()[link.capture].buffer_bytes == 2 << 20
            replay(link, RECORDED / "control_large_copy.pcap", rate="--pps=50000", loops=5)
            time.sleep(0.2)  # past the block timeout: everything the ring holds is handed over
            collector = Collector(capture)
            collector.start()
            time.sleep(0.3)
            collector.finish(timeout=0)
            statistics = capture.statistics()[link.capture]
        finally:
            capture.close()
    assert statistics.kernel_drops > 0
    assert statistics.kernel_packets <= 5 * 1621
    assert statistics.packets + statistics.kernel_drops == statistics.kernel_packets
    assert len(collector.frames) == statistics.packets


@needs_root
def test_statistics_accumulate_across_reads() -> None:
    with veth_links() as (link,):
        capture = open_capture(link)
        try:
            collector = Collector(capture, 28 * 2)
            collector.start()
            replay(link, RECORDED / "smb1_nt1.pcap")
            time.sleep(0.2)
            assert capture.statistics()[link.capture].kernel_packets == 28
            replay(link, RECORDED / "smb1_nt1.pcap")
            collector.finish()
            # PACKET_STATISTICS resets on read; the totals must not.
            assert capture.statistics()[link.capture].kernel_packets == 56
        finally:
            capture.close()
        assert capture.statistics()[link.capture].packets == 56  # still answers after close


# --- privileges ---------------------------------------------------------------------------------

_CHILD = """
import json, sys, threading
from monitor.input.capture import CaptureError, LiveCapture
try:
    capture = LiveCapture([sys.argv[1]], buffer_bytes=int(sys.argv[2]))
except CaptureError as error:
    print(json.dumps({"error": str(error)}), flush=True)
    sys.exit(3)
print(json.dumps({"ready": True}), flush=True)
timer = threading.Timer(8, capture.stop)
timer.daemon = True
timer.start()
frames = 0
for _frame in capture:
    frames += 1
    if frames == int(sys.argv[3]):
        break
stats = capture.statistics()[sys.argv[1]]
print(json.dumps({"frames": frames, "buffer_bytes": stats.buffer_bytes, "drops": stats.kernel_drops}), flush=True)
"""


def unprivileged(link: Link, caps: tuple[str, ...], *arguments: str) -> subprocess.Popen[str]:
    grant = [f"--inh-caps={','.join(caps)}", f"--ambient-caps={','.join(caps)}"] if caps else ["--inh-caps=-all"]
    return subprocess.Popen(
        ["ip", "netns", "exec", link.capturer, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         *grant, sys.executable, "-c", _CHILD, link.capture, *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


@needs_root
def test_works_as_nobody_with_only_cap_net_raw() -> None:
    """The whole 64 MiB default ring, promiscuous mode and the filter, with CAP_NET_RAW alone."""
    with veth_links() as (link,):
        child = unprivileged(link, ("+net_raw",), str(64 << 20), "28")
        try:
            assert child.stdout is not None
            first = json.loads(child.stdout.readline() or '{"error": "no output"}')
            assert first == {"ready": True}, first
            # Membership promiscuity is a counter, not the PROMISC flag `ip link` shows for `ip link set promisc`.
            details = run("ip", "-d", "-n", link.capturer, "-o", "link", "show", link.capture).stdout
            assert " promiscuity 1 " in details
            replay(link, RECORDED / "smb1_nt1.pcap")
            out, err = child.communicate(timeout=15)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(5)
    assert json.loads(out) == {"frames": 28, "buffer_bytes": 64 << 20, "drops": 0}, err


@needs_root
def test_without_cap_net_raw_the_error_says_so() -> None:
    with veth_links() as (link,):
        child = unprivileged(link, (), str(8 << 20), "1")
        out, err = child.communicate(timeout=15)
    assert child.returncode == 3, err
    message = json.loads(out)["error"]
    assert message.startswith(f"{link.capture}: permission denied")
    assert "CAP_NET_RAW" in message
