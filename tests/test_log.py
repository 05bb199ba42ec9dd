"""Structured events: one per negotiate, session setup, tree connect and alert, with the documented
field names, no secrets, and one JSON object per line when rendered."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from monitor.config import SensorConfig
from monitor.input.capture import CaptureFile
from monitor.output.events import EventLog, configure_logger
from monitor.sensor import build_parts

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
PEER_FIELDS = {"source.ip", "source.port", "destination.ip", "destination.port", "network.transport"}


def events_of(*names: str) -> list[dict]:
    with capture_logs() as captured:
        # A logger from structlog's global configuration, which capture_logs replaces for the block.
        parts = build_parts(SensorConfig(), CollectorRegistry(), structlog.get_logger(), "test")
        for name in names:
            parts.pipeline.feed(CaptureFile(str(PCAPS / name)))
        parts.pipeline.finish()
    return captured


def test_a_login_gives_negotiate_session_and_tree_events() -> None:
    events = events_of("recorded/auth_ntlmv2_smb2.pcap")
    names = [event["event"] for event in events]
    assert names.count("negotiate") == 1 and names.count("session_setup") == 1 and names.count("tree_connect") == 2
    negotiate = next(event for event in events if event["event"] == "negotiate")
    assert set(negotiate) >= PEER_FIELDS
    assert negotiate["smb.dialect"] == "3.1.1" and negotiate["destination.port"] == 445
    session = next(event for event in events if event["event"] == "session_setup")
    assert (session["user.name"], session["user.domain"], session["smb.auth"]) == ("alice", "SMBWLAB", "ntlmv2")
    assert session["smb.status"] == "STATUS_SUCCESS" and session["ts"] > 1.6e9
    trees = [event["smb.tree.path"] for event in events if event["event"] == "tree_connect"]
    assert [path.rsplit("\\", 1)[-1] for path in trees] == ["IPC$", "data"]


def test_no_password_or_hash_reaches_the_log() -> None:
    """The plaintext capture sends the password in clear; the NTLM ones send responses."""
    events = events_of(
        "recorded/auth_plaintext_smb1.pcap", "recorded/auth_ntlmv1.pcap", "recorded/auth_ntlmv2_smb1.pcap"
    )
    text = json.dumps(events, default=str)
    assert "Passw0rd" not in text  # the lab password
    for event in events:
        assert not {key for key in event if "password" in key.lower() or "response" in key.lower() or "hash" in key}


def test_alerts_are_warnings_with_kind_and_evidence() -> None:
    events = events_of("crafted/doublepulsar_patterns.pcap")
    alerts = [event for event in events if event["event"] == "alert"]
    assert {event["alert.kind"] for event in alerts} == {"smb1_negotiated", "doublepulsar"}
    assert all(event["log_level"] == "warning" and "alert.detail" in event for event in alerts)


def test_json_rendering_is_one_object_per_line() -> None:
    stream = io.StringIO()
    log = EventLog(configure_logger("json", stream))
    log.lifecycle("start", version="1")
    log.anomalies({"not_smb": 2})
    log.anomalies({"not_smb": 2})  # nothing new: no line
    log.anomalies({"not_smb": 5, "smb1_malformed": 1})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["start", "anomalies", "anomalies"]
    assert lines[2]["smb.anomalies"] == {"not_smb": 3, "smb1_malformed": 1}
    assert all("@timestamp" in line and line["@timestamp"].endswith("Z") for line in lines)


def test_console_format_is_readable() -> None:
    stream = io.StringIO()
    EventLog(configure_logger("console", stream)).lifecycle("start", version="1")
    assert "start" in stream.getvalue() and "version=1" in stream.getvalue()


def test_failures_are_logged_at_level_error() -> None:
    stream = io.StringIO()
    log = EventLog(configure_logger("json", stream))
    log.failure("reload_failed", error="smbwatch.toml: not valid TOML")
    log.lifecycle("reload_skipped", reason="nothing to reload")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("reload_failed", "error"),
        ("reload_skipped", "info"),
    ]


# How monitor/ names an event: EventLog.lifecycle/failure("name", ...) or self.log.<level>("name", ...).
EVENT_CALL = re.compile(r"\.(?:lifecycle|failure|info|warning|error)\(\s*\"([a-z_]+)\"")


def readme_events() -> set[str]:
    """The event names in the first column of README's events table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Events") :]
    section = section[: section.index("\n#", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_every_event_the_sensor_emits_is_in_the_readme() -> None:
    emitted = {name for path in (ROOT / "monitor").rglob("*.py") for name in EVENT_CALL.findall(path.read_text())}
    assert {"start", "stop", "alert", "negotiate", "reload_failed", "reload_skipped", "capture_error"} <= emitted
    assert emitted - readme_events() == set()
