"""The SMB1 retirement report: who still needs SMB1, for what, and what breaks if it is turned off.

Turning SMB1 off breaks a *use*, so the verdict is given per client/server pair
from what its SMB1 connections were used for (`monitor.smb.uses`): file access,
printing, named pipes, RAP browsing over \\PIPE\\LANMAN, a login alone, a
negotiation alone, or a negotiation the server refused. Each pair gets a status:

- ``breaks``: a use needs SMB1: the client offered nothing newer on that
  connection, the use has no SMB2 equivalent (RAP browsing), or the server was
  never seen negotiating SMB2/3;
- ``already_failing``: the client offered only SMB1 and the server refused it;
- ``safe``: every use also works over the newest dialect both sides showed;
- ``attack_only``: only attack traffic (the pair, or its client as a scanner,
  raised a scan, MS17-010 probe, EternalBlue or DoublePulsar alert): listed
  apart, never counted as a dependency;
- ``unknown``: the negotiation was not captured.

The device/OS hint is a guess from what the host sent: the highest dialect
maps to an era, refined by the NTLMSSP Version build number and the SMB1 native
OS and LAN manager strings, the host's own answers as a server first. A client
may claim anything; it is marked a hint.
"""

from __future__ import annotations

from typing import Any

from monitor.detect import Detector
from monitor.output.inventory import (
    SMB1_NEGOTIATE_SMB2,
    SMB2_DIALECT_ORDER,
    HostFacts,
    Inventory,
    Smb1Pair,
    dialect_rank,
    is_smb2_family,
)
from monitor.smb.uses import USE_ATTACK, USE_BROWSING, USE_NEGOTIATE_ONLY, USE_ORDER, USE_REFUSED, USE_SESSION_ONLY

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

STATUS_BREAKS = "breaks"
STATUS_ALREADY_FAILING = "already_failing"
STATUS_SAFE = "safe"
STATUS_ATTACK_ONLY = "attack_only"
STATUS_UNKNOWN = "unknown"
# The order of the report: what breaks first, attack traffic in its own section at the end.
STATUS_ORDER = (STATUS_BREAKS, STATUS_ALREADY_FAILING, STATUS_UNKNOWN, STATUS_SAFE, STATUS_ATTACK_ONLY)

# Uses that need nothing of SMB1 if the pair speaks SMB2/3 otherwise: a client probing the dialects
# (nmap's smb-protocols, a client's fallback) or logging in and leaving.
PROBING_USES = frozenset((USE_NEGOTIATE_ONLY, USE_SESSION_ONLY))

VERDICT_BREAKS = "breaks if SMB1 is disabled"
VERDICT_SAFE = "safe to disable, upgrade to {}"
VERDICT_UNKNOWN = "unknown: the negotiation was not captured"
VERDICT_ALREADY_FAILING = "already failing: the server refuses SMB1"
VERDICT_ATTACK_ONLY = "attack traffic only: not a dependency"


def smb2_dialects_offered(facts: HostFacts) -> list[str]:
    """The SMB2/3 dialects the host offered as client, SMB1-negotiate announcements included."""
    dialects = {SMB1_NEGOTIATE_SMB2.get(d, d) for d in facts.offered_as_client}
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


