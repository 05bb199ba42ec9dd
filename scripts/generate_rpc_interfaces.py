#!/usr/bin/env python3
"""Regenerate dissectors/dcerpc/interfaces.py: DCE/RPC interface and operation names.

Which source gives what:
  UUIDs and versions  impacket's transcriptions of the specs' IDL: MSRPC_UUID_* of every
                      impacket.dcerpc.v5 module, IID_* of its DCOM modules (pip install impacket;
                      only this script needs it); the few interfaces impacket lacks are in
                      SPEC_UUIDS below, each with the spec section its UUID comes from.
  interface names     Wireshark: for every UUID, tshark is asked what it calls it. A capture of one
                      bind and one request per UUID (TCP port 135, written to a temporary file) is
                      dissected; the bind's dcerpc.cn_bind_to_uuid showname gives the interface name
                      ("Interface: SRVSVC UUID: ..."), the request's protocol layer the dissector
                      (`srvsvc`), and `tshark -G protocols` its display name ("Server Service").
                      tshark exposes the UUID -> dissector map no other way (dcerpc.uuid is a
                      GUID dissector table, which -G decodes does not list).
  operation names     the spec's name, from impacket's request classes (OPNUMS of each module; the
                      opnum attribute of DCOM request classes), where impacket has the operation;
                      otherwise Wireshark's value string of `<dissector>.opnum` (`tshark -G values`).
                      Where Wireshark's name differs, it is kept in WIRESHARK_OPERATIONS, the name
                      tshark prints (the tests compare it with tshark's dissection).
Only names and numbers are taken.

Usage: python3 scripts/generate_rpc_interfaces.py [--check]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "dissectors" / "dcerpc" / "interfaces.py"

# Interfaces impacket does not transcribe: (UUID, major version, name, display name), from the
# spec's IDL as its section names it.
SPEC_UUIDS: tuple[tuple[str, int, str, str], ...] = (
    # [MS-EFSR] 1.9 / 6: efsrpc over \pipe\lsarpc, and the same operations over \pipe\efsrpc.
    ("c681d488-d850-11d0-8c52-00c04fd90f7e", 1, "efsrpc", "Encrypting File System Remote Protocol"),
    ("df1941c5-fe89-4e79-bf10-463657acf44d", 1, "efsrpc", "Encrypting File System Remote Protocol"),
    # [MS-DFSNM] 1.9 / 6: netdfs.
    ("4fc742e0-4a10-11cf-8273-00aa004ae673", 3, "netdfs", "Distributed File System Namespace Management"),
    # [MS-FSRVP] 1.9 / 6: FileServerVssAgent.
    ("a8e0653c-2744-4389-a61d-7373df8b2292", 1, "FileServerVssAgent", "File Server Remote VSS Protocol"),
)
# An interface known by its spec name also reads so: (impacket's or Wireshark's name) -> spec name.
SPEC_NAMES = {
    "SVCCTL": "svcctl",
    "ATSVC": "atsvc",
    "SRVSVC": "srvsvc",
    "WKSSVC": "wkssvc",
    "SAMR": "samr",
    "LSARPC": "lsarpc",
    "RPC_NETLOGON": "netlogon",
    "WINREG": "winreg",
    "SPOOLSS": "spoolss",
    "IREMOTEWINSPOOL": "IRemoteWinspool",
    "ISystemActivator": "IRemoteSCMActivator",  # [MS-DCOM] 3.1.2.5.2.3
    "DRSUAPI": "drsuapi",
    "EPMv4": "epmapper",
    "EVENTLOG": "eventlog",
    "TaskSchedulerService": "ITaskSchedulerService",
    "EFS": "efsrpc",
    "NETDFS": "netdfs",
    "FSRVP": "FileServerVssAgent",
}
# The probe's bind for each interface and its request for opnum 0.
_BIND = struct.Struct("<BBBB4sHHIHHIB3xHBx16sI16sI")
_REQUEST = struct.Struct("<BBBB4sHHIIHH")
_NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le


def _interfaces_in(module: object) -> int:
    return sum(1 for name, value in vars(module).items() if name.startswith("MSRPC_UUID_") and _is_uuidtup(value))


def _is_uuidtup(value: object) -> bool:
    """impacket's uuidtup_to_bin form: 16 bytes of UUID, then major and minor version (2 bytes each)."""
    return isinstance(value, bytes) and len(value) == 20


