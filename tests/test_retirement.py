"""The SMB1 retirement report: verdict per pair, highest dialects, OS hints, JSON and table output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import analyze_files, main
from monitor.flows import FlowLimits
from monitor.inventory import HostFacts
from monitor.report import SMB1_REPORT_SCHEMA, build_document
from monitor.retirement import VERDICT_BREAKS, os_hint, pair_verdict

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "pcaps-public" / "suricata-verify"


def hosts_of(*names: str) -> dict[str, dict]:
    document = build_document(analyze_files([str(PCAPS / name) for name in names], FlowLimits(), 1000))
    return {host["ip"]: host for host in document["hosts"]}


def facts(ip: str, offered: set[str] = frozenset(), accepted: set[str] = frozenset()) -> HostFacts:
    host = HostFacts(ip)
    host.offered_as_client.update(offered)
    host.dialects_as_server.update(accepted)
    return host


def test_a_client_offering_only_smb1_breaks() -> None:
    hosts = hosts_of("crafted/ms17_010_unpatched.pcap")
    entry = hosts["192.0.2.66"]["smb1_retirement"]
    [pair] = entry["pairs"]
    assert (pair["peer"], pair["role"], pair["verdict"]) == ("192.0.2.20", "client", VERDICT_BREAKS)
    assert pair["reason"].startswith("the client offered only SMB1 dialects")
    assert entry["breaks_if_smb1_disabled"] and entry["highest_dialect_offered"] == "SMB1 only"
    assert entry["os_hint"]["by_dialect"] == "Windows XP/2003-era or old NAS/embedded"
    assert entry["os_hint"]["is_hint"] is True
    assert hosts["192.0.2.20"]["smb1_retirement"]["pairs"][0]["role"] == "server"


def test_a_pair_that_also_speaks_smb3_can_upgrade() -> None:
    """The same smbclient and smbd, once forced to NT1 and once left at their defaults."""
    hosts = hosts_of("recorded/smb1_nt1.pcap", "recorded/smb3_1_1.pcap")
    [pair] = hosts["192.0.2.10"]["smb1_retirement"]["pairs"]
    assert pair["verdict"] == "safe to disable, upgrade to 3.1.1" and pair["upgrade_to"] == "3.1.1"
    assert pair["connections"] == 1 and pair["smb1_dialects"] == ["NT LANMAN 1.0"]
    assert not hosts["192.0.2.20"]["smb1_retirement"]["breaks_if_smb1_disabled"]
    assert hosts["192.0.2.20"]["smb1_retirement"]["highest_dialect_accepted"] == "3.1.1"


def test_alone_the_forced_nt1_session_breaks() -> None:
    [pair] = hosts_of("recorded/smb1_nt1.pcap")["192.0.2.10"]["smb1_retirement"]["pairs"]
    assert pair["verdict"] == VERDICT_BREAKS
    assert pair["reason"] == "the client offered only SMB1 dialects; the server was seen speaking only SMB1"


def test_nmap_protocol_probe_shows_the_server_speaks_smb3() -> None:
    [pair] = hosts_of("recorded/nmap_smb_protocols.pcap")["192.0.2.20"]["smb1_retirement"]["pairs"]
    assert pair["verdict"] == "safe to disable, upgrade to 3.1.1"


def test_offered_and_upgraded_is_not_in_the_report() -> None:
    hosts = hosts_of("recorded/smb1_offered_upgraded.pcap")
    assert all(host["smb1_retirement"] is None for host in hosts.values())


def test_verdict_rules() -> None:
    server_smb1 = facts("s", accepted={"NT LM 0.12"})
    server_smb3 = facts("s", accepted={"NT LM 0.12", "3.0.2"})
    assert pair_verdict(facts("c", {"NT LM 0.12", "SMB 2.002"}), server_smb1)["verdict"] == VERDICT_BREAKS
    assert pair_verdict(facts("c", {"NT LM 0.12", "SMB 2.002"}), server_smb3)["upgrade_to"] == "2.0.2"
    assert pair_verdict(facts("c", {"NT LM 0.12", "SMB 2.???"}), server_smb3)["upgrade_to"] == "3.0.2"
    assert pair_verdict(facts("c", {"2.0.2", "3.1.1"}), server_smb3)["upgrade_to"] == "3.0.2"
    assert pair_verdict(facts("c"), server_smb3)["verdict"].startswith("unknown")  # negotiation not captured
    assert pair_verdict(None, server_smb3)["verdict"].startswith("unknown")


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        (["NTLMSSP version 6.1.7601"], "Windows 7/2008 R2"),
        (["NTLMSSP version 5.1.2600"], "Windows XP"),
        (["NTLMSSP version 10.0.17763"], "Windows 10 1809/Server 2019"),
        (["NTLMSSP version 10.0.20348"], "Windows Server 2022"),
        (["native OS Windows 5.1", "native LAN manager Windows 2000 LAN Manager"], "Windows 5.1"),
        (["NTLMSSP version 6.1.0", "native LAN manager Samba 4.17.12-Debian"], "Samba on Linux/Unix or a NAS"),
        ([], "Windows XP/2003-era or old NAS/embedded"),
    ],
)
def test_os_hint_refinements(hints: list[str], expected: str) -> None:
    hint = os_hint("SMB1 only", hints)
    assert hint["hint"].startswith(expected)
    assert hint["by_dialect"] == "Windows XP/2003-era or old NAS/embedded" and hint["is_hint"]


def test_cli_smb1_report_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(PCAPS / "crafted" / "ms17_010_unpatched.pcap"), str(PCAPS / "recorded" / "smb3_1_1.pcap")]
    assert main(["analyze", "--report", "smb1", "--format", "json", *files]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == SMB1_REPORT_SCHEMA
    assert sorted(host["ip"] for host in document["hosts"]) == ["192.0.2.20", "192.0.2.66"]
    assert main(["analyze", "--report", "smb1", *files]) == 0
    table = capsys.readouterr().out
    assert "2 hosts used SMB1, 2 would break if it were disabled" in table
    assert "BREAKS if SMB1 is disabled" in table and "192.0.2.10" not in table


@pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"../shared/pcaps-public absent: {PUBLIC} not found")
def test_an_old_nas_that_speaks_only_smb1() -> None:
    """smb1-02: a QNAP TS-412 (Samba 4.4) and a client that offered only NT LM 0.12."""
    document = build_document(analyze_files([str(PUBLIC / "smb1-02" / "smb1_osx.pcap")], FlowLimits(), 100))
    nas = next(host for host in document["hosts"] if host["ip"] == "192.168.1.2")["smb1_retirement"]
    assert nas["breaks_if_smb1_disabled"] and nas["highest_dialect_accepted"] == "SMB1 only"
    assert nas["os_hint"]["hint"].startswith("Samba") and "4.4.16" in nas["os_hint"]["hint"]
