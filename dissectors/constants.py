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


# --- SMB2 file and pipe commands ([MS-SMB2] 2.2.13 - 2.2.40, [MS-FSCC]) -------------------


class Smb2OplockLevel(IntEnum):
    """[MS-SMB2] 2.2.13 RequestedOplockLevel / 2.2.14 OplockLevel."""

    SMB2_OPLOCK_LEVEL_NONE = 0x00
    SMB2_OPLOCK_LEVEL_II = 0x01
    SMB2_OPLOCK_LEVEL_EXCLUSIVE = 0x08
    SMB2_OPLOCK_LEVEL_BATCH = 0x09
    SMB2_OPLOCK_LEVEL_LEASE = 0xFF


class Smb2ImpersonationLevel(IntEnum):
    """[MS-SMB2] 2.2.13 ImpersonationLevel."""

    Anonymous = 0x00000000
    Identification = 0x00000001
    Impersonation = 0x00000002
    Delegate = 0x00000003


class Smb2AccessMask(IntFlag):
    """[MS-SMB2] 2.2.13.1.1 File_Pipe_Printer_Access_Mask (DesiredAccess of a file, pipe or printer).

    A directory's mask (2.2.13.1.2) uses the same bits under other names (FILE_LIST_DIRECTORY is
    FILE_READ_DATA, FILE_ADD_FILE is FILE_WRITE_DATA, FILE_TRAVERSE is FILE_EXECUTE ...)."""

    FILE_READ_DATA = 0x00000001
    FILE_WRITE_DATA = 0x00000002
    FILE_APPEND_DATA = 0x00000004
    FILE_READ_EA = 0x00000008
    FILE_WRITE_EA = 0x00000010
    FILE_EXECUTE = 0x00000020
    FILE_DELETE_CHILD = 0x00000040
    FILE_READ_ATTRIBUTES = 0x00000080
    FILE_WRITE_ATTRIBUTES = 0x00000100
    DELETE = 0x00010000
    READ_CONTROL = 0x00020000
    WRITE_DAC = 0x00040000
    WRITE_OWNER = 0x00080000
    SYNCHRONIZE = 0x00100000
    ACCESS_SYSTEM_SECURITY = 0x01000000
    MAXIMUM_ALLOWED = 0x02000000
    GENERIC_ALL = 0x10000000
    GENERIC_EXECUTE = 0x20000000
    GENERIC_WRITE = 0x40000000
    GENERIC_READ = 0x80000000


class FileAttributes(IntFlag):
    """[MS-FSCC] 2.6 File Attributes."""

    FILE_ATTRIBUTE_READONLY = 0x00000001
    FILE_ATTRIBUTE_HIDDEN = 0x00000002
    FILE_ATTRIBUTE_SYSTEM = 0x00000004
    FILE_ATTRIBUTE_DIRECTORY = 0x00000010
    FILE_ATTRIBUTE_ARCHIVE = 0x00000020
    FILE_ATTRIBUTE_NORMAL = 0x00000080
    FILE_ATTRIBUTE_TEMPORARY = 0x00000100
    FILE_ATTRIBUTE_SPARSE_FILE = 0x00000200
    FILE_ATTRIBUTE_REPARSE_POINT = 0x00000400
    FILE_ATTRIBUTE_COMPRESSED = 0x00000800
    FILE_ATTRIBUTE_OFFLINE = 0x00001000
    FILE_ATTRIBUTE_NOT_CONTENT_INDEXED = 0x00002000
    FILE_ATTRIBUTE_ENCRYPTED = 0x00004000
    FILE_ATTRIBUTE_INTEGRITY_STREAM = 0x00008000
    FILE_ATTRIBUTE_NO_SCRUB_DATA = 0x00020000
    FILE_ATTRIBUTE_RECALL_ON_OPEN = 0x00040000
    FILE_ATTRIBUTE_PINNED = 0x00080000
    FILE_ATTRIBUTE_UNPINNED = 0x00100000
    FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS = 0x00400000


