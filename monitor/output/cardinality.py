"""How many distinct things were seen, in fixed memory: HyperLogLog (Flajolet et al., 2007).

Used where a cap stops smbwatch from listing everything (hosts past `max_hosts`)
but the report should still say how many there were: 4,096 one-byte registers
(4 KiB) estimate any number of distinct items within about 1.6 %.
"""

from __future__ import annotations

import hashlib
import math

_REGISTER_BITS = 12
_REGISTERS = 1 << _REGISTER_BITS
_ALPHA = 0.7213 / (1 + 1.079 / _REGISTERS)  # the bias correction for m >= 128


class DistinctCounter:
    """Estimates the number of distinct byte strings `add`ed."""

    __slots__ = ("_registers",)

    def __init__(self) -> None:
        self._registers = bytearray(_REGISTERS)

    def add(self, item: bytes) -> None:
        value = int.from_bytes(hashlib.blake2b(item, digest_size=8).digest(), "big")
        index = value >> (64 - _REGISTER_BITS)
        rest = value & ((1 << (64 - _REGISTER_BITS)) - 1)
        rank = (64 - _REGISTER_BITS) - rest.bit_length() + 1  # position of the first 1 bit
        if rank > self._registers[index]:
            self._registers[index] = rank

    def estimate(self) -> int:
        registers = self._registers
        raw = _ALPHA * _REGISTERS * _REGISTERS / sum(2.0**-r for r in registers)
        empty = registers.count(0)
        if raw <= 2.5 * _REGISTERS and empty:
            return round(_REGISTERS * math.log(_REGISTERS / empty))  # linear counting for small numbers
        return round(raw)
