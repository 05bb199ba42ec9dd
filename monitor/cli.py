"""The `smbwatch` command: reads options, wires the pipeline to its sinks, reports.

This is the only module that reads configuration; everything it builds is
handed what it needs (limits, sinks, output streams).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from monitor.capture import CaptureError, CaptureFile
from monitor.flows import FlowLimits
from monitor.inventory import Inventory
from monitor.pipeline import Pipeline
from monitor.report import Analysis, SourceResult, build_smb1_report, write_json, write_smb1_table, write_table

EXIT_OK = 0
EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smbwatch", description="Passive SMB traffic monitor.")
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
    return parser


def analyze_files(paths: Sequence[str], limits: FlowLimits, max_connections: int) -> Analysis:
    """Run every file through one pipeline (flows continue across files, as in rotated captures)."""
    inventory = Inventory(max_records=max_connections)
    pipeline = Pipeline(limits, sinks=[inventory])
    analysis = Analysis(pipeline=pipeline, inventory=inventory)
    for path in paths:
        capture = CaptureFile(path)
        source = SourceResult(capture)
        analysis.sources.append(source)
        try:
            pipeline.feed(capture)
        except CaptureError as error:
            source.error = error
    pipeline.finish()
    return analysis


def run_analyze(args: argparse.Namespace) -> int:
    limits = FlowLimits(max_flows=args.max_flows)
    analysis = analyze_files(args.files, limits, args.max_connections)
    for source in analysis.sources:
        if source.error:
            print(f"smbwatch: error: {source.error}", file=sys.stderr)
    if args.report == "smb1":
        if args.format == "json":
            json.dump(build_smb1_report(analysis), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            write_smb1_table(analysis, sys.stdout)
    elif args.format == "json":
        write_json(analysis, sys.stdout)
    else:
        write_table(analysis, sys.stdout)
    return EXIT_INPUT_ERROR if analysis.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        if args.max_flows < 1 or args.max_connections < 0:
            print("smbwatch: error: --max-flows must be >= 1 and --max-connections >= 0", file=sys.stderr)
            return EXIT_USAGE
        try:
            return run_analyze(args)
        except BrokenPipeError:
            return EXIT_OK
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
