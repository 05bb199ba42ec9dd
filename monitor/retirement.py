"""The SMB1 retirement report: who still needs SMB1, with whom, and what breaks if it is turned off.

For every host that used SMB1 as client or server: its SMB1 peers, the highest
dialect it offered (as client) or accepted (as server), and a verdict per
client/server pair. A pair can give SMB1 up only if both sides showed SMB2/3:
the client offered an SMB2/3 dialect (to any server) and the server negotiated
one (with any client). Otherwise disabling SMB1 on either side breaks the pair.

The device/OS hint is a guess from what the host sent: the highest dialect
maps to an era, refined by the NTLMSSP Version build number and the SMB1 native
OS and LAN manager strings. A client may claim anything; it is marked a hint.
"""

from __future__ import annotations

from typing import Any

from dissectors.constants import SMB1_DIALECT_SMB_2_002, SMB1_DIALECT_SMB_2_WILDCARD
from monitor.inventory import SMB2_DIALECT_ORDER, HostFacts, Inventory, Smb1Pair, dialect_rank, is_smb2_family

SMB1_ONLY = "SMB1 only"
# What the highest dialect a host offers or accepts says about its age.
DIALECT_ERA = {
    SMB1_ONLY: "Windows XP/2003-era or old NAS/embedded",
    "2.0.2": "Windows Vista/2008",
    "2.1": "Windows 7/2008 R2",
    "3.0": "Windows 8/2012",
    "3.0.2": "Windows 8.1/2012 R2",
    "3.1.1": "Windows 10/2016 or later",
}
# The dialect strings of an SMB1 NEGOTIATE that announce SMB2 ([MS-SMB2] 3.2.4.2.2.1).
SMB1_NEGOTIATE_SMB2_STRINGS = {SMB1_DIALECT_SMB_2_002: "2.0.2", SMB1_DIALECT_SMB_2_WILDCARD: "2.???"}
# NTLMSSP VERSION ProductBuild ([MS-NLMP] 2.2.2.10) of Windows releases, newest first.
WINDOWS_BUILDS = (
    (26100, "Windows 11 24H2/Server 2025"),
    (22000, "Windows 11"),
    (20348, "Windows Server 2022"),
    (17763, "Windows 10 1809/Server 2019"),
    (14393, "Windows 10 1607/Server 2016"),
    (10240, "Windows 10"),
    (9600, "Windows 8.1/2012 R2"),
    (9200, "Windows 8/2012"),
    (7600, "Windows 7/2008 R2"),
    (6000, "Windows Vista/2008"),
    (3790, "Windows XP x64/Server 2003"),
    (2600, "Windows XP"),
    (2195, "Windows 2000"),
)
NTLM_VERSION_PREFIX = "NTLMSSP version "
NATIVE_OS_PREFIX = "native OS "
NATIVE_LANMAN_PREFIX = "native LAN manager "

VERDICT_BREAKS = "breaks if SMB1 is disabled"
VERDICT_SAFE = "safe to disable, upgrade to {}"
VERDICT_UNKNOWN = "unknown: the negotiation was not captured"


def smb2_dialects_offered(facts: HostFacts) -> list[str]:
    """The SMB2/3 dialects the host offered as client, SMB1-negotiate announcements included."""
    dialects = {SMB1_NEGOTIATE_SMB2_STRINGS.get(d, d) for d in facts.offered_as_client}
    return sorted(filter(is_smb2_family, dialects), key=dialect_rank)


def smb2_dialects_accepted(facts: HostFacts) -> list[str]:
    """The SMB2/3 dialects the host negotiated as server (with any client)."""
    return sorted(filter(is_smb2_family, facts.dialects_as_server), key=dialect_rank)


def _best_common(client_dialects: list[str], server_dialects: list[str]) -> str:
    """The newest dialect both sides are known to speak; the wildcard "2.???" means 2.1 or newer."""
    client_best, server_best = client_dialects[-1], server_dialects[-1]
    if client_best == "2.???" and server_best == "2.???":
        return "2.1 or newer"
    if client_best == "2.???":
        return server_best
    if server_best == "2.???":
        return client_best
    return min(client_best, server_best, key=dialect_rank)


def pair_verdict(client: HostFacts | None, server: HostFacts | None) -> dict[str, Any]:
    """Whether this client/server pair can give SMB1 up, and why."""
    if client is None or server is None or not client.offered_as_client:
        return {"verdict": VERDICT_UNKNOWN, "upgrade_to": None, "reason": "no NEGOTIATE request from the client seen"}
    offered = smb2_dialects_offered(client)
    accepted = smb2_dialects_accepted(server)
    if not offered:
        reason = "the client offered only SMB1 dialects"
        if not accepted:
            reason += "; the server was seen speaking only SMB1"
        return {"verdict": VERDICT_BREAKS, "upgrade_to": None, "reason": reason}
    if not accepted:
        return {
            "verdict": VERDICT_BREAKS,
            "upgrade_to": None,
            "reason": "the server never negotiated SMB2/3 (it chose SMB1 where SMB2 was offered, or saw no such offer)",
        }
    target = _best_common(offered, accepted)
    return {
        "verdict": VERDICT_SAFE.format(target),
        "upgrade_to": target,
        "reason": f"the client offered up to {offered[-1]}; the server negotiated up to {accepted[-1]}",
    }


