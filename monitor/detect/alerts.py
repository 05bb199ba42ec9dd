"""An alert and what every rule family shares: the detector's settings, `_raise` and the list of
recent connections an alert that spans connections names."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.detect.settings import DetectionSettings
from monitor.tcp.identity import ConnectionRef

# Alerts that span connections list this many of them (the most recent).
MAX_CONNECTIONS_PER_ALERT = 16


@dataclass(frozen=True, slots=True)
class Alert:
    """One detection: what, when (packet time of the evidence), from where to where, the evidence,
    and the connection it is about (for alerts spanning connections: the one that completed the
    evidence, and up to `MAX_CONNECTIONS_PER_ALERT` of them in `connections`)."""

    kind: str
    ts: float
    src: str
    dst: str
    detail: dict[str, Any]
    connection: ConnectionRef | None = None
    connections: tuple[ConnectionRef, ...] = ()

    def describe(self) -> dict[str, Any]:
        joined = (
            self.connection.describe()
            if self.connection is not None
            else {"client": None, "server": None, "uid": None, "community_id": None, "source_file": None}
        )
        return {
            "kind": self.kind,
            "ts": self.ts,
            "src": self.src,
            "dst": self.dst,
            "detail": self.detail,
            **joined,
            "connections": [connection.describe() for connection in self.connections],
        }


AlertSink = Callable[[Alert], None]


def keep_recent(connections: list[ConnectionRef], connection: ConnectionRef) -> None:
    """The most recent `MAX_CONNECTIONS_PER_ALERT` connections of a pattern, oldest first."""
    connections.append(connection)
    if len(connections) > MAX_CONNECTIONS_PER_ALERT:
        del connections[0]


class RuleBase:
    """What every rule family uses of the detector (`monitor.detect.Detector`): its settings, the
    counters of what its capped memories forgot, and `_raise`, which counts an alert and hands it on."""

    _settings: DetectionSettings
    pairs_evicted: Counter[str]

    @property
    def settings(self) -> DetectionSettings:
        return self._settings

    def _raise(self, alert: Alert) -> Alert:
        raise NotImplementedError