def impacket_interfaces() -> dict[tuple[str, int], tuple[str, dict[int, str]]]:
    """(UUID, major) -> (impacket's constant name, {opnum: spec name of the request}) for every interface."""
    import impacket.dcerpc.v5 as v5
    import impacket.dcerpc.v5.dcom as dcom
    from impacket.uuid import bin_to_uuidtup

    found: dict[tuple[str, int], tuple[str, dict[int, str]]] = {}
    for package in (v5, dcom):
        for info in pkgutil.iter_modules(package.__path__):
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
            except Exception:  # an optional dependency of one module: that module gives nothing
                continue
            for constant, value in vars(module).items():
                if not constant.startswith(("MSRPC_UUID_", "IID_")) or not _is_uuidtup(value):
                    continue
                text, version = bin_to_uuidtup(value)
                key = (text.lower(), int(version.split(".")[0]))
                name = constant.removeprefix("MSRPC_UUID_").removeprefix("IID_")
                operations = found.setdefault(key, (name, {}))[1]
                # OPNUMS lists one interface's operations: used only in a module of one interface.
                opnums = getattr(module, "OPNUMS", None)
                if constant.startswith("MSRPC_UUID_") and isinstance(opnums, dict) and _interfaces_in(module) == 1:
                    for opnum, (request, _response) in opnums.items():
                        operations.setdefault(int(opnum), request.__name__)
                if constant.startswith("IID_"):
                    # DCOM requests are named <interface>_<method> and carry their opnum.
                    for class_name, cls in vars(module).items():
                        if inspect.isclass(cls) and class_name.startswith(name + "_") and "opnum" in vars(cls):
                            operations.setdefault(int(vars(cls)["opnum"]), class_name.removeprefix(name + "_"))
    return found


def _pcap(payloads: list[tuple[int, bytes]]) -> bytes:
    """A libpcap file of Ethernet/IPv4/TCP frames 192.0.2.1:port -> 192.0.2.2:135 (test addresses)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    sequence: dict[int, int] = {}
    for number, (port, payload) in enumerate(payloads):
        seq = sequence.get(port, 1000)
        sequence[port] = seq + len(payload)
        tcp = struct.pack(">HHIIBBHHH", port, 135, seq, 1, 0x50, 0x18, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), number & 0xFFFF, 0, 64, 6, 0,
                         bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))  # fmt: skip
        frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp
        out += struct.pack("<IIII", number, 0, len(frame), len(frame)) + frame
    return out


def probe_pdus(interface: str, major: int, call_id: int, opnum: int = 0) -> list[bytes]:
    """A bind of `interface` version `major` on context 0, then a request for `opnum` with 64 zero bytes."""
    drep = b"\x10\x00\x00\x00"
    bind = _BIND.pack(5, 0, 11, 3, drep, _BIND.size, 0, call_id, 4280, 4280, 0, 1, 0, 1,
                      uuid.UUID(interface).bytes_le, major, _NDR, 2)  # fmt: skip
    stub = bytes(64)
    request = _REQUEST.pack(5, 0, 0, 3, drep, _REQUEST.size + len(stub), 0, call_id + 1, len(stub), 0, opnum) + stub
    return [bind, request]


def _tshark(*arguments: str) -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        raise FileNotFoundError("tshark")
    return subprocess.run([tshark, *arguments], capture_output=True, text=True, check=True, timeout=300).stdout


def ask_tshark(interfaces: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(UUID, major) -> what tshark calls it: interface name, dissector, the field of its opnum ("" if none)."""
    payloads = []
    for index, (interface, major) in enumerate(interfaces):
        payloads += [(10000 + index, pdu) for pdu in probe_pdus(interface, major, 2 * index + 1)]
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "probe.pcap"
        capture.write_bytes(_pcap(payloads))
        pdml = _tshark("-r", str(capture), "-d", "tcp.port==135,dcerpc", "-T", "pdml")
    answers: dict[tuple[str, int], tuple[str, str, str]] = {}
    for packet in pdml.split("<packet>")[1:]:
        port = int(re.search(r'name="tcp.srcport"[^>]* show="(\d+)"', packet).group(1))
        key = interfaces[port - 10000]
        name, dissector, opnum_field = answers.get(key, ("", "", ""))
        named = re.search(r'name="dcerpc.cn_bind_to_uuid" showname="Interface: (.*?) UUID: ', packet)
        if named:
            name = named.group(1)
        else:
            layers = re.findall(r'<proto name="([^"]+)"', packet)
            after = layers[layers.index("dcerpc") + 1 :] if "dcerpc" in layers else []
            dissector = next((layer for layer in after if not layer.startswith("_ws.")), "")
            fields = [field for field in re.findall(r'<field name="([^"]+\.opnum)"', packet) if field != "dcerpc.opnum"]
            opnum_field = fields[0] if fields else ""
        answers[key] = (name, dissector, opnum_field)
    return answers


