"""MS17-010 patterns in one connection's SMB1 messages: the vulnerability probe, EternalBlue, DoublePulsar.

Every rule keys on header fields, subcommands and declared sizes, never on payload
bytes, so a variant that changes its shellcode still matches. What a rule sees
becomes a finding `(kind, packet time, evidence)`; `monitor.detect.Detector`
turns findings into alerts. Per-connection memory is capped like everything else.

The MS17-010 probe (what nmap's smb-vuln-ms17-010 and Metasploit's scanner send):
a TRANSACTION PeekNamedPipe on FID 0 to \\PIPE\\. Only an unpatched server answers
STATUS_INSUFF_SERVER_RESOURCES.

EternalBlue: an NT_TRANSACT declaring more than 64 KiB of data whose remaining
data then arrives as TRANSACTION2_SECONDARY messages with the same TID/UID/PID/MID
(the mismatched secondary is the bug's trigger); the ECHO with Flags2 0xC007 and
data "JlJmIhClBsr" that public tools send first; and, across connections, the
pool grooming frames (see `ZeroedMessageHeader`), aggregated by the detector.

DoublePulsar: the implant listens on TRANS2_SESSION_SETUP, a reserved subcommand
no client uses; it answers STATUS_NOT_IMPLEMENTED with the request's MID + 0x10
(81 for a ping with MID 65: implant present; 82: the uploaded payload ran), and
payloads are uploaded in 4,096-byte pieces. More generally, a server answering
with a (PID, MID) the client never used is a backdoor speaking, not SMB.

PID 0xFEFF and MIDs 64/65, as the public exploit code uses them, are listed as
weak signals in the evidence: they add confidence, but no alert rests on them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dissectors.constants import SMB1_FLAGS_REPLY, Smb1Command, nt_status_name
from dissectors.records import (
    AnomalyKind,
    Smb1EchoRequest,
    Smb1Header,
    Smb1Message,
    Smb1NtTransactRequest,
    Smb1TransactionRequest,
    ZeroedMessageHeader,
)

ALERT_MS17_010_PROBE = "ms17_010_probe"
ALERT_ETERNALBLUE = "eternalblue"
ALERT_DOUBLEPULSAR = "doublepulsar"
# Not an alert by itself: the detector counts these per client and server.
FINDING_SRVNET_GROOMING = "srvnet_grooming"

# [MS-CIFS] 2.2.5.4 TRANS_PEEK_NMPIPE: the subcommand scanners for MS17-010 send on FID 0.
TRANS_PEEK_NMPIPE = 0x0023
# [MS-CIFS] 2.2.6.16 TRANS2_SESSION_SETUP: reserved, "not implemented" by servers; DoublePulsar's channel.
TRANS2_SESSION_SETUP = 0x000E
STATUS_NOT_IMPLEMENTED = 0xC0000002
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_INVALID_HANDLE = 0xC0000008
DOUBLEPULSAR_MID_OFFSET = 0x10
DOUBLEPULSAR_PAYLOAD_RAN_MID = 82
DOUBLEPULSAR_UPLOAD_CHUNK = 4096
# A transaction's data is bounded by the server's buffer size (tens of KiB); more than 64 KiB
# cannot be described by the 16-bit counts of TRANSACTION2, which is what EternalBlue relies on.
ETERNALBLUE_TOTAL_DATA = 0x10000
ETERNALBLUE_ECHO_FLAGS2 = 0xC007
ETERNALBLUE_ECHO_MARKER = b"JlJmIhClBsr"
SRVNET_GROOMING_FRAME_LENGTH = 0x00FFF7
WEAK_SIGNAL_PID = 0xFEFF
WEAK_SIGNAL_MIDS = frozenset((64, 65))

# Caps on what one connection may make smbwatch remember. Servers allow a few dozen requests
# in flight (MaxMpxCount, 50 on Windows); the rest keeps answered ids for multi-part answers.
# A probe, DoublePulsar request or large NT_TRANSACT a full list turns away, and an unanswered
# request forgotten, is one `ms17_010_watch_full` each. The answered window moves on uncounted:
# an SMB1 file copy does that thousands of times, and a forgotten answered id can only make a
# late part of an answer look unsolicited, never hide anything.
MAX_OPEN_EXCHANGES = 16
MAX_OUTSTANDING_REQUESTS = 1024
MAX_ANSWERED_REQUESTS = 256

_TRANSACTION = int(Smb1Command.SMB_COM_TRANSACTION)
_TRANSACTION2 = int(Smb1Command.SMB_COM_TRANSACTION2)
_TRANSACTION2_SECONDARY = int(Smb1Command.SMB_COM_TRANSACTION2_SECONDARY)
_NT_TRANSACT = int(Smb1Command.SMB_COM_NT_TRANSACT)
_ECHO = int(Smb1Command.SMB_COM_ECHO)

Finding = tuple[str, float, dict[str, object]]


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


def doublepulsar_verdict(request_mid: int, response: Smb1Header | None) -> str:
    """What the answer to a TRANS2_SESSION_SETUP says about an implant."""
    if response is None:
        return "no answer"
    if response.status == STATUS_NOT_IMPLEMENTED and response.mid == request_mid + DOUBLEPULSAR_MID_OFFSET:
        if response.mid == DOUBLEPULSAR_PAYLOAD_RAN_MID:
            return "implant present: payload ran (MID 82)"
        return "implant present (MID + 0x10)"
    if response.mid == request_mid:
        return "no implant answered"
    return "unknown"


def weak_signals(header: Smb1Header) -> list[str]:
    signals = []
    if header.pid & 0xFFFF == WEAK_SIGNAL_PID:
        signals.append("pid_0xfeff")
    if header.mid in WEAK_SIGNAL_MIDS:
        signals.append(f"mid_{header.mid}")
    return signals


class Ms17010Watch:
    """Watches one connection's SMB1 messages for the MS17-010 family; appends to `findings`.

    `trusted` says the connection was seen from its start: only then can a response be
    told to answer no request (a capture that began midstream, or lost bytes, hides requests).
    A request a full watch list turns away, or an unanswered one it forgets, is one
    `ms17_010_watch_full` in `anomalies` (the connection's counter, summed when it ends).
    """

    __slots__ = (
        "_answered",
        "_big_nt_transacts",
        "_outstanding",
        "_pulsar_requests",
        "_reported",
        "anomalies",
        "findings",
        "probes",
        "trusted",
    )

    def __init__(self, findings: list[Finding], trusted: bool, anomalies: Counter[AnomalyKind] | None = None) -> None:
        self.findings = findings
        self.anomalies: Counter[AnomalyKind] = Counter() if anomalies is None else anomalies
        self.trusted = trusted
        self.probes: dict[tuple[int, int], float] = {}  # (PID, MID) of unanswered probes
        self._big_nt_transacts: dict[tuple[int, int, int, int], int] = {}  # (TID, UID, PID, MID) -> TotalDataCount
        self._pulsar_requests: dict[tuple[int, int], tuple[float, int, list[str]]] = {}
        # (PID, MID) of requests not answered yet, and of recently answered ones (a transaction's answer
        # may come in several parts, an ECHO's in EchoCount parts), oldest first.
        self._outstanding: dict[tuple[int, int], None] = {}
        self._answered: dict[tuple[int, int], None] = {}
        self._reported: set[tuple[str, object]] = set()  # (pattern, verdict) already reported

    def message(self, message: Smb1Message, ts: float) -> None:
        header = message.header
        if message.chained:
            return  # the chain's first command carries the identifiers
        if header.flags & SMB1_FLAGS_REPLY:
            self._response(header, ts)
        else:
            self._request(header, message.body, ts)

    def lost_sync(self) -> None:
        """Bytes were lost: requests may have gone unseen, so unanswered-looking responses prove nothing."""
        self.trusted = False

    def opening_frame(self, frame: ZeroedMessageHeader, ts: float) -> None:
        """The client's first frame on the connection was a header of zeros."""
        if frame.frame_length == SRVNET_GROOMING_FRAME_LENGTH:
            evidence: dict[str, object] = {"frame_length": frame.frame_length, "protocol_id": frame.protocol_id.hex()}
            self.findings.append((FINDING_SRVNET_GROOMING, ts, evidence))

    @property
    def awaiting_answers(self) -> bool:
        """Requests are waiting for an answer whose absence would be a finding."""
        return bool(self.probes or self._pulsar_requests)

    def expire(self, horizon: float) -> None:
        """Requests sent at or before `horizon` (packet time) are not answered now: "no answer".
        An answer that still comes later matches nothing and is counted as an ordinary one."""
        for key in [key for key, ts in self.probes.items() if ts <= horizon]:
            self._unanswered_probe(key, self.probes.pop(key))
        for key in [key for key, pending in self._pulsar_requests.items() if pending[0] <= horizon]:
            ts, data_count, signals = self._pulsar_requests.pop(key)
            self._pulsar_finding(ts, key[0], key[1], data_count, signals, None)

    def close(self) -> None:
        """At the end of the connection: what was never answered is a finding too."""
        self.expire(float("inf"))

    def _unanswered_probe(self, key: tuple[int, int], ts: float) -> None:
        pid, mid = key
        evidence: dict[str, object] = {"status": None, "verdict": ms17_010_verdict(None), "pid": pid, "mid": mid}
        self.findings.append((ALERT_MS17_010_PROBE, ts, evidence))

    def _request(self, header: Smb1Header, body: object, ts: float) -> None:
        key = (header.pid, header.mid)
        outstanding = self._outstanding
        outstanding[key] = None
        if len(outstanding) > MAX_OUTSTANDING_REQUESTS:
            del outstanding[next(iter(outstanding))]  # requests that get no answer (NT_CANCEL, ...) age out
            self.anomalies[AnomalyKind.MS17_010_WATCH_FULL] += 1
        command = header.command
        if command == _TRANSACTION:
            if (
                isinstance(body, Smb1TransactionRequest)
                and is_ms17_010_probe(body.setup, body.name)
                and self._room(self.probes, key)
            ):
                self.probes[key] = ts
        elif command == _TRANSACTION2:
            if (
                isinstance(body, Smb1TransactionRequest)
                and body.setup[:1] == (TRANS2_SESSION_SETUP,)
                and self._room(self._pulsar_requests, key)
            ):
                self._pulsar_requests[key] = (ts, body.data_count, weak_signals(header))
        elif command == _NT_TRANSACT:
            if isinstance(body, Smb1NtTransactRequest) and body.total_data_count >= ETERNALBLUE_TOTAL_DATA:
                big_key = (header.tid, header.uid, header.pid, header.mid)
                if self._room(self._big_nt_transacts, big_key):
                    self._big_nt_transacts[big_key] = body.total_data_count
        elif command == _TRANSACTION2_SECONDARY:
            total_data = self._big_nt_transacts.get((header.tid, header.uid, header.pid, header.mid))
            if total_data is not None:
                self._report(
                    ALERT_ETERNALBLUE,
                    "nt_transact_trans2_secondary",
                    ts,
                    {
                        "verdict": "exploit attempt: NT_TRANSACT data continued by TRANSACTION2_SECONDARY",
                        "total_data_count": total_data,
                        "tid": header.tid,
                        "uid": header.uid,
                        "pid": header.pid,
                        "mid": header.mid,
                        "weak_signals": weak_signals(header),
                    },
                )
        elif (
            command == _ECHO
            and header.flags2 == ETERNALBLUE_ECHO_FLAGS2
            and isinstance(body, Smb1EchoRequest)
            and body.data_prefix.startswith(ETERNALBLUE_ECHO_MARKER)
        ):
            self._report(
                ALERT_ETERNALBLUE,
                "echo_marker",
                ts,
                {
                    "verdict": "exploit tool fingerprint: ECHO with Flags2 0xC007 and data JlJmIhClBsr",
                    "pid": header.pid,
                    "mid": header.mid,
                    "weak_signals": weak_signals(header),
                },
            )

    def _room(self, exchanges: dict[Any, Any], key: object) -> bool:
        """`key` may be watched in `exchanges`: it already is, or the list has room; a request
        turned away is counted."""
        if key in exchanges or len(exchanges) < MAX_OPEN_EXCHANGES:
            return True
        self.anomalies[AnomalyKind.MS17_010_WATCH_FULL] += 1
        return False

    def _response(self, header: Smb1Header, ts: float) -> None:
        key = (header.pid, header.mid)
        command = header.command
        if command == _TRANSACTION:
            probe_ts = self.probes.pop(key, None)
            if probe_ts is not None:
                evidence: dict[str, object] = {
                    "status": nt_status_name(header.status),
                    "verdict": ms17_010_verdict(header.status),
                    "pid": header.pid,
                    "mid": header.mid,
                }
                self.findings.append((ALERT_MS17_010_PROBE, ts, evidence))
                return
        elif command == _TRANSACTION2 and self._pulsar_requests:
            # The implant answers with the request's MID + 0x10; a server without one, with the MID itself.
            request_mid = header.mid - DOUBLEPULSAR_MID_OFFSET
            pending = self._pulsar_requests.pop((header.pid, request_mid), None)
            if pending is None:
                request_mid = header.mid
                pending = self._pulsar_requests.pop(key, None)
            if pending is not None:
                _request_ts, data_count, signals = pending
                self._pulsar_finding(ts, header.pid, request_mid, data_count, signals, header)
                return
        if self._outstanding.pop(key, 0) is None:
            answered = self._answered
            answered[key] = None
            if len(answered) > MAX_ANSWERED_REQUESTS:
                del answered[next(iter(answered))]
        elif self.trusted and key not in self._answered:
            self._report(
                ALERT_DOUBLEPULSAR,
                "unsolicited_response",
                ts,
                {
                    "verdict": "the server answered a (PID, MID) the client never used",
                    "command": command,
                    "status": nt_status_name(header.status),
                    "pid": header.pid,
                    "mid": header.mid,
                },
            )

    def _pulsar_finding(
        self, ts: float, pid: int, mid: int, data_count: int, signals: list[str], response: Smb1Header | None
    ) -> None:
        verdict = doublepulsar_verdict(mid, response)
        pattern = "payload_upload" if data_count == DOUBLEPULSAR_UPLOAD_CHUNK else "trans2_session_setup"
        evidence: dict[str, object] = {
            "verdict": verdict,
            "data_count": data_count,
            "pid": pid,
            "request_mid": mid,
            "response_mid": response.mid if response else None,
            "status": nt_status_name(response.status) if response else None,
            "weak_signals": signals,
        }
        self._report(ALERT_DOUBLEPULSAR, pattern, ts, evidence)

    def _report(self, kind: str, pattern: str, ts: float, evidence: dict[str, object]) -> None:
        """One finding per pattern and verdict on this connection; repeats of it add nothing."""
        key = (pattern, evidence["verdict"])
        if key in self._reported:
            return
        self._reported.add(key)
        self.findings.append((kind, ts, {"pattern": pattern, **evidence}))