class Smb2ShareAccess(IntFlag):
    """[MS-SMB2] 2.2.13 ShareAccess."""

    FILE_SHARE_READ = 0x00000001
    FILE_SHARE_WRITE = 0x00000002
    FILE_SHARE_DELETE = 0x00000004


class Smb2CreateDisposition(IntEnum):
    """[MS-SMB2] 2.2.13 CreateDisposition: what to do if the file does / does not exist."""

    FILE_SUPERSEDE = 0x00000000
    FILE_OPEN = 0x00000001
    FILE_CREATE = 0x00000002
    FILE_OPEN_IF = 0x00000003
    FILE_OVERWRITE = 0x00000004
    FILE_OVERWRITE_IF = 0x00000005


class Smb2CreateOptions(IntFlag):
    """[MS-SMB2] 2.2.13 CreateOptions."""

    FILE_DIRECTORY_FILE = 0x00000001
    FILE_WRITE_THROUGH = 0x00000002
    FILE_SEQUENTIAL_ONLY = 0x00000004
    FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
    FILE_SYNCHRONOUS_IO_ALERT = 0x00000010
    FILE_SYNCHRONOUS_IO_NONALERT = 0x00000020
    FILE_NON_DIRECTORY_FILE = 0x00000040
    FILE_COMPLETE_IF_OPLOCKED = 0x00000100
    FILE_NO_EA_KNOWLEDGE = 0x00000200
    FILE_OPEN_REMOTE_INSTANCE = 0x00000400
    FILE_RANDOM_ACCESS = 0x00000800
    FILE_DELETE_ON_CLOSE = 0x00001000
    FILE_OPEN_BY_FILE_ID = 0x00002000
    FILE_OPEN_FOR_BACKUP_INTENT = 0x00004000
    FILE_NO_COMPRESSION = 0x00008000
    FILE_OPEN_REQUIRING_OPLOCK = 0x00010000
    FILE_DISALLOW_EXCLUSIVE = 0x00020000
    FILE_RESERVE_OPFILTER = 0x00100000
    FILE_OPEN_REPARSE_POINT = 0x00200000
    FILE_OPEN_NO_RECALL = 0x00400000
    FILE_OPEN_FOR_FREE_SPACE_QUERY = 0x00800000


class Smb2CreateAction(IntEnum):
    """[MS-SMB2] 2.2.14 CreateAction."""

    FILE_SUPERSEDED = 0x00000000
    FILE_OPENED = 0x00000001
    FILE_CREATED = 0x00000002
    FILE_OVERWRITTEN = 0x00000003


class Smb2CreateContextName(IntEnum):
    """[MS-SMB2] 2.2.13.2 create context names of four ASCII characters, as the 32-bit big-endian
    value of those bytes (the GUID-named ones, e.g. SMB2_CREATE_APP_INSTANCE_ID, are 16 bytes long)."""

    SMB2_CREATE_EA_BUFFER = 0x45787441  # "ExtA"
    SMB2_CREATE_SD_BUFFER = 0x53656344  # "SecD"
    SMB2_CREATE_DURABLE_HANDLE_REQUEST = 0x44486E51  # "DHnQ"
    SMB2_CREATE_DURABLE_HANDLE_RECONNECT = 0x44486E43  # "DHnC"
    SMB2_CREATE_ALLOCATION_SIZE = 0x416C5369  # "AlSi"
    SMB2_CREATE_QUERY_MAXIMAL_ACCESS_REQUEST = 0x4D784163  # "MxAc"
    SMB2_CREATE_TIMEWARP_TOKEN = 0x54577270  # "TWrp"
    SMB2_CREATE_QUERY_ON_DISK_ID = 0x51466964  # "QFid"
    SMB2_CREATE_REQUEST_LEASE = 0x52714C73  # "RqLs" (v1 and v2 share the name)
    SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2 = 0x44483251  # "DH2Q"
    SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2 = 0x44483243  # "DH2C"


