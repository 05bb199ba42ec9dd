"""The `smbwatch` command: reads options, wires the pipeline to its sinks, reports.

This is the only module that reads configuration; everything it builds is
handed what it needs (limits, sinks, output streams).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from monitor.config import (
    DEFAULT_BPF_FILTER,
    DEFAULT_LISTEN_ADDRESS,
    DEFAULT_TELEMETRY_PATH,
    ConfigError,
    SensorConfig,
    load_config,
    parse_listen_address,
    validate,
)
from monitor.detect import DetectionSettings, Detector, parse_networks
from monitor.input.capture import CaptureError, CaptureFile, LiveCapture, ReadInterrupt, ReadInterrupted
from monitor.output.events import LOG_FORMATS, GuardedStream, configure_logger
from monitor.output.inventory import DEFAULT_MAX_HOSTS, Inventory
from monitor.output.report import Analysis, SourceResult, build_smb1_report, write_json, write_smb1_table, write_table
from monitor.pipeline import Pipeline
from monitor.tcp.flows import FlowLimits

if TYPE_CHECKING:
    from monitor.sensor import FrameSource

# The sensor's parts (prometheus_client, the HTTP exporter, asyncio) and the package metadata are
# imported when `sniff` or `--version` needs them: `analyze` starts a fifth faster without them.


@cache
def package_version() -> str:
    """The installed package's version ("0+unknown" in a source tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smbwatch")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _VersionAction(argparse.Action):
    """--version, looking the version up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"smbwatch {package_version()}")
        parser.exit()


EXIT_OK = 0
EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2
# Stopped by a signal: 128 + its number, as a shell reports it (130 for SIGINT, 143 for SIGTERM).
EXIT_SIGNAL_BASE = 128


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smbwatch", description="Passive SMB traffic monitor.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser(
        "analyze",
        help="analyse pcap/pcapng files",
        description="Analyse recorded captures (pcap, pcapng, gzip-compressed; '-' reads standard input).",
    )
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    analyze.add_argument(
        "--report",
        choices=("inventory", "smb1"),
        default="inventory",
        help="inventory: connections, sessions, alerts, hosts; smb1: the SMB1 retirement report (default: %(default)s)",
    )
    analyze.add_argument(
        "--local-time",
        action="store_true",
        help="table times in local time with its UTC offset (default: UTC, ISO 8601 with a Z)",
    )
    analyze.add_argument(
        "--max-flows",
        type=int,
        default=FlowLimits().max_flows,
        help="concurrent TCP flows tracked (default: %(default)s)",
    )
    analyze.add_argument(
        "--max-connections",
        type=int,
        default=1_000_000,
        help="connection records listed in the report (kept on disk); hosts always count all (default: %(default)s)",
    )
    analyze.add_argument(
        "--max-hosts",
        type=int,
        default=DEFAULT_MAX_HOSTS,
        help="hosts listed (about 0.7 KiB each); more are counted, not listed (default: %(default)s)",
    )
    analyze.add_argument(
        "--smb1-allow",
        action="append",
        default=[],
        metavar="ADDRESS[/BITS]",
        help="a known legacy device allowed SMB1: reported as allowed, no smb1_negotiated alert (repeatable)",
    )
    sniff = commands.add_parser(
        "sniff",
        help="run as a live sensor: capture, export Prometheus metrics, log JSON events",
        description="Capture SMB on interfaces (or replay a capture file) with the exporter and event log running.",
    )
    source = sniff.add_mutually_exclusive_group()
    source.add_argument("-i", "--interface", action="append", dest="interfaces", metavar="IFACE", help="repeatable")
    source.add_argument("--replay", metavar="FILE", help="feed a capture file through the live pipeline")
    sniff.add_argument("--filter", help=f"kernel BPF filter (default: {DEFAULT_BPF_FILTER!r})")
    sniff.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = as fast as possible")
    sniff.add_argument("--exit-after-replay", action="store_true", help="exit at the end of the replayed file")
    sniff.add_argument("--config", metavar="FILE", help="TOML configuration (flags override it; SIGHUP reloads it)")
    sniff.add_argument("--web.listen-address", dest="listen_address", help=f"default {DEFAULT_LISTEN_ADDRESS!r}")
    sniff.add_argument("--web.telemetry-path", dest="telemetry_path", help=f"default {DEFAULT_TELEMETRY_PATH!r}")
    sniff.add_argument("--log-format", choices=LOG_FORMATS, help="json (default) or console")
    sniff.add_argument("--log-file", help="append events here instead of standard output")
    sniff.add_argument("--statistics-interval", type=float, help="seconds between capture statistics events")
    return parser


def analyze_files(
    paths: Sequence[str],
    limits: FlowLimits,
    max_connections: int,
    settings: DetectionSettings | None = None,
    max_hosts: int = DEFAULT_MAX_HOSTS,
    interrupt: ReadInterrupt | None = None,
) -> Analysis:
    """Run every file through one pipeline (flows continue across files, as in rotated captures).

    A request on `interrupt` stops the reading (the file being read gets an error saying so, later
    files are not read); what was read is analysed as usual.
    """
    inventory = Inventory(max_records=max_connections, max_hosts=max_hosts)
    pipeline = Pipeline(limits, sinks=[inventory], detector=Detector(settings))
    analysis = Analysis(pipeline=pipeline, inventory=inventory)
    for path in paths:
        capture = CaptureFile(path, interrupt)
        source = SourceResult(capture)
        analysis.sources.append(source)
        pipeline.source_file = capture.name
        try:
            pipeline.feed(capture)
        except CaptureError as error:
            source.error = error
        except ReadInterrupted as stop:
            name = signal.Signals(stop.signum).name
            source.error = CaptureError(capture.name, f"reading interrupted by {name} after {capture.frames} frames")
            break
    pipeline.finish()
    return analysis


class _StopSignals:
    """SIGINT and SIGTERM during `analyze`: the first stops the reading (the report of what was read
    follows), a second one exits at once without a report. Restores the previous handlers on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.interrupt = ReadInterrupt()
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.interrupt.signum is not None:
            raise SystemExit(EXIT_SIGNAL_BASE + signum)
        self.interrupt.request(signum)

    def __enter__(self) -> ReadInterrupt:
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self.interrupt

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def run_analyze(args: argparse.Namespace) -> int:
    limits = FlowLimits(max_flows=args.max_flows)
    settings = DetectionSettings(smb1_allow=tuple(args.smb1_allow))
    with _StopSignals() as interrupt:
        analysis = analyze_files(args.files, limits, args.max_connections, settings, args.max_hosts, interrupt)
        for source in analysis.sources:
            if source.error:
                print(f"smbwatch: error: {source.error}", file=sys.stderr)
        write_analysis(analysis, args)
    if interrupt.signum is not None:
        return EXIT_SIGNAL_BASE + interrupt.signum
    return EXIT_INPUT_ERROR if analysis.failed else EXIT_OK


