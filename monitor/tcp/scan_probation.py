"""The scan detector's first level: sources that have tried one destination so far, on probation.

A worm spreading on 445 tries many servers from one source; a spoofed SYN flood tries one server from
millions of random sources. Each source of a flood needs to be remembered only until it tries a second
destination, so sources wait here in a fixed table of slots, chosen by a keyed hash of the address
(nobody outside can aim sources at a scanner's slot), with no per-source object. A flood can only
overwrite slots (counted as `displaced`); a source that shows a second destination within the scan
window leaves its slot for the detector's tracked table (`tracked`, least recently active evicted),
which a random-source flood never reaches, so a scanner hidden in one is still found.

The slots live in one array of machine words, not in lists of objects: a flood writes a slot for
every SYN, and a slot holding a bytes object or a float makes each overwrite free an object last
touched tens of thousands of SYNs ago (a cache miss each; as three lists, probation cost about 0.4 µs
of a SYN's 2 µs, bench/README.md). A slot is `_SLOT_WORDS` adjacent words, so one cache line: the
source's hash (its fingerprint: two sources share one with probability 2^-64, and then one of them is
taken for the other's second destination), the first destination as two 64-bit halves (an address
family has one length, and the source and destination of an attempt share it) and the first attempt's
packet time in microseconds.

Compiled with the flow table (setup.py): every SYN of a flood passes here, and the flow table calls
`attempt` as a C call; the detector's Python code runs only for tracked sources and second destinations.
"""

from __future__ import annotations

from typing import Any, Final

from librt.vecs import vec
from mypy_extensions import i64

_EMPTY: Final = 0  # fingerprint of an empty slot (a source hashing to 0 is stored as 1)
_SLOT_WORDS: Final = 4  # fingerprint, destination high and low halves, time in microseconds
_FINGERPRINT: Final = 0
_DESTINATION_HIGH: Final = 1
_DESTINATION_LOW: Final = 2
_TIME_US: Final = 3
_MICROSECONDS: Final = 1_000_000
_WORD: Final = 1 << 64
_SIGN: Final = 1 << 63


def _signed(value: int) -> i64:
    """A 64-bit half of an address as the signed word a slot holds."""
    return value - _WORD if value >= _SIGN else value


def _unsigned(word: i64) -> int:
    value = int(word)
    return value + _WORD if value < 0 else value


def _address_words(address: bytes) -> tuple[i64, i64]:
    """An IPv4 or IPv6 address as two signed 64-bit words (high, low)."""
    if len(address) == 4:
        return 0, address[0] << 24 | address[1] << 16 | address[2] << 8 | address[3]
    value = int.from_bytes(address, "big")
    return _signed(value >> 64), _signed(value & (_WORD - 1))


class ScanProbation:
    """One-destination sources in `slots` keyed slots; `tracked` is the detector's table of the others."""

    def __init__(self, slots: int, window: float, destinations_needed: int, tracked: dict[bytes, Any]) -> None:
        self.slots: vec[i64] = vec[i64]()
        self.resize(slots)
        self.window_us: i64 = 0
        self.window = window
        # With a threshold of one destination every source is tracked at once: probation is skipped.
        self.one_destination_is_enough = destinations_needed <= 1
        self.tracked = tracked
        self.displaced = 0  # one-destination sources overwritten in their slot by another source
        # Set by `attempt` when it returns True for a source's second destination: its first one.
        self.earlier_destination: bytes | None = None
        self.earlier_ts = 0.0

    @property
    def window(self) -> float:
        """The scan window in seconds: a second destination counts if it comes within it."""
        return self.window_us / _MICROSECONDS

    @window.setter
    def window(self, seconds: float) -> None:
        self.window_us = int(seconds * _MICROSECONDS)

    @property
    def size(self) -> int:
        return len(self.slots) // _SLOT_WORDS

    def resize(self, slots: int) -> None:
        """`slots` empty slots (a resize forgets who waits)."""
        self.slots = vec[i64]([0] * (_SLOT_WORDS * max(slots, 0)))

    def attempt(self, source: bytes, destination: bytes, ts: float) -> bool:
        """A first-seen attempt from `source` to `destination`. False when nothing more is to be done
        (the source has tried one destination so far: it waits in its slot); True when the detector
        must look: the source is tracked, or this is its second destination (then
        `earlier_destination` and `earlier_ts` give the first)."""
        self.earlier_destination = None
        if source in self.tracked:
            return True
        slots = self.slots
        count: i64 = len(slots) // _SLOT_WORDS
        if count == 0:
            return True
        fingerprint: i64 = hash(source)
        if fingerprint == _EMPTY:
            fingerprint = 1
        base: i64 = (fingerprint % count) * _SLOT_WORDS
        high, low = _address_words(destination)
        ts_us: i64 = int(ts * _MICROSECONDS)
        waiting = slots[base + _FINGERPRINT]
        if waiting != _EMPTY:
            first_us = slots[base + _TIME_US]
            if waiting == fingerprint and ts_us - first_us <= self.window_us:
                first_high = slots[base + _DESTINATION_HIGH]
                first_low = slots[base + _DESTINATION_LOW]
                if first_high == high and first_low == low:
                    return self.one_destination_is_enough  # the same destination again: the first time stays
                slots[base + _FINGERPRINT] = _EMPTY
                self.earlier_destination = (_unsigned(first_high) << 64 | _unsigned(first_low)).to_bytes(
                    len(source), "big"
                )
                self.earlier_ts = first_us / _MICROSECONDS
                return True
            if waiting != fingerprint:
                self.displaced += 1
        slots[base + _FINGERPRINT] = fingerprint
        slots[base + _DESTINATION_HIGH] = high
        slots[base + _DESTINATION_LOW] = low
        slots[base + _TIME_US] = ts_us
        return self.one_destination_is_enough

    def is_tracked(self, source: bytes) -> bool:
        return source in self.tracked
