"""DCE/RPC over one connection's named pipes ([C706] chapter 12, [MS-RPCE] 2.1.1.2: RPC over SMB).

Each pipe a client opens on IPC$ (an SMB2 FileId, an SMB1 FID) carries one association. What the
client writes into it (WRITE data, FSCTL_PIPE_TRANSCEIVE input, TransactNmPipe data) goes to one
`RpcStream`, what the server gives back (READ data, transceive output, transaction response data) to
another. A bind or alter_context gives each presentation context id its interface; the bind_ack says
which were accepted; requests are paired by call_id with their response or fault. What a call was
is named from the generated table (`dissectors.dcerpc.names`), never guessed from the pipe's name.

Calls that detections key on become findings (kind, packet time, evidence) when their answer
arrives, or when the pipe or the connection ends without one: the detail then says so. Which calls
those are lives with the rules (`monitor.detect.rpc`). Everything kept per connection is capped and
counted (`rpc_tracking_full`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

from dissectors.constants import enum_name, nt_status_name
from dissectors.dcerpc.constants import ContDefResult, FaultStatus, PfcFlags, PType, Win32Error
from dissectors.dcerpc.names import auth_level_name, auth_type_name, interface_name, operation_name
from dissectors.dcerpc.records import (
    RpcAuthVerifier,
    RpcBind,
    RpcBindAck,
    RpcBindNak,
    RpcCall,
    RpcFault,
    RpcPdu,
)
from dissectors.dcerpc.stream import RpcStream
from dissectors.records import Anomaly, AnomalyKind, KerberosApReq, NtlmsspAuthenticate, SpnegoToken

MAX_PIPES_TRACKED = 32  # pipes open at once on one connection
MAX_INTERFACES_KEPT = 64  # bound interfaces listed per connection
MAX_OPERATIONS_KEPT = 64  # (operation, result) rows per interface
MAX_CALLS_WAITING = 64  # requests waiting for their answer, per pipe

RESULT_OK = "ok"  # a response whose return code is 0 (or could not be read): the server did it
RESULT_NO_ANSWER = "no_answer"

_REQUEST = int(PType.REQUEST)
_RESPONSE = int(PType.RESPONSE)
_BIND_KINDS = (int(PType.BIND), int(PType.ALTER_CONTEXT))
_ACCEPTANCE = int(ContDefResult.ACCEPTANCE)
_NEGOTIATE_ACK = int(ContDefResult.NEGOTIATE_ACK)
_FIRST_FRAG = int(PfcFlags.PFC_FIRST_FRAG)

# (interface uuid, opnum) -> the finding kind the rules give that call, or None (monitor.detect.rpc.classify_call).
CallClassifier = Callable[[str, int], str | None]
Finding = tuple[str, float, dict[str, Any]]


def fault_status_name(status: int) -> str:
    return enum_name(FaultStatus, status, 8)


def return_value_name(value: int | None) -> str:
    """A response's return code: "ok" for 0, a Win32 error name, or an NTSTATUS name."""
    if not value:
        return RESULT_OK
    if value >= 0xC0000000:
        return nt_status_name(value)
    return enum_name(Win32Error, value, 8)


class _Interface:
    """One interface bound on one pipe: the JSON `rpc` entry."""

    __slots__ = ("auth", "bind_result", "calls", "operations_dropped", "pipe", "uuid", "version")

    def __init__(self, pipe: str, uuid: str, version: int) -> None:
        self.pipe = pipe
        self.uuid = uuid
        self.version = version
        self.bind_result = RESULT_NO_ANSWER
        self.auth: dict[str, Any] | None = None
        self.calls: Counter[tuple[int, str]] = Counter()  # (opnum, result) -> count
        self.operations_dropped = 0

    def count(self, opnum: int, result: str) -> bool:
        """One call answered `result`; False when the operation table was full (counted)."""
        key = (opnum, result)
        if key not in self.calls and len(self.calls) >= MAX_OPERATIONS_KEPT:
            self.operations_dropped += 1
            return False
        self.calls[key] += 1
        return True

    def describe(self) -> dict[str, Any]:
        name = interface_name(self.uuid, self.version)
        return {
            "pipe": self.pipe,
            "interface": name,
            "uuid": self.uuid,
            "version": self.version,
            "bind_result": self.bind_result,
            "auth": self.auth,
            "calls": [
                {"opnum": opnum, "operation": operation_name(self.uuid, opnum), "count": count, "status": result}
                for (opnum, result), count in sorted(self.calls.items())
            ],
        }


