"""Frozen records the dissectors produce, named after the spec structures they decode.

A dissector returns one of these records, or an `Anomaly` when the bytes are
malformed. Records hold decoded values only (no buffers), so they are cheap to
keep and safe to hand to any sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple


class AnomalyKind(Enum):
    """One flat list of everything odd the pipeline can meet; each is counted and visible."""

    # capture and decode
    LINKTYPE_UNSUPPORTED = "linktype_unsupported"
    FRAME_MALFORMED = "frame_malformed"
    IP_MALFORMED = "ip_malformed"
    IP_FRAGMENT = "ip_fragment"
    TCP_MALFORMED = "tcp_malformed"
    # flows and reassembly
    FLOW_TABLE_FULL = "flow_table_full"
    OUT_OF_ORDER_BUFFER_FULL = "out_of_order_buffer_full"
    OVERLAP_DATA_DIFFERS = "overlap_data_differs"
    RESYNC_SKIPPED_BYTES = "resync_skipped_bytes"
    SEQUENCE_JUMP = "sequence_jump"  # data far outside the receive window: a gap, then resynchronised there
    PACKET_TIME_JUMP = "packet_time_jump"  # packet time leapt forward: flows idle longer than the timeout end
    CONNECTION_RECORDS_FULL = "connection_records_full"
    HOSTS_FULL = "hosts_full"
    IMPLAUSIBLE_HOST_HINT = "implausible_host_hint"  # a version or OS string no real host sends: not kept
    SMB1_PAIRS_FULL = "smb1_pairs_full"  # an SMB1 connection of a pair past the retirement report's cap: left out
    UPGRADED_CLIENTS_FULL = "upgraded_clients_full"  # an upgraded connection of a client past the cap: left out
    # NetBIOS session service
    NETBIOS_BAD_TYPE = "netbios_bad_type"
    NETBIOS_BAD_FLAGS = "netbios_bad_flags"
    NETBIOS_MALFORMED = "netbios_malformed"
    NETBIOS_FRAME_CUT_SHORT = "netbios_frame_cut_short"  # the connection ended inside a session message
    # SMB framing
    NOT_SMB = "not_smb"
    ZEROED_MESSAGE_HEADER = "zeroed_message_header"
    SMB1_MALFORMED = "smb1_malformed"
    SMB2_MALFORMED = "smb2_malformed"
    SMB2_NEXT_COMMAND_INVALID = "smb2_next_command_invalid"
    SMB2_COMPOUND_TOO_LONG = "smb2_compound_too_long"
    SMB2_COMPOUND_BEYOND_KEPT_BYTES = "smb2_compound_beyond_kept_bytes"
    # An SMB1 message past the 128 KiB kept, or a NetBIOS packet other than a SESSION MESSAGE past
    # its 1,024: decoded from the bytes kept, the rest passed over (READ/WRITE data is never a cut).
    MESSAGE_CUT_AT_KEPT_BYTES = "message_cut_at_kept_bytes"
    TRANSFORM_MALFORMED = "transform_malformed"
    COMPRESSION_MALFORMED = "compression_malformed"
    # NEGOTIATE
    NEGOTIATE_MALFORMED = "negotiate_malformed"
    NEGOTIATE_MALFORMED_DIALECTS = "negotiate_malformed_dialects"
    NEGOTIATE_CONTEXT_MALFORMED = "negotiate_context_malformed"
    NEGOTIATE_UNKNOWN_DIALECT_INDEX = "negotiate_unknown_dialect_index"
    # authentication and tree connect
    SESSION_SETUP_MALFORMED = "session_setup_malformed"
    TREE_CONNECT_MALFORMED = "tree_connect_malformed"
    SMB1_ANDX_CHAIN_INVALID = "smb1_andx_chain_invalid"
    SPNEGO_MALFORMED = "spnego_malformed"
    SPNEGO_MECH_TYPES_FULL = "spnego_mech_types_full"  # mechTypes past the kept count: counted, not listed
    DER_LENGTH_BEYOND_BUFFER = "der_length_beyond_buffer"  # a DER element claims more bytes than follow
    NTLMSSP_MALFORMED = "ntlmssp_malformed"
    KERBEROS_MALFORMED = "kerberos_malformed"
    KERBEROS_NAME_COMPONENTS_FULL = "kerberos_name_components_full"  # sname past 8 components: the first 8 kept
    # per-connection state
    PENDING_REQUESTS_FULL = "pending_requests_full"
    SESSIONS_FULL = "sessions_full"
    TREES_FULL = "trees_full"  # tree connects past the 256 kept per connection: counted, not listed
    SESSION_RESULTS_FULL = "session_results_full"  # a SESSION_SETUP outcome past 1,024 in one delivery: not handed on
    DETECTOR_PAIRS_FULL = "detector_pairs_full"  # a detector's per-pair memory forgot its least recent pair
    MS17_010_WATCH_FULL = "ms17_010_watch_full"  # an SMB1 request the MS17-010 watch lists turned away or forgot
    USE_TRACKING_FULL = "use_tracking_full"  # a request on a tree past those tracked, or an open not awaited
    DIALECTS_FULL = "dialects_full"  # a dialect offered past the 64 kept in `dialects_offered`: not listed
    NAMES_KEPT_FULL = "names_kept_full"  # a name, dialect, hint or user past a per-object list's cap: not listed
    # DCE/RPC over named pipes (dissectors/dcerpc)
    DCERPC_NOT_DCERPC = "dcerpc_not_dcerpc"  # rpc_vers is not 5: the rest of the stream is not read
    DCERPC_MALFORMED = "dcerpc_malformed"  # a length or count points outside the PDU
    DCERPC_FRAGMENT_BEYOND_KEPT_BYTES = "dcerpc_fragment_beyond_kept_bytes"  # header read, the rest passed over
    DCERPC_CONTEXTS_FULL = "dcerpc_contexts_full"  # presentation contexts, transfer syntaxes or results past the kept
    DCERPC_CALLS_FULL = "dcerpc_calls_full"  # a fragmented call past those reassembled at once: not followed
    DCERPC_REASSEMBLY_FULL = "dcerpc_reassembly_full"  # a call's stub grew past the reassembly cap: forgotten
    DCERPC_FRAGMENT_OUT_OF_CALL = "dcerpc_fragment_out_of_call"  # a later fragment of a call whose first was not seen
    DCERPC_STREAM_CUT_SHORT = "dcerpc_stream_cut_short"  # the stream ended inside a PDU or a fragmented call
    # Sensor only: smbwatch_smb1_host_info series past `max_host_series` (the most ever left out at once).
    HOST_SERIES_FULL = "host_series_full"
    # SMB2 files, pipes and I/O after the login (one kind per command, like TREE_CONNECT_MALFORMED)
    CREATE_MALFORMED = "create_malformed"
    CREATE_CONTEXTS_FULL = "create_contexts_full"  # create contexts past the 16 named: counted, not named
    CLOSE_MALFORMED = "close_malformed"
    READ_MALFORMED = "read_malformed"
    WRITE_MALFORMED = "write_malformed"
    IOCTL_MALFORMED = "ioctl_malformed"
    SET_INFO_MALFORMED = "set_info_malformed"
    QUERY_DIRECTORY_MALFORMED = "query_directory_malformed"
    # Per-connection activity state (monitor/smb/files.py, monitor/smb/rpc.py)
    FILE_TRACKING_FULL = "file_tracking_full"  # a file entry, open handle or waiting request past its cap
    RPC_TRACKING_FULL = "rpc_tracking_full"  # a pipe, bound interface, operation row or waiting call past its cap
    RPC_DATA_NOT_KEPT = "rpc_data_not_kept"  # pipe data larger than smbwatch keeps of a READ/WRITE: not read


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something the bytes should not contain, or a cap that was hit."""

    kind: AnomalyKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReassemblyGap:
    """`size` bytes of one direction were never seen (0: how many is unknown, the TCP sequence
    jumped); framing restarts after them."""

    size: int