class Smb2CloseFlags(IntFlag):
    """[MS-SMB2] 2.2.15 CLOSE Request Flags."""

    SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB = 0x0001


class Smb2ReadFlags(IntFlag):
    """[MS-SMB2] 2.2.19 READ Request Flags."""

    SMB2_READFLAG_READ_UNBUFFERED = 0x01
    SMB2_READFLAG_REQUEST_COMPRESSED = 0x02


class Smb2WriteFlags(IntFlag):
    """[MS-SMB2] 2.2.21 WRITE Request Flags."""

    SMB2_WRITEFLAG_WRITE_THROUGH = 0x00000001
    SMB2_WRITEFLAG_WRITE_UNBUFFERED = 0x00000002


class Smb2Channel(IntEnum):
    """[MS-SMB2] 2.2.19 / 2.2.21 Channel."""

    SMB2_CHANNEL_NONE = 0x00000000
    SMB2_CHANNEL_RDMA_V1 = 0x00000001
    SMB2_CHANNEL_RDMA_V1_INVALIDATE = 0x00000002
    SMB2_CHANNEL_RDMA_TRANSFORM = 0x00000003


class Smb2IoctlFlags(IntFlag):
    """[MS-SMB2] 2.2.31 IOCTL Request Flags."""

    SMB2_0_IOCTL_IS_FSCTL = 0x00000001


class FsctlCode(IntEnum):
    """[MS-SMB2] 2.2.31 CtlCode and the [MS-FSCC] 2.3 FSCTLs a client sends through it."""

    FSCTL_DFS_GET_REFERRALS = 0x00060194
    FSCTL_DFS_GET_REFERRALS_EX = 0x000601B0
    FSCTL_IS_PATHNAME_VALID = 0x0009002C
    FSCTL_GET_COMPRESSION = 0x0009003C
    FSCTL_FILESYSTEM_GET_STATISTICS = 0x00090060
    FSCTL_GET_NTFS_VOLUME_DATA = 0x00090064
    FSCTL_GET_RETRIEVAL_POINTERS = 0x00090073
    FSCTL_FIND_FILES_BY_SID = 0x0009008F
    FSCTL_SET_OBJECT_ID = 0x00090098
    FSCTL_GET_OBJECT_ID = 0x0009009C
    FSCTL_DELETE_OBJECT_ID = 0x000900A0
    FSCTL_SET_REPARSE_POINT = 0x000900A4
    FSCTL_GET_REPARSE_POINT = 0x000900A8
    FSCTL_DELETE_REPARSE_POINT = 0x000900AC
    FSCTL_SET_OBJECT_ID_EXTENDED = 0x000900BC
    FSCTL_CREATE_OR_GET_OBJECT_ID = 0x000900C0
    FSCTL_SET_SPARSE = 0x000900C4
    FSCTL_READ_FILE_USN_DATA = 0x000900EB
    FSCTL_WRITE_USN_CLOSE_RECORD = 0x000900EF
    FSCTL_GET_INTEGRITY_INFORMATION = 0x0009027C
    FSCTL_QUERY_FILE_REGIONS = 0x00090284
    FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT = 0x00090300
    FSCTL_SVHDX_SYNC_TUNNEL_REQUEST = 0x00090304
    FSCTL_QUERY_ALLOCATED_RANGES = 0x000940CF
    FSCTL_OFFLOAD_READ = 0x00094264
    FSCTL_SET_ZERO_DATA = 0x000980C8
    FSCTL_FILE_LEVEL_TRIM = 0x00098208
    FSCTL_OFFLOAD_WRITE = 0x00098268
    FSCTL_DUPLICATE_EXTENTS_TO_FILE = 0x00098344
    FSCTL_SET_COMPRESSION = 0x0009C040
    FSCTL_SET_INTEGRITY_INFORMATION = 0x0009C280
    FSCTL_PIPE_WAIT = 0x00110018
    FSCTL_PIPE_PEEK = 0x0011400C
    FSCTL_PIPE_TRANSCEIVE = 0x0011C017
    FSCTL_SRV_REQUEST_RESUME_KEY = 0x00140078
    FSCTL_LMR_REQUEST_RESILIENCY = 0x001401D4
    FSCTL_QUERY_NETWORK_INTERFACE_INFO = 0x001401FC
    FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204
    FSCTL_SRV_ENUMERATE_SNAPSHOTS = 0x00144064
    FSCTL_SRV_COPYCHUNK = 0x001440F2
    FSCTL_SRV_READ_HASH = 0x001441BB
    FSCTL_SRV_COPYCHUNK_WRITE = 0x001480F2


