"""Connection ids: Community ID v1 against the reference package, and smbwatch's stable uid."""

from __future__ import annotations

import ipaddress

import communityid
from hypothesis import given
from hypothesis import strategies as st

from monitor.tcp.identity import ConnectionRef, community_id, connection_uid

ports = st.integers(min_value=0, max_value=0xFFFF)
ipv4 = st.binary(min_size=4, max_size=4)
ipv6 = st.binary(min_size=16, max_size=16)


def reference(a: tuple[bytes, int], b: tuple[bytes, int]) -> str:
    flow = communityid.FlowTuple.make_tcp(str(ipaddress.ip_address(a[0])), str(ipaddress.ip_address(b[0])), a[1], b[1])
    return communityid.CommunityID().calc(flow)


@given(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)), ports, ports)
def test_community_id_equals_the_reference_implementation(addresses: tuple[bytes, bytes], a: int, b: int) -> None:
    client, server = (addresses[0], a), (addresses[1], b)
    assert community_id(client, server) == reference(client, server)
    assert community_id(server, client) == community_id(client, server)  # direction does not matter


def test_community_id_of_the_spec_example() -> None:
    # The Community ID spec's baseline for TCP 128.232.110.120:34855 -> 66.35.250.204:80, seed 0.
    flow = ((bytes([128, 232, 110, 120]), 34855), (bytes([66, 35, 250, 204]), 80))
    assert community_id(*flow) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_uid_is_stable_and_names_one_connection() -> None:
    client, server = (bytes([192, 0, 2, 10]), 49152), (bytes([192, 0, 2, 20]), 445)
    uid = connection_uid(client, server, 1700000000.25)
    assert uid == connection_uid(client, server, 1700000000.25)
    assert uid.startswith("C") and len(uid) == 18 and uid[1:].isalnum()
    # The same ports reused later is another connection: another uid, the same Community ID.
    assert connection_uid(client, server, 1700000060.0) != uid
    ref = ConnectionRef(client, server, 1700000000.25, "a.pcap").describe()
    assert ref == {
        "client": {"ip": "192.0.2.10", "port": 49152},
        "server": {"ip": "192.0.2.20", "port": 445},
        "uid": uid,
        "community_id": community_id(client, server),
        "source_file": "a.pcap",
    }
