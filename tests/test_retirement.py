"""The SMB1 retirement report: verdict per pair, highest dialects, OS hints, JSON and table output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dissectors.records import AnomalyKind
from monitor.cli import analyze_files, main
from monitor.input.capture import CaptureFile
from monitor.output import inventory as inventory_module
from monitor.output.inventory import HostFacts, Inventory, Smb1Pair
from monitor.output.report import SMB1_REPORT_SCHEMA, build_document, build_smb1_report
from monitor.output.retirement import VERDICT_BREAKS, os_hint, pair_status, pair_verdict
from monitor.pipeline import Pipeline
from monitor.tcp.flows import FlowLimits
from tests.retirement_reports import document_of, hosts_of, pairs_of

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "pcaps-public" / "suricata-verify"


def facts(ip: str, offered: set[str] = frozenset(), accepted: set[str] = frozenset()) -> HostFacts:
    host = HostFacts(ip)
    host.offered_as_client = frozenset(offered)
    host.dialects_as_server = frozenset(accepted)
    return host


def connection_uses(*names: str) -> list[list[str]]:
    return [c["uses"] for c in document_of(*names)["connections"]]


# --- uses: one positive and one negative capture each ---------------------------------------------


def test_file_access_is_a_disk_tree_with_file_commands() -> None:
    assert connection_uses("recorded/smb1_nt1.pcap") == [["file_access"]]  # DATA share, TRANS2 FIND_FIRST2
    assert "file_access" not in connection_uses("recorded/auth_plaintext_smb1.pcap")[0]


def test_negotiate_only_and_session_only() -> None:
    smb1_probe = connection_uses("recorded/nmap_smb_protocols.pcap")[0]
    assert smb1_probe == ["negotiate_only"]
    assert connection_uses("recorded/auth_plaintext_smb1.pcap") == [["session_only"]]  # login refused, nothing else
    assert "session_only" not in connection_uses("recorded/smb1_nt1.pcap")[0]
    assert "negotiate_only" not in connection_uses("recorded/auth_plaintext_smb1.pcap")[0]


def test_refused_is_the_server_refusing_every_smb1_dialect() -> None:
    assert connection_uses("recorded/smb1_refused.pcap") == [["refused"]]
    assert "refused" not in connection_uses("recorded/smb1_nt1.pcap")[0]


def test_an_ipc_tree_with_only_a_dfs_referral_is_no_pipe_use() -> None:
    """smbclient sends TRANS2 GET_DFS_REFERRAL on IPC$: no pipe is opened, so no named_pipe use."""
    document = build_document(analyze_files([str(PCAPS / "recorded" / "auth_ntlmv2_smb1.pcap")], FlowLimits(), 10))
    [connection] = document["connections"]
    assert any(tree["share_type"] == "pipe" for tree in connection["trees"])
    assert connection["uses"] == ["file_access"] and connection["named_pipes"] == []


@pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"../shared/pcaps-public absent: {PUBLIC} not found")
def test_browsing_is_rap_over_pipe_lanman_and_breaks_even_beside_smb3() -> None:
    """A Windows client on port 139 offering only NT LM 0.12 for NetServerEnum2 (tshark: lanman.function_code
    104 in frames 246 and 248), while the same pair speaks SMB 3.0.2 on 445."""
    document = build_document(
        analyze_files([str(PUBLIC / "smb2-ntlmssp-negotiateflags" / "input.pcap")], FlowLimits(), 100)
    )
    [browsing] = [c for c in document["connections"] if c["smb1_used"]]
    assert browsing["server"]["port"] == 139 and browsing["uses"] == ["browsing"]
    assert browsing["rap_functions"] == ["NetServerEnum2"]
    assert any(c["dialect"] == "3.0.2" for c in document["connections"])
    host = next(h for h in document["hosts"] if h["ip"] == "192.168.199.133")["smb1_retirement"]
    [pair] = host["pairs"]
    assert pair["status"] == "breaks" and pair["breaks_if_smb1_disabled"]
    assert pair["uses"] == ["browsing"] and "NetServerEnum2" in pair["reason"]


# --- statuses ----------------------------------------------------------------------------------------


def test_attack_traffic_is_attack_only_never_a_dependency() -> None:
    for capture in (
        "crafted/ms17_010_unpatched.pcap",
        "crafted/eternalblue_patterns.pcap",
        "recorded/nmap_ms17_010.pcap",
    ):
        [pair] = pairs_of(capture).values()
        assert pair["status"] == "attack_only" and pair["uses"] == ["attack"], capture
        assert not pair["breaks_if_smb1_disabled"] and pair["attack_alerts"]
    hosts = hosts_of("crafted/ms17_010_unpatched.pcap")
    assert not hosts["192.0.2.66"]["smb1_retirement"]["breaks_if_smb1_disabled"]
    assert hosts["192.0.2.20"]["smb1_retirement"]["pairs"][0]["role"] == "server"


def test_a_client_offering_only_smb1_for_files_breaks_even_when_the_pair_speaks_smb3_elsewhere() -> None:
    """The same smbclient and smbd, once forced to NT1 and once left at their defaults: the forced
    connection's file access needs SMB1 (another program, another SMB stack), so disabling it breaks."""
    pairs = pairs_of("recorded/smb1_nt1.pcap", "recorded/smb3_1_1.pcap")
    pair = pairs["192.0.2.10", "192.0.2.20"]
    assert pair["status"] == "breaks" and pair["uses"] == ["file_access"]
    assert pair["reason"] == "the client offered only SMB1 dialects on 1 connection(s) used for file_access"
    assert pair["connections"] == 1 and pair["smb1_dialects"] == ["NT LANMAN 1.0"]
    hosts = hosts_of("recorded/smb1_nt1.pcap", "recorded/smb3_1_1.pcap")
    assert hosts["192.0.2.20"]["smb1_retirement"]["highest_dialect_accepted"] == "3.1.1"
    assert hosts["192.0.2.10"]["smb1_retirement"]["breaks_if_smb1_disabled"]