# --- NetBIOS session service (RFC 1002 4.3) ------------------------------------------


@dataclass(frozen=True, slots=True)
class NetbiosSessionPacket:
    """RFC 1002 4.3.1: a session service packet other than SESSION MESSAGE."""

    type: int
    length: int


@dataclass(frozen=True, slots=True)
class NetbiosSessionRequest:
    """RFC 1002 4.3.2: SESSION REQUEST with its decoded called and calling names."""

    called_name: str
    calling_name: str


# --- SMB1 ([MS-CIFS] / [MS-SMB]) ------------------------------------------------------


class Smb1Header(NamedTuple):
    """[MS-CIFS] 2.2.3.1 SMB_Header (32 bytes); `pid` joins PIDHigh and PIDLow.

    Headers and messages are built once per message on the hot path, so they are
    NamedTuples: immutable like the frozen dataclasses, and measured four times
    cheaper to create.
    """

    command: int
    status: int
    flags: int
    flags2: int
    tid: int
    pid: int
    uid: int
    mid: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x80)


@dataclass(frozen=True, slots=True)
class Smb1NegotiateRequest:
    """[MS-CIFS] 2.2.4.52.1 SMB_COM_NEGOTIATE request: the dialect strings in order."""

    dialects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Smb1NegotiateResponse:
    """[MS-CIFS] 2.2.4.52.2 / [MS-SMB] 2.2.4.5.2 SMB_COM_NEGOTIATE response.

    `word_count` tells the form: 17 for NT LM 0.12, 13 for LANMAN dialects,
    1 for the core protocol and for "no dialect acceptable" (index 0xFFFF).
    Fields a form does not carry are None.
    """

    word_count: int
    dialect_index: int
    security_mode: int | None = None
    max_mpx_count: int | None = None
    max_buffer_size: int | None = None
    capabilities: int | None = None
    system_time: int | None = None
    server_guid: bytes | None = None
    security_blob_length: int | None = None


# --- SMB2/3 ([MS-SMB2]) ---------------------------------------------------------------


class Smb2Header(NamedTuple):
    """[MS-SMB2] 2.2.1.1 / 2.2.1.2 SMB2 packet header (sync or async form); a NamedTuple like `Smb1Header`."""

    credit_charge: int
    status: int
    command: int
    credits: int
    flags: int
    next_command: int
    message_id: int
    async_id: int | None
    tree_id: int | None
    session_id: int
    signature: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x01)


