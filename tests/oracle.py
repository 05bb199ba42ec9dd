"""Wireshark as the oracle: per-TCP-connection SMB facts read with tshark, in smbwatch's vocabulary.

Two backends read the same fields and give the same `FrameFacts`:

- `frames_via_pyshark` (pyshark, PDML): one pyshark layer per SMB message, so compound SMB2
  messages and SMB1 AndX chains are unambiguous. pyshark parses ~130 SMB frames/s here, so it is
  used for the small captures in `pcaps/`.
- `frames_via_tshark_fields` (`tshark -T fields`, ~100x faster): used for the public captures
  (~10k SMB frames: minutes with pyshark). In this format every field of a frame is one flat
  list, so which `smb.cmd` is an SMB1 header command and which an AndXCommand has to be worked
  out (`split_smb1_commands`); tests cross-check this backend against pyshark.

`connections` folds frames into one `OracleConnection` per `tcp.stream`, with the names and
shapes of smbwatch's JSON document (../shared/DESIGN.md section 4): message and command counts,
dialects, and the sessions (final SESSION_SETUP status, NTLMSSP AUTHENTICATE or legacy SMB1
account, SMB2 session flags, Kerberos AP-REQ realm and SPN) and tree connects of each connection.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SMB_PORTS = (445, 139)
DISPLAY_FILTER = "smb || smb2"
# smbwatch reassembles out-of-order segments; tshark 4.0 only does so with this preference.
TSHARK_PREFS = {"tcp.reassemble_out_of_order": "TRUE"}

# [MS-CIFS] 2.2.2.1 command codes; smbwatch names them without the SMB_COM_ prefix.
SMB1_COMMANDS = {
    0x00: "CREATE_DIRECTORY",
    0x01: "DELETE_DIRECTORY",
    0x02: "OPEN",
    0x03: "CREATE",
    0x04: "CLOSE",
    0x05: "FLUSH",
    0x06: "DELETE",
    0x07: "RENAME",
    0x08: "QUERY_INFORMATION",
    0x09: "SET_INFORMATION",
    0x0A: "READ",
    0x0B: "WRITE",
    0x0C: "LOCK_BYTE_RANGE",
    0x0D: "UNLOCK_BYTE_RANGE",
    0x0E: "CREATE_TEMPORARY",
    0x0F: "CREATE_NEW",
    0x10: "CHECK_DIRECTORY",
    0x11: "PROCESS_EXIT",
    0x12: "SEEK",
    0x13: "LOCK_AND_READ",
    0x14: "WRITE_AND_UNLOCK",
    0x1A: "READ_RAW",
    0x1B: "READ_MPX",
    0x1C: "READ_MPX_SECONDARY",
    0x1D: "WRITE_RAW",
    0x1E: "WRITE_MPX",
    0x1F: "WRITE_MPX_SECONDARY",
    0x20: "WRITE_COMPLETE",
    0x21: "QUERY_SERVER",
    0x22: "SET_INFORMATION2",
    0x23: "QUERY_INFORMATION2",
    0x24: "LOCKING_ANDX",
    0x25: "TRANSACTION",
    0x26: "TRANSACTION_SECONDARY",
    0x27: "IOCTL",
    0x28: "IOCTL_SECONDARY",
    0x29: "COPY",
    0x2A: "MOVE",
    0x2B: "ECHO",
    0x2C: "WRITE_AND_CLOSE",
    0x2D: "OPEN_ANDX",
    0x2E: "READ_ANDX",
    0x2F: "WRITE_ANDX",
    0x30: "NEW_FILE_SIZE",
    0x31: "CLOSE_AND_TREE_DISC",
    0x32: "TRANSACTION2",
    0x33: "TRANSACTION2_SECONDARY",
    0x34: "FIND_CLOSE2",
    0x35: "FIND_NOTIFY_CLOSE",
    0x70: "TREE_CONNECT",
    0x71: "TREE_DISCONNECT",
    0x72: "NEGOTIATE",
    0x73: "SESSION_SETUP_ANDX",
    0x74: "LOGOFF_ANDX",
    0x75: "TREE_CONNECT_ANDX",
    0x7E: "SECURITY_PACKAGE_ANDX",
    0x80: "QUERY_INFORMATION_DISK",
    0x81: "SEARCH",
    0x82: "FIND",
    0x83: "FIND_UNIQUE",
    0x84: "FIND_CLOSE",
    0xA0: "NT_TRANSACT",
    0xA1: "NT_TRANSACT_SECONDARY",
    0xA2: "NT_CREATE_ANDX",
    0xA4: "NT_CANCEL",
    0xA5: "NT_RENAME",
    0xC0: "OPEN_PRINT_FILE",
    0xC1: "WRITE_PRINT_FILE",
    0xC2: "CLOSE_PRINT_FILE",
    0xC3: "GET_PRINT_QUEUE",
    0xD8: "READ_BULK",
    0xD9: "WRITE_BULK",
    0xDA: "WRITE_BULK_DATA",
    0xFE: "INVALID",
    0xFF: "NO_ANDX_COMMAND",
}
# Commands whose parameter block starts with an AndX block ([MS-CIFS] 2.2.4, [MS-SMB] 2.2.4).
SMB1_ANDX_COMMANDS = frozenset({0x24, 0x2D, 0x2E, 0x2F, 0x73, 0x74, 0x75, 0x7E, 0xA2})
SMB1_NO_ANDX_COMMAND = 0xFF
SMB1_NO_DIALECT_SELECTED = 0xFFFF

# [MS-SMB2] 2.2.1.2 command codes, named as smbwatch names them.
SMB2_COMMANDS = {
    0x00: "NEGOTIATE",
    0x01: "SESSION_SETUP",
    0x02: "LOGOFF",
    0x03: "TREE_CONNECT",
    0x04: "TREE_DISCONNECT",
    0x05: "CREATE",
    0x06: "CLOSE",
    0x07: "FLUSH",
    0x08: "READ",
    0x09: "WRITE",
    0x0A: "LOCK",
    0x0B: "IOCTL",
    0x0C: "CANCEL",
    0x0D: "ECHO",
    0x0E: "QUERY_DIRECTORY",
    0x0F: "CHANGE_NOTIFY",
    0x10: "QUERY_INFO",
    0x11: "SET_INFO",
    0x12: "OPLOCK_BREAK",
    0x13: "SERVER_TO_CLIENT_NOTIFICATION",
}
SMB2_DIALECTS = {
    0x0202: "2.0.2",
    0x0210: "2.1",
    0x0222: "2.2.2",
    0x0224: "2.2.4",
    0x0300: "3.0",
    0x0302: "3.0.2",
    0x0310: "3.1",
    0x0311: "3.1.1",
    0x02FF: "2.???",
}
SMB2_WILDCARD = "2.???"
# smb2.protocol_id of the three SMB2 header kinds ([MS-SMB2] 2.2.1, 2.2.41, 2.2.42).
SMB2_PROTOCOL_IDS = {0xFE534D42: "smb2", 0xFD534D42: "encrypted", 0xFC534D42: "compressed"}

# Authentication: the commands followed, by (protocol, code).
SESSION_SETUP = "session_setup"
TREE_CONNECT = "tree_connect"
AUTH_COMMANDS = {
    ("smb1", 0x73): SESSION_SETUP,  # SESSION_SETUP_ANDX
    ("smb1", 0x75): TREE_CONNECT,  # TREE_CONNECT_ANDX
    ("smb2", 0x01): SESSION_SETUP,
    ("smb2", 0x03): TREE_CONNECT,
}
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016  # an intermediate SESSION_SETUP leg, not a final status
KERBEROS_AP_REQ = 14  # kerberos.msg_type
# [MS-SMB2] 2.2.6 SessionFlags, named as smbwatch names them.
SMB2_SESSION_FLAGS = ((0x0001, "is_guest"), (0x0002, "is_null"), (0x0004, "encrypt_data"))
# tshark's NTLMSSP dissector shows an empty user, domain or host as "NULL".
TSHARK_EMPTY_STRING = "NULL"
Identity = tuple[str, str, str | None]  # (user, domain, host); host None: a legacy SMB1 session setup


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


def smb1_command_name(code: int) -> str:
    return SMB1_COMMANDS.get(code, f"unknown-0x{code:02x}")


def smb2_command_name(code: int) -> str:
    return SMB2_COMMANDS.get(code, f"unknown-0x{code:04x}")


def smb2_dialect_name(revision: int) -> str:
    return SMB2_DIALECTS.get(revision, f"unknown-0x{revision:04x}")


@cache
def nt_status_names() -> dict[int, str]:
    """tshark's own names of NTSTATUS values: the value string of `smb2.nt_status` (`tshark -G values`,
    read until that table ends: the whole dump is ~90 MB)."""
    prefix = "V\tsmb2.nt_status\t"
    names: dict[int, str] = {}
    with subprocess.Popen(
        ["tshark", "-G", "values"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as dump:
        assert dump.stdout is not None
        for line in dump.stdout:
            if line.startswith(prefix):
                _, _, value, name = line.rstrip("\n").split("\t", 3)
                names[int(value, 0)] = name
            elif names:
                break
        dump.kill()
    if not names:
        raise RuntimeError("tshark -G values lists no smb2.nt_status names")
    return names


def nt_status_name(status: int) -> str:
    """The "STATUS_…" name tshark gives `status`; `unknown-0x…` (8 hex digits) where tshark has no name."""
    return nt_status_names().get(status, f"unknown-0x{status:08x}")


def session_flag_names(flags: int) -> list[str]:
    return [name for bit, name in SMB2_SESSION_FLAGS if flags & bit]


def ntlmssp_string(text: str) -> str:
    return "" if text == TSHARK_EMPTY_STRING else text


@dataclass(frozen=True, slots=True)
class Message:
    """One SMB message header as tshark dissected it."""

    protocol: str  # "smb1", "smb2", "encrypted" (transform header) or "compressed"
    command: int | None  # None for transform / compression headers
    response: bool
    chained: tuple[int, ...] = ()  # SMB1 commands chained behind the header's by AndX


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """A SESSION_SETUP or TREE_CONNECT request or response (SMB1: in the header or chained by AndX)."""

    protocol: str  # "smb1" or "smb2"
    kind: str  # SESSION_SETUP or TREE_CONNECT
    response: bool
    key: tuple[int, ...]  # pairs a response with its request: SMB2 (MessageId,), SMB1 (PID, MID)
    session_id: int  # SMB2 SessionId, SMB1 UID
    status: int | None = None  # responses: NTSTATUS (SMB1 DOS errors as the 4 header bytes, little-endian)
    session_flags: int | None = None  # SMB2 SESSION_SETUP responses that carry a body
    # SESSION_SETUP requests: (user, domain, host) of an NTLMSSP AUTHENTICATE, or (account, primary
    # domain, None) of a legacy SMB1 SESSION_SETUP_ANDX without extended security
    identity: Identity | None = None
    kerberos: tuple[str, str] | None = None  # SESSION_SETUP requests with a Kerberos AP-REQ: (realm, SPN)
    path: str | None = None  # TREE_CONNECT requests


@dataclass(frozen=True, slots=True)
class FrameFacts:
    """What one frame carried: its TCP endpoints and the SMB messages tshark found in it."""

    number: int
    stream: int
    src: tuple[str, int]
    dst: tuple[str, int]
    messages: tuple[Message, ...]
    smb1_dialects_requested: tuple[str, ...] = ()  # SMB1 NEGOTIATE request: the dialect strings
    smb1_dialect_index: int | None = None  # SMB1 NEGOTIATE response: the selected index
    smb2_dialects: tuple[str, ...] = ()  # SMB2 NEGOTIATE request (offered) or response (selected)
    auth: tuple[AuthMessage, ...] = ()  # SESSION_SETUP and TREE_CONNECT messages, in order


@dataclass(slots=True)
class OracleConnection:
    """One `tcp.stream` that carried SMB, in the shape of smbwatch's `connections[*]`."""

    stream: int
    client: tuple[str, int]
    server: tuple[str, int]
    messages: Counter[str] = field(default_factory=Counter)
    commands: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    dialects_offered: list[str] = field(default_factory=list)
    dialect: str | None = None
    frames: list[int] = field(default_factory=list)
    sessions: dict[int, dict[str, Any]] = field(default_factory=dict)  # by SessionId / UID, in order
    trees_requested: list[str | None] = field(default_factory=list)  # TREE_CONNECT request paths, in order
    trees: list[dict[str, Any]] = field(default_factory=list)  # answered TREE_CONNECTs, in response order
    _smb1_requested: tuple[str, ...] = ()
    _pending: dict[tuple[Any, ...], AuthMessage] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (*self.client, *self.server)

    def count(self, protocol: str, name: str, response: bool) -> None:
        per_command = self.commands.setdefault(protocol, {}).setdefault(name, {"requests": 0, "responses": 0})
        per_command["responses" if response else "requests"] += 1

    def offer(self, dialect: str) -> None:
        if dialect not in self.dialects_offered:
            self.dialects_offered.append(dialect)

    def add(self, frame: FrameFacts) -> None:
        self.frames.append(frame.number)
        for message in frame.messages:
            self.messages[message.protocol] += 1
            if message.protocol == "smb1" and message.command is not None:
                for command in (message.command, *message.chained):
                    self.count("smb1", smb1_command_name(command), message.response)
            elif message.protocol == "smb2" and message.command is not None:
                self.count("smb2", smb2_command_name(message.command), message.response)
        self._negotiate(frame)
        for auth in frame.auth:
            self._authenticate(auth)

    def _authenticate(self, message: AuthMessage) -> None:
        """A request waits for its response; a session is the SessionId (SMB2) or UID (SMB1) a
        SESSION_SETUP response names. It takes the identity and Kerberos ticket of the requests
        answered for it, and its status and flags from its last response that was not an
        intermediate STATUS_MORE_PROCESSING_REQUIRED leg."""
        key = (message.protocol, message.kind, message.key)
        if not message.response:
            self._pending[key] = message
            if message.kind == TREE_CONNECT:
                self.trees_requested.append(message.path)
            return
        request = self._pending.pop(key, None)
        session_id = f"0x{message.session_id:x}"
        status = None if message.status is None else nt_status_name(message.status)
        if message.kind == TREE_CONNECT:
            path = request.path if request is not None else None
            self.trees.append({"path": path, "status": status, "session_id": session_id})
            return
        session = self.sessions.get(message.session_id)
        if session is None:
            session = self.sessions[message.session_id] = {
                "session_id": session_id,
                "status": None,
                "user": None,
                "domain": None,
                "workstation": None,
                "session_flags": [],
                "kerberos": None,
            }
        if request is not None and request.identity is not None:
            session["user"], session["domain"], session["workstation"] = request.identity
        if request is not None and request.kerberos is not None:
            realm, principal = request.kerberos
            session["kerberos"] = {"realm": realm, "service_principal": principal}
        if message.status != STATUS_MORE_PROCESSING_REQUIRED:
            session["status"] = status
            if message.session_flags is not None:
                session["session_flags"] = session_flag_names(message.session_flags)

    def unanswered_session_setups(self) -> list[str]:
        """SESSION_SETUP requests that named a user or a service and got no response (smbwatch
        reports a session only once the server answered)."""
        out = []
        for message in self._pending.values():
            if message.kind == SESSION_SETUP and message.identity is not None:
                user, domain, host = message.identity
                out.append(f"user={user!r} domain={domain!r} host={host!r}")
            if message.kind == SESSION_SETUP and message.kerberos is not None:
                out.append("kerberos {} {}".format(*message.kerberos))
        return out

    def _negotiate(self, frame: FrameFacts) -> None:
        """The dialect rules of the contract: SMB1 names the requested string at the selected index
        ("unknown" when the request was not seen); SMB2 names the revision; the 0x02FF wildcard
        never replaces a dialect already known (a real negotiate follows it)."""
        if frame.smb1_dialects_requested:
            self._smb1_requested = frame.smb1_dialects_requested
            for dialect in frame.smb1_dialects_requested:
                self.offer(dialect)
        index = frame.smb1_dialect_index
        if index is not None and index != SMB1_NO_DIALECT_SELECTED:
            if index < len(self._smb1_requested):
                self.dialect = self._smb1_requested[index]
            elif not self._smb1_requested:
                self.dialect = "unknown"
            else:
                self.dialect = f"unknown-index-{index}"
        negotiate = [m for m in frame.messages if m.protocol == "smb2" and m.command == 0]
        if negotiate and frame.smb2_dialects:
            if negotiate[0].response:
                selected = frame.smb2_dialects[0]
                if selected != SMB2_WILDCARD or self.dialect is None:
                    self.dialect = selected
            else:
                for dialect in frame.smb2_dialects:
                    self.offer(dialect)

    def describe(self) -> dict[str, Any]:
        """The compared facts, keyed like smbwatch's JSON."""
        return {
            "dialect": self.dialect,
            "messages": {name: self.messages[name] for name in ("smb1", "smb2", "encrypted", "compressed")},
            "commands": self.commands,
            "sessions": list(self.sessions.values()),
            "trees": self.trees,
        }


