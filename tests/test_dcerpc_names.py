"""DCE/RPC interface and operation names (dissectors/dcerpc/names.py, generated interfaces.py).

The facts checked first are the specs' (UUIDs of [MS-SCMR], [MS-TSCH], [MS-RPRN], [MS-PAR],
[MS-EFSR], [MS-DFSNM], [MS-FSRVP] ... and the opnums of the operations attacks use); then that
the committed table is what the generator makes of its sources; then that the names are the
ones tshark prints on every recorded and public capture that carries DCE/RPC.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dissectors.dcerpc import interfaces
from dissectors.dcerpc.names import (
    interface_display_name,
    interface_name,
    operation_name,
    wireshark_operation_name,
)

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "scripts" / "generate_rpc_interfaces.py"
RECORDED = ROOT / "pcaps" / "recorded"
SURICATA_VERIFY = ROOT.parent / "shared" / "pcaps-public" / "suricata-verify"

# name -> (UUID, major version, {opnum: operation}) as the specs give them.
REQUIRED = {
    "svcctl": ("367abb81-9844-35f1-ad32-98f038001003", 2, {0: "RCloseServiceHandle", 12: "RCreateServiceW"}),
    "atsvc": ("1ff70682-0a51-30e8-076d-740be8cee98b", 1, {0: "NetrJobAdd"}),
    "ITaskSchedulerService": ("86d35949-83c9-4044-b424-db363231fd0c", 1, {1: "SchRpcRegisterTask", 12: "SchRpcRun"}),
    "srvsvc": ("4b324fc8-1670-01d3-1278-5a47bf6ee188", 3, {15: "NetrShareEnum", 21: "NetrServerGetInfo"}),
    "wkssvc": ("6bffd098-a112-3610-9833-46c3f87e345a", 1, {0: "NetrWkstaGetInfo"}),
    "samr": ("12345778-1234-abcd-ef00-0123456789ac", 1, {0: "SamrConnect", 64: "SamrConnect5"}),
    "lsarpc": ("12345778-1234-abcd-ef00-0123456789ab", 0, {44: "LsarOpenPolicy2"}),
    "netlogon": (
        "12345678-1234-abcd-ef00-01234567cffb",
        1,
        {4: "NetrServerReqChallenge", 30: "NetrServerPasswordSet2"},
    ),
    "winreg": ("338cd001-2244-31f1-aaaa-900038001003", 1, {2: "OpenLocalMachine", 22: "BaseRegSetValue"}),
    "spoolss": (
        "12345678-1234-abcd-ef00-0123456789ab",
        1,
        {1: "RpcOpenPrinter", 65: "RpcRemoteFindFirstPrinterChangeNotificationEx", 89: "RpcAddPrinterDriverEx"},
    ),
    "IRemoteWinspool": (
        "76f03f96-cdfd-44fc-a22c-64950a001209",
        1,
        {0: "RpcAsyncOpenPrinter", 39: "RpcAsyncAddPrinterDriver"},
    ),
    "netdfs": ("4fc742e0-4a10-11cf-8273-00aa004ae673", 3, {12: "NetrDfsAddStdRoot", 13: "NetrDfsRemoveStdRoot"}),
    "FileServerVssAgent": ("a8e0653c-2744-4389-a61d-7373df8b2292", 1, {8: "IsPathSupported", 9: "IsPathShadowCopied"}),
    "drsuapi": ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", 4, {0: "DRSBind", 3: "DRSGetNCChanges"}),
    # impacket has no epm opnum table: Wireshark's name of [C706] ept_map stands.
    "epmapper": ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", 3, {3: "Map"}),
    "eventlog": ("82273fdc-e32a-18c3-3f78-827929dc23ea", 0, {0: "ElfrClearELFW", 7: "ElfrOpenELW"}),
    "IWbemLevel1Login": ("f309ad18-d86a-11d0-a075-00c04fb68820", 0, {6: "NTLMLogin"}),
    "IRemoteSCMActivator": ("000001a0-0000-0000-c000-000000000046", 0, {4: "RemoteCreateInstance"}),
}
EFSRPC = {0: "EfsRpcOpenFileRaw", 4: "EfsRpcEncryptFileSrv", 5: "EfsRpcDecryptFileSrv", 12: "EfsRpcFileKeyInfo"}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_interface_has_the_specs_uuid_and_opnums(name: str) -> None:
    uuid, major, operations = REQUIRED[name]
    assert interface_name(uuid, major) == name
    assert interfaces.INTERFACES[(uuid, major)][0] == name
    assert interface_name(uuid.upper(), major) == name  # text forms differ in case only
    for opnum, operation in operations.items():
        assert operation_name(uuid, opnum) == operation, opnum


@pytest.mark.parametrize(
    ("uuid", "pipe"),
    [("c681d488-d850-11d0-8c52-00c04fd90f7e", "lsarpc"), ("df1941c5-fe89-4e79-bf10-463657acf44d", "efsrpc")],
)
def test_efsrpc_under_both_uuids(uuid: str, pipe: str) -> None:
    """[MS-EFSR] 1.9: one interface, version 1.0, over \\pipe\\lsarpc and over \\pipe\\efsrpc."""
    assert interface_name(uuid, 1) == "efsrpc", pipe
    assert {opnum: operation_name(uuid, opnum) for opnum in EFSRPC} == EFSRPC


def test_unknown_interfaces_and_opnums_read_plainly() -> None:
    unknown = "01234567-89ab-cdef-0123-456789abcdef"
    assert interface_name(unknown, 1) == interface_display_name(unknown, 1) == unknown
    assert interface_name(unknown.upper(), 1) == unknown
    assert operation_name(unknown, 7) == wireshark_operation_name(unknown, 7) == "opnum 7"
    assert operation_name(REQUIRED["svcctl"][0], 4000) == "opnum 4000"
    # A version the table does not list still names a known UUID.
    assert interface_name(REQUIRED["srvsvc"][0], 2) == "srvsvc"
    assert interface_display_name(REQUIRED["srvsvc"][0], 3) == "Server Service"


def test_table_is_well_formed() -> None:
    known = {uuid for uuid, _major in interfaces.INTERFACES}
    assert len(interfaces.INTERFACES) >= 40 and len(interfaces.OPERATIONS) >= 800
    assert {uuid for uuid, _opnum in interfaces.OPERATIONS} <= known
    assert set(interfaces.WIRESHARK_OPERATIONS) <= set(interfaces.OPERATIONS)
    for uuid, _major in interfaces.INTERFACES:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", uuid)
    assert all(name and " " not in name for name in interfaces.OPERATIONS.values())


def _generator():
    spec = importlib.util.spec_from_file_location("generate_rpc_interfaces", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_file_is_what_the_generator_makes() -> None:
    """--check regenerates from impacket and tshark; skipped where either is absent (exit 2)."""
    try:
        import impacket  # noqa: F401
    except ImportError:
        pytest.skip("impacket is not installed: the generator's source is absent")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: the generator's source is absent")
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (
        "Generated by scripts/generate_rpc_interfaces.py: do not edit"
        in (ROOT / "dissectors/dcerpc/interfaces.py").read_text()
    )


# --- tshark on the captures that carry DCE/RPC ----------------------------------------

CAPTURES = {
    RECORDED / "smb1_named_pipe.pcap": {"srvsvc"},
    RECORDED / "auth_anonymous.pcap": {"srvsvc"},
    SURICATA_VERIFY / "bug-5162/input.pcap": {"netlogon", "svcctl", "epmapper", "drsuapi"},
    SURICATA_VERIFY / "dcerpc-smb-fail/input.pcap": {"netlogon", "svcctl", "epmapper", "drsuapi"},
    SURICATA_VERIFY / "dcerpc__dcerpc-3109/input.pcap": {"atsvc"},
    SURICATA_VERIFY / "smb-dce_iface/input.pcap": {"spoolss"},
    SURICATA_VERIFY / "smb-dce_opnum/input.pcap": {"spoolss"},
    SURICATA_VERIFY / "smb2-04/20171220_smb_at_schedule.pcap": {"atsvc"},
    SURICATA_VERIFY / "smb2-06/20171220_smb_net_user.pcap": {"lsarpc", "samr"},
    SURICATA_VERIFY / "smb2-07/20171220_smb_psexec_add_user.pcap": {"svcctl", "epmapper"},
    SURICATA_VERIFY / "filestore-filecontainer-smb/filecontainer-smb.pcap": {"winreg", "svcctl", "srvsvc", "wkssvc"},
    # Samba's Spotlight (mdssvc): tshark knows it, the specs and so the table do not.
    SURICATA_VERIFY / "smb-length-5770/input.pcap": set(),
}
_BIND = re.compile(
    r'name="dcerpc.cn_ctx_id"[^>]* show="(\d+)".*?showname="Interface: (.*?) UUID: ([0-9a-f-]+)".*?'
    r'name="dcerpc.cn_bind_if_ver"[^>]* show="(\d+)"',
    re.S,
)
_OPERATION = re.compile(r'<field name="[a-z0-9_.]+\.opnum" showname="Operation: (.*?) \((\d+)\)"')


def tshark_names(capture: Path) -> tuple[list[tuple[str, int, str]], list[tuple[str, int, str]]]:
    """(UUID, version, tshark's interface name) of each bound context; (UUID, opnum, tshark's name) of each request."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install.sh installs it)")
    if not capture.exists():
        pytest.skip(f"{capture} absent: the peer's captures are not tested")
    pdml = subprocess.run(
        [tshark, "-r", str(capture), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "dcerpc", "-T", "pdml"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    bound: dict[tuple[tuple[str, str | None], int], str] = {}
    binds, requests = [], []
    for packet in pdml.split("<packet>")[1:]:
        # Contexts are per pipe: the TCP connection and the SMB file id of the pipe.
        fid = re.search(r'name="smb2?.fid"[^>]* show="([^"]+)"', packet)
        stream = (re.search(r'name="tcp.stream"[^>]* show="(\d+)"', packet).group(1), fid and fid.group(1))
        for pdu in packet.split('<proto name="dcerpc"')[1:]:
            ptype = int(re.search(r'name="dcerpc.pkt_type"[^>]* show="(\d+)"', pdu).group(1))
            if ptype in (11, 14):  # bind, alter_context: one item per presentation context
                for item in pdu.split('name="dcerpc.cn_ctx_item"')[1:]:
                    found = _BIND.search(item)
                    if found:
                        context, name, uuid, version = found.groups()
                        bound[(stream, int(context))] = uuid
                        binds.append((uuid, int(version), name))
            elif ptype == 0:
                context = int(re.search(r'name="dcerpc.cn_ctx_id"[^>]* show="(\d+)"', pdu).group(1))
                shown = _OPERATION.search(pdu)
                if shown and (stream, context) in bound:
                    requests.append((bound[(stream, context)], int(shown.group(2)), shown.group(1)))
    return binds, requests


@pytest.mark.oracle
@pytest.mark.public
@pytest.mark.parametrize("capture", sorted(CAPTURES), ids=lambda path: path.parent.name + "/" + path.name)
def test_names_agree_with_tshark(capture: Path) -> None:
    spec_names = _generator().SPEC_NAMES
    binds, requests = tshark_names(capture)
    assert binds, "tshark shows no bind"
    named = set()
    for uuid, version, shown in binds:
        if (uuid, version) in interfaces.INTERFACES:
            assert interface_name(uuid, version) == spec_names.get(shown, shown), uuid
            named.add(interface_name(uuid, version))
        else:  # not in the table: the UUID is the name
            assert interface_name(uuid, version) == uuid
    assert named == CAPTURES[capture]
    compared = Counter()
    for uuid, opnum, shown in requests:
        if shown == "Unknown operation":  # Wireshark has no name for it: the table's is the spec's
            assert (uuid, opnum) not in interfaces.WIRESHARK_OPERATIONS
            assert operation_name(uuid, opnum) != f"opnum {opnum}", (uuid, opnum)
            compared[interface_name(uuid, 0)] += 1
        elif (uuid, opnum) in interfaces.OPERATIONS:
            assert wireshark_operation_name(uuid, opnum) == shown, (uuid, opnum)
            compared[interface_name(uuid, 0)] += 1
        else:
            assert operation_name(uuid, opnum) == f"opnum {opnum}"
    assert set(compared) == CAPTURES[capture]