def test_a_dialect_probe_of_a_pair_that_speaks_smb3_is_safe() -> None:
    """nmap's smb-protocols negotiates NT LM 0.12 alone on one connection and SMB2/3 on the others."""
    [pair] = pairs_of("recorded/nmap_smb_protocols.pcap").values()
    assert pair["status"] == "safe" and pair["uses"] == ["negotiate_only"]
    assert pair["verdict"] == "safe to disable, upgrade to 3.1.1" and pair["upgrade_to"] == "3.1.1"
    assert not pair["breaks_if_smb1_disabled"]


def test_a_login_alone_breaks_when_nothing_newer_was_ever_seen() -> None:
    [pair] = pairs_of("recorded/auth_plaintext_smb1.pcap").values()
    assert pair["status"] == "breaks" and pair["uses"] == ["session_only"]
    assert pair["reason"] == "the client offered only SMB1 dialects; the server was seen speaking only SMB1"


def test_a_refused_smb1_only_client_is_already_failing() -> None:
    """It used to be missing from the report (0 hosts): it is the one case already broken today."""
    [pair] = pairs_of("recorded/smb1_refused.pcap").values()
    assert pair["status"] == "already_failing" and pair["uses"] == ["refused"]
    assert not pair["breaks_if_smb1_disabled"]
    assert pairs_of("recorded/smb1_nt1.pcap")["192.0.2.10", "192.0.2.20"]["status"] != "already_failing"


def test_offered_but_upgraded_clients_are_listed_apart() -> None:
    analysis = analyze_files([str(PCAPS / "recorded" / "smb1_offered_upgraded.pcap")], FlowLimits(), 10)
    report = build_smb1_report(analysis)
    assert report["hosts"] == []
    [client] = report["offered_but_upgraded"]
    assert client["client"] == "192.0.2.10" and client["servers"] == ["192.0.2.20"]
    assert client["dialects"] == ["3.1.1"] and not client["also_used_smb1"]
    assert (
        build_smb1_report(analyze_files([str(PCAPS / "recorded" / "smb1_nt1.pcap")], FlowLimits(), 10))[
            "offered_but_upgraded"
        ]
        == []
    )