def _endpoint_roles(frame: FrameFacts) -> tuple[tuple[str, int], tuple[str, int]]:
    """(client, server): the server is the side on 445/139, else the side that sends responses."""
    if frame.dst[1] in SMB_PORTS and frame.src[1] not in SMB_PORTS:
        return frame.src, frame.dst
    if frame.src[1] in SMB_PORTS and frame.dst[1] not in SMB_PORTS:
        return frame.dst, frame.src
    responds = any(m.response for m in frame.messages)
    return (frame.dst, frame.src) if responds else (frame.src, frame.dst)


def connections(frames: Iterable[FrameFacts]) -> dict[int, OracleConnection]:
    """Fold frames (in capture order) into one connection per tcp.stream."""
    out: dict[int, OracleConnection] = {}
    for frame in frames:
        connection = out.get(frame.stream)
        if connection is None:
            client, server = _endpoint_roles(frame)
            connection = out[frame.stream] = OracleConnection(frame.stream, client, server)
        connection.add(frame)
    return out


# --- pyshark backend ---------------------------------------------------------------------------


def _all(layer: Any, name: str) -> list[str]:
    value = layer.get_field(name)
    return [] if value is None else [str(item.show) for item in value.all_fields]


def _int(text: str) -> int:
    return int(text, 0)


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true")


