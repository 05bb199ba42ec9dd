"""What the analysis keeps: connection records (spilled to disk, capped) and the per-host inventory.

Hosts are aggregated from every finished connection, also those past the
record cap, so the host view stays complete on captures of any length.
"""

from __future__ import annotations

import ipaddress
import json
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dissectors.constants import SMB1_DIALECT_SMB_2_002, SMB1_DIALECT_SMB_2_WILDCARD
from dissectors.records import AnomalyKind
from monitor.output.cardinality import DistinctCounter
from monitor.pipeline import ConnectionRecord, Endpoints
from monitor.smb.session import SmbConnection
from monitor.smb.uses import USE_REFUSED

# Order of SMB2/3 dialects from oldest to newest, for "highest dialect" questions.
SMB2_DIALECT_ORDER = ("2.0.2", "2.1", "2.2.2", "2.2.4", "3.0", "3.0.2", "3.1", "3.1.1")
SMB2_WILDCARD_RANK = 9  # below every named SMB2/3 dialect (ranked 10 and up), above SMB1 (0)
# Hosts listed: about 0.7 KiB each, so the default keeps a whole analysis or sensor well under 200 MiB.
DEFAULT_MAX_HOSTS = 100_000
MAX_PEERS_PER_HOST = 4096
MAX_HINTS_PER_HOST = 16
MAX_SMB1_PAIRS = 100_000
MAX_DIALECTS_PER_PAIR = 8
MAX_NAMES_PER_PAIR = 16
MAX_UPGRADED_CLIENTS = 100_000
MAX_SERVERS_PER_UPGRADED_CLIENT = 16
NAME_HINTS = frozenset(("workstation", "nb_computer_name", "nb_domain_name", "dns_computer_name", "dns_domain_name"))
HINT_LABELS = {"ntlm_version": "NTLMSSP version", "native_os": "native OS", "native_lanman": "native LAN manager"}
# Longest hint text kept: real version and OS strings are far shorter ("Windows Server 2003 3790 Service Pack 2").
MAX_HINT_LENGTH = 64
# Where a hint was seen, as bits: a host's answers as server are worth more than its claims as client,
# and what a connection that raised an attack alert says about its host may be forged.
HINT_AS_SERVER = 1
HINT_AS_CLIENT = 2
HINT_FROM_ATTACK = 4
HINT_FROM_OTHER = 8


# The dialect strings of an SMB1 NEGOTIATE that announce SMB2 ([MS-SMB2] 3.2.4.2.2.1), as SMB2 dialects.
SMB1_NEGOTIATE_SMB2 = {SMB1_DIALECT_SMB_2_002: "2.0.2", SMB1_DIALECT_SMB_2_WILDCARD: "2.???"}


# Distinct dialect sets shared between hosts; past this many, new sets are simply not shared.
MAX_SHARED_DIALECT_SETS = 4096
_shared_dialect_sets: dict[frozenset[str], frozenset[str]] = {}


def with_dialects(dialects: frozenset[str], more: Iterable[str]) -> frozenset[str]:
    """`dialects` with `more` added, as a set shared by every host that has the same dialects."""
    combined = dialects.union(more)
    if combined == dialects:
        return dialects
    shared = _shared_dialect_sets.get(combined)
    if shared is not None:
        return shared
    if len(_shared_dialect_sets) < MAX_SHARED_DIALECT_SETS:
        _shared_dialect_sets[combined] = combined
    return combined


def dialect_order(dialect: str) -> tuple[int, str]:
    """Sort key: by rank, then by name, so dialects of equal rank (the SMB1 ones) list the same every run."""
    return dialect_rank(dialect), dialect


def is_smb2_family(dialect: str | None) -> bool:
    """An SMB2/3 dialect, or the multi-protocol wildcard "2.???" (an SMB2 speaker of unknown version)."""
    return dialect_rank(dialect) >= SMB2_WILDCARD_RANK


