"""SMB_COM_TRANSACTION, SMB_COM_TRANSACTION2 and SMB_COM_NT_TRANSACT requests
([MS-CIFS] 2.2.4.33.1, 2.2.4.46.1, 2.2.4.62.1).

Only the fixed fields and the Setup words are read: what the detections key on
(named-pipe subcommands, TRANS2 subcommands, declared sizes), and for RAP
over \\PIPE\\LANMAN the opcode, the first parameter word ([MS-RAP] 2.5.1).
Parameters and data are never kept.
"""

from __future__ import annotations

import struct

from dissectors.constants import RAP_PIPE_NAME, Smb1Command, Smb1Flags2
from dissectors.records import Anomaly, AnomalyKind, Smb1Header, Smb1NtTransactRequest, Smb1TransactionRequest
from dissectors.smb1_parameters import Smb1Block, read_string

# TotalParameterCount, TotalDataCount, MaxParameterCount, MaxDataCount, MaxSetupCount, Reserved1, Flags,
# Timeout, Reserved2, ParameterCount, ParameterOffset, DataCount, DataOffset, SetupCount, Reserved3.
_FIXED = struct.Struct("<HHHHBxHIxxHHHHBx")
# MaxSetupCount, Reserved1, TotalParameterCount, TotalDataCount, MaxParameterCount, MaxDataCount,
# ParameterCount, ParameterOffset, DataCount, DataOffset, SetupCount, Function.
_NT_FIXED = struct.Struct("<B2xIIIIIIIIBH")
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)


def parse_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1TransactionRequest | Anomaly | None:
    words = block.words
    if len(words) < _FIXED.size:
        return None if header.status else Anomaly(AnomalyKind.SMB1_MALFORMED, "TRANSACTION WordCount too small")
    (total_parameters, total_data, _max_parameters, _max_data, _max_setup, _flags, _timeout, parameter_count,
     parameter_offset, data_count, _data_offset, setup_count) = _FIXED.unpack_from(words)  # fmt: skip
    if len(words) != _FIXED.size + 2 * setup_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"SetupCount {setup_count} does not match WordCount")
    setup = struct.unpack_from(f"<{setup_count}H", words, _FIXED.size)
    name = ""
    rap_opcode = None
    if header.command == Smb1Command.SMB_COM_TRANSACTION:
        name, _ = read_string(block, 0, bool(header.flags2 & _UNICODE))
        # ParameterOffset counts from the start of the SMB header, where `message` starts.
        if parameter_count >= 2 and name.upper() == RAP_PIPE_NAME and parameter_offset + 2 <= len(message):
            rap_opcode = int.from_bytes(message[parameter_offset : parameter_offset + 2], "little")
    return Smb1TransactionRequest(total_parameters, total_data, parameter_count, data_count, setup, name, rap_opcode)


def parse_nt_transact_request(
    message: bytes, block: Smb1Block, header: Smb1Header
) -> Smb1NtTransactRequest | Anomaly | None:
    words = block.words
    if len(words) < _NT_FIXED.size:
        return None if header.status else Anomaly(AnomalyKind.SMB1_MALFORMED, "NT_TRANSACT WordCount too small")
    (_max_setup, total_parameters, total_data, _max_parameters, _max_data, parameter_count, _parameter_offset,
     data_count, _data_offset, setup_count, function) = _NT_FIXED.unpack_from(words)  # fmt: skip
    if len(words) != _NT_FIXED.size + 2 * setup_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"NT_TRANSACT SetupCount {setup_count} does not match WordCount")
    setup = struct.unpack_from(f"<{setup_count}H", words, _NT_FIXED.size)
    return Smb1NtTransactRequest(total_parameters, total_data, parameter_count, data_count, function, setup)
