"""``StrEnum``: an enum whose members are their string values (Python 3.10 has no
``enum.StrEnum``). A member compares, hashes, prints, formats and serializes to JSON as
its value, so replacing a string constant by a member changes no output."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


__all__ = ["StrEnum"]
