"""Structured events of the live sensor: one JSON line per event, with structlog.

Field names are a public contract (README "Events") and follow the Elastic Common
Schema where it has a name (`source.ip`, `destination.port`, `user.name`,
`event.kind`...), with `smb.*` for the rest. Every event carries `event`, its
name, and `ts`, the packet time (seconds since the epoch) where a packet caused
it. Passwords, hashes and NTLM responses are never in a session record, so
they cannot reach the log.

The logger is passed in: tests use `structlog.testing.capture_logs`.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import structlog

from monitor.detect import Alert
from monitor.pipeline import Endpoints
from monitor.smb.session import SmbConnection

LOG_FORMATS = ("json", "console")


def configure_logger(log_format: str = "json", stream: TextIO | None = None) -> Any:
    """A structlog logger writing one event per line to `stream` (stdout by default)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.wrap_logger(
        structlog.PrintLogger(stream or sys.stdout),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="@timestamp"),
            renderer,
        ],
        cache_logger_on_first_use=True,
    )


class GuardedStream:
    """The event log's output: a write that fails (a closed pipe, a full disk) is reported once to
    `on_failure` and later writes are dropped, instead of an exception escaping from whatever logged,
    in the middle of a packet. `failure` is the error, for the final message."""

    def __init__(self, stream: TextIO, on_failure: Callable[[OSError], None] | None = None) -> None:
        self.stream = stream
        self.on_failure = on_failure
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                self.stream.write(text)
            except OSError as error:
                self._failed(error)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self.stream.flush()
            except OSError as error:
                self._failed(error)

    def _failed(self, error: OSError) -> None:
        self.failure = error
        if self.on_failure is not None:
            self.on_failure(error)


def _peers(endpoints: Endpoints) -> dict[str, Any]:
    return {
        "source.ip": endpoints.client_ip,
        "source.port": endpoints.client_port,
        "destination.ip": endpoints.server_ip,
        "destination.port": endpoints.server_port,
        "network.transport": endpoints.transport,
        "network.community_id": endpoints.community_id,
        "smb.uid": endpoints.uid,
    }


class EventLog:
    """A pipeline observer and alert sink that logs each as one event (a finished connection's facts are
    already in its negotiate, session and tree events)."""

    def __init__(self, logger: Any) -> None:
        self.log = logger
        self._anomalies_logged: Counter[str] = Counter()

    def negotiated(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        self.log.info(
            "negotiate",
            ts=ts,
            **_peers(endpoints),
            **{
                "smb.dialect": connection.dialect,
                "smb.dialects_offered": connection.dialects_offered[:16],
                "smb.smb1_offered": connection.smb1_offered,
                "smb.smb1_used": connection.smb1_used,
                "smb.signing_required": connection.signing_required,
            },
        )

    def smb1_used(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        """Covered by the negotiate event and the smb1_negotiated alert."""

    def session_setup(self, endpoints: Endpoints, session: dict[str, Any], status: int, ts: float) -> None:
        kerberos = session.get("kerberos") or {}
        self.log.info(
            "session_setup",
            ts=ts,
            **_peers(endpoints),
            **{
                "user.name": session.get("user"),
                "user.domain": session.get("domain"),
                "smb.workstation": session.get("workstation"),
                "smb.auth": session.get("auth"),
                "smb.status": session.get("status"),
                "smb.session_id": session.get("session_id"),
                "smb.session_flags": session.get("session_flags"),
                "smb.kerberos.realm": kerberos.get("realm"),
                "smb.kerberos.service_principal": kerberos.get("service_principal"),
                "smb.kerberos.weak_cipher": kerberos.get("weak_cipher"),
            },
        )

    def tree_connect(self, endpoints: Endpoints, tree: dict[str, Any], ts: float) -> None:
        self.log.info(
            "tree_connect",
            ts=ts,
            **_peers(endpoints),
            **{
                "smb.tree.path": tree.get("path"),
                "smb.tree.share_type": tree.get("share_type"),
                "smb.status": tree.get("status"),
                "smb.session_id": tree.get("session_id"),
            },
        )

    def alert(self, alert: Alert) -> None:
        joined = alert.describe()
        client, server = joined["client"] or {}, joined["server"] or {}
        self.log.warning(
            "alert",
            ts=alert.ts,
            **{
                "source.ip": alert.src,
                "source.port": client.get("port"),
                "destination.ip": alert.dst,
                "destination.port": server.get("port"),
                "network.community_id": joined["community_id"],
                "smb.uid": joined["uid"],
                "smb.source_file": joined["source_file"],
                "smb.connections": joined["connections"],
                "alert.kind": alert.kind,
                "alert.detail": alert.detail,
            },
        )

    def statistics(self, fields: Mapping[str, Any]) -> None:
        self.log.info("capture_statistics", **fields)

    def anomalies(self, totals: Mapping[str, int]) -> None:
        """Rate-limited by construction: called with running totals once per statistics period, it logs
        one event with the kinds that grew since the last call, if any."""
        grown = {kind: count - self._anomalies_logged[kind] for kind, count in totals.items()}
        grown = {kind: delta for kind, delta in sorted(grown.items()) if delta > 0}
        if grown:
            self.log.warning("anomalies", **{"smb.anomalies": grown})
            self._anomalies_logged.update(grown)

    def lifecycle(self, event: str, **fields: Any) -> None:
        self.log.info(event, **fields)

    def failure(self, event: str, **fields: Any) -> None:
        """Something went wrong (`capture_error`, `reload_failed`): logged at level error."""
        self.log.error(event, **fields)
