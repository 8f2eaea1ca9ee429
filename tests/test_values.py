"""The hand-written record bases of server/values.py behave as the dataclasses they replaced:
``Record`` (ZAB's messages) and ``Value`` equal, hashed and shown by their fields, ``Value``
frozen, ``MutableValue`` assignable and unhashable."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from zkops.server.values import MutableValue, Record, Value
from zkops.server.zab import Ack


class Pair(Record):
    __slots__ = ("a", "b")
    _hidden = ("b",)

    def __init__(self, a: int, b: int) -> None:
        self.a = a
        self.b = b


class FrozenPair(Value):
    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)


class LoosePair(MutableValue):
    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        self.a = a
        self.b = b


def test_a_record_compares_hashes_and_shows_its_fields() -> None:
    assert Pair(1, 2) == Pair(1, 2) and Pair(1, 2) != Pair(1, 3) and hash(Pair(1, 2)) == hash((1, 2))
    assert repr(Pair(1, 2)) == "Pair(a=1)"  # b is hidden, as field(repr=False) hid it
    assert Pair(1, 2) != FrozenPair(1, 2)  # another class with the same fields is another record
    assert copy.copy(Pair(1, 2)) == Pair(1, 2) and pickle.loads(pickle.dumps(Pair(1, 2))) == Pair(1, 2)
    assert isinstance(Ack(5), Record) and not isinstance(Ack(5), Value)  # ZAB's messages use the base


def test_a_value_is_frozen_and_a_mutable_value_is_not_hashable() -> None:
    v = FrozenPair(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.a = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del v.a
    assert v == FrozenPair(1, 2) and repr(v) == "FrozenPair(a=1, b=2)"
    m = LoosePair(1, 2)
    m.a = 3
    assert m == LoosePair(3, 2)
    with pytest.raises(TypeError):
        hash(m)
