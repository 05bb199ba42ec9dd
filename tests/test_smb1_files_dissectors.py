"""SMB1 file and named-pipe dissectors (smb1_open, smb1_read_write, smb1_file, smb1_transaction)
against tshark, message by message, on every recorded and public capture with SMB1 file or pipe
traffic; then crafted messages (labelled crafted) for what no capture here holds, malformed bodies,
and a fuzz pass over the real messages.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from dissectors.constants import (
    Smb1Command,
    Smb1CreateAction,
    Smb1CreateDisposition,
    Smb1CreateOptions,
    Smb1NamedPipeFunction,
    Smb1NtRenameLevel,
    Smb1SetInformationLevel,
    Smb1Trans2Subcommand,
)
from dissectors.message import BULK_MESSAGE_PREFIX, SMALL_IO_KEPT, dissect_session_message
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1CloseRequest,
    Smb1DeleteRequest,
    Smb1DirectoryRequest,
    Smb1Message,
    Smb1NtCreateResponse,
    Smb1OpenAndxResponse,
    Smb1OpenRequest,
    Smb1ReadAndxRequest,
    Smb1ReadAndxResponse,
    Smb1RenameRequest,
    Smb1TransactionRequest,
    Smb1TransactionResponse,
    Smb1TransactionSecondaryRequest,
    Smb1WriteAndxRequest,
    Smb1WriteAndxResponse,
)
from dissectors.smb1 import message as smb1
from dissectors.smb1.transaction import parse_find_response_parameters
from tests.smb1_capture_messages import DirectionKey, TsharkCommand, smbwatch_messages, tshark_commands

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "pcaps" / "recorded"
PUBLIC = Path("/work/shared/pcaps-public/suricata-verify")

RECORDED_SMB1 = [
    "smb1_nt1.pcap",
    "smb1_named_pipe.pcap",
    "smb1_printing.pcap",
    "smb1_browsing_139.pcap",
    "auth_legacy_ntlmv1_smb1.pcap",
    "auth_legacy_smb1.pcap",
    "auth_ntlmv2_smb1.pcap",
    "auth_plaintext_smb1.pcap",
    "nmap_ms17_010.pcap",
    "nmap_double_pulsar.pcap",
]
PUBLIC_SMB1 = [
    "smb1-02/smb1_osx.pcap",
    "smb-eicar-andx/smbandx.pcap",
    "smb-eicar-padding/smb1_eicar_andx_write_padding2.pcap",
    "smb-eicar-file/input.pcap",
    "smb-eicar-file-frames/input.pcap",
    "smb-eicar-file-nbss-more-ffsmb/input.pcap",
    "smb-eicar-file-segmentation-postheader/input.pcap",
    "smb-eicar-overlap/input.pcap",
    "smb-named-pipe-ascii/input.pcap",
    "smb-named-pipe-unicode/input.pcap",
    "smb-filename/input.pcap",
    "filestore-filecontainer-smb/filecontainer-smb.pcap",
    "filestore-filecontainer-smb1-data-offset/input.pcap",
    "filestore-filecontainer-smb1-padding/smb_bug_padding.pcap",
    "smb2-09-trunc-file-logging/input.pcap",
    "smb2-ntlmssp-negotiateflags/input.pcap",
]
_READ_ANDX = int(Smb1Command.SMB_COM_READ_ANDX)
_WRITE_ANDX = int(Smb1Command.SMB_COM_WRITE_ANDX)
_TRANSACTION = int(Smb1Command.SMB_COM_TRANSACTION)
_TRANSACTION2 = int(Smb1Command.SMB_COM_TRANSACTION2)


def _captures() -> list[pytest.param]:
    params = [pytest.param(RECORDED / name, id=name) for name in RECORDED_SMB1]
    params += [
        pytest.param(
            PUBLIC / name,
            id=name.split("/")[0],
            marks=pytest.mark.skipif(not (PUBLIC / name).exists(), reason="public captures not present"),
        )
        for name in PUBLIC_SMB1
    ]
    return params


def _hex_bytes(value: str | None) -> bytes:
    return bytes.fromhex((value or "").replace(":", ""))


class Compared(Counter[str]):
    """Which (command, direction) pairs a capture's comparison checked field by field."""


# Frames where tshark and smbwatch read the same bytes differently, each checked on its own below.
TSHARK_DIFFERS = {
    # The FIND_FIRST2 parameters start at odd offset 65; the Unicode pattern "\\*" follows the 12 fixed
    # bytes unpadded (Samba aligns on the parameters' start). tshark aligns on the SMB header and shows "?".
    ("smb_bug_padding.pcap", 15),
    ("smb_bug_padding.pcap", 46),
    ("smb_bug_padding.pcap", 48),
    # ByteCount (69) ends 4 bytes before DataOffset + DataLength: tshark takes the data after the
    # ByteCount's pad, smbwatch at DataOffset ([MS-CIFS] 2.2.4.43.1), where the EICAR string starts.
    ("smb1_eicar_andx_write_padding2.pcap", 15),
    # The WRITE_ANDX chained behind LOCKING_ANDX: tshark calls it malformed and shows its data from 9
    # bytes before DataOffset; smbwatch reads at DataOffset, where the EICAR string starts.
    ("smbandx.pcap", 22),
}
# Chained commands tshark does not show: it calls the WRITE_ANDX of this LOCKING_ANDX chain malformed
# and stops before the CLOSE chained behind it (smbwatch decodes the CLOSE; checked below).
TSHARK_MISSES = {"smbandx.pcap": [(0x04, False)]}


