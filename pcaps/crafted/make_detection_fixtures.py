#!/usr/bin/env python3
"""Build the CRAFTED detection fixtures in pcaps/crafted/ (scapy; deterministic).

    python3 pcaps/crafted/make_detection_fixtures.py

Real software here cannot produce what these show (Samba is not vulnerable to
MS17-010), so each file carries only the on-the-wire fields a detection keys
on, around real bytes where real bytes exist. Nothing here is exploit code or
payload: no overflow, no shellcode, no implant; data fields are absent.

  ms17_010_unpatched.pcap
      A real SMB1 NEGOTIATE exchange (first two messages of
      recorded/smb1_nt1.pcap), then a TRANSACTION (0x25) request with Setup
      [0x0023 PeekNamedPipe, FID 0] to "\\PIPE\\" and the answer an unpatched
      server gives, STATUS_INSUFF_SERVER_RESOURCES (0xC0000205). Header fields
      and setup words only; parameter and data counts are zero.

  eternalblue_patterns.pcap
      Three EternalBlue patterns, each on its own connection from 192.0.2.66:
      (1) after the real NEGOTIATE, an ECHO with Flags2 0xC007 and the data
      "JlJmIhClBsr\0" the public tools send; (2) after the real NEGOTIATE, an
      NT_TRANSACT (Function 0) declaring TotalDataCount 0x10FE8 with no data,
      its interim answer, then three TRANSACTION2_SECONDARY requests with the
      same TID/UID/PID/MID, declaring counts but carrying no data; (3) four
      connections that each send only a NetBIOS header of length 0x00FFF7 and
      0xFE 'SMB' plus 60 zero bytes, then close. No FEA list, no overflow,
      no shellcode: the fields the detections key on, nothing else.

  doublepulsar_patterns.pcap
      After the real NEGOTIATE: a TRANS2 (0x32) request with subcommand
      SESSION_SETUP (0x000E), PID 0xFEFF, MID 65 and no data, answered
      STATUS_NOT_IMPLEMENTED with MID 81 (how the implant says it is there);
      a second one, MID 66, carrying 4,096 zero bytes (the size of an upload
      piece; zeros, not a payload), answered with MID 82 (how it says the
      payload ran). On a second connection the server sends an ECHO response
      with a PID and MID the client never used.

  alerts_open_connections.pcap
      For the live-latency test: the same header-only patterns, each on a
      connection that stays open long after its evidence (no FIN until the
      capture's last second, 12 s after the start), one pattern a second: an
      ECHO marker (t+0.5 s), an NT_TRANSACT continued by TRANSACTION2_SECONDARY
      (t+1.5 s), an MS17-010 probe answered STATUS_INSUFF_SERVER_RESOURCES
      (t+2.5 s), a DoublePulsar upload piece (4,096 zero bytes) that is never
      answered (t+3.5 s: "no answer" is due after the answer timeout), and
      three grooming connections (t+4.5 s). A sensor replaying it at real speed
      must raise each alert while the connections are still open.

  rpc_coercion_efsrpc.pcap
      smbd rejects the EFSRPC bind, so the PetitPotam calls cannot be recorded
      here. The real SMB 3.1.1 login of recorded/smb3_1_1.pcap (NTLMSSP, IPC$),
      then: CREATE lsarpc, WRITE of a bind to EFSRPC c681d488-... v1.0 (NDR),
      READ of a bind_ack accepting it, EfsRpcOpenFileRaw (opnum 0) in an
      FSCTL_PIPE_TRANSCEIVE IOCTL whose stub is the path \\\\192.0.2.99\\share\\x
      and Flags 0, answered ERROR_ACCESS_DENIED with a zero handle, CLOSE; 620 s
      later (an ECHO halfway) CREATE efsrpc, a bind to df1941c5-... v1.0 and
      EfsRpcEncryptFileSrv (opnum 4, the path only) answered with the fault
      nca_s_op_rng_error. Identifiers only: nothing a server would act on.

  rpc_big_endian.pcap, rpc_big_endian_smb1.pcap
      No Windows or Samba client sends big-endian DCE/RPC; CVE-2022-26809
      exploits do. After a real login (smb3_1_1.pcap; smb1_nt1.pcap for SMB1),
      a little-endian bind to SRVSVC, then NetrServerGetInfo (opnum 21, level
      101) with drep 00000000 and every multi-byte field big-endian, then the
      same call little-endian. Over SMB2 in FSCTL_PIPE_TRANSCEIVE; over SMB1 in
      TRANSACTION TransactNmPipe, rpcclient's recorded messages of
      smb1_named_pipe.pcap moved into the unsigned smb1_nt1 session.
"""

from __future__ import annotations

import struct
from pathlib import Path
from uuid import UUID

from scapy.all import IP, TCP, Ether, Raw, rdpcap, wrpcap  # type: ignore

HERE = Path(__file__).resolve().parent
RECORDED = HERE.parent / "recorded" / "smb1_nt1.pcap"
CLIENT, SERVER = ("192.0.2.66", 49200), ("192.0.2.20", 445)
CLIENT_MAC, SERVER_MAC = "02:00:00:5b:00:66", "02:00:00:5b:00:20"
START = 1700000500.0
STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205


