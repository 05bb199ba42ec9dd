"""Best-of-N child CPU time (user + system) of `smbwatch analyze --format json FILE`, for A/B comparisons.

Wall-clock is noisy on a shared machine; CPU time of the child is far steadier.

    python3 bench/cputime.py --smbwatch .venv/bin/smbwatch /tmp/smbwatch-bench/bulk.pcap
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys


def child_cpu_seconds(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", nargs="+")
    parser.add_argument("--smbwatch", default="smbwatch", help="smbwatch executable (several: comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--packets", type=int, nargs="*", help="packets per capture, to print packets/s")
    args = parser.parse_args(argv)
    executables = args.smbwatch.split(",")
    for index, capture in enumerate(args.captures):
        for executable in executables:
            times = [
                child_cpu_seconds([executable, "analyze", "--format", "json", capture]) for _ in range(args.repeat)
            ]
            best = min(times)
            rate = ""
            if args.packets and index < len(args.packets):
                rate = f"  {args.packets[index] / best / 1000:.0f} k packets/s"
            runs = " ".join(f"{t:.2f}" for t in times)
            print(f"{capture}  {executable}  best {best:.2f} s CPU  (runs {runs}){rate}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