def _compare(ours: Smb1Message, theirs: TsharkCommand, trans2_requests: dict[tuple[int, int], int]) -> str | None:
    """Assert the fields both decode agree; returns what was compared (None if nothing)."""
    body = ours.body
    code = theirs.code
    where = f"frame {theirs.frame} command 0x{code:02x}"
    wct = theirs.number("smb.wct")
    if code == Smb1Command.SMB_COM_NT_CREATE_ANDX and not theirs.response:
        assert isinstance(body, Smb1OpenRequest), where
        assert body.name == (theirs.first("smb.file") or ""), where
        assert body.desired_access == theirs.number("smb.access_mask"), where
        assert body.create_disposition == theirs.number("smb.create.disposition"), where
        assert body.create_options == theirs.number("smb.create_options"), where
        assert body.share_access == theirs.number("smb.share_access"), where
        assert body.ext_file_attributes == theirs.number("smb.file_attribute"), where
        assert body.root_directory_fid == theirs.number("smb.rfid"), where
        assert body.allocation_size == theirs.number("smb.alloc_size64"), where
        assert body.flags == theirs.number("smb.create_flags"), where
        assert body.delete_on_close == (theirs.first("smb.nt.create_options.delete_on_close") == "1"), where
        return "nt_create_request"
    if code == Smb1Command.SMB_COM_NT_CREATE_ANDX:
        if not wct:
            assert body is None, where
            return "error_response"
        assert isinstance(body, Smb1NtCreateResponse), where
        assert body.fid == theirs.number("smb.fid"), where
        assert body.oplock_level == theirs.number("smb.oplock.level"), where
        assert body.create_action == theirs.number("smb.create.action"), where
        assert body.ext_file_attributes == theirs.number("smb.file_attribute"), where
        assert body.allocation_size == theirs.number("smb.alloc_size64"), where
        assert body.end_of_file == theirs.number("smb.end_of_file"), where
        assert body.resource_type == theirs.number("smb.file_type"), where
        assert body.nm_pipe_status == theirs.number("smb.ipc_state"), where
        assert body.directory == (theirs.first("smb.is_directory") == "1"), where
        assert body.extended == (wct == 42), where
        if body.extended:
            assert body.file_id == theirs.number("smb.create.file_id_64b"), where
            access = [int(value, 0) for value in theirs.fields["smb.access_mask"]]
            assert [body.maximal_access_rights, body.guest_maximal_access_rights] == access, where
        return "nt_create_response"
    if code == _READ_ANDX and not theirs.response:
        assert isinstance(body, Smb1ReadAndxRequest), where
        assert body.fid == theirs.number("smb.fid"), where
        assert body.offset == (theirs.number("smb.offset") or 0) | (theirs.number("smb.offset_high") or 0) << 32
        assert (
            body.max_count == (theirs.number("smb.maxcount_low") or 0) | (theirs.number("smb.maxcount_high") or 0) << 16
        )
        assert body.min_count == theirs.number("smb.mincount"), where
        assert body.remaining == theirs.number("smb.remaining"), where
        return "read_request"
    if code == _READ_ANDX:
        if not wct:
            assert body is None, where
            return "error_response"
        assert isinstance(body, Smb1ReadAndxResponse), where
        length = (theirs.number("smb.data_len_low") or 0) | (theirs.number("smb.data_len_high") or 0) << 16
        assert body.data_length == length, where
        assert body.data_offset == theirs.number("smb.data_offset"), where
        assert body.available == theirs.number("smb.remaining"), where
        _check_data(body.data, body.data_complete, length, theirs, where)
        return "read_response"
    if code == _WRITE_ANDX and not theirs.response:
        assert isinstance(body, Smb1WriteAndxRequest), where
        assert body.fid == theirs.number("smb.fid"), where
        assert body.offset == (theirs.number("smb.offset") or 0) | (theirs.number("smb.offset_high") or 0) << 32
        assert body.write_mode == theirs.number("smb.write.mode"), where
        assert body.remaining == theirs.number("smb.remaining"), where
        length = (theirs.number("smb.data_len_low") or 0) | (theirs.number("smb.data_len_high") or 0) << 16
        assert body.data_length == length, where
        assert body.data_offset == theirs.number("smb.data_offset"), where
        _check_data(body.data, body.data_complete, length, theirs, where)
        return "write_request"
    if code == _WRITE_ANDX:
        if not wct:
            assert body is None, where
            return "error_response"
        assert isinstance(body, Smb1WriteAndxResponse), where
        assert body.count == (theirs.number("smb.count_low") or 0) | (theirs.number("smb.count_high") or 0) << 16
        assert body.available == theirs.number("smb.remaining"), where
        return "write_response"
    if code == Smb1Command.SMB_COM_CLOSE and not theirs.response:
        assert isinstance(body, Smb1CloseRequest), where
        assert body.fid == theirs.number("smb.fid"), where
        return "close_request"
    if code == _TRANSACTION and not theirs.response:
        assert isinstance(body, Smb1TransactionRequest), where
        assert body.name == theirs.first("smb.trans_name"), where
        _check_transaction_counts(body, theirs, where)
        pipe = theirs.frame_layers.get("smb_pipe")
        if pipe and "smb_pipe.function" in pipe:
            assert body.pipe_function == int(pipe["smb_pipe.function"][0], 0), where
            if "smb.fid" in pipe:
                assert body.fid == int(pipe["smb.fid"][0], 0), where
            assert len(body.data) == body.data_count, where
            dcerpc = theirs.frame_layers.get("dcerpc")
            if dcerpc and body.pipe_function == Smb1NamedPipeFunction.TRANS_TRANSACT_NMPIPE:
                # The Data bytes are the DCE/RPC PDU tshark dissects: its type and length.
                assert body.data[2] == int(dcerpc["dcerpc.pkt_type"][0]), where
                assert int.from_bytes(body.data[8:10], "little") == int(dcerpc["dcerpc.cn_frag_len"][0]), where
            return "pipe_request"
        return "transaction_request"
    if code == _TRANSACTION2 and not theirs.response:
        assert isinstance(body, Smb1TransactionRequest), where
        _check_transaction_counts(body, theirs, where)
        subcommand = theirs.number("smb.trans2.cmd")
        assert body.setup[:1] == (subcommand,), where
        trans2_requests[ours.header.pid, ours.header.mid] = subcommand
        decoded = body.trans2
        if subcommand == Smb1Trans2Subcommand.TRANS2_FIND_FIRST2:
            assert decoded is not None, where
            assert decoded.name == theirs.first("smb.search_pattern"), where
            assert decoded.search_count == theirs.number("smb.search_count"), where
            assert decoded.information_level == theirs.number("smb.ff2_loi"), where
            assert decoded.search_attributes == theirs.number("smb.search.attribute"), where
            return "find_first2_request"
        if subcommand == Smb1Trans2Subcommand.TRANS2_QUERY_PATH_INFORMATION:
            assert decoded is not None, where
            assert decoded.information_level == theirs.number("smb.qpi_loi"), where
            assert decoded.name == (theirs.first("smb.file") or ""), where
            return "query_path_request"
        if subcommand == Smb1Trans2Subcommand.TRANS2_QUERY_FILE_INFORMATION:
            assert decoded is not None, where
            assert decoded.fid == theirs.number("smb.fid"), where
            assert decoded.information_level == theirs.number("smb.qpi_loi"), where
            return "query_file_request"
        if subcommand == Smb1Trans2Subcommand.TRANS2_SET_FILE_INFORMATION:
            assert decoded is not None, where
            assert decoded.fid == theirs.number("smb.fid"), where
            assert decoded.information_level == theirs.number("smb.spi_loi"), where
            if decoded.information_level == Smb1SetInformationLevel.FileDispositionInformation:
                assert decoded.delete_pending == (theirs.first("smb.disposition.delete_on_close") == "1"), where
                return "set_file_disposition_request"
            return "set_file_request"
        return "trans2_request"
    if code in (_TRANSACTION, _TRANSACTION2):
        if not wct:
            assert body is None, where
            return "error_or_interim_response"
        assert isinstance(body, Smb1TransactionResponse), where
        _check_transaction_counts(body, theirs, where)
        assert body.parameter_displacement == theirs.number("smb.pd"), where
        assert body.data_displacement == theirs.number("smb.data_disp"), where
        if code == _TRANSACTION:
            assert len(body.data) == body.data_count, where
            return "transaction_response"
        subcommand = trans2_requests.get((ours.header.pid, ours.header.mid))
        whole = body.parameter_count == body.total_parameter_count > 0  # not one part of several
        found = parse_find_response_parameters(subcommand if subcommand is not None else -1, body.parameters)
        if whole and found is not None:
            assert not isinstance(found, Anomaly), where
            assert found.search_count == theirs.number("smb.search_count"), where
            assert found.end_of_search == (theirs.first("smb.end_of_search") not in (None, "0")), where
            assert found.last_name_offset == theirs.number("smb.last_name_offset"), where
            if found.sid is not None:
                assert found.sid == theirs.number("smb.search_id"), where
            return "find_response"
        return "trans2_response"
    if code == Smb1Command.SMB_COM_TRANSACTION2_SECONDARY and not theirs.response:
        assert isinstance(body, Smb1TransactionSecondaryRequest), where
        assert (body.total_parameter_count, body.total_data_count) == (
            theirs.number("smb.tpc"),
            theirs.number("smb.tdc"),
        )
        assert (body.parameter_count, body.parameter_offset, body.parameter_displacement) == (
            theirs.number("smb.pc"),
            theirs.number("smb.po"),
            theirs.number("smb.pd"),
        ), where
        assert (body.data_count, body.data_offset, body.data_displacement) == (
            theirs.number("smb.dc"),
            theirs.number("smb.data_offset"),
            theirs.number("smb.data_disp"),
        ), where
        assert body.fid == theirs.number("smb.fid"), where
        return "trans2_secondary_request"
    return None


