"""The rules on DCE/RPC calls over SMB named pipes: which calls are remote execution, a printer
driver install, or a coercion attempt (`classify_call`, used by `monitor.smb.rpc.RpcTracker`).

They key on the interface UUID and the operation number the client asked for, never on pipe
names, service names or binary names: impacket lets its users rename all of those, and an
interface is reachable over more than one pipe (EFSRPC over \\PIPE\\lsarpc as well as
\\PIPE\\efsrpc). The finding is raised when the server's answer arrives, so the alert says
whether the server ran the call (a response) or refused it (a fault and its status).
"""

from __future__ import annotations

from typing import Final

ALERT_REMOTE_EXECUTION: Final = "remote_execution"
ALERT_PRINT_DRIVER_INSTALL: Final = "print_driver_install"
ALERT_RPC_COERCION: Final = "rpc_coercion"
ALERT_RPC_BIG_ENDIAN: Final = "rpc_big_endian"

# Interface UUIDs, from each protocol's IDL.
SVCCTL: Final = "367abb81-9844-35f1-ad32-98f038001003"  # [MS-SCMR] 1.9
ATSVC: Final = "1ff70682-0a51-30e8-076d-740be8cee98b"  # [MS-TSCH] 1.9, ATSvc
ITASKSCHEDULERSERVICE: Final = "86d35949-83c9-4044-b424-db363231fd0c"  # [MS-TSCH] 1.9
SPOOLSS: Final = "12345678-1234-abcd-ef00-0123456789ab"  # [MS-RPRN] 1.9, winspool
IREMOTEWINSPOOL: Final = "76f03f96-cdfd-44fc-a22c-64950a001209"  # [MS-PAR] 1.9
EFSRPC_LSARPC: Final = "c681d488-d850-11d0-8c52-00c04fd90f7e"  # [MS-EFSR] 1.9, over \PIPE\lsarpc
EFSRPC: Final = "df1941c5-fe89-4e79-bf10-463657acf44d"  # [MS-EFSR] 1.9, over \PIPE\efsrpc
NETDFS: Final = "4fc742e0-4a10-11cf-8273-00aa004ae673"  # [MS-DFSNM] 1.9
FSRVP: Final = "a8e0653c-2744-4389-a61d-7373df8b2292"  # [MS-FSRVP] 1.9, FileServerVssAgent

# [MS-SCMR] 3.1.4: creating, reconfiguring or starting a service runs a binary of the caller's choice.
_SVCCTL_EXECUTION = (
    11,  # RChangeServiceConfigW
    12,  # RCreateServiceW
    19,  # RStartServiceW
    23,  # RChangeServiceConfigA
    24,  # RCreateServiceA
    31,  # RStartServiceA
    36,  # RChangeServiceConfig2A
    37,  # RChangeServiceConfig2W
    44,  # RCreateServiceWOW64A
    45,  # RCreateServiceWOW64W
    60,  # RCreateWowService
)
REMOTE_EXECUTION_CALLS: Final = frozenset(
    [(SVCCTL, opnum) for opnum in _SVCCTL_EXECUTION]
    + [
        (ATSVC, 0),  # NetrJobAdd, [MS-TSCH] 3.2.5.2.1
        (ITASKSCHEDULERSERVICE, 1),  # SchRpcRegisterTask, [MS-TSCH] 3.2.5.4.2
        (ITASKSCHEDULERSERVICE, 12),  # SchRpcRun, [MS-TSCH] 3.2.5.4.13
    ]
)
PRINT_DRIVER_INSTALL_CALLS: Final = frozenset(
    (
        (SPOOLSS, 9),  # RpcAddPrinterDriver, [MS-RPRN] 3.1.4.4.2
        (SPOOLSS, 89),  # RpcAddPrinterDriverEx, [MS-RPRN] 3.1.4.4.8 (PrintNightmare, CVE-2021-34527)
        (IREMOTEWINSPOOL, 39),  # RpcAsyncAddPrinterDriver, [MS-PAR] 3.1.4.2.2
    )
)
# Calls that make a server authenticate to a path the caller names (PetitPotam, DFSCoerce, PrinterBug,
# ShadowCoerce): every EFSRPC call qualifies (a file server never needs remote EFS from a client in
# practice), the rest are the operations the public tools use.
_EFSRPC_OPERATIONS = range(0, 45)  # [MS-EFSR] 3.1.4: opnums 0-44
RPC_COERCION_CALLS: Final = frozenset(
    [(EFSRPC, opnum) for opnum in _EFSRPC_OPERATIONS]
    + [(EFSRPC_LSARPC, opnum) for opnum in _EFSRPC_OPERATIONS]
    + [
        (NETDFS, 12),  # NetrDfsAddStdRoot, [MS-DFSNM] 3.1.4.4.1
        (NETDFS, 13),  # NetrDfsRemoveStdRoot, [MS-DFSNM] 3.1.4.4.2
        (SPOOLSS, 62),  # RpcRemoteFindFirstPrinterChangeNotification, [MS-RPRN] 3.1.4.10.3
        (SPOOLSS, 65),  # RpcRemoteFindFirstPrinterChangeNotificationEx, [MS-RPRN] 3.1.4.10.4
        (FSRVP, 8),  # IsPathSupported, [MS-FSRVP] 3.1.4.9
        (FSRVP, 9),  # IsPathShadowCopied, [MS-FSRVP] 3.1.4.10
    ]
)


def classify_call(uuid: str, opnum: int) -> str | None:
    """The alert kind a call to operation `opnum` of interface `uuid` (lower-case) raises, if any."""
    key = (uuid, opnum)
    if key in REMOTE_EXECUTION_CALLS:
        return ALERT_REMOTE_EXECUTION
    if key in PRINT_DRIVER_INSTALL_CALLS:
        return ALERT_PRINT_DRIVER_INSTALL
    if key in RPC_COERCION_CALLS:
        return ALERT_RPC_COERCION
    return None
