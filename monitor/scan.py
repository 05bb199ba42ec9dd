"""The scan detector's first level: sources that have tried one destination so far, on probation.

A worm spreading on 445 tries many servers from one source; a spoofed SYN flood tries one server from
millions of random sources. Each source of a flood needs to be remembered only until it tries a second
destination, so sources wait here in a fixed table of slots, chosen by a keyed hash of the address
(nobody outside can aim sources at a scanner's slot), with no per-source object. A flood can only
overwrite slots (counted as `displaced`); a source that shows a second destination within the scan
window leaves its slot for the detector's tracked table (`tracked`, least recently active evicted),
which a random-source flood never reaches, so a scanner hidden in one is still found.

Compiled with the flow table (setup.py): every SYN of a flood passes here, and the flow table calls
`attempt` as a C call; the detector's Python code runs only for tracked sources and second destinations.
"""

from __future__ import annotations

from typing import Any


class ScanProbation:
    """One-destination sources in `slots` keyed slots; `tracked` is the detector's table of the others."""

    def __init__(self, slots: int, window: float, destinations_needed: int, tracked: dict[bytes, Any]) -> None:
        # Per slot: the source, the destination and packet time of its first attempt, in three lists
        # rather than a tuple each: a flood writes a slot for every SYN, and a tuple is an object the
        # garbage collector must walk (bytes and floats are not).
        self.sources: list[bytes | None] = []
        self.destinations: list[bytes] = []
        self.times: list[float] = []
        self.resize(slots)
        self.window = window
        # With a threshold of one destination every source is tracked at once: probation is skipped.
        self.one_destination_is_enough = destinations_needed <= 1
        self.tracked = tracked
        self.displaced = 0  # one-destination sources overwritten in their slot by another source
        # Set by `attempt` when it returns True for a source's second destination: its first one.
        self.earlier_destination: bytes | None = None
        self.earlier_ts = 0.0

    @property
    def size(self) -> int:
        return len(self.sources)

    def resize(self, slots: int) -> None:
        """`slots` empty slots (a resize forgets who waits)."""
        slots = max(slots, 0)
        self.sources = [None] * slots
        self.destinations = [b""] * slots
        self.times = [0.0] * slots

    def attempt(self, source: bytes, destination: bytes, ts: float) -> bool:
        """A first-seen attempt from `source` to `destination`. False when nothing more is to be done
        (the source has tried one destination so far: it waits in its slot); True when the detector
        must look: the source is tracked, or this is its second destination (then
        `earlier_destination` and `earlier_ts` give the first)."""
        self.earlier_destination = None
        if source in self.tracked:
            return True
        sources = self.sources
        if not sources:
            return True
        slot = hash(source) % len(sources)
        waiting = sources[slot]
        if waiting is not None:
            if waiting == source and ts - self.times[slot] <= self.window:
                first_destination = self.destinations[slot]
                if first_destination == destination:
                    return self.one_destination_is_enough  # the same destination again: the first time stays
                sources[slot] = None
                self.earlier_destination = first_destination
                self.earlier_ts = self.times[slot]
                return True
            if waiting != source:
                self.displaced += 1
        sources[slot] = source
        self.destinations[slot] = destination
        self.times[slot] = ts
        return self.one_destination_is_enough

    def is_tracked(self, source: bytes) -> bool:
        return source in self.tracked
