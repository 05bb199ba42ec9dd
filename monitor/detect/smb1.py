"""`smb1_negotiated`: a connection uses SMB1, raised once per client/server pair per period; between
known legacy devices (`smb1_allow`) only counted."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from typing import Any

from monitor.detect.alerts import Alert, RuleBase
from monitor.tcp.identity import ConnectionRef

ALERT_SMB1_NEGOTIATED = "smb1_negotiated"


class Smb1Rules(RuleBase):
    """The SMB1 rule's part of the detector."""

    _smb1_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    _smb1_pairs: OrderedDict[tuple[str, str], float]
    smb1_allowed: int
    pairs_forgotten: int

    def smb1_allowed_address(self, ip: str) -> bool:
        """The address is in `smb1_allow`: a known legacy device."""
        if not self._smb1_allow:
            return False
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self._smb1_allow)

    def smb1_used(self, connection: ConnectionRef, ts: float, evidence: dict[str, Any]) -> Alert | None:
        """A connection uses SMB1 (negotiated, or an SMB1 command crossed it). Between allowed
        legacy devices it is only counted."""
        client, server = connection.client_ip, connection.server_ip
        if self.smb1_allowed_address(client) or self.smb1_allowed_address(server):
            self.smb1_allowed += 1
            return None
        pair = (client, server)
        last = self._smb1_pairs.get(pair)
        if last is not None and ts - last < self.settings.smb1_alert_period:
            return None
        self._smb1_pairs[pair] = ts
        self._smb1_pairs.move_to_end(pair)
        if len(self._smb1_pairs) > self.settings.max_tracked_pairs:
            self._smb1_pairs.popitem(last=False)
            self.pairs_forgotten += 1
            self.pairs_evicted["smb1_negotiated"] += 1
        return self._raise(Alert(ALERT_SMB1_NEGOTIATED, ts, client, server, evidence, connection))