def dialect_rank(dialect: str | None) -> int:
    """Higher is newer; SMB1 dialects rank below every SMB2/3 one, unknown and none lowest."""
    if dialect is None:
        return -2
    if dialect in SMB2_DIALECT_ORDER:
        return 10 + SMB2_DIALECT_ORDER.index(dialect)
    if dialect == "2.???":
        return SMB2_WILDCARD_RANK
    return 0 if not dialect.startswith("unknown") else -1


@dataclass(slots=True)
class HostFacts:
    ip: str
    connections_as_client: int = 0
    connections_as_server: int = 0
    # Dialect sets are shared between hosts (`with_dialects`): a million hosts speak a handful of sets.
    dialects_as_client: frozenset[str] = frozenset()
    dialects_as_server: frozenset[str] = frozenset()
    offered_as_client: frozenset[str] = frozenset()
    smb1: bool = False
    smb1_offered: bool = False
    # Most hosts have one peer: kept as that address until a second one comes (a set then).
    _peers: str | set[str] | None = None
    peers_dropped: bool = False
    # What the host said about itself: NTLM versions, SMB1 native OS strings (with where each was
    # seen: HINT_* bits), and names it announced.
    os_hints: dict[str, int] | None = None  # created with the first hint: most hosts give none
    names: dict[str, None] | None = None
    implausible_hints: int = 0

    def add_hints(self, hints: dict[str, str], as_server: bool = False, from_attack: bool = False) -> int:
        """Keeps the hints and names of one connection; returns how many distinct ones were left
        out past MAX_HINTS_PER_HOST (`names_kept_full`)."""
        left_out = 0
        seen = HINT_AS_SERVER if as_server else HINT_AS_CLIENT
        seen |= HINT_FROM_ATTACK if from_attack else HINT_FROM_OTHER
        for key, value in hints.items():
            if key in NAME_HINTS:  # names are kept exactly as sent (escaped only for the terminal)
                if self.names is None:
                    self.names = {}
                if value in self.names:
                    pass
                elif len(self.names) < MAX_HINTS_PER_HOST:
                    self.names[value] = None
                else:
                    left_out += 1
                continue
            if not plausible_hint(key, value):
                self.implausible_hints += 1
                continue
            text = f"{HINT_LABELS.get(key, key)} {value}"
            if self.os_hints is None:
                self.os_hints = {}
            if text in self.os_hints:
                self.os_hints[text] |= seen
            elif len(self.os_hints) < MAX_HINTS_PER_HOST:
                self.os_hints[text] = seen
            else:
                left_out += 1
        return left_out

    def ranked_os_hints(self) -> list[str]:
        """Hints the host gave as a server first, then as a client; those only seen in attack
        traffic last."""
        hints = self.os_hints or {}
        return sorted(hints, key=lambda text: _hint_rank(hints[text]))

    def describe_os_hints(self) -> list[dict[str, Any]]:
        if not self.os_hints:
            return []
        return [
            {
                "hint": text,
                "as_server": bool(self.os_hints[text] & HINT_AS_SERVER),
                "as_client": bool(self.os_hints[text] & HINT_AS_CLIENT),
                "attack_traffic_only": not self.os_hints[text] & HINT_FROM_OTHER,
            }
            for text in self.ranked_os_hints()
        ]

    def add_peer(self, peer: str) -> None:
        peers = self._peers
        if peers is None:
            self._peers = peer
        elif isinstance(peers, str):
            if peer != peers:
                self._peers = {peers, peer}
        elif len(peers) < MAX_PEERS_PER_HOST:
            peers.add(peer)
        elif peer not in peers:
            self.peers_dropped = True

    @property
    def peer_count(self) -> int:
        peers = self._peers
        return 0 if peers is None else 1 if isinstance(peers, str) else len(peers)

    def describe(self) -> dict[str, Any]:
        roles = [
            role
            for role, count in (("client", self.connections_as_client), ("server", self.connections_as_server))
            if count
        ]
        negotiated = self.dialects_as_client | self.dialects_as_server
        highest = max(negotiated, key=dialect_order) if negotiated else None
        return {
            "ip": self.ip,
            "roles": roles,
            "connections_as_client": self.connections_as_client,
            "connections_as_server": self.connections_as_server,
            "dialects_as_client": sorted(self.dialects_as_client, key=dialect_order),
            "dialects_as_server": sorted(self.dialects_as_server, key=dialect_order),
            "dialects_offered_as_client": sorted(self.offered_as_client, key=dialect_order),
            "highest_dialect": highest,
            "smb1": self.smb1,
            "smb1_offered": self.smb1_offered,
            "peers": self.peer_count,
            "peers_capped": self.peers_dropped,
            # Hints only: a client may claim any version or name.
            "os_hints": self.ranked_os_hints(),
            "os_hint_sources": self.describe_os_hints(),
            "names": list(self.names or ()),
        }