def _smb1_status(nt_status: list[str], error_class: list[str], error_code: list[str]) -> int | None:
    """The header's Status: an NTSTATUS, or (NT status flag clear) the DOS error class and code as
    the same 4 bytes read little-endian ([MS-CIFS] 2.2.3.1)."""
    if nt_status:
        return _int(nt_status[0])
    if error_class and error_code:
        return _int(error_class[0]) | _int(error_code[0]) << 16
    return None


def _ntlmssp_identity(users: list[str], domains: list[str], hosts: list[str]) -> Identity | None:
    if not users:
        return None
    if not len(users) == len(domains) == len(hosts) == 1:
        raise ValueError(f"one NTLMSSP AUTHENTICATE expected: users {users}, domains {domains}, hosts {hosts}")
    return ntlmssp_string(users[0]), ntlmssp_string(domains[0]), ntlmssp_string(hosts[0])


def _kerberos_ap_req(msg_types: list[str], realms: list[str], names: list[str]) -> tuple[str, str] | None:
    if KERBEROS_AP_REQ not in [_int(value) for value in msg_types]:
        return None
    if len(msg_types) != 1 or len(realms) != 1:
        raise ValueError(f"one Kerberos AP-REQ expected: msg_type {msg_types}, realm {realms}")
    return realms[0], "/".join(names)


