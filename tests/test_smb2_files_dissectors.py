"""The SMB2 file and pipe dissectors (CREATE, CLOSE, READ, WRITE, IOCTL, SET_INFO, QUERY_DIRECTORY)
against tshark on real captures, then on malformed and mangled bytes.

The differential part runs each capture through smbwatch's own pipeline (decode, flows, SmbStream,
so READ/WRITE arrive cut to their first 256 bytes as in production and compounds are split by
smb2.py) and through `tshark -T json`, which gives one `smb2` layer per message of a compound.
Messages are paired by connection, direction, MessageId, command and status, and every field both
decode is compared. Crafted messages (labelled so) cover what the recordings do not hold.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import struct
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dissectors.constants import FsctlCode, Smb2Command, fsctl_name
from dissectors.message import BULK_MESSAGE_PREFIX, bytes_to_keep, dissect_session_message
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    FileDispositionInformation,
    FileDispositionInformationEx,
    FileRenameInformation,
    Smb2CloseRequest,
    Smb2CloseResponse,
    Smb2CreateRequest,
    Smb2CreateResponse,
    Smb2FileId,
    Smb2IoctlRequest,
    Smb2IoctlResponse,
    Smb2Message,
    Smb2QueryDirectoryRequest,
    Smb2ReadRequest,
    Smb2ReadResponse,
    Smb2SetInfoRequest,
    Smb2SetInfoResponse,
    Smb2WriteRequest,
    Smb2WriteResponse,
)
from dissectors.smb2 import create as smb2_create
from dissectors.smb2 import message as smb2
from monitor.input.capture import CaptureFile
from monitor.pipeline import Pipeline
from monitor.tcp.flows import Direction

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "pcaps" / "recorded"
SURICATA_VERIFY = REPO.parent / "shared" / "pcaps-public" / "suricata-verify"
PUBLIC_PREFIX = "public/"
FILE_COMMANDS = frozenset(
    int(c)
    for c in (
        Smb2Command.CREATE,
        Smb2Command.CLOSE,
        Smb2Command.READ,
        Smb2Command.WRITE,
        Smb2Command.IOCTL,
        Smb2Command.QUERY_DIRECTORY,
        Smb2Command.SET_INFO,
    )
)
RELATED_FILE_ID = Smb2FileId(0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)

# Recorded captures with these commands (smbclient: listing, get, put; rpcclient over IPC$).
RECORDED_CAPTURES = (
    "auth_anonymous.pcap",
    "auth_guest.pcap",
    "auth_kerberos.pcap",
    "bulk_3_0_2.pcap",
    "control_large_copy.pcap",
    "control_three_servers.pcap",
    "ipv6.pcap",
    "netbios_139.pcap",
    "signing_required.pcap",
    "smb2_0_2.pcap",
    "smb2_1.pcap",
    "smb3_0.pcap",
    "smb3_0_2.pcap",
    "smb3_1_1.pcap",
)
# Public captures with these commands; copies of the same file under other tests are left out.
PUBLIC_CAPTURES = (
    "bug-8629/input.pcap",
    "dcerpc-smb-fail/input.pcap",
    "dcerpc-smb-test-01/input.pcap",
    "dcerpc__dcerpc-3109/input.pcap",
    "dcerpc__dcerpc-smb-ctxid/input.pcap",
    "smb-dce_iface/input.pcap",
    "smb-dce_opnum/input.pcap",
    "smb-filename/input.pcap",
    "smb-length-5770/input.pcap",
    "smb-length-5786/input.pcap",
    "smb1-01/smb1.pcap",
    "smb2-01/smb2-peter.pcap",
    "smb2-02/smb2.pcap",
    "smb2-04/20171220_smb_at_schedule.pcap",
    "smb2-05/20171220_smb_mimikatz_copy_to_host.pcap",
    "smb2-06/20171220_smb_net_user.pcap",
    "smb2-07/20171220_smb_psexec_add_user.pcap",
    "smb2-09-trunc-file-logging/input.pcap",
    "smb2-async-read/input.pcap",
    "smb2-async/input.pcap",
    "smb2-delete/input.pcap",
    "smb2-frames-gap-payload-logging/smb2-peter-minus-p191.pcap",
    "smb2-named-pipe-unicode/input.pcap",
    "smb2-ntlmssp-negotiateflags/input.pcap",
)
# A WRITE request of smb-length-5770 declares more data than its NetBIOS frame holds (the
# evasion that test replays): smbwatch reports it, tshark shows the fields as sent.
EXPECTED_ANOMALIES = {"public/smb-length-5770/input.pcap": {AnomalyKind.WRITE_MALFORMED: 1}}
NEW_KINDS = frozenset(
    (
        AnomalyKind.CREATE_MALFORMED,
        AnomalyKind.CREATE_CONTEXTS_FULL,
        AnomalyKind.CLOSE_MALFORMED,
        AnomalyKind.READ_MALFORMED,
        AnomalyKind.WRITE_MALFORMED,
        AnomalyKind.IOCTL_MALFORMED,
        AnomalyKind.SET_INFO_MALFORMED,
        AnomalyKind.QUERY_DIRECTORY_MALFORMED,
    )
)


def capture_ids() -> list[str]:
    ids = [f"pcaps/recorded/{name}" for name in RECORDED_CAPTURES]
    return ids + [PUBLIC_PREFIX + name for name in PUBLIC_CAPTURES]


def capture_path(capture: str) -> Path:
    if capture.startswith(PUBLIC_PREFIX):
        if not SURICATA_VERIFY.is_dir():
            pytest.skip(f"{SURICATA_VERIFY} absent: the public captures are not compared")
        return SURICATA_VERIFY / capture.removeprefix(PUBLIC_PREFIX)
    return REPO / capture


# --- smbwatch's side: the pipeline's own events ------------------------------------------

Endpoint = tuple[str, int]
MessageKey = tuple[Endpoint, Endpoint, int, int, bool, int]  # src, dst, MessageId, command, response, status


class _Recorder(Pipeline):
    """The pipeline as `smbwatch analyze` runs it, keeping each direction's stream events."""

    def __init__(self) -> None:
        self.recorded: list[tuple[Endpoint, Endpoint, list[Any]]] = []
        super().__init__()

    def _on_events(self, flow: Any, direction: Direction, events: list[Any], ts: float) -> None:
        client = (str(ipaddress.ip_address(flow.client[0])), flow.client[1])
        server = (str(ipaddress.ip_address(flow.server[0])), flow.server[1])
        src, dst = (client, server) if direction == Direction.CLIENT_TO_SERVER else (server, client)
        self.recorded.append((src, dst, list(events)))
        super()._on_events(flow, direction, events, ts)