# [MS-DFSNM] 3.1.4 names its methods in opnum order; impacket has no netdfs module and Wireshark
# uses Samba's IDL names (dfs_AddStdRoot), so the spec's names are listed here.
SPEC_OPERATIONS: dict[str, tuple[str, ...]] = {
    "4fc742e0-4a10-11cf-8273-00aa004ae673": (
        "NetrDfsManagerGetVersion", "NetrDfsAdd", "NetrDfsRemove", "NetrDfsSetInfo", "NetrDfsGetInfo",
        "NetrDfsEnum", "NetrDfsRename", "NetrDfsMove", "NetrDfsManagerGetConfigInfo",
        "NetrDfsManagerSendSiteInfo", "NetrDfsAddFtRoot", "NetrDfsRemoveFtRoot", "NetrDfsAddStdRoot",
        "NetrDfsRemoveStdRoot", "NetrDfsManagerInitialize", "NetrDfsAddStdRootForced", "NetrDfsGetDcAddress",
        "NetrDfsSetDcAddress", "NetrDfsFlushFtTable", "NetrDfsAdd2", "NetrDfsRemove2", "NetrDfsEnumEx",
        "NetrDfsSetInfo2", "NetrDfsAddRootTarget", "NetrDfsRemoveRootTarget",
        "NetrDfsGetSupportedNamespaceVersion",
    ),
}  # fmt: skip
# The same operations under a second UUID ([MS-EFSR] 3.1.4.2: \pipe\efsrpc serves the \pipe\lsarpc
# interface's methods), which Wireshark 4.0 does not dissect.
# Wireshark's names of these dissectors are the spec's without its prefix ([MS-RPRN] 3.1.4 RpcEnumPrinters
# is spoolss EnumPrinters, [MS-PAR] 3.1.4 RpcAsyncOpenPrinter is winspool_AsyncOpenPrinter): dissector ->
# (Wireshark's prefix, the spec's). impacket's names, where it has the operation, still come first.
SPEC_PREFIXES = {"spoolss": ("", "Rpc"), "iremotewinspool": ("winspool_", "Rpc")}
SAME_OPERATIONS = {"df1941c5-fe89-4e79-bf10-463657acf44d": "c681d488-d850-11d0-8c52-00c04fd90f7e"}


def tshark_protocols() -> dict[str, str]:
    """Filter name -> display name (`tshark -G protocols`: name, short name, filter name)."""
    names = {}
    for line in _tshark("-G", "protocols").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            names[fields[2]] = fields[0]
    return names


def tshark_value_strings() -> dict[str, dict[int, str]]:
    """Field -> {value: name} of every `*.opnum` field (`tshark -G values`: V, field, value, name)."""
    table: dict[str, dict[int, str]] = {}
    for line in _tshark("-G", "values").splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[0] == "V" and fields[1].endswith(".opnum"):
            table.setdefault(fields[1], {})[int(fields[2], 0)] = fields[3]
    return table


