"""The readable tables of `smbwatch analyze`: ISO 8601 times, key=value evidence, folded sessions, alerts
by source host, Kerberos realm and service, the legend and midstream connections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.output import report
from monitor.output.report import LEGEND, alert_evidence, format_time

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
ETERNALBLUE = PCAPS / "crafted" / "eternalblue_patterns.pcap"
MIDSTREAM = PCAPS / "crafted" / "midstream.pcap"


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


def test_identical_sessions_fold_into_one_row_with_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, PCAPS / "recorded" / "auth_wrong_password.pcap")
    sessions = section(out, "Sessions")
    assert sessions[0] == "Sessions (3, in 1 row)"
    [row] = sessions[2:]
    assert row.split() == ["192.0.2.10", "->", "192.0.2.20:445", "alice@SMBWLAB", "SMBWLAB-CLI", "ntlmv2",
                           "LOGON_FAILURE", "-", "x3"]  # fmt: skip


def test_different_sessions_are_not_folded(capsys: pytest.CaptureFixture[str]) -> None:
    sessions = section(table(capsys, PCAPS / "recorded" / "nmap_ms17_010.pcap"), "Sessions")
    assert sessions[0] == "Sessions (2)" and len(sessions) == 4
    assert not any(line.endswith("x1") for line in sessions)


def test_alerts_are_summarised_by_source_host_before_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, ETERNALBLUE, PCAPS / "recorded" / "nmap_ms17_010.pcap")
    lines = out.splitlines()
    summary = lines.index("SOURCE      ALERTS BY KIND")
    assert lines[summary + 1 : summary + 3] == [
        "192.0.2.66  eternalblue 3, smb1_negotiated 1",
        "192.0.2.10  ms17_010_probe 1, smb1_negotiated 1",
    ]
    assert lines[summary - 1] == "Alerts (6)" and lines[summary + 4].startswith("KIND ")


def test_kerberos_sessions_show_realm_and_service(capsys: pytest.CaptureFixture[str]) -> None:
    [_, _, row] = section(table(capsys, PCAPS / "recorded" / "auth_kerberos.pcap"), "Sessions")
    assert "?@LAB.SMBWATCH.TEST for cifs/dc.lab.smbwatch.test" in row and " kerberos " in row


def test_a_legend_explains_the_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, PCAPS / "recorded" / "smb3_1_1.pcap")
    assert out.splitlines()[0] == LEGEND == "(? = not seen or unknown, - = none)"


def test_midstream_connections_and_hosts_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, MIDSTREAM)
    [_, _, connection] = section(out, "SMB connections")
    assert connection.split()[3:5] == ["tcp445", "midstream"]
    hosts = section(out, "Hosts")
    assert hosts[2].split() == ["192.0.2.10", "client", "midstream", "-", "-"]
    assert hosts[3].split() == ["192.0.2.20", "server", "-", "midstream", "-"]


def test_a_host_also_seen_from_the_start_shows_its_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    hosts = section(table(capsys, MIDSTREAM, PCAPS / "recorded" / "smb3_1_1.pcap"), "Hosts")
    assert hosts[2].split() == ["192.0.2.10", "client", "3.1.1", "-", "-"]
    assert hosts[3].split() == ["192.0.2.20", "server", "-", "3.1.1", "-"]


def test_the_folded_rows_are_capped(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_SESSION_ROWS", 1)
    out = table(capsys, PCAPS / "recorded" / "nmap_ms17_010.pcap")
    sessions = section(out, "Sessions")
    assert sessions[0] == "Sessions (2, in 1 row)" and len(sessions) == 4
    assert sessions[3] == "1 more sessions not listed (row cap); the JSON output has them"
