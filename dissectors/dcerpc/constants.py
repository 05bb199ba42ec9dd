"""Connection-oriented DCE/RPC constants with the spec's names ([C706] chapter 12, [MS-RPCE] 2.2).

Names of values come from `dissectors.constants.enum_name`, which never fails: a value the
spec does not list reads as "unknown-0x…".
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final

RPC_VERS: Final = 5  # [C706] 12.6.3.1 rpc_vers: 5 for connection-oriented PDUs
RPC_VERS_MINORS: Final = (0, 1)  # 5.0 and 5.1 ([MS-RPCE] 2.2.2.1 uses 5.0)
COMMON_HEADER_SIZE: Final = 16  # [C706] 12.6.3.1
SEC_TRAILER_SIZE: Final = 8  # [C706] 13.2.6.1 auth_verifier_co_t before auth_value
UUID_SIZE: Final = 16
SYNTAX_ID_SIZE: Final = 20  # p_syntax_id_t: if_uuid, if_version ([C706] 12.6.3.1)


class PType(IntEnum):
    """[C706] 12.6.4 PTYPE values (connectionless ones included: one numbering); AUTH3 from [MS-RPCE] 2.2.2.1."""

    REQUEST = 0
    PING = 1
    RESPONSE = 2
    FAULT = 3
    WORKING = 4
    NOCALL = 5
    REJECT = 6
    ACK = 7
    CL_CANCEL = 8
    FACK = 9
    CANCEL_ACK = 10
    BIND = 11
    BIND_ACK = 12
    BIND_NAK = 13
    ALTER_CONTEXT = 14
    ALTER_CONTEXT_RESP = 15
    AUTH3 = 16
    SHUTDOWN = 17
    CO_CANCEL = 18
    ORPHANED = 19


class PfcFlags(IntFlag):
    """[C706] 12.6.3.1 pfc_flags; [MS-RPCE] 2.2.2.3 reads 0x04 on bind and alter_context as PFC_SUPPORT_HEADER_SIGN."""

    PFC_FIRST_FRAG = 0x01
    PFC_LAST_FRAG = 0x02
    PFC_PENDING_CANCEL = 0x04
    PFC_RESERVED_1 = 0x08
    PFC_CONC_MPX = 0x10
    PFC_DID_NOT_EXECUTE = 0x20
    PFC_MAYBE = 0x40
    PFC_OBJECT_UUID = 0x80


PFC_SUPPORT_HEADER_SIGN: Final = 0x04  # [MS-RPCE] 2.2.2.3, same bit as PFC_PENDING_CANCEL


class DrepIntegerRepresentation(IntEnum):
    """[C706] 14.1 data representation format label, drep[0] high nibble: integer byte order."""

    NDR_BIG_ENDIAN = 0
    NDR_LITTLE_ENDIAN = 1


class DrepCharacterRepresentation(IntEnum):
    """[C706] 14.1 drep[0] low nibble."""

    NDR_ASCII_CHAR = 0
    NDR_EBCDIC_CHAR = 1


class DrepFloatingPointRepresentation(IntEnum):
    """[C706] 14.1 drep[1]."""

    NDR_IEEE_FLOAT = 0
    NDR_VAX_FLOAT = 1
    NDR_CRAY_FLOAT = 2
    NDR_IBM_FLOAT = 3


class AuthType(IntEnum):
    """[MS-RPCE] 2.2.1.1.7 security providers (auth_type of sec_trailer)."""

    RPC_C_AUTHN_NONE = 0x00
    RPC_C_AUTHN_DCE_PRIVATE = 0x01
    RPC_C_AUTHN_DCE_PUBLIC = 0x02
    RPC_C_AUTHN_DEC_PUBLIC = 0x04
    RPC_C_AUTHN_GSS_NEGOTIATE = 0x09
    RPC_C_AUTHN_WINNT = 0x0A
    RPC_C_AUTHN_GSS_SCHANNEL = 0x0E
    RPC_C_AUTHN_GSS_KERBEROS = 0x10
    RPC_C_AUTHN_NETLOGON = 0x44
    RPC_C_AUTHN_DEFAULT = 0xFF


class AuthLevel(IntEnum):
    """[MS-RPCE] 2.2.1.1.8 authentication levels (auth_level of sec_trailer)."""

    RPC_C_AUTHN_LEVEL_DEFAULT = 0x00
    RPC_C_AUTHN_LEVEL_NONE = 0x01
    RPC_C_AUTHN_LEVEL_CONNECT = 0x02
    RPC_C_AUTHN_LEVEL_CALL = 0x03
    RPC_C_AUTHN_LEVEL_PKT = 0x04
    RPC_C_AUTHN_LEVEL_PKT_INTEGRITY = 0x05
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY = 0x06


class ContDefResult(IntEnum):
    """[C706] 12.6.3.1 p_cont_def_result_t; negotiate_ack from [MS-RPCE] 2.2.2.4."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    PROVIDER_REJECTION = 2
    NEGOTIATE_ACK = 3


class ProviderReason(IntEnum):
    """[C706] 12.6.3.1 p_provider_reason_t (reason of a rejected presentation context)."""

    REASON_NOT_SPECIFIED = 0
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 1
    PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2
    LOCAL_LIMIT_EXCEEDED = 3


