"""The after-login alert kinds on every recorded capture and every peer capture: each fires where its
activity is on the wire, and nowhere else (the controls and the captures without such activity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.detect.activity import ACTIVITY_ALERT_KINDS
from tests.retirement_reports import document_of

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "pcaps-public" / "suricata-verify"

# What each capture holds (everything not listed holds none of these activities).
RECORDED_EXPECTED = {
    # psexec.py and impacket's library: an .exe written to ADMIN$, then svcctl CreateService/StartService
    "recorded/psexec_impacket.pcap": {"admin_share_executable", "remote_execution", "lateral_movement"},
    # 30 files replaced by .locked copies and deleted, 6 of them renamed first
    "recorded/files_ransomware_like.pcap": {"ransomware_activity"},
    # netdfs NetrDfsRemoveStdRoot and spoolss RpcRemoteFindFirstPrinterChangeNotificationEx (the EFSRPC bind is refused)
    "recorded/rpc_coercion_attempts.pcap": {"rpc_coercion"},
    # RpcAddPrinterDriverEx (PrintNightmare's call) and rpcclient's RpcAddPrinterDriver
    "recorded/print_driver_install.pcap": {"print_driver_install"},
    # smbclient puts tool.exe (MZ, then text) on ADMIN$: no RPC, so no lateral movement
    "recorded/admin_share_copy_exe.pcap": {"admin_share_executable"},
    # 25 files renamed to .locked and overwritten over SMB1 (RENAME, NT_CREATE_ANDX overwrite)
    "recorded/files_ransomware_smb1.pcap": {"ransomware_activity"},
    # the controls: a backup reading 60 files, a deployment writing 60, a user renaming 4 and deleting 2,
    # and the same ransomware-like client over encrypted SMB3 (only transform headers visible) stay silent
}
PUBLIC_EXPECTED = {
    # Windows PsExec sessions: PSEXESVC.exe written to ADMIN$ and a service created
    "filestore-filecontainer-smb": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "filestore-filecontainer-smb1-data-offset": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "flow-tx-cnt": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "smb-filename": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "smb2-07": {"admin_share_executable", "remote_execution", "lateral_movement"},
    "smb2-07-frames": {"admin_share_executable", "remote_execution", "lateral_movement"},
    # svcctl CreateService without a file on an admin share in the capture
    "bug-5162": {"remote_execution"},
    "dcerpc-smb-fail": {"remote_execution"},
    "dcerpc-smb-test-01": {"remote_execution"},
    # atsvc NetrJobAdd
    "dcerpc__dcerpc-smb-ctxid": {"remote_execution"},
    # PrintNightmare attempts: RpcAddPrinterDriverEx, refused
    "smb-dce_iface": {"print_driver_install"},
    "smb-dce_opnum": {"print_driver_install"},
}
RECORDED = sorted(str(path.relative_to(PCAPS)) for path in (PCAPS / "recorded").glob("*.pcap*"))
PUBLIC_CAPTURES = sorted(PUBLIC.glob("*/*.pcap")) if PUBLIC.is_dir() else []


def _activity_alerts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [alert for alert in document["alerts"] if alert["kind"] in ACTIVITY_ALERT_KINDS]


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_captures_raise_exactly_their_activity(name: str) -> None:
    kinds = {alert["kind"] for alert in _activity_alerts(document_of(name))}
    assert kinds == RECORDED_EXPECTED.get(name, set())


@pytest.mark.skipif(not PUBLIC_CAPTURES, reason="peer captures not present (../shared/pcaps-public)")
@pytest.mark.parametrize("path", PUBLIC_CAPTURES, ids=[p.parent.name for p in PUBLIC_CAPTURES])
def test_peer_captures_raise_exactly_their_activity(path: Path) -> None:
    kinds = {alert["kind"] for alert in _activity_alerts(document_of(str(path)))}
    assert kinds == PUBLIC_EXPECTED.get(path.parent.name, set())


def test_psexec_alerts_name_the_call_the_file_and_the_refusal() -> None:
    alerts = {alert["kind"]: alert for alert in _activity_alerts(document_of("recorded/psexec_impacket.pcap"))}
    written = alerts["admin_share_executable"]["detail"]
    assert (written["share"], written["path"], written["how"]) == ("ADMIN$", "smbwatch-fixture.exe", "created")
    assert written["session_users"] == ["SMBWLAB\\alice"]
    execution = alerts["remote_execution"]["detail"]
    assert (execution["interface"], execution["operation"]) == ("svcctl", "RCreateServiceW")
    assert (execution["result"], execution["accepted"]) == ("nca_op_rng_error", False)
    lateral = alerts["lateral_movement"]
    assert lateral["detail"]["executable"]["path"] == "smbwatch-fixture.exe"
    assert lateral["detail"]["execution"]["operation"] == "RCreateServiceW"
    assert len(lateral["connections"]) == 2  # the upload and the service call came on two connections


def test_coercion_alerts_one_per_technique_with_the_servers_answer() -> None:
    alerts = _activity_alerts(document_of("recorded/rpc_coercion_attempts.pcap"))
    assert sorted((a["detail"]["interface"], a["detail"]["operation"], a["detail"]["result"]) for a in alerts) == [
        ("netdfs", "NetrDfsRemoveStdRoot", "nca_op_rng_error"),
        ("spoolss", "RpcRemoteFindFirstPrinterChangeNotificationEx", "RPC_S_SERVER_UNAVAILABLE"),
    ]


def test_print_driver_install_names_the_refusal() -> None:
    (alert,) = _activity_alerts(document_of("recorded/print_driver_install.pcap"))
    assert (alert["detail"]["operation"], alert["detail"]["result"]) == ("RpcAddPrinterDriverEx", "ERROR_INVALID_LEVEL")
    assert alert["detail"]["repeats"] == 0


def test_ransomware_alert_names_the_new_extension() -> None:
    (alert,) = _activity_alerts(document_of("recorded/files_ransomware_like.pcap"))
    detail = alert["detail"]
    assert detail["files_changed"] == 20  # raised with the 20th file, not at the end
    assert detail["common_new_extension"] == ".locked"
    assert detail["share"] == "UPLOAD"


def test_the_table_summarises_activity_per_connection_not_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    assert main(["analyze", str(PCAPS / "recorded/psexec_impacket.pcap")]) == 0
    out = capsys.readouterr().out
    section = out[out.index("\nActivity (2 connections with files or DCE/RPC)") : out.index("\nAlerts (")]
    rows = section.strip().splitlines()[2:]
    assert len(rows) == 2  # one row per connection
    assert "open 1, create 1, write 1, delete 1" in rows[0]
    assert "svcctl: ROpenSCManagerW [ERROR_ACCESS_DENIED]" in rows[0]
    assert "RCreateServiceW [nca_op_rng_error]" in rows[1]


def test_encrypted_smb3_shows_no_activity_and_the_rule_does_not_guess() -> None:
    document = document_of("recorded/files_ransomware_encrypted.pcap")
    (connection,) = document["connections"]
    assert connection["encrypted"] and connection["messages"]["encrypted"] > 900
    assert connection["files"] == [] and connection["rpc"] == []
    assert _activity_alerts(document) == []


def test_smb1_ransomware_is_seen_through_rename_and_overwrite() -> None:
    (alert,) = _activity_alerts(document_of("recorded/files_ransomware_smb1.pcap"))
    assert alert["detail"]["files_changed"] == 20
    assert set(alert["detail"]["actions"]) <= {"rename", "overwrite"}
