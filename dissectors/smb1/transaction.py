"""SMB_COM_TRANSACTION, SMB_COM_TRANSACTION2 and SMB_COM_NT_TRANSACT requests, their secondary
requests and the TRANSACTION / TRANSACTION2 responses
([MS-CIFS] 2.2.4.33, 2.2.4.34, 2.2.4.46, 2.2.4.47, 2.2.4.62.1; subcommands 2.2.5, 2.2.6).

Read are the fixed fields and the Setup words (named-pipe subcommands, TRANS2
subcommands, declared sizes), for RAP over \\PIPE\\LANMAN the opcode, the first
parameter word ([MS-RAP] 2.5.1), and:

- for a named-pipe transaction ([MS-CIFS] 2.2.5) the FID in Setup[1] and the
  Data bytes (for TRANS_TRANSACT_NMPIPE, DCE/RPC PDUs); the response keeps its
  Data bytes too;
- for the TRANS2 subcommands that name or change files (OPEN2, FIND_FIRST2,
  FIND_NEXT2, QUERY/SET_PATH_INFORMATION, QUERY/SET_FILE_INFORMATION,
  CREATE_DIRECTORY) their parameters, and the set-information data that
  renames or deletes.

A transaction sent in several parts is not reassembled: each part's counts,
offsets and displacements are in its record for a later layer to place.
"""

from __future__ import annotations

import struct

from dissectors.constants import (
    FILE_DISPOSITION_DELETE,
    RAP_PIPE_NAME,
    SMB1_PIPE_FUNCTIONS_WITHOUT_FID,
    Smb1Command,
    Smb1Flags2,
    Smb1SetInformationLevel,
    Smb1Trans2Subcommand,
)
from dissectors.records import (
    Anomaly,
    AnomalyKind,
    Smb1FindResponseParameters,
    Smb1Header,
    Smb1NtTransactRequest,
    Smb1Trans2Parameters,
    Smb1TransactionRequest,
    Smb1TransactionResponse,
    Smb1TransactionSecondaryRequest,
)
from dissectors.smb1.parameters import Smb1Block, read_string
from dissectors.text import oem, utf16le

# TotalParameterCount, TotalDataCount, MaxParameterCount, MaxDataCount, MaxSetupCount, Reserved1, Flags,
# Timeout, Reserved2, ParameterCount, ParameterOffset, DataCount, DataOffset, SetupCount, Reserved3.
_FIXED = struct.Struct("<HHHHBxHIxxHHHHBx")
# MaxSetupCount, Reserved1, TotalParameterCount, TotalDataCount, MaxParameterCount, MaxDataCount,
# ParameterCount, ParameterOffset, DataCount, DataOffset, SetupCount, Function.
_NT_FIXED = struct.Struct("<B2xIIIIIIIIBH")
# TotalParameterCount, TotalDataCount, Reserved1, ParameterCount, ParameterOffset, ParameterDisplacement,
# DataCount, DataOffset, DataDisplacement, SetupCount, Reserved2 ([MS-CIFS] 2.2.4.33.2, 2.2.4.46.2).
_RESPONSE_FIXED = struct.Struct("<HHxxHHHHHHBx")
# TotalParameterCount, TotalDataCount, ParameterCount, ParameterOffset, ParameterDisplacement, DataCount,
# DataOffset, DataDisplacement ([MS-CIFS] 2.2.4.34.1: WordCount 8; TRANSACTION2_SECONDARY 2.2.4.47.1
# adds FID: WordCount 9).
_SECONDARY_FIXED = struct.Struct("<HHHHHHHH")
_UNICODE = int(Smb1Flags2.SMB_FLAGS2_UNICODE)
_TRANSACTION = int(Smb1Command.SMB_COM_TRANSACTION)
# Response parameters kept: every TRANS2 response's parameters fit (FIND_FIRST2's are 10 bytes).
SMB1_TRANSACTION_PARAMETERS_KEPT = 64

