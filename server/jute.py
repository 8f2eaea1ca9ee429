"""Jute, ZooKeeper's binary record format, as a small declarative codec.

A record class lists its fields as ``(name, type)`` pairs; this module compiles a
``serialize`` and a ``deserialize`` function for it once, at class creation, so the
hot path runs straight-line ``struct`` calls with no per-field dispatch.

Types: ``int`` (int32), ``long`` (int64), ``bool``, ``buffer`` (bytes or None),
``ustring`` (str or None), ``[T]`` for ``vector<T>`` (list or None) and a record
class for a nested record. All integers are big-endian; a buffer, string or vector
is prefixed by an int32 length where -1 means null.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

INT = struct.Struct(">i")
LONG = struct.Struct(">q")
BOOL = struct.Struct(">?")

_pack_int = INT.pack
_unpack_int = INT.unpack_from
_pack_long = LONG.pack
_unpack_long = LONG.unpack_from


class JuteError(ValueError):
    """The bytes do not hold the record they should (truncated, bad length)."""


def _read_buffer(buf: bytes | memoryview, off: int) -> tuple[bytes | None, int]:
    (n,) = _unpack_int(buf, off)
    off += 4
    if n < 0:
        if n != -1:  # only -1 means null, as Apache's BinaryInputArchive checks
            raise JuteError(f"unreasonable length {n}")
        return None, off
    end = off + n
    if end > len(buf):
        raise JuteError(f"buffer of {n} bytes overruns the record")
    return bytes(buf[off:end]), end


def read_string(buf: bytes | memoryview, off: int) -> tuple[str | None, int]:
    (n,) = _unpack_int(buf, off)
    off += 4
    if n < 0:
        if n != -1:
            raise JuteError(f"unreasonable length {n}")
        return None, off
    end = off + n
    if end > len(buf):
        raise JuteError(f"string of {n} bytes overruns the record")
    # bytes that are not UTF-8 become U+FFFD, as Java's String(bytes, UTF_8) makes them
    return str(buf[off:end], "utf-8", "replace"), end


def _write_buffer(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
    else:
        out += _pack_int(len(value))
        out += value


def write_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
    else:
        data = value.encode("utf-8")
        out += _pack_int(len(data))
        out += data


_ENV: dict[str, Any] = {
    "_pack_int": _pack_int,
    "_unpack_int": _unpack_int,
    "_pack_long": _pack_long,
    "_unpack_long": _unpack_long,
    "_read_buffer": _read_buffer,
    "_read_string": read_string,
    "_write_buffer": _write_buffer,
    "_write_string": write_string,
    "JuteError": JuteError,
}


def _emit_write(lines: list[str], expr: str, ftype: Any, indent: str, depth: int, env: dict[str, Any]) -> None:
    """The code that writes ``expr`` of ``ftype``: strings, buffers and nested records inline
    (a CreateTxn with its ACL list is one function call, not eight)."""
    if ftype == "int":
        lines.append(f"{indent}out += _pack_int({expr})")
    elif ftype == "long":
        lines.append(f"{indent}out += _pack_long({expr})")
    elif ftype == "bool":
        lines.append(f"{indent}out.append(1 if {expr} else 0)")
    elif ftype in ("buffer", "ustring"):
        var = f"_s{depth}"
        lines.append(f"{indent}{var} = {expr}")
        lines.append(f"{indent}if {var} is None:")
        lines.append(f"{indent}    out += b'\\xff\\xff\\xff\\xff'")
        lines.append(f"{indent}else:")
        if ftype == "ustring":
            lines.append(f"{indent}    {var} = {var}.encode('utf-8')")
        lines.append(f"{indent}    out += _pack_int(len({var}))")
        lines.append(f"{indent}    out += {var}")
    elif isinstance(ftype, list):
        var = f"_v{depth}"
        item = f"_i{depth}"
        lines.append(f"{indent}{var} = {expr}")
        lines.append(f"{indent}if {var} is None:")
        lines.append(f"{indent}    out += b'\\xff\\xff\\xff\\xff'")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    out += _pack_int(len({var}))")
        lines.append(f"{indent}    for {item} in {var}:")
        _emit_write(lines, item, ftype[0], indent + "        ", depth + 1, env)
    elif isinstance(ftype, type) and issubclass(ftype, Record):
        var = f"_r{depth}"
        lines.append(f"{indent}{var} = {expr}")
        _emit_record_write(lines, var, ftype, indent, depth + 1, env)
    else:
        raise TypeError(f"unknown jute type {ftype!r}")


def _emit_record_write(lines: list[str], obj: str, cls: type[Record], indent: str, depth: int,
                       env: dict[str, Any]) -> None:
    """The code that writes record ``obj`` of class ``cls``: each run of two or more fixed-width
    fields one struct call, the other fields as _emit_write writes them."""
    for item in _runs(cls.FIELDS):
        if isinstance(item, list):
            fmt = struct.Struct(">" + "".join(_FIXED[t] for _, t in item))
            name = f"_W{len(env)}"
            env[name] = fmt
            lines.append(f"{indent}out += {name}.pack({', '.join(f'{obj}.{n}' for n, _ in item)})")
        else:
            _emit_write(lines, f"{obj}.{item[0]}", item[1], indent, depth, env)


def _emit_read(lines: list[str], target: str, ftype: Any, indent: str, depth: int, env: dict[str, Any]) -> None:
    if ftype == "int":
        lines.append(f"{indent}({target},) = _unpack_int(buf, off); off += 4")
    elif ftype == "long":
        lines.append(f"{indent}({target},) = _unpack_long(buf, off); off += 8")
    elif ftype == "bool":
        lines.append(f"{indent}{target} = buf[off] != 0; off += 1")
    elif ftype in ("buffer", "ustring"):
        # read_string and _read_buffer, inline
        n = f"_n{depth}"
        lines.append(f"{indent}({n},) = _unpack_int(buf, off); off += 4")
        lines.append(f"{indent}if {n} < 0:")
        lines.append(f"{indent}    if {n} != -1:")
        lines.append(f"{indent}        raise JuteError(f'unreasonable length {{{n}}}')")
        lines.append(f"{indent}    {target} = None")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    _e = off + {n}")
        lines.append(f"{indent}    if _e > len(buf):")
        what = "string" if ftype == "ustring" else "buffer"
        lines.append(f"{indent}        raise JuteError(f'{what} of {{{n}}} bytes overruns the record')")
        if ftype == "ustring":
            # bytes that are not UTF-8 become U+FFFD, as Java's String(bytes, UTF_8) makes them
            lines.append(f"{indent}    {target} = str(buf[off:_e], 'utf-8', 'replace')")
        else:
            lines.append(f"{indent}    {target} = bytes(buf[off:_e])")
        lines.append(f"{indent}    off = _e")
    elif isinstance(ftype, list):
        n = f"_n{depth}"
        lst = f"_l{depth}"
        item = f"_i{depth}"
        lines.append(f"{indent}({n},) = _unpack_int(buf, off); off += 4")
        # -1 is null; another negative count is an empty vector, as in Apache's BinaryIndex
        lines.append(f"{indent}if {n} == -1:")
        lines.append(f"{indent}    {target} = None")
        lines.append(f"{indent}elif {n} < 0:")
        lines.append(f"{indent}    {target} = []")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    if {n} > len(buf) - off:")
        lines.append(f"{indent}        raise JuteError('vector of %d items overruns the record' % {n})")
        lines.append(f"{indent}    {lst} = []")
        lines.append(f"{indent}    for _ in range({n}):")
        _emit_read(lines, item, ftype[0], indent + "        ", depth + 1, env)
        lines.append(f"{indent}        {lst}.append({item})")
        lines.append(f"{indent}    {target} = {lst}")
    elif isinstance(ftype, type) and issubclass(ftype, Record):
        # the nested record's fields inline, into locals of this depth, then the record
        name = f"_R_{ftype.__name__}"
        env[name] = ftype
        local = {n: f"_f{depth}_{n}" for n, _ in ftype.FIELDS}
        for part in _runs(ftype.FIELDS):
            if isinstance(part, list):
                fmt = struct.Struct(">" + "".join(_FIXED[t] for _, t in part))
                sname = f"_U{len(env)}"
                env[sname] = fmt
                names = ", ".join(local[n] for n, _ in part)
                lines.append(f"{indent}({names},) = {sname}.unpack_from(buf, off); off += {fmt.size}")
            else:
                _emit_read(lines, local[part[0]], part[1], indent, depth + 1, env)
        obj = f"_o{depth}"
        lines.append(f"{indent}{obj} = _object_new({name})")
        lines += [f"{indent}{obj}.{n} = {v}" for n, v in local.items()]
        lines.append(f"{indent}{target} = {obj}")
    else:
        raise TypeError(f"unknown jute type {ftype!r}")


_FIXED = {"int": "i", "long": "q", "bool": "?"}


def _runs(fields: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any] | list[tuple[str, str]]]:
    """The fields, with each run of two or more fixed-width ones (int, long, bool) as a list:
    a run is one struct call (a Stat's eleven fields, a TxnHeader's five), not one per field."""
    out: list[tuple[str, Any] | list[tuple[str, str]]] = []
    run: list[tuple[str, str]] = []
    for field in (*fields, ("", None)):
        if isinstance(field[1], str) and field[1] in _FIXED:
            run.append((field[0], field[1]))
            continue
        if len(run) > 1:
            out.append(run)
        else:
            out.extend(run)
        run = []
        if field[1] is not None:
            out.append(field)
    return out


def _compile(cls: type[Record]) -> None:
    env = dict(_ENV)
    env["_cls"] = cls
    w = ["def write(self, out):"]
    r = ["def read(cls, buf, off=0):", "    try:"]
    for i, item in enumerate(_runs(cls.FIELDS)):
        if isinstance(item, list):
            # ">" with no padding: the same bytes as the fields one by one ('?' packs and
            # reads a bool as 1/0, as the one-field code does)
            fmt = struct.Struct(">" + "".join(_FIXED[t] for _, t in item))
            env[f"_S{i}"] = fmt
            names_i = ", ".join(n for n, _ in item)
            r.append(f"        ({names_i},) = _S{i}.unpack_from(buf, off); off += {fmt.size}")
        else:
            _emit_read(r, item[0], item[1], "        ", 0, env)
    _emit_record_write(w, "self", cls, "    ", 0, env)
    if len(w) == 1:
        w.append("    pass")
    names = [name for name, _ in cls.FIELDS]
    r.append("    except (struct_error, IndexError):")
    r.append(f"        raise JuteError('truncated {cls.__name__}') from None")
    # build the record slot by slot, without a call to __init__ or a loop over the fields
    r.append("    obj = _object_new(cls)")
    r += [f"    obj.{n} = {n}" for n in names]
    r.append("    return obj, off")
    env["struct_error"] = struct.error
    env["_object_new"] = object.__new__
    init = [f"def __init__(self, {', '.join(names)}):" if names else "def __init__(self):"]
    init += [f"    self.{n} = {n}" for n in names] or ["    pass"]
    exec("\n".join(init), env)  # noqa: S102 - generated from the class's own field list
    cls.__init__ = env["__init__"]  # type: ignore[method-assign]
    exec("\n".join(w), env)  # noqa: S102
    exec("\n".join(r), env)  # noqa: S102
    cls.write = env["write"]  # type: ignore[method-assign]
    cls.read = classmethod(env["read"])  # type: ignore[method-assign,assignment]


def _install_lazy_codec(cls: type[Record]) -> None:
    """Compile a record's codec on first use: the server imports ~70 records and uses a
    handful at start-up, so compiling them all at import time would slow every start."""

    def compiled() -> None:
        if cls.__dict__.get("_compiled") is not True:
            _compile(cls)
            cls._compiled = True  # type: ignore[attr-defined]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled()
        cls.__init__(self, *args, **kwargs)

    def write(self: Any, out: bytearray) -> None:
        compiled()
        cls.write(self, out)

    def read(klass: type, buf: bytes | memoryview, off: int = 0) -> tuple[Any, int]:
        compiled()
        return cls.read(buf, off)

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.write = write  # type: ignore[method-assign]
    cls.read = classmethod(read)  # type: ignore[method-assign,assignment]


class Record:
    """Base of every jute record: declare ``FIELDS`` and get the codec for free."""

    FIELDS: ClassVar[tuple[tuple[str, Any], ...]] = ()
    __slots__: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__slots__" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must declare __slots__ matching FIELDS")
        if tuple(cls.__slots__) != tuple(name for name, _ in cls.FIELDS):
            raise TypeError(f"{cls.__name__}.__slots__ must equal its FIELDS names")
        _install_lazy_codec(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields")
        for name, value in zip(names, args, strict=False):
            object.__setattr__(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                object.__setattr__(self, name, kwargs.pop(name))
            else:
                raise TypeError(f"{type(self).__name__} missing field {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(kwargs)}")

    # Replaced per subclass by _compile.
    def write(self, out: bytearray) -> None:  # pragma: no cover - replaced
        raise NotImplementedError

    @classmethod
    def read(cls, buf: bytes | memoryview, off: int = 0) -> tuple[Any, int]:  # pragma: no cover
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        out = bytearray()
        self.write(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, buf: bytes | memoryview) -> Any:
        """Decode exactly one record; trailing bytes are an error."""
        rec, off = cls.read(buf, 0)
        if off != len(buf):
            raise JuteError(f"{len(buf) - off} trailing bytes after {cls.__name__}")
        return rec

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, n)) for n in self.__slots__))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: Any) -> Any:
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        return type(self)(**values)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
