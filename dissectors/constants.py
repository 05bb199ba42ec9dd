"""Protocol constants, named as in [MS-SMB], [MS-CIFS], [MS-SMB2] and RFC 1002.

Every lookup of a value the specs do not define gives ``"unknown-0x…"``
(`enum_name`), never a ``KeyError``: the values come from the network.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from dissectors.nt_status import NT_STATUS_NAMES

SMB1_PROTOCOL_ID = b"\xffSMB"
SMB2_PROTOCOL_ID = b"\xfeSMB"
SMB2_TRANSFORM_PROTOCOL_ID = b"\xfdSMB"
SMB2_COMPRESSION_PROTOCOL_ID = b"\xfcSMB"

SMB_DIRECT_TCP_PORT = 445
NETBIOS_SESSION_PORT = 139
SMB_PORTS = frozenset((SMB_DIRECT_TCP_PORT, NETBIOS_SESSION_PORT))


def enum_name(enum_type: type[IntEnum], value: int, width: int = 4) -> str:
    """The spec name of `value`, or ``unknown-0x…`` with `width` hex digits."""
    try:
        return enum_type(value).name
    except ValueError:
        return f"unknown-0x{value:0{width}x}"


def flag_names(flag_type: type[IntFlag], value: int) -> list[str]:
    """Names of the bits set in `value`; undefined bits as ``unknown-0x…``."""
    table = _FLAG_TABLES.get(flag_type)
    if table is None:
        # Walking an IntFlag's members costs a descriptor call per member: do it once per type.
        table = _FLAG_TABLES[flag_type] = tuple((int(m.value), m.name or "") for m in flag_type if m.value)
    names = []
    known = 0
    for bits, name in table:
        if value & bits == bits:
            names.append(name)
            known |= bits
    rest = value & ~known
    if rest:
        names.append(f"unknown-0x{rest:x}")
    return names


_FLAG_TABLES: dict[type[IntFlag], tuple[tuple[int, str], ...]] = {}


class NetbiosSessionType(IntEnum):
    """RFC 1002 section 4.3.1: session service packet types."""

    SESSION_MESSAGE = 0x00
    SESSION_REQUEST = 0x81
    POSITIVE_SESSION_RESPONSE = 0x82
    NEGATIVE_SESSION_RESPONSE = 0x83
    RETARGET_SESSION_RESPONSE = 0x84
    SESSION_KEEP_ALIVE = 0x85


class Smb1Command(IntEnum):
    """[MS-CIFS] 2.2.2.1 SMB_COM codes."""

    SMB_COM_CREATE_DIRECTORY = 0x00
    SMB_COM_DELETE_DIRECTORY = 0x01
    SMB_COM_OPEN = 0x02
    SMB_COM_CREATE = 0x03
    SMB_COM_CLOSE = 0x04
    SMB_COM_FLUSH = 0x05
    SMB_COM_DELETE = 0x06
    SMB_COM_RENAME = 0x07
    SMB_COM_QUERY_INFORMATION = 0x08
    SMB_COM_SET_INFORMATION = 0x09
    SMB_COM_READ = 0x0A
    SMB_COM_WRITE = 0x0B
    SMB_COM_LOCK_BYTE_RANGE = 0x0C
    SMB_COM_UNLOCK_BYTE_RANGE = 0x0D
    SMB_COM_CREATE_TEMPORARY = 0x0E
    SMB_COM_CREATE_NEW = 0x0F
    SMB_COM_CHECK_DIRECTORY = 0x10
    SMB_COM_PROCESS_EXIT = 0x11
    SMB_COM_SEEK = 0x12
    SMB_COM_LOCK_AND_READ = 0x13
    SMB_COM_WRITE_AND_UNLOCK = 0x14
    SMB_COM_READ_RAW = 0x1A
    SMB_COM_READ_MPX = 0x1B
    SMB_COM_READ_MPX_SECONDARY = 0x1C
    SMB_COM_WRITE_RAW = 0x1D
    SMB_COM_WRITE_MPX = 0x1E
    SMB_COM_WRITE_MPX_SECONDARY = 0x1F
    SMB_COM_WRITE_COMPLETE = 0x20
    SMB_COM_QUERY_SERVER = 0x21
    SMB_COM_SET_INFORMATION2 = 0x22
    SMB_COM_QUERY_INFORMATION2 = 0x23
    SMB_COM_LOCKING_ANDX = 0x24
    SMB_COM_TRANSACTION = 0x25
    SMB_COM_TRANSACTION_SECONDARY = 0x26
    SMB_COM_IOCTL = 0x27
    SMB_COM_IOCTL_SECONDARY = 0x28
    SMB_COM_COPY = 0x29
    SMB_COM_MOVE = 0x2A
    SMB_COM_ECHO = 0x2B
    SMB_COM_WRITE_AND_CLOSE = 0x2C
    SMB_COM_OPEN_ANDX = 0x2D
    SMB_COM_READ_ANDX = 0x2E
    SMB_COM_WRITE_ANDX = 0x2F
    SMB_COM_NEW_FILE_SIZE = 0x30
    SMB_COM_CLOSE_AND_TREE_DISC = 0x31
    SMB_COM_TRANSACTION2 = 0x32
    SMB_COM_TRANSACTION2_SECONDARY = 0x33
    SMB_COM_FIND_CLOSE2 = 0x34
    SMB_COM_FIND_NOTIFY_CLOSE = 0x35
    SMB_COM_TREE_CONNECT = 0x70
    SMB_COM_TREE_DISCONNECT = 0x71
    SMB_COM_NEGOTIATE = 0x72
    SMB_COM_SESSION_SETUP_ANDX = 0x73
    SMB_COM_LOGOFF_ANDX = 0x74
    SMB_COM_TREE_CONNECT_ANDX = 0x75
    SMB_COM_SECURITY_PACKAGE_ANDX = 0x7E
    SMB_COM_QUERY_INFORMATION_DISK = 0x80
    SMB_COM_SEARCH = 0x81
    SMB_COM_FIND = 0x82
    SMB_COM_FIND_UNIQUE = 0x83
    SMB_COM_FIND_CLOSE = 0x84
    SMB_COM_NT_TRANSACT = 0xA0
    SMB_COM_NT_TRANSACT_SECONDARY = 0xA1
    SMB_COM_NT_CREATE_ANDX = 0xA2
    SMB_COM_NT_CANCEL = 0xA4
    SMB_COM_NT_RENAME = 0xA5
    SMB_COM_OPEN_PRINT_FILE = 0xC0
    SMB_COM_WRITE_PRINT_FILE = 0xC1
    SMB_COM_CLOSE_PRINT_FILE = 0xC2
    SMB_COM_GET_PRINT_QUEUE = 0xC3
    SMB_COM_READ_BULK = 0xD8
    SMB_COM_WRITE_BULK = 0xD9
    SMB_COM_WRITE_BULK_DATA = 0xDA
    SMB_COM_INVALID = 0xFE
    SMB_COM_NO_ANDX_COMMAND = 0xFF


_SMB1_COMMAND_NAMES = tuple(enum_name(Smb1Command, code, 2).removeprefix("SMB_COM_") for code in range(256))


def smb1_command_name(code: int) -> str:
    """Short SMB1 command name (``NEGOTIATE`` for ``SMB_COM_NEGOTIATE``)."""
    return _SMB1_COMMAND_NAMES[code] if 0 <= code < 256 else f"unknown-0x{code:x}"


class Smb1Flags(IntFlag):
    """[MS-CIFS] 2.2.3.1 SMB_Header.Flags."""

    SMB_FLAGS_LOCK_AND_READ_OK = 0x01
    SMB_FLAGS_BUF_AVAIL = 0x02
    SMB_FLAGS_CASE_INSENSITIVE = 0x08
    SMB_FLAGS_CANONICALIZED_PATHS = 0x10
    SMB_FLAGS_OPLOCK = 0x20
    SMB_FLAGS_OPBATCH = 0x40
    SMB_FLAGS_REPLY = 0x80


SMB1_FLAGS_REPLY = int(Smb1Flags.SMB_FLAGS_REPLY)


class Smb1Flags2(IntFlag):
    """[MS-CIFS] 2.2.3.1 and [MS-SMB] 2.2.3.1 SMB_Header.Flags2."""

    SMB_FLAGS2_LONG_NAMES = 0x0001
    SMB_FLAGS2_EAS = 0x0002
    SMB_FLAGS2_SMB_SECURITY_SIGNATURE = 0x0004
    SMB_FLAGS2_COMPRESSED = 0x0008
    SMB_FLAGS2_SMB_SECURITY_SIGNATURE_REQUIRED = 0x0010
    SMB_FLAGS2_IS_LONG_NAME = 0x0040
    SMB_FLAGS2_REPARSE_PATH = 0x0400
    SMB_FLAGS2_EXTENDED_SECURITY = 0x0800
    SMB_FLAGS2_DFS = 0x1000
    SMB_FLAGS2_PAGING_IO = 0x2000
    SMB_FLAGS2_NT_STATUS = 0x4000
    SMB_FLAGS2_UNICODE = 0x8000


class Smb1SecurityMode(IntFlag):
    """[MS-CIFS] 2.2.4.52.2 SMB_COM_NEGOTIATE response SecurityMode (NT LM 0.12)."""

    NEGOTIATE_USER_SECURITY = 0x01
    NEGOTIATE_ENCRYPT_PASSWORDS = 0x02
    NEGOTIATE_SECURITY_SIGNATURES_ENABLED = 0x04
    NEGOTIATE_SECURITY_SIGNATURES_REQUIRED = 0x08


class Smb1Capabilities(IntFlag):
    """[MS-CIFS] 2.2.4.52.2 and [MS-SMB] 2.2.4.5.2 server Capabilities."""

    CAP_RAW_MODE = 0x00000001
    CAP_MPX_MODE = 0x00000002
    CAP_UNICODE = 0x00000004
    CAP_LARGE_FILES = 0x00000008
    CAP_NT_SMBS = 0x00000010
    CAP_RPC_REMOTE_APIS = 0x00000020
    CAP_STATUS32 = 0x00000040
    CAP_LEVEL_II_OPLOCKS = 0x00000080
    CAP_LOCK_AND_READ = 0x00000100
    CAP_NT_FIND = 0x00000200
    CAP_DFS = 0x00001000
    CAP_INFOLEVEL_PASSTHRU = 0x00002000
    CAP_LARGE_READX = 0x00004000
    CAP_LARGE_WRITEX = 0x00008000
    CAP_LWIO = 0x00010000
    CAP_UNIX = 0x00800000
    CAP_COMPRESSED_DATA = 0x02000000
    CAP_DYNAMIC_REAUTH = 0x20000000
    CAP_PERSISTENT_HANDLES = 0x40000000
    CAP_EXTENDED_SECURITY = 0x80000000


# [MS-SMB2] 2.2.3: the SMB1 NEGOTIATE dialect strings that ask for SMB2 (multi-protocol negotiate).
SMB1_DIALECT_SMB_2_002 = "SMB 2.002"
SMB1_DIALECT_SMB_2_WILDCARD = "SMB 2.???"
SMB2_DIALECTS_IN_SMB1_NEGOTIATE = frozenset((SMB1_DIALECT_SMB_2_002, SMB1_DIALECT_SMB_2_WILDCARD))
SMB1_NO_DIALECT_SELECTED = 0xFFFF


class Smb2Command(IntEnum):
    """[MS-SMB2] 2.2.1.2 SMB2 header Command."""

    NEGOTIATE = 0x0000
    SESSION_SETUP = 0x0001
    LOGOFF = 0x0002
    TREE_CONNECT = 0x0003
    TREE_DISCONNECT = 0x0004
    CREATE = 0x0005
    CLOSE = 0x0006
    FLUSH = 0x0007
    READ = 0x0008
    WRITE = 0x0009
    LOCK = 0x000A
    IOCTL = 0x000B
    CANCEL = 0x000C
    ECHO = 0x000D
    QUERY_DIRECTORY = 0x000E
    CHANGE_NOTIFY = 0x000F
    QUERY_INFO = 0x0010
    SET_INFO = 0x0011
    OPLOCK_BREAK = 0x0012
    SERVER_TO_CLIENT_NOTIFICATION = 0x0013


def smb2_command_name(code: int) -> str:
    """SMB2 command name (``SESSION_SETUP``); ``unknown-0x…`` for codes [MS-SMB2] does not define."""
    return _SMB2_COMMAND_NAMES.get(code) or f"unknown-0x{code:04x}"


class Smb2Flags(IntFlag):
    """[MS-SMB2] 2.2.1.2 SMB2 header Flags."""

    SMB2_FLAGS_SERVER_TO_REDIR = 0x00000001
    SMB2_FLAGS_ASYNC_COMMAND = 0x00000002
    SMB2_FLAGS_RELATED_OPERATIONS = 0x00000004
    SMB2_FLAGS_SIGNED = 0x00000008
    SMB2_FLAGS_PRIORITY_MASK = 0x00000070
    SMB2_FLAGS_DFS_OPERATIONS = 0x10000000
    SMB2_FLAGS_REPLAY_OPERATION = 0x20000000


_SMB2_COMMAND_NAMES = {command.value: command.name for command in Smb2Command}
# Plain ints for the per-message hot path, where IntFlag arithmetic costs a microsecond.
SMB2_FLAGS_SERVER_TO_REDIR = int(Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR)
SMB2_FLAGS_ASYNC_COMMAND = int(Smb2Flags.SMB2_FLAGS_ASYNC_COMMAND)
SMB2_FLAGS_SIGNED = int(Smb2Flags.SMB2_FLAGS_SIGNED)


class Smb2Dialect(IntEnum):
    """[MS-SMB2] 2.2.3 Dialects; 0x02FF is the multi-protocol wildcard revision."""

    SMB2_0_2 = 0x0202
    SMB2_1 = 0x0210
    SMB2_2_2 = 0x0222  # pre-release name of 3.0, still seen from Windows 8 betas
    SMB2_2_4 = 0x0224
    SMB3_0 = 0x0300
    SMB3_0_2 = 0x0302
    SMB3_1_0 = 0x0310  # pre-release of 3.1.1 (Windows 10 previews)
    SMB3_1_1 = 0x0311
    SMB2_WILDCARD = 0x02FF


_SMB2_DIALECT_NAMES = {
    int(dialect): name
    for dialect, name in (
        (Smb2Dialect.SMB2_0_2, "2.0.2"),
        (Smb2Dialect.SMB2_1, "2.1"),
        (Smb2Dialect.SMB2_2_2, "2.2.2"),
        (Smb2Dialect.SMB2_2_4, "2.2.4"),
        (Smb2Dialect.SMB3_0, "3.0"),
        (Smb2Dialect.SMB3_0_2, "3.0.2"),
        (Smb2Dialect.SMB3_1_0, "3.1"),
        (Smb2Dialect.SMB3_1_1, "3.1.1"),
        (Smb2Dialect.SMB2_WILDCARD, "2.???"),
    )
}


def smb2_dialect_name(revision: int) -> str:
    """``"3.1.1"`` for 0x0311; ``"unknown-0x…"`` for revisions the spec does not define."""
    return _SMB2_DIALECT_NAMES.get(revision) or f"unknown-0x{revision:04x}"


class Smb2SecurityMode(IntFlag):
    """[MS-SMB2] 2.2.3 / 2.2.4 SecurityMode."""

    SMB2_NEGOTIATE_SIGNING_ENABLED = 0x0001
    SMB2_NEGOTIATE_SIGNING_REQUIRED = 0x0002


class Smb2GlobalCapabilities(IntFlag):
    """[MS-SMB2] 2.2.3 / 2.2.4 Capabilities."""

    SMB2_GLOBAL_CAP_DFS = 0x00000001
    SMB2_GLOBAL_CAP_LEASING = 0x00000002
    SMB2_GLOBAL_CAP_LARGE_MTU = 0x00000004
    SMB2_GLOBAL_CAP_MULTI_CHANNEL = 0x00000008
    SMB2_GLOBAL_CAP_PERSISTENT_HANDLES = 0x00000010
    SMB2_GLOBAL_CAP_DIRECTORY_LEASING = 0x00000020
    SMB2_GLOBAL_CAP_ENCRYPTION = 0x00000040
    SMB2_GLOBAL_CAP_NOTIFICATIONS = 0x00000080


class Smb2NegotiateContextType(IntEnum):
    """[MS-SMB2] 2.2.3.1 NEGOTIATE_CONTEXT ContextType."""

    SMB2_PREAUTH_INTEGRITY_CAPABILITIES = 0x0001
    SMB2_ENCRYPTION_CAPABILITIES = 0x0002
    SMB2_COMPRESSION_CAPABILITIES = 0x0003
    SMB2_NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005
    SMB2_TRANSPORT_CAPABILITIES = 0x0006
    SMB2_RDMA_TRANSFORM_CAPABILITIES = 0x0007
    SMB2_SIGNING_CAPABILITIES = 0x0008
    SMB2_CONTEXTTYPE_RESERVED = 0x0100


class Smb2HashAlgorithm(IntEnum):
    """[MS-SMB2] 2.2.3.1.1 HashAlgorithms."""

    SHA_512 = 0x0001


class Smb2Cipher(IntEnum):
    """[MS-SMB2] 2.2.3.1.2 Ciphers."""

    NO_CIPHER = 0x0000  # server response only: no common cipher
    AES_128_CCM = 0x0001
    AES_128_GCM = 0x0002
    AES_256_CCM = 0x0003
    AES_256_GCM = 0x0004


class Smb2CompressionAlgorithm(IntEnum):
    """[MS-SMB2] 2.2.3.1.3 CompressionAlgorithms."""

    NONE = 0x0000
    LZNT1 = 0x0001
    LZ77 = 0x0002
    LZ77_HUFFMAN = 0x0003
    PATTERN_V1 = 0x0004
    LZ4 = 0x0005


class Smb2SigningAlgorithm(IntEnum):
    """[MS-SMB2] 2.2.3.1.7 SigningAlgorithms."""

    HMAC_SHA256 = 0x0000
    AES_CMAC = 0x0001
    AES_GMAC = 0x0002


class Smb2RdmaTransformId(IntEnum):
    """[MS-SMB2] 2.2.3.1.6 RDMATransformIds."""

    SMB2_RDMA_TRANSFORM_NONE = 0x0000
    SMB2_RDMA_TRANSFORM_ENCRYPTION = 0x0001
    SMB2_RDMA_TRANSFORM_SIGNING = 0x0002


class NtStatus(IntEnum):
    """The NTSTATUS values smbwatch's code refers to by name ([MS-ERREF] 2.3.1), and the SMB1
    DOS-class error codes ([MS-CIFS] 2.2.2.4) seen in place of an NTSTATUS. Every other value is
    named from the generated full table (dissectors/nt_status.py)."""

    STATUS_SUCCESS = 0x00000000
    STATUS_PENDING = 0x00000103
    STATUS_NOTIFY_ENUM_DIR = 0x0000010C
    STATUS_BUFFER_OVERFLOW = 0x80000005
    STATUS_NO_MORE_FILES = 0x80000006
    STATUS_UNSUCCESSFUL = 0xC0000001
    STATUS_NOT_IMPLEMENTED = 0xC0000002
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_NO_SUCH_FILE = 0xC000000F
    STATUS_END_OF_FILE = 0xC0000011
    STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
    STATUS_ACCESS_DENIED = 0xC0000022
    STATUS_BUFFER_TOO_SMALL = 0xC0000023
    STATUS_OBJECT_NAME_INVALID = 0xC0000033
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
    STATUS_OBJECT_NAME_COLLISION = 0xC0000035
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000003A
    STATUS_SHARING_VIOLATION = 0xC0000043
    STATUS_EAS_NOT_SUPPORTED = 0xC000004F
    STATUS_NO_SUCH_USER = 0xC0000064
    STATUS_WRONG_PASSWORD = 0xC000006A
    STATUS_LOGON_FAILURE = 0xC000006D
    STATUS_ACCOUNT_RESTRICTION = 0xC000006E
    STATUS_INVALID_LOGON_HOURS = 0xC000006F
    STATUS_INVALID_WORKSTATION = 0xC0000070
    STATUS_PASSWORD_EXPIRED = 0xC0000071
    STATUS_ACCOUNT_DISABLED = 0xC0000072
    STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
    STATUS_FILE_IS_A_DIRECTORY = 0xC00000BA
    STATUS_NOT_SUPPORTED = 0xC00000BB
    STATUS_NETWORK_NAME_DELETED = 0xC00000C9
    STATUS_BAD_NETWORK_NAME = 0xC00000CC
    STATUS_REQUEST_NOT_ACCEPTED = 0xC00000D0
    STATUS_NOT_A_DIRECTORY = 0xC0000103
    STATUS_CANCELLED = 0xC0000120
    STATUS_FILE_CLOSED = 0xC0000128
    STATUS_LOGON_TYPE_NOT_GRANTED = 0xC000015B
    STATUS_ACCOUNT_EXPIRED = 0xC0000193
    STATUS_PASSWORD_MUST_CHANGE = 0xC0000224
    STATUS_NOT_FOUND = 0xC0000225
    STATUS_ACCOUNT_LOCKED_OUT = 0xC0000234
    STATUS_INSUFF_SERVER_RESOURCES = 0xC0000205
    STATUS_USER_SESSION_DELETED = 0xC0000203
    STATUS_NETWORK_SESSION_EXPIRED = 0xC000035C
    STATUS_SMB_BAD_COMMAND = 0x00160002
    STATUS_INVALID_SMB = 0x00010002
    STATUS_SMB_BAD_TID = 0x00050002
    STATUS_SMB_BAD_UID = 0x005B0002
    STATUS_OS2_INVALID_ACCESS = 0x000C0001


def nt_status_name(status: int) -> str:
    """``STATUS_…`` name of an NTSTATUS ([MS-ERREF] 2.3.1 table), ``unknown-0x…`` (8 digits) otherwise."""
    return NT_STATUS_NAMES.get(status) or enum_name(NtStatus, status, 8)


class RapOpcode(IntEnum):
    """[MS-RAP] 2.5.4 RAP command operation codes: the first word of a TRANSACTION's parameters
    on \\PIPE\\LANMAN (network browsing and remote administration of LAN Manager era)."""

    NetShareEnum = 0x0000
    NetShareGetInfo = 0x0001
    NetServerGetInfo = 0x000D
    NetUserGetInfo = 0x0038
    NetWkstaGetInfo = 0x003F
    NetPrintQEnum = 0x0045
    NetPrintQGetInfo = 0x0046
    NetPrintJobGetInfo = 0x004D
    NetPrintJobDelete = 0x0051
    NetPrintJobPause = 0x0052
    NetPrintJobContinue = 0x0053
    NetRemoteTOD = 0x005B
    NetServerEnum2 = 0x0068
    NetUserPasswordSet2 = 0x0073
    NetWkstaUserLogon = 0x0084
    NetWkstaUserLogoff = 0x0085
    NetPrintJobSetInfo = 0x0093
    NetServerEnum3 = 0x00D7


# [MS-CIFS] 2.2.4.33.1: the Name of a TRANSACTION that carries RAP ([MS-RAP] 2.5.1).
RAP_PIPE_NAME = "\\PIPE\\LANMAN"


# --- SMB1 file and named-pipe activity ([MS-CIFS] 2.2.4, 2.2.5, 2.2.6; [MS-SMB] 2.2.4, 2.2.2.3.5) ---------


class Smb1CreateDisposition(IntEnum):
    """[MS-CIFS] 2.2.4.64.1 SMB_COM_NT_CREATE_ANDX CreateDisposition: what to do if the file exists or not."""

    FILE_SUPERSEDE = 0x00000000
    FILE_OPEN = 0x00000001
    FILE_CREATE = 0x00000002
    FILE_OPEN_IF = 0x00000003
    FILE_OVERWRITE = 0x00000004
    FILE_OVERWRITE_IF = 0x00000005


class Smb1CreateAction(IntEnum):
    """[MS-CIFS] 2.2.4.64.2 SMB_COM_NT_CREATE_ANDX response CreateDisposition: what the server did."""

    FILE_SUPERSEDED = 0x00000000
    FILE_OPENED = 0x00000001
    FILE_CREATED = 0x00000002
    FILE_OVERWRITTEN = 0x00000003


class Smb1CreateOptions(IntFlag):
    """[MS-CIFS] 2.2.4.64.1 SMB_COM_NT_CREATE_ANDX CreateOptions."""

    FILE_DIRECTORY_FILE = 0x00000001
    FILE_WRITE_THROUGH = 0x00000002
    FILE_SEQUENTIAL_ONLY = 0x00000004
    FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
    FILE_SYNCHRONOUS_IO_ALERT = 0x00000010
    FILE_SYNCHRONOUS_IO_NONALERT = 0x00000020
    FILE_NON_DIRECTORY_FILE = 0x00000040
    FILE_CREATE_TREE_CONNECTION = 0x00000080
    FILE_COMPLETE_IF_OPLOCKED = 0x00000100
    FILE_NO_EA_KNOWLEDGE = 0x00000200
    FILE_OPEN_FOR_RECOVERY = 0x00000400
    FILE_RANDOM_ACCESS = 0x00000800
    FILE_DELETE_ON_CLOSE = 0x00001000
    FILE_OPEN_BY_FILE_ID = 0x00002000
    FILE_OPEN_FOR_BACKUP_INTENT = 0x00004000
    FILE_NO_COMPRESSION = 0x00008000
    FILE_RESERVE_OPFILTER = 0x00100000
    FILE_OPEN_REPARSE_POINT = 0x00200000
    FILE_OPEN_NO_RECALL = 0x00400000
    FILE_OPEN_FOR_FREE_SPACE_QUERY = 0x00800000


class Smb1ShareAccess(IntFlag):
    """[MS-CIFS] 2.2.4.64.1 SMB_COM_NT_CREATE_ANDX ShareAccess."""

    FILE_SHARE_READ = 0x00000001
    FILE_SHARE_WRITE = 0x00000002
    FILE_SHARE_DELETE = 0x00000004


class Smb1ExtFileAttributes(IntFlag):
    """[MS-CIFS] 2.2.1.2.3 SMB_EXT_FILE_ATTR (ExtFileAttributes of NT_CREATE_ANDX)."""

    ATTR_READONLY = 0x00000001
    ATTR_HIDDEN = 0x00000002
    ATTR_SYSTEM = 0x00000004
    ATTR_DIRECTORY = 0x00000010
    ATTR_ARCHIVE = 0x00000020
    ATTR_NORMAL = 0x00000080
    ATTR_TEMPORARY = 0x00000100
    ATTR_SPARSE = 0x00000200
    ATTR_REPARSE_POINT = 0x00000400
    ATTR_COMPRESSED = 0x00000800
    ATTR_OFFLINE = 0x00001000
    ATTR_NOT_CONTENT_INDEXED = 0x00002000
    ATTR_ENCRYPTED = 0x00004000
    POSIX_SEMANTICS = 0x01000000
    BACKUP_SEMANTICS = 0x02000000
    DELETE_ON_CLOSE = 0x04000000
    SEQUENTIAL_SCAN = 0x08000000
    RANDOM_ACCESS = 0x10000000
    NO_BUFFERING = 0x20000000
    WRITE_THROUGH = 0x80000000


class Smb1FileAttributes(IntFlag):
    """[MS-CIFS] 2.2.1.2.4 SMB_FILE_ATTRIBUTES (SearchAttributes, OPEN_ANDX FileAttrs)."""

    SMB_FILE_ATTRIBUTE_READONLY = 0x0001
    SMB_FILE_ATTRIBUTE_HIDDEN = 0x0002
    SMB_FILE_ATTRIBUTE_SYSTEM = 0x0004
    SMB_FILE_ATTRIBUTE_VOLUME = 0x0008
    SMB_FILE_ATTRIBUTE_DIRECTORY = 0x0010
    SMB_FILE_ATTRIBUTE_ARCHIVE = 0x0020
    SMB_SEARCH_ATTRIBUTE_READONLY = 0x0100
    SMB_SEARCH_ATTRIBUTE_HIDDEN = 0x0200
    SMB_SEARCH_ATTRIBUTE_SYSTEM = 0x0400
    SMB_SEARCH_ATTRIBUTE_DIRECTORY = 0x1000
    SMB_SEARCH_ATTRIBUTE_ARCHIVE = 0x2000


class Smb1ResourceType(IntEnum):
    """[MS-CIFS] 2.2.4.64.2 / 2.2.4.41.2 ResourceType of an open."""

    FileTypeDisk = 0x0000
    FileTypeByteModePipe = 0x0001
    FileTypeMessageModePipe = 0x0002
    FileTypePrinter = 0x0003
    FileTypeUnknown = 0xFFFF


class Smb1OpenAction(IntEnum):
    """[MS-CIFS] 2.2.4.41.2 SMB_COM_OPEN_ANDX response OpenResults (low bits; 0x8000 is the lock bit)."""

    FILE_EXISTED_AND_OPENED = 0x0001
    FILE_DID_NOT_EXIST_AND_CREATED = 0x0002
    FILE_EXISTED_AND_TRUNCATED = 0x0003


SMB1_OPEN_RESULT_LOCKED = 0x8000  # [MS-CIFS] 2.2.4.41.2 OpenResults: opened by this client only (oplocked)
SMB1_OPEN_ACTION_MASK = 0x0003


class Smb1WriteMode(IntFlag):
    """[MS-CIFS] 2.2.4.43.1 SMB_COM_WRITE_ANDX WriteMode."""

    WritethroughMode = 0x0001
    ReadBytesAvailable = 0x0002
    RAW_MODE = 0x0004
    MSG_START = 0x0008


class Smb1NtRenameLevel(IntEnum):
    """[MS-CIFS] 2.2.4.66.1 SMB_COM_NT_RENAME InformationLevel."""

    SMB_NT_RENAME_SET_LINK_INFO = 0x0103
    SMB_NT_RENAME_RENAME_FILE = 0x0104
    SMB_NT_RENAME_MOVE_FILE = 0x0105


SMB1_BUFFER_FORMAT_ASCII = 0x04  # [MS-CIFS] 2.2.1.1.1 BufferFormat before an SMB_STRING in the data bytes


class Smb1NamedPipeFunction(IntEnum):
    """[MS-CIFS] 2.2.5 Setup[0] of an SMB_COM_TRANSACTION to \\PIPE\\ (named-pipe subcommands).

    TRANS_MAILSLOT_WRITE (0x0001 too) is the only mailslot subcommand; it goes to \\MAILSLOT\\ names.
    """

    TRANS_SET_NMPIPE_STATE = 0x0001
    TRANS_RAW_READ_NMPIPE = 0x0011
    TRANS_QUERY_NMPIPE_STATE = 0x0021
    TRANS_QUERY_NMPIPE_INFO = 0x0022
    TRANS_PEEK_NMPIPE = 0x0023
    TRANS_TRANSACT_NMPIPE = 0x0026
    TRANS_RAW_WRITE_NMPIPE = 0x0031
    TRANS_READ_NMPIPE = 0x0036
    TRANS_WRITE_NMPIPE = 0x0037
    TRANS_WAIT_NMPIPE = 0x0053
    TRANS_CALL_NMPIPE = 0x0054


# [MS-CIFS] 2.2.5.10, 2.2.5.11: these two name the pipe in Name and carry a Priority in Setup[1], not a FID.
SMB1_PIPE_FUNCTIONS_WITHOUT_FID = frozenset(
    (int(Smb1NamedPipeFunction.TRANS_WAIT_NMPIPE), int(Smb1NamedPipeFunction.TRANS_CALL_NMPIPE))
)
SMB1_PIPE_PREFIX = "\\PIPE\\"  # [MS-CIFS] 2.2.4.33.1 Name of a named-pipe transaction (case-insensitive)


class Smb1Trans2Subcommand(IntEnum):
    """[MS-CIFS] 2.2.6 SMB_COM_TRANSACTION2 subcommand codes (Setup[0])."""

    TRANS2_OPEN2 = 0x0000
    TRANS2_FIND_FIRST2 = 0x0001
    TRANS2_FIND_NEXT2 = 0x0002
    TRANS2_QUERY_FS_INFORMATION = 0x0003
    TRANS2_SET_FS_INFORMATION = 0x0004
    TRANS2_QUERY_PATH_INFORMATION = 0x0005
    TRANS2_SET_PATH_INFORMATION = 0x0006
    TRANS2_QUERY_FILE_INFORMATION = 0x0007
    TRANS2_SET_FILE_INFORMATION = 0x0008
    TRANS2_FSCTL = 0x0009
    TRANS2_IOCTL2 = 0x000A
    TRANS2_FIND_NOTIFY_FIRST = 0x000B
    TRANS2_FIND_NOTIFY_NEXT = 0x000C
    TRANS2_CREATE_DIRECTORY = 0x000D
    TRANS2_SESSION_SETUP = 0x000E
    TRANS2_GET_DFS_REFERRAL = 0x0010
    TRANS2_REPORT_DFS_INCONSISTENCY = 0x0011


# [MS-SMB] 2.2.2.3.5: an information level of 1000 + FileInformationClass ([MS-FSCC] 2.4) passes the
# native structure through (CAP_INFOLEVEL_PASSTHRU).
SMB_INFO_PASSTHROUGH = 0x03E8


class Smb1SetInformationLevel(IntEnum):
    """[MS-CIFS] 2.2.2.3.4 TRANS2_SET_PATH/FILE_INFORMATION levels, and the [MS-SMB] 2.2.2.3.5 pass-through
    levels smbwatch decodes (1000 + [MS-FSCC] 2.4 FileInformationClass)."""

    SMB_INFO_STANDARD = 0x0001
    SMB_INFO_SET_EAS = 0x0002
    SMB_SET_FILE_BASIC_INFO = 0x0101
    SMB_SET_FILE_DISPOSITION_INFO = 0x0102
    SMB_SET_FILE_ALLOCATION_INFO = 0x0103
    SMB_SET_FILE_END_OF_FILE_INFO = 0x0104
    FileBasicInformation = SMB_INFO_PASSTHROUGH + 4
    FileRenameInformation = SMB_INFO_PASSTHROUGH + 10
    FileLinkInformation = SMB_INFO_PASSTHROUGH + 11
    FileDispositionInformation = SMB_INFO_PASSTHROUGH + 13
    FileAllocationInformation = SMB_INFO_PASSTHROUGH + 19
    FileEndOfFileInformation = SMB_INFO_PASSTHROUGH + 20
    FileDispositionInformationEx = SMB_INFO_PASSTHROUGH + 64


FILE_DISPOSITION_DELETE = 0x00000001  # [MS-FSCC] 2.4.12 FileDispositionInformationEx Flags