def pair(**uses: int) -> Smb1Pair:
    record = Smb1Pair(0.0, 1.0, connections=sum(uses.values()) or 1)
    record.uses.update(uses)
    return record


def test_pair_status_rules() -> None:
    client_smb3, server_smb3 = facts("c", {"NT LM 0.12", "3.1.1"}), facts("s", accepted={"NT LM 0.12", "3.1.1"})
    # A use on connections whose client offered only SMB1 breaks; a probe does not when the pair speaks SMB3.
    files = pair(file_access=1)
    files.smb1_only_uses["file_access"] = files.smb1_only_connections = 1
    assert pair_status(files, client_smb3, server_smb3, [])["status"] == "breaks"
    probe = pair(negotiate_only=1)
    probe.smb1_only_uses["negotiate_only"] = 1
    assert pair_status(probe, client_smb3, server_smb3, [])["status"] == "safe"
    # Printing offered with SMB2 too, by a pair that speaks SMB3: safe; to an SMB1-only server: breaks.
    assert pair_status(pair(printing=1), client_smb3, server_smb3, [])["status"] == "safe"
    assert pair_status(pair(printing=1), client_smb3, facts("s", accepted={"NT LM 0.12"}), [])["status"] == "breaks"
    # Browsing has no SMB2 equivalent at all.
    assert pair_status(pair(browsing=1), client_smb3, server_smb3, [])["status"] == "breaks"
    # An attack alert of the pair makes all of it attack traffic; attack connections alone too.
    assert pair_status(pair(file_access=3), client_smb3, server_smb3, ["eternalblue"])["status"] == "attack_only"
    attacked = pair()
    attacked.attack_connections = 1
    attacked.attack_alerts.add("doublepulsar")
    assert pair_status(attacked, client_smb3, server_smb3, [])["status"] == "attack_only"
    assert pair_status(pair(refused=2), facts("c", {"NT LM 0.12"}), server_smb3, [])["status"] == "already_failing"
    midstream = pair(session_only=1)
    midstream.offer_unseen = 1
    assert pair_status(midstream, client_smb3, server_smb3, [])["status"] == "unknown"
    assert pair_status(pair(file_access=1), None, server_smb3, [])["status"] == "unknown"


