"""Pure SMB, NetBIOS and authentication parsing: bytes in, frozen records out.

No I/O, clock, logging, metrics or global state here; nothing raises on data
from the network (malformed input becomes an `Anomaly` record).
"""