def _ntlm_build(hints: list[str]) -> tuple[str, int] | None:
    for hint in hints:
        if hint.startswith(NTLM_VERSION_PREFIX):
            parts = hint.removeprefix(NTLM_VERSION_PREFIX).split(".")
            if len(parts) == 3 and all(part.isdigit() for part in parts):
                return hint.removeprefix(NTLM_VERSION_PREFIX), int(parts[2])
    return None


def os_hint(highest: str, hints: list[str]) -> dict[str, Any]:
    """A guess of the device or OS: by dialect era, refined by what the host said about itself."""
    by_dialect = DIALECT_ERA.get(highest, "unknown")
    basis = [f"highest dialect {highest}"]
    guess = by_dialect
    lanman = [h.removeprefix(NATIVE_LANMAN_PREFIX) for h in hints if h.startswith(NATIVE_LANMAN_PREFIX)]
    native_os = [h.removeprefix(NATIVE_OS_PREFIX) for h in hints if h.startswith(NATIVE_OS_PREFIX)]
    build = _ntlm_build(hints)
    if any("samba" in name.lower() for name in lanman):
        samba = next(name for name in lanman if "samba" in name.lower())
        guess = f"Samba on Linux/Unix or a NAS ({samba})"
        basis.append(f"native LAN manager {samba}")
    elif build is not None and build[1] > 0:
        version, number = build
        guess = next((name for first, name in WINDOWS_BUILDS if number >= first), by_dialect)
        basis.append(f"NTLMSSP version {version}")
    elif any(name.startswith("Windows") for name in native_os):
        guess = next(name for name in native_os if name.startswith("Windows"))
        basis.append(f"native OS {guess}")
    return {"hint": guess, "by_dialect": by_dialect, "basis": basis, "is_hint": True}


def _highest(dialects: list[str], smb1_seen: bool) -> str | None:
    concrete = [d for d in dialects if d in SMB2_DIALECT_ORDER]
    if concrete:
        return concrete[-1]
    if dialects:
        return "2.0.2"  # only the wildcard: an SMB2 speaker of unknown version, 2.0.2 at least
    return SMB1_ONLY if smb1_seen else None


def smb1_retirement(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """The retirement entry of every host that used SMB1, by IP: its SMB1 peers with a verdict each,
    the highest dialects it offered and accepted, and the OS hint."""
    hosts = inventory.hosts
    pairs_by_host: dict[str, list[dict[str, Any]]] = {}
    for (client_ip, server_ip), pair in inventory.smb1_pairs.items():
        verdict = pair_verdict(hosts.get(client_ip), hosts.get(server_ip))
        for ip, role, peer in ((client_ip, "client", server_ip), (server_ip, "server", client_ip)):
            entry = {"peer": peer, "role": role, **_pair_facts(pair), **verdict}
            pairs_by_host.setdefault(ip, []).append(entry)
    report = {}
    for ip, facts in hosts.items():
        if facts.smb1:
            report[ip] = _host_entry(facts, pairs_by_host.get(ip, []), inventory.smb1_pairs_dropped > 0)
    return report


def _host_entry(facts: HostFacts, pairs: list[dict[str, Any]], capped: bool) -> dict[str, Any]:
    offered = _highest(smb2_dialects_offered(facts), bool(facts.offered_as_client))
    accepted = _highest(smb2_dialects_accepted(facts), bool(facts.dialects_as_server))
    known = [d for d in (offered, accepted) if d]
    highest = max(known, key=lambda d: 0 if d == SMB1_ONLY else dialect_rank(d)) if known else None
    return {
        "highest_dialect_offered": offered,
        "highest_dialect_accepted": accepted,
        "os_hint": os_hint(highest, list(facts.os_hints)) if highest else None,
        "breaks_if_smb1_disabled": any(p["verdict"] == VERDICT_BREAKS for p in pairs),
        "pairs": sorted(pairs, key=lambda p: (p["verdict"] != VERDICT_BREAKS, p["role"], p["peer"])),
        "pairs_capped": capped,
    }


def _pair_facts(pair: Smb1Pair) -> dict[str, Any]:
    return {
        "connections": pair.connections,
        "smb1_dialects": sorted(pair.dialects),
        "server_ports": sorted(pair.server_ports),
        "first_seen": pair.first_seen,
        "last_seen": pair.last_seen,
    }