def test_smb1_allow_reports_the_use_and_silences_the_alert(capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(PCAPS / "recorded" / "smb1_nt1.pcap")
    assert main(["analyze", "--format", "json", "--smb1-allow", "192.0.2.16/28", capture]) == 0
    document = json.loads(capsys.readouterr().out)
    assert not [a for a in document["alerts"] if a["kind"] == "smb1_negotiated"]
    assert document["stats"]["smb1_allowed_connections"] == 1
    host = next(h for h in document["hosts"] if h["ip"] == "192.0.2.20")["smb1_retirement"]
    assert host["allowed"] and host["pairs"][0]["allowed"] and host["pairs"][0]["status"] == "breaks"
    assert main(["analyze", "--format", "json", capture]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [a["kind"] for a in document["alerts"]] == ["smb1_negotiated"]
    assert main(["analyze", "--smb1-allow", "not-an-address", capture]) == 2
    assert "--smb1-allow: 'not-an-address' is not an address or CIDR block" in capsys.readouterr().err


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
    assert "2 hosts in 1 SMB1 client/server pairs: 0 breaks" in table and "1 attack_only" in table
    assert "Attack traffic only" in table and "BREAKS" not in table and "192.0.2.10" not in table
    assert document["summary"]["pairs_by_status"]["attack_only"] == 1


@pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"../shared/pcaps-public absent: {PUBLIC} not found")
def test_an_old_nas_that_speaks_only_smb1() -> None:
    """smb1-02: a QNAP TS-412 (Samba 4.4) and a client that offered only NT LM 0.12."""
    document = build_document(analyze_files([str(PUBLIC / "smb1-02" / "smb1_osx.pcap")], FlowLimits(), 100))
    nas = next(host for host in document["hosts"] if host["ip"] == "192.168.1.2")["smb1_retirement"]
    assert nas["breaks_if_smb1_disabled"] and nas["highest_dialect_accepted"] == "SMB1 only"
    assert nas["os_hint"]["hint"].startswith("Samba") and "4.4.16" in nas["os_hint"]["hint"]


def test_a_host_s_own_answers_as_server_outrank_its_claims_as_client() -> None:
    """A worm's client claims ("Windows 2000 2195") must not name a host that answers as 2012 R2."""
    host = HostFacts("10.0.0.5")
    host.add_hints({"native_os": "Windows 2000 2195"}, as_server=False, from_attack=True)
    host.add_hints({"ntlm_version": "6.3.9600"}, as_server=True, from_attack=False)
    hint = os_hint("SMB1 only", host.ranked_os_hints(), host.describe_os_hints())
    assert hint["hint"] == "Windows 8.1/2012 R2" and hint["as_server"] and not hint["from_attack_traffic"]
    # Seen only in attack traffic, the claim is still used, but marked.
    claimed = HostFacts("10.0.0.6")
    claimed.add_hints({"native_os": "Windows 2000 2195"}, as_server=False, from_attack=True)
    hint = os_hint("SMB1 only", claimed.ranked_os_hints(), claimed.describe_os_hints())
    assert hint["hint"] == "Windows 2000 2195" and hint["from_attack_traffic"] and not hint["as_server"]


def test_implausible_hints_are_dropped_and_counted() -> None:
    host = HostFacts("10.0.0.7")
    host.add_hints(
        {
            "ntlm_version": "255.255.65535",  # no Windows or Samba sends major 255
            "native_os": "Windows\x00\x07 5.1",  # control characters
            "native_lanman": "x" * 200,  # longer than any real string
            "workstation": "PC\x01",  # a name: kept exactly as sent
        }
    )
    assert not host.os_hints and host.implausible_hints == 3 and host.names == {"PC\x01": None}
    inventory = Inventory()
    inventory.hosts["10.0.0.7"] = host
    assert inventory.anomalies()[AnomalyKind.IMPLAUSIBLE_HOST_HINT] == 3


def records_of(name: str) -> list[dict]:
    """The connection records of a capture, as the inventory receives them."""
    records: list[dict] = []
    pipeline = Pipeline(sinks=[records.append])
    pipeline.feed(CaptureFile(str(PCAPS / name)))
    pipeline.finish()
    return records


def test_smb1_pairs_and_upgraded_clients_past_their_caps_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory_module, "MAX_SMB1_PAIRS", 2)
    monkeypatch.setattr(inventory_module, "MAX_UPGRADED_CLIENTS", 2)
    [smb1] = records_of("recorded/smb1_nt1.pcap")
    [upgraded] = records_of("recorded/smb1_offered_upgraded.pcap")
    inventory = Inventory()
    for i in range(5):  # five clients, each with two SMB1 connections and one upgraded one
        for record, times in ((smb1, 2), (upgraded, 1)):
            copy = json.loads(json.dumps(record))
            copy["client"]["ip"] = f"10.0.{0 if record is smb1 else 1}.{i}"
            for _ in range(times):
                inventory(copy)
    assert len(inventory.smb1_pairs) == len(inventory.upgraded_clients) == 2
    # Counted per connection left out: three pairs of two connections, three clients of one.
    assert inventory.anomalies() == {AnomalyKind.SMB1_PAIRS_FULL: 6, AnomalyKind.UPGRADED_CLIENTS_FULL: 3}
