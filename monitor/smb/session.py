"""Per-connection SMB state: what was negotiated, by whom, and what crossed the wire.

`SmbConnection` consumes the records of both directions of one flow and keeps
the facts the report and the detections need. It never sees bytes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from dissectors.constants import (
    SMB1_FLAGS_REPLY,
    SMB1_NO_DIALECT_SELECTED,
    SMB2_DIALECTS_IN_SMB1_NEGOTIATE,
    SMB2_FLAGS_SERVER_TO_REDIR,
    SMB2_FLAGS_SIGNED,
    Smb1Capabilities,
    Smb1Command,
    Smb1SecurityMode,
    Smb2Cipher,
    Smb2Command,
    Smb2CompressionAlgorithm,
    Smb2Dialect,
    Smb2HashAlgorithm,
    Smb2RdmaTransformId,
    Smb2SecurityMode,
    Smb2SigningAlgorithm,
    enum_name,
    smb1_command_name,
    smb2_command_name,
    smb2_dialect_name,
)
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    CompressionCapabilities,
    EncryptionCapabilities,
    NegotiateContext,
    NetbiosSessionPacket,
    NetbiosSessionRequest,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    RdmaTransformCapabilities,
    ReassemblyGap,
    SigningCapabilities,
    Smb1Message,
    Smb1NegotiateRequest,
    Smb1NegotiateResponse,
    Smb2CompressionTransformHeader,
    Smb2Message,
    Smb2NegotiateRequest,
    Smb2NegotiateResponse,
    Smb2TransformHeader,
    StreamEvent,
    TransportCapabilities,
    UnknownNegotiateContext,
    ZeroedMessageHeader,
)
from monitor.detect.ms17_010 import Ms17010Watch
from monitor.detect.rpc import classify_call
from monitor.smb.authentication import AuthenticationTracker, encrypt_passwords
from monitor.smb.files import FileTracker
from monitor.smb.rpc import RpcTracker
from monitor.smb.uses import UseTracker
from monitor.tcp.flows import Direction

# A connection rarely needs more; keeps a hostile peer from growing state without bound.
MAX_DIALECTS_KEPT = 64
MAX_ANOMALY_SAMPLES = 8
_LAST_SMB2_COMMAND = max(Smb2Command)
_SMB2_SESSION_SETUP = int(Smb2Command.SESSION_SETUP)
_SMB2_AUTH_COMMANDS = frozenset((_SMB2_SESSION_SETUP, int(Smb2Command.TREE_CONNECT)))
_SMB1_AUTH_COMMANDS = frozenset(
    (int(Smb1Command.SMB_COM_SESSION_SETUP_ANDX), int(Smb1Command.SMB_COM_TREE_CONNECT_ANDX))
)
_UNDEFINED_COMMAND = -1
_SMB2_CREATE = int(Smb2Command.CREATE)
# Commands about files and pipes (monitor/smb/files.py), CREATE included.
_SMB2_FILE_COMMANDS = frozenset(
    int(command)
    for command in (
        Smb2Command.CREATE,
        Smb2Command.CLOSE,
        Smb2Command.READ,
        Smb2Command.WRITE,
        Smb2Command.IOCTL,
        Smb2Command.SET_INFO,
        Smb2Command.QUERY_DIRECTORY,
    )
)


class SmbConnection:
    """The SMB facts of one TCP connection."""

    __slots__ = (
        "alert_kinds",
        "anomalies",
        "anomaly_samples",
        "auth",
        "client_negotiate",
        "client_signing_required",
        "commands",
        "compressed_messages",
        "dialect",
        "dialects_offered",
        "encrypted_messages",
        "files",
        "findings",
        "first_ts",
        "last_ts",
        "ms17_010",
        "negotiations",
        "negotiations_reported",
        "netbios_called_name",
        "netbios_calling_name",
        "rpc",
        "server_negotiate",
        "server_signing_required",
        "signed_messages",
        "smb1_dialects_requested",
        "smb1_messages",
        "smb1_offered",
        "smb1_reported",
        "smb1_used",
        "smb2_messages",
        "source_file",
        "trees_reported",
        "uses",
    )

    def __init__(self, ts: float, midstream: bool = False, source_file: str | None = None) -> None:
        self.first_ts = ts
        self.last_ts = ts
        self.source_file = source_file  # the input file the connection's first SMB bytes came from
        self.alert_kinds: Counter[str] = Counter()  # alerts raised about this connection
        self.anomalies: Counter[AnomalyKind] = Counter()  # counted once, into the totals, when the connection ends
        self.dialects_offered: list[str] = []
        self.smb1_offered = False
        self.smb1_used = False
        self.smb1_reported = False  # the detector was told about this connection's SMB1 use
        # Patterns for the detector: (kind, packet time, evidence), drained by the pipeline.
        self.findings: list[tuple[str, float, dict[str, object]]] = []
        self.ms17_010 = Ms17010Watch(self.findings, trusted=not midstream, anomalies=self.anomalies)
        # Finished NEGOTIATE exchanges (a multi-protocol wildcard answer does not finish one), and how many
        # of them and of the tree connects the pipeline has passed on to its observers.
        self.negotiations = 0
        self.negotiations_reported = 0
        self.trees_reported = 0
        self.dialect: str | None = None
        self.smb1_dialects_requested: tuple[str, ...] = ()
        self.client_signing_required: bool | None = None
        self.server_signing_required: bool | None = None
        self.client_negotiate: dict[str, object] | None = None
        self.server_negotiate: dict[str, object] | None = None
        self.smb1_messages = 0
        self.smb2_messages = 0
        self.encrypted_messages = 0
        self.compressed_messages = 0
        self.signed_messages = 0
        # (1 or 2 for SMB1/SMB2, command code, 1 for a response else 0) -> count; named when reported
        self.commands: Counter[tuple[int, int, int]] = Counter()
        self.anomaly_samples: list[str] = []
        self.netbios_called_name: str | None = None
        self.netbios_calling_name: str | None = None
        self.auth = AuthenticationTracker()
        self.uses = UseTracker(self.anomalies, self.auth.trees)
        self.rpc = RpcTracker(self.anomalies, self.findings, classify_call)
        self.files = FileTracker(self.auth.trees, self.anomalies, self.findings, self.rpc)

    @property
    def encrypted(self) -> bool:
        """Transform headers were seen, or a session was set up with encryption required."""
        return self.encrypted_messages > 0 or any(
            "encrypt_data" in session["session_flags"] for session in self.auth.sessions.values()
        )

    @property
    def refused(self) -> bool:
        """The server refused every dialect the client offered (SMB1 DialectIndex 0xFFFF) and
        nothing was negotiated after that."""
        server = self.server_negotiate or {}
        return bool(server.get("no_dialect_acceptable")) and self.dialect is None

    def describe_uses(self) -> dict[str, list[str]]:
        """What the connection was used for (`monitor.smb.uses`)."""
        commands = self.commands
        logged_in = bool(self.auth.sessions) or any(
            commands[key] for key in ((2, _SMB2_SESSION_SETUP, 0), (1, Smb1Command.SMB_COM_SESSION_SETUP_ANDX, 0))
        )
        protocol = 1 if self.smb1_used or self.smb1_messages > self.smb2_messages else 2
        midstream = not self.negotiations and self.dialect in (None, "unknown")
        return self.uses.describe(self.auth.trees, protocol, logged_in, self.refused, midstream)

    @property
    def signing_required(self) -> bool | None:
        """Signing is required when either side's NEGOTIATE demands it ([MS-SMB2] 3.2.5.3.1)."""
        sides = (self.client_signing_required, self.server_signing_required)
        if all(side is None for side in sides):
            return None
        return any(sides)

    def handle(self, direction: Direction, events: list[StreamEvent], ts: float) -> None:
        self.last_ts = ts
        for event in events:
            if type(event) is Smb2Message:  # by far the most common: spare the table lookup
                self._smb2(direction, event, ts)
                continue
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, direction, event, ts)

    def command_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """{"smb1" | "smb2": {command name: {"requests": n, "responses": n}}}, names sorted."""
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for (protocol, command, response), count in self.commands.items():
            if command == _UNDEFINED_COMMAND:
                name = "undefined"
            else:
                name = smb2_command_name(command) if protocol == 2 else smb1_command_name(command)
            entry = counts.setdefault(f"smb{protocol}", {}).setdefault(name, {"requests": 0, "responses": 0})
            entry["responses" if response else "requests"] += count
        return {protocol: dict(sorted(names.items())) for protocol, names in sorted(counts.items())}

    # --- handlers, one per record type ------------------------------------------------

    def _anomaly(self, direction: Direction, event: Anomaly, ts: float) -> None:
        self.anomalies[event.kind] += 1
        if len(self.anomaly_samples) < MAX_ANOMALY_SAMPLES:
            self.anomaly_samples.append(f"{event.kind.value}: {event.detail}")

    def _smb1(self, direction: Direction, message: Smb1Message, ts: float) -> None:
        header = message.header
        if not message.chained:
            self.smb1_messages += 1  # a command chained by AndX counts as a command, not a message
        self.commands[1, header.command, 1 if header.flags & SMB1_FLAGS_REPLY else 0] += 1
        # The NEGOTIATE exchange itself is not use: a server may refuse every SMB1 dialect.
        # A selected SMB1 dialect, or any other SMB1 command, is.
        if header.command != Smb1Command.SMB_COM_NEGOTIATE:
            self.smb1_used = True
        self.ms17_010.message(message, ts)
        body = message.body
        if not header.flags & SMB1_FLAGS_REPLY:
            self.uses.smb1_request(header, body)
            self.files.smb1_request(header, body, ts)
        else:
            self.uses.smb1_response(header)
            self.files.smb1_response(header, body, ts)
        if isinstance(body, Smb1NegotiateRequest):
            self._smb1_negotiate_request(body, ts)
        elif isinstance(body, Smb1NegotiateResponse):
            self._smb1_negotiate_response(body, ts)
        elif header.command in _SMB1_AUTH_COMMANDS:
            if header.flags & SMB1_FLAGS_REPLY:
                self.auth.smb1_response(header, body, ts)
            else:
                security_mode = (self.server_negotiate or {}).get("security_mode")
                self.auth.smb1_request(header, body, encrypt_passwords(security_mode))

    def unanswered_findings(self) -> None:
        """At the end of the connection: probes and DCE/RPC calls never answered are findings too."""
        self.ms17_010.close()
        self.files.end(self.last_ts)

    def _offer(self, dialect: str) -> None:
        """One distinct dialect of a NEGOTIATE request: kept, or counted as `dialects_full`."""
        if dialect in self.dialects_offered:
            return
        if len(self.dialects_offered) < MAX_DIALECTS_KEPT:
            self.dialects_offered.append(dialect)
        else:
            self.anomalies[AnomalyKind.DIALECTS_FULL] += 1

    def _smb1_negotiate_request(self, request: Smb1NegotiateRequest, ts: float) -> None:
        self.smb1_dialects_requested = request.dialects
        for dialect in dict.fromkeys(request.dialects):  # a dialect listed twice is one offer
            self._offer(dialect)
            if dialect not in SMB2_DIALECTS_IN_SMB1_NEGOTIATE:
                self.smb1_offered = True

    def _smb1_negotiate_response(self, response: Smb1NegotiateResponse, ts: float) -> None:
        index = response.dialect_index
        self.negotiations += 1
        if index == SMB1_NO_DIALECT_SELECTED:
            self.server_negotiate = {"protocol": "smb1", "dialect_index": index, "no_dialect_acceptable": True}
            return
        self.smb1_used = True
        if index < len(self.smb1_dialects_requested):
            self.dialect = self.smb1_dialects_requested[index]
        elif not self.smb1_dialects_requested:
            self.dialect = "unknown"  # picked up midstream: the request with the names was not seen
        else:
            self.dialect = f"unknown-index-{index}"
            self._anomaly(
                Direction.SERVER_TO_CLIENT,
                Anomaly(
                    AnomalyKind.NEGOTIATE_UNKNOWN_DIALECT_INDEX, f"index {index} of {len(self.smb1_dialects_requested)}"
                ),
                ts,
            )
        security_mode = response.security_mode
        if response.word_count == 17 and security_mode is not None:
            self.server_signing_required = bool(security_mode & Smb1SecurityMode.NEGOTIATE_SECURITY_SIGNATURES_REQUIRED)
        capabilities = response.capabilities
        self.server_negotiate = {
            "protocol": "smb1",
            "dialect_index": index,
            "security_mode": security_mode,
            "capabilities": capabilities,
            "extended_security": bool(capabilities and capabilities & Smb1Capabilities.CAP_EXTENDED_SECURITY),
            "signing_enabled": bool(
                response.word_count == 17
                and security_mode
                and security_mode & Smb1SecurityMode.NEGOTIATE_SECURITY_SIGNATURES_ENABLED
            ),
            "max_mpx_count": response.max_mpx_count,
            "max_buffer_size": response.max_buffer_size,
            "server_guid": _guid(response.server_guid),
        }

    def _smb2(self, direction: Direction, message: Smb2Message, ts: float) -> None:
        header = message.header
        flags = header.flags
        self.smb2_messages += 1
        if flags & SMB2_FLAGS_SIGNED:
            self.signed_messages += 1
        command = header.command
        if command > _LAST_SMB2_COMMAND:
            command = _UNDEFINED_COMMAND  # one counter for all undefined codes keeps the table bounded
        self.commands[2, command, flags & SMB2_FLAGS_SERVER_TO_REDIR] += 1
        body = message.body
        if command in _SMB2_AUTH_COMMANDS:
            if flags & SMB2_FLAGS_SERVER_TO_REDIR:
                self.auth.smb2_response(header, body, command == _SMB2_SESSION_SETUP, ts)
            else:
                self.auth.smb2_request(header, body)
        elif command in _SMB2_FILE_COMMANDS:
            if command == _SMB2_CREATE and not flags & SMB2_FLAGS_SERVER_TO_REDIR:
                self.uses.smb2_request(command, header.tree_id)
            self.files.smb2(header, body, ts)
        elif isinstance(body, Smb2NegotiateRequest):
            self._smb2_negotiate_request(body)
        elif isinstance(body, Smb2NegotiateResponse):
            self._smb2_negotiate_response(body, ts)

    def _smb2_negotiate_request(self, request: Smb2NegotiateRequest) -> None:
        for revision in dict.fromkeys(request.dialects):
            self._offer(smb2_dialect_name(revision))
        self.client_signing_required = bool(request.security_mode & Smb2SecurityMode.SMB2_NEGOTIATE_SIGNING_REQUIRED)
        self.client_negotiate = {
            "protocol": "smb2",
            "security_mode": request.security_mode,
            "capabilities": request.capabilities,
            "client_guid": _guid(request.client_guid),
            "contexts": _contexts(request.contexts),
        }

    def _smb2_negotiate_response(self, response: Smb2NegotiateResponse, ts: float) -> None:
        # The wildcard answer to a multi-protocol negotiate is replaced by the real one later.
        if response.dialect != Smb2Dialect.SMB2_WILDCARD or self.dialect is None:
            self.dialect = smb2_dialect_name(response.dialect)
        if response.dialect != Smb2Dialect.SMB2_WILDCARD:
            self.negotiations += 1
        self.server_signing_required = bool(response.security_mode & Smb2SecurityMode.SMB2_NEGOTIATE_SIGNING_REQUIRED)
        self.server_negotiate = {
            "protocol": "smb2",
            "dialect": smb2_dialect_name(response.dialect),
            "security_mode": response.security_mode,
            "capabilities": response.capabilities,
            "server_guid": _guid(response.server_guid),
            "max_transact_size": response.max_transact_size,
            "max_read_size": response.max_read_size,
            "max_write_size": response.max_write_size,
            "contexts": _contexts(response.contexts),
        }

    def _transform(self, direction: Direction, header: Smb2TransformHeader, ts: float) -> None:
        self.encrypted_messages += 1

    def _compression(self, direction: Direction, header: Smb2CompressionTransformHeader, ts: float) -> None:
        self.compressed_messages += 1

    def _netbios_request(self, direction: Direction, request: NetbiosSessionRequest, ts: float) -> None:
        self.netbios_called_name = request.called_name
        self.netbios_calling_name = request.calling_name

    def _zeroed_header(self, direction: Direction, frame: ZeroedMessageHeader, ts: float) -> None:
        self.anomalies[AnomalyKind.ZEROED_MESSAGE_HEADER] += 1
        opening = not (self.smb1_messages or self.smb2_messages or self.encrypted_messages)
        if direction is Direction.CLIENT_TO_SERVER and opening:
            self.ms17_010.opening_frame(frame, ts)

    def _gap(self, direction: Direction, gap: ReassemblyGap, ts: float) -> None:
        """Gaps are counted by the flow table; requests may hide in them."""
        self.ms17_010.lost_sync()

    def _ignore(self, direction: Direction, event: StreamEvent, ts: float) -> None:
        """Other session packets carry no facts."""