def _check_transaction_counts(
    body: Smb1TransactionRequest | Smb1TransactionResponse, theirs: TsharkCommand, where: str
) -> None:
    assert body.total_parameter_count == theirs.number("smb.tpc"), where
    assert body.total_data_count == theirs.number("smb.tdc"), where
    assert body.parameter_count == theirs.number("smb.pc"), where
    assert body.data_count == theirs.number("smb.dc"), where
    assert body.data_offset == theirs.number("smb.data_offset"), where
    if body.parameter_count:
        assert body.parameter_offset == theirs.number("smb.po"), where


def _check_data(data: bytes, complete: bool, length: int, theirs: TsharkCommand, where: str) -> None:
    """The data smbwatch kept is the start of what tshark shows (tshark reads it all)."""
    assert complete == (len(data) == length), where
    shown = _hex_bytes(theirs.first("smb.file_data"))
    if shown:  # tshark hands a named pipe's data to DCE/RPC instead
        assert shown.startswith(data), where
        assert len(shown) == length or not complete, where


@cache
def _compare_capture(path: Path) -> tuple[Counter[str], Counter[AnomalyKind], int]:
    ours = smbwatch_messages(path)
    theirs = tshark_commands(path)
    compared: Counter[str] = Counter()
    anomalies: Counter[AnomalyKind] = Counter()
    messages = 0
    pairings: dict[tuple[object, ...], dict[tuple[int, int], int]] = {}

    # Requests first: a TRANS2 response is read with the subcommand of its request.
    def requests_first(key: DirectionKey) -> tuple[bool, DirectionKey]:
        first = (ours.get(key) or [(None, None)])[0][0]
        return (first is None or first.header.is_response, key)

    for key in sorted(set(ours) | set(theirs), key=requests_first):
        mine = ours.get(key, [])
        for missed in TSHARK_MISSES.get(path.name, []):
            for index, (message, _) in enumerate(mine):
                if message.chained and (message.header.command, message.header.is_response) == missed:
                    del mine[index]
                    break
        tshark = theirs.get(key, [])
        assert [(m.header.command, m.header.is_response) for m, _ in mine] == [(t.code, t.response) for t in tshark], (
            f"{path.name} {key}: command sequences differ"
        )
        # A TRANS2 response is paired with its request by (PID, MID) on the same connection.
        trans2_requests = pairings.setdefault(tuple(sorted((key[:2], key[2:]))), {})
        for (message, after), command in zip(mine, tshark, strict=True):
            messages += 1
            for event in after:
                if isinstance(event, Anomaly):
                    anomalies[event.kind] += 1
            if (path.name, command.frame) in TSHARK_DIFFERS:
                compared["tshark_differs"] += 1
                continue
            what = _compare(message, command, trans2_requests)
            if what is not None:
                compared[what] += 1
    return compared, anomalies, messages


