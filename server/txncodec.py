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
from .txnlog import TxnDigest

DIGEST_SIZE = 12  # int version, long treeDigest

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


def encode_txn(hdr: TxnHeader, body: Record | None, digest: TxnDigest | None = None) -> bytes:
    """Header, body and (as Apache 3.8's leader and txn log have it) the TxnDigest after them."""
    out = bytearray()
    hdr.write(out)
    if body is not None:
        body.write(out)
    if digest is not None:
        digest.write(out)
    return bytes(out)


def decode_txn(data: bytes | memoryview) -> tuple[TxnHeader, Any]:
    """Header and body; a TxnDigest after the body is left alone (see ``decode_txn_digest``)."""
    hdr, off = TxnHeader.read(data, 0)
    return hdr, decode_body(hdr.type, data, off)


def decode_txn_digest(data: bytes | memoryview) -> tuple[TxnHeader, Any, TxnDigest | None]:
    """Header, body and the TxnDigest when the bytes end with one (12 bytes after the body)."""
    hdr, off = TxnHeader.read(data, 0)
    op = hdr.type
    cls = BODY_TYPES.get(op)
    if cls is None:
        raise JuteError(f"unknown txn type {op}")
    rest = len(data) - off
    if rest == 0:
        return hdr, decode_body(op, data, off), None
    try:
        body, end = cls.read(data, off)
    except JuteError:
        if rest != DIGEST_SIZE or op not in (Op.closeSession, Op.createSession):
            raise
        # a session txn without a body, then the digest
        return hdr, decode_body(op, data, len(data)), TxnDigest.from_bytes(bytes(data[off:]))
    if len(data) - end == DIGEST_SIZE:
        return hdr, body, TxnDigest.from_bytes(bytes(data[end:]))
    return hdr, body, None


def encode_body(body: Record) -> bytes:
    return body.to_bytes()
