#!/usr/bin/env python3
"""Time smbwatch against tshark, pyshark, scapy and raw-read baselines.

Builds the captures it is asked for (``--captures``, default all: bulk, mixed,
synflood, synflood_200k, logon_flood) in OUTDIR if missing (bench/make_captures.py),
then runs every tool on the same files, one after another, and prints wall and CPU
time, packets/s, peak RSS and the ratio smbwatch packets/s / tool packets/s. On the
floods it also reads smbwatch's JSON report and says whether the alert each flood
hides (the scanner's scan_445, the brute forcer's bruteforce) was raised. pyshark and
scapy are far too slow for whole files, so they run on the first ``--sample``
packets (an ``editcap`` prefix) and their rate on that prefix is used.

Peak RSS is GNU time's ``%M`` (max RSS of the process or of any descendant it waited
for, e.g. pyshark's tshark). Results go to stdout and OUTDIR/results.json.

Usage: ``python3 bench/run.py [--dir OUTDIR] [--captures a,b] [--sample N] [--tools a,b] [--smbwatch CMD]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import make_captures  # noqa: E402
from workers import raw_read_classify  # noqa: E402

DEFAULT_OUTDIR = Path("/tmp/smbwatch-bench")
DEFAULT_SAMPLE = 20_000
CAPTURES = make_captures.CAPTURE_NAMES
# the alert each flood hides: (kind, source), checked in smbwatch's JSON report
EXPECTED_ALERTS = {
    **{name: ("scan_445", make_captures.SCANNER_IP) for name in make_captures.SYNFLOOD_VARIANTS},
    "logon_flood": ("bruteforce", make_captures.BRUTE_FORCER_IP),
}
TSHARK_FIELDS = (
    "smb.dialect.name",
    "smb2.dialect",
    "smb2.cmd",
    "smb.cmd",
    "smb2.sec_mode.sign_required",
)
DISPLAY_FILTER = "smb || smb2"
ALL_TOOLS = ("rawloop", "tcpdump", "tshark", "smbwatch", "pyshark", "scapy")
# (tool, capture, minimum smbwatch/tool ratio) from the issue
TARGETS = (
    ("tshark", "bulk", 20.0),
    ("tshark", "mixed", 5.0),
    ("pyshark", "bulk", 300.0),
    ("pyshark", "mixed", 300.0),
)


@dataclass
class Measurement:
    tool: str
    capture: str
    file: str
    packets: int
    seconds: float | None = None
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    sampled: bool = False
    status: str = "ok"
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def packets_per_second(self) -> float | None:
        if self.status != "ok" or not self.seconds:
            return None
        return self.packets / self.seconds


@dataclass
class ProcessResult:
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str


GNU_TIME = Path("/usr/bin/time")


def run_measured(command: list[str], keep_stdout: bool = False, stdout_path: Path | None = None) -> ProcessResult:
    """Run ``command``; return its wall time, CPU time (user + system, children it waited
    for included) and peak RSS. Its standard output is kept (``keep_stdout``), written to
    ``stdout_path`` or dropped.

    Peak RSS comes from GNU time's ``%M`` (Debian package ``time``): a child forked
    straight from this Python process would inherit this process's RSS as the floor
    of its ``ru_maxrss``. Without GNU time, ``os.wait4``'s ``ru_maxrss`` is used.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as time_report,
    ):
        use_gnu_time = GNU_TIME.exists()
        prefix = [str(GNU_TIME), "-f", "%e %M", "-o", time_report.name] if use_gnu_time else []
        started = time.perf_counter()
        with stdout_path.open("wb") if stdout_path else open(os.devnull, "wb") as sink:
            process = subprocess.Popen(
                [*prefix, *command],
                stdin=subprocess.DEVNULL,
                stdout=out if keep_stdout else sink,
                stderr=err,
            )
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        peak_rss_kib = float(usage.ru_maxrss)
        if use_gnu_time:
            report = time_report.read().split()
            peak_rss_kib = float(report[-1]) if report else float("nan")
        out.seek(0)
        err.seek(0)
        return ProcessResult(
            process.returncode,
            wall,
            usage.ru_utime + usage.ru_stime,
            peak_rss_kib / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def editcap_prefix(source: Path, destination: Path, packets: int) -> Path:
    """First ``packets`` packets of ``source`` (kept if already newer than the source)."""
    if not destination.exists() or destination.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(
            ["editcap", "-F", "pcap", "-r", str(source), str(destination), f"1-{packets}"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return destination


def smbwatch_command(spec: str) -> list[str] | None:
    command = shlex.split(spec)
    if not command or shutil.which(command[0]) is None:
        return None
    return command


def measure_command(
    tool: str,
    capture: str,
    path: Path,
    packets: int,
    command: list[str],
    sampled: bool = False,
    stdout_path: Path | None = None,
) -> Measurement:
    result = run_measured(command, stdout_path=stdout_path)
    measurement = Measurement(tool, capture, str(path), packets, sampled=sampled)
    if result.returncode != 0:
        measurement.status = f"failed (exit {result.returncode})"
        measurement.detail["stderr"] = result.stderr[-2000:]
        return measurement
    measurement.seconds = result.wall_seconds
    measurement.cpu_seconds = result.cpu_seconds
    measurement.peak_rss_mib = result.peak_rss_mib
    return measurement


def measure_worker(tool: str, capture: str, path: Path, packets: int, sampled: bool) -> Measurement:
    """Python workloads: rate from the worker's own timer (imports excluded)."""
    result = run_measured([sys.executable, str(BENCH_DIR / "workers.py"), tool, str(path)], True)
    measurement = Measurement(tool, capture, str(path), packets, sampled=sampled)
    if result.returncode != 0:
        measurement.status = f"failed (exit {result.returncode})"
        measurement.detail["stderr"] = result.stderr[-2000:]
        return measurement
    report = json.loads(result.stdout.strip().splitlines()[-1])
    measurement.seconds = float(report.pop("seconds"))
    measurement.cpu_seconds = result.cpu_seconds
    measurement.peak_rss_mib = result.peak_rss_mib
    measurement.detail = {"process_wall_seconds": round(result.wall_seconds, 3), **report}
    return measurement


def tshark_command(path: Path) -> list[str]:
    fields = [argument for name in TSHARK_FIELDS for argument in ("-e", name)]
    return ["tshark", "-r", str(path), "-Y", DISPLAY_FILTER, "-T", "fields", *fields]


def machine_description() -> dict[str, object]:
    cpu_model = ""
    memory_kib = 0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_kib = int(line.split()[1])
    versions: dict[str, str] = {"python": platform.python_version()}
    tshark = subprocess.run(["tshark", "--version"], capture_output=True, text=True)
    versions["tshark"] = tshark.stdout.splitlines()[0] if tshark.stdout else "?"
    tcpdump = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True)
    versions["tcpdump"] = (tcpdump.stdout or tcpdump.stderr).splitlines()[0]
    for module in ("scapy", "pyshark"):
        try:
            from importlib.metadata import version

            versions[module] = version(module)
        except Exception:  # pragma: no cover - informational only
            versions[module] = "?"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
        "versions": versions,
    }


def ensure_captures(outdir: Path, names: list[str], mixed_packets: int | None, bulk_mb: int | None) -> None:
    for name in names:
        if not (outdir / f"{name}.pcap").exists():
            print(f"building {name}.pcap in {outdir} ...", flush=True)
            make_captures.generate(
                outdir,
                mixed_packets or make_captures.DEFAULT_MIXED_PACKETS,
                bulk_mb or make_captures.DEFAULT_BULK_MB,
                only=name,
            )


def report_summary(report_path: Path, capture: str) -> dict[str, object]:
    """What smbwatch's JSON report says about a flood: alerts by kind, whether the hidden
    alert was raised, connections, anomalies, flows."""
    document = json.loads(report_path.read_text())
    stats = document.get("stats", {})
    alerts = document.get("alerts", [])
    kinds: dict[str, int] = {}
    for alert in alerts:
        kinds[alert["kind"]] = kinds.get(alert["kind"], 0) + 1
    summary: dict[str, object] = {
        "alerts": kinds,
        "alerts_not_listed": stats.get("alerts_not_listed"),
        "connections": len(document.get("connections", [])),
        "connections_not_listed": stats.get("connections_not_listed"),
        "anomalies": stats.get("anomalies"),
        "flows": stats.get("flows"),
        "smb_messages": stats.get("smb_messages"),
    }
    if capture in EXPECTED_ALERTS:
        kind, source = EXPECTED_ALERTS[capture]
        hits = [alert for alert in alerts if alert["kind"] == kind and alert["src"] == source]
        summary["expected"] = {
            "kind": kind,
            "src": source,
            "raised": bool(hits),
            "first": {"ts": hits[0]["ts"], "detail": hits[0]["detail"]} if hits else None,
        }
    return summary


def format_table(rows: list[Measurement], smbwatch_rate: dict[str, float | None]) -> str:
    header = (
        f"{'tool':<10} {'capture':<13} {'packets':>10} {'seconds':>9} {'CPU s':>8} {'packets/s':>12} "
        f"{'peak RSS MiB':>12} {'smbwatch/tool':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        name = row.tool + ("*" if row.sampled else "")
        rate = row.packets_per_second
        if rate is None:
            lines.append(f"{name:<10} {row.capture:<13} {row.packets:>10,} {row.status}")
            continue
        ratio = ratio_for(row, smbwatch_rate)
        ratio_text = "-" if ratio is None else f"{ratio:,.1f}x" if ratio >= 10 else f"{ratio:.3g}x"
        cpu_text = "-" if row.cpu_seconds is None else f"{row.cpu_seconds:.2f}"
        lines.append(
            f"{name:<10} {row.capture:<13} {row.packets:>10,} {row.seconds:>9.2f} {cpu_text:>8} {rate:>12,.0f} "
            f"{row.peak_rss_mib:>12.1f} {ratio_text:>14}"
        )
    return "\n".join(lines)


def ratio_for(row: Measurement, smbwatch_rate: dict[str, float | None]) -> float | None:
    reference = smbwatch_rate.get(row.capture)
    rate = row.packets_per_second
    if reference is None or rate is None or row.tool == "smbwatch":
        return None
    return reference / rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_OUTDIR, help="captures and results")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="pyshark/scapy prefix")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated subset")
    parser.add_argument("--captures", default=",".join(CAPTURES), help="comma-separated subset")
    parser.add_argument("--smbwatch", default="smbwatch", help="command that runs smbwatch")
    parser.add_argument("--mixed-packets", type=int, help="if mixed.pcap must be built")
    parser.add_argument("--bulk-mb", type=int, help="if bulk.pcap must be built")
    args = parser.parse_args(argv)
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = set(tools) - set(ALL_TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    captures = [name.strip() for name in args.captures.split(",") if name.strip()]
    unknown = set(captures) - set(CAPTURES)
    if unknown or not captures:
        parser.error(f"unknown captures: {', '.join(sorted(unknown))} (choose from {', '.join(CAPTURES)})")
    outdir: Path = args.dir
    run_started = time.perf_counter()
    ensure_captures(outdir, captures, args.mixed_packets, args.bulk_mb)
    machine = machine_description()
    load = os.getloadavg()
    if load[0] > 0.5:
        print(f"warning: load average {load[0]:.2f} before the run; timings may be noisy")

    files: dict[str, Path] = {name: outdir / f"{name}.pcap" for name in captures}
    counts = {name: raw_read_classify(path) for name, path in files.items()}
    samples: dict[str, tuple[Path, int]] = {}
    if {"pyshark", "scapy"} & set(tools):
        for name, path in files.items():
            sample_packets = min(args.sample, counts[name]["packets"])
            prefix = editcap_prefix(path, outdir / f"{name}-first{sample_packets}.pcap", sample_packets)
            samples[name] = (prefix, sample_packets)
    smbwatch = smbwatch_command(args.smbwatch)

    rows: list[Measurement] = []
    reports: dict[str, dict[str, object]] = {}
    for name, path in files.items():
        packets = counts[name]["packets"]
        for tool in tools:
            print(f"running {tool} on {name} ...", flush=True)
            if tool == "rawloop":
                rows.append(measure_worker("rawloop", name, path, packets, sampled=False))
            elif tool == "tcpdump":
                command = ["tcpdump", "-r", str(path), "-w", "/dev/null"]
                rows.append(measure_command("tcpdump", name, path, packets, command))
            elif tool == "tshark":
                rows.append(measure_command("tshark", name, path, packets, tshark_command(path)))
            elif tool == "smbwatch":
                if smbwatch is None:
                    rows.append(Measurement("smbwatch", name, str(path), packets, status="not installed"))
                else:
                    command = [*smbwatch, "analyze", "--format", "json", str(path)]
                    # the floods' reports are kept and read for the alert they hide
                    report_path = outdir / f"{name}-smbwatch.json" if name in EXPECTED_ALERTS else None
                    row = measure_command("smbwatch", name, path, packets, command, stdout_path=report_path)
                    rows.append(row)
                    if report_path is not None and row.status == "ok":
                        reports[name] = report_summary(report_path, name)
            else:  # pyshark, scapy on the prefix
                prefix, sample_packets = samples[name]
                rows.append(measure_worker(tool, name, prefix, sample_packets, sampled=True))

    memory: dict[str, object] = {}
    memory_rows: tuple[Measurement, Measurement] | None = None
    if "smbwatch" in tools and "mixed" in files:
        quarter_packets = counts["mixed"]["packets"] // 4
        if smbwatch is None:
            memory = {"status": "not installed"}
        else:
            quarter = editcap_prefix(files["mixed"], outdir / "mixed-first25pct.pcap", quarter_packets)
            print("running smbwatch on the first 25 % of mixed ...", flush=True)
            command = [*smbwatch, "analyze", "--format", "json", str(quarter)]
            short = measure_command("smbwatch", "mixed-25%", quarter, quarter_packets, command)
            full = next(r for r in rows if r.tool == "smbwatch" and r.capture == "mixed")
            memory_rows = (short, full)
            memory = {
                "status": short.status if short.status != "ok" else full.status,
                "mixed_25pct": {"packets": short.packets, "peak_rss_mib": short.peak_rss_mib},
                "mixed_100pct": {"packets": full.packets, "peak_rss_mib": full.peak_rss_mib},
            }

    smbwatch_rate = {
        name: next(
            (r.packets_per_second for r in rows if r.tool == "smbwatch" and r.capture == name),
            None,
        )
        for name in captures
    }
    total_seconds = time.perf_counter() - run_started

    print()
    for name, path in files.items():
        count = counts[name]
        print(
            f"{name}: {path} - {count['packets']:,} packets, {count['bytes'] / 1e6:,.0f} MB, "
            f"{count['smb_packets']:,} on TCP 445/139"
        )
    print()
    print(format_table(rows, smbwatch_rate))
    print(
        f"* sampled: pyshark and scapy ran on the first {args.sample:,} packets of each capture "
        "(editcap prefix); their packets/s and ratios are for that prefix."
    )
    print("  rawloop/pyshark/scapy seconds exclude interpreter start-up and imports (their CPU s include them).")
    print()
    for name, summary in reports.items():
        expected = summary.get("expected")
        if isinstance(expected, dict):
            verdict = "RAISED" if expected["raised"] else "NOT raised"
            print(f"{name}: hidden {expected['kind']} from {expected['src']}: {verdict}")
        print(
            f"  alerts {summary['alerts']}, connections {summary['connections']:,} "
            f"(+{summary['connections_not_listed'] or 0:,} not listed), anomalies {summary['anomalies']}, "
            f"flows {summary['flows']}"
        )
    if reports:
        print()
    targets = []
    for tool, capture, minimum in TARGETS:
        if capture not in files:
            continue
        row = next((r for r in rows if r.tool == tool and r.capture == capture), None)
        ratio = ratio_for(row, smbwatch_rate) if row else None
        targets.append({"tool": tool, "capture": capture, "minimum": minimum, "ratio": ratio})
        outcome = "n/a" if ratio is None else f"{ratio:,.1f}x " + ("PASS" if ratio >= minimum else "FAIL")
        print(f"target smbwatch >= {minimum:g}x {tool} on {capture}: {outcome}")
    if memory_rows and memory_rows[0].peak_rss_mib and memory_rows[1].peak_rss_mib:
        short_rss, full_rss = memory_rows[0].peak_rss_mib, memory_rows[1].peak_rss_mib
        print(
            f"memory flat in length: smbwatch peak RSS {short_rss:.1f} MiB on 25 % of mixed, "
            f"{full_rss:.1f} MiB on 100 % (x{full_rss / short_rss:.2f})"
        )
    elif memory:
        print(f"memory flat in length: smbwatch {memory['status']}")
    print(f"\nfull run took {total_seconds:.0f} s")

    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "captures": {name: {"file": str(files[name]), **counts[name]} for name in captures},
        "sample_packets": args.sample,
        "results": [
            {
                **asdict(row),
                "packets_per_second": row.packets_per_second,
                "smbwatch_ratio": ratio_for(row, smbwatch_rate),
            }
            for row in rows
        ],
        "targets": targets,
        "memory_flatness": memory,
        "smbwatch_reports": reports,
        "run_seconds": round(total_seconds, 1),
    }
    (outdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {outdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