def _hint_rank(seen: int) -> tuple[bool, bool]:
    return not seen & HINT_FROM_OTHER, not seen & HINT_AS_SERVER


def plausible_hint(key: str, value: str) -> bool:
    """An OS hint worth keeping: printable, short, and for an NTLMSSP VERSION ([MS-NLMP] 2.2.2.10) one that
    a real Windows or Samba sends (major 5 to 10, minor 0 to 3)."""
    if not value or len(value) > MAX_HINT_LENGTH or not value.isprintable():
        return False
    if key == "ntlm_version":
        parts = value.split(".")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            return False
        major, minor, _build = (int(part) for part in parts)
        return 5 <= major <= 10 and minor <= 3
    return True


@dataclass(slots=True)
class Smb1Pair:
    """A client/server pair whose connections used SMB1 (or offered only SMB1 and were refused),
    with what those connections were used for (`monitor.smb.uses`)."""

    first_seen: float
    last_seen: float
    connections: int = 0
    dialects: set[str] = field(default_factory=set)
    server_ports: set[int] = field(default_factory=set)
    # Connections by use, leaving out those that raised attack alerts.
    uses: Counter[str] = field(default_factory=Counter)
    # The same, of connections whose client offered nothing newer than SMB1 on that connection.
    smb1_only_uses: Counter[str] = field(default_factory=Counter)
    smb1_only_connections: int = 0
    named_pipes: dict[str, None] = field(default_factory=dict)
    rap_functions: dict[str, None] = field(default_factory=dict)
    attack_connections: int = 0
    attack_alerts: set[str] = field(default_factory=set)
    # Connections whose client offer was not seen (picked up midstream).
    offer_unseen: int = 0
    allowed: bool = False


@dataclass(slots=True)
class UpgradedClient:
    """A client that offered SMB1 and was upgraded to SMB2/3: its SMB1 client side can go."""

    connections: int = 0
    servers: dict[str, None] = field(default_factory=dict)
    dialects: set[str] = field(default_factory=set)
    servers_capped: bool = False


class ConnectionLog:
    """Connection records spilled to an unnamed temporary file as compact JSON lines.

    Memory stays flat in the number of connections: only an index (first-seen
    time, offset, length: 24 bytes a record) is kept, so a report can list
    records in order of first packet from a capture of any length.
    """

    def __init__(self) -> None:
        self._file: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the log)
        self._first_seen = array("d")
        self._offsets = array("q")
        self._lengths = array("q")
        self._end = 0

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, record: ConnectionRecord) -> None:
        line = json.dumps(record, separators=(",", ":")).encode()
        self._file.seek(self._end)
        self._file.write(line)
        self._first_seen.append(record["first_seen"])
        self._offsets.append(self._end)
        self._lengths.append(len(line))
        self._end += len(line)

    def json_lines(self) -> Iterator[bytes]:
        """Each record's JSON text, in order of first packet."""
        order = sorted(range(len(self._offsets)), key=self._first_seen.__getitem__)
        for index in order:
            self._file.seek(self._offsets[index])
            yield self._file.read(self._lengths[index])

    def __iter__(self) -> Iterator[ConnectionRecord]:
        for line in self.json_lines():
            yield json.loads(line)

    def close(self) -> None:
        self._file.close()


