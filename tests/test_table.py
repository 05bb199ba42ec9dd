"""The readable tables of `smbwatch analyze`: ISO 8601 times, key=value evidence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.report import alert_evidence, format_time

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
ETERNALBLUE = PCAPS / "crafted" / "eternalblue_patterns.pcap"


def table(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    main(["analyze", *map(str, args)])
    return capsys.readouterr().out


def section(out: str, title: str) -> list[str]:
    """The lines of one table, from its title to the blank line after it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


@pytest.fixture
def timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "EST+5")  # POSIX: five hours west of UTC, no daylight saving
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_are_iso_8601_utc(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, ETERNALBLUE)
    assert "smb1_negotiated  2023-11-14T22:21:40.000400Z  192.0.2.66 -> 192.0.2.20" in out
    assert "1700000500" not in out


def test_local_time_has_its_offset(capsys: pytest.CaptureFixture[str], timezone: None) -> None:
    out = table(capsys, "--local-time", ETERNALBLUE)
    assert "smb1_negotiated  2023-11-14T17:21:40.000400-05:00  192.0.2.66" in out


def test_format_time() -> None:
    assert format_time(1525133454.078881) == "2018-05-01T00:10:54.078881Z"
    assert format_time(0.0) == "1970-01-01T00:00:00.000000Z"
    assert format_time(1e300) == f"{1e300:.6f}"  # no calendar has it: seconds, not a traceback


def test_evidence_is_key_value_pairs_without_python_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, ETERNALBLUE)
    alerts = section(out, "KIND ")
    assert len(alerts) == 5
    assert not any(char in line for line in alerts for char in "[]{}'")
    assert 'dialects_offered="NT LANMAN 1.0","NT LM 0.12" client_port=49301' in alerts[1]
    assert "weak_signals=pid_0xfeff,mid_65 server_port=445" in alerts[2]
    assert "window_seconds=60 " in alerts[4]


def test_alert_evidence_flattens_and_escapes() -> None:
    detail = {
        "pattern": "x",
        "nested": {"a": 1, "deeper": {"b": True}},
        "hosts": ["192.0.2.1", "192.0.2.2"],
        "user": "ev\x07il",
        "empty": [],
        "none": None,
        "spaced": "two words",
        "quote": 'say "hi"',
        "blank_item": ["NT LM 0.12", ""],
    }
    assert alert_evidence(detail) == (
        "pattern=x nested.a=1 nested.deeper.b=yes hosts=192.0.2.1,192.0.2.2 user=ev\\x07il "
        'spaced="two words" quote="say \\"hi\\"" blank_item="NT LM 0.12",""'
    )
    assert alert_evidence(detail).isprintable()
