"""EternalBlue's pool grooming across connections: one source opening several connections to one
server with a zeroed header in a 0x00FFF7-byte frame (`monitor.detect.ms17_010` recognises each)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from monitor.detect.alerts import Alert, RuleBase, keep_recent
from monitor.detect.ms17_010 import ALERT_ETERNALBLUE
from monitor.tcp.identity import ConnectionRef


class GroomingRules(RuleBase):
    """The grooming rule's part of the detector."""

    _grooming_pairs: OrderedDict[tuple[str, str], Grooming]

    def _grooming_connection(
        self, client: str, server: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]
    ) -> Alert | None:
        settings = self.settings
        pair = (client, server)
        grooming = self._grooming_pairs.pop(pair, None) or Grooming()
        self._grooming_pairs[pair] = grooming  # most recently active last
        if len(self._grooming_pairs) > settings.max_grooming_pairs:
            self._grooming_pairs.popitem(last=False)
            self.pairs_evicted["grooming"] += 1
        horizon = ts - settings.grooming_window
        grooming.times = [t for t in grooming.times if t >= horizon][-settings.grooming_connections :]
        grooming.times.append(ts)
        keep_recent(grooming.connections, connection)
        if len(grooming.times) >= settings.grooming_connections and (
            grooming.alerted_at is None or ts - grooming.alerted_at >= settings.grooming_alert_period
        ):
            grooming.alerted_at = ts
            detail = {
                "pattern": "srvnet_grooming",
                "verdict": "exploit attempt: pool grooming connections (zeroed header, NetBIOS length 0x00FFF7)",
                "connections": len(grooming.times),
                "window_seconds": settings.grooming_window,
                **evidence,
            }
            return self._raise(
                Alert(ALERT_ETERNALBLUE, ts, client, server, detail, connection, tuple(grooming.connections))
            )
        return None


class Grooming:
    """Recent grooming connections of one source to one server (times, capped)."""

    __slots__ = ("alerted_at", "connections", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.connections: list[ConnectionRef] = []
        self.alerted_at: float | None = None