@dataclass(frozen=True, slots=True)
class PreauthIntegrityCapabilities:
    """[MS-SMB2] 2.2.3.1.1 SMB2_PREAUTH_INTEGRITY_CAPABILITIES."""

    hash_algorithms: tuple[int, ...]
    salt_length: int


@dataclass(frozen=True, slots=True)
class EncryptionCapabilities:
    """[MS-SMB2] 2.2.3.1.2 SMB2_ENCRYPTION_CAPABILITIES."""

    ciphers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CompressionCapabilities:
    """[MS-SMB2] 2.2.3.1.3 SMB2_COMPRESSION_CAPABILITIES."""

    flags: int
    algorithms: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NetnameNegotiateContextId:
    """[MS-SMB2] 2.2.3.1.4 SMB2_NETNAME_NEGOTIATE_CONTEXT_ID: the server name the client asked for."""

    net_name: str


@dataclass(frozen=True, slots=True)
class TransportCapabilities:
    """[MS-SMB2] 2.2.3.1.5 SMB2_TRANSPORT_CAPABILITIES."""

    flags: int


@dataclass(frozen=True, slots=True)
class RdmaTransformCapabilities:
    """[MS-SMB2] 2.2.3.1.6 SMB2_RDMA_TRANSFORM_CAPABILITIES."""

    transform_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SigningCapabilities:
    """[MS-SMB2] 2.2.3.1.7 SMB2_SIGNING_CAPABILITIES."""

    algorithms: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UnknownNegotiateContext:
    """A negotiate context whose type [MS-SMB2] 2.2.3.1 does not define."""

    context_type: int
    data_length: int


NegotiateContext = (
    PreauthIntegrityCapabilities
    | EncryptionCapabilities
    | CompressionCapabilities
    | NetnameNegotiateContextId
    | TransportCapabilities
    | RdmaTransformCapabilities
    | SigningCapabilities
    | UnknownNegotiateContext
)


@dataclass(frozen=True, slots=True)
class Smb2NegotiateRequest:
    """[MS-SMB2] 2.2.3 SMB2 NEGOTIATE Request."""

    dialects: tuple[int, ...]
    security_mode: int
    capabilities: int
    client_guid: bytes
    contexts: tuple[NegotiateContext, ...]


@dataclass(frozen=True, slots=True)
class Smb2NegotiateResponse:
    """[MS-SMB2] 2.2.4 SMB2 NEGOTIATE Response."""

    security_mode: int
    dialect: int
    server_guid: bytes
    capabilities: int
    max_transact_size: int
    max_read_size: int
    max_write_size: int
    system_time: int
    security_buffer_length: int
    contexts: tuple[NegotiateContext, ...]


@dataclass(frozen=True, slots=True)
class Smb2TransformHeader:
    """[MS-SMB2] 2.2.41 SMB2 TRANSFORM_HEADER: an encrypted message follows."""

    original_message_size: int
    flags: int
    session_id: int


@dataclass(frozen=True, slots=True)
class Smb2CompressionTransformHeader:
    """[MS-SMB2] 2.2.42 SMB2 COMPRESSION_TRANSFORM_HEADER (unchained or chained)."""

    original_size: int
    algorithm: int
    flags: int
    offset_or_length: int


@dataclass(frozen=True, slots=True)
class Smb1SessionSetupRequest:
    """SMB_COM_SESSION_SETUP_ANDX request: [MS-SMB] 2.2.4.6.1 (extended security, WordCount 12),
    [MS-CIFS] 2.2.4.53.1 (NT LM 0.12 form, WordCount 13) or 2.2.4.53.1 LANMAN form (WordCount 10).

    Password fields are never kept, only their lengths.
    """

    form: str  # "extended", "nt" or "lanman"
    capabilities: int | None
    security: SpnegoToken | None
    oem_password_length: int
    unicode_password_length: int
    account: str
    primary_domain: str
    native_os: str
    native_lanman: str


@dataclass(frozen=True, slots=True)
class Smb1SessionSetupResponse:
    """SMB_COM_SESSION_SETUP_ANDX response ([MS-SMB] 2.2.4.6.2, [MS-CIFS] 2.2.4.53.2)."""

    action: int
    security: SpnegoToken | None
    native_os: str
    native_lanman: str
    primary_domain: str

    @property
    def guest(self) -> bool:
        return bool(self.action & 0x0001)  # SMB_SETUP_GUEST


@dataclass(frozen=True, slots=True)
class Smb1TreeConnectRequest:
    """[MS-CIFS] 2.2.4.55.1 SMB_COM_TREE_CONNECT_ANDX request."""

    path: str
    service: str


@dataclass(frozen=True, slots=True)
class Smb1TreeConnectResponse:
    """[MS-CIFS] 2.2.4.55.2 / [MS-SMB] 2.2.4.7.2 SMB_COM_TREE_CONNECT_ANDX response."""

    service: str
    native_file_system: str
    optional_support: int


@dataclass(frozen=True, slots=True)
class Smb2SessionSetupRequest:
    """[MS-SMB2] 2.2.5 SMB2 SESSION_SETUP Request."""

    flags: int  # SMB2_SESSION_FLAG_BINDING 0x01
    security_mode: int
    capabilities: int
    previous_session_id: int
    security: SpnegoToken | None