class _WaitingCall:
    __slots__ = ("finding", "interface", "opnum", "ts")

    def __init__(self, interface: _Interface | None, opnum: int, ts: float, finding: str | None) -> None:
        self.interface = interface
        self.opnum = opnum
        self.ts = ts
        self.finding = finding


class _Pipe:
    """One open pipe: its two byte streams and the association's contexts and calls."""

    __slots__ = ("contexts", "name", "proposed", "to_client", "to_server", "waiting")

    def __init__(self, name: str) -> None:
        self.name = name
        self.to_server = RpcStream()
        self.to_client = RpcStream()
        self.contexts: dict[int, _Interface] = {}  # p_cont_id -> interface
        self.proposed: dict[int, list[_Interface]] = {}  # bind call_id -> its contexts, in order
        self.waiting: dict[int, _WaitingCall] = {}  # request call_id -> call


def _auth_facts(verifier: RpcAuthVerifier) -> dict[str, Any] | None:
    """user/domain/workstation from an NTLMSSP AUTHENTICATE, realm/service from a Kerberos AP-REQ."""
    token = verifier.token
    if isinstance(token, SpnegoToken):
        token = token.ntlmssp or token.kerberos
    facts: dict[str, Any] = {
        "kind": auth_type_name(verifier.auth_type),
        "level": auth_level_name(verifier.auth_level),
    }
    if isinstance(token, NtlmsspAuthenticate):
        facts.update(user=token.user, domain=token.domain, workstation=token.workstation, ntlm=token.auth)
        return facts
    if isinstance(token, KerberosApReq):
        facts.update(realm=token.realm, service=token.service_principal)
        return facts
    return None