class Inventory:
    """A connection sink: logs up to `max_records` connection records and keeps every host's facts."""

    def __init__(self, max_records: int = 1_000_000, max_hosts: int = DEFAULT_MAX_HOSTS) -> None:
        self.max_records = max_records
        self.max_hosts = max_hosts
        self.hosts_dropped = 0  # connection ends (client or server) whose host was past the cap
        self._hosts_not_listed = DistinctCounter()
        self.connections = ConnectionLog()
        self.records_dropped = 0
        self.hosts: dict[str, HostFacts] = {}
        self.smb1_pairs: dict[tuple[str, str], Smb1Pair] = {}
        self.smb1_pairs_dropped = 0  # SMB1 connections of a pair past MAX_SMB1_PAIRS: `smb1_pairs_full`
        self.upgraded_clients: dict[str, UpgradedClient] = {}
        self.upgraded_clients_dropped = 0  # upgraded connections of a client past the cap: `upgraded_clients_full`
        # Names, dialects and hints of one connection record a pair's or host's full list left out.
        self.names_dropped = 0

    def __call__(self, record: ConnectionRecord) -> None:
        if len(self.connections) < self.max_records:
            self.connections.append(record)
        else:
            self.records_dropped += 1
        client_ip = record["client"]["ip"]
        server_ip = record["server"]["ip"]
        client, server = self._host(client_ip), self._host(server_ip)
        if client is None or server is None:
            return
        client.connections_as_client += 1
        server.connections_as_server += 1
        client.add_peer(server_ip)
        server.add_peer(client_ip)
        dialect = record["dialect"]
        if dialect is not None:
            client.dialects_as_client = with_dialects(client.dialects_as_client, (dialect,))
            server.dialects_as_server = with_dialects(server.dialects_as_server, (dialect,))
        client.offered_as_client = with_dialects(client.offered_as_client, record["dialects_offered"])
        if record["smb1_used"]:
            client.smb1 = server.smb1 = True
        if record["smb1_used"] or (record["smb1_offered"] and USE_REFUSED in record["uses"]):
            self._smb1_pair(record, client_ip, server_ip)
        if record["smb1_offered"]:
            client.smb1_offered = True
            if is_smb2_family(dialect):
                self._upgraded(client_ip, server_ip, dialect)
        from_attack = bool(record["attack_alerts"])
        self.names_dropped += client.add_hints(record["client_hints"], as_server=False, from_attack=from_attack)
        self.names_dropped += server.add_hints(record["server_hints"], as_server=True, from_attack=from_attack)

    def _host(self, ip: str) -> HostFacts | None:
        facts = self.hosts.get(ip)
        if facts is None:
            if len(self.hosts) >= self.max_hosts:
                self.hosts_dropped += 1
                self._hosts_not_listed.add(ip.encode())
                return None
            facts = self.hosts[ip] = HostFacts(ip)
        return facts

    # --- pipeline observer: a live sensor knows a host's dialect before its connections end ---

    def negotiated(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        client, server = self._host(endpoints.client_ip), self._host(endpoints.server_ip)
        if client is None or server is None or connection.dialect is None:
            return
        client.dialects_as_client = with_dialects(client.dialects_as_client, (connection.dialect,))
        server.dialects_as_server = with_dialects(server.dialects_as_server, (connection.dialect,))

    def smb1_used(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        client, server = self._host(endpoints.client_ip), self._host(endpoints.server_ip)
        if client is not None and server is not None:
            client.smb1 = server.smb1 = True

    def session_setup(self, endpoints: Endpoints, session: dict[str, Any], status: int, ts: float) -> None:
        """Sessions are in the connection records."""

    def tree_connect(self, endpoints: Endpoints, tree: dict[str, Any], ts: float) -> None:
        """Trees are in the connection records."""

    def _smb1_pair(self, record: ConnectionRecord, client_ip: str, server_ip: str) -> None:
        key = (client_ip, server_ip)
        pair = self.smb1_pairs.get(key)
        if pair is None:
            if len(self.smb1_pairs) >= MAX_SMB1_PAIRS:
                self.smb1_pairs_dropped += 1
                return
            pair = self.smb1_pairs[key] = Smb1Pair(record["first_seen"], record["last_seen"])
        pair.connections += 1
        pair.first_seen = min(pair.first_seen, record["first_seen"])
        pair.last_seen = max(pair.last_seen, record["last_seen"])
        dialect = record["dialect"]
        if dialect is not None and dialect not in pair.dialects:
            if len(pair.dialects) < MAX_DIALECTS_PER_PAIR:
                pair.dialects.add(dialect)
            else:
                self.names_dropped += 1
        pair.server_ports.add(record["server"]["port"])
        pair.allowed = pair.allowed or record["smb1_allowed"]
        if record["attack_alerts"]:
            pair.attack_connections += 1
            pair.attack_alerts.update(record["attack_alerts"])
            return
        offered = record["dialects_offered"]
        if not offered:
            pair.offer_unseen += 1
        smb1_only = bool(offered) and not any(is_smb2_family(SMB1_NEGOTIATE_SMB2.get(d, d)) for d in offered)
        pair.smb1_only_connections += smb1_only and USE_REFUSED not in record["uses"]
        for use in record["uses"]:
            pair.uses[use] += 1
            if smb1_only:
                pair.smb1_only_uses[use] += 1
        for names, new in ((pair.named_pipes, record["named_pipes"]), (pair.rap_functions, record["rap_functions"])):
            for name in new:
                if name in names:
                    continue
                if len(names) < MAX_NAMES_PER_PAIR:
                    names[name] = None
                else:
                    self.names_dropped += 1

    def _upgraded(self, client_ip: str, server_ip: str, dialect: str) -> None:
        client = self.upgraded_clients.get(client_ip)
        if client is None:
            if len(self.upgraded_clients) >= MAX_UPGRADED_CLIENTS:
                self.upgraded_clients_dropped += 1
                return
            client = self.upgraded_clients[client_ip] = UpgradedClient()
        client.connections += 1
        if dialect in client.dialects:
            pass
        elif len(client.dialects) < MAX_DIALECTS_PER_PAIR:
            client.dialects.add(dialect)
        else:
            self.names_dropped += 1
        if server_ip in client.servers or len(client.servers) < MAX_SERVERS_PER_UPGRADED_CLIENT:
            client.servers.setdefault(server_ip)
        else:
            client.servers_capped = True

    def anomalies(self) -> Counter[AnomalyKind]:
        counts: Counter[AnomalyKind] = Counter()
        if self.records_dropped and self.max_records:
            counts[AnomalyKind.CONNECTION_RECORDS_FULL] = self.records_dropped
        if self.hosts_dropped:
            counts[AnomalyKind.HOSTS_FULL] = self.hosts_dropped
        implausible = sum(facts.implausible_hints for facts in self.hosts.values())
        if implausible:
            counts[AnomalyKind.IMPLAUSIBLE_HOST_HINT] = implausible
        if self.smb1_pairs_dropped:
            counts[AnomalyKind.SMB1_PAIRS_FULL] = self.smb1_pairs_dropped
        if self.upgraded_clients_dropped:
            counts[AnomalyKind.UPGRADED_CLIENTS_FULL] = self.upgraded_clients_dropped
        if self.names_dropped:
            counts[AnomalyKind.NAMES_KEPT_FULL] = self.names_dropped
        return counts

    @property
    def hosts_not_listed(self) -> int:
        """About how many distinct hosts came past the cap (counted, not listed; within ~2 %)."""
        return self._hosts_not_listed.estimate() if self.hosts_dropped else 0

    def describe_hosts(self) -> list[dict[str, Any]]:
        return list(self.iter_described_hosts())

    def iter_described_hosts(self) -> Iterator[dict[str, Any]]:
        """Each host's facts in address order, one at a time: a report streams them."""
        for ip in sorted(self.hosts, key=_ip_sort_key):
            yield self.hosts[ip].describe()


def _ip_sort_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)