@dataclass(frozen=True, slots=True)
class Smb2SessionSetupResponse:
    """[MS-SMB2] 2.2.6 SMB2 SESSION_SETUP Response."""

    session_flags: int  # IS_GUEST 0x1, IS_NULL 0x2, ENCRYPT_DATA 0x4
    security: SpnegoToken | None


@dataclass(frozen=True, slots=True)
class Smb2TreeConnectRequest:
    """[MS-SMB2] 2.2.9 SMB2 TREE_CONNECT Request."""

    flags: int
    path: str


@dataclass(frozen=True, slots=True)
class Smb2TreeConnectResponse:
    """[MS-SMB2] 2.2.10 SMB2 TREE_CONNECT Response."""

    share_type: int  # DISK 1, PIPE 2, PRINT 3
    share_flags: int
    capabilities: int
    maximal_access: int


@dataclass(frozen=True, slots=True)
class Smb1TransactionRequest:
    """[MS-CIFS] 2.2.4.33.1 SMB_COM_TRANSACTION request (and 2.2.4.46.1 TRANSACTION2: no Name there).

    `setup` holds the Setup words: for a named-pipe transaction, the subcommand then the FID.
    The offsets count from the start of the SMB header. A transaction sent in several messages
    (TRANSACTION_SECONDARY follows) has `data_count` < `total_data_count`; it is not reassembled here.
    """

    total_parameter_count: int
    total_data_count: int
    parameter_count: int
    data_count: int
    setup: tuple[int, ...]
    name: str
    # [MS-RAP] 2.5.1 RAPOpcode: the first parameter word of a TRANSACTION to \\PIPE\\LANMAN, else None.
    rap_opcode: int | None = None
    parameter_offset: int = 0
    data_offset: int = 0
    max_data_count: int = 0
    # A named-pipe transaction ([MS-CIFS] 2.2.5): Setup[0] and, where the subcommand has one, the FID in
    # Setup[1]; None for other transactions. TRANS_WAIT_NMPIPE and TRANS_CALL_NMPIPE carry no FID.
    pipe_function: int | None = None
    fid: int | None = None
    # The Data bytes of a named-pipe transaction (for TRANS_TRANSACT_NMPIPE: DCE/RPC PDUs); else empty.
    data: bytes = b""
    # The decoded parameters of a TRANSACTION2 subcommand smbwatch reads, else None.
    trans2: Smb1Trans2Parameters | None = None


# --- SMB1 file and named-pipe activity ([MS-CIFS] 2.2.4, 2.2.5, 2.2.6; [MS-SMB] 2.2.4) ---


@dataclass(frozen=True, slots=True)
class Smb1OpenRequest:
    """The name a client opens: SMB_COM_NT_CREATE_ANDX ([MS-CIFS] 2.2.4.64.1) or SMB_COM_OPEN_ANDX
    ([MS-CIFS] 2.2.4.41.1) request. On an IPC$ tree the name is a named pipe (``\\srvsvc``).

    The NT_CREATE_ANDX fields are None in an OPEN_ANDX request and the OPEN_ANDX ones in an NT_CREATE_ANDX.
    """

    name: str
    desired_access: int | None = None  # NT_CREATE_ANDX only ([MS-CIFS] 2.2.4.64.1 DesiredAccess)
    create_disposition: int | None = None  # Smb1CreateDisposition
    create_options: int | None = None  # Smb1CreateOptions
    share_access: int | None = None  # Smb1ShareAccess
    ext_file_attributes: int | None = None  # Smb1ExtFileAttributes
    flags: int | None = None  # NT_CREATE_ANDX Flags (NT_CREATE_REQUEST_EXTENDED_RESPONSE 0x10 ...)
    root_directory_fid: int | None = None  # the name is relative to this directory when non-zero
    allocation_size: int | None = None
    access_mode: int | None = None  # OPEN_ANDX AccessMode ([MS-CIFS] 2.2.4.41.1)
    open_mode: int | None = None  # OPEN_ANDX OpenMode (the open function: create, open, truncate)
    file_attributes: int | None = None  # OPEN_ANDX FileAttrs (Smb1FileAttributes)

    @property
    def delete_on_close(self) -> bool:
        """FILE_DELETE_ON_CLOSE: the file goes away when this handle closes."""
        return bool((self.create_options or 0) & 0x00001000)


@dataclass(frozen=True, slots=True)
class Smb1NtCreateResponse:
    """SMB_COM_NT_CREATE_ANDX response: [MS-CIFS] 2.2.4.64.2 (WordCount 34), or the [MS-SMB] 2.2.4.9.2
    extended response (WordCount 42, which Windows sends with 50 words: the last four fields).

    `create_action` is the response's CreateDisposition field (Smb1CreateAction). Times are FILETIMEs.
    """

    oplock_level: int
    fid: int
    create_action: int
    create_time: int
    last_access_time: int
    last_write_time: int
    last_change_time: int
    ext_file_attributes: int
    allocation_size: int
    end_of_file: int
    resource_type: int  # Smb1ResourceType
    nm_pipe_status: int
    directory: bool
    extended: bool = False
    volume_guid: bytes | None = None
    file_id: int | None = None
    maximal_access_rights: int | None = None
    guest_maximal_access_rights: int | None = None