def _pyshark_auth(layer: Any, message: Message) -> list[AuthMessage]:
    """The SESSION_SETUP / TREE_CONNECT messages of one pyshark smb or smb2 layer (one SMB message)."""
    protocol, response, kinds = message.protocol, message.response, _auth_kinds(message)
    if not kinds:
        return []
    if protocol == "smb2":
        key: tuple[int, ...] = (_int(_all(layer, "msg_id")[0]),)
        session_id = _int(_all(layer, "sesid")[0])
        statuses = _all(layer, "nt_status")
        status = _int(statuses[0]) if response and statuses else None
    else:
        key = (_int(_all(layer, "pid")[0]), _int(_all(layer, "mid")[0]))
        session_id = _int(_all(layer, "uid")[0])
        status = _smb1_status(_all(layer, "nt_status"), _all(layer, "error_class"), _all(layer, "error_code"))
        status = status if response else None
    out = []
    for kind in kinds:
        if response:
            flags = _all(layer, "session_flags") if kind == SESSION_SETUP and protocol == "smb2" else []
            out.append(AuthMessage(protocol, kind, True, key, session_id, status, _int(flags[0]) if flags else None))
        elif kind == TREE_CONNECT:
            # The path requested is the last smb.path / smb2.tree of the message: the header may
            # show the path of its (already known) TreeId before it.
            paths = _all(layer, "path" if protocol == "smb1" else "tree")
            out.append(AuthMessage(protocol, kind, False, key, session_id, path=paths[-1] if paths else None))
        else:
            identity = _ntlmssp_identity(
                _all(layer, "ntlmssp.auth.username"),
                _all(layer, "ntlmssp.auth.domain"),
                _all(layer, "ntlmssp.auth.hostname"),
            )
            accounts = _all(layer, "account") if protocol == "smb1" else []
            if identity is None and accounts:
                domains = _all(layer, "primary_domain")
                identity = (accounts[0], domains[0] if domains else "", None)
            kerberos = _kerberos_ap_req(
                _all(layer, "kerberos.msg_type"), _all(layer, "kerberos.realm"), _all(layer, "kerberos.SNameString")
            )
            out.append(AuthMessage(protocol, kind, False, key, session_id, identity=identity, kerberos=kerberos))
    return out