def write_analysis(analysis: Analysis, args: argparse.Namespace) -> None:
    """The report `args` asked for, on standard output."""
    if args.report == "smb1":
        if args.format == "json":
            json.dump(build_smb1_report(analysis), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            write_smb1_table(analysis, sys.stdout)
    elif args.format == "json":
        write_json(analysis, sys.stdout)
    else:
        write_table(analysis, sys.stdout, local_time=args.local_time)


# Which configuration key each `sniff` flag overrides.
SNIFF_FLAG_KEYS = {
    "interfaces": ("capture", "interfaces"),
    "filter": ("capture", "filter"),
    "listen_address": ("exporter", "listen_address"),
    "telemetry_path": ("exporter", "telemetry_path"),
    "log_format": ("logging", "format"),
    "log_file": ("logging", "file"),
    "statistics_interval": ("logging", "statistics_interval"),
}


def sniff_config(args: argparse.Namespace) -> SensorConfig:
    """The configuration file's values with the flags given on the command line over them."""
    config = load_config(args.config)
    for flag, (section, key) in SNIFF_FLAG_KEYS.items():
        given = getattr(args, flag)
        if given is not None:
            setattr(getattr(config, section), key, given)
    validate(config)
    if not args.replay and not config.capture.interfaces:
        raise ConfigError("capture.interfaces: give -i IFACE (or --replay FILE)")
    return config


def run_sniff(args: argparse.Namespace) -> int:
    try:
        config = sniff_config(args)
    except ConfigError as error:
        print(f"smbwatch: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        log_stream = open(config.logging.file, "a", buffering=1) if config.logging.file else sys.stdout  # noqa: SIM115
    except OSError as error:
        print(
            f"smbwatch: error: logging.file: cannot open {config.logging.file!r}: {error.strerror or error}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # A failed event write stops the sensor (set below, once it exists) instead of raising mid-packet.
    event_output = GuardedStream(log_stream)
    logger = configure_logger(config.logging.format, event_output)  # type: ignore[arg-type]
    from prometheus_client import CollectorRegistry

    from monitor.output.exporter import Exporter
    from monitor.sensor import LiveSource, ReplaySource, Sensor, build_parts

    registry = CollectorRegistry()
    parts = build_parts(config, registry, logger, package_version())
    try:
        source: FrameSource = (
            ReplaySource(args.replay, args.speed)
            if args.replay
            else LiveSource(
                LiveCapture(config.capture.interfaces, config.capture.filter, config.capture.buffer_mb << 20)
            )
        )
    except CaptureError as error:
        print(f"smbwatch: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    host, port = parse_listen_address(config.exporter.listen_address)
    try:
        exporter = Exporter(
            registry,
            host,
            port,
            config.exporter.telemetry_path,
            config.exporter.tls_cert_file,
            config.exporter.tls_key_file,
            config.exporter.basic_auth_users,
        )
    except OSError as error:
        print(f"smbwatch: error: cannot listen on {config.exporter.listen_address}: {error}", file=sys.stderr)
        source.stop()
        return EXIT_INPUT_ERROR
    sensor = Sensor(parts, source, config.logging.statistics_interval)
    event_output.on_failure = lambda error: sensor.stop()

    def reload() -> None:
        try:
            sensor.reload(load_config(args.config).detection)
        except ConfigError as error:
            parts.events.failure("reload_failed", error=str(error))

    if args.config:
        sensor.on_reload = reload
    signal.signal(signal.SIGTERM, lambda signum, frame: sensor.stop())
    signal.signal(signal.SIGINT, lambda signum, frame: sensor.stop())
    # Without --config there is nothing to reload: the sensor says so (SIGHUP's default would kill it).
    signal.signal(signal.SIGHUP, lambda signum, frame: sensor.request_reload())
    parts.events.lifecycle(
        "start",
        version=package_version(),
        **{
            "capture.interfaces": config.capture.interfaces or ["replay"],
            "capture.filter": None if args.replay else config.capture.filter,
            "capture.replay": args.replay,
            "exporter.address": f"{host or '0.0.0.0'}:{exporter.port}{config.exporter.telemetry_path}",
        },
    )
    try:
        sensor.run()
        if args.replay and not args.exit_after_replay and not sensor.stopping:
            parts.events.lifecycle("replay_finished", **{"capture.replay": args.replay})
            sensor.serve_until_stopped()
    finally:
        parts.events.lifecycle("stop", error=str(sensor.error) if sensor.error else None)
        exporter.close()
        if isinstance(source, LiveSource):
            source.close()
        if log_stream is not sys.stdout:
            with contextlib.suppress(OSError):  # a failed write already said what went wrong
                log_stream.close()
    if event_output.failure is not None:
        where = config.logging.file or "standard output"
        if isinstance(event_output.failure, BrokenPipeError):
            _discard_stdout()
            print(f"smbwatch: error: cannot write events to {where}: the reader went away; stopped", file=sys.stderr)
        else:
            reason = event_output.failure.strerror or event_output.failure
            print(f"smbwatch: error: cannot write events to {where}: {reason}; stopped", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return EXIT_INPUT_ERROR if sensor.error else EXIT_OK


def _discard_stdout() -> None:
    """After the reader of standard output went away: point it at /dev/null, so what is still buffered
    does not fail again (with a traceback-like "Exception ignored" message) when the interpreter exits."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real descriptor (tests capture stdout)
        pass


# The cyclic garbage collector's first generation threshold. The pipeline makes almost no reference
# cycles, yet at the default (700 allocations) a SYN flood runs a collection every few hundred packets,
# and the older generations walk the flood's 100,000 waiting attempts again and again: 17 % of the time
# on 1.56 M SYNs (bench/). Memory is bounded by the caps, not by the collector.
GC_THRESHOLD = (10_000, 10, 10)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    gc.set_threshold(*GC_THRESHOLD)
    if args.command == "sniff":
        return run_sniff(args)
    if args.command == "analyze":
        if args.max_flows < 1 or args.max_connections < 0 or args.max_hosts < 1:
            print("smbwatch: error: --max-flows and --max-hosts must be >= 1, --max-connections >= 0", file=sys.stderr)
            return EXIT_USAGE
        try:
            parse_networks(args.smb1_allow)
        except ValueError as error:
            print(f"smbwatch: error: --smb1-allow: {error}", file=sys.stderr)
            return EXIT_USAGE
        try:
            return run_analyze(args)
        except BrokenPipeError:
            # The reader of the report went away (`smbwatch analyze x.pcap | head -1`): it has what it wanted.
            _discard_stdout()
            return EXIT_OK
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