@dataclass(frozen=True, slots=True)
class Smb1OpenAndxResponse:
    """[MS-CIFS] 2.2.4.41.2 SMB_COM_OPEN_ANDX response (and the [MS-SMB] 2.2.4.1.2 extended form)."""

    fid: int
    file_attributes: int
    last_write_time: int  # UTIME: seconds since 1970
    file_data_size: int
    access_rights: int
    resource_type: int
    nm_pipe_status: int
    open_results: int

    @property
    def action(self) -> int:
        """Smb1OpenAction: opened, created or truncated."""
        return self.open_results & 0x0003


@dataclass(frozen=True, slots=True)
class Smb1ReadAndxRequest:
    """[MS-CIFS] 2.2.4.42.1 / [MS-SMB] 2.2.4.2.1 SMB_COM_READ_ANDX request.

    `offset` joins OffsetHigh (WordCount 12) and Offset; `max_count` joins MaxCountHigh and
    MaxCountOfBytesToReturn (CAP_LARGE_READX).
    """

    fid: int
    offset: int
    max_count: int
    min_count: int
    remaining: int
    timeout: int  # the Timeout_or_MaxCountHigh field as sent


@dataclass(frozen=True, slots=True)
class Smb1ReadAndxResponse:
    """[MS-CIFS] 2.2.4.42.2 / [MS-SMB] 2.2.4.2.2 SMB_COM_READ_ANDX response.

    `data_length` joins DataLengthHigh and DataLength. smbwatch keeps only the first bytes of a large
    read (dissectors/message.py BULK_MESSAGE_PREFIX): `data` holds those kept, `data_complete` tells
    whether they are all of it.
    """

    available: int
    data_length: int
    data_offset: int
    data: bytes
    data_complete: bool


@dataclass(frozen=True, slots=True)
class Smb1WriteAndxRequest:
    """[MS-CIFS] 2.2.4.43.1 / [MS-SMB] 2.2.4.3.1 SMB_COM_WRITE_ANDX request; `data`/`data_complete`
    as in `Smb1ReadAndxResponse`."""

    fid: int
    offset: int
    write_mode: int  # Smb1WriteMode
    remaining: int
    data_length: int
    data_offset: int
    data: bytes
    data_complete: bool


@dataclass(frozen=True, slots=True)
class Smb1WriteAndxResponse:
    """[MS-CIFS] 2.2.4.43.2 / [MS-SMB] 2.2.4.3.2 SMB_COM_WRITE_ANDX response; `count` joins CountHigh."""

    count: int
    available: int


@dataclass(frozen=True, slots=True)
class Smb1CloseRequest:
    """[MS-CIFS] 2.2.4.5.1 SMB_COM_CLOSE request."""

    fid: int
    last_time_modified: int


@dataclass(frozen=True, slots=True)
class Smb1DeleteRequest:
    """[MS-CIFS] 2.2.4.7.1 SMB_COM_DELETE request (the name may hold wildcards)."""

    search_attributes: int
    file_name: str


@dataclass(frozen=True, slots=True)
class Smb1RenameRequest:
    """[MS-CIFS] 2.2.4.8.1 SMB_COM_RENAME and 2.2.4.66.1 SMB_COM_NT_RENAME requests;
    `information_level` (Smb1NtRenameLevel) only in NT_RENAME."""

    search_attributes: int
    old_file_name: str
    new_file_name: str
    information_level: int | None = None


@dataclass(frozen=True, slots=True)
class Smb1DirectoryRequest:
    """[MS-CIFS] 2.2.4.1.1 SMB_COM_CREATE_DIRECTORY and 2.2.4.2.1 SMB_COM_DELETE_DIRECTORY requests
    (the header's command tells which)."""

    directory_name: str


@dataclass(frozen=True, slots=True)
class Smb1Trans2Parameters:
    """The Trans2_Parameters (and for renames and deletes the Trans2_Data) of the TRANSACTION2
    subcommands smbwatch reads ([MS-CIFS] 2.2.6): OPEN2, FIND_FIRST2, FIND_NEXT2,
    QUERY/SET_PATH_INFORMATION, QUERY/SET_FILE_INFORMATION, CREATE_DIRECTORY.

    A field the subcommand does not carry is None. `name` is the path, the search pattern (FIND_FIRST2)
    or the resume file name (FIND_NEXT2). A set-information level that renames or deletes is decoded:
    SMB_SET_FILE_DISPOSITION_INFO, FileDispositionInformation(Ex) give `delete_pending`;
    FileRenameInformation gives `rename_target` and `replace_if_exists`.
    """

    subcommand: int  # Smb1Trans2Subcommand
    fid: int | None = None
    information_level: int | None = None  # Smb1SetInformationLevel for the SET subcommands
    name: str | None = None
    search_attributes: int | None = None
    search_count: int | None = None  # FIND_FIRST2/FIND_NEXT2: entries asked for
    open_mode: int | None = None  # OPEN2 OpenMode
    delete_pending: bool | None = None
    rename_target: str | None = None
    replace_if_exists: bool | None = None