# Fixed parameter bytes before the name ([MS-CIFS] 2.2.6.x.1 Trans2_Parameters).
_OPEN2 = struct.Struct("<HHxxHIHI10x")  # Flags, AccessMode, Reserved1, FileAttributes, CreationTime, OpenMode, ...
_FIND_FIRST2 = struct.Struct("<HHHHI")  # SearchAttributes, SearchCount, Flags, InformationLevel, SearchStorageType
_FIND_NEXT2 = struct.Struct("<HHHIH")  # SID, SearchCount, InformationLevel, ResumeKey, Flags
_PATH_INFORMATION = struct.Struct("<H4x")  # InformationLevel, Reserved (QUERY/SET_PATH_INFORMATION)
_FILE_INFORMATION = struct.Struct("<HH")  # FID, InformationLevel (QUERY/SET_FILE_INFORMATION; SET adds Reserved)
_CREATE_DIRECTORY = struct.Struct("<4x")  # Reserved
# [MS-FSCC] FILE_RENAME_INFORMATION_TYPE_1 (the SMB form): ReplaceIfExists, Reserved, RootDirectory,
# FileNameLength, then FileName.
_RENAME_INFORMATION = struct.Struct("<B3xII")
_FIND_FIRST2_RESPONSE = struct.Struct("<HHHHH")  # SID, SearchCount, EndOfSearch, EaErrorOffset, LastNameOffset
_FIND_NEXT2_RESPONSE = struct.Struct("<HHHH")  # SearchCount, EndOfSearch, EaErrorOffset, LastNameOffset

_DELETE_PENDING_LEVELS = frozenset(
    (
        int(Smb1SetInformationLevel.SMB_SET_FILE_DISPOSITION_INFO),
        int(Smb1SetInformationLevel.FileDispositionInformation),
    )
)
# The subcommands `parse_trans2_parameters` reads; the others (DoublePulsar's TRANS2_SESSION_SETUP among
# them) are left as the fixed fields and Setup words.
_TRANS2_DECODED = frozenset(
    int(subcommand)
    for subcommand in (
        Smb1Trans2Subcommand.TRANS2_OPEN2,
        Smb1Trans2Subcommand.TRANS2_FIND_FIRST2,
        Smb1Trans2Subcommand.TRANS2_FIND_NEXT2,
        Smb1Trans2Subcommand.TRANS2_QUERY_PATH_INFORMATION,
        Smb1Trans2Subcommand.TRANS2_SET_PATH_INFORMATION,
        Smb1Trans2Subcommand.TRANS2_QUERY_FILE_INFORMATION,
        Smb1Trans2Subcommand.TRANS2_SET_FILE_INFORMATION,
        Smb1Trans2Subcommand.TRANS2_CREATE_DIRECTORY,
    )
)
_PATH_SUBCOMMANDS = frozenset(
    (int(Smb1Trans2Subcommand.TRANS2_QUERY_PATH_INFORMATION), int(Smb1Trans2Subcommand.TRANS2_SET_PATH_INFORMATION))
)
_FILE_SUBCOMMANDS = frozenset(
    (int(Smb1Trans2Subcommand.TRANS2_QUERY_FILE_INFORMATION), int(Smb1Trans2Subcommand.TRANS2_SET_FILE_INFORMATION))
)
_DISPOSITION_EX = int(Smb1SetInformationLevel.FileDispositionInformationEx)
_RENAME = int(Smb1SetInformationLevel.FileRenameInformation)