def frames_via_pyshark(path: str | Path) -> list[FrameFacts]:
    """Every frame tshark shows SMB in, read through pyshark (PDML: one layer per SMB message)."""
    import pyshark  # imported here: collecting the tests must not need it

    capture = pyshark.FileCapture(
        str(path), display_filter=DISPLAY_FILTER, keep_packets=False, use_json=False, override_prefs=TSHARK_PREFS
    )
    out = []
    try:
        for packet in capture:
            if "TCP" not in packet:
                continue  # SMB over UDP (browser mailslots): smbwatch looks at TCP only
            ip = packet.ip if "IP" in packet else packet.ipv6
            messages: list[Message] = []
            requested: tuple[str, ...] = ()
            index = None
            smb2_dialects: tuple[str, ...] = ()
            auth: list[AuthMessage] = []
            for layer in packet.layers:
                if layer.layer_name == "smb":
                    commands = _all(layer, "cmd")  # the header command first, AndXCommands after it
                    if not commands:
                        continue
                    response = _bool(_all(layer, "flags_response")[0])
                    chained = tuple(code for code in map(_int, commands[1:]) if code != SMB1_NO_ANDX_COMMAND)
                    messages.append(Message("smb1", _int(commands[0]), response, chained))
                    auth += _pyshark_auth(layer, messages[-1])
                    if _int(commands[0]) == 0x72:
                        if not response:
                            requested = tuple(_all(layer, "dialect_name"))
                        elif indexes := _all(layer, "dialect_index"):
                            index = _int(indexes[0])
                elif layer.layer_name == "smb2":
                    protocol_ids = _all(layer, "protocol_id")
                    kind = SMB2_PROTOCOL_IDS.get(_int(protocol_ids[0]), "smb2") if protocol_ids else "smb2"
                    if kind != "smb2":
                        messages.append(Message(kind, None, False))
                        continue
                    commands = _all(layer, "cmd")
                    if not commands:
                        continue
                    response = _bool(_all(layer, "flags_response")[0])
                    messages.append(Message("smb2", _int(commands[0]), response))
                    auth += _pyshark_auth(layer, messages[-1])
                    if _int(commands[0]) == 0 and not smb2_dialects:
                        smb2_dialects = tuple(smb2_dialect_name(_int(d)) for d in _all(layer, "dialect"))
            if not messages:
                continue
            out.append(
                FrameFacts(
                    number=int(packet.number),
                    stream=int(packet.tcp.stream),
                    src=(str(ip.src), int(packet.tcp.srcport)),
                    dst=(str(ip.dst), int(packet.tcp.dstport)),
                    messages=tuple(messages),
                    smb1_dialects_requested=requested,
                    smb1_dialect_index=index,
                    smb2_dialects=smb2_dialects,
                    auth=tuple(auth),
                )
            )
    finally:
        capture.close()
    return out


