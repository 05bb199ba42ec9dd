#!/usr/bin/env python3
"""What the sessions of a capture did after the login, as tshark sees it.

    python3 pcaps/lab/activity.py FILE         # FILE relative to pcaps/; prints the facts (JSON)
    python3 pcaps/lab/activity.py --toml FILE  # the same as manifest.toml lines, per connection

verify.py compares these facts with every manifest connection that lists them.

Per TCP connection (tshark's tcp.stream, in order of appearance; connections
without SMB are left out, as in verify.py) it derives from tshark 4.0 fields:

  files  what was done to files and directories on disk shares, names as sent:
         created      CREATE / NT_CREATE_ANDX answered with create action
                      FILE_CREATED (2), plus SMB1 CREATE_DIRECTORY
         overwritten  create action FILE_OVERWRITTEN (3)
         written      WRITE / WRITE_ANDX (each name once, first write first)
         read         READ / READ_ANDX on files (each name once)
         renamed      [old, new]: SMB2 SET_INFO FileRenameInformation,
                      SMB1 SMB_COM_RENAME, both answered STATUS_SUCCESS
         deleted      SMB2 CREATE with FILE_DELETE_ON_CLOSE or SET_INFO
                      FileDispositionInformation(delete), SMB1 SMB_COM_DELETE
                      and DELETE_DIRECTORY, answered STATUS_SUCCESS
         refused      [request, name, status] of the requests above (and SMB1
                      TRANS2 SET_PATH_INFORMATION) that failed
  pipes  named pipe opens on IPC$: [name, status]
  binds  DCE/RPC binds (and alter contexts): [uuid, version, result], result
         "acceptance", "provider_rejection", "user_rejection", or "nak"
  calls  DCE/RPC requests: [uuid, opnum, result, return code], result
         "response" or the fault status (e.g. "nca_s_op_rng_error"), "none" when
         unanswered; return code: the WERROR / NTSTATUS that ends the response
         stub where tshark decodes the interface (svcctl, spoolss, srvsvc,
         netdfs, lsarpc, samr), else ""

Only frames that carry one SMB message are read (tshark's multi-valued fields
cannot be paired otherwise); frames with several are counted in "skipped".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PCAPS = Path(__file__).resolve().parent.parent
FIELDS = [
    "tcp.stream",
    "smb2.cmd",
    "smb2.flags.response",
    "smb2.msg_id",
    "smb2.nt_status",
    "smb2.tree",
    "smb2.filename",
    "smb2.fid",
    "smb2.create.action",
    "smb.create_options",
    "smb2.file_info.infolevel",
    "smb2.disposition.delete_on_close",
    "smb.cmd",
    "smb.flags.response",
    "smb.mid",
    "smb.nt_status",
    "smb.path",
    "smb.file",
    "smb.fid",
    "smb.create.action",
    "smb.old_file",
    "smb.dir_name",
    "smb.trans2.cmd",
    "smb.spi_loi",
    "dcerpc.pkt_type",
    "dcerpc.cn_call_id",
    "dcerpc.cn_bind_to_uuid",
    "dcerpc.cn_bind_if_ver",
    "dcerpc.cn_bind_if_ver_minor",
    "dcerpc.cn_ack_result",
    "dcerpc.opnum",
    "dcerpc.cn_ctx_id",
    "dcerpc.cn_status",
]
# the return code at the end of a response's stub, per interface tshark decodes (the last
# occurrence: earlier ones can be status fields inside the returned structures)
RETURN_CODES = ["svcctl.rc", "spoolss.rc", "srvsvc.werror", "netdfs.werror", "lsarpc.status", "samr.status"]
FIELDS += RETURN_CODES
ACK_RESULTS = {"0": "acceptance", "1": "user_rejection", "2": "provider_rejection", "3": "negotiate_ack"}
FAULTS = {
    "0x1c010002": "nca_s_op_rng_error",
    "0x1c010003": "nca_s_unk_if",
    "0x00000005": "access_denied",
    "0x000006f7": "rpc_x_bad_stub_data",
    "0x1c00001b": "nca_s_proto_error",
    "0x1c00001a": "nca_s_fault_context_mismatch",
}
STATUS_NAMES = {
    "0x00000000": "STATUS_SUCCESS",
    "0xc0000022": "STATUS_ACCESS_DENIED",
    "0xc0000034": "STATUS_OBJECT_NAME_NOT_FOUND",
    "0xc00000bb": "STATUS_NOT_SUPPORTED",
    "0xc000000f": "STATUS_NO_SUCH_FILE",
    "0xc0000101": "STATUS_DIRECTORY_NOT_EMPTY",
    "0xc0000035": "STATUS_OBJECT_NAME_COLLISION",
    "0xc00000cc": "STATUS_BAD_NETWORK_NAME",
}
SUCCESS = "0x00000000"
PENDING = "0x00000103"
FILE_DELETE_ON_CLOSE = 0x1000
SMB2_CREATE, SMB2_READ, SMB2_WRITE, SMB2_SET_INFO = "5", "8", "9", "17"
FILE_RENAME_INFORMATION, FILE_DISPOSITION_INFORMATION = "0x0a", "0x0d"
SMB1_CREATE_DIRECTORY, SMB1_DELETE_DIRECTORY, SMB1_DELETE, SMB1_RENAME = "0x00", "0x01", "0x06", "0x07"
SMB1_READ_ANDX, SMB1_WRITE_ANDX, SMB1_TRANS2, SMB1_NT_CREATE_ANDX = "0x2e", "0x2f", "0x32", "0xa2"
TRANS2_SET_PATH_INFORMATION = "0x0006"
RENAME_1010 = "1010"  # pass-through level: FileRenameInformation (10) + SMB_INFO_PASSTHROUGH (1000)


def status_name(code: str) -> str:
    return STATUS_NAMES.get(code, code)


def _first(value: str) -> str:
    return value.split("|")[0] if value else ""


class Connection:
    def __init__(self) -> None:
        self.files: dict[str, list] = {
            k: [] for k in ("created", "overwritten", "written", "read", "renamed", "deleted", "refused")
        }
        self.pipes: list[list[str]] = []
        self.binds: list[list[str]] = []
        self.calls: list[list] = []
        self.pending: dict[str, dict] = {}  # request key -> what the answer completes
        self.fids: dict[str, tuple[str, bool]] = {}  # fid -> (name, is pipe)
        self.contexts: dict[str, str] = {}  # presentation context id -> uuid
        self.rpc_pending: dict[str, list] = {}  # call id -> calls entry or binds entry
        self.smb = False

    def once(self, key: str, name: str) -> None:
        if name and name not in self.files[key]:
            self.files[key].append(name)


def facts(rel: str) -> dict:
    path = PCAPS / rel
    cmd = ["tshark", "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "smb || smb2"]
    cmd += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    conns: dict[str, Connection] = {}
    order: list[str] = []
    skipped = 0
    for line in out.splitlines():
        row = dict(zip(FIELDS, line.split("\t"), strict=False))
        sid = row["tcp.stream"]
        if sid not in conns:
            conns[sid] = Connection()
            order.append(sid)
        c = conns[sid]
        c.smb = True
        if "|" in row["smb2.cmd"] or "|" in row["smb2.msg_id"] or "|" in row["smb.mid"]:
            skipped += 1
            continue
        if row["smb2.cmd"]:
            smb2(c, row)
        elif row["smb.cmd"]:
            smb1(c, row)
        if row["dcerpc.pkt_type"]:
            dcerpc(c, row)
    result = []
    for sid in order:
        c = conns[sid]
        files = {k: v for k, v in c.files.items() if v}
        entry: dict = {}
        if files:
            entry["files"] = files
        if c.pipes:
            entry["pipes"] = c.pipes
        if c.binds:
            entry["binds"] = c.binds
        if c.calls:
            entry["calls"] = c.calls
        result.append(entry)
    return {"connections": result, "skipped": skipped}


def smb2(c: Connection, row: dict) -> None:
    cmd, resp, mid = row["smb2.cmd"], row["smb2.flags.response"] in ("1", "True"), row["smb2.msg_id"]
    status = _first(row["smb2.nt_status"])
    fid = _first(row["smb2.fid"])
    key = f"2:{mid}"
    if not resp:
        if cmd == SMB2_CREATE:
            is_pipe = row["smb2.tree"].upper().endswith("\\IPC$")
            options = int(_first(row["smb.create_options"]) or "0", 16)
            c.pending[key] = {
                "op": "create",
                "name": row["smb2.filename"],
                "pipe": is_pipe,
                "delete": bool(options & FILE_DELETE_ON_CLOSE),
            }
        elif cmd in (SMB2_READ, SMB2_WRITE) and fid in c.fids:
            name, is_pipe = c.fids[fid]
            if not is_pipe:
                c.once("read" if cmd == SMB2_READ else "written", name)
        elif cmd == SMB2_SET_INFO and fid in c.fids:
            level = row["smb2.file_info.infolevel"]
            old = c.fids[fid][0]
            if level == FILE_RENAME_INFORMATION:
                c.pending[key] = {"op": "rename", "old": old, "new": row["smb2.filename"]}
            elif level == FILE_DISPOSITION_INFORMATION and row["smb2.disposition.delete_on_close"] in ("1", "True"):
                c.pending[key] = {"op": "delete", "name": old}
        return
    if status == PENDING or key not in c.pending:
        return
    req = c.pending.pop(key)
    answered(c, req, status, fid, _first(row["smb2.create.action"]))


def answered(c: Connection, req: dict, status: str, fid: str, action: str) -> None:
    op = req["op"]
    if op == "create":
        if req["pipe"]:
            c.pipes.append([req["name"], status_name(status)])
            if status == SUCCESS:
                c.fids[fid] = (req["name"], True)
            return
        if status != SUCCESS:
            c.files["refused"].append(["create", req["name"], status_name(status)])
            return
        c.fids[fid] = (req["name"], False)
        if action == "2":
            c.once("created", req["name"])
        elif action == "3":
            c.once("overwritten", req["name"])
        if req["delete"]:
            c.files["deleted"].append(req["name"])
    elif op in ("rename", "rename_path"):
        if status == SUCCESS and op == "rename":
            c.files["renamed"].append([req["old"], req["new"]])
        else:
            c.files["refused"].append([op, req["old"], status_name(status)])
    elif op in ("delete", "mkdir"):
        if status != SUCCESS:
            c.files["refused"].append([op, req["name"], status_name(status)])
        elif op == "delete":
            c.files["deleted"].append(req["name"])
        else:
            c.once("created", req["name"])


def smb1(c: Connection, row: dict) -> None:
    cmd = _first(row["smb.cmd"])
    resp = _first(row["smb.flags.response"]) in ("1", "True")
    key = f"1:{row['smb.mid']}"
    status = _first(row["smb.nt_status"])
    fid = _first(row["smb.fid"])
    paths = row["smb.path"].split("|") if row["smb.path"] else [""]
    if not resp:
        if cmd == SMB1_NT_CREATE_ANDX:
            is_pipe = paths[0].upper().endswith("\\IPC$")
            c.pending[key] = {"op": "create", "name": _first(row["smb.file"]), "pipe": is_pipe, "delete": False}
        elif cmd in (SMB1_READ_ANDX, SMB1_WRITE_ANDX) and fid in c.fids:
            name, is_pipe = c.fids[fid]
            if not is_pipe:
                c.once("read" if cmd == SMB1_READ_ANDX else "written", name)
        elif cmd == SMB1_RENAME:
            c.pending[key] = {"op": "rename", "old": row["smb.old_file"], "new": _first(row["smb.file"])}
        elif cmd == SMB1_DELETE:
            c.pending[key] = {"op": "delete", "name": _first(row["smb.file"])}
        elif cmd == SMB1_DELETE_DIRECTORY:
            c.pending[key] = {"op": "delete", "name": row["smb.dir_name"]}
        elif cmd == SMB1_CREATE_DIRECTORY:
            c.pending[key] = {"op": "mkdir", "name": row["smb.dir_name"]}
        elif (
            cmd == SMB1_TRANS2
            and row["smb.trans2.cmd"] == TRANS2_SET_PATH_INFORMATION
            and row["smb.spi_loi"] == RENAME_1010
        ):
            c.pending[key] = {"op": "rename_path", "old": _first(row["smb.file"]), "new": ""}
        return
    if key not in c.pending:
        return
    req = c.pending.pop(key)
    answered(c, req, status, fid, _first(row["smb.create.action"]))


def dcerpc(c: Connection, row: dict) -> None:
    ptypes = row["dcerpc.pkt_type"].split("|")
    calls = row["dcerpc.cn_call_id"].split("|")
    for i, ptype in enumerate(ptypes):
        call = calls[i] if i < len(calls) else ""
        if ptype in ("11", "14"):  # bind, alter context: one context item per call here
            uuid = _first(row["dcerpc.cn_bind_to_uuid"])
            version = f"{_first(row['dcerpc.cn_bind_if_ver'])}.{_first(row['dcerpc.cn_bind_if_ver_minor']) or '0'}"
            entry = [uuid, version, "none"]
            c.binds.append(entry)
            c.rpc_pending[call] = entry
            c.contexts[_first(row["dcerpc.cn_ctx_id"]) or "0"] = uuid
        elif ptype in ("12", "15") and call in c.rpc_pending:  # bind_ack, alter_context_resp
            c.rpc_pending.pop(call)[2] = ACK_RESULTS.get(_first(row["dcerpc.cn_ack_result"]), "?")
        elif ptype == "13" and call in c.rpc_pending:  # bind_nak
            c.rpc_pending.pop(call)[2] = "nak"
        elif ptype == "0":  # request
            uuid = c.contexts.get(_first(row["dcerpc.cn_ctx_id"]) or "0", "")
            entry = [uuid, int(_first(row["dcerpc.opnum"]) or "-1"), "none", ""]
            c.calls.append(entry)
            c.rpc_pending[call] = entry
        elif ptype == "2" and call in c.rpc_pending:  # response
            entry = c.rpc_pending.pop(call)
            entry[2] = "response"
            codes = [row[f].split("|")[-1] for f in RETURN_CODES if row[f]]
            entry[3] = codes[-1] if codes else ""
        elif ptype == "3" and call in c.rpc_pending:  # fault
            code = _first(row["dcerpc.cn_status"])
            entry = c.rpc_pending.pop(call)
            entry[2] = FAULTS.get(code, code)


def toml_value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # strings, ints and arrays of them: JSON is valid TOML


def toml_lines(entry: dict) -> list[str]:
    """manifest.toml lines for one connection: pipes/binds/calls keys, then a files sub-table."""
    lines = []
    for key in ("pipes", "binds", "calls"):
        if key in entry:
            lines.append(f"{key} = [")
            lines += [f"    {toml_value(item)}," for item in entry[key]]
            lines.append("]")
    if "files" in entry:
        lines += ["", "[capture.connection.files]"]
        for key, items in entry["files"].items():
            lines.append(f"{key} = [")
            lines += [f"    {toml_value(item)}," for item in items]
            lines.append("]")
    return lines


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--toml":
        for i, entry in enumerate(facts(args[1])["connections"]):
            print(f"# connection {i}")
            print("\n".join(toml_lines(entry)))
        return
    if len(args) != 1:
        sys.exit(__doc__)
    print(json.dumps(facts(args[0]), indent=1))


if __name__ == "__main__":
    main()