def parse_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1TransactionRequest | Anomaly | None:
    words = block.words
    if len(words) < _FIXED.size:
        return None if header.status else Anomaly(AnomalyKind.SMB1_MALFORMED, "TRANSACTION WordCount too small")
    (total_parameters, total_data, _max_parameters, max_data, _max_setup, _flags, _timeout, parameter_count,
     parameter_offset, data_count, data_offset, setup_count) = _FIXED.unpack_from(words)  # fmt: skip
    if len(words) != _FIXED.size + 2 * setup_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"SetupCount {setup_count} does not match WordCount")
    setup = struct.unpack_from(f"<{setup_count}H", words, _FIXED.size)
    unicode = bool(header.flags2 & _UNICODE)
    name = ""
    rap_opcode = pipe_function = fid = None
    data = b""
    trans2 = None
    if header.command == _TRANSACTION:
        name, _ = read_string(block, 0, unicode)
        upper = name.upper()
        # ParameterOffset counts from the start of the SMB header, where `message` starts.
        if parameter_count >= 2 and upper == RAP_PIPE_NAME and parameter_offset + 2 <= len(message):
            rap_opcode = int.from_bytes(message[parameter_offset : parameter_offset + 2], "little")
        elif setup and (upper == "\\PIPE" or upper.startswith("\\PIPE\\")):
            pipe_function = setup[0]
            if len(setup) >= 2 and pipe_function not in SMB1_PIPE_FUNCTIONS_WITHOUT_FID:
                fid = setup[1]
            pipe_data = _slice(message, data_offset, data_count, "TRANSACTION Data")
            if isinstance(pipe_data, Anomaly):
                return pipe_data
            data = pipe_data
    elif setup and setup[0] in _TRANS2_DECODED and parameter_count == total_parameters:
        # (Parameters sent in TRANSACTION2_SECONDARY parts are not reassembled: not decoded.)
        parameters = _slice(message, parameter_offset, parameter_count, "TRANSACTION2 Parameters")
        if isinstance(parameters, Anomaly):
            return parameters
        trans2_data = _slice(message, data_offset, data_count, "TRANSACTION2 Data")
        if isinstance(trans2_data, Anomaly):
            return trans2_data
        decoded = parse_trans2_parameters(setup[0], parameters, trans2_data, unicode)
        if isinstance(decoded, Anomaly):
            return decoded
        trans2 = decoded
    return Smb1TransactionRequest(
        total_parameters,
        total_data,
        parameter_count,
        data_count,
        setup,
        name,
        rap_opcode,
        parameter_offset,
        data_offset,
        max_data,
        pipe_function,
        fid,
        data,
        trans2,
    )


def parse_trans2_parameters(
    subcommand: int, parameters: bytes, data: bytes, unicode: bool
) -> Smb1Trans2Parameters | Anomaly | None:
    """The Trans2_Parameters of `subcommand` (and the rename/delete information in its Trans2_Data);
    None for a subcommand smbwatch does not read.

    A name sits at its fixed offset in the parameters: Unicode alignment counts from the start of
    the parameters, not of the SMB header (as Samba reads them; a client that puts the parameters
    at an odd offset still puts the name right after the fixed fields).
    """
    block = Smb1Block(b"", parameters, 0)
    if subcommand == Smb1Trans2Subcommand.TRANS2_OPEN2:
        if len(parameters) < _OPEN2.size:
            return _short(subcommand, len(parameters))
        _flags, _access_mode, _attributes, _creation, open_mode, _allocation = _OPEN2.unpack_from(parameters)
        name, _ = read_string(block, _OPEN2.size, unicode)
        return Smb1Trans2Parameters(subcommand, name=name, open_mode=open_mode)
    if subcommand == Smb1Trans2Subcommand.TRANS2_FIND_FIRST2:
        if len(parameters) < _FIND_FIRST2.size:
            return _short(subcommand, len(parameters))
        attributes, count, _flags, level, _storage = _FIND_FIRST2.unpack_from(parameters)
        name, _ = read_string(block, _FIND_FIRST2.size, unicode)
        return Smb1Trans2Parameters(
            subcommand, information_level=level, name=name, search_attributes=attributes, search_count=count
        )
    if subcommand == Smb1Trans2Subcommand.TRANS2_FIND_NEXT2:
        if len(parameters) < _FIND_NEXT2.size:
            return _short(subcommand, len(parameters))
        _sid, count, level, _resume_key, _flags = _FIND_NEXT2.unpack_from(parameters)
        name, _ = read_string(block, _FIND_NEXT2.size, unicode)
        return Smb1Trans2Parameters(subcommand, information_level=level, name=name, search_count=count)
    if subcommand in _PATH_SUBCOMMANDS:
        if len(parameters) < _PATH_INFORMATION.size:
            return _short(subcommand, len(parameters))
        (level,) = _PATH_INFORMATION.unpack_from(parameters)
        name, _ = read_string(block, _PATH_INFORMATION.size, unicode)
        if subcommand == Smb1Trans2Subcommand.TRANS2_QUERY_PATH_INFORMATION:
            return Smb1Trans2Parameters(subcommand, information_level=level, name=name)
        return _set_information(subcommand, None, level, name, data, unicode)
    if subcommand in _FILE_SUBCOMMANDS:
        if len(parameters) < _FILE_INFORMATION.size:
            return _short(subcommand, len(parameters))
        fid, level = _FILE_INFORMATION.unpack_from(parameters)
        if subcommand == Smb1Trans2Subcommand.TRANS2_QUERY_FILE_INFORMATION:
            return Smb1Trans2Parameters(subcommand, fid=fid, information_level=level)
        return _set_information(subcommand, fid, level, None, data, unicode)
    if subcommand == Smb1Trans2Subcommand.TRANS2_CREATE_DIRECTORY:
        if len(parameters) < _CREATE_DIRECTORY.size:
            return _short(subcommand, len(parameters))
        name, _ = read_string(block, _CREATE_DIRECTORY.size, unicode)
        return Smb1Trans2Parameters(subcommand, name=name)
    return None