# --- tshark -T fields backend ------------------------------------------------------------------

FIELDS = (
    "frame.number",
    "tcp.stream",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "smb.server_component",  # once per SMB1 header
    "smb.cmd",  # header command and every AndXCommand, in order
    "smb.andxoffset",  # once per AndXCommand
    "smb.flags.response",  # once per SMB1 header
    "smb.dialect.name",
    "smb.dialect.index",
    "smb2.protocol_id",  # once per SMB2 header of any kind (0xFE, 0xFD transform, 0xFC compression)
    "smb2.cmd",  # once per 0xFE header
    "smb2.flags.response",  # once per 0xFE header
    "smb2.dialect",
    # SESSION_SETUP and TREE_CONNECT (read only for frames that carry one)
    "smb.pid",  # once per SMB1 header
    "smb.mid",  # once per SMB1 header
    "smb.uid",  # once per SMB1 header
    "smb.nt_status",  # once per SMB1 header with the NT status flag
    "smb.error_class",  # once per SMB1 header without it (DOS error)
    "smb.error_code",
    "smb.path",  # TREE_CONNECT_ANDX request; also shown, generated, for every header with a known TID
    "smb.account",  # legacy SESSION_SETUP_ANDX request ("" when empty: then not visible in this format)
    "smb.primary_domain",  # legacy SESSION_SETUP_ANDX request, and responses
    "smb.ansi_pwlen",  # legacy SESSION_SETUP_ANDX request (NT LM 0.12 form)
    "smb.pwlen",  # legacy SESSION_SETUP_ANDX request (LANMAN form), and TREE_CONNECT_ANDX request
    "smb2.msg_id",  # once per 0xFE header
    "smb2.sesid",  # once per 0xFE header and per transform header
    "smb2.nt_status",  # once per 0xFE response header
    "smb2.session_flags",  # SESSION_SETUP response with a body
    "smb2.tree",  # TREE_CONNECT request; also shown, generated, for headers with a known TreeId
    "ntlmssp.auth.username",  # once per NTLMSSP AUTHENTICATE
    "ntlmssp.auth.domain",
    "ntlmssp.auth.hostname",
    "kerberos.msg_type",
    "kerberos.realm",
    "kerberos.SNameString",
)
AGGREGATOR = "\x1f"  # dialect strings may contain commas


def split_smb1_commands(commands: Sequence[int], headers: int) -> list[tuple[int, ...]] | None:
    """The commands of each of `headers` SMB1 messages (header command first, then the AndX chain
    without its 0xFF end), from the flat `smb.cmd` list of a frame.

    Every message contributes its header command and, when it has an AndX block, a chain of
    AndXCommands ending with 0xFF or with a command that has no AndX block. An AndX command may
    come without a chain (an error response with WordCount 0), so this searches for the split
    that uses every value for exactly `headers` messages; None if there is no such split.
    """

    def chain_end(start: int) -> list[int]:
        """Positions after which the chain that starts at `start` (an AndX command) may end."""
        ends = [start + 1]  # no AndX block
        position = start + 1
        command = commands[start]
        while command in SMB1_ANDX_COMMANDS and position < len(commands):
            command = commands[position]
            position += 1
            if command == SMB1_NO_ANDX_COMMAND or command not in SMB1_ANDX_COMMANDS:
                ends.insert(0, position)
                break
        return ends

    def chain(start: int, end: int) -> tuple[int, ...]:
        return (commands[start], *(code for code in commands[start + 1 : end] if code != SMB1_NO_ANDX_COMMAND))

    def solve(start: int, remaining: int) -> list[tuple[int, ...]] | None:
        if remaining == 0:
            return [] if start == len(commands) else None
        if start >= len(commands):
            return None
        ends = chain_end(start) if commands[start] in SMB1_ANDX_COMMANDS else [start + 1]
        for end in ends:
            rest = solve(end, remaining - 1)
            if rest is not None:
                return [chain(start, end), *rest]
        return None

    if headers == 1:
        return [chain(0, len(commands))] if commands else None
    return solve(0, headers)


def _split(value: str) -> list[str]:
    return [item for item in value.split(AGGREGATOR) if item] if value else []


def _per_header(row: dict[str, str], name: str, count: int) -> list[int]:
    values = _split(row[name])
    if len(values) != count:
        raise ValueError(f"{count} values of {name} expected (one per header), got {row[name]!r}")
    return [_int(value) for value in values]


