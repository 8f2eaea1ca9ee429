"""Transactions as bytes: TxnHeader followed by the body record its type names.

This is the unit the txn log stores and ZAB proposals carry, in ZooKeeper's layout.
"""

from __future__ import annotations

from typing import Any

from .codes import Op
from .jute import JuteError, Record
from .records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    TxnHeader,
)

BODY_TYPES: dict[int, type[Record]] = {
    Op.create: CreateTxn,
    Op.create2: CreateTxn,
    Op.createContainer: CreateContainerTxn,
    Op.createTTL: CreateTTLTxn,
    Op.delete: DeleteTxn,
    Op.deleteContainer: DeleteTxn,
    Op.setData: SetDataTxn,
    Op.reconfig: SetDataTxn,  # a setData of /zookeeper/config
    Op.setACL: SetACLTxn,
    Op.check: CheckVersionTxn,
    Op.createSession: CreateSessionTxn,
    Op.closeSession: CloseSessionTxn,
    Op.error: ErrorTxn,
    Op.multi: MultiTxn,
}


def decode_body(op: int, data: bytes | memoryview, off: int = 0) -> Any:
    """Decode the body of a txn of type ``op``; a closeSession body may be empty."""
    cls = BODY_TYPES.get(op)
    if cls is None:
        raise JuteError(f"unknown txn type {op}")
    if op == Op.closeSession and off >= len(data):
        return CloseSessionTxn([])
    if op == Op.createSession and off >= len(data):
        return CreateSessionTxn(0)
    rec, _ = cls.read(data, off)
    return rec


def encode_txn(hdr: TxnHeader, body: Record | None) -> bytes:
    out = bytearray()
    hdr.write(out)
    if body is not None:
        body.write(out)
    return bytes(out)


def decode_txn(data: bytes | memoryview) -> tuple[TxnHeader, Any]:
    hdr, off = TxnHeader.read(data, 0)
    return hdr, decode_body(hdr.type, data, off)


def encode_body(body: Record) -> bytes:
    return body.to_bytes()
