"""Names of DCE/RPC interfaces and operations, from the generated table in `interfaces`.

Lookups never fail: an interface UUID not in the table reads as the UUID itself, an
operation not in it as "opnum N", so a log line always says what was called.
"""

from __future__ import annotations

from dissectors.constants import enum_name
from dissectors.dcerpc.constants import AuthLevel, AuthType
from dissectors.dcerpc.interfaces import INTERFACES, OPERATIONS, WIRESHARK_OPERATIONS

# An interface's name does not change with its version: a version the table lacks reads by the UUID.
_BY_UUID: dict[str, tuple[str, str]] = {}
for (_uuid, _major), _names in sorted(INTERFACES.items()):
    _BY_UUID.setdefault(_uuid, _names)


def _known(uuid: str, version: int) -> tuple[str, str] | None:
    text = uuid.lower()
    return INTERFACES.get((text, version)) or _BY_UUID.get(text)


def interface_name(uuid: str, version: int) -> str:
    """The interface's short name (`svcctl`, `efsrpc`, `IRemoteWinspool`), or the UUID when unknown."""
    names = _known(uuid, version)
    return names[0] if names else uuid.lower()


def interface_display_name(uuid: str, version: int) -> str:
    """The interface's long name ("Microsoft Service Control"), or the UUID when unknown."""
    names = _known(uuid, version)
    return names[1] if names else uuid.lower()


def operation_name(uuid: str, opnum: int) -> str:
    """The spec's name of operation `opnum` of the interface (`RpcAddPrinterDriverEx`), or "opnum N"."""
    return OPERATIONS.get((uuid.lower(), opnum), f"opnum {opnum}")


def wireshark_operation_name(uuid: str, opnum: int) -> str:
    """The name tshark shows for the operation (its `<dissector>.opnum` value string), or "opnum N"."""
    key = (uuid.lower(), opnum)
    return WIRESHARK_OPERATIONS.get(key) or OPERATIONS.get(key, f"opnum {opnum}")


def auth_type_name(auth_type: int) -> str:
    """[MS-RPCE] 2.2.1.1.7 name of a sec_trailer auth_type (RPC_C_AUTHN_WINNT), or "unknown-0x…"."""
    return enum_name(AuthType, auth_type, 2)


def auth_level_name(auth_level: int) -> str:
    """[MS-RPCE] 2.2.1.1.8 name of a sec_trailer auth_level (RPC_C_AUTHN_LEVEL_PKT_PRIVACY), or "unknown-0x…"."""
    return enum_name(AuthLevel, auth_level, 2)
