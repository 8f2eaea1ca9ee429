"""The ops of a multi: one loop reads them, whichever of its two forms they come in.

A multi is a list of (op type, record) and travels in two forms:

- a client's request (Apache's ``MultiOperationRecord``): each op's request record after a
  ``MultiHeader(type, done, err)``, all in one buffer, ended by a header with ``done`` set;
- the body of a multi txn (``MultiTxn``): a vector of ``Txn(type, data)``, each ``data``
  one whole txn body.

The forms differ in where each op's bytes sit (the framing, here) and in which record an op
type names. The caller says the latter with a ``read(op, buf, off) -> (record, end)``: the
client-port request table (:mod:`zkops.server.wire`, through :func:`table_reader`) or the
txn body reader with its legacy forms (:mod:`zkops.server.txncodec`). What each form makes of
the ops afterwards (the request form's create flags and read/write rules) stays with its
caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .jute import JuteError, Record
from .records import MultiHeader, MultiTxn

# reads the record of one op of type ``op`` at ``off`` of ``buf``: (record, offset after it)
ReadOp = Callable[[int, bytes | memoryview, int], tuple[Any, int]]


def table_reader(types: Mapping[int, type[Record]]) -> ReadOp:
    """A ``read`` for ops whose record is the class ``types`` maps their type to.

    A type the table lacks is a JuteError, as Apache fails a multi with an op it cannot read.
    """
    def read(op: int, buf: bytes | memoryview, off: int) -> tuple[Any, int]:
        cls = types.get(op)
        if cls is None:
            raise JuteError(f"invalid op type {op} in multi")
        return cls.read(buf, off)

    return read


class _Framing(Protocol):
    def next_type(self) -> int | None:
        """The type of the next op; None after the last one."""

    def read(self, op: int, read: ReadOp) -> Any:
        """The record of the op ``next_type`` just gave."""


class _RequestFraming:
    """MultiHeader, record, MultiHeader, record, ... MultiHeader(done): one buffer."""

    def __init__(self, buf: bytes | memoryview, off: int) -> None:
        self.buf = buf
        self.off = off

    def next_type(self) -> int | None:
        mh, self.off = MultiHeader.read(self.buf, self.off)
        return None if mh.done else int(mh.type)

    def read(self, op: int, read: ReadOp) -> Any:
        rec, self.off = read(op, self.buf, self.off)
        return rec


class _TxnFraming:
    """Txn(type, data) after Txn(type, data): each op's record fills its own ``data``."""

    def __init__(self, txn: MultiTxn) -> None:
        self.txns = iter(txn.txns or ())
        self.data: bytes = b""

    def next_type(self) -> int | None:
        sub = next(self.txns, None)
        if sub is None:
            return None
        self.data = sub.data or b""
        return int(sub.type)

    def read(self, op: int, read: ReadOp) -> Any:
        rec, end = read(op, self.data, 0)
        if end != len(self.data):
            raise JuteError(f"{len(self.data) - end} trailing bytes in a multi op of type {op}")
        return rec


def _decode_ops(framing: _Framing, read: ReadOp) -> list[tuple[int, Any]]:
    ops: list[tuple[int, Any]] = []
    while (op := framing.next_type()) is not None:
        ops.append((op, framing.read(op, read)))
    return ops


def decode_request_ops(buf: bytes | memoryview, off: int, read: ReadOp) -> list[tuple[int, Any]]:
    """(type, record) of each op of a client's multi request starting at ``off`` of ``buf``."""
    return _decode_ops(_RequestFraming(buf, off), read)


def decode_txn_ops(txn: MultiTxn, read: ReadOp) -> list[tuple[int, Any]]:
    """(type, record) of each op of a MultiTxn; bytes left in an op's data are a JuteError."""
    return _decode_ops(_TxnFraming(txn), read)


__all__ = ["ReadOp", "decode_request_ops", "decode_txn_ops", "table_reader"]
