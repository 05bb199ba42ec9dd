"""Files and named pipes of one connection: what was opened, created, read, written, renamed, deleted.

An open is followed from its CREATE (SMB2) or NT_CREATE_ANDX (SMB1) to its CLOSE. The request names
the file, the answer gives the handle (FileId, FID) that later commands use, and what the server did
(opened, created, overwritten). A request in an SMB2 compound chain may name the open of the request
before it with the related FileId (all bits set, [MS-SMB2] 3.2.4.1.4): it is resolved to that open,
even before the CREATE's answer is seen (smbclient and macOS chain CREATE, SET_INFO and CLOSE, and
a delete done that way is otherwise invisible). A READ response names no file: it is paired with its
request by MessageId (SMB2) or PID/MID (SMB1).

Opens on IPC$ are named pipes: their bytes go to `RpcTracker` (DCE/RPC), not into `files`. Every
other open is one `files` entry (README: `connections[].files`). Findings for the detector: an
executable written to an administrative share, and the changes ransomware makes (rename, overwrite,
delete). Per-connection memory is capped: opens and entries past the caps, and pairings past their
cap, are counted as `file_tracking_full` in the connection's anomalies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

from dissectors.constants import (
    FsctlCode,
    NtStatus,
    Smb1Command,
    Smb1CreateAction,
    Smb1NamedPipeFunction,
    Smb1OpenAction,
    Smb1Trans2Subcommand,
    Smb2Command,
    Smb2CreateAction,
    Smb2CreateOptions,
    Smb2Flags,
)
from dissectors.records import (
    AnomalyKind,
    FileDispositionInformation,
    FileDispositionInformationEx,
    FileRenameInformation,
    Smb1CloseRequest,
    Smb1DeleteRequest,
    Smb1DirectoryRequest,
    Smb1Header,
    Smb1NtCreateResponse,
    Smb1OpenAndxResponse,
    Smb1OpenRequest,
    Smb1ReadAndxRequest,
    Smb1ReadAndxResponse,
    Smb1RenameRequest,
    Smb1TransactionRequest,
    Smb1TransactionResponse,
    Smb1WriteAndxRequest,
    Smb2CloseRequest,
    Smb2CreateRequest,
    Smb2CreateResponse,
    Smb2FileId,
    Smb2Header,
    Smb2IoctlRequest,
    Smb2IoctlResponse,
    Smb2QueryDirectoryRequest,
    Smb2ReadRequest,
    Smb2ReadResponse,
    Smb2SetInfoRequest,
    Smb2WriteRequest,
)
from monitor.smb.rpc import Finding, RpcTracker

MAX_FILES_KEPT = 1_000  # `files` entries per connection
MAX_OPENS_TRACKED = 1_024  # handles open at once per connection
MAX_REQUESTS_WAITING = 256  # CREATEs and READs waiting for their answer

ACTION_OPEN = "open"
ACTION_CREATE = "create"
ACTION_OVERWRITE = "overwrite"
ACTION_READ = "read"
ACTION_WRITE = "write"
ACTION_RENAME = "rename"
ACTION_DELETE = "delete"
ACTION_ORDER = (ACTION_OPEN, ACTION_CREATE, ACTION_OVERWRITE, ACTION_READ, ACTION_WRITE, ACTION_RENAME, ACTION_DELETE)

# Findings for the detector (monitor.detect): not alert kinds themselves.
FINDING_FILE_CHANGE = "file_change"  # a rename, overwrite or delete of an existing file (ransomware rule)
FINDING_ADMIN_SHARE_WRITE = "admin_share_executable"  # an executable created or written on a `$` share

# Executables and scripts a remote execution drops ([MS-FSCC] has no notion of them: by extension).
EXECUTABLE_EXTENSIONS = frozenset(
    (".exe", ".dll", ".sys", ".bat", ".cmd", ".ps1", ".vbs", ".js", ".scr", ".hta", ".msi")
)
MZ_HEADER = b"MZ"  # an executable image's first bytes (IMAGE_DOS_SIGNATURE)

_SMB2_ACTIONS = {
    int(Smb2CreateAction.FILE_SUPERSEDED): ACTION_OVERWRITE,
    int(Smb2CreateAction.FILE_OPENED): ACTION_OPEN,
    int(Smb2CreateAction.FILE_CREATED): ACTION_CREATE,
    int(Smb2CreateAction.FILE_OVERWRITTEN): ACTION_OVERWRITE,
}
_SMB1_ACTIONS = {
    int(Smb1CreateAction.FILE_SUPERSEDED): ACTION_OVERWRITE,
    int(Smb1CreateAction.FILE_OPENED): ACTION_OPEN,
    int(Smb1CreateAction.FILE_CREATED): ACTION_CREATE,
    int(Smb1CreateAction.FILE_OVERWRITTEN): ACTION_OVERWRITE,
}
_OPEN_ANDX_ACTIONS = {
    int(Smb1OpenAction.FILE_EXISTED_AND_OPENED): ACTION_OPEN,
    int(Smb1OpenAction.FILE_DID_NOT_EXIST_AND_CREATED): ACTION_CREATE,
    int(Smb1OpenAction.FILE_EXISTED_AND_TRUNCATED): ACTION_OVERWRITE,
}
# What the ransomware rule hears of: changes to existing files, and creations (for their names).
_CHANGES = frozenset((ACTION_CREATE, ACTION_OVERWRITE, ACTION_RENAME, ACTION_DELETE))
_RELATED = int(Smb2Flags.SMB2_FLAGS_RELATED_OPERATIONS)
_DELETE_ON_CLOSE = int(Smb2CreateOptions.FILE_DELETE_ON_CLOSE)
_TO_CLIENT = int(Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR)
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_BUFFER_OVERFLOW = int(NtStatus.STATUS_BUFFER_OVERFLOW)  # a pipe read with more to come
_PENDING = int(NtStatus.STATUS_PENDING)
_PIPE_TRANSCEIVE = int(FsctlCode.FSCTL_PIPE_TRANSCEIVE)
_TRANSACT_NMPIPE = int(Smb1NamedPipeFunction.TRANS_TRANSACT_NMPIPE)
_SET_FILE_INFORMATION = int(Smb1Trans2Subcommand.TRANS2_SET_FILE_INFORMATION)
_SET_PATH_INFORMATION = int(Smb1Trans2Subcommand.TRANS2_SET_PATH_INFORMATION)
_SMB1_TRANSACTION = int(Smb1Command.SMB_COM_TRANSACTION)
_SMB1_CREATE_DIRECTORY = int(Smb1Command.SMB_COM_CREATE_DIRECTORY)
_SMB2_CREATE = int(Smb2Command.CREATE)
_SMB2_READ = int(Smb2Command.READ)
_SMB2_SET_INFO = int(Smb2Command.SET_INFO)


def is_executable_name(path: str) -> bool:
    dot = path.rfind(".")
    return dot > path.rfind("\\") and path[dot:].lower() in EXECUTABLE_EXTENSIONS


def share_name(tree_path: str | None) -> str:
    """`\\\\server\\share` -> `share` (upper-case as Windows compares them)."""
    return (tree_path or "").rstrip("\\").rsplit("\\", 1)[-1].upper()


class FileEntry:
    """One file opened: the JSON `files` entry."""

    __slots__ = ("actions", "bytes_read", "bytes_written", "first_seen", "last_seen", "path", "renamed_to", "tree")

    def __init__(self, tree: str, path: str, ts: float) -> None:
        self.tree = tree
        self.path = path
        self.actions: set[str] = set()
        self.renamed_to: str | None = None
        self.bytes_read = 0
        self.bytes_written = 0
        self.first_seen = ts
        self.last_seen = ts

    def describe(self) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "path": self.path,
            "actions": [action for action in ACTION_ORDER if action in self.actions],
            "renamed_to": self.renamed_to,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


class _Open:
    """A handle: from its CREATE request (before the answer names its FileId) to its CLOSE."""

    __slots__ = ("admin_share", "delete_on_close", "entry", "executable_reported", "key", "name", "pipe", "share")

    def __init__(self, share: str, pipe: bool, entry: FileEntry | None, delete_on_close: bool, name: str = "") -> None:
        self.name = name
        self.share = share
        self.pipe = pipe
        self.entry = entry  # None for pipes and past MAX_FILES_KEPT
        self.delete_on_close = delete_on_close
        self.key: Hashable | None = None  # (protocol, FileId or FID) once the answer gave it
        self.admin_share = share.endswith("$") and share != "IPC$"
        self.executable_reported = False


class FileTracker:
    """The files and pipes of one connection, from its SMB2 and SMB1 messages."""

    def __init__(
        self,
        trees: list[dict[str, Any]],
        anomalies: Counter[AnomalyKind],
        findings: list[Finding],
        rpc: RpcTracker,
    ) -> None:
        self._trees = trees  # the connection's trees (AuthenticationTracker.trees), for share names
        self.anomalies = anomalies
        self.findings = findings
        self.rpc = rpc
        self.entries: list[FileEntry] = []
        self.entries_dropped = 0
        self._opens: dict[Hashable, _Open] = {}
        self._creates: dict[Hashable, _Open] = {}  # request key -> open waiting for its answer
        self._reads: dict[Hashable, _Open] = {}  # request key -> open whose READ answer is awaited
        # request key -> a rename or delete waiting for the server to say it was done (a refused one is not)
        self._changes: dict[Hashable, tuple[_Open | None, str, str, str, str | None]] = {}
        self._chain_open: _Open | None = None  # the open the previous request of an SMB2 chain used
        self.directory_listings = 0

    # --- shared --------------------------------------------------------------------------

    def _tree(self, tree_id: int | None) -> dict[str, Any] | None:
        for tree in reversed(self._trees):  # the latest tree with that id: ids are reused
            if tree.get("tree_id") == tree_id:
                return tree
        return None

    def _new_open(self, tree_id: int | None, name: str, delete_on_close: bool, ts: float) -> _Open:
        name = name.lstrip("\\")  # SMB1 names start at the share's root with a backslash, SMB2 ones do not
        tree = self._tree(tree_id)
        path = str(tree.get("path") or "") if tree else ""
        share = share_name(path)
        pipe = (tree is not None and tree.get("share_type") == "pipe") or share == "IPC$"
        entry: FileEntry | None = None
        if not pipe and name:  # an empty name is the share's root directory: not a file
            entry = self._entry(share, name, ts)
        return _Open(share, pipe, entry, delete_on_close, name)

    def _entry(self, share: str, path: str, ts: float) -> FileEntry | None:
        path = path.lstrip("\\")
        if len(self.entries) >= MAX_FILES_KEPT:
            self.entries_dropped += 1
            self.anomalies[AnomalyKind.FILE_TRACKING_FULL] += 1
            return None
        entry = FileEntry(share, path, ts)
        self.entries.append(entry)
        return entry

    def _wait(self, table: dict[Hashable, _Open], key: Hashable, handle: _Open) -> None:
        if len(table) >= MAX_REQUESTS_WAITING:
            self.anomalies[AnomalyKind.FILE_TRACKING_FULL] += 1
            return
        table[key] = handle

    def _change(
        self,
        request: Hashable,
        handle: _Open | None,
        action: str,
        renamed_to: str | None,
        share: str = "",
        path: str = "",
    ) -> None:
        """A rename or delete asked for: by handle, or by `share` and `path` (SMB1 DELETE, RENAME, ...)."""
        if len(self._changes) >= MAX_REQUESTS_WAITING:
            self.anomalies[AnomalyKind.FILE_TRACKING_FULL] += 1
            return
        self._changes[request] = (handle, share, path, action, renamed_to)

    def _changed(self, request: Hashable, status: int, ts: float) -> bool:
        """The answer to a request: True if it was a change waiting for it (applied when it succeeded)."""
        change = self._changes.pop(request, None)
        if change is None:
            return False
        handle, share, path, action, renamed_to = change
        if status != _SUCCESS:
            return True
        if handle is None:
            entry = self._entry(share, path, ts)
            if entry is None:
                return True
            handle = _Open(entry.tree, False, entry, False)
        self._act(handle, action, ts, renamed_to)
        return True

    def _opened(self, handle: _Open, key: Hashable, action: str, name: str, ts: float) -> None:
        """The server answered an open with a handle: `action` is what it did to the file."""
        if key not in self._opens and len(self._opens) >= MAX_OPENS_TRACKED:
            self.anomalies[AnomalyKind.FILE_TRACKING_FULL] += 1
            return
        handle.key = key
        self._opens[key] = handle
        if handle.pipe:
            self.rpc.open(key, name)
            return
        self._act(handle, action, ts)
        if action in (ACTION_CREATE, ACTION_OVERWRITE) and is_executable_name(name):
            self._executable(handle, ts, "created" if action == ACTION_CREATE else "overwritten")

    def _act(self, handle: _Open, action: str, ts: float, renamed_to: str | None = None) -> None:
        entry = handle.entry
        if entry is None:
            return
        first = action not in entry.actions
        entry.actions.add(action)
        entry.last_seen = ts
        if renamed_to is not None:
            entry.renamed_to = renamed_to
        if first and action in _CHANGES:
            self.findings.append(
                (
                    FINDING_FILE_CHANGE,
                    ts,
                    {"share": entry.tree, "path": entry.path, "action": action, "renamed_to": renamed_to},
                )
            )

    def _executable(self, handle: _Open, ts: float, how: str) -> None:
        if not handle.admin_share or handle.executable_reported or handle.entry is None:
            return
        handle.executable_reported = True
        self.findings.append(
            (FINDING_ADMIN_SHARE_WRITE, ts, {"share": handle.share, "path": handle.entry.path, "how": how})
        )

    def _written(self, handle: _Open, offset: int, length: int, data: bytes, ts: float) -> None:
        entry = handle.entry
        if entry is None:
            return
        entry.bytes_written += length
        self._act(handle, ACTION_WRITE, ts)
        if is_executable_name(entry.path):
            self._executable(handle, ts, "written")
        elif offset == 0 and data.startswith(MZ_HEADER):
            self._executable(handle, ts, "written (MZ header)")

    def _pipe_data(self, key: Hashable, to_server: bool, data: bytes, complete: bool, ts: float) -> None:
        """A pipe READ/WRITE's bytes to its DCE/RPC reader; one cut at the kept bytes cannot be read."""
        if complete:
            self.rpc.data(key, to_server, data, ts)
        else:
            self.anomalies[AnomalyKind.RPC_DATA_NOT_KEPT] += 1

    def _read(self, handle: _Open, length: int, ts: float) -> None:
        if handle.entry is not None:
            handle.entry.bytes_read += length
            self._act(handle, ACTION_READ, ts)

    def _closed(self, key: Hashable, ts: float) -> None:
        handle = self._opens.pop(key, None)
        if handle is None:
            return
        if handle.pipe:
            self.rpc.close(key, ts)
        elif handle.delete_on_close:
            self._act(handle, ACTION_DELETE, ts)

    def end(self, ts: float) -> None:
        """The connection ended: open pipes are closed (files keep what they did)."""
        self.rpc.end(ts)

    def describe(self) -> list[dict[str, Any]]:
        return [entry.describe() for entry in self.entries]

    # --- SMB2 ----------------------------------------------------------------------------

    def _smb2_handle(self, header: Smb2Header, file_id: Smb2FileId) -> _Open | None:
        if file_id.related and header.flags & _RELATED:
            return self._chain_open
        return self._opens.get((2, file_id))

    def smb2(self, header: Smb2Header, body: object, ts: float) -> None:
        """One SMB2 message (request or response) with its decoded body."""
        if header.flags & _TO_CLIENT:
            self._smb2_response(header, body, ts)
            return
        if not header.flags & _RELATED:
            self._chain_open = None
        if isinstance(body, Smb2CreateRequest):
            delete_on_close = bool(body.create_options & _DELETE_ON_CLOSE)
            handle = self._new_open(header.tree_id, body.name, delete_on_close, ts)
            self._wait(self._creates, (2, header.message_id), handle)
            self._chain_open = handle
            return
        file_id = getattr(body, "file_id", None)
        if not isinstance(file_id, Smb2FileId):
            return
        found = self._smb2_handle(header, file_id)
        if found is None:
            return
        handle = found
        self._chain_open = handle
        key = handle.key
        if isinstance(body, Smb2WriteRequest):
            if handle.pipe and key is not None:
                self._pipe_data(key, True, body.data, body.data_complete, ts)
            else:
                self._written(handle, body.offset, body.data_length, body.data, ts)
        elif isinstance(body, Smb2ReadRequest):
            self._wait(self._reads, (2, header.message_id), handle)
        elif isinstance(body, Smb2IoctlRequest):
            if body.ctl_code == _PIPE_TRANSCEIVE and handle.pipe and key is not None:
                self.rpc.data(key, True, body.input, ts)
                self._wait(self._reads, (2, header.message_id), handle)
        elif isinstance(body, Smb2SetInfoRequest):
            buffer = body.buffer
            request = (2, header.message_id)
            if isinstance(buffer, FileRenameInformation):
                self._change(request, handle, ACTION_RENAME, buffer.file_name)
            elif (isinstance(buffer, FileDispositionInformation) and buffer.delete_pending) or (
                isinstance(buffer, FileDispositionInformationEx) and buffer.delete
            ):
                self._change(request, handle, ACTION_DELETE, None)
        elif isinstance(body, Smb2CloseRequest):
            if key is not None:
                self._closed(key, ts)
            else:
                handle.key = None  # closed before its CREATE's answer was seen: nothing left open
        elif isinstance(body, Smb2QueryDirectoryRequest):
            self.directory_listings += 1

    def _smb2_response(self, header: Smb2Header, body: object, ts: float) -> None:
        if header.status == _PENDING:
            return  # an interim answer ([MS-SMB2] 3.3.4.2): the real one follows (a pipe READ waits for data)
        request = (2, header.message_id)
        command = header.command
        if command == _SMB2_SET_INFO:
            self._changed(request, header.status, ts)
            return
        if command == _SMB2_CREATE:
            handle = self._creates.pop(request, None)
            if handle is not None and isinstance(body, Smb2CreateResponse) and header.status == _SUCCESS:
                action = _SMB2_ACTIONS.get(body.create_action, ACTION_OPEN)
                self._opened(handle, (2, body.file_id), action, handle.name, ts)
            return
        handle = self._reads.pop(request, None)
        if handle is None or header.status not in (_SUCCESS, _BUFFER_OVERFLOW):
            return
        key = handle.key
        if isinstance(body, Smb2ReadResponse):
            if handle.pipe and key is not None:
                self._pipe_data(key, False, body.data, body.data_complete, ts)
            else:
                self._read(handle, body.data_length, ts)
        elif isinstance(body, Smb2IoctlResponse) and key is not None:
            self.rpc.data(key, False, body.output, ts)

    # --- SMB1 ----------------------------------------------------------------------------

    def smb1_request(self, header: Smb1Header, body: object, ts: float) -> None:
        request = (1, header.pid, header.mid)
        if isinstance(body, Smb1OpenRequest):
            handle = self._new_open(header.tid, body.name, body.delete_on_close, ts)
            self._wait(self._creates, request, handle)
            return
        if isinstance(body, Smb1DeleteRequest):
            self._change(request, None, ACTION_DELETE, None, self._share(header.tid), body.file_name)
            return
        if isinstance(body, Smb1DirectoryRequest):
            action = ACTION_CREATE if header.command == _SMB1_CREATE_DIRECTORY else ACTION_DELETE
            self._change(request, None, action, None, self._share(header.tid), body.directory_name)
            return
        if isinstance(body, Smb1RenameRequest):
            share = self._share(header.tid)
            self._change(request, None, ACTION_RENAME, body.new_file_name, share, body.old_file_name)
            return
        fid = getattr(body, "fid", None)
        if not isinstance(fid, int):
            if isinstance(body, Smb1TransactionRequest) and body.trans2 is not None:
                self._smb1_set_path(header, body, ts)
            return
        found = self._opens.get((1, fid))
        if found is None:
            return
        handle = found
        if isinstance(body, Smb1WriteAndxRequest):
            if handle.pipe:
                self._pipe_data((1, fid), True, body.data, body.data_complete, ts)
            else:
                self._written(handle, body.offset, body.data_length, body.data, ts)
        elif isinstance(body, Smb1ReadAndxRequest):
            self._wait(self._reads, request, handle)
        elif isinstance(body, Smb1TransactionRequest):
            if header.command == _SMB1_TRANSACTION and body.pipe_function == _TRANSACT_NMPIPE and handle.pipe:
                self.rpc.data((1, fid), True, body.data, ts)
                self._wait(self._reads, request, handle)
            elif body.trans2 is not None and body.trans2.subcommand == _SET_FILE_INFORMATION:
                if body.trans2.rename_target is not None:
                    self._change(request, handle, ACTION_RENAME, body.trans2.rename_target)
                elif body.trans2.delete_pending:
                    self._change(request, handle, ACTION_DELETE, None)
        elif isinstance(body, Smb1CloseRequest):
            self._closed((1, fid), ts)

    def _share(self, tid: int) -> str:
        tree = self._tree(tid)
        return share_name(str(tree.get("path") or "") if tree else "")

    def _smb1_set_path(self, header: Smb1Header, body: Smb1TransactionRequest, ts: float) -> None:
        trans2 = body.trans2
        if trans2 is None or trans2.subcommand != _SET_PATH_INFORMATION or not trans2.name:
            return
        if trans2.rename_target is None and not trans2.delete_pending:
            return
        request = (1, header.pid, header.mid)
        share = self._share(header.tid)
        if trans2.rename_target is not None:
            self._change(request, None, ACTION_RENAME, trans2.rename_target, share, trans2.name)
        else:
            self._change(request, None, ACTION_DELETE, None, share, trans2.name)

    def smb1_response(self, header: Smb1Header, body: object, ts: float) -> None:
        request = (1, header.pid, header.mid)
        if self._changes and self._changed(request, header.status, ts):
            return
        if isinstance(body, (Smb1NtCreateResponse, Smb1OpenAndxResponse)):
            handle = self._creates.pop(request, None)
            if handle is None or header.status != _SUCCESS:
                return
            if isinstance(body, Smb1NtCreateResponse):
                action = _SMB1_ACTIONS.get(body.create_action, ACTION_OPEN)
            else:
                action = _OPEN_ANDX_ACTIONS.get(body.action, ACTION_OPEN)
            self._opened(handle, (1, body.fid), action, handle.name, ts)
            return
        handle = self._reads.pop(request, None)
        if handle is None or header.status not in (_SUCCESS, _BUFFER_OVERFLOW) or handle.key is None:
            return
        if isinstance(body, Smb1ReadAndxResponse):
            if handle.pipe:
                self._pipe_data(handle.key, False, body.data, body.data_complete, ts)
            else:
                self._read(handle, body.data_length, ts)
        elif isinstance(body, Smb1TransactionResponse) and handle.pipe:
            self.rpc.data(handle.key, False, body.data, ts)
