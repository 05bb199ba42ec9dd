#!/usr/bin/env python3
"""Live capture rate: the highest packets/s a receiver sustains with zero loss through a veth.

Builds two fresh network namespaces joined by a veth pair (removed afterwards), then for
each receiver and each rate: starts the receiver in the capturing namespace pinned to one
core (``taskset -c CORE``), replays a recorded SMB capture into the other end with
``tcpreplay --pps RATE`` (pinned to another core, bounded to ``--seconds`` worth of
packets), stops the receiver and compares what it got with what was sent. Rates climb
until a receiver loses packets (``--confirm`` failures in a row end its climb).

Receivers (all with the default kernel filter ``tcp port 445 or tcp port 139``):

* ``ring``     `monitor.input.capture.LiveCapture` (AF_PACKET, TPACKET_V3 ring), frames counted
* ``pipeline`` the same, every frame fed through `monitor.pipeline.Pipeline`
* ``recv``     a plain AF_PACKET socket, same filter, SO_RCVBUFFORCE 64 MiB, ``recv_into`` per packet
* ``scapy``    scapy's ``AsyncSniffer`` (``sniff()``), ``store=False``, counting in ``prn``
* ``scapy_raw`` scapy's ``L2ListenSocket`` (``conf.L2listen``) (its kernel filter), ``recv_raw`` without dissection

Needs root, ``ip``, ``tcpreplay`` and ``taskset``. Prints a table and writes JSON
(``--json``). Usage: ``python3 bench/live_rate.py [--receivers ring,scapy] [--rates 10000,50000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PCAP = REPO / "pcaps" / "recorded" / "control_large_copy.pcap"
DEFAULT_RATES = (
    2_000,
    5_000,
    10_000,
    20_000,
    40_000,
    70_000,
    100_000,
    150_000,
    200_000,
    300_000,
    400_000,
    500_000,
    650_000,
)
RECEIVERS = ("ring", "pipeline", "recv", "scapy", "scapy_raw")
FILTER = "tcp port 445 or tcp port 139"


# --- receivers (run as a child process inside the capturing namespace) ---------------------------


def _wait_for_stop(stop: threading.Event) -> None:
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    print(json.dumps({"ready": True}), flush=True)


def receive(mode: str, interface: str) -> dict[str, object]:
    """Runs one receiver until SIGTERM; returns what it counted."""
    stop = threading.Event()
    result: dict[str, object] = {}
    if mode in ("ring", "pipeline"):
        from monitor.input.capture import LiveCapture

        capture = LiveCapture([interface], FILTER)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: capture.stop())
        print(json.dumps({"ready": True}), flush=True)
        if mode == "ring":
            frames = sum(1 for _frame in capture)
        else:
            from monitor.pipeline import Pipeline

            pipeline = Pipeline()
            pipeline.feed(capture)
            pipeline.finish()
            frames = pipeline.packets
            result["smb_messages"] = sum(pipeline.smb_messages.values())
        statistics = capture.statistics()[interface]
        capture.close()
        result.update(frames=frames, kernel_packets=statistics.kernel_packets, kernel_drops=statistics.kernel_drops)
    elif mode == "recv":
        from monitor.input.capture import _attach_filter, compile_filter

        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        _attach_filter(sock, compile_filter(FILTER))
        sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: root or CAP_NET_ADMIN
        sock.bind((interface, 3))
        sock.settimeout(0.2)
        _wait_for_stop(stop)
        buffer = bytearray(65536)
        frames = 0
        while not stop.is_set():
            try:
                sock.recv_into(buffer)
            except (TimeoutError, InterruptedError):
                continue
            frames += 1
        packets, drops = struct.unpack("=II", sock.getsockopt(263, 6, 8))  # PACKET_STATISTICS, tpacket_stats
        result.update(frames=frames, kernel_packets=packets, kernel_drops=drops)
    elif mode == "scapy":
        from scapy.sendrecv import AsyncSniffer

        counted = [0]

        def count(_packet: object) -> None:
            counted[0] += 1

        ready = threading.Event()
        sniffer = AsyncSniffer(iface=interface, filter=FILTER, store=False, prn=count, started_callback=ready.set)
        sniffer.start()
        ready.wait(10)
        _wait_for_stop(stop)
        stop.wait()
        sniffer.stop()
        result.update(frames=counted[0], kernel_packets=None, kernel_drops=None)
    elif mode == "scapy_raw":
        import select

        from scapy.arch.linux import L2ListenSocket

        # No dissection: scapy's own listening socket (kernel filter attached by scapy), raw bytes only.
        sock = L2ListenSocket(iface=interface, filter=FILTER)
        _wait_for_stop(stop)
        frames = 0
        while not stop.is_set():
            if select.select([sock], [], [], 0.2)[0]:
                sock.recv_raw()
                frames += 1
        # scapy reports no drops, but its socket is an AF_PACKET socket the kernel keeps counts for.
        packets, drops = struct.unpack("=II", sock.ins.getsockopt(263, 6, 8))
        result.update(frames=frames, kernel_packets=packets, kernel_drops=drops)
    else:
        raise SystemExit(f"unknown receiver {mode}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    return result


def receiver_main(mode: str, interface: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # until the receiver installs its own handler
    print(json.dumps(receive(mode, interface)), flush=True)


# --- the driver -----------------------------------------------------------------------------------


def run(*command: str, timeout: float = 30) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout).stdout


@contextlib.contextmanager
def veth() -> Iterator[tuple[str, str, str, str]]:
    tag = secrets.token_hex(3)
    sender, capturer = f"smbw-bs{tag}", f"smbw-bc{tag}"
    send, capture = f"swb{tag}s", f"swb{tag}c"
    created = []
    try:
        for namespace in (sender, capturer):
            run("ip", "netns", "add", namespace)
            created.append(namespace)
            for key in ("all", "default"):
                run("ip", "netns", "exec", namespace, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        run("ip", "link", "add", send, "netns", sender, "type", "veth", "peer", capture, "netns", capturer)
        run("ip", "-n", sender, "link", "set", send, "up")
        run("ip", "-n", capturer, "link", "set", capture, "up")
        yield sender, capturer, send, capture
    finally:
        for namespace in created:
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=15)


def pcap_packets(path: Path) -> int:
    sys.path.insert(0, str(REPO))
    from monitor.input.capture import CaptureFile

    return sum(1 for _frame in CaptureFile(str(path)))


def measure(
    mode: str, rate: int, seconds: float, pcap: Path, per_loop: int, core: int, sender_core: int, links: tuple
) -> dict[str, object]:
    sender, capturer, send, capture = links
    loops = max(1, math.ceil(rate * seconds / per_loop))
    child = subprocess.Popen(
        ["ip", "netns", "exec", capturer, "taskset", "-c", str(core), sys.executable, __file__,
         "--receive", mode, "--interface", capture],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"receiver {mode} did not start: {line!r} {child.stderr.read() if child.stderr else ''}")
        out = run(
            "ip", "netns", "exec", sender, "taskset", "-c", str(sender_core),
            "tcpreplay", "-i", send, f"--pps={rate}", f"--loop={loops}", str(pcap),
            timeout=seconds * 10 + 30,
        )  # fmt: skip
        time.sleep(0.5)  # the receiver catches up with its queue; a ring block times out after 50 ms
        child.send_signal(signal.SIGTERM)
        result_line, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    sent = int(re.search(r"Actual: (\d+) packets", out).group(1))  # type: ignore[union-attr]
    achieved = float(re.search(r"([\d.]+) pps", out).group(1))  # type: ignore[union-attr]
    try:
        result = json.loads(result_line.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"receiver {mode} failed: {err.strip()[-500:]}") from None
    result.update(mode=mode, rate=rate, achieved_pps=round(achieved), sent=sent)
    result["lossless"] = result["frames"] == sent and not result.get("kernel_drops")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receive", help=argparse.SUPPRESS)
    parser.add_argument("--interface", help=argparse.SUPPRESS)
    parser.add_argument("--receivers", default=",".join(RECEIVERS))
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)), help="packets/s, climbing")
    parser.add_argument("--seconds", type=float, default=2.0, help="burst length at each rate")
    parser.add_argument("--pcap", type=Path, default=DEFAULT_PCAP)
    parser.add_argument("--core", type=int, default=1, help="core the receiver is pinned to")
    parser.add_argument("--sender-core", type=int, default=0)
    parser.add_argument("--confirm", type=int, default=2, help="lossy rates in a row that end a receiver's climb")
    parser.add_argument("--json", type=Path, help="write all measurements here")
    args = parser.parse_args(argv)
    if args.receive:
        receiver_main(args.receive, args.interface)
        return 0
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces and veth)")
    rates = [int(rate) for rate in args.rates.split(",")]
    per_loop = pcap_packets(args.pcap)
    results: list[dict[str, object]] = []
    best: dict[str, int] = {}
    with veth() as links:
        for mode in args.receivers.split(","):
            failures = 0
            for rate in rates:
                result = measure(mode, rate, args.seconds, args.pcap, per_loop, args.core, args.sender_core, links)
                results.append(result)
                print(
                    f"{mode:9} {rate:>8}/s asked {result['achieved_pps']:>8}/s sent {result['sent']:>8} "
                    f"got {result['frames']:>8} kernel drops {result['kernel_drops']!s:>6} "
                    f"cpu {result['cpu_seconds']:>6}s {'ok' if result['lossless'] else 'LOSS'}",
                    flush=True,
                )
                if result["lossless"]:
                    best[mode] = max(best.get(mode, 0), int(result["achieved_pps"]))  # type: ignore[call-overload]
                    failures = 0
                else:
                    failures += 1
                    if failures >= args.confirm:
                        break
    print("\nhighest lossless rate (packets/s achieved by tcpreplay, receiver on one core):")
    for mode in args.receivers.split(","):
        print(f"  {mode:9} {best.get(mode, 0):>8}")
    if args.json:
        machine = {"cpus": os.cpu_count(), "kernel": os.uname().release, "pcap": str(args.pcap)}
        args.json.write_text(json.dumps({"machine": machine, "best": best, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