@cache
def smbwatch_events(path: Path) -> tuple[tuple[Endpoint, Endpoint, tuple[Any, ...]], ...]:
    pipeline = _Recorder()
    pipeline.feed(CaptureFile(path))
    pipeline.finish()
    return tuple((src, dst, tuple(events)) for src, dst, events in pipeline.recorded)


def smbwatch_messages(path: Path) -> tuple[dict[MessageKey, list[Smb2Message]], list[Anomaly]]:
    messages: dict[MessageKey, list[Smb2Message]] = defaultdict(list)
    anomalies: list[Anomaly] = []
    for src, dst, events in smbwatch_events(path):
        for event in events:
            if isinstance(event, Smb2Message):
                header = event.header
                status = header.status if header.is_response else 0
                key = (src, dst, header.message_id, header.command, header.is_response, status)
                messages[key].append(event)
            elif isinstance(event, Anomaly):
                anomalies.append(event)
    return messages, anomalies


# --- tshark's side: one flat field list per smb2 layer -----------------------------------


def _flatten(tree: Any, out: dict[str, list[str]]) -> dict[str, list[str]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, dict):
                _flatten(value, out)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        _flatten(item, out)
                    else:
                        out.setdefault(key, []).append(item)
            else:
                out.setdefault(key, []).append(value)
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def tshark_messages(path: Path) -> dict[MessageKey, list[dict[str, list[str]]]]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install.sh installs it)")
    command = [tshark, "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "smb2"]
    command += ["-T", "json", "--no-duplicate-keys", "-J", "frame ip ipv6 tcp smb2 dcerpc"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    out: dict[MessageKey, list[dict[str, list[str]]]] = defaultdict(list)
    for packet in json.loads(result.stdout):
        layers = packet["_source"]["layers"]
        if "tcp" not in layers:
            continue
        tcp = _as_list(layers["tcp"])[0]
        ip = _as_list(layers.get("ip") or layers.get("ipv6"))[0]
        src_ip = ip.get("ip.src") or ip.get("ipv6.src")
        dst_ip = ip.get("ip.dst") or ip.get("ipv6.dst")
        src = (str(ipaddress.ip_address(src_ip)), int(tcp["tcp.srcport"]))
        dst = (str(ipaddress.ip_address(dst_ip)), int(tcp["tcp.dstport"]))
        rpc = [_flatten(layer, {}) for layer in _as_list(layers.get("dcerpc", []))]
        for layer in _as_list(layers["smb2"]):
            fields = _flatten(layer, {})
            if "smb2.cmd" not in fields or "smb2.msg_id" not in fields:
                continue  # a transform header: the messages inside are encrypted
            command_code = int(fields["smb2.cmd"][0])
            if command_code not in FILE_COMMANDS:
                continue
            response = fields["smb2.flags.response"][0] == "1"
            status = int(fields["smb2.nt_status"][0], 0) if response else 0
            fields["frame.number"] = [packet["_source"]["layers"]["frame"]["frame.number"]]
            fields["_dcerpc"] = rpc  # type: ignore[assignment]
            key = (src, dst, int(fields["smb2.msg_id"][0]), command_code, response, status)
            out[key].append(fields)
    return out


# --- field by field ----------------------------------------------------------------------


def one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    assert values, f"tshark shows no {name}"
    return values[0]


def num(fields: dict[str, list[str]], name: str) -> int:
    return int(one(fields, name), 0)


def fid(file_id: Smb2FileId) -> str:
    return str(uuid.UUID(bytes_le=file_id.raw))


def hex_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def compare(body: Any, f: dict[str, list[str]]) -> None:
    """Every field of `body` that tshark shows too, equal."""
    if isinstance(body, Smb2CreateRequest):
        assert body.name == (f.get("smb2.filename") or [""])[0]
        assert body.requested_oplock_level == num(f, "smb2.create.oplock")
        assert body.impersonation_level == num(f, "smb2.impersonation.level")
        assert body.desired_access == num(f, "smb.access_mask")
        assert body.file_attributes == num(f, "smb2.file_attribute")
        assert body.share_access == num(f, "smb.share_access")
        assert body.create_disposition == num(f, "smb2.create.disposition")
        assert body.create_options == num(f, "smb.create_options")
        assert list(body.context_names) == f.get("smb2.tag", [])
        assert body.context_names_dropped == 0 and body.anomalies == ()
    elif isinstance(body, Smb2CreateResponse):
        assert body.oplock_level == num(f, "smb2.create.oplock")
        assert body.create_action == num(f, "smb2.create.action")
        assert body.allocation_size == num(f, "smb2.allocation_size")
        assert body.end_of_file == num(f, "smb2.eof")
        assert body.file_attributes == num(f, "smb2.file_attribute")
        assert fid(body.file_id) == one(f, "smb2.fid")
        assert list(body.context_names) == f.get("smb2.tag", [])
    elif isinstance(body, Smb2CloseRequest):
        assert body.flags == num(f, "smb2.close.flags")
        assert fid(body.file_id) == one(f, "smb2.fid")
    elif isinstance(body, Smb2CloseResponse):
        assert body.flags == num(f, "smb2.close.flags")
        assert body.allocation_size == num(f, "smb2.allocation_size")
        assert body.end_of_file == num(f, "smb2.eof")
        assert body.file_attributes == num(f, "smb2.file_attribute")
    elif isinstance(body, Smb2ReadRequest):
        assert body.flags == num(f, "smb2.read_flags")
        assert body.length == num(f, "smb2.read_length")
        assert body.offset == num(f, "smb2.file_offset")
        assert fid(body.file_id) == one(f, "smb2.fid")
        assert body.minimum_count == num(f, "smb2.min_count")
        assert body.remaining_bytes == num(f, "smb2.remaining_bytes")
    elif isinstance(body, Smb2ReadResponse):
        assert body.data_offset == num(f, "smb2.olb.offset")
        assert body.data_length == num(f, "smb2.olb.length")
        assert body.data_remaining == num(f, "smb2.read_remaining")
        assert len(body.data) == min(body.data_length, BULK_MESSAGE_PREFIX - body.data_offset) or body.data_complete
        shown = f.get("smb2.read_data")  # file data; a pipe's is dissected as DCE/RPC instead
        if shown:
            assert hex_bytes(shown[0]).startswith(body.data)
        check_rpc(body.data, body.data_complete, f)
    elif isinstance(body, Smb2WriteRequest):
        assert body.data_offset == num(f, "smb2.data_offset")
        assert body.data_length == num(f, "smb2.write_length")
        assert body.offset == num(f, "smb2.file_offset")
        assert fid(body.file_id) == one(f, "smb2.fid")
        assert body.remaining_bytes == num(f, "smb2.remaining_bytes")
        assert body.flags == num(f, "smb2.write.flags")
        shown = f.get("smb2.write_data")
        if shown:
            assert hex_bytes(shown[0]).startswith(body.data)
        check_rpc(body.data, body.data_complete, f)
    elif isinstance(body, Smb2WriteResponse):
        assert body.bytes_written == num(f, "smb2.write.count")
        assert body.remaining == num(f, "smb2.write.remaining")
    elif isinstance(body, Smb2IoctlRequest):
        assert body.ctl_code == num(f, "smb2.ioctl.function")
        assert fid(body.file_id) == one(f, "smb2.fid")
        assert body.flags == num(f, "smb2.ioctl.flags")
        assert body.max_input_response == num(f, "smb2.max_ioctl_in_size")
        assert body.max_output_response == num(f, "smb2.max_ioctl_out_size")
        # tshark shows the input and output blobs in either order (output first when it is empty)
        assert body.input_count in [int(value) for value in f["smb2.olb.length"]] and body.input_complete
        if body.ctl_code == FsctlCode.FSCTL_PIPE_TRANSCEIVE:
            check_rpc(body.input, True, f)
    elif isinstance(body, Smb2IoctlResponse):
        assert body.ctl_code == num(f, "smb2.ioctl.function")
        assert fid(body.file_id) == one(f, "smb2.fid")
        lengths = [int(value) for value in f["smb2.olb.length"]]
        assert sorted((body.input_count, body.output_count)) == sorted(lengths) and body.output_complete
        if body.ctl_code == FsctlCode.FSCTL_PIPE_TRANSCEIVE:
            check_rpc(body.output, True, f)
    elif isinstance(body, Smb2SetInfoRequest):
        assert body.info_type == num(f, "smb2.class")
        level = {1: "smb2.file_info.infolevel", 2: "smb2.fs_info.infolevel", 3: "smb2.sec_info.infolevel"}
        if body.info_type in level:
            assert body.file_info_class == num(f, level[body.info_type])
        assert body.buffer_length == num(f, "smb2.setinfo_size")
        additional = "smb2.getsetinfo_additionals" if body.info_type == 3 else "smb2.getsetinfo_additional"
        assert body.additional_information == num(f, additional)
        assert fid(body.file_id) == one(f, "smb2.fid")
        buffer = body.buffer
        if isinstance(buffer, FileRenameInformation):
            assert buffer.replace_if_exists == (one(f, "smb2.rename.replace_if") == "1")
            assert buffer.file_name == one(f, "smb2.filename")
        elif isinstance(buffer, FileDispositionInformation):
            assert buffer.delete_pending == (one(f, "smb2.disposition.delete_on_close") == "1")
        else:
            assert buffer is None or isinstance(buffer, FileDispositionInformationEx)
    elif isinstance(body, Smb2SetInfoResponse):
        assert num(f, "smb2.buffer_code") == 2
    elif isinstance(body, Smb2QueryDirectoryRequest):
        assert body.file_information_class == num(f, "smb2.find.infolevel")
        assert body.flags == num(f, "smb2.find.flags")
        assert body.file_index == num(f, "smb2.file_index")
        assert fid(body.file_id) == one(f, "smb2.fid")
        assert body.pattern == (f.get("smb2.find.pattern") or [""])[0]
        assert body.output_buffer_length == num(f, "smb2.output_buffer_len")
    else:
        pytest.fail(f"no comparison for {body!r}")


def _rpc_headers(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(ptype, frag_length, call_id) of the whole DCE/RPC PDUs at the start of `data` ([C706] 12.6.3.1)."""
    position = 0
    while position + 16 <= len(data) and data[position] == 5:
        ptype, frag_length, call_id = data[position + 2], *struct.unpack_from("<HxxI", data, position + 8)
        if position + frag_length > len(data) or frag_length < 16:
            return
        yield ptype, frag_length, call_id
        position += frag_length


def check_rpc(data: bytes, complete: bool, f: dict[str, list[str]]) -> None:
    """Pipe data is DCE/RPC: the PDUs in our bytes are the ones tshark dissected in that frame."""
    rpc: list[dict[str, list[str]]] = f["_dcerpc"]  # type: ignore[assignment]
    if not rpc or not complete:
        return
    theirs = [
        (int(layer["dcerpc.pkt_type"][0]), int(layer["dcerpc.cn_frag_len"][0]), int(layer["dcerpc.cn_call_id"][0]))
        for layer in rpc
        if "dcerpc.cn_frag_len" in layer
    ]
    ours = list(_rpc_headers(data))
    assert ours and set(ours) <= set(theirs), (ours, theirs)


@pytest.mark.oracle
@pytest.mark.parametrize("capture", capture_ids())
def test_every_file_command_reads_as_tshark_reads_it(capture: str) -> None:
    path = capture_path(capture)
    theirs = tshark_messages(path)
    ours, anomalies = smbwatch_messages(path)
    compared = 0
    for key, tshark_list in theirs.items():
        our_list = ours.get(key, [])
        assert len(our_list) == len(tshark_list), f"{key}: smbwatch {len(our_list)}, tshark {len(tshark_list)}"
        for message, fields in zip(our_list, tshark_list, strict=True):
            frame = fields["frame.number"][0]
            body = message.body
            status = message.header.status
            if message.header.is_response and status and num(fields, "smb2.buffer_code") == 9:
                assert body is None, f"frame {frame}: an ERROR response has no body"  # [MS-SMB2] 2.2.2
                continue
            if body is None and (key[3], key[4]) == (Smb2Command.QUERY_DIRECTORY, True):
                continue  # the listing itself is not decoded: the request tells that one was asked for
            if body is None:
                # Only the evasion's WRITE is not decoded (its anomaly is checked below).
                assert capture in EXPECTED_ANOMALIES and key[3] == Smb2Command.WRITE, f"frame {frame}: no body"
                continue
            try:
                compare(body, fields)
            except AssertionError as error:
                raise AssertionError(f"frame {frame} {key}: {error}") from error
            compared += 1
    assert compared, "no message compared"
    kinds: dict[AnomalyKind, int] = {}
    for anomaly in anomalies:
        if anomaly.kind in NEW_KINDS:
            kinds[anomaly.kind] = kinds.get(anomaly.kind, 0) + 1
    assert kinds == EXPECTED_ANOMALIES.get(capture, {}), [a for a in anomalies if a.kind in NEW_KINDS]


@pytest.mark.parametrize("capture", ["public/smb2-delete/input.pcap", "public/smb-length-5770/input.pcap"])
def test_compound_chains_reach_their_parsers(capture: str) -> None:
    """macOS' compound chains (CREATE + SET_INFO/QUERY_INFO + CLOSE, and the like): every message
    of a chain is decoded (the differential test above compares their fields), and the related
    requests after a CREATE carry the all-ones FileId, raw, for the state layer to resolve.
    (The recorded smbclient 4.17 captures hold no compound: it sends its requests one by one.)"""
    ours, _ = smbwatch_messages(capture_path(capture))
    messages = [message for chain in ours.values() for message in chain]
    chained = [m for m in messages if m.header.next_command and m.header.command in FILE_COMMANDS]
    related = [
        m
        for m in messages
        if m.header.flags & 0x4 and not m.header.is_response and m.header.command != Smb2Command.CREATE
    ]  # SMB2_FLAGS_RELATED_OPERATIONS
    assert chained and all(m.body is not None for m in chained if not m.header.is_response)
    assert related and all(getattr(m.body, "file_id", None) == RELATED_FILE_ID for m in related if m.body)
    assert any(isinstance(m.body, Smb2CloseRequest) for m in related)
    assert RELATED_FILE_ID.related and RELATED_FILE_ID.raw == b"\xff" * 16


# tshark 4.0 gives these other access bits (FILE_WRITE_DATA 0x000980xx, FILE_READ_DATA 0x000940xx)
# than [MS-FSCC] 2.3 and winioctl.h (FILE_SPECIAL_ACCESS / FILE_ANY_ACCESS: 0x000900xx); the
# Wireshark wiki's FSCTL_SET_OBJECT_ID page gives 0x00090098 too.
TSHARK_OLDER_CODES = frozenset(
    (
        "FSCTL_SET_OBJECT_ID",
        "FSCTL_DELETE_OBJECT_ID",
        "FSCTL_SET_OBJECT_ID_EXTENDED",
        "FSCTL_DELETE_REPARSE_POINT",
        "FSCTL_READ_FILE_USN_DATA",
        "FSCTL_WRITE_USN_CLOSE_RECORD",
    )
)


@pytest.mark.oracle
def test_fsctl_names_are_wiresharks() -> None:
    """Every FSCTL named both here and by tshark has the same code, but for `TSHARK_OLDER_CODES`
    (tshark also names 0x000980A4 FSCTL_SET_REPARSE_POINT, beside 0x000900A4 of [MS-FSCC])."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    prefix = "V\tsmb2.ioctl.function\t"
    codes: dict[str, set[int]] = defaultdict(set)
    with subprocess.Popen(
        [tshark, "-G", "values"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as dump:
        assert dump.stdout is not None
        for line in dump.stdout:
            if line.startswith(prefix):
                _, _, value, name = line.rstrip("\n").split("\t", 3)
                codes[name].add(int(value, 0))
            elif codes:
                break
        dump.kill()
    shared = [member for member in FsctlCode if member.name in codes]
    assert len(shared) >= 35
    differ = {member.name for member in shared if member.value not in codes[member.name]}
    assert differ == TSHARK_OLDER_CODES
    assert fsctl_name(0x0011C017) == "FSCTL_PIPE_TRANSCEIVE" and fsctl_name(0x00123456) == "unknown-0x00123456"


# --- crafted: what real software does not send -------------------------------------------


def header(command: int, *, response: bool = False, status: int = 0, next_command: int = 0) -> bytes:
    """A crafted SMB2 sync header ([MS-SMB2] 2.2.1.2)."""
    return struct.pack(
        "<4sHHIHHIIQQQ16s", b"\xfeSMB", 64, 1, status, command, 1, int(response), next_command, 7, 0, 1, bytes(16)
    )


def create_request(name: str = "dir\\file.txt", contexts: bytes = b"") -> bytes:
    """Crafted: an SMB2 CREATE request with `contexts` after the name (8-aligned)."""
    raw_name = name.encode("utf-16-le")
    name_offset = 64 + 56
    contexts_offset = (name_offset + len(raw_name) + 7) & ~7 if contexts else 0
    fixed = struct.pack(
        "<HBBIQQIIIIIHHII",
        57, 0, 0x09, 2, 0, 0, 0x00120089, 0x80, 7, 1, 0x00200040,
        name_offset, len(raw_name), contexts_offset, len(contexts),
    )  # fmt: skip
    body = fixed + raw_name
    if contexts:
        body += bytes(contexts_offset - 64 - len(body)) + contexts
    return header(Smb2Command.CREATE) + body


def create_context(name: bytes, data: bytes = b"", last: bool = True) -> bytes:
    """Crafted: one SMB2_CREATE_CONTEXT ([MS-SMB2] 2.2.13.2), padded to 8 bytes unless last."""
    data_offset = (16 + len(name) + 7) & ~7 if data else 0
    body = struct.pack("<IHHHHI", 0, 16, len(name), 0, data_offset, len(data)) + name
    if data:
        body += bytes(data_offset - len(body)) + data
    padded = body + bytes(-len(body) % 8)
    next_offset = 0 if last else len(padded)
    return struct.pack("<I", next_offset) + (body if last else padded)[4:]


def parsed(message: bytes, message_length: int | None = None) -> list[Any]:
    return smb2.parse_compound(message, len(message) if message_length is None else message_length)


def test_crafted_create_with_contexts() -> None:
    contexts = create_context(b"MxAc", last=False) + create_context(b"QFid", last=False) + create_context(bytes(16))
    [message] = parsed(create_request("a\\b.txt", contexts))
    body = message.body
    assert isinstance(body, Smb2CreateRequest)
    assert body.name == "a\\b.txt" and body.create_disposition == 1 and body.create_options == 0x00200040
    assert body.context_names == ("MxAc", "QFid", "00" * 16) and body.anomalies == ()


def test_crafted_create_contexts_past_the_cap_are_counted() -> None:
    count = smb2_create.MAX_CREATE_CONTEXTS + 3
    contexts = b"".join(create_context(b"TWrp", last=i == count - 1) for i in range(count))
    events = parsed(create_request("x", contexts))
    body = events[0].body
    assert isinstance(body, Smb2CreateRequest)
    assert len(body.context_names) == smb2_create.MAX_CREATE_CONTEXTS and body.context_names_dropped == 3
    assert events[1:] == [Anomaly(AnomalyKind.CREATE_CONTEXTS_FULL, "3 create contexts past the 16 named")]


def test_crafted_create_context_chain_broken() -> None:
    bad_next = bytearray(create_context(b"MxAc", last=False) + create_context(b"QFid"))
    bad_next[0:4] = struct.pack("<I", 12)  # not 8-aligned
    events = parsed(create_request("x", bytes(bad_next)))
    assert isinstance(events[0].body, Smb2CreateRequest) and events[0].body.context_names == ("MxAc",)
    assert events[1:] == [Anomaly(AnomalyKind.CREATE_MALFORMED, f"create context at {64 + 56 + 8}: Next 12")]


def test_crafted_create_name_outside_the_message() -> None:
    message = bytearray(create_request("abc"))
    message[64 + 46 : 64 + 48] = struct.pack("<H", 200)  # NameLength past the end
    events = parsed(bytes(message))
    assert events[0].body is None
    assert events[1] == Anomaly(
        AnomalyKind.CREATE_MALFORMED, "name: 200 bytes at 120, past the end of the 126-byte message"
    )


@pytest.mark.parametrize(
    ("command", "response", "kind"),
    [
        (Smb2Command.CREATE, False, AnomalyKind.CREATE_MALFORMED),
        (Smb2Command.CREATE, True, AnomalyKind.CREATE_MALFORMED),
        (Smb2Command.CLOSE, False, AnomalyKind.CLOSE_MALFORMED),
        (Smb2Command.CLOSE, True, AnomalyKind.CLOSE_MALFORMED),
        (Smb2Command.READ, False, AnomalyKind.READ_MALFORMED),
        (Smb2Command.READ, True, AnomalyKind.READ_MALFORMED),
        (Smb2Command.WRITE, False, AnomalyKind.WRITE_MALFORMED),
        (Smb2Command.WRITE, True, AnomalyKind.WRITE_MALFORMED),
        (Smb2Command.IOCTL, False, AnomalyKind.IOCTL_MALFORMED),
        (Smb2Command.IOCTL, True, AnomalyKind.IOCTL_MALFORMED),
        (Smb2Command.SET_INFO, False, AnomalyKind.SET_INFO_MALFORMED),
        (Smb2Command.SET_INFO, True, AnomalyKind.SET_INFO_MALFORMED),
        (Smb2Command.QUERY_DIRECTORY, False, AnomalyKind.QUERY_DIRECTORY_MALFORMED),
    ],
)
def test_crafted_short_or_wrong_structure_size(command: int, response: bool, kind: AnomalyKind) -> None:
    short = header(command, response=response) + b"\x00"
    events = parsed(short)
    assert isinstance(events[0], Smb2Message) and events[0].body is None
    side = "response" if response else "request"
    assert events[1] == Anomaly(kind, f"{side} shorter than its fixed part")
    wrong = header(command, response=response) + struct.pack("<H", 3) + bytes(100)
    events = parsed(wrong)
    assert events[1] == Anomaly(kind, f"{side} StructureSize 3")


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_crafted_error_response_is_not_malformed(command: int) -> None:
    """[MS-SMB2] 2.2.2: a failed request is answered with the 9-byte ERROR Response."""
    error = header(command, response=True, status=0xC0000022) + struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"
    assert parsed(error) == [Smb2Message(smb2.parse_header(error), None)]  # type: ignore[arg-type]


def read_response(data: bytes, declared: int | None = None) -> bytes:
    """Crafted: a READ response with its data at 80 ([MS-SMB2] 2.2.20)."""
    length = len(data) if declared is None else declared
    return header(Smb2Command.READ, response=True) + struct.pack("<HBBIII", 17, 80, 0, length, 0, 0) + data


def test_bulk_read_cut_by_the_stream_is_not_malformed() -> None:
    """A 64 KiB READ response keeps its first 256 bytes (message.bytes_to_keep): the record says
    its data is incomplete, no anomaly. Past the message as sent it is malformed."""
    whole = read_response(bytes(range(256)) * 256)
    kept = bytes_to_keep(whole[:64], len(whole))
    assert kept == BULK_MESSAGE_PREFIX
    [message] = dissect_session_message(whole[:kept], len(whole))
    body = message.body
    assert isinstance(body, Smb2ReadResponse)
    assert body.data_length == 65536 and body.data == whole[80:256] and not body.data_complete
    short = read_response(b"abc", declared=4)
    events = parsed(short)
    assert events[1] == Anomaly(AnomalyKind.READ_MALFORMED, "data: 4 bytes at 80, past the end of the 83-byte message")
    [complete] = parsed(read_response(b"abc"))
    assert complete.body.data == b"abc" and complete.body.data_complete


def test_crafted_write_data_inside_the_fixed_part() -> None:
    fixed = struct.pack("<HHIQQQIIHHI", 49, 100, 4, 0, 1, 2, 0, 0, 0, 0, 0)
    events = parsed(header(Smb2Command.WRITE) + fixed + b"abcdefgh")
    assert events[1] == Anomaly(
        AnomalyKind.WRITE_MALFORMED, "data: 4 bytes at 100, inside the fixed part (ends at 112)"
    )


def set_info(file_info_class: int, buffer: bytes, info_type: int = 1) -> bytes:
    """Crafted: SET_INFO request ([MS-SMB2] 2.2.39) with `buffer` at 96."""
    fixed = struct.pack("<HBBIHHIQQ", 33, info_type, file_info_class, len(buffer), 96, 0, 0, 5, 6)
    return header(Smb2Command.SET_INFO) + fixed + buffer


def test_crafted_set_info_buffers() -> None:
    rename = struct.pack("<B7xQI", 1, 0, 12) + "new.txt"[:6].encode("utf-16-le")
    [message] = parsed(set_info(10, rename))
    assert message.body == Smb2SetInfoRequest(
        1, 10, len(rename), 0, Smb2FileId(5, 6), FileRenameInformation(True, 0, "new.tx")
    )
    [message] = parsed(set_info(64, struct.pack("<I", 0x13)))
    assert message.body.buffer == FileDispositionInformationEx(0x13) and message.body.buffer.delete
    [message] = parsed(set_info(13, b"\x00"))
    assert message.body.buffer == FileDispositionInformation(False)
    [message] = parsed(set_info(4, bytes(40)))  # FileBasicInformation: class only
    assert message.body.buffer is None and message.body.file_info_class == 4
    [message] = parsed(set_info(10, bytes(4), info_type=3))  # security info: not a rename
    assert message.body.buffer is None
    events = parsed(set_info(10, struct.pack("<B7xQI", 0, 0, 50) + b"ab"))
    assert events[1] == Anomaly(
        AnomalyKind.SET_INFO_MALFORMED, "FileRenameInformation: FileNameLength 50 past its 22-byte buffer"
    )
    events = parsed(set_info(64, b"\x01"))
    assert events[1] == Anomaly(AnomalyKind.SET_INFO_MALFORMED, "FileDispositionInformationEx of 1 bytes")


def test_crafted_ioctl_output_past_the_message() -> None:
    fixed = struct.pack("<HHIQQIIIIII", 49, 0, 0x0011C017, 1, 2, 112, 0, 112, 500, 0, 0)
    events = parsed(header(Smb2Command.IOCTL, response=True) + fixed + bytes(20))
    assert events[1] == Anomaly(
        AnomalyKind.IOCTL_MALFORMED, "response output: 500 bytes at 112, past the end of the 132-byte message"
    )


# --- mangled real messages: never an exception -------------------------------------------


@cache
def real_messages() -> tuple[bytes, ...]:
    """Each SMB2 file-command message of some recorded captures, as the stream kept it (crafted from real)."""
    found: list[bytes] = []
    seen: set[bytes] = set()
    for name in ("auth_guest.pcap", "auth_anonymous.pcap", "bulk_3_0_2.pcap"):
        tshark = shutil.which("tshark")
        if tshark is None:
            pytest.skip("tshark is not installed")
        out = subprocess.run(
            [tshark, "-n", "-r", str(RECORDED / name), "-Y", "smb2", "-T", "fields", "-e", "tcp.payload"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in out.split():
            payload = bytes.fromhex(line.split(",")[0])
            position = 0
            while position + 4 + 64 <= len(payload) and payload[position] == 0:
                length = int.from_bytes(payload[position + 1 : position + 4], "big")
                frame = payload[position + 4 : position + 4 + length]
                command = int.from_bytes(frame[12:14], "little") if len(frame) >= 64 else -1
                digest = hashlib.sha1(frame[:512]).digest()
                if frame[:4] == b"\xfeSMB" and command in FILE_COMMANDS and digest not in seen:
                    seen.add(digest)
                    found.append(frame[: bytes_to_keep(frame[:64], length)])
                position += 4 + length
    assert len({int.from_bytes(m[12:14], "little") for m in found}) >= 5, "too few kinds of real messages"
    return tuple(found)


def test_mangled_real_messages_never_raise() -> None:
    messages = real_messages()
    checked = 0
    for message in messages:
        for cut in range(64, len(message), 3):
            for event in parsed(message[:cut], len(message)) + parsed(message[:cut]):
                assert isinstance(event, Smb2Message | Anomaly)
            checked += 1
        for position in range(64, min(len(message), 200)):
            for value in (0x00, 0xFF, message[position] ^ 0x80):
                flipped = message[:position] + bytes((value,)) + message[position + 1 :]
                for event in parsed(flipped):
                    assert isinstance(event, Smb2Message | Anomaly)
                    if isinstance(event, Anomaly):
                        assert event.detail and "\n" not in event.detail
                checked += 1
    assert checked > 1000
