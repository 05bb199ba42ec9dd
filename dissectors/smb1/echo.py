"""SMB_COM_ECHO request ([MS-CIFS] 2.2.4.39.1): EchoCount and the data to echo back.

Only the first bytes of the data are kept: enough to recognise a fixed marker.
"""

from __future__ import annotations

from dissectors.records import Anomaly, AnomalyKind, Smb1EchoRequest, Smb1Header
from dissectors.smb1.parameters import Smb1Block

ECHO_DATA_PREFIX_KEPT = 16


def parse_request(message: bytes, block: Smb1Block, header: Smb1Header) -> Smb1EchoRequest | Anomaly:
    if len(block.words) != 2:
        return Anomaly(AnomalyKind.SMB1_MALFORMED, f"ECHO WordCount {len(block.words) // 2}")
    echo_count = int.from_bytes(block.words, "little")
    return Smb1EchoRequest(echo_count, bytes(block.data[:ECHO_DATA_PREFIX_KEPT]))
