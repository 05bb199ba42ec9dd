"""The rules on what happens after the login: remote execution, executables dropped on administrative
shares, the two together (lateral movement), printer driver installs, coercion calls, big-endian
RPC, and ransomware-like file changes.

The per-connection state (`monitor.smb.files`, `monitor.smb.rpc`) recognises single events and hands
them over as findings; the correlation across connections lives here, per (client, server) pair,
in capped tables like the detector's other memories:

- `remote_execution`, `admin_share_executable`, `print_driver_install`, `rpc_coercion` and
  `rpc_big_endian` alert on the first event, then once per `activity_alert_period` per pair and
  kind (the repeats are counted in the next alert's `repeats`);
- `lateral_movement` (MITRE BZAR's pairing): both a remote execution and an executable written to
  an administrative share from one client against one server within `lateral_movement_window`,
  whichever came first;
- `ransomware_activity`: one client renames, overwrites or deletes `ransomware_files` distinct
  existing files on one server within `ransomware_window`. Creating files (a deployment) and
  reading them (a backup) do not count; a user renaming a handful stays far below. The detail
  names the stronger evidence where it is there: a common new extension among the files created
  or renamed to, and ransom-note-like names created in several folders. On encrypted SMB3 none
  of this is visible: the rule cannot see it, and does not guess.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, Final

from monitor.detect.rpc import (
    ALERT_PRINT_DRIVER_INSTALL,
    ALERT_REMOTE_EXECUTION,
    ALERT_RPC_BIG_ENDIAN,
    ALERT_RPC_COERCION,
)
from monitor.smb.files import FINDING_ADMIN_SHARE_WRITE, FINDING_FILE_CHANGE
from monitor.tcp.identity import ConnectionRef

ALERT_ADMIN_SHARE_EXECUTABLE: Final = FINDING_ADMIN_SHARE_WRITE
ALERT_LATERAL_MOVEMENT: Final = "lateral_movement"
ALERT_RANSOMWARE_ACTIVITY: Final = "ransomware_activity"
ACTIVITY_ALERT_KINDS: Final = (
    ALERT_REMOTE_EXECUTION,
    ALERT_ADMIN_SHARE_EXECUTABLE,
    ALERT_LATERAL_MOVEMENT,
    ALERT_PRINT_DRIVER_INSTALL,
    ALERT_RPC_COERCION,
    ALERT_RPC_BIG_ENDIAN,
    ALERT_RANSOMWARE_ACTIVITY,
)
_SINGLE_EVENT_KINDS = frozenset(
    (
        ALERT_REMOTE_EXECUTION,
        ALERT_ADMIN_SHARE_EXECUTABLE,
        ALERT_PRINT_DRIVER_INSTALL,
        ALERT_RPC_COERCION,
        ALERT_RPC_BIG_ENDIAN,
    )
)
FINDING_KINDS: Final = _SINGLE_EVENT_KINDS | {FINDING_FILE_CHANGE}
_COUNTED_CHANGES = frozenset(("rename", "overwrite", "delete"))
# Names ransomware leaves beside what it encrypted, lower-case fragments.
RANSOM_NOTE_WORDS: Final = ("readme", "read_me", "decrypt", "restore", "recover", "how_to", "ransom", "!!!")
MAX_EVENTS_PER_PAIR: Final = 512  # file changes remembered per pair (the window's most recent)

AlertFactory = Callable[[str, float, ConnectionRef, dict[str, Any], tuple[ConnectionRef, ...]], Any]


class _PairActivity:
    __slots__ = ("alerted", "changes", "connections", "created", "last", "repeats")

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, dict[str, Any]]] = {}  # kind -> last event (time, evidence)
        self.alerted: dict[str, float] = {}  # kind -> packet time of its last alert
        self.repeats: Counter[str] = Counter()  # events not alerted on since the last alert, by kind
        self.changes: list[tuple[float, str, str, str | None]] = []  # (time, path, action, new name)
        self.created: list[tuple[float, str]] = []  # (time, path) of files created
        self.connections: list[ConnectionRef] = []


def _extension(path: str | None) -> str | None:
    if not path:
        return None
    name = path.rsplit("\\", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else None


def _folder(path: str) -> str:
    return path.rsplit("\\", 1)[0] if "\\" in path else ""


class ActivityRules:
    """Per-pair state of the activity rules; alerts go out through `make_alert`."""

    def __init__(self, settings: Any, make_alert: AlertFactory, pairs_evicted: Counter[str]) -> None:
        self.settings = settings
        self._make_alert = make_alert
        self._pairs: OrderedDict[tuple[str, str], _PairActivity] = OrderedDict()
        self.pairs_evicted = pairs_evicted  # the detector's, by memory: this one is "activity"
        self.suppressed: Counter[str] = Counter()

    def _pair(self, client: str, server: str) -> _PairActivity:
        key = (client, server)
        pair = self._pairs.pop(key, None) or _PairActivity()
        self._pairs[key] = pair  # most recently active last
        if len(self._pairs) > self.settings.max_activity_pairs:
            self._pairs.popitem(last=False)
            self.pairs_evicted["activity"] += 1
        return pair

    def finding(self, kind: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]) -> list[Any]:
        pair = self._pair(connection.client_ip, connection.server_ip)
        if connection not in pair.connections:
            pair.connections = [*pair.connections[-15:], connection]
        if kind == FINDING_FILE_CHANGE:
            return self._file_change(pair, connection, ts, evidence)
        alerts = []
        alert = self._single(pair, kind, connection, ts, evidence)
        if alert is not None:
            alerts.append(alert)
        if kind in (ALERT_REMOTE_EXECUTION, ALERT_ADMIN_SHARE_EXECUTABLE):
            lateral = self._lateral(pair, kind, connection, ts, evidence)
            if lateral is not None:
                alerts.append(lateral)
        return alerts

    def _single(
        self, pair: _PairActivity, kind: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]
    ) -> Any:
        pair.last[kind] = (ts, evidence)
        # One alert per interface (or share) and period: CreateService then StartService is one story,
        # a DFS call and a spooler call are two coercion techniques.
        key = f"{kind}:{evidence.get('interface') or evidence.get('share') or ''}"
        last_alert = pair.alerted.get(key)
        if last_alert is not None and ts - last_alert < self.settings.activity_alert_period:
            pair.repeats[key] += 1
            self.suppressed[kind] += 1
            return None
        pair.alerted[key] = ts
        detail = {**evidence, "repeats": pair.repeats.pop(key, 0)}
        return self._make_alert(kind, ts, connection, detail, ())

    def _lateral(
        self, pair: _PairActivity, kind: str, connection: ConnectionRef, ts: float, evidence: dict[str, Any]
    ) -> Any:
        other_kind = ALERT_ADMIN_SHARE_EXECUTABLE if kind == ALERT_REMOTE_EXECUTION else ALERT_REMOTE_EXECUTION
        other = pair.last.get(other_kind)
        window = self.settings.lateral_movement_window
        if other is None or ts - other[0] > window:
            return None
        last_alert = pair.alerted.get(ALERT_LATERAL_MOVEMENT)
        if last_alert is not None and ts - last_alert < self.settings.activity_alert_period:
            return None
        pair.alerted[ALERT_LATERAL_MOVEMENT] = ts
        execution, written = (evidence, other[1]) if kind == ALERT_REMOTE_EXECUTION else (other[1], evidence)
        detail = {
            "verdict": "executable written to an admin share and remote execution, one client to one server",
            "window_seconds": window,
            "execution": {key: execution.get(key) for key in ("interface", "operation", "result", "accepted")},
            "executable": {key: written.get(key) for key in ("share", "path", "how")},
            "server_port": evidence.get("server_port"),
        }
        return self._make_alert(ALERT_LATERAL_MOVEMENT, ts, connection, detail, tuple(pair.connections))

    def _file_change(
        self, pair: _PairActivity, connection: ConnectionRef, ts: float, evidence: dict[str, Any]
    ) -> list[Any]:
        settings = self.settings
        horizon = ts - settings.ransomware_window
        action = str(evidence.get("action"))
        path = str(evidence.get("path") or "")
        if action == "create":
            pair.created = [entry for entry in pair.created if entry[0] >= horizon][-MAX_EVENTS_PER_PAIR:]
            pair.created.append((ts, path))
            return []
        if action not in _COUNTED_CHANGES:
            return []
        pair.changes = [entry for entry in pair.changes if entry[0] >= horizon][-MAX_EVENTS_PER_PAIR:]
        pair.changes.append((ts, path, action, evidence.get("renamed_to")))
        files = {entry[1].lower() for entry in pair.changes}
        if len(files) < settings.ransomware_files:
            return []
        last_alert = pair.alerted.get(ALERT_RANSOMWARE_ACTIVITY)
        if last_alert is not None and ts - last_alert < settings.activity_alert_period:
            return []
        pair.alerted[ALERT_RANSOMWARE_ACTIVITY] = ts
        actions = Counter(entry[2] for entry in pair.changes)
        new_names = [entry[3] for entry in pair.changes if entry[3]] + [
            path for created_ts, path in pair.created if created_ts >= horizon
        ]
        # The extension the new names have and the changed files did not (".locked" beside ".txt").
        old_extensions = {_extension(entry[1]) for entry in pair.changes}
        extensions = Counter(ext for ext in map(_extension, new_names) if ext and ext not in old_extensions)
        detail: dict[str, Any] = {
            "files_changed": len(files),
            "window_seconds": settings.ransomware_window,
            "actions": dict(sorted(actions.items())),
            "share": evidence.get("share"),
            "sample_paths": sorted(files)[:10],
            "server_port": evidence.get("server_port"),
        }
        if extensions:
            extension, count = extensions.most_common(1)[0]
            if count >= max(2, len(files) // 2):
                detail["common_new_extension"] = extension
                detail["files_with_it"] = count
        notes = {
            _folder(path)
            for created_ts, path in pair.created
            if created_ts >= horizon and any(word in path.rsplit("\\", 1)[-1].lower() for word in RANSOM_NOTE_WORDS)
        }
        if len(notes) >= 2:
            detail["ransom_note_folders"] = sorted(notes)[:10]
        return [self._make_alert(ALERT_RANSOMWARE_ACTIVITY, ts, connection, detail, tuple(pair.connections))]