def request_paths(values: Sequence[str], requests: Sequence[int], messages: int) -> dict[int, str | None]:
    """Path of each TREE_CONNECT request (by message index) from a frame's flat path list: the
    generated paths of headers with a known tree id come along, so the values are attributable only
    when there is one per request, or when the only request is the frame's last message (its body's
    path is the frame's last value)."""
    if len(values) == len(requests):
        return dict(zip(requests, values, strict=True))
    if not values or not requests:
        return dict.fromkeys(requests)
    if requests == [messages - 1]:
        return {requests[0]: values[-1]}
    raise ValueError(f"cannot attribute paths {values} to the TREE_CONNECT requests {requests}")


def _auth_kinds(message: Message) -> list[str]:
    if message.command is None:
        return []
    codes = (message.command, *message.chained)
    return [AUTH_COMMANDS[message.protocol, code] for code in codes if (message.protocol, code) in AUTH_COMMANDS]


def _fields_auth(row: dict[str, str], smb1: list[Message], smb2: list[Message], transforms: int) -> list[AuthMessage]:
    """The SESSION_SETUP / TREE_CONNECT messages of one frame, from `tshark -T fields`' flat lists.

    Header fields come once per header, in message order. A request's NTLMSSP, Kerberos and legacy
    account fields belong to the frame's only SESSION_SETUP request (NTLMSSP elsewhere, e.g. in a
    DCE/RPC bind over a pipe, is not a session's); ValueError where the lists are ambiguous."""
    smb1_kinds = [_auth_kinds(message) for message in smb1]
    smb2_kinds = [_auth_kinds(message) for message in smb2]
    if not any(smb1_kinds) and not any(smb2_kinds):
        return []
    setup_requests = [
        (message.protocol, index)
        for messages, kinds_of in ((smb1, smb1_kinds), (smb2, smb2_kinds))
        for index, (message, kinds) in enumerate(zip(messages, kinds_of, strict=True))
        if SESSION_SETUP in kinds and not message.response
    ]
    identity = _ntlmssp_identity(
        _split(row["ntlmssp.auth.username"]), _split(row["ntlmssp.auth.domain"]), _split(row["ntlmssp.auth.hostname"])
    )
    kerberos = _kerberos_ap_req(
        _split(row["kerberos.msg_type"]), _split(row["kerberos.realm"]), _split(row["kerberos.SNameString"])
    )
    smb1_tree_requests = [i for i, kinds in enumerate(smb1_kinds) if TREE_CONNECT in kinds and not smb1[i].response]
    legacy = bool(_split(row["smb.account"]) or _split(row["smb.ansi_pwlen"]))
    legacy = legacy or len(_split(row["smb.pwlen"])) > len(smb1_tree_requests)
    if identity is None and legacy and any(protocol == "smb1" for protocol, _ in setup_requests):
        if AGGREGATOR in row["smb.account"] + row["smb.primary_domain"]:
            raise ValueError(f"several legacy accounts {row['smb.account']!r} {row['smb.primary_domain']!r}")
        identity = (row["smb.account"], row["smb.primary_domain"], None)
    if (identity is not None or kerberos is not None) and len(setup_requests) > 1:
        raise ValueError(f"cannot attribute an identity to one of the SESSION_SETUP requests {setup_requests}")
    out: list[AuthMessage] = []
    if any(smb1_kinds):
        pids, mids = _per_header(row, "smb.pid", len(smb1)), _per_header(row, "smb.mid", len(smb1))
        uids = _per_header(row, "smb.uid", len(smb1))
        nt_status = _split(row["smb.nt_status"])
        if len(nt_status) == len(smb1):
            statuses: list[int | None] = [_int(value) for value in nt_status]
        else:
            classes = _per_header(row, "smb.error_class", len(smb1) - len(nt_status))
            codes = _per_header(row, "smb.error_code", len(smb1) - len(nt_status))
            if nt_status:
                raise ValueError(f"NT and DOS statuses mixed in one frame: {nt_status} {classes} {codes}")
            statuses = [error_class | code << 16 for error_class, code in zip(classes, codes, strict=True)]
        paths = request_paths(_split(row["smb.path"]), smb1_tree_requests, len(smb1))
        for index, (message, kinds) in enumerate(zip(smb1, smb1_kinds, strict=True)):
            key: tuple[int, ...] = (pids[index], mids[index])
            for kind in kinds:
                if message.response:
                    out.append(AuthMessage("smb1", kind, True, key, uids[index], statuses[index]))
                elif kind == TREE_CONNECT:
                    out.append(AuthMessage("smb1", kind, False, key, uids[index], path=paths[index]))
                else:
                    out.append(AuthMessage("smb1", kind, False, key, uids[index], identity=identity, kerberos=kerberos))
    if any(smb2_kinds):
        if transforms:
            raise ValueError("SESSION_SETUP or TREE_CONNECT in a frame with transform headers")
        msg_ids, session_ids = _per_header(row, "smb2.msg_id", len(smb2)), _per_header(row, "smb2.sesid", len(smb2))
        responses = [index for index, message in enumerate(smb2) if message.response]
        status_of = dict(zip(responses, _per_header(row, "smb2.nt_status", len(responses)), strict=True))
        # SessionFlags come with every SESSION_SETUP response except error responses (no body).
        setups = [i for i in responses if smb2_kinds[i] == [SESSION_SETUP]]
        flags = _split(row["smb2.session_flags"])
        if len(flags) != len(setups):
            setups = [i for i in setups if status_of[i] in (0, STATUS_MORE_PROCESSING_REQUIRED)]
        flags_of = dict(zip(setups, map(_int, flags), strict=True))
        tree_requests = [i for i, kinds in enumerate(smb2_kinds) if kinds == [TREE_CONNECT] and not smb2[i].response]
        paths = request_paths(_split(row["smb2.tree"]), tree_requests, len(smb2))
        for index, (message, kinds) in enumerate(zip(smb2, smb2_kinds, strict=True)):
            key = (msg_ids[index],)
            for kind in kinds:
                if message.response:
                    status, session_flags = status_of[index], flags_of.get(index)
                    out.append(AuthMessage("smb2", kind, True, key, session_ids[index], status, session_flags))
                elif kind == TREE_CONNECT:
                    out.append(AuthMessage("smb2", kind, False, key, session_ids[index], path=paths[index]))
                else:
                    out.append(
                        AuthMessage("smb2", kind, False, key, session_ids[index], identity=identity, kerberos=kerberos)
                    )
    return out


