"""TCP: the flow table, its fast path, connection identity."""
