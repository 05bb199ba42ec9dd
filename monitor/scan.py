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
        # Source, destination, packet time of its first attempt.
        self.slots: list[tuple[bytes, bytes, float] | None] = [None] * max(slots, 0)
        self.window = window
        # With a threshold of one destination every source is tracked at once: probation is skipped.
        self.one_destination_is_enough = destinations_needed <= 1
        self.tracked = tracked
        self.displaced = 0  # one-destination sources overwritten in their slot by another source
        # Set by `attempt` when it returns True for a source's second destination: its first one.
        self.earlier_destination: bytes | None = None
        self.earlier_ts = 0.0

    def attempt(self, source: bytes, destination: bytes, ts: float) -> bool:
        """A first-seen attempt from `source` to `destination`. False when nothing more is to be done
        (the source has tried one destination so far: it waits in its slot); True when the detector
        must look: the source is tracked, or this is its second destination (then
        `earlier_destination` and `earlier_ts` give the first)."""
        self.earlier_destination = None
        if source in self.tracked:
            return True
        slots = self.slots
        if not slots:
            return True
        slot = hash(source) % len(slots)
        entry = slots[slot]
        if entry is not None:
            if entry[0] == source and ts - entry[2] <= self.window:
                if entry[1] == destination:
                    return self.one_destination_is_enough  # the same destination again: the first time stays
                slots[slot] = None
                self.earlier_destination = entry[1]
                self.earlier_ts = entry[2]
                return True
            if entry[0] != source:
                self.displaced += 1
        slots[slot] = (source, destination, ts)
        return self.one_destination_is_enough

    def is_tracked(self, source: bytes) -> bool:
        return source in self.tracked