class RpcTracker:
    """The DCE/RPC seen on one connection's pipes."""

    def __init__(
        self, anomalies: Counter[AnomalyKind], findings: list[Finding], classify: CallClassifier | None = None
    ) -> None:
        self.anomalies = anomalies
        self.findings = findings
        self.classify = classify
        self._pipes: dict[Hashable, _Pipe] = {}
        self.interfaces: list[_Interface] = []
        self.big_endian_requests = 0

    def open(self, key: Hashable, name: str) -> None:
        """A pipe opened (its CREATE answered): `key` is how later reads and writes name it."""
        if key in self._pipes:
            return
        if len(self._pipes) >= MAX_PIPES_TRACKED:
            self.anomalies[AnomalyKind.RPC_TRACKING_FULL] += 1
            return
        self._pipes[key] = _Pipe(name)

    def is_pipe(self, key: Hashable) -> bool:
        return key in self._pipes

    def data(self, key: Hashable, to_server: bool, data: bytes, ts: float) -> None:
        """In-order bytes of one direction of an open pipe."""
        pipe = self._pipes.get(key)
        if pipe is None or not data:
            return
        stream = pipe.to_server if to_server else pipe.to_client
        stream.feed(data)
        for event in stream.pdus():
            if isinstance(event, Anomaly):
                self.anomalies[event.kind] += 1
            elif isinstance(event, RpcPdu):
                self._pdu(pipe, event, ts)
            else:
                self._call(pipe, event, ts)

    def close(self, key: Hashable, ts: float) -> None:
        """The pipe was closed: its unfinished PDUs are counted and unanswered calls reported."""
        pipe = self._pipes.pop(key, None)
        if pipe is None:
            return
        for stream in (pipe.to_server, pipe.to_client):
            stream.eof()
            for event in stream.pdus():
                if isinstance(event, Anomaly):
                    self.anomalies[event.kind] += 1
        for waiting in pipe.waiting.values():
            self._answered(pipe, waiting, RESULT_NO_ANSWER, ts)
        pipe.waiting.clear()

    def end(self, ts: float) -> None:
        """The connection ended."""
        for key in list(self._pipes):
            self.close(key, ts)

    def describe(self) -> list[dict[str, Any]]:
        return [interface.describe() for interface in self.interfaces]

    def operations_dropped(self) -> int:
        return sum(interface.operations_dropped for interface in self.interfaces)

    # --- PDUs -----------------------------------------------------------------------

    def _pdu(self, pipe: _Pipe, pdu: RpcPdu, ts: float) -> None:
        for anomaly in pdu.anomalies:
            self.anomalies[anomaly.kind] += 1
        header = pdu.header
        body = pdu.body
        if header.ptype == _REQUEST and header.big_endian and header.pfc_flags & _FIRST_FRAG:
            # Windows and Samba clients always send little-endian; CVE-2022-26809 exploits do not.
            self.big_endian_requests += 1
            interface = self._context_interface(pipe, body)
            self.findings.append(
                (
                    "rpc_big_endian",
                    ts,
                    {
                        "pipe": pipe.name,
                        "interface": interface_name(interface.uuid, interface.version) if interface else None,
                        "drep": header.drep.hex(),
                        "call_id": header.call_id,
                    },
                )
            )
        if isinstance(body, RpcBind) and header.ptype in _BIND_KINDS:
            proposed: list[_Interface] = []
            for context in body.contexts:
                syntax = context.abstract_syntax
                interface = self._interface(pipe, syntax.uuid.lower(), syntax.version_major)
                if interface is not None:
                    pipe.contexts[context.p_cont_id] = interface
                proposed.append(interface or _Interface(pipe.name, syntax.uuid.lower(), syntax.version_major))
            if len(pipe.proposed) < MAX_CALLS_WAITING:
                pipe.proposed[header.call_id] = proposed
        elif isinstance(body, RpcBindAck):
            for interface, result in zip(pipe.proposed.pop(header.call_id, []), body.results, strict=False):
                if result.result == _NEGOTIATE_ACK or interface.bind_result == "accepted":
                    # [MS-RPCE] 3.3.1.5.3 bind time feature negotiation is not an interface; and an interface
                    # offered with several transfer syntaxes (NDR, NDR64) is bound if one was accepted.
                    continue
                interface.bind_result = (
                    "accepted" if result.result == _ACCEPTANCE else enum_name(ContDefResult, result.result, 1).lower()
                )
        elif isinstance(body, RpcBindNak):
            for interface in pipe.proposed.pop(header.call_id, []):
                interface.bind_result = "rejected"
        elif isinstance(body, RpcFault):
            waiting = pipe.waiting.pop(header.call_id, None)
            if waiting is not None:
                self._answered(pipe, waiting, fault_status_name(body.status), ts)
        if pdu.auth is not None:
            facts = _auth_facts(pdu.auth)
            if facts is not None:
                for interface in pipe.contexts.values():
                    if interface.auth is None or "user" not in interface.auth:
                        interface.auth = facts

    def _context_interface(self, pipe: _Pipe, body: object) -> _Interface | None:
        p_cont_id = getattr(body, "p_cont_id", None)
        return pipe.contexts.get(p_cont_id) if isinstance(p_cont_id, int) else None

    def _interface(self, pipe: _Pipe, uuid: str, version: int) -> _Interface | None:
        for interface in self.interfaces:
            if interface.pipe == pipe.name and interface.uuid == uuid and interface.version == version:
                return interface
        if len(self.interfaces) >= MAX_INTERFACES_KEPT:
            self.anomalies[AnomalyKind.RPC_TRACKING_FULL] += 1
            return None
        interface = _Interface(pipe.name, uuid, version)
        self.interfaces.append(interface)
        return interface

    def _call(self, pipe: _Pipe, call: RpcCall, ts: float) -> None:
        if call.ptype == _REQUEST and call.opnum is not None:
            interface = pipe.contexts.get(call.p_cont_id)
            finding = self.classify(interface.uuid, call.opnum) if interface and self.classify else None
            if len(pipe.waiting) >= MAX_CALLS_WAITING:
                self.anomalies[AnomalyKind.RPC_TRACKING_FULL] += 1
                return
            pipe.waiting[call.call_id] = _WaitingCall(interface, call.opnum, ts, finding)
        elif call.ptype == _RESPONSE:
            waiting = pipe.waiting.pop(call.call_id, None)
            if waiting is not None:
                self._answered(pipe, waiting, return_value_name(call.return_value), ts)

    def _answered(self, pipe: _Pipe, waiting: _WaitingCall, result: str, ts: float) -> None:
        interface = waiting.interface
        if interface is None:
            return  # a call on a context whose bind was not seen: nothing names it
        if not interface.count(waiting.opnum, result):
            self.anomalies[AnomalyKind.RPC_TRACKING_FULL] += 1
        if waiting.finding is not None:
            evidence: dict[str, Any] = {
                "pipe": pipe.name,
                "interface": interface_name(interface.uuid, interface.version),
                "uuid": interface.uuid,
                "opnum": waiting.opnum,
                "operation": operation_name(interface.uuid, waiting.opnum),
                "result": result,
                "accepted": result == RESULT_OK,
            }
            if interface.auth and interface.auth.get("user"):
                evidence["user"] = interface.auth["user"]
                evidence["domain"] = interface.auth.get("domain")
            self.findings.append((waiting.finding, ts if result != RESULT_NO_ANSWER else waiting.ts, evidence))
