"""Bytes for messages between servers (election and quorum ports).

The consensus cores speak in small frozen dataclasses. This codec turns any registered
dataclass into a tagged binary form and back, without pickle: a peer can only make us
build the message types we registered, with ints, bytes, strings, bools, None, lists,
tuples, enums and nested registered dataclasses as fields.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Any

_Q = struct.Struct(">q")
_I = struct.Struct(">I")
_H = struct.Struct(">H")

T_NONE, T_FALSE, T_TRUE, T_INT, T_BIGINT, T_BYTES, T_STR, T_LIST, T_TUPLE, T_OBJ, T_ENUM = range(11)


class PeerWireError(ValueError):
    """A peer sent bytes that do not decode to a registered message."""


class Registry:
    """The message classes one port accepts, by name."""

    def __init__(self) -> None:
        self.by_name: dict[str, type] = {}
        self.enums: dict[str, type[enum.Enum]] = {}

    def register(self, *classes: type) -> None:
        for cls in classes:
            if isinstance(cls, type) and issubclass(cls, enum.Enum):
                self.enums[cls.__name__] = cls
            elif dataclasses.is_dataclass(cls):
                self.by_name[cls.__name__] = cls
            else:
                raise TypeError(f"{cls!r} is neither a dataclass nor an enum")

    # ------------------------------------------------------------ encode
    def encode(self, value: Any) -> bytes:
        out = bytearray()
        self._enc(out, value)
        return bytes(out)

    def _enc(self, out: bytearray, v: Any) -> None:
        if v is None:
            out.append(T_NONE)
        elif v is True:
            out.append(T_TRUE)
        elif v is False:
            out.append(T_FALSE)
        elif isinstance(v, enum.Enum) and self.enums.get(type(v).__name__) is type(v):
            out.append(T_ENUM)
            self._name(out, type(v).__name__)
            self._enc(out, v.value)
        elif isinstance(v, int):  # plain ints, and IntEnums nobody registered
            v = int(v)
            if -(1 << 63) <= v < (1 << 63):
                out.append(T_INT)
                out += _Q.pack(v)
            else:
                out.append(T_BIGINT)
                self._enc(out, str(v))
        elif isinstance(v, (bytes, bytearray, memoryview)):
            out.append(T_BYTES)
            out += _I.pack(len(v))
            out += v
        elif isinstance(v, str):
            data = v.encode("utf-8")
            out.append(T_STR)
            out += _I.pack(len(data))
            out += data
        elif isinstance(v, (list, tuple, frozenset, set)):
            out.append(T_TUPLE if isinstance(v, tuple) else T_LIST)
            out += _I.pack(len(v))
            for item in (sorted(v) if isinstance(v, (set, frozenset)) else v):
                self._enc(out, item)
        elif dataclasses.is_dataclass(v):
            name = type(v).__name__
            if self.by_name.get(name) is not type(v):
                raise TypeError(f"{name} is not registered")
            out.append(T_OBJ)
            self._name(out, name)
            fields = dataclasses.fields(v)
            out += _H.pack(len(fields))
            for f in fields:
                self._enc(out, getattr(v, f.name))
        else:
            raise TypeError(f"cannot encode {type(v).__name__}")

    @staticmethod
    def _name(out: bytearray, name: str) -> None:
        data = name.encode()
        out += _H.pack(len(data))
        out += data

    # ------------------------------------------------------------ decode
    def decode(self, data: bytes | memoryview) -> Any:
        try:
            value, off = self._dec(memoryview(data), 0, 0)
        except (struct.error, IndexError, UnicodeDecodeError, TypeError) as exc:
            raise PeerWireError(f"undecodable peer message: {exc}") from None
        if off != len(data):
            raise PeerWireError("trailing bytes after peer message")
        return value

    def _dec(self, buf: memoryview, off: int, depth: int) -> tuple[Any, int]:
        if depth > 32:
            raise PeerWireError("peer message nested too deeply")
        tag = buf[off]
        off += 1
        if tag == T_NONE:
            return None, off
        if tag == T_TRUE:
            return True, off
        if tag == T_FALSE:
            return False, off
        if tag == T_INT:
            return _Q.unpack_from(buf, off)[0], off + 8
        if tag == T_BIGINT:
            s, off = self._dec(buf, off, depth + 1)
            return int(s), off
        if tag in (T_BYTES, T_STR):
            (n,) = _I.unpack_from(buf, off)
            off += 4
            if off + n > len(buf):
                raise PeerWireError("length overruns peer message")
            raw = bytes(buf[off:off + n])
            return (raw if tag == T_BYTES else raw.decode("utf-8")), off + n
        if tag in (T_LIST, T_TUPLE):
            (n,) = _I.unpack_from(buf, off)
            off += 4
            if n > len(buf) - off:
                raise PeerWireError("list length overruns peer message")
            items = []
            for _ in range(n):
                item, off = self._dec(buf, off, depth + 1)
                items.append(item)
            return (tuple(items) if tag == T_TUPLE else items), off
        if tag == T_ENUM:
            name, off = self._read_name(buf, off)
            cls = self.enums.get(name)
            if cls is None:
                raise PeerWireError(f"unknown enum {name}")
            value, off = self._dec(buf, off, depth + 1)
            return cls(value), off
        if tag == T_OBJ:
            name, off = self._read_name(buf, off)
            cls = self.by_name.get(name)
            if cls is None:
                raise PeerWireError(f"unknown message type {name}")
            (n,) = _H.unpack_from(buf, off)
            off += 2
            fields = dataclasses.fields(cls)
            if n != len(fields):
                raise PeerWireError(f"{name} has {len(fields)} fields, peer sent {n}")
            values = []
            for _ in range(n):
                value, off = self._dec(buf, off, depth + 1)
                values.append(value)
            try:
                return cls(*values), off
            except (TypeError, ValueError) as exc:
                raise PeerWireError(f"bad {name}: {exc}") from None
        raise PeerWireError(f"unknown tag {tag}")

    @staticmethod
    def _read_name(buf: memoryview, off: int) -> tuple[str, int]:
        (n,) = _H.unpack_from(buf, off)
        off += 2
        return bytes(buf[off:off + n]).decode(), off + n