def _set_information(
    subcommand: int, fid: int | None, level: int, name: str | None, data: bytes, unicode: bool
) -> Smb1Trans2Parameters | Anomaly:
    """SET_PATH/FILE_INFORMATION: the levels that delete or rename are decoded from the data."""
    if level in _DELETE_PENDING_LEVELS:
        if not data:
            return Anomaly(AnomalyKind.SMB1_MALFORMED, f"information level {level}: no DeletePending byte")
        delete = data[0] != 0
        return Smb1Trans2Parameters(subcommand, fid=fid, information_level=level, name=name, delete_pending=delete)
    if level == _DISPOSITION_EX:
        if len(data) < 4:
            return Anomaly(AnomalyKind.SMB1_MALFORMED, f"information level {level}: {len(data)} bytes, not 4")
        flags = int.from_bytes(data[:4], "little")
        delete = bool(flags & FILE_DISPOSITION_DELETE)
        return Smb1Trans2Parameters(subcommand, fid=fid, information_level=level, name=name, delete_pending=delete)
    if level == _RENAME:
        if len(data) < _RENAME_INFORMATION.size:
            return Anomaly(AnomalyKind.SMB1_MALFORMED, f"FileRenameInformation of {len(data)} bytes")
        replace, _root_directory, name_length = _RENAME_INFORMATION.unpack_from(data)
        raw = data[_RENAME_INFORMATION.size : _RENAME_INFORMATION.size + name_length]
        if len(raw) < name_length:
            detail = f"FileRenameInformation FileNameLength {name_length} past the data"
            return Anomaly(AnomalyKind.SMB1_MALFORMED, detail)
        target = utf16le(raw) if unicode else oem(raw)
        replace_if_exists = replace != 0
        return Smb1Trans2Parameters(
            subcommand,
            fid=fid,
            information_level=level,
            name=name,
            rename_target=target,
            replace_if_exists=replace_if_exists,
        )
    return Smb1Trans2Parameters(subcommand, fid=fid, information_level=level, name=name)


