"""The order in which Apache ZooKeeper lists children: a java.util.HashSet's iteration order.

Clients and scripts see getChildren results in that order, so we reproduce it: entries
sorted by hash bucket (Java's String.hashCode spread as HashMap does), insertion
order within a bucket. The table starts at 8 buckets (DataNode's HashSet(8)) and
doubles whenever the set grows past three quarters of it; it never shrinks.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

INITIAL_CAPACITY = 8


@lru_cache(maxsize=65536)
def java_hash(s: str) -> int:
    """java.lang.String.hashCode() spread by HashMap.hash(), as an unsigned 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h ^ (h >> 16)


def grown_capacity(capacity: int, size: int) -> int:
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def hashset_order(names_in_insertion_order: Iterable[str], capacity: int) -> list[str]:
    mask = capacity - 1
    return sorted(names_in_insertion_order, key=lambda n: java_hash(n) & mask)


def hashset_capacity(size: int) -> int:
    """The table size of a HashSet copied from one of ``size`` entries (HashMap.putMapEntries)."""
    wanted = int(size / 0.75 + 1.0)
    capacity = 1
    while capacity < wanted:
        capacity *= 2
    return capacity
