"""`bruteforce`: failed logons from one source to one server within a window, and the success that
may follow them. A pair with one failure costs a small tuple, so a flood of clients failing once each
stays small."""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any

from dissectors.constants import nt_status_name
from monitor.detect.alerts import Alert, RuleBase, keep_recent
from monitor.tcp.identity import ConnectionRef

ALERT_BRUTEFORCE = "bruteforce"
# [MS-ERREF] 2.3.1: the statuses a SESSION_SETUP fails with when the credentials are wrong or refused.
LOGON_FAILURE_STATUSES = frozenset(
    (
        0xC000006D,  # STATUS_LOGON_FAILURE
        0xC000006A,  # STATUS_WRONG_PASSWORD
        0xC0000064,  # STATUS_NO_SUCH_USER
        0xC0000234,  # STATUS_ACCOUNT_LOCKED_OUT
        0xC0000072,  # STATUS_ACCOUNT_DISABLED
        0xC0000193,  # STATUS_ACCOUNT_EXPIRED
        0xC0000071,  # STATUS_PASSWORD_EXPIRED
        0xC0000224,  # STATUS_PASSWORD_MUST_CHANGE
        0xC000006E,  # STATUS_ACCOUNT_RESTRICTION
        0xC000006F,  # STATUS_INVALID_LOGON_HOURS
        0xC0000070,  # STATUS_INVALID_WORKSTATION
        0xC000015B,  # STATUS_LOGON_TYPE_NOT_GRANTED
    )
)
MAX_USERS_PER_PAIR = 16


class BruteForceRules(RuleBase):
    """The brute-force rule's part of the detector."""

    _logon_pairs: OrderedDict[bytes, LogonFailures | FirstFailure]
    users_dropped: int
    empty_user_logon_failures: int

    def session_result(self, connection: ConnectionRef, ts: float, status: int, user: str | None) -> Alert | None:
        """A SESSION_SETUP's final status: failures count towards brute force; a success after
        a brute-force alert is called out."""
        settings = self.settings
        # By raw addresses: a flood of clients failing once each must not cost two formatted addresses each.
        pair = connection.client[0] + connection.server[0]
        failures = self._logon_pairs.get(pair)
        if status in LOGON_FAILURE_STATUSES:
            if user == "":
                # An empty user name (an anonymous NTLMSSP AUTHENTICATE) guesses no password: scanners and
                # share browsers send it. Counted apart; a user name smbwatch could not see (None) still counts.
                self.empty_user_logon_failures += 1
                return None
            if user is not None:
                user = sys.intern(user)  # a flood repeats a handful of user names
            if failures is None:
                if settings.bruteforce_failures > 1:
                    # One failure is what most clients ever have: a small tuple until a second one comes.
                    self._logon_pairs[pair] = (ts, connection.packed(), connection.source_file, user)
                else:
                    failures = self._logon_pairs[pair] = LogonFailures()
                if len(self._logon_pairs) > settings.max_bruteforce_pairs:
                    self._logon_pairs.popitem(last=False)
                    self.pairs_evicted["bruteforce"] += 1
                if failures is None:
                    return None
            else:
                self._logon_pairs.move_to_end(pair)
                if isinstance(failures, tuple):
                    failures = self._logon_pairs[pair] = LogonFailures.from_first(*failures)
            horizon = ts - settings.bruteforce_window
            failures.times = [t for t in failures.times if t >= horizon][-2 * settings.bruteforce_failures :]
            failures.times.append(ts)
            keep_recent(failures.connections, connection)
            if user is not None and user not in failures.users:
                if len(failures.users) < MAX_USERS_PER_PAIR:
                    failures.users[user] = None
                else:
                    self.users_dropped += 1  # each failure of a user not listed: `names_kept_full`
            if len(failures.times) >= settings.bruteforce_failures and not failures.alerted:
                failures.alerted = True
                evidence = {
                    "failures": len(failures.times),
                    "window_seconds": settings.bruteforce_window,
                    "users": list(failures.users),
                    "last_status": nt_status_name(status),
                }
                return self._bruteforce_alert(connection, ts, evidence, failures)
        elif status == 0 and failures is not None:
            del self._logon_pairs[pair]
            if isinstance(failures, LogonFailures) and failures.alerted:
                evidence = {"success_after_failures": True, "user": user, "failures_before": len(failures.times)}
                return self._bruteforce_alert(connection, ts, evidence, failures)
        return None

    def _bruteforce_alert(
        self, connection: ConnectionRef, ts: float, evidence: dict[str, Any], failures: LogonFailures
    ) -> Alert:
        """A `bruteforce` alert about the pair, listing its recent failed connections."""
        return self._raise(
            Alert(
                ALERT_BRUTEFORCE,
                ts,
                connection.client_ip,
                connection.server_ip,
                evidence,
                connection,
                tuple(failures.connections),
            )
        )


# A pair's first failed logon: time, `ConnectionRef.packed()`, input file, user.
FirstFailure = tuple[float, bytes, "str | None", "str | None"]


class LogonFailures:
    """Recent failed logons of one source against one server (times oldest first, capped)."""

    __slots__ = ("alerted", "connections", "times", "users")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.connections: list[ConnectionRef] = []
        self.users: dict[str, None] = {}
        self.alerted = False

    @classmethod
    def from_first(cls, ts: float, packed: bytes, source_file: str | None, user: str | None) -> LogonFailures:
        """The pair's second failure came: the first one, kept compactly, as the start of the record."""
        failures = cls()
        failures.times.append(ts)
        failures.connections.append(ConnectionRef.unpacked(packed, source_file))
        if user is not None:
            failures.users[user] = None
        return failures