def build() -> tuple[dict, dict, dict]:
    """The three tables: interfaces, operations (spec names first), Wireshark's names where they differ."""
    impacket = impacket_interfaces()
    spec = {(text, major): (name, display) for text, major, name, display in SPEC_UUIDS}
    keys = sorted(set(impacket) | set(spec))
    answers = ask_tshark(keys)
    protocols = tshark_protocols()
    values = tshark_value_strings()
    interfaces = {}
    operations: dict[tuple[str, int], str] = {}
    wireshark: dict[tuple[str, int], str] = {}
    for key in keys:
        text, _major = key
        tshark_name, dissector, opnum_field = answers.get(key, ("", "", ""))
        impacket_name, spec_operations = impacket.get(key, ("", {}))
        if key in spec:
            name, display = spec[key]
        else:
            name = SPEC_NAMES.get(tshark_name, tshark_name or impacket_name)
            display = protocols.get(dissector, name)
        interfaces[key] = (name, display)
        shown = values.get(opnum_field, {})
        from_spec = dict(enumerate(SPEC_OPERATIONS.get(text, ())))
        for opnum in sorted(set(shown) | set(spec_operations) | set(from_spec)):
            chosen = from_spec.get(opnum) or spec_operations.get(opnum) or _spec_named(dissector, shown[opnum])
            if (text, opnum) in operations and operations[(text, opnum)] != chosen:
                continue  # a UUID under two versions: the first version's names stand
            operations[(text, opnum)] = chosen
            if opnum in shown and shown[opnum] != chosen:
                wireshark[(text, opnum)] = shown[opnum]
    for text, source in SAME_OPERATIONS.items():
        for (other, opnum), name in list(operations.items()):
            if other == source:
                operations.setdefault((text, opnum), name)
    return interfaces, operations, wireshark


def _spec_named(dissector: str, name: str) -> str:
    wireshark_prefix, spec_prefix = SPEC_PREFIXES.get(dissector, ("", ""))
    return spec_prefix + name.removeprefix(wireshark_prefix) if name.startswith(wireshark_prefix) else name


HEADER = '''"""DCE/RPC interface and operation names. Generated by scripts/generate_rpc_interfaces.py: do not edit.

UUIDs from the specs' IDL (impacket's transcriptions, and the script's SPEC_UUIDS), interface names
as tshark names them, operation names from the specs where impacket or the script lists them, else
as Wireshark names them; WIRESHARK_OPERATIONS holds Wireshark's name where it differs.
"""

from __future__ import annotations

'''


def render(interfaces: dict, operations: dict, wireshark: dict) -> str:
    out = [HEADER, "# (interface UUID, major version) -> (name, display name)\n"]
    out.append("INTERFACES: dict[tuple[str, int], tuple[str, str]] = {\n")
    out += [f'    ("{text}", {major}): ("{name}", "{display}"),\n' for (text, major), (name, display) in
            sorted(interfaces.items())]  # fmt: skip
    out.append("}\n\n# (interface UUID, opnum) -> operation name\nOPERATIONS: dict[tuple[str, int], str] = {\n")
    out += [f'    ("{text}", {opnum}): "{name}",\n' for (text, opnum), name in sorted(operations.items())]
    out.append("}\n\n# (interface UUID, opnum) -> the name tshark shows, where it is not OPERATIONS'\n")
    out.append("WIRESHARK_OPERATIONS: dict[tuple[str, int], str] = {\n")
    out += [f'    ("{text}", {opnum}): "{name}",\n' for (text, opnum), name in sorted(wireshark.items())]
    out.append("}\n")
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args()
    try:
        tables = build()
    except (ImportError, FileNotFoundError) as missing:
        print(f"source not available: {missing} (needs impacket and tshark)", file=sys.stderr)
        return 2
    if len(tables[0]) < 40 or len(tables[1]) < 800:
        print(f"only {len(tables[0])} interfaces, {len(tables[1])} operations found: wrong source?", file=sys.stderr)
        return 1
    text = render(*tables)
    if args.check:
        return 0 if OUTPUT.read_text() == text else 1
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(tables[0])} interfaces, {len(tables[1])} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