def os_hint(highest: str, hints: list[str], sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A guess of the device or OS: by dialect era, refined by what the host said about itself.

    `hints` come ranked (`HostFacts.ranked_os_hints`): what the host answered as a server before
    what it claimed as a client, what only attack traffic said last; the first that tells wins.
    `sources` says where each hint was seen; the result marks a guess resting on attack traffic."""
    by_dialect = DIALECT_ERA.get(highest, "unknown")
    basis = [f"highest dialect {highest}"]
    guess = by_dialect
    where = {entry["hint"]: entry for entry in sources or ()}
    # Hints of the best-ranked kind of source first; among those, Samba's name, then a Windows build,
    # then a native OS string (a Samba server also calls itself "Windows 6.1").
    groups: dict[tuple[bool, bool], list[str]] = {}
    for text in hints:
        entry = where.get(text, {})
        groups.setdefault((bool(entry.get("attack_traffic_only")), not entry.get("as_server")), []).append(text)
    source = None
    for _rank, texts in sorted(groups.items()):
        for reader in _HINT_READERS:
            told = next(((text, name) for text in texts if (name := reader(text)) is not None), None)
            if told is not None:
                source, guess = told
                basis.append(source)
                break
        if source is not None:
            break
    seen = where.get(source or "", {})
    return {
        "hint": guess,
        "by_dialect": by_dialect,
        "basis": basis,
        "is_hint": True,
        "as_server": bool(seen.get("as_server")),
        "from_attack_traffic": bool(seen.get("attack_traffic_only")),
    }


def _samba(text: str) -> str | None:
    if text.startswith(NATIVE_LANMAN_PREFIX) and "samba" in text.lower():
        return f"Samba on Linux/Unix or a NAS ({text.removeprefix(NATIVE_LANMAN_PREFIX)})"
    return None


def _windows_build(text: str) -> str | None:
    build = _ntlm_build([text])
    if build is not None and build[1] > 0:
        return next((name for first, name in WINDOWS_BUILDS if build[1] >= first), None)
    return None


def _native_windows(text: str) -> str | None:
    if text.startswith(NATIVE_OS_PREFIX) and text.removeprefix(NATIVE_OS_PREFIX).startswith("Windows"):
        return text.removeprefix(NATIVE_OS_PREFIX)
    return None


# What names a device or OS, most telling first.
_HINT_READERS = (_samba, _windows_build, _native_windows)


def _highest(dialects: list[str], smb1_seen: bool) -> str | None:
    concrete = [d for d in dialects if d in SMB2_DIALECT_ORDER]
    if concrete:
        return concrete[-1]
    if dialects:
        return "2.0.2"  # only the wildcard: an SMB2 speaker of unknown version, 2.0.2 at least
    return SMB1_ONLY if smb1_seen else None


def pair_status(
    pair: Smb1Pair, client: HostFacts | None, server: HostFacts | None, attacks: list[str]
) -> dict[str, Any]:
    """The retirement status of one client/server pair from what its SMB1 connections were used for."""
    if attacks or pair.attack_connections == pair.connections:
        kinds = sorted(set(attacks) | pair.attack_alerts)
        return _status(STATUS_ATTACK_ONLY, [USE_ATTACK], f"attack traffic: {', '.join(kinds)} alerts on this pair")
    uses = [use for use in USE_ORDER if pair.uses[use]]
    if pair.attack_connections:
        uses.append(USE_ATTACK)
    working = [use for use in uses if use not in (USE_REFUSED, USE_ATTACK)]
    smb1_only = [use for use in working if pair.smb1_only_uses[use] and use not in PROBING_USES]
    reasons = []
    if smb1_only:
        reasons.append(
            f"the client offered only SMB1 dialects on {pair.smb1_only_connections} connection(s)"
            f" used for {', '.join(smb1_only)}"
        )
    if USE_BROWSING in working:
        functions = ", ".join(pair.rap_functions) or "RAP"
        reasons.append(f"browsing over \\PIPE\\LANMAN ({functions}) has no SMB2/3 equivalent")
    if reasons:
        return _status(STATUS_BREAKS, uses, "; ".join(reasons))
    if pair.offer_unseen == pair.connections:
        return _status(STATUS_UNKNOWN, uses, "picked up midstream: the negotiation was not captured")
    verdict = pair_verdict(client, server)
    if working and verdict["verdict"] == VERDICT_BREAKS:
        return _status(STATUS_BREAKS, uses, verdict["reason"])
    if USE_REFUSED in uses:
        refused = pair.uses[USE_REFUSED]
        return _status(
            STATUS_ALREADY_FAILING,
            uses,
            f"the server refused every SMB1 dialect on {refused} connection(s) where the client offered only SMB1",
        )
    if not working or verdict["upgrade_to"] is None:
        return _status(STATUS_UNKNOWN, uses, verdict["reason"])
    return {
        **_status(STATUS_SAFE, uses, f"every use also works over {verdict['upgrade_to']}: {verdict['reason']}"),
        "verdict": verdict["verdict"],
        "upgrade_to": verdict["upgrade_to"],
    }


def _status(status: str, uses: list[str], reason: str) -> dict[str, Any]:
    verdict = {
        STATUS_BREAKS: VERDICT_BREAKS,
        STATUS_ALREADY_FAILING: VERDICT_ALREADY_FAILING,
        STATUS_ATTACK_ONLY: VERDICT_ATTACK_ONLY,
        STATUS_UNKNOWN: VERDICT_UNKNOWN,
    }.get(status, status)
    return {
        "uses": uses,
        "status": status,
        "breaks_if_smb1_disabled": status == STATUS_BREAKS,
        "verdict": verdict,
        "upgrade_to": None,
        "reason": reason,
    }


def smb1_retirement(inventory: Inventory, detector: Detector) -> dict[str, dict[str, Any]]:
    """The retirement entry of every host in an SMB1 pair, by IP: its SMB1 peers with a status each,
    the highest dialects it offered and accepted, and the OS hint."""
    hosts = inventory.hosts
    pairs_by_host: dict[str, list[dict[str, Any]]] = {}
    for (client_ip, server_ip), pair in inventory.smb1_pairs.items():
        status = pair_status(
            pair, hosts.get(client_ip), hosts.get(server_ip), detector.attacks_between(client_ip, server_ip)
        )
        for ip, role, peer in ((client_ip, "client", server_ip), (server_ip, "server", client_ip)):
            entry = {"peer": peer, "role": role, **_pair_facts(pair), **status}
            pairs_by_host.setdefault(ip, []).append(entry)
    report = {}
    for ip, pairs in pairs_by_host.items():
        facts = hosts.get(ip)
        if facts is not None:
            report[ip] = _host_entry(facts, pairs, inventory.smb1_pairs_dropped > 0, detector.smb1_allowed_address(ip))
    return report


def offered_but_upgraded(inventory: Inventory) -> list[dict[str, Any]]:
    """Clients that offered SMB1 and were upgraded to SMB2/3: their SMB1 client side can go."""
    return [
        {
            "client": ip,
            "connections": client.connections,
            "servers": list(client.servers),
            "servers_capped": client.servers_capped,
            "dialects": sorted(client.dialects, key=dialect_rank),
            "also_used_smb1": inventory.hosts[ip].smb1 if ip in inventory.hosts else False,
        }
        for ip, client in sorted(inventory.upgraded_clients.items())
    ]


def _host_entry(facts: HostFacts, pairs: list[dict[str, Any]], capped: bool, allowed: bool) -> dict[str, Any]:
    offered = _highest(smb2_dialects_offered(facts), bool(facts.offered_as_client))
    accepted = _highest(smb2_dialects_accepted(facts), bool(facts.dialects_as_server))
    known = [d for d in (offered, accepted) if d]
    highest = max(known, key=lambda d: 0 if d == SMB1_ONLY else dialect_rank(d)) if known else None
    return {
        "highest_dialect_offered": offered,
        "highest_dialect_accepted": accepted,
        "os_hint": os_hint(highest, facts.ranked_os_hints(), facts.describe_os_hints()) if highest else None,
        "breaks_if_smb1_disabled": any(p["status"] == STATUS_BREAKS for p in pairs),
        "allowed": allowed,
        "pairs": sorted(pairs, key=lambda p: (STATUS_ORDER.index(p["status"]), p["role"], p["peer"])),
        "pairs_capped": capped,
    }


def _pair_facts(pair: Smb1Pair) -> dict[str, Any]:
    return {
        "connections": pair.connections,
        "smb1_dialects": sorted(pair.dialects),
        "server_ports": sorted(pair.server_ports),
        "first_seen": pair.first_seen,
        "last_seen": pair.last_seen,
        "named_pipes": list(pair.named_pipes),
        "rap_functions": list(pair.rap_functions),
        "attack_alerts": sorted(pair.attack_alerts),
        "allowed": pair.allowed,
    }
