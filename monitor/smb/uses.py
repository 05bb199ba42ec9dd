"""What a connection was used for, from what crossed it: the question an SMB1 retirement turns on.

Disabling SMB1 breaks a *use* (a mapped drive, a printer, network browsing), not
an address pair, so every connection is classified by the trees it connected,
the commands it sent on each, the named pipes it opened and the RAP functions it
called over ``\\PIPE\\LANMAN``:

- ``file_access``: a disk share connected, or file commands on one;
- ``printing``: a printer share, or the SMB1 print-file commands;
- ``named_pipe``: pipes opened or transacted on IPC$ (DCE/RPC such as srvsvc, spoolss);
- ``browsing``: RAP over ``\\PIPE\\LANMAN`` (NetServerEnum2, NetShareEnum, ...), which
  has no SMB2 equivalent at all;
- ``session_only``: a login and nothing else (an IPC$ tree with nothing in it included);
- ``negotiate_only``: the dialect negotiation and nothing else;
- ``refused``: the server refused every dialect the client offered.

`attack` is added by the retirement report, from the alerts, not here.
A pipe open the server answered with an error (smbclient's ``\\srvsvc`` on a
server without DCE/RPC, before it falls back to RAP) used no pipe: it is not a
``named_pipe`` use. An open whose answer was not seen still counts.
Per-connection memory is capped like everything else: a request on a tree past the
`MAX_TREES_TRACKED` tracked (its activity not recorded), and an open past the
`MAX_OPENS_PENDING` waiting (counted opened without its answer), are one
`use_tracking_full` each in the connection's anomalies.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dissectors.constants import RAP_PIPE_NAME, RapOpcode, Smb1Command, Smb2Command, enum_name
from dissectors.records import AnomalyKind, Smb1Header, Smb1OpenRequest, Smb1TransactionRequest

USE_FILE_ACCESS = "file_access"
USE_PRINTING = "printing"
USE_NAMED_PIPE = "named_pipe"
USE_BROWSING = "browsing"
USE_SESSION_ONLY = "session_only"
USE_NEGOTIATE_ONLY = "negotiate_only"
USE_REFUSED = "refused"
USE_ATTACK = "attack"
# The order uses are listed in, most consequential for a retirement first.
USE_ORDER = (
    USE_FILE_ACCESS,
    USE_PRINTING,
    USE_NAMED_PIPE,
    USE_BROWSING,
    USE_SESSION_ONLY,
    USE_NEGOTIATE_ONLY,
    USE_REFUSED,
    USE_ATTACK,
)

MAX_TREES_TRACKED = 64
MAX_NAMES_KEPT = 16
MAX_OPENS_PENDING = 16  # opens by name waiting for their answer; past it an open counts unanswered

# Activity seen on one tree, as bits.
_ACTIVITY_COMMANDS = 1  # any command on the tree but the tree's own connect/disconnect
_ACTIVITY_PRINT = 2  # the SMB1 print-file commands
_ACTIVITY_RAP = 4  # a TRANSACTION to \PIPE\LANMAN
_ACTIVITY_PIPE = 8  # a pipe opened by name, or a TRANSACTION to a named pipe

# Commands that are about the session or the connection, not about what a tree holds.
_SMB1_NOT_TREE_USE = frozenset(
    int(command)
    for command in (
        Smb1Command.SMB_COM_NEGOTIATE,
        Smb1Command.SMB_COM_SESSION_SETUP_ANDX,
        Smb1Command.SMB_COM_LOGOFF_ANDX,
        Smb1Command.SMB_COM_TREE_CONNECT_ANDX,
        Smb1Command.SMB_COM_TREE_DISCONNECT,
        Smb1Command.SMB_COM_ECHO,
        Smb1Command.SMB_COM_NT_CANCEL,
    )
)
# [MS-CIFS] 2.2.4.67-70: printing without a printer share type seen.
_SMB1_PRINT_COMMANDS = frozenset(
    int(command)
    for command in (
        Smb1Command.SMB_COM_OPEN_PRINT_FILE,
        Smb1Command.SMB_COM_WRITE_PRINT_FILE,
        Smb1Command.SMB_COM_CLOSE_PRINT_FILE,
        Smb1Command.SMB_COM_GET_PRINT_QUEUE,
    )
)
# [MS-CIFS] 2.2.4.64 NT_CREATE_ANDX, 2.2.4.41 OPEN_ANDX: opens by name, answered with a FID or an error.
_SMB1_OPEN_COMMANDS = frozenset(
    int(command) for command in (Smb1Command.SMB_COM_NT_CREATE_ANDX, Smb1Command.SMB_COM_OPEN_ANDX)
)
# Every SMB2 use of a tree starts with a CREATE (of a file, a directory or a pipe).
_SMB2_CREATE = int(Smb2Command.CREATE)
_PIPE_PREFIX = "\\PIPE\\"


def rap_function_name(opcode: int) -> str:
    return enum_name(RapOpcode, opcode)


class UseTracker:
    """The per-tree activity of one connection; `describe` classifies it."""

    __slots__ = ("_activity", "_opens", "_pipes", "_trees", "anomalies", "rap_functions")

    def __init__(
        self, anomalies: Counter[AnomalyKind] | None = None, trees: list[dict[str, Any]] | None = None
    ) -> None:
        # The connection's anomaly counter (summed into the totals when the connection ends).
        self.anomalies: Counter[AnomalyKind] = Counter() if anomalies is None else anomalies
        # The connection's tree connects as they are answered (AuthenticationTracker.trees): a name
        # opened on a tree already known to be a disk or printer share is a file, not a pipe, and
        # must not take one of the `MAX_NAMES_KEPT` places (a file copy opens hundreds).
        self._trees: list[dict[str, Any]] = [] if trees is None else trees
        self._activity: dict[tuple[int, int], int] = {}  # (protocol 1 or 2, tree id) -> activity bits
        self._pipes: dict[tuple[int, str], None] = {}  # (SMB1 tree id, name) of names opened
        self._opens: dict[tuple[int, int, int], str] = {}  # (tid, pid, mid) of an open by name -> the name
        self.rap_functions: dict[str, None] = {}

    def _mark(self, protocol: int, tree_id: int, bits: int) -> None:
        key = (protocol, tree_id)
        activity = self._activity
        if key in activity:
            activity[key] |= bits
        elif len(activity) < MAX_TREES_TRACKED:
            activity[key] = bits
        else:
            self.anomalies[AnomalyKind.USE_TRACKING_FULL] += 1  # this request's activity is not recorded

    def smb1_request(self, header: Smb1Header, body: object) -> None:
        command = header.command
        if command in _SMB1_NOT_TREE_USE:
            return
        bits = _ACTIVITY_COMMANDS
        name = None
        if command in _SMB1_PRINT_COMMANDS:
            bits |= _ACTIVITY_PRINT
        elif isinstance(body, Smb1OpenRequest):
            # A pipe only if the tree turns out to be IPC$, and only once the server answers with a FID.
            key = (header.tid, header.pid, header.mid)
            if len(self._opens) < MAX_OPENS_PENDING or key in self._opens:
                self._opens[key] = body.name
            else:
                bits |= _ACTIVITY_PIPE
                name = body.name
                self.anomalies[AnomalyKind.USE_TRACKING_FULL] += 1  # counted opened, its answer not awaited
        elif isinstance(body, Smb1TransactionRequest) and body.name:
            upper = body.name.upper()
            if upper == RAP_PIPE_NAME:
                bits |= _ACTIVITY_RAP
                if body.rap_opcode is not None:
                    self._keep(self.rap_functions, rap_function_name(body.rap_opcode))
            elif upper.startswith(_PIPE_PREFIX):
                bits |= _ACTIVITY_PIPE
                name = body.name[len(_PIPE_PREFIX) - 1 :]  # "\\PIPE\\srvsvc" names the pipe "\\srvsvc"
        self._record(header.tid, name, bits)

    def smb1_response(self, header: Smb1Header) -> None:
        """The answer to an open by name: a FID (status 0) opens the pipe; an error opens nothing."""
        if header.command in _SMB1_OPEN_COMMANDS:
            name = self._opens.pop((header.tid, header.pid, header.mid), None)
            if name is not None and header.status == 0:
                self._record(header.tid, name, _ACTIVITY_COMMANDS | _ACTIVITY_PIPE)

    def _on_file_share(self, tid: int) -> bool:
        """The tree `tid` (SMB1) was answered as a disk or printer share: what is opened there is a file."""
        for tree in reversed(self._trees):  # the latest tree with that id: ids are reused
            if tree.get("tree_id") == tid and tree.get("status") == "STATUS_SUCCESS":
                return _share_type(tree) in ("disk", "print")
        return False

    def _record(self, tid: int, name: str | None, bits: int) -> None:
        if name and len(name) > 1 and not self._on_file_share(tid):
            self._keep(self._pipes, (tid, name))
        self._mark(1, tid, bits)

    def _keep(self, kept: dict[Any, None], name: Any) -> None:
        """`name` in a capped list of names: added while there is room; past it each request naming
        one not kept is `names_kept_full` (names left out are not remembered)."""
        if name in kept:
            return
        if len(kept) < MAX_NAMES_KEPT:
            kept[name] = None
        else:
            self.anomalies[AnomalyKind.NAMES_KEPT_FULL] += 1

    def end(self) -> None:
        """The connection ended (before its anomalies are summed): `describe` lists the opens by name
        still unanswered as `_record` would, while there is room; those it has none for are
        `names_kept_full`, counted here once."""
        pipes = dict(self._pipes)
        for (tid, _pid, _mid), name in self._opens.items():
            if len(name) > 1 and not self._on_file_share(tid):
                self._keep(pipes, (tid, name))

    def smb2_request(self, command: int, tree_id: int | None) -> None:
        if command == _SMB2_CREATE and tree_id is not None:
            self._mark(2, tree_id, _ACTIVITY_COMMANDS)

    def describe(
        self, trees: list[dict[str, object]], protocol: int, logged_in: bool, refused: bool, midstream: bool
    ) -> dict[str, list[str]]:
        """`uses`, `named_pipes` and `rap_functions` of the connection, given its trees
        (`protocol` 1 or 2: whose tree ids the trees carry). A connection picked up midstream whose
        traffic names no use has none listed: its login and negotiation were not seen."""
        if refused:
            return {"uses": [USE_REFUSED], "named_pipes": [], "rap_functions": []}
        share_types: dict[tuple[int, int], str] = {}
        uses: set[str] = set()
        for tree in trees:
            tree_id = tree.get("tree_id")
            if not isinstance(tree_id, int) or tree.get("status") != "STATUS_SUCCESS":
                continue
            share_type = share_types[protocol, tree_id] = _share_type(tree)
            # A disk or printer share connected is a use even if the capture shows nothing in it:
            # an idle mapped drive or printer breaks with the protocol all the same.
            if share_type == "disk":
                uses.add(USE_FILE_ACCESS)
            elif share_type == "print":
                uses.add(USE_PRINTING)
        pipe_trees = set()
        activity = dict(self._activity)
        pipes = dict(self._pipes)
        for (tid, _pid, _mid), name in self._opens.items():  # opens whose answer was not (yet) seen count
            if (1, tid) in activity:
                activity[1, tid] |= _ACTIVITY_PIPE
            if len(name) > 1 and len(pipes) < MAX_NAMES_KEPT and not self._on_file_share(tid):
                pipes.setdefault((tid, name))
        for key, bits in activity.items():
            share_type = share_types.get(key, "unknown")
            if bits & _ACTIVITY_RAP:
                uses.add(USE_BROWSING)
            if bits & _ACTIVITY_PRINT or share_type == "print":
                uses.add(USE_PRINTING)
            elif share_type == "pipe":
                # A pipe opened or transacted by name is pipe traffic (DCE/RPC, TransactNmPipe); the
                # other commands clients send on IPC$ (TRANS2 GET_DFS_REFERRAL) use no pipe.
                pipe_trees.add(key[1])
                if bits & _ACTIVITY_PIPE:
                    uses.add(USE_NAMED_PIPE)
            elif not bits & _ACTIVITY_RAP:
                uses.add(USE_FILE_ACCESS)
        pipe_names = sorted({name for tree_id, name in pipes if tree_id in pipe_trees})
        if not uses and not midstream:
            uses.add(USE_SESSION_ONLY if logged_in else USE_NEGOTIATE_ONLY)
        return {
            "uses": [use for use in USE_ORDER if use in uses],
            "named_pipes": pipe_names,
            "rap_functions": list(self.rap_functions),
        }


def _share_type(tree: dict[str, object]) -> str:
    share_type = tree.get("share_type")
    if share_type in ("disk", "pipe", "print"):
        return str(share_type)
    path = str(tree.get("path") or "").upper()
    return "pipe" if path.endswith("\\IPC$") or path == "IPC$" else "unknown"