@dataclass(frozen=True, slots=True)
class Smb1TransactionSecondaryRequest:
    """[MS-CIFS] 2.2.4.34.1 SMB_COM_TRANSACTION_SECONDARY and 2.2.4.47.1 SMB_COM_TRANSACTION2_SECONDARY
    requests: one more part of a transaction, placed by the displacements (`fid` is TRANS2's FID word).
    `data` holds the part's Data bytes for TRANSACTION_SECONDARY only."""

    total_parameter_count: int
    total_data_count: int
    parameter_count: int
    parameter_offset: int
    parameter_displacement: int
    data_count: int
    data_offset: int
    data_displacement: int
    fid: int | None = None
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Smb1TransactionResponse:
    """[MS-CIFS] 2.2.4.33.2 SMB_COM_TRANSACTION and 2.2.4.46.2 SMB_COM_TRANSACTION2 response (one part:
    a large answer comes in several, placed by the displacements).

    `parameters` holds this part's first Parameters bytes (at most SMB1_TRANSACTION_PARAMETERS_KEPT,
    enough for every TRANS2 response header); `data` this part's Data bytes for a TRANSACTION (a
    named pipe's answer: DCE/RPC PDUs), empty for TRANSACTION2 (listings, file information).
    """

    total_parameter_count: int
    total_data_count: int
    parameter_count: int
    parameter_offset: int
    parameter_displacement: int
    data_count: int
    data_offset: int
    data_displacement: int
    setup: tuple[int, ...]
    parameters: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Smb1FindResponseParameters:
    """[MS-CIFS] 2.2.6.2.2 TRANS2_FIND_FIRST2 / 2.2.6.3.2 TRANS2_FIND_NEXT2 response parameters: how many
    directory entries this answer lists (`sid` only in FIND_FIRST2)."""

    sid: int | None
    search_count: int
    end_of_search: bool
    last_name_offset: int


@dataclass(frozen=True, slots=True)
class Smb1NtTransactRequest:
    """[MS-CIFS] 2.2.4.62.1 SMB_COM_NT_TRANSACT request: the declared sizes, Function and Setup words.

    TotalDataCount is what the server reserves for the whole transaction; EternalBlue declares
    more than 64 KiB here and then sends the data as TRANSACTION2_SECONDARY messages.
    """

    total_parameter_count: int
    total_data_count: int
    parameter_count: int
    data_count: int
    function: int
    setup: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Smb1EchoRequest:
    """[MS-CIFS] 2.2.4.39.1 SMB_COM_ECHO request: EchoCount and the first bytes of the echoed data."""

    echo_count: int
    data_prefix: bytes


# --- SMB2 files, pipes and I/O after the login ([MS-SMB2] 2.2.13 - 2.2.40, [MS-FSCC]) ------


class Smb2FileId(NamedTuple):
    """[MS-SMB2] 2.2.14.1 SMB2_FILEID, as sent: Persistent then Volatile, both 64-bit.

    Kept raw: a request of a compound chain may name the open of the request before it with
    all bits set (`related`, [MS-SMB2] 3.2.4.1.4), which only the per-connection state resolves.
    """

    persistent: int
    volatile: int

    @property
    def raw(self) -> bytes:
        return self.persistent.to_bytes(8, "little") + self.volatile.to_bytes(8, "little")

    @property
    def related(self) -> bool:
        return self.persistent == self.volatile == 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class Smb2CreateRequest:
    """[MS-SMB2] 2.2.13 SMB2 CREATE Request.

    `context_names` are the Name of each create context (2.2.13.2) in order: four ASCII
    characters ("MxAc", "DH2Q", ...) as text, other names as hex; past `MAX_CREATE_CONTEXTS`
    they are counted in `context_names_dropped`. `anomalies` are what the request was decoded
    despite (a broken context chain, the cap); smb2.py emits them after the message.
    """

    name: str
    requested_oplock_level: int
    impersonation_level: int
    desired_access: int
    file_attributes: int
    share_access: int
    create_disposition: int
    create_options: int
    context_names: tuple[str, ...] = ()
    context_names_dropped: int = 0
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True, slots=True)
class Smb2CreateResponse:
    """[MS-SMB2] 2.2.14 SMB2 CREATE Response (times are left out)."""

    oplock_level: int
    flags: int  # SMB2_CREATE_FLAG_REPARSEPOINT 0x01 (3.1.1)
    create_action: int
    allocation_size: int
    end_of_file: int
    file_attributes: int
    file_id: Smb2FileId
    context_names: tuple[str, ...] = ()
    context_names_dropped: int = 0
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True, slots=True)
class Smb2CloseRequest:
    """[MS-SMB2] 2.2.15 SMB2 CLOSE Request."""

    flags: int  # SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB 0x0001
    file_id: Smb2FileId


@dataclass(frozen=True, slots=True)
class Smb2CloseResponse:
    """[MS-SMB2] 2.2.16 SMB2 CLOSE Response; the sizes are zero unless the request asked for them."""

    flags: int
    allocation_size: int
    end_of_file: int
    file_attributes: int


class Smb2ReadRequest(NamedTuple):
    """[MS-SMB2] 2.2.19 SMB2 READ Request. READ/WRITE records are NamedTuples like the headers:
    one is built for every message of a bulk transfer."""

    flags: int
    length: int
    offset: int
    file_id: Smb2FileId
    minimum_count: int
    channel: int
    remaining_bytes: int