def fsctl_name(code: int) -> str:
    """``FSCTL_PIPE_TRANSCEIVE`` for 0x0011C017; ``unknown-0x…`` (8 hex digits) otherwise."""
    return enum_name(FsctlCode, code, 8)


class Smb2InfoType(IntEnum):
    """[MS-SMB2] 2.2.37 / 2.2.39 InfoType."""

    SMB2_0_INFO_FILE = 0x01
    SMB2_0_INFO_FILESYSTEM = 0x02
    SMB2_0_INFO_SECURITY = 0x03
    SMB2_0_INFO_QUOTA = 0x04


class FileInformationClass(IntEnum):
    """[MS-FSCC] 2.4 file information classes (SET_INFO / QUERY_INFO FileInfoClass with
    SMB2_0_INFO_FILE, and QUERY_DIRECTORY FileInformationClass)."""

    FileDirectoryInformation = 1
    FileFullDirectoryInformation = 2
    FileBothDirectoryInformation = 3
    FileBasicInformation = 4
    FileStandardInformation = 5
    FileInternalInformation = 6
    FileEaInformation = 7
    FileAccessInformation = 8
    FileNameInformation = 9
    FileRenameInformation = 10
    FileLinkInformation = 11
    FileNamesInformation = 12
    FileDispositionInformation = 13
    FilePositionInformation = 14
    FileFullEaInformation = 15
    FileModeInformation = 16
    FileAlignmentInformation = 17
    FileAllInformation = 18
    FileAllocationInformation = 19
    FileEndOfFileInformation = 20
    FileAlternateNameInformation = 21
    FileStreamInformation = 22
    FilePipeInformation = 23
    FilePipeLocalInformation = 24
    FilePipeRemoteInformation = 25
    FileCompressionInformation = 28
    FileObjectIdInformation = 29
    FileQuotaInformation = 32
    FileReparsePointInformation = 33
    FileNetworkOpenInformation = 34
    FileAttributeTagInformation = 35
    FileIdBothDirectoryInformation = 37
    FileIdFullDirectoryInformation = 38
    FileValidDataLengthInformation = 39
    FileShortNameInformation = 40
    FileNormalizedNameInformation = 48
    FileIdInformation = 59
    FileIdExtdDirectoryInformation = 60
    FileDispositionInformationEx = 64
    FileRenameInformationEx = 65


class FileDispositionFlags(IntFlag):
    """[MS-FSCC] 2.4.12 FILE_DISPOSITION_INFORMATION_EX Flags (0 is FILE_DISPOSITION_DO_NOT_DELETE)."""

    FILE_DISPOSITION_DELETE = 0x00000001
    FILE_DISPOSITION_POSIX_SEMANTICS = 0x00000002
    FILE_DISPOSITION_FORCE_IMAGE_SECTION_CHECK = 0x00000004
    FILE_DISPOSITION_ON_CLOSE = 0x00000008
    FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE = 0x00000010


class Smb2QueryDirectoryFlags(IntFlag):
    """[MS-SMB2] 2.2.33 QUERY_DIRECTORY Request Flags."""

    SMB2_RESTART_SCANS = 0x01
    SMB2_RETURN_SINGLE_ENTRY = 0x02
    SMB2_INDEX_SPECIFIED = 0x04
    SMB2_REOPEN = 0x10
