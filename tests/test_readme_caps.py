"""README's "Caps and limits" and "Anomalies" sections (issue 15) stay true to the code: every
anomaly kind is explained, every configurable cap is in the caps table with its real default, and
every default the table claims for a flag, a configuration key or a constant is the one in force."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

from dissectors.records import AnomalyKind
from monitor.cli import build_parser
from monitor.config import SensorConfig
from monitor.detect import DetectionSettings
from monitor.tcp.flows import FlowLimits

ROOT = Path(__file__).resolve().parents[1]

# Caps that are configuration keys but not named max_*.
OTHER_CONFIGURED_CAPS = {("detection", "scan_probation_slots"), ("capture", "buffer_mb")}
CONFIG_KEY = re.compile(r"`\[(\w+)\] (\w+)`")
FLAG = re.compile(r"`(--[a-z][a-z-]*)`")
CONSTANT = re.compile(r"`([A-Z][A-Z0-9_]*)` in `([\w/]+)\.py`")
# A default as the table writes it: digits grouped by commas (100,000), optionally with decimals.
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?")


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"\n### {title}\n") + 1 :]
    return section[: section.index("\n#", 1)]


def table_rows(section: str) -> list[list[str]]:
    """The cells of each body row of the first table in `section`."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    return cells[2:]  # the header and the |---| line


def caps_table() -> list[dict[str, str]]:
    rows = table_rows(readme_section("Caps and limits"))
    assert rows, "README has no caps table"
    assert all(len(row) == 4 for row in rows), [row for row in rows if len(row) != 4]
    return [dict(zip(("cap", "default", "set_with", "when_hit"), row, strict=True)) for row in rows]


def default_number(cell: str) -> float:
    """The leading number of a default cell ("262,144 bytes (256 KiB)" -> 262144)."""
    match = NUMBER.match(cell)
    assert match is not None, f"default {cell!r} does not start with a number"
    return float(match.group().replace(",", ""))


def config_keys(section_type: type) -> list[str]:
    return [field.name for field in dataclasses.fields(section_type)]


def test_every_anomaly_kind_is_in_the_readme_anomalies_table() -> None:
    rows = table_rows(readme_section("Anomalies"))
    documented = [name for row in rows for name in re.findall(r"^`([a-z0-9_]+)`$", row[0])]
    kinds = [kind.value for kind in AnomalyKind]
    assert sorted(set(kinds) - set(documented)) == [], "anomaly kinds missing from README's Anomalies table"
    assert sorted(set(documented) - set(kinds)) == [], "README documents anomaly kinds that do not exist"
    assert len(documented) == len(set(documented)), "an anomaly kind is listed twice"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{kind}`" in readme for kind in kinds)
    assert all(len(row) == 2 and row[1] for row in rows), "every anomaly needs one line on what it means"


def test_every_configured_cap_is_in_the_caps_table_with_its_default() -> None:
    config = SensorConfig()
    caps = {
        (section.name, name)
        for section in dataclasses.fields(SensorConfig)
        for name in config_keys(type(getattr(config, section.name)))
        if name.startswith("max_")
    } | OTHER_CONFIGURED_CAPS
    # FlowLimits and DetectionSettings are the sensor's [flows] and [detection]: all their caps included.
    assert {("flows", name) for name in config_keys(FlowLimits) if name.startswith("max_")} <= caps
    assert {("detection", name) for name in config_keys(DetectionSettings) if name.startswith("max_")} <= caps
    documented: dict[tuple[str, str], list[float]] = {}
    for row in caps_table():
        for section, key in CONFIG_KEY.findall(row["set_with"]):
            documented.setdefault((section, key), []).append(default_number(row["default"]))
    missing = sorted(caps - set(documented))
    assert missing == [], f"caps missing from README's caps table: {missing}"
    for (section, key), defaults in sorted(documented.items()):
        actual = getattr(getattr(config, section), key)  # an unknown key fails here
        assert defaults == [actual] * len(defaults), f"[{section}] {key}: README says {defaults}, code {actual}"


def test_every_flag_and_constant_in_the_caps_table_has_the_default_it_claims() -> None:
    analyze = build_parser().parse_args(["analyze", "capture.pcap"])
    flags = constants = 0
    for row in caps_table():
        claimed = default_number(row["default"])
        for flag in FLAG.findall(row["set_with"]):
            flags += 1
            actual = getattr(analyze, flag.removeprefix("--").replace("-", "_"))
            assert claimed == actual, f"{flag}: README says {claimed}, code {actual}"
        for name, path in CONSTANT.findall(row["set_with"]):
            constants += 1
            actual = getattr(importlib.import_module(path.replace("/", ".")), name)
            assert claimed == actual, f"{name} in {path}.py: README says {claimed}, code {actual}"
    assert flags >= 3 and constants >= 30  # the patterns still match the table


def test_every_time_out_is_listed_with_its_default() -> None:
    section = readme_section("Caps and limits")
    listed = {name: float(value) for name, value in re.findall(r"^- `(\w+)` ([\d.]+) s:", section, re.MULTILINE)}
    limits, settings = FlowLimits(), DetectionSettings()
    expected = {name: getattr(limits, name) for name in config_keys(FlowLimits) if not name.startswith("max_")}
    expected["answer_timeout"] = settings.answer_timeout
    assert listed == expected