def _guid(raw: bytes | None) -> str | None:
    if raw is None or len(raw) != 16:
        return None
    return str(uuid.UUID(bytes_le=raw))


def _names(enum_type: type[IntEnum], values: tuple[int, ...]) -> list[str]:
    return [enum_name(enum_type, value) for value in values]


def describe_context(context: NegotiateContext) -> dict[str, object]:
    """A negotiate context as JSON-ready names ([MS-SMB2] 2.2.3.1.x)."""
    match context:
        case PreauthIntegrityCapabilities():
            return {
                "type": "preauth_integrity",
                "hash_algorithms": _names(Smb2HashAlgorithm, context.hash_algorithms),
                "salt_length": context.salt_length,
            }
        case EncryptionCapabilities():
            return {"type": "encryption", "ciphers": _names(Smb2Cipher, context.ciphers)}
        case CompressionCapabilities():
            return {
                "type": "compression",
                "flags": context.flags,
                "algorithms": _names(Smb2CompressionAlgorithm, context.algorithms),
            }
        case NetnameNegotiateContextId():
            return {"type": "netname", "net_name": context.net_name}
        case TransportCapabilities():
            return {"type": "transport", "flags": context.flags}
        case RdmaTransformCapabilities():
            return {"type": "rdma_transform", "transform_ids": _names(Smb2RdmaTransformId, context.transform_ids)}
        case SigningCapabilities():
            return {"type": "signing", "algorithms": _names(Smb2SigningAlgorithm, context.algorithms)}
        case UnknownNegotiateContext():
            return {"type": f"unknown-0x{context.context_type:04x}", "data_length": context.data_length}
    return {"type": "unknown"}


def _contexts(contexts: tuple[NegotiateContext, ...]) -> list[dict[str, object]]:
    return [describe_context(context) for context in contexts]


_HANDLERS: dict[type, Callable[[SmbConnection, Direction, Any, float], None]] = {
    Anomaly: SmbConnection._anomaly,
    Smb1Message: SmbConnection._smb1,
    Smb2Message: SmbConnection._smb2,
    Smb2TransformHeader: SmbConnection._transform,
    Smb2CompressionTransformHeader: SmbConnection._compression,
    NetbiosSessionRequest: SmbConnection._netbios_request,
    NetbiosSessionPacket: SmbConnection._ignore,
    ReassemblyGap: SmbConnection._gap,
    ZeroedMessageHeader: SmbConnection._zeroed_header,
}