class Smb2ReadResponse(NamedTuple):
    """[MS-SMB2] 2.2.20 SMB2 READ Response. It names no file: a READ request is paired with it
    by MessageId.

    `data` holds the bytes of the read data present in the bytes smbwatch kept (a READ response
    larger than 256 bytes keeps only its first 256, `message.BULK_MESSAGE_PREFIX`); `data_length`
    is the DataLength the server declared.
    """

    data_offset: int
    data_length: int
    data_remaining: int
    data: bytes

    @property
    def data_complete(self) -> bool:
        return len(self.data) == self.data_length


class Smb2WriteRequest(NamedTuple):
    """[MS-SMB2] 2.2.21 SMB2 WRITE Request; `data` and `data_length` as in `Smb2ReadResponse`."""

    data_offset: int
    data_length: int
    offset: int
    file_id: Smb2FileId
    channel: int
    remaining_bytes: int
    flags: int
    data: bytes

    @property
    def data_complete(self) -> bool:
        return len(self.data) == self.data_length


class Smb2WriteResponse(NamedTuple):
    """[MS-SMB2] 2.2.22 SMB2 WRITE Response."""

    bytes_written: int  # Count (a NamedTuple cannot have a field named count)
    remaining: int


@dataclass(frozen=True, slots=True)
class FileRenameInformation:
    """[MS-FSCC] 2.4.42.2 FILE_RENAME_INFORMATION_TYPE_2 (the SMB2 form): the new name."""

    replace_if_exists: bool
    root_directory: int  # zero for SMB2 ([MS-SMB2] 2.2.39)
    file_name: str


@dataclass(frozen=True, slots=True)
class FileDispositionInformation:
    """[MS-FSCC] 2.4.11 FILE_DISPOSITION_INFORMATION."""

    delete_pending: bool


@dataclass(frozen=True, slots=True)
class FileDispositionInformationEx:
    """[MS-FSCC] 2.4.12 FILE_DISPOSITION_INFORMATION_EX."""

    flags: int  # FileDispositionFlags

    @property
    def delete(self) -> bool:
        return bool(self.flags & 0x00000001)  # FILE_DISPOSITION_DELETE


SetInfoBuffer = FileRenameInformation | FileDispositionInformation | FileDispositionInformationEx


@dataclass(frozen=True, slots=True)
class Smb2SetInfoRequest:
    """[MS-SMB2] 2.2.39 SMB2 SET_INFO Request. `buffer` is decoded for renames and deletes
    (SMB2_0_INFO_FILE with FileRenameInformation, FileDispositionInformation(Ex)), else None."""

    info_type: int
    file_info_class: int
    buffer_length: int
    additional_information: int
    file_id: Smb2FileId
    buffer: SetInfoBuffer | None


@dataclass(frozen=True, slots=True)
class Smb2SetInfoResponse:
    """[MS-SMB2] 2.2.40 SMB2 SET_INFO Response: a StructureSize and nothing else."""


@dataclass(frozen=True, slots=True)
class Smb2IoctlRequest:
    """[MS-SMB2] 2.2.31 SMB2 IOCTL Request. `input` holds the input bytes present in the
    message (IOCTLs are kept whole up to 128 KiB); `input_count` is the declared InputCount.
    For FSCTL_PIPE_TRANSCEIVE the input is DCE/RPC PDUs written to the pipe."""

    ctl_code: int
    file_id: Smb2FileId
    flags: int  # SMB2_0_IOCTL_IS_FSCTL 0x1
    input_count: int
    max_input_response: int
    max_output_response: int
    input: bytes

    @property
    def input_complete(self) -> bool:
        return len(self.input) == self.input_count


@dataclass(frozen=True, slots=True)
class Smb2IoctlResponse:
    """[MS-SMB2] 2.2.32 SMB2 IOCTL Response; `output` as `Smb2IoctlRequest.input` (for
    FSCTL_PIPE_TRANSCEIVE: what the pipe answered, also under STATUS_BUFFER_OVERFLOW)."""

    ctl_code: int
    file_id: Smb2FileId
    flags: int
    input_count: int
    output_count: int
    output: bytes

    @property
    def output_complete(self) -> bool:
        return len(self.output) == self.output_count


@dataclass(frozen=True, slots=True)
class Smb2QueryDirectoryRequest:
    """[MS-SMB2] 2.2.33 SMB2 QUERY_DIRECTORY Request."""

    file_information_class: int
    flags: int  # Smb2QueryDirectoryFlags
    file_index: int
    file_id: Smb2FileId
    pattern: str
    output_buffer_length: int


Smb1Body = (
    Smb1TransactionRequest
    | Smb1OpenRequest
    | Smb1NtCreateResponse
    | Smb1OpenAndxResponse
    | Smb1ReadAndxRequest
    | Smb1ReadAndxResponse
    | Smb1WriteAndxRequest
    | Smb1WriteAndxResponse
    | Smb1CloseRequest
    | Smb1DeleteRequest
    | Smb1RenameRequest
    | Smb1DirectoryRequest
    | Smb1TransactionSecondaryRequest
    | Smb1TransactionResponse
    | Smb1NtTransactRequest
    | Smb1EchoRequest
    | Smb1NegotiateRequest
    | Smb1NegotiateResponse
    | Smb1SessionSetupRequest
    | Smb1SessionSetupResponse
    | Smb1TreeConnectRequest
    | Smb1TreeConnectResponse
)
Smb2Body = (
    Smb2NegotiateRequest
    | Smb2NegotiateResponse
    | Smb2SessionSetupRequest
    | Smb2SessionSetupResponse
    | Smb2TreeConnectRequest
    | Smb2TreeConnectResponse
    | Smb2CreateRequest
    | Smb2CreateResponse
    | Smb2CloseRequest
    | Smb2CloseResponse
    | Smb2ReadRequest
    | Smb2ReadResponse
    | Smb2WriteRequest
    | Smb2WriteResponse
    | Smb2SetInfoRequest
    | Smb2SetInfoResponse
    | Smb2IoctlRequest
    | Smb2IoctlResponse
    | Smb2QueryDirectoryRequest
)


