"""Detections: rules over per-connection state that turn facts into alerts.

So far: SMBv1 use (`smb1_negotiated`), raised once per client/server pair per
period rather than per packet or per connection, and MS17-010 probes
(`ms17_010_probe`, with what the server's answer says about its patch level). The pair memory is capped
(least recently alerted pairs are forgotten first), and so is the list of
alerts kept for a report; what the caps drop is counted.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALERT_SMB1_NEGOTIATED = "smb1_negotiated"
ALERT_MS17_010_PROBE = "ms17_010_probe"

# [MS-CIFS] 2.2.5.4 TRANS_PEEK_NMPIPE: the subcommand scanners for MS17-010 send on FID 0.
TRANS_PEEK_NMPIPE = 0x0023
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_INVALID_HANDLE = 0xC0000008


def is_ms17_010_probe(setup: tuple[int, ...], name: str) -> bool:
    """A TRANSACTION PeekNamedPipe on FID 0 to \\PIPE\\: what MS17-010 checkers (nmap, Metasploit) send."""
    return len(setup) >= 2 and setup[0] == TRANS_PEEK_NMPIPE and setup[1] == 0 and name.upper().rstrip("\\") == "\\PIPE"


def ms17_010_verdict(status: int | None) -> str:
    """The server's answer tells: STATUS_INSUFF_SERVER_RESOURCES only from an unpatched SMB1 server."""
    if status is None:
        return "no answer"
    if status == STATUS_INSUFF_SERVER_RESOURCES:
        return "unpatched: vulnerable to MS17-010"
    if status in (STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE):
        return "patched"
    return "unknown"


@dataclass(frozen=True, slots=True)
class Alert:
    """One detection: what, when (packet time), from where to where, and the evidence."""

    kind: str
    ts: float
    src: str
    dst: str
    detail: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "ts": self.ts, "src": self.src, "dst": self.dst, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    # One SMB1 alert per client/server pair per hour: enough to see a pair keeps using SMB1
    # without an alert per connection of a chatty client.
    smb1_alert_period: float = 3600.0
    max_tracked_pairs: int = 100_000
    max_alerts_kept: int = 100_000


AlertSink = Callable[[Alert], None]


class Detector:
    """Applies the rules; every alert goes to the sinks and (up to a cap) to `alerts`."""

    def __init__(self, settings: DetectionSettings | None = None, sinks: list[AlertSink] | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self.sinks = list(sinks or [])
        self.alerts: list[Alert] = []
        self.alerts_dropped = 0
        self.counts: Counter[str] = Counter()
        self._smb1_pairs: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.pairs_forgotten = 0

    def _raise(self, alert: Alert) -> None:
        self.counts[alert.kind] += 1
        if len(self.alerts) < self.settings.max_alerts_kept:
            self.alerts.append(alert)
        else:
            self.alerts_dropped += 1
        for sink in self.sinks:
            sink(alert)

    def finding(self, kind: str, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        """A pattern the per-connection state recognised (a probe and its answer): one alert each."""
        self._raise(Alert(kind, ts, client, server, evidence))

    def smb1_used(self, client: str, server: str, ts: float, evidence: dict[str, Any]) -> None:
        """A connection between `client` and `server` uses SMB1 (negotiated, or an SMB1 command crossed it)."""
        pair = (client, server)
        last = self._smb1_pairs.get(pair)
        if last is not None and ts - last < self.settings.smb1_alert_period:
            return
        self._smb1_pairs[pair] = ts
        self._smb1_pairs.move_to_end(pair)
        if len(self._smb1_pairs) > self.settings.max_tracked_pairs:
            self._smb1_pairs.popitem(last=False)
            self.pairs_forgotten += 1
        self._raise(Alert(ALERT_SMB1_NEGOTIATED, ts, client, server, evidence))
