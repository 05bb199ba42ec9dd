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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dissectors.records import AnomalyKind
from monitor.pipeline import ConnectionRecord, Endpoints
from monitor.session import SmbConnection

# Order of SMB2/3 dialects from oldest to newest, for "highest dialect" questions.
SMB2_DIALECT_ORDER = ("2.0.2", "2.1", "2.2.2", "2.2.4", "3.0", "3.0.2", "3.1", "3.1.1")
SMB2_WILDCARD_RANK = 9  # below every named SMB2/3 dialect (ranked 10 and up), above SMB1 (0)
MAX_PEERS_PER_HOST = 4096
MAX_HINTS_PER_HOST = 16
MAX_SMB1_PAIRS = 100_000
MAX_DIALECTS_PER_PAIR = 8
NAME_HINTS = frozenset(("workstation", "nb_computer_name", "nb_domain_name", "dns_computer_name", "dns_domain_name"))
HINT_LABELS = {"ntlm_version": "NTLMSSP version", "native_os": "native OS", "native_lanman": "native LAN manager"}


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
    dialects_as_client: set[str] = field(default_factory=set)
    dialects_as_server: set[str] = field(default_factory=set)
    offered_as_client: set[str] = field(default_factory=set)
    smb1: bool = False
    smb1_offered: bool = False
    peers: set[str] = field(default_factory=set)
    peers_dropped: bool = False
    # What the host said about itself: NTLM versions, SMB1 native OS strings, names it announced.
    os_hints: dict[str, None] = field(default_factory=dict)
    names: dict[str, None] = field(default_factory=dict)

    def add_hints(self, hints: dict[str, str]) -> None:
        for key, value in hints.items():
            target = self.names if key in NAME_HINTS else self.os_hints
            text = value if key in NAME_HINTS else f"{HINT_LABELS.get(key, key)} {value}"
            if len(target) < MAX_HINTS_PER_HOST:
                target.setdefault(text)

    def add_peer(self, peer: str) -> None:
        if len(self.peers) < MAX_PEERS_PER_HOST:
            self.peers.add(peer)
        elif peer not in self.peers:
            self.peers_dropped = True

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
            "peers": len(self.peers),
            "peers_capped": self.peers_dropped,
            # Hints only: a client may claim any version or name.
            "os_hints": list(self.os_hints),
            "names": list(self.names),
        }


@dataclass(slots=True)
class Smb1Pair:
    """A client/server pair whose connections used SMB1."""

    first_seen: float
    last_seen: float
    connections: int = 0
    dialects: set[str] = field(default_factory=set)
    server_ports: set[int] = field(default_factory=set)


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

    def __init__(self, max_records: int = 1_000_000, max_hosts: int = 1_000_000) -> None:
        self.max_records = max_records
        self.max_hosts = max_hosts
        self.hosts_dropped = 0
        self.connections = ConnectionLog()
        self.records_dropped = 0
        self.hosts: dict[str, HostFacts] = {}
        self.smb1_pairs: dict[tuple[str, str], Smb1Pair] = {}
        self.smb1_pairs_dropped = 0

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
            client.dialects_as_client.add(dialect)
            server.dialects_as_server.add(dialect)
        client.offered_as_client.update(record["dialects_offered"])
        if record["smb1_used"]:
            client.smb1 = server.smb1 = True
            self._smb1_pair(record, client_ip, server_ip)
        if record["smb1_offered"]:
            client.smb1_offered = True
        client.add_hints(record["client_hints"])
        server.add_hints(record["server_hints"])

    def _host(self, ip: str) -> HostFacts | None:
        facts = self.hosts.get(ip)
        if facts is None:
            if len(self.hosts) >= self.max_hosts:
                self.hosts_dropped += 1
                return None
            facts = self.hosts[ip] = HostFacts(ip)
        return facts

    # --- pipeline observer: a live sensor knows a host's dialect before its connections end ---

    def negotiated(self, endpoints: Endpoints, connection: SmbConnection, ts: float) -> None:
        client, server = self._host(endpoints.client_ip), self._host(endpoints.server_ip)
        if client is None or server is None or connection.dialect is None:
            return
        client.dialects_as_client.add(connection.dialect)
        server.dialects_as_server.add(connection.dialect)

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
        if record["dialect"] is not None and len(pair.dialects) < MAX_DIALECTS_PER_PAIR:
            pair.dialects.add(record["dialect"])
        pair.server_ports.add(record["server"]["port"])

    def anomalies(self) -> Counter[AnomalyKind]:
        counts: Counter[AnomalyKind] = Counter()
        if self.records_dropped and self.max_records:
            counts[AnomalyKind.CONNECTION_RECORDS_FULL] = self.records_dropped
        if self.hosts_dropped:
            counts[AnomalyKind.HOSTS_FULL] = self.hosts_dropped
        return counts

    def describe_hosts(self) -> list[dict[str, Any]]:
        return [self.hosts[ip].describe() for ip in sorted(self.hosts, key=_ip_sort_key)]


def _ip_sort_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)