def frames_via_tshark_fields(path: str | Path) -> list[FrameFacts]:
    """The same facts as `frames_via_pyshark`, from one `tshark -T fields` run."""
    command = ["tshark", "-n", "-r", str(path), "-Y", DISPLAY_FILTER, "-T", "fields"]
    for name, value in TSHARK_PREFS.items():
        command += ["-o", f"{name}:{value}"]
    command += ["-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}", "-E", "separator=\t"]
    for name in FIELDS:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 and not result.stdout:
        raise RuntimeError(f"tshark failed on {path}: {result.stderr.strip()}")
    out = []
    for line in result.stdout.splitlines():
        row = dict(zip(FIELDS, line.split("\t"), strict=False))
        if not row.get("tcp.stream"):
            continue  # SMB over UDP (browser mailslots): smbwatch looks at TCP only
        messages: list[Message] = []
        smb1_headers = len(_split(row["smb.server_component"]))
        smb1_responses = [_bool(v) for v in _split(row["smb.flags.response"])]
        smb1_commands = split_smb1_commands([_int(v) for v in _split(row["smb.cmd"])], smb1_headers)
        if smb1_headers and (smb1_commands is None or len(smb1_responses) != smb1_headers):
            raise ValueError(f"{path} frame {row['frame.number']}: cannot split SMB1 commands {row['smb.cmd']!r}")
        requested: tuple[str, ...] = ()
        index = None
        for (command_code, *chained), response in zip(smb1_commands or [], smb1_responses, strict=True):
            messages.append(Message("smb1", command_code, response, tuple(chained)))
            if command_code == 0x72:
                if not response:
                    # An empty dialect string is a real offer (nmap sends one): keep empty items here.
                    requested = tuple(row["smb.dialect.name"].split(AGGREGATOR)) if row["smb.dialect.name"] else ()
                elif indexes := _split(row["smb.dialect.index"]):
                    index = _int(indexes[0])
        smb2_commands = iter(zip(_split(row["smb2.cmd"]), _split(row["smb2.flags.response"]), strict=True))
        smb2_dialects: tuple[str, ...] = ()
        for protocol_id in _split(row["smb2.protocol_id"]):
            kind = SMB2_PROTOCOL_IDS.get(_int(protocol_id), "smb2")
            if kind != "smb2":
                messages.append(Message(kind, None, False))
                continue
            code, response = next(smb2_commands)
            messages.append(Message("smb2", _int(code), _bool(response)))
            if _int(code) == 0 and not smb2_dialects:
                smb2_dialects = tuple(smb2_dialect_name(_int(d)) for d in _split(row["smb2.dialect"]))
        if not messages:
            continue
        smb1 = [message for message in messages if message.protocol == "smb1"]
        smb2 = [message for message in messages if message.protocol == "smb2"]
        try:
            auth = _fields_auth(row, smb1, smb2, len(messages) - len(smb1) - len(smb2))
        except ValueError as error:
            raise ValueError(f"{path} frame {row['frame.number']}: {error}") from None
        src_ip = row["ip.src"] or row["ipv6.src"]
        dst_ip = row["ip.dst"] or row["ipv6.dst"]
        out.append(
            FrameFacts(
                number=int(row["frame.number"]),
                stream=int(_split(row["tcp.stream"])[0]),
                src=(_split(src_ip)[0], int(_split(row["tcp.srcport"])[0])),
                dst=(_split(dst_ip)[0], int(_split(row["tcp.dstport"])[0])),
                messages=tuple(messages),
                smb1_dialects_requested=requested,
                smb1_dialect_index=index,
                smb2_dialects=smb2_dialects,
                auth=tuple(auth),
            )
        )
    return out