def netbios(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


def smb1_header(
    command: int,
    *,
    reply: bool,
    status: int = 0,
    tid: int = 0x0800,
    uid: int = 0x0800,
    pid: int = 0xFEFF,
    mid: int = 64,
    flags2: int = 0x4001,  # NT status codes, long names; OEM strings
) -> bytes:
    flags = 0x98 if reply else 0x18
    return struct.pack("<4sBIBHH8s2sHHHH", b"\xffSMB", command, status, flags, flags2, 0, bytes(8), bytes(2),
                       tid, pid, uid, mid)  # fmt: skip


def peek_named_pipe_request() -> bytes:
    """[MS-CIFS] 2.2.4.33.1 with SetupCount 2: TRANS_PEEK_NMPIPE (0x0023) on FID 0, Name "\\PIPE\\"."""
    name = b"\\PIPE\\\x00"
    words = struct.pack("<HHHHBxHIxxHHHHBx", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0, 74, 0, 74, 2) + struct.pack(
        "<HH", 0x23, 0
    )
    return smb1_header(0x25, reply=False) + bytes([len(words) // 2]) + words + struct.pack("<H", len(name)) + name


def error_response(status: int, command: int = 0x25, **header: int) -> bytes:
    return smb1_header(command, reply=True, status=status, **header) + b"\x00\x00\x00"


def echo_request(data: bytes, flags2: int) -> bytes:
    """[MS-CIFS] 2.2.4.39.1: EchoCount 1, then the data to echo."""
    return smb1_header(0x2B, reply=False, flags2=flags2, mid=65) + b"\x01\x01\x00" + struct.pack("<H", len(data)) + data


def nt_transact_request(total_data_count: int, mid: int) -> bytes:
    """[MS-CIFS] 2.2.4.62.1 with SetupCount 0 and Function 0; declared counts only, no data."""
    words = struct.pack("<B2xIIIIIIIIBH", 1, 0, total_data_count, 0, 0, 0, 0, 0, 0, 0, 0)
    return smb1_header(0xA0, reply=False, mid=mid) + bytes([len(words) // 2]) + words + b"\x00\x00"


def trans2_secondary_request(displacement: int, mid: int) -> bytes:
    """[MS-CIFS] 2.2.4.47.1 (WordCount 9): counts and displacements, no data."""
    words = struct.pack("<HHHHHHHHH", 0, 0x10FE8 & 0xFFFF, 0, 0, 0, 0, 0, displacement & 0xFFFF, 0xFFFF)
    return smb1_header(0x33, reply=False, mid=mid) + bytes([len(words) // 2]) + words + b"\x00\x00"


def trans2_session_setup_request(mid: int, data: bytes) -> bytes:
    """[MS-CIFS] 2.2.4.46.1 with SetupCount 1: subcommand TRANS2_SESSION_SETUP (0x000E)."""
    header_size, fixed_words = 32, 15
    data_offset = header_size + 1 + 2 * (fixed_words + 1) + 2 + 1  # +1: pad to a 4-byte boundary
    words = struct.pack(
        "<HHHHBxHIxxHHHHBx", 0, len(data), 0, 0, 0, 0, 0, 0, 0, len(data), data_offset if data else 0, 1
    ) + struct.pack("<H", 0x000E)
    body = b"\x00" + data
    parameters = bytes([len(words) // 2]) + words + struct.pack("<H", len(body)) + body
    return smb1_header(0x32, reply=False, mid=mid) + parameters


def real_negotiate() -> tuple[bytes, bytes]:
    """The first client and server payloads of the recorded SMB1 session (NEGOTIATE request and response)."""
    client = server = b""
    for packet in rdpcap(str(RECORDED)):
        if TCP in packet and packet[TCP].payload and bytes(packet[TCP].payload):
            payload = bytes(packet[TCP].payload)
            if packet[TCP].dport == 445 and not client:
                client = payload
            elif packet[TCP].sport == 445 and client and not server:
                server = payload
    return client, server


def session(
    exchanges: list[tuple[str, bytes] | float],
    client_port: int = CLIENT[1],
    start: float = START,
    close_at: float | None = None,
) -> list:
    """One connection: handshake, the exchanges 0.1 ms apart (a number instead of an exchange: that
    many seconds of silence), then FIN (at `close_at` if given)."""
    frames = []
    seq = {"c": 1000, "s": 5000}
    clock = [start]
    client = (CLIENT[0], client_port)

    def emit(side: str, flags: str, payload: bytes = b"") -> None:
        src, dst = (client, SERVER) if side == "c" else (SERVER, client)
        macs = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        other = "s" if side == "c" else "c"
        tcp = TCP(
            sport=src[1], dport=dst[1], flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0, window=65535
        )
        packet = Ether(src=macs[0], dst=macs[1]) / IP(src=src[0], dst=dst[0]) / tcp
        if payload:
            packet = packet / Raw(payload)
        packet.time = clock[0]
        clock[0] += 0.0001
        frames.append(packet)
        seq[side] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    emit("c", "S")
    emit("s", "SA")
    emit("c", "A")
    for exchange in exchanges:
        if isinstance(exchange, float):
            clock[0] += exchange
            continue
        side, payload = exchange
        emit(side, "PA", payload)
    if close_at is not None:
        clock[0] = max(clock[0], close_at)
    emit("c", "FA")
    emit("s", "FA")
    emit("c", "A")
    return frames


# ---- DCE/RPC over SMB2 named pipes: rpc_coercion_efsrpc.pcap, rpc_big_endian.pcap ----------------
# The login is real: the NEGOTIATE, both SESSION_SETUP exchanges (NTLMSSP as SMBWLAB\alice) and the
# TREE_CONNECT to IPC$ of recorded/smb3_1_1.pcap (smbclient 4.17, a session without signing; only
# the final SESSION_SETUP response and the TREE_CONNECT are signed, which dialect 3.1.1 always does).
# Everything after it is built here field by field, with the values smbclient/rpcclient and
# smbd 4.17 use in the recordings (flags, credits, access masks, max_xmit_frag 4280), unsigned as
# the rest of that session is.

SMB2_LOGIN = HERE.parent / "recorded" / "smb3_1_1.pcap"
SMB2_LOGIN_MESSAGES = 8  # NEGOTIATE, SESSION_SETUP x2, TREE_CONNECT: requests and responses
SRVSVC_RECORDING = HERE.parent / "recorded" / "rpc_recon.pcap"  # its NetrServerGetInfo response stub

# [MS-SMB2] 2.2.1.2
SMB2_TREE_DISCONNECT, SMB2_CREATE, SMB2_CLOSE = 0x0004, 0x0005, 0x0006
SMB2_READ, SMB2_WRITE, SMB2_IOCTL, SMB2_ECHO, SMB2_LOGOFF = 0x0008, 0x0009, 0x000B, 0x000D, 0x0002
SMB2_FLAGS_SERVER_TO_REDIR = 0x00000001
SMB2_FLAGS_PRIORITY_1 = 0x00000010  # smbclient 4.17 at 3.1.1 sends priority 1, smbd echoes it
FSCTL_PIPE_TRANSCEIVE = 0x0011C017  # [MS-FSCC] 2.3.49
SMB2_0_IOCTL_IS_FSCTL = 0x00000001  # [MS-SMB2] 2.2.31
PIPE_ACCESS = 0x0002019F  # rpcclient's: read/write/append data, EAs, attributes, READ_CONTROL
FILE_SHARE_READ_WRITE = 0x00000003
FILE_OPEN, FILE_OPENED = 1, 1  # [MS-SMB2] 2.2.13 CreateDisposition, 2.2.14 CreateAction
FILE_ATTRIBUTE_NORMAL = 0x00000080
MAX_XMIT_FRAG = 4280  # Samba's max_xmit_frag / max_recv_frag, and rpcclient's MaxOutputResponse

# [C706] 12.6.3.1 PDU types, 12.6.3.1 pfc_flags, 14.2 data representation
RPC_REQUEST, RPC_RESPONSE, RPC_FAULT, RPC_BIND, RPC_BIND_ACK = 0, 2, 3, 11, 12
PFC_FIRST_FRAG_LAST_FRAG = 0x03
DREP_LITTLE_ENDIAN = b"\x10\x00\x00\x00"  # integers little-endian, ASCII, IEEE floats
DREP_BIG_ENDIAN = b"\x00\x00\x00\x00"  # integers big-endian (what CVE-2022-26809 exploits send)
NDR_TRANSFER_SYNTAX = ("8a885d04-1ceb-11c9-9fe8-08002b104860", 2)  # [C706] appendix I
EFSRPC_LSARPC = "c681d488-d850-11d0-8c52-00c04fd90f7e"  # [MS-EFSR] 1.9: EFSRPC over \PIPE\lsarpc
EFSRPC = "df1941c5-fe89-4e79-bf10-463657acf44d"  # [MS-EFSR] 1.9: EFSRPC over \PIPE\efsrpc
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"  # [MS-SRVS] 1.9
EFS_RPC_OPEN_FILE_RAW, EFS_RPC_ENCRYPT_FILE_SRV = 0, 4  # [MS-EFSR] 3.1.4.2.1, 3.1.4.2.2
NETR_SERVER_GET_INFO = 21  # [MS-SRVS] 3.1.4.17
ERROR_ACCESS_DENIED = 5
NCA_S_OP_RNG_ERROR = 0x1C010002  # [C706] appendix E: the operation number is out of range
COERCION_PATH = "\\\\192.0.2.99\\share\\x"  # the path the server would be made to authenticate to
SERVER_NAME = "\\\\192.0.2.20"

RPC_CLIENT_PORTS = {"rpc_coercion_efsrpc": 49601, "rpc_big_endian": 49602, "rpc_big_endian_smb1": 49603}


def real_smb2_login() -> tuple[list[tuple[str, bytes]], int, int]:
    """The first 8 SMB2 payloads of smb3_1_1.pcap as ("c"|"s", bytes), with the SessionId and the
    IPC$ TreeId the last of them (the TREE_CONNECT response) carries."""
    exchanges: list[tuple[str, bytes]] = []
    for packet in rdpcap(str(SMB2_LOGIN)):
        if TCP in packet and bytes(packet[TCP].payload) and len(exchanges) < SMB2_LOGIN_MESSAGES:
            exchanges.append(("c" if packet[TCP].dport == 445 else "s", bytes(packet[TCP].payload)))
    tree_connect_response = exchanges[-1][1]
    tree_id, session_id = struct.unpack_from("<IQ", tree_connect_response, 4 + 36)
    return exchanges, tree_id, session_id


def smb2_message(command: int, message_id: int, ids: tuple[int, int], body: bytes, *, reply: bool,
                 status: int = 0) -> bytes:  # fmt: skip
    """[MS-SMB2] 2.2.1.2 sync header (CreditCharge 1, one credit asked or granted, unsigned) + body,
    in its NetBIOS session message."""
    tree_id, session_id = ids
    flags = SMB2_FLAGS_PRIORITY_1 | (SMB2_FLAGS_SERVER_TO_REDIR if reply else 0)
    header = struct.pack("<4sHHIHHIIQIIQ16s", b"\xfeSMB", 64, 1, status, command, 1, flags, 0, message_id, 0,
                         tree_id, session_id, bytes(16))  # fmt: skip
    return netbios(header + body)


def file_id_bytes(file_id: tuple[int, int]) -> bytes:
    return struct.pack("<QQ", *file_id)  # [MS-SMB2] 2.2.14.1: Persistent, Volatile


def create_request(name: str) -> bytes:
    """[MS-SMB2] 2.2.13: open an existing pipe on IPC$ (the fields rpcclient sends)."""
    encoded = name.encode("utf-16-le")
    return struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, PIPE_ACCESS, 0, FILE_SHARE_READ_WRITE, FILE_OPEN, 0,
                       64 + 56, len(encoded), 0, 0) + encoded  # fmt: skip


def create_response(file_id: tuple[int, int]) -> bytes:
    """[MS-SMB2] 2.2.14: FILE_OPENED, smbd's fixed pipe times, FILE_ATTRIBUTE_NORMAL, the FileId."""
    pipe_time = 0x01D19DB1DED53E80  # what smbd 4.17 reports for every pipe (rpc_recon.pcap)
    return struct.pack("<HBBIQQQQQQII16sII", 89, 0, 0, FILE_OPENED, pipe_time, pipe_time, pipe_time, pipe_time,
                       0, 0, FILE_ATTRIBUTE_NORMAL, 0, file_id_bytes(file_id), 0, 0)  # fmt: skip


def write_request(file_id: tuple[int, int], data: bytes) -> bytes:
    """[MS-SMB2] 2.2.21: the data right after the 48 fixed bytes (DataOffset 0x70), offset 0."""
    return struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), 0, file_id_bytes(file_id), 0, 0, 0, 0, 0) + data


def write_response(count: int) -> bytes:
    return struct.pack("<HHIIHH", 17, 0, count, 0, 0, 0)  # [MS-SMB2] 2.2.22


def read_request(file_id: tuple[int, int]) -> bytes:
    """[MS-SMB2] 2.2.19: read up to one fragment; the one-byte Buffer is required and zero."""
    return struct.pack("<HBBIQ16sIIIHH", 49, 0x50, 0, MAX_XMIT_FRAG, 0, file_id_bytes(file_id), 0, 0, 0, 0, 0) + b"\0"


def read_response(data: bytes) -> bytes:
    return struct.pack("<HBBIII", 17, 64 + 16, 0, len(data), 0, 0) + data  # [MS-SMB2] 2.2.20


def transceive_request(file_id: tuple[int, int], data: bytes) -> bytes:
    """[MS-SMB2] 2.2.31: FSCTL_PIPE_TRANSCEIVE, input after the 56 fixed bytes, up to 4280 back."""
    offset = 64 + 56
    return struct.pack("<HHI16sIIIIIIII", 57, 0, FSCTL_PIPE_TRANSCEIVE, file_id_bytes(file_id), offset, len(data),
                       0, offset, 0, MAX_XMIT_FRAG, SMB2_0_IOCTL_IS_FSCTL, 0) + data  # fmt: skip


def transceive_response(file_id: tuple[int, int], data: bytes) -> bytes:
    """[MS-SMB2] 2.2.32: no input echoed, the output after the 48 fixed bytes."""
    offset = 64 + 48
    return struct.pack("<HHI16sIIIIII", 49, 0, FSCTL_PIPE_TRANSCEIVE, file_id_bytes(file_id), offset, 0, offset,
                       len(data), 0, 0) + data  # fmt: skip


def close_request(file_id: tuple[int, int]) -> bytes:
    return struct.pack("<HHI16s", 24, 0, 0, file_id_bytes(file_id))  # [MS-SMB2] 2.2.15


def close_response() -> bytes:
    return struct.pack("<HHI6QI", 60, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # [MS-SMB2] 2.2.16, no attributes asked


def empty_body() -> bytes:
    return struct.pack("<HH", 4, 0)  # [MS-SMB2] 2.2.11/12 TREE_DISCONNECT, 2.2.7/8 LOGOFF, 2.2.28/29 ECHO


def syntax_id(uuid: str, version: int, minor: int = 0) -> bytes:
    """[C706] 12.6.3.1 p_syntax_id_t: the UUID in little-endian field order, major and minor version."""
    return UUID(uuid).bytes_le + struct.pack("<HH", version, minor)


def rpc_pdu(ptype: int, call_id: int, body: bytes, drep: bytes = DREP_LITTLE_ENDIAN) -> bytes:
    """[C706] 12.6.3.1 common header (version 5.0, one fragment, no auth) + body; the byte order of
    frag_length, auth_length and call_id follows drep[0]."""
    order = "<" if drep[0] & 0x10 else ">"
    return (
        struct.pack("BBBB", 5, 0, ptype, PFC_FIRST_FRAG_LAST_FRAG)
        + drep
        + struct.pack(order + "HHI", 16 + len(body), 0, call_id)
        + body
    )


def rpc_bind(call_id: int, interface: str, version: int) -> bytes:
    """[C706] 12.6.4.3: one presentation context (id 0) for `interface`, transfer syntax NDR."""
    context = struct.pack("<HBB", 0, 1, 0) + syntax_id(interface, version) + syntax_id(*NDR_TRANSFER_SYNTAX)
    body = struct.pack("<HHIB3x", MAX_XMIT_FRAG, MAX_XMIT_FRAG, 0, 1) + context
    return rpc_pdu(RPC_BIND, call_id, body)


def rpc_bind_ack(call_id: int, assoc_group: int, secondary_address: str) -> bytes:
    """[C706] 12.6.4.4: the one context accepted (result 0, reason 0) with NDR; the secondary address
    is the endpoint the server names (smbd says \\pipe\\lsass for lsarpc)."""
    address = secondary_address.encode() + b"\0"
    body = struct.pack("<HHIH", MAX_XMIT_FRAG, MAX_XMIT_FRAG, assoc_group, len(address)) + address
    body += bytes(-(16 + len(body)) % 4)  # the results start 4-aligned in the PDU
    body += struct.pack("<B3xHH", 1, 0, 0) + syntax_id(*NDR_TRANSFER_SYNTAX)
    return rpc_pdu(RPC_BIND_ACK, call_id, body)


def rpc_request(call_id: int, opnum: int, stub: bytes, drep: bytes = DREP_LITTLE_ENDIAN) -> bytes:
    """[C706] 12.6.4.9: alloc_hint (the stub's length), context 0, the operation, the stub."""
    order = "<" if drep[0] & 0x10 else ">"
    return rpc_pdu(RPC_REQUEST, call_id, struct.pack(order + "IHH", len(stub), 0, opnum) + stub, drep)


def rpc_response(call_id: int, stub: bytes) -> bytes:
    """[C706] 12.6.4.10: alloc_hint, context 0, cancel_count 0, the stub."""
    return rpc_pdu(RPC_RESPONSE, call_id, struct.pack("<IHBx", len(stub), 0, 0) + stub)


def rpc_fault(call_id: int, status: int) -> bytes:
    """[C706] 12.6.4.7, as smbd 4.17 sends it (recorded/rpc_coercion_attempts.pcap): alloc_hint 24,
    context 0, the status, 4 reserved bytes, no stub."""
    return rpc_pdu(RPC_FAULT, call_id, struct.pack("<IHBxI4x", 24, 0, 0, status))


def ndr_string(text: str, order: str = "<", pad: bool = True) -> bytes:
    """[C706] 14.3.4.2 conformant varying string of UTF-16 characters with its NUL (maximum count,
    offset 0, actual count), padded to 4 when another field follows."""
    chars = text + "\0"
    encoded = chars.encode("utf-16-le" if order == "<" else "utf-16-be")
    padding = bytes(-len(encoded) % 4 if pad else 0)
    return struct.pack(order + "III", len(chars), 0, len(chars)) + encoded + padding


def efs_open_file_raw_stub() -> bytes:
    """[MS-EFSR] 3.1.4.2.1 EfsRpcOpenFileRaw in: FileName (a [ref, string] pointer: no referent id)
    and Flags 0. Identifiers only: the path names a share on a documentation address."""
    return ndr_string(COERCION_PATH) + struct.pack("<I", 0)


def efs_open_file_raw_refused() -> bytes:
    """Out: an all-zero EXIMPORT context handle (no file opened), then the return code."""
    return bytes(20) + struct.pack("<I", ERROR_ACCESS_DENIED)


def efs_encrypt_file_srv_stub() -> bytes:
    """[MS-EFSR] 3.1.4.2.2 EfsRpcEncryptFileSrv in: FileName only."""
    return ndr_string(COERCION_PATH, pad=False)


def netr_server_get_info_stub(order: str = "<") -> bytes:
    """[MS-SRVS] 3.1.4.17 NetrServerGetInfo in, as rpcclient's srvinfo sends it: ServerName (a unique
    pointer, referent 0x00020000) and Level 101, in the byte order `order`."""
    return struct.pack(order + "I", 0x00020000) + ndr_string(SERVER_NAME, order) + struct.pack(order + "I", 101)


def recorded_server_get_info_response() -> bytes:
    """smbd's NetrServerGetInfo (level 101) response stub from recorded/rpc_recon.pcap: the first
    IOCTL response whose DCE/RPC response stub starts with the level, 101 (the lab's SERVER_INFO_101)."""
    for packet in rdpcap(str(SRVSVC_RECORDING)):
        payload = bytes(packet[TCP].payload) if TCP in packet else b""
        if packet[TCP].sport != 445 or len(payload) < 4 + 64 + 48:
            continue
        command, flags = struct.unpack_from("<H2xI", payload, 4 + 12)
        if command != SMB2_IOCTL or not flags & SMB2_FLAGS_SERVER_TO_REDIR:
            continue
        offset, count = struct.unpack_from("<II", payload, 4 + 64 + 32)
        pdu = payload[4 + offset : 4 + offset + count]
        stub = pdu[24:]
        if len(pdu) > 24 and pdu[2] == RPC_RESPONSE and stub[:4] == struct.pack("<I", 101):
            return stub  # the level echoed first: the SERVER_INFO_101 answer
    raise SystemExit(f"no NetrServerGetInfo response in {SRVSVC_RECORDING}")


class PipeConversation:
    """SMB2 messages after the real login: message ids count on from the login's, one credit each."""

    def __init__(self, tree_id: int, session_id: int, first_message_id: int = 4) -> None:
        self.ids = (tree_id, session_id)
        self.message_id = first_message_id
        self.exchanges: list[tuple[str, bytes] | float] = []

    def call(self, command: int, request: bytes, response: bytes, status: int = 0, tree: bool = True) -> None:
        ids = self.ids if tree else (0, self.ids[1])
        self.exchanges.append(("c", smb2_message(command, self.message_id, ids, request, reply=False)))
        self.exchanges.append(("s", smb2_message(command, self.message_id, ids, response, reply=True, status=status)))
        self.message_id += 1

    def pause(self, seconds: float) -> None:
        self.exchanges.append(seconds)

    def open_pipe(self, name: str, file_id: tuple[int, int]) -> None:
        self.call(SMB2_CREATE, create_request(name), create_response(file_id))

    def write_and_read(self, file_id: tuple[int, int], request_pdu: bytes, answer_pdu: bytes) -> None:
        self.call(SMB2_WRITE, write_request(file_id, request_pdu), write_response(len(request_pdu)))
        self.call(SMB2_READ, read_request(file_id), read_response(answer_pdu))

    def transceive(self, file_id: tuple[int, int], request_pdu: bytes, answer_pdu: bytes) -> None:
        self.call(SMB2_IOCTL, transceive_request(file_id, request_pdu), transceive_response(file_id, answer_pdu))

    def close(self, file_id: tuple[int, int]) -> None:
        self.call(SMB2_CLOSE, close_request(file_id), close_response())

    def logoff(self) -> None:
        self.call(SMB2_TREE_DISCONNECT, empty_body(), empty_body())
        self.call(SMB2_LOGOFF, empty_body(), empty_body(), tree=False)


# Far enough apart that the two EFSRPC calls are two alerts, not one alert and a repeat: the activity
# rules alert once per interface and 600 s ([detect] activity_alert_period), and both UUIDs are EFSRPC.
# An SMB2 ECHO halfway keeps the connection from the 600 s idle timeout, as clients' keepalives do.
EFSRPC_PIPES_APART = 620.0


def rpc_coercion_efsrpc() -> list:
    login, tree_id, session_id = real_smb2_login()
    smb = PipeConversation(tree_id, session_id)
    lsarpc, efsrpc = (0x000000003C5A1E07, 0x000000009F2D4B61), (0x000000003C5A1E08, 0x00000000B7E0C915)
    smb.open_pipe("lsarpc", lsarpc)
    smb.write_and_read(lsarpc, rpc_bind(1, EFSRPC_LSARPC, 1), rpc_bind_ack(1, 0x00005D21, "\\pipe\\lsass"))
    smb.transceive(lsarpc, rpc_request(2, EFS_RPC_OPEN_FILE_RAW, efs_open_file_raw_stub()),
                   rpc_response(2, efs_open_file_raw_refused()))  # fmt: skip
    smb.close(lsarpc)
    smb.pause(EFSRPC_PIPES_APART / 2)
    smb.call(SMB2_ECHO, empty_body(), empty_body(), tree=False)
    smb.pause(EFSRPC_PIPES_APART / 2)
    smb.open_pipe("efsrpc", efsrpc)
    smb.write_and_read(efsrpc, rpc_bind(1, EFSRPC, 1), rpc_bind_ack(1, 0x00005D22, "\\pipe\\efsrpc"))
    smb.transceive(efsrpc, rpc_request(2, EFS_RPC_ENCRYPT_FILE_SRV, efs_encrypt_file_srv_stub()),
                   rpc_fault(2, NCA_S_OP_RNG_ERROR))  # fmt: skip
    smb.close(efsrpc)
    smb.logoff()
    return session([*login, *smb.exchanges], client_port=RPC_CLIENT_PORTS["rpc_coercion_efsrpc"],
                   start=START + 1000)  # fmt: skip


def rpc_big_endian() -> list:
    login, tree_id, session_id = real_smb2_login()
    smb = PipeConversation(tree_id, session_id)
    srvsvc = (0x0000000051E2A40B, 0x000000006D0C83F2)
    answer = recorded_server_get_info_response()
    smb.open_pipe("srvsvc", srvsvc)
    smb.transceive(srvsvc, rpc_bind(1, SRVSVC, 3), rpc_bind_ack(1, 0x00004A17, "\\pipe\\srvsvc"))
    big_endian = rpc_request(2, NETR_SERVER_GET_INFO, netr_server_get_info_stub(">"), DREP_BIG_ENDIAN)
    smb.transceive(srvsvc, big_endian, rpc_response(2, answer))  # answered in the server's own order
    smb.transceive(srvsvc, rpc_request(3, NETR_SERVER_GET_INFO, netr_server_get_info_stub()), rpc_response(3, answer))
    smb.close(srvsvc)
    smb.logoff()
    return session([*login, *smb.exchanges], client_port=RPC_CLIENT_PORTS["rpc_big_endian"], start=START + 2000)


# ---- the same big-endian request over SMB1: rpc_big_endian_smb1.pcap ------------------------------
# The real unsigned SMB1 login of recorded/smb1_nt1.pcap (NEGOTIATE, SESSION_SETUP_ANDX x2,
# TREE_CONNECT_ANDX IPC$), then rpcclient's own pipe messages from recorded/smb1_named_pipe.pcap
# (NT_CREATE_ANDX \srvsvc, TRANSACTION TransactNmPipe bind and NetrServerGetInfo, CLOSE,
# TREE_DISCONNECT). That session was signed; its messages move into the unsigned one with its
# TID/PID/UID, the two signature bits of Flags2 cleared and the SecuritySignature zeroed, as smbclient
# sends them in smb1_nt1.pcap. The request's PDU is rewritten big-endian; a little-endian copy of the
# call (call_id 3) and of its answer follow it.

SMB1_LOGIN = HERE.parent / "recorded" / "smb1_nt1.pcap"
SMB1_PIPE_RECORDING = HERE.parent / "recorded" / "smb1_named_pipe.pcap"
SMB1_LOGIN_MESSAGES = 8
SMB1_FLAGS2_SIGNATURES = 0x0014  # [MS-SMB] 2.2.3.1: SECURITY_SIGNATURE | SECURITY_SIGNATURE_REQUIRED
SMB1_COM_TREE_CONNECT_ANDX, SMB1_COM_TRANSACTION, SMB1_COM_NT_CREATE_ANDX = 0x75, 0x25, 0xA2


def smb_payloads(path: Path) -> list[tuple[str, bytes]]:
    return [
        ("c" if packet[TCP].dport == 445 else "s", bytes(packet[TCP].payload))
        for packet in rdpcap(str(path))
        if TCP in packet and bytes(packet[TCP].payload)
    ]


def smb1_rehome(message: bytes, tid: int, pid: int, uid: int, mid: int) -> bytes:
    """A NetBIOS-framed SMB1 message with the session's identifiers and MID, unsigned."""
    smb = bytearray(message[4:])
    (flags2,) = struct.unpack_from("<H", smb, 10)
    struct.pack_into("<H8s", smb, 10, flags2 & ~SMB1_FLAGS2_SIGNATURES, bytes(8))
    struct.pack_into("<HHHH", smb, 24, tid, pid, uid, mid)
    return netbios(bytes(smb))


def trailing_pdu(message: bytes) -> bytes:
    """The DCE/RPC PDU a TransactNmPipe request or response carries: its data ends the message."""
    start = message.rfind(b"\x05\x00")
    while start > 0 and struct.unpack_from("<H", message, start + 8)[0] != len(message) - start:
        start = message.rfind(b"\x05\x00", 0, start)
    assert start > 0, "no DCE/RPC PDU at the end of the message"
    return message[start:]


def with_pdu(message: bytes, pdu: bytes) -> bytes:
    """The message with its trailing PDU replaced by `pdu` of the same length."""
    old = trailing_pdu(message)
    assert len(old) == len(pdu)
    return message[: len(message) - len(old)] + pdu


def with_call_id(pdu: bytes, call_id: int) -> bytes:
    return pdu[:12] + struct.pack("<I", call_id) + pdu[16:]  # little-endian PDUs only


def rpc_big_endian_smb1() -> list:
    login = smb_payloads(SMB1_LOGIN)[:SMB1_LOGIN_MESSAGES]
    tree_connect_response = login[-1][1][4:]
    assert tree_connect_response[4] == SMB1_COM_TREE_CONNECT_ANDX
    tid, pid, uid = struct.unpack_from("<HHH", tree_connect_response, 24)
    recorded = smb_payloads(SMB1_PIPE_RECORDING)
    first = next(i for i, (_, payload) in enumerate(recorded) if payload[4 + 4] == SMB1_COM_NT_CREATE_ANDX)
    pipe = recorded[first:]
    transactions = [i for i, (_, payload) in enumerate(pipe) if payload[4 + 4] == SMB1_COM_TRANSACTION]
    _, _, request_at, response_at = transactions  # bind, bind_ack, NetrServerGetInfo, its response
    request, response = pipe[request_at][1], pipe[response_at][1]
    little = trailing_pdu(request)
    assert little[24:] == netr_server_get_info_stub(), "the recorded request is not rpcclient srvinfo's"
    (call_id,) = struct.unpack_from("<I", little, 12)
    big = rpc_request(call_id, NETR_SERVER_GET_INFO, netr_server_get_info_stub(">"), DREP_BIG_ENDIAN)
    sequence = [
        *pipe[:request_at],
        ("c", with_pdu(request, big)),
        ("s", response),
        ("c", with_pdu(request, with_call_id(little, call_id + 1))),
        ("s", with_pdu(response, with_call_id(trailing_pdu(response), call_id + 1))),
        *pipe[response_at + 1 :],
    ]
    exchanges: list[tuple[str, bytes] | float] = list(login)
    mid = struct.unpack_from("<H", tree_connect_response, 30)[0]
    for side, payload in sequence:
        mid += side == "c"  # each request the next MID, its answer the same
        exchanges.append((side, smb1_rehome(payload, tid, pid, uid, mid)))
    return session(exchanges, client_port=RPC_CLIENT_PORTS["rpc_big_endian_smb1"], start=START + 3000)


def write_rpc_fixtures(folder: Path) -> None:
    """The DCE/RPC fixtures, into `folder` (the tests regenerate them into a temporary one)."""
    wrpcap(str(folder / "rpc_coercion_efsrpc.pcap"), rpc_coercion_efsrpc(), linktype=1)
    wrpcap(str(folder / "rpc_big_endian.pcap"), rpc_big_endian(), linktype=1)
    wrpcap(str(folder / "rpc_big_endian_smb1.pcap"), rpc_big_endian_smb1(), linktype=1)


def main() -> None:
    negotiate_request, negotiate_response = real_negotiate()
    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(peek_named_pipe_request())),
        ("s", netbios(error_response(STATUS_INSUFF_SERVER_RESOURCES))),
    ])  # fmt: skip
    wrpcap(str(HERE / "ms17_010_unpatched.pcap"), frames, linktype=1)
    print("wrote ms17_010_unpatched.pcap")

    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(echo_request(b"JlJmIhClBsr\x00", flags2=0xC007))),
        ("s", netbios(error_response(0, command=0x2B, mid=65, flags2=0xC007))),
    ], client_port=49301, start=START)  # fmt: skip
    frames += session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(nt_transact_request(0x10FE8, mid=0))),
        ("s", netbios(error_response(0, command=0xA0, mid=0))),
        *[("c", netbios(trans2_secondary_request(0x1000 * i, mid=0))) for i in range(3)],
    ], client_port=49302, start=START + 1)  # fmt: skip
    grooming_frame = (0x00FFF7).to_bytes(4, "big") + b"\xfeSMB" + bytes(60)
    for i in range(4):
        frames += session([("c", grooming_frame)], client_port=49310 + i, start=START + 2 + i * 0.01)
    wrpcap(str(HERE / "eternalblue_patterns.pcap"), frames, linktype=1)
    print("wrote eternalblue_patterns.pcap")

    frames = session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("c", netbios(trans2_session_setup_request(65, b""))),
        ("s", netbios(error_response(0xC0000002, command=0x32, mid=81))),
        ("c", netbios(trans2_session_setup_request(66, bytes(4096)))),
        ("s", netbios(error_response(0xC0000002, command=0x32, mid=82))),
    ], client_port=49401, start=START + 10)  # fmt: skip
    frames += session([
        ("c", negotiate_request),
        ("s", negotiate_response),
        ("s", netbios(error_response(0, command=0x2B, pid=0x1234, mid=0x4321))),
    ], client_port=49402, start=START + 11)  # fmt: skip
    wrpcap(str(HERE / "doublepulsar_patterns.pcap"), frames, linktype=1)
    print("wrote doublepulsar_patterns.pcap")

    start, close = START + 500, START + 512
    negotiate = [("c", negotiate_request), ("s", negotiate_response)]
    frames = session(
        [*negotiate, ("c", netbios(echo_request(b"JlJmIhClBsr\x00", flags2=0xC007)))],
        client_port=49501, start=start + 0.5, close_at=close,
    )  # fmt: skip
    frames += session([
        *negotiate,
        ("c", netbios(nt_transact_request(0x10FE8, mid=0))),
        ("s", netbios(error_response(0, command=0xA0, mid=0))),
        ("c", netbios(trans2_secondary_request(0, mid=0))),
    ], client_port=49502, start=start + 1.5, close_at=close)  # fmt: skip
    frames += session([
        *negotiate,
        ("c", netbios(peek_named_pipe_request())),
        ("s", netbios(error_response(STATUS_INSUFF_SERVER_RESOURCES))),
    ], client_port=49503, start=start + 2.5, close_at=close)  # fmt: skip
    frames += session(
        [*negotiate, ("c", netbios(trans2_session_setup_request(66, bytes(4096))))],
        client_port=49504, start=start + 3.5, close_at=close,
    )  # fmt: skip
    for i in range(3):
        frames += session([("c", grooming_frame)], client_port=49510 + i, start=start + 4.5 + i * 0.01, close_at=close)
    frames.sort(key=lambda packet: float(packet.time))
    wrpcap(str(HERE / "alerts_open_connections.pcap"), frames, linktype=1)
    print("wrote alerts_open_connections.pcap")

    write_rpc_fixtures(HERE)
    print("wrote rpc_coercion_efsrpc.pcap, rpc_big_endian.pcap, rpc_big_endian_smb1.pcap")


if __name__ == "__main__":
    main()
