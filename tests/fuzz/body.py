"""Jute bodies for the fuzzer, with hooks that break them: bad length prefixes, cut or padded frames.

A body is built field by field so the generator can mangle one length prefix (negative, past
the end) without knowing the record's layout; the result is plain bytes.
"""

from __future__ import annotations

import random
import struct
from typing import Any


class Body:
    """Bytes of one request body; ``mangle`` is the chance that a length prefix is broken."""

    def __init__(self, rng: random.Random | None = None, mangle: float = 0.0) -> None:
        self.out = bytearray()
        self.rng = rng
        self.mangle = mangle
        self.notes: list[str] = []

    def _bad_len(self, real: int) -> int | None:
        if self.rng is None or self.rng.random() >= self.mangle:
            return None
        bad = self.rng.choice([-2, -1000, real + 7, 0x7FFFFFFF, -0x80000000])
        self.notes.append(f"len {real}->{bad}")
        return bad

    def int(self, v: int) -> Body:
        self.out += struct.pack(">i", v)
        return self

    def long(self, v: int) -> Body:
        self.out += struct.pack(">q", v)
        return self

    def bool(self, v: bool) -> Body:
        self.out.append(1 if v else 0)
        return self

    def buffer(self, v: bytes | None) -> Body:
        if v is None:
            return self.int(-1)
        bad = self._bad_len(len(v))
        self.int(len(v) if bad is None else bad)
        self.out += v
        return self

    def string(self, v: str | None) -> Body:
        return self.buffer(None if v is None else v.encode("utf-8"))

    def strings(self, v: list[str | None] | None) -> Body:
        if v is None:
            return self.int(-1)
        bad = self._bad_len(len(v))
        self.int(len(v) if bad is None else bad)
        for s in v:
            self.string(s)
        return self

    def acl(self, v: list[tuple[int, str | None, str | None]] | None) -> Body:
        if v is None:
            return self.int(-1)
        bad = self._bad_len(len(v))
        self.int(len(v) if bad is None else bad)
        for perms, scheme, ident in v:
            self.int(perms).string(scheme).string(ident)
        return self

    def raw(self, b: bytes) -> Body:
        self.out += b
        return self

    def bytes(self) -> bytes:
        return bytes(self.out)


def describe(value: Any) -> str:
    """A short printable form of a value for a step's description."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