@pytest.mark.oracle
@pytest.mark.parametrize("path", _captures())
def test_smb1_file_and_pipe_fields_match_tshark(path: Path) -> None:
    _compared, anomalies, messages = _compare_capture(path)
    assert messages > 0
    # No real message is malformed to smbwatch: not the error responses, not the cut READ/WRITE ones.
    assert anomalies[AnomalyKind.SMB1_MALFORMED] == 0, anomalies


# What the captures must have made the comparison check (so a silently skipped command fails).
EXPECTED_COMPARISONS = {
    "smb1_named_pipe.pcap": {"nt_create_request": 1, "nt_create_response": 1, "pipe_request": 2},
    "smb1_printing.pcap": {"write_request": 1, "write_response": 1, "close_request": 1},
    "smb1_nt1.pcap": {"find_first2_request": 1, "find_response": 1},
    "smb1_browsing_139.pcap": {"transaction_request": 3, "transaction_response": 3},
}
PUBLIC_EXPECTED = {
    "filestore-filecontainer-smb/filecontainer-smb.pcap": {
        "read_request": 200,
        "read_response": 200,
        "write_request": 200,
        "pipe_request": 1000,
        "transaction_response": 1000,
        "set_file_disposition_request": 1,
        "query_path_request": 50,
        "query_file_request": 100,
        "find_first2_request": 8,
        "find_response": 8,
        "nt_create_response": 200,
        "close_request": 200,
        "error_response": 100,
    },
    "smb-filename/input.pcap": {"trans2_secondary_request": 16, "read_response": 10, "write_request": 100},
}


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("path", "expected"),
    [pytest.param(RECORDED / name, expected, id=name) for name, expected in EXPECTED_COMPARISONS.items()]
    + [
        pytest.param(
            PUBLIC / name,
            expected,
            id=name.split("/")[0],
            marks=pytest.mark.skipif(not (PUBLIC / name).exists(), reason="public captures not present"),
        )
        for name, expected in PUBLIC_EXPECTED.items()
    ],
)
def test_comparison_covers_the_commands(path: Path, expected: dict[str, int]) -> None:
    compared, _, _ = _compare_capture(path)
    for what, least in expected.items():
        assert compared[what] >= least, (what, compared)


