"""A snapshot file's node section (snapshot.py's layout), encoded from rows.

A row is one znode as the file stores it: its path (the root named ""), its data (None for
null), its ACL cache id and the 60 bytes of its StatPersisted. Each is written as ustring path,
then DataNode {buffer data, long acl id, StatPersisted}. Kept apart from snapshot.py so that the
compiled build compiles this loop (a forked child runs it over every znode at each snapshot)
while the rest of the codec stays Python.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Final

Row = tuple[str, bytes | None, int, bytes]

_I: Final = struct.Struct(">i")
_Q: Final = struct.Struct(">q")
_NULL: Final = b"\xff\xff\xff\xff"


def encode_rows(rows: Iterable[Row], chunk: int) -> Iterator[bytearray]:
    """The rows' records, in pieces of about ``chunk`` bytes or more (the last may be shorter
    or empty). Each piece is a new buffer, the caller's to keep."""
    buf = bytearray()
    pack_int = _I.pack
    pack_long = _Q.pack
    for path, data, ref, stat in rows:
        name = path.encode("utf-8")
        buf += pack_int(len(name))
        buf += name
        if data is None:
            buf += _NULL
        else:
            buf += pack_int(len(data))
            buf += data
        buf += pack_long(ref)
        buf += stat
        if len(buf) >= chunk:
            yield buf
            buf = bytearray()
    yield buf
