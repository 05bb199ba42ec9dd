"""How a connection is named, so that alerts, connection records and other tools' logs join up.

- `community_id`: the Community ID v1 flow hash (https://github.com/corelight/community-id-spec)
  that Zeek, Suricata, Arkime and Elastic emit for the same flow, so smbwatch's alerts
  join their records. Written here with hashlib rather than through the `communityid`
  package: measured 2.5 us against 54 us a call, and it is computed for every
  connection record; tests/test_identity.py checks it against the package.
- `connection_uid`: smbwatch's own id of one connection, stable across runs over the same
  capture (a hash of the endpoints and the first packet's time), in the shape of Zeek's
  uids ("C" and 17 base62 characters). The Community ID names the 5-tuple, which a
  reused port shares; the uid names one connection.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct
from typing import Any, NamedTuple

COMMUNITY_ID_VERSION = "1:"
COMMUNITY_ID_DEFAULT_SEED = 0
IPPROTO_TCP = 6
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UID_DIGITS = 17

Endpoint = tuple[bytes, int]  # raw address (4 or 16 bytes), port


def format_ip(raw: bytes) -> str:
    if len(raw) == 4:  # the common case, spared ipaddress' object construction
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    return str(ipaddress.ip_address(raw))


def community_id(a: Endpoint, b: Endpoint, seed: int = COMMUNITY_ID_DEFAULT_SEED) -> str:
    """Community ID v1 of a TCP flow between `a` and `b` (either order gives the same id)."""
    if a > b:  # the spec orders by address, then by port: tuple order on (bytes, int) is exactly that
        a, b = b, a
    digest = hashlib.sha1(
        struct.pack("!H", seed) + a[0] + b[0] + struct.pack("!BxHH", IPPROTO_TCP, a[1], b[1])
    ).digest()
    return COMMUNITY_ID_VERSION + base64.b64encode(digest).decode("ascii")


def connection_uid(client: Endpoint, server: Endpoint, first_ts: float) -> str:
    """A stable id of one connection: the same capture gives the same uids."""
    digest = hashlib.blake2b(
        client[0] + struct.pack("!H", client[1]) + server[0] + struct.pack("!Hd", server[1], first_ts),
        digest_size=13,
    ).digest()
    number = int.from_bytes(digest, "big")
    digits = []
    for _ in range(_UID_DIGITS):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "C" + "".join(digits)


class ConnectionRef(NamedTuple):
    """Enough of a connection to name it in an alert: endpoints, first packet time, input file."""

    client: Endpoint
    server: Endpoint
    first_ts: float
    source_file: str | None

    @classmethod
    def between(
        cls,
        client_ip: str,
        server_ip: str,
        server_port: int = 445,
        client_port: int = 49152,
        first_ts: float = 0.0,
        source_file: str | None = None,
    ) -> ConnectionRef:
        """A reference from addresses in text form (tests, and records read back)."""
        return cls(
            (ipaddress.ip_address(client_ip).packed, client_port),
            (ipaddress.ip_address(server_ip).packed, server_port),
            first_ts,
            source_file,
        )

    def packed(self) -> bytes:
        """The endpoints and first packet time in one small bytes object (the input file aside): what a
        detector keeps for a connection that may never matter (a client's single failed logon)."""
        (client, client_port), (server, server_port) = self.client, self.server
        return bytes((len(client),)) + client + server + struct.pack("!HHd", client_port, server_port, self.first_ts)

    @classmethod
    def unpacked(cls, data: bytes, source_file: str | None) -> ConnectionRef:
        """The reference `packed` made, with its input file."""
        size = data[0]
        client, server = data[1 : 1 + size], data[1 + size : 1 + 2 * size]
        client_port, server_port, first_ts = struct.unpack_from("!HHd", data, 1 + 2 * size)
        return cls((client, client_port), (server, server_port), first_ts, source_file)

    @property
    def client_ip(self) -> str:
        return format_ip(self.client[0])

    @property
    def server_ip(self) -> str:
        return format_ip(self.server[0])

    def describe(self) -> dict[str, Any]:
        """The JSON fields that join an alert to its connection record (and to Zeek's or Suricata's)."""
        return {
            "client": {"ip": self.client_ip, "port": self.client[1]},
            "server": {"ip": self.server_ip, "port": self.server[1]},
            "uid": connection_uid(self.client, self.server, self.first_ts),
            "community_id": community_id(self.client, self.server),
            "source_file": self.source_file,
        }