FILECONTAINER = PUBLIC / "filestore-filecontainer-smb/filecontainer-smb.pcap"


@pytest.mark.skipif(not FILECONTAINER.exists(), reason="public captures not present")
def test_small_reads_are_kept_whole() -> None:
    """filecontainer-smb reads files in 4 KiB READ_ANDX answers: below SMALL_IO_KEPT, so kept whole
    (a named pipe's DCE/RPC fragments come this size; which FID is a pipe the stream cannot know)."""
    messages = smbwatch_messages(FILECONTAINER)
    reads = [
        m.body
        for per_direction in messages.values()
        for m, _ in per_direction
        if isinstance(m.body, Smb1ReadAndxResponse) and m.body.data_length > BULK_MESSAGE_PREFIX
    ]
    assert len(reads) >= 10
    for read in reads:
        assert read.data_length <= SMALL_IO_KEPT
        assert read.data_complete
        assert len(read.data) == read.data_length


def _public(name: str) -> Path:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip("public captures not present")
    return path


def test_where_tshark_differs_smbwatch_reads_the_spec() -> None:
    """The frames of TSHARK_DIFFERS and TSHARK_MISSES, with what smbwatch reads there."""
    padding = smbwatch_messages(_public("filestore-filecontainer-smb1-padding/smb_bug_padding.pcap"))
    patterns = [
        m.body.trans2.name
        for per_direction in padding.values()
        for m, _ in per_direction
        if isinstance(m.body, Smb1TransactionRequest) and m.body.trans2 is not None and m.body.trans2.subcommand == 1
    ]
    assert patterns and set(patterns) == {"\\*"}
    eicar = smbwatch_messages(_public("smb-eicar-padding/smb1_eicar_andx_write_padding2.pcap"))
    writes = [m.body for v in eicar.values() for m, _ in v if isinstance(m.body, Smb1WriteAndxRequest)]
    assert [(w.data[:3], w.data[-4:], w.data_complete) for w in writes] == [(b"X5O", b"H+H*", True)]
    andx = smbwatch_messages(_public("smb-eicar-andx/smbandx.pcap"))
    closes = [m for v in andx.values() for m, _ in v if isinstance(m.body, Smb1CloseRequest)]
    assert len(closes) == 1 and closes[0].chained
    writes = [m.body for v in andx.values() for m, _ in v if isinstance(m.body, Smb1WriteAndxRequest)]
    assert [(w.data_length, w.data[:3], w.data[-4:]) for w in writes] == [(68, b"X5O", b"H+H*")]


# --- crafted messages: what no capture here holds -----------------------------------------


def crafted(command: int, words: bytes, data: bytes, flags: int = 0x18, flags2: int = 0xC807, status: int = 0) -> bytes:
    """CRAFTED: one SMB1 message (header as a Windows client sends it) with these words and bytes."""
    header = struct.pack(
        "<4sBIBHH8sHHHHH", b"\xffSMB", command, status, flags, flags2, 0, b"\0" * 8, 0, 1, 100, 2048, 7
    )
    return header + bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def body_of(message: bytes, frame_length: int | None = None) -> object:
    events = smb1.parse_message(message, frame_length)
    assert isinstance(events[0], Smb1Message), events
    assert not any(isinstance(event, Anomaly) for event in events), events
    return events[0].body


def anomaly_of(message: bytes) -> Anomaly:
    events = smb1.parse_message(message)
    assert isinstance(events[0], Smb1Message) and events[0].body is None, events
    found = [event for event in events if isinstance(event, Anomaly)]
    assert found, events
    return found[0]