class Smb1Message(NamedTuple):
    """One SMB1 command; `body` is the decoded command when smbwatch decodes it, else None.

    A command chained behind another in the same message (AndX, [MS-CIFS] 2.2.3.4)
    comes as its own record whose header carries the chained command code and
    `chained` is True, so messages and commands can both be counted.
    """

    header: Smb1Header
    body: Smb1Body | None
    chained: bool = False


class Smb2Message(NamedTuple):
    """One SMB2 message of a (possibly compound) frame."""

    header: Smb2Header
    body: Smb2Body | None


@dataclass(frozen=True, slots=True)
class ZeroedMessageHeader:
    """A SESSION MESSAGE whose 60 bytes after the 4-byte protocol id are all zero.

    No SMB implementation sends one: a header of zeros has no command structure at all. EternalBlue's
    pool grooming opens connections with such a frame (protocol id 0xFE 'SMB' or arbitrary bytes,
    NetBIOS length 0x00FFF7) and never finishes it.
    """

    protocol_id: bytes
    frame_length: int


StreamEvent = (
    Smb1Message
    | Smb2Message
    | Smb2TransformHeader
    | Smb2CompressionTransformHeader
    | NetbiosSessionPacket
    | NetbiosSessionRequest
    | ZeroedMessageHeader
    | ReassemblyGap
    | Anomaly
)


# --- Authentication: NTLMSSP ([MS-NLMP]), SPNEGO (RFC 4178), Kerberos (RFC 4120) --------


@dataclass(frozen=True, slots=True)
class NtlmVersion:
    """[MS-NLMP] 2.2.2.10 VERSION: the sender's Windows version (a hint, not proof)."""

    major: int
    minor: int
    build: int
    ntlm_revision: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}"


@dataclass(frozen=True, slots=True)
class NtlmsspNegotiate:
    """[MS-NLMP] 2.2.1.1 NEGOTIATE_MESSAGE."""

    flags: int
    domain: str
    workstation: str
    version: NtlmVersion | None


@dataclass(frozen=True, slots=True)
class NtlmsspChallenge:
    """[MS-NLMP] 2.2.1.2 CHALLENGE_MESSAGE with the names of its TargetInfo AV pairs."""

    flags: int
    target_name: str
    nb_computer_name: str | None
    nb_domain_name: str | None
    dns_computer_name: str | None
    dns_domain_name: str | None
    dns_tree_name: str | None
    version: NtlmVersion | None


@dataclass(frozen=True, slots=True)
class NtlmsspAuthenticate:
    """[MS-NLMP] 2.2.1.3 AUTHENTICATE_MESSAGE. Only response lengths are kept, never the responses."""

    flags: int
    user: str
    domain: str
    workstation: str
    lm_response_length: int
    nt_response_length: int
    version: NtlmVersion | None

    @property
    def auth(self) -> str:
        """ntlmv2, ntlmv1 (any 24-byte NT response), lm (LM response only), anonymous or unknown."""
        if not self.user and self.nt_response_length == 0 and self.lm_response_length <= 1:
            return "anonymous"  # [MS-NLMP] 3.2.5.1.2: empty user and responses
        if self.nt_response_length > 24:
            return "ntlmv2"
        if self.nt_response_length == 24:
            return "ntlmv1"
        if self.nt_response_length == 0 and self.lm_response_length == 24:
            return "lm"
        return "unknown"


NtlmsspMessage = NtlmsspNegotiate | NtlmsspChallenge | NtlmsspAuthenticate


@dataclass(frozen=True, slots=True)
class KerberosApReq:
    """RFC 4120 5.5.1 KRB_AP_REQ as seen in SPNEGO: the ticket's realm, service and encryption type.

    The client principal is inside the encrypted authenticator: never visible on the wire.
    """

    realm: str
    service_principal: str
    ticket_etype: int
    authenticator_etype: int | None
    # What the AP-REQ was decoded despite (`kerberos_name_components_full`); SPNEGO carries them on.
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True, slots=True)
class SpnegoToken:
    """RFC 4178 NegTokenInit / NegTokenResp (and raw NTLMSSP blobs), reduced to what smbwatch reports.

    `anomalies` are what the token was decoded despite (a cap, a cut: `spnego.parse_security_blob`);
    the SMB1/SMB2 framing emits them as events after the message that carried the token.
    """

    kind: str  # "init", "response" or "raw"
    mech_types: tuple[str, ...]
    neg_state: int | None
    supported_mech: str | None
    ntlmssp: NtlmsspMessage | None
    kerberos: KerberosApReq | None
    anomalies: tuple[Anomaly, ...] = ()