def parse_secondary_request(
    message: bytes, block: Smb1Block, header: Smb1Header
) -> Smb1TransactionSecondaryRequest | Anomaly:
    """TRANSACTION_SECONDARY (WordCount 8) and TRANSACTION2_SECONDARY (WordCount 9: FID last)."""
    words = block.words
    trans2 = header.command != Smb1Command.SMB_COM_TRANSACTION_SECONDARY
    expected = _SECONDARY_FIXED.size + (2 if trans2 else 0)
    if len(words) != expected:
        detail = f"secondary transaction WordCount {len(words) // 2}, not {expected // 2}"
        return Anomaly(AnomalyKind.SMB1_MALFORMED, detail)
    (total_parameters, total_data, parameter_count, parameter_offset, parameter_displacement, data_count,
     data_offset, data_displacement) = _SECONDARY_FIXED.unpack_from(words)  # fmt: skip
    fid = None
    data = b""
    if trans2:
        fid = int.from_bytes(words[_SECONDARY_FIXED.size :], "little")
    else:
        part = _slice(message, data_offset, data_count, "TRANSACTION_SECONDARY Data")
        if isinstance(part, Anomaly):
            return part
        data = part
    return Smb1TransactionSecondaryRequest(
        total_parameters,
        total_data,
        parameter_count,
        parameter_offset,
        parameter_displacement,
        data_count,
        data_offset,
        data_displacement,
        fid,
        data,
    )


def parse_response(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1TransactionResponse | Anomaly | None:
    """TRANSACTION and TRANSACTION2 responses. None for one without parameters: an error, or the
    interim response that asks for the rest of a multi-part request ([MS-CIFS] 3.3.5.57)."""
    words = block.words
    if not words:
        return None
    if len(words) < _RESPONSE_FIXED.size:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"transaction response WordCount {len(words) // 2}")
    (total_parameters, total_data, parameter_count, parameter_offset, parameter_displacement, data_count,
     data_offset, data_displacement, setup_count) = _RESPONSE_FIXED.unpack_from(words)  # fmt: skip
    if len(words) != _RESPONSE_FIXED.size + 2 * setup_count:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"response SetupCount {setup_count} does not match WordCount")
    setup = struct.unpack_from(f"<{setup_count}H", words, _RESPONSE_FIXED.size)
    parameters = _slice(message, parameter_offset, parameter_count, "transaction response Parameters")
    if isinstance(parameters, Anomaly):
        return parameters
    data = _slice(message, data_offset, data_count, "transaction response Data")
    if isinstance(data, Anomaly):
        return data
    return Smb1TransactionResponse(
        total_parameters,
        total_data,
        parameter_count,
        parameter_offset,
        parameter_displacement,
        data_count,
        data_offset,
        data_displacement,
        setup,
        parameters[:SMB1_TRANSACTION_PARAMETERS_KEPT],
        data if header.command == _TRANSACTION else b"",
    )


def parse_find_response_parameters(subcommand: int, parameters: bytes) -> Smb1FindResponseParameters | Anomaly | None:
    """The response parameters of the FIND_FIRST2 / FIND_NEXT2 request a response answers (the
    response does not name its subcommand: the caller pairs it with the request); None for others."""
    if subcommand == Smb1Trans2Subcommand.TRANS2_FIND_FIRST2:
        if len(parameters) < _FIND_FIRST2_RESPONSE.size:
            return _short(subcommand, len(parameters))
        sid, count, end, _ea_error, last_name = _FIND_FIRST2_RESPONSE.unpack_from(parameters)
        return Smb1FindResponseParameters(sid, count, end != 0, last_name)
    if subcommand == Smb1Trans2Subcommand.TRANS2_FIND_NEXT2:
        if len(parameters) < _FIND_NEXT2_RESPONSE.size:
            return _short(subcommand, len(parameters))
        count, end, _ea_error, last_name = _FIND_NEXT2_RESPONSE.unpack_from(parameters)
        return Smb1FindResponseParameters(None, count, end != 0, last_name)
    return None


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


def _slice(message: bytes, offset: int, count: int, what: str) -> bytes | Anomaly:
    """`count` bytes at `offset` (from the SMB header), which the message must hold."""
    if not count:
        return b""
    if offset + count > len(message) or offset < 32:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"{what}: {count} bytes at {offset} outside the message")
    return message[offset : offset + count]


def _short(subcommand: int, size: int) -> Anomaly:
    return Anomaly(AnomalyKind.SMB1_MALFORMED, f"TRANS2 subcommand 0x{subcommand:04x}: parameters of {size} bytes")
