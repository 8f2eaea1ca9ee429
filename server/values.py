"""Small value classes written out by hand, for the modules every server start imports.

Why not ``@dataclass``: it writes each class's ``__init__``, ``__repr__`` and ``__eq__`` as
source text and compiles it while the module is imported (about a millisecond a class on a
busy machine), and a standalone server paid that at every start for classes it mostly never
builds. A ``Value`` subclass names its fields in ``__slots__`` and writes its ``__init__``
(``object.__setattr__`` for each field); this base gives what ``@dataclass(frozen=True)``
gave: equality and hashing by the fields in order, the same repr, and
``dataclasses.FrozenInstanceError`` on assignment. ``MutableValue`` is ``@dataclass``'s
plain (mutable, unhashable) form. ``Record`` is the base of both without the guard on
assignment, for records built on a hot path that set their fields once in ``__init__``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Record:
    """A record whose fields are its ``__slots__``, in order: equal and hashed by its fields, and
    shown as ``@dataclass(frozen=True)`` shows itself. Nothing stops an assignment to a field;
    the classes that use it directly (ZAB's messages, built some thirty times per write) set
    their fields in ``__init__`` with plain assignments and never again. ``__slots__`` is a
    ClassVar for mypyc: a compiled subclass (ZAB's messages, in the compiled build) keeps only
    the class attributes declared so, and would otherwise inherit this empty tuple."""

    __slots__: ClassVar[tuple[str, ...]] = ()
    _hidden: tuple[str, ...] = ()  # fields left out of the repr (dataclasses' field(repr=False))

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name not in self._hidden)
        return f"{type(self).__qualname__}({shown})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # copy and pickle rebuild through __init__
        return type(self), self._values()


class Value(Record):
    """An immutable record: a :class:`Record` whose fields cannot be assigned or deleted."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")


class MutableValue(Value):
    """A record whose fields may be assigned: equal by its fields, and unhashable."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__