def unicode_name(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def test_crafted_delete_rename_and_directories() -> None:
    """CRAFTED: DELETE, RENAME, NT_RENAME, CREATE_DIRECTORY, DELETE_DIRECTORY (no capture here has them).
    The data starts at offset 37 (odd), so after each 0x04 the Unicode name is aligned."""
    delete = crafted(0x06, struct.pack("<H", 0x0006), b"\x04" + unicode_name("\\dir\\a.txt"))
    assert body_of(delete) == Smb1DeleteRequest(0x0006, "\\dir\\a.txt")
    # RENAME: BufferFormat2 lands on an even offset, so one pad byte precedes NewFileName.
    old = b"\x04" + unicode_name("\\a.txt")
    rename = crafted(0x07, struct.pack("<H", 0x0016), old + b"\x04\x00" + unicode_name("\\b.txt"))
    assert body_of(rename) == Smb1RenameRequest(0x0016, "\\a.txt", "\\b.txt")
    nt_words = struct.pack("<HHI", 0x0016, Smb1NtRenameLevel.SMB_NT_RENAME_RENAME_FILE, 0)
    # With WordCount 4 the data starts at offset 43 (odd) too: the pad byte again precedes NewFileName.
    nt_rename = crafted(0xA5, nt_words, b"\x04" + unicode_name("\\a.txt") + b"\x04\x00" + unicode_name("\\c.txt"))
    assert body_of(nt_rename) == Smb1RenameRequest(0x0016, "\\a.txt", "\\c.txt", 0x0104)
    oem_rename = crafted(0x07, struct.pack("<H", 0), b"\x04OLD.TXT\x00\x04NEW.TXT\x00", flags2=0x4001)
    assert body_of(oem_rename) == Smb1RenameRequest(0, "OLD.TXT", "NEW.TXT")
    for command in (0x00, 0x01):
        directory = crafted(command, b"", b"\x04" + unicode_name("\\newdir"))  # data at 35: name at 36
        assert body_of(directory) == Smb1DirectoryRequest("\\newdir")
    assert anomaly_of(crafted(0x06, struct.pack("<H", 0), b"\x02x\x00")).detail.endswith("not 0x04")
    assert anomaly_of(crafted(0x07, struct.pack("<H", 0), b"\x04a\x00")).detail == "RENAME NewFileName missing"
    assert anomaly_of(crafted(0x00, b"\x00\x00", b"\x04a\x00")).kind == AnomalyKind.SMB1_MALFORMED


def test_crafted_close_and_error_responses() -> None:
    """CRAFTED: error responses (status set, WordCount 0) of every parsed command are not malformed."""
    assert body_of(crafted(0x04, struct.pack("<HI", 0x4001, 0xFFFFFFFF), b"")) == Smb1CloseRequest(0x4001, 0xFFFFFFFF)
    for command in (0xA2, 0x2D, 0x2E, 0x2F, 0x25, 0x32):
        events = smb1.parse_message(crafted(command, b"", b"", flags=0x98, status=0xC0000034))
        assert events == [smb1.parse_message(crafted(command, b"", b"", flags=0x98, status=0xC0000034))[0]]
        assert isinstance(events[0], Smb1Message) and events[0].body is None
    assert anomaly_of(crafted(0x04, b"\x01\x00", b"")).detail == "CLOSE WordCount 1, not 3"


def test_crafted_nt_create_delete_on_close_and_open_andx() -> None:
    """CRAFTED: an NT_CREATE_ANDX with FILE_DELETE_ON_CLOSE (ransomware and installers delete this way),
    an OPEN_ANDX request and response (no capture here uses OPEN_ANDX)."""
    options = Smb1CreateOptions.FILE_DELETE_ON_CLOSE | Smb1CreateOptions.FILE_NON_DIRECTORY_FILE
    words = struct.pack(
        "<BBHxHIIIQIIIIIB",
        0xFF,
        0,
        0,
        12,
        0x16,
        0,
        0x00110080,
        0,
        0x80,
        7,
        Smb1CreateDisposition.FILE_OPEN,
        options,
        2,
        0,
    )
    body = body_of(crafted(0xA2, words, b"\x00" + unicode_name("\\x.tmp")))
    assert isinstance(body, Smb1OpenRequest) and body.name == "\\x.tmp" and body.delete_on_close
    assert (body.share_access, body.create_disposition, body.ext_file_attributes) == (7, 1, 0x80)
    open_words = struct.pack("<BBHHHHHIHII4x", 0xFF, 0, 0, 0, 0x0042, 0x0016, 0x20, 0, 0x0011, 0, 0)
    body = body_of(crafted(0x2D, open_words, b"\x00" + unicode_name("\\y.txt")))
    assert isinstance(body, Smb1OpenRequest) and (body.name, body.open_mode, body.access_mode) == (
        "\\y.txt",
        0x11,
        0x42,
    )
    response_words = struct.pack("<BBHHHIIHHHH6x", 0xFF, 0, 0, 0x4003, 0x20, 0, 1234, 2, 0, 0, 0x8002)
    body = body_of(crafted(0x2D, response_words, b"", flags=0x98))
    assert body == Smb1OpenAndxResponse(0x4003, 0x20, 0, 1234, 2, 0, 0, 0x8002) and body.action == 2


def test_crafted_extended_nt_create_response_with_a_file_id() -> None:
    """CRAFTED from the Windows layout seen in filecontainer-smb: WordCount 42, 100 bytes of words,
    here with a non-zero FileId (whose low bytes, read as a ByteCount, would run past the message)."""
    common = struct.pack(
        "<BBHBHIQQQQIQQHHB", 0xFF, 0, 135, 0, 0x4000, Smb1CreateAction.FILE_CREATED, 1, 2, 3, 4, 0x20, 4096, 10, 0, 0, 0
    )
    extension = struct.pack("<16sQII", b"\x11" * 16, 0x0000_1234_5678_9ABC, 0x001F01FF, 0)
    message = crafted(0xA2, common + extension, b"", flags=0x98)
    message = message[:32] + bytes([42]) + message[33:]  # WordCount 42, as Windows says
    body = body_of(message)
    assert isinstance(body, Smb1NtCreateResponse) and body.extended
    assert (body.fid, body.create_action, body.end_of_file, body.file_id) == (0x4000, 2, 10, 0x123456789ABC)


def trans2(subcommand: int, parameters: bytes, data: bytes = b"") -> bytes:
    """CRAFTED: a TRANSACTION2 request with one Setup word; parameters at offset 68, data after them."""
    parameter_offset = 32 + 1 + 30 + 2 + 3  # header, WordCount, 15 words, ByteCount, 3 pad bytes: 68
    data_offset = parameter_offset + len(parameters) + (len(parameters) % 2)
    fixed = struct.pack(
        "<HHHHBxHIxxHHHHBx",
        len(parameters), len(data), 2, 1024, 0, 0, 0,
        len(parameters), parameter_offset, len(data), data_offset if data else 0, 1,
    )  # fmt: skip
    words = fixed + struct.pack("<H", subcommand)
    payload = b"\0\0\0" + parameters + b"\0" * (len(parameters) % 2) + data
    return crafted(0x32, words, payload)


def test_crafted_trans2_renames_and_deletes() -> None:
    """CRAFTED: SET_FILE_INFORMATION and SET_PATH_INFORMATION with the levels that rename and delete
    (filecontainer-smb has the FileDispositionInformation one for real; these it has not)."""
    target = "\\new name.txt".encode("utf-16-le")
    rename = struct.pack("<B3xII", 1, 0, len(target)) + target
    body = body_of(
        trans2(0x0008, struct.pack("<HHH", 0x4005, Smb1SetInformationLevel.FileRenameInformation, 0), rename)
    )
    assert isinstance(body, Smb1TransactionRequest) and body.trans2 is not None
    assert (body.trans2.fid, body.trans2.rename_target, body.trans2.replace_if_exists) == (
        0x4005,
        "\\new name.txt",
        True,
    )
    level = Smb1SetInformationLevel.SMB_SET_FILE_DISPOSITION_INFO
    path = struct.pack("<H4x", level) + unicode_name("\\dir\\gone.txt")
    body = body_of(trans2(0x0006, path, b"\x01"))
    assert isinstance(body, Smb1TransactionRequest) and body.trans2 is not None
    assert (body.trans2.name, body.trans2.delete_pending, body.trans2.fid) == ("\\dir\\gone.txt", True, None)
    ex = body_of(
        trans2(0x0008, struct.pack("<HHH", 1, Smb1SetInformationLevel.FileDispositionInformationEx, 0), b"\1\0\0\0")
    )
    assert isinstance(ex, Smb1TransactionRequest) and ex.trans2 is not None and ex.trans2.delete_pending
    open2 = struct.pack("<HHxxHIHI10x", 0, 0x42, 0, 0, 0x12, 0) + unicode_name("\\o.txt")
    body = body_of(trans2(0x0000, open2))
    assert isinstance(body, Smb1TransactionRequest) and body.trans2 is not None
    assert (body.trans2.name, body.trans2.open_mode) == ("\\o.txt", 0x12)
    short = anomaly_of(
        trans2(0x0008, struct.pack("<HHH", 1, Smb1SetInformationLevel.FileRenameInformation, 0), b"\1\0")
    )
    assert short.kind == AnomalyKind.SMB1_MALFORMED and "FileRenameInformation" in short.detail
    assert "no DeletePending" in anomaly_of(trans2(0x0006, path)).detail
    assert "parameters of 2 bytes" in anomaly_of(trans2(0x0001, b"\0\0")).detail


def test_crafted_pipe_subcommands_without_fid() -> None:
    """CRAFTED: TRANS_WAIT_NMPIPE names the pipe and puts a priority, not a FID, in Setup[1]."""
    fixed = struct.pack("<HHHHBxHIxxHHHHBx", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)
    words = fixed + struct.pack("<HH", Smb1NamedPipeFunction.TRANS_WAIT_NMPIPE, 5)
    body = body_of(crafted(0x25, words, b"\x00" + unicode_name("\\PIPE\\spoolss")))
    assert isinstance(body, Smb1TransactionRequest)
    assert (body.pipe_function, body.fid, body.name) == (0x53, None, "\\PIPE\\spoolss")


# --- malformed and cut messages ------------------------------------------------------------


def read_response(data_length: int, data_offset: int, payload: bytes, length_high: int = 0) -> bytes:
    """CRAFTED: a READ_ANDX response whose words say `data_length` bytes at `data_offset`."""
    words = struct.pack("<BBHHHxxHHH8x", 0xFF, 0, 0, 0xFFFF, 0, data_length & 0xFFFF, data_offset, length_high)
    return crafted(0x2E, words, payload, flags=0x98)


def test_cut_bulk_message_is_incomplete_not_malformed() -> None:
    """A 4 KiB READ_ANDX answer of which smbwatch kept 256 bytes: incomplete, not malformed.
    The whole message with a DataLength past its end is malformed."""
    whole = read_response(4096, 60, b"\x00" + bytes(range(256)) * 16)
    frame = len(whole)
    assert body_of(whole, frame) == Smb1ReadAndxResponse(0xFFFF, 4096, 60, whole[60:], True)
    kept = dissect_session_message(whole[:BULK_MESSAGE_PREFIX], frame)
    assert [type(event) for event in kept] == [Smb1Message]
    body = kept[0].body
    assert isinstance(body, Smb1ReadAndxResponse) and not body.data_complete
    assert body.data == whole[60:BULK_MESSAGE_PREFIX] and body.data_length == 4096
    lying = read_response(4096, 60, b"\x00" + b"x" * 100)
    assert "past the message" in anomaly_of(lying).detail
    inside = read_response(10, 40, b"\x00" + b"x" * 10)
    assert "inside the parameter words" in anomaly_of(inside).detail
    # CAP_LARGE_READX: DataLengthHigh counts 64 KiB units; the 16-bit ByteCount cannot say 70,000.
    large = read_response(70000, 60, b"\x00" + b"y" * 195, length_high=1)
    body = body_of(large[:BULK_MESSAGE_PREFIX], 70000 + 60)
    assert isinstance(body, Smb1ReadAndxResponse) and body.data_length == 70000 and not body.data_complete
    cut_words = dissect_session_message(whole[:50], frame)
    assert isinstance(cut_words[0], Smb1Message) and cut_words[0].body is None and len(cut_words) == 1


def test_malformed_bodies_are_anomalies() -> None:
    cases = {
        crafted(0x2E, b"\x00" * 18, b""): "READ_ANDX WordCount 9, not 10 or 12",
        crafted(0x2F, b"\x00" * 20, b""): "WRITE_ANDX WordCount 10, not 12 or 14",
        crafted(0x2F, b"\x00" * 10, b"", flags=0x98): "WRITE_ANDX response WordCount 5, not 6",
        crafted(0xA2, b"\x00" * 40, b"", flags=0x98): "NT_CREATE_ANDX response WordCount 20",
        crafted(0x2D, b"\x00" * 20, b"", flags=0x98): "OPEN_ANDX response WordCount 10",
        crafted(0x25, b"\x00" * 10, b"", flags=0x98): "transaction response WordCount 5",
        crafted(0x26, b"\x00" * 10, b""): "secondary transaction WordCount 5, not 8",
    }
    for message, detail in cases.items():
        found = anomaly_of(message)
        assert (found.kind, found.detail) == (AnomalyKind.SMB1_MALFORMED, detail)
    # A response whose DataOffset points past the message.
    response = crafted(0x25, struct.pack("<HHxxHHHHHHBx", 0, 10, 0, 0, 0, 10, 200, 0, 0), b"", flags=0x98)
    assert "outside the message" in anomaly_of(response).detail
    # A write whose data should be there (the message is whole) but is not.
    write = crafted(0x2F, struct.pack("<BBHHIIHHHHH", 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 100, 64), b"\x00" * 5)
    assert "past the message" in anomaly_of(write).detail


# --- fuzz: real messages truncated and flipped ---------------------------------------------


def _real_messages() -> list[bytes]:
    """SMB1 messages of the recorded captures (and a public one when present), as whole bytes."""
    import subprocess

    from tests.smb1_capture_messages import shutil

    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    paths = [RECORDED / "smb1_named_pipe.pcap", RECORDED / "smb1_printing.pcap", RECORDED / "smb1_nt1.pcap"]
    public = PUBLIC / "smb-eicar-andx/smbandx.pcap"
    if public.exists():
        paths.append(public)
    found = []
    for path in paths:
        output = subprocess.run(
            [tshark, "-r", str(path), "-Y", "smb", "-T", "fields", "-e", "tcp.payload"],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        for line in output.split():
            payload = bytes.fromhex(line.split(",")[0])
            start = payload.find(b"\xffSMB")
            if start >= 0:
                found.append(payload[start:])
    assert len(found) > 30
    return found


def test_fuzz_truncated_and_flipped_messages_never_raise() -> None:
    messages = _real_messages()
    generator = random.Random(11)
    outcomes: Counter[str] = Counter()
    for message in messages:
        for cut in range(0, len(message), max(1, len(message) // 40)):
            for event in smb1.parse_message(message[:cut]) + smb1.parse_message(message[:cut], len(message)):
                outcomes[type(event).__name__] += 1
        for _ in range(60):
            mutated = bytearray(message)
            for _ in range(generator.randint(1, 4)):
                position = generator.randrange(32, len(mutated)) if len(mutated) > 32 else 0
                mutated[position] = generator.randrange(256)
            for event in smb1.parse_message(bytes(mutated)):
                outcomes[type(event).__name__] += 1
    assert outcomes["Smb1Message"] > 0 and outcomes["Anomaly"] > 0, outcomes


def test_keys_are_directions() -> None:
    """The helper keys messages by direction: a request's key is its response's, reversed."""
    messages = smbwatch_messages(RECORDED / "smb1_named_pipe.pcap")
    keys: list[DirectionKey] = list(messages)
    assert len(keys) == 2 and keys[0] == (keys[1][2], keys[1][3], keys[1][0], keys[1][1])