class RejectReason(IntEnum):
    """[C706] 12.6.3.1 p_reject_reason_t of bind_nak; 8 and 9 from [MS-RPCE] 2.2.2.5."""

    REASON_NOT_SPECIFIED = 0
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2
    CALLED_PADDR_UNKNOWN = 3
    PROTOCOL_VERSION_NOT_SUPPORTED = 4
    DEFAULT_CONTEXT_NOT_SUPPORTED = 5
    USER_DATA_NOT_READABLE = 6
    NO_PSAP_AVAILABLE = 7
    AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8
    INVALID_CHECKSUM = 9


# Transfer syntaxes ([C706] appendix I, [MS-RPCE] 2.2.4.12, 3.3.1.5.3).
NDR_TRANSFER_SYNTAX: Final = "8a885d04-1ceb-11c9-9fe8-08002b104860"  # version 2
NDR64_TRANSFER_SYNTAX: Final = "71710533-beba-4937-8319-b5dbef9ccc36"  # version 1
BIND_TIME_FEATURE_NEGOTIATION_PREFIX: Final = "6cb71c2c-9812-4540-"  # the last 8 bytes carry the bitmask


class FaultStatus(IntEnum):
    """Status codes of a fault PDU: [C706] Appendix E (Table E-3, nca_s_*), and the Win32 values
    Windows servers put there ([MS-RPCE] 3.1.1.5.5)."""

    nca_s_fault_other = 0x00000001
    nca_s_fault_access_denied = 0x00000005
    nca_s_fault_cant_perform = 0x000006D8
    nca_s_fault_ndr = 0x000006F7
    nca_s_fault_int_div_by_zero = 0x1C000001
    nca_s_fault_addr_error = 0x1C000002
    nca_s_fault_fp_div_zero = 0x1C000003
    nca_s_fault_fp_underflow = 0x1C000004
    nca_s_fault_fp_overflow = 0x1C000005
    nca_s_fault_invalid_tag = 0x1C000006
    nca_s_fault_invalid_bound = 0x1C000007
    nca_rpc_version_mismatch = 0x1C000008
    nca_unspec_reject = 0x1C000009
    nca_s_bad_actid = 0x1C00000A
    nca_who_are_you_failed = 0x1C00000B
    nca_manager_not_entered = 0x1C00000C
    nca_s_fault_cancel = 0x1C00000D
    nca_s_fault_ill_inst = 0x1C00000E
    nca_s_fault_fp_error = 0x1C00000F
    nca_s_fault_int_overflow = 0x1C000010
    nca_s_fault_pipe_empty = 0x1C000014
    nca_s_fault_pipe_closed = 0x1C000015
    nca_s_fault_pipe_order = 0x1C000016
    nca_s_fault_pipe_discipline = 0x1C000017
    nca_s_fault_pipe_comm_error = 0x1C000018
    nca_s_fault_pipe_memory = 0x1C000019
    nca_s_fault_context_mismatch = 0x1C00001A
    nca_s_fault_remote_no_memory = 0x1C00001B
    nca_invalid_pres_context_id = 0x1C00001C
    nca_unsupported_authn_level = 0x1C00001D
    nca_invalid_checksum = 0x1C00001F
    nca_invalid_crc = 0x1C000020
    nca_s_fault_user_defined = 0x1C000021
    nca_s_fault_tx_open_failed = 0x1C000022
    nca_s_fault_codeset_conv_error = 0x1C000023
    nca_s_fault_object_not_found = 0x1C000024
    nca_s_fault_no_client_stub = 0x1C000025
    nca_s_comm_failure = 0x1C010001
    nca_op_rng_error = 0x1C010002
    nca_unk_if = 0x1C010003
    nca_wrong_boot_time = 0x1C010006
    nca_s_you_crashed = 0x1C010009
    nca_proto_error = 0x1C01000B
    nca_out_args_too_big = 0x1C010013
    nca_server_too_busy = 0x1C010014
    nca_unsupported_type = 0x1C010017


class Win32Error(IntEnum):
    """[MS-ERREF] 2.2 Win32 error codes the remote-administration interfaces return most (a DWORD or
    WERROR return value of [MS-SCMR], [MS-RPRN], [MS-DFSNM], [MS-EFSR], [MS-SRVS])."""

    ERROR_SUCCESS = 0
    ERROR_INVALID_FUNCTION = 1
    ERROR_FILE_NOT_FOUND = 2
    ERROR_PATH_NOT_FOUND = 3
    ERROR_ACCESS_DENIED = 5
    ERROR_INVALID_HANDLE = 6
    ERROR_NOT_ENOUGH_MEMORY = 8
    ERROR_NOT_SUPPORTED = 50
    ERROR_BAD_NETPATH = 53
    ERROR_BAD_NET_NAME = 67
    ERROR_INVALID_PARAMETER = 87
    ERROR_CALL_NOT_IMPLEMENTED = 120
    ERROR_INVALID_NAME = 123
    ERROR_INVALID_LEVEL = 124
    ERROR_MORE_DATA = 234
    ERROR_NO_MORE_ITEMS = 259
    ERROR_SERVICE_ALREADY_RUNNING = 1056
    ERROR_SERVICE_DISABLED = 1058
    ERROR_SERVICE_DOES_NOT_EXIST = 1060
    ERROR_SERVICE_EXISTS = 1073
    ERROR_NOT_FOUND = 1168
    RPC_S_SERVER_UNAVAILABLE = 1722
    ERROR_PRINTER_DRIVER_ALREADY_INSTALLED = 1795
    ERROR_UNKNOWN_PRINTER_DRIVER = 1797
    ERROR_INVALID_PRINTER_NAME = 1801
