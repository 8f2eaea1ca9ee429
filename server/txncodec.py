"""Transactions as bytes: the one codec for a txn, in Apache ZooKeeper 3.8's layout.

A txn is a TxnHeader, then the body record its type names, then -- as 3.8's leader sends
it and its txn log stores it -- optionally a TxnDigest (``int version, long treeDigest``).
These bytes are what the txn log frames (:mod:`zkops.server.txnlog`), what ZAB proposals
carry and what a log replay applies; a multi txn's body is a MultiTxn whose every op is
one such body on its own (its ops are read by :mod:`zkops.server.multicodec`).

Reading follows 3.8's ``SerializeUtils.deserializeTxn``, legacy forms included:

- a closeSession without a body (written before CloseSessionTxn existed, or with
  ``zookeeper.closeSessionTxn.enabled=false``) reads as ``None``, also when a digest
  follows it;
- a create too short for ``parentCVersion`` is a :class:`CreateTxnV0` and reads as a
  CreateTxn with ``parentCVersion`` -1;
- the digest is optional: nothing after the body means none.

Anything else after the body (other than exactly one digest) is a :class:`JuteError`.
"""

from __future__ import annotations

import struct
from typing import Any

from .codes import Op
from .jute import JuteError, Record
from .multicodec import decode_txn_ops
from .records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    TxnDigest,
    TxnHeader,
)
from .values import Value

TXN_HEADER_SIZE = 32  # clientId 8, cxid 4, zxid 8, time 8, type 4
DIGEST_SIZE = 12  # int version, long treeDigest
_ZXID = struct.Struct(">q")
ZXID_OFFSET = 12  # where the zxid sits inside a TxnHeader

# TxnDigest (what 3.8 appends after a body) and CreateTxnV0 (a create from before
# parentCVersion) are this codec's records, defined with the other jute records in records.py:
# a jute record's class is built at import (its codec generated), so it cannot live in a module
# the compiled build compiles (server/compiled.py)

# The body record of each txn type, as 3.8's SerializeUtils.deserializeTxn picks it
# (plus check, which only occurs inside a multi but decodes the same way).
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


class TxnEntry(Value):
    """One decoded txn: header, body (None for a bare closeSession) and optional digest."""

    __slots__ = ("header", "body", "digest")
    header: TxnHeader
    body: Record | None
    digest: TxnDigest | None

    def __init__(self, header: TxnHeader, body: Record | None, digest: TxnDigest | None = None) -> None:
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "digest", digest)


# ---------------------------------------------------------------- writing
def encode_txn(header: TxnHeader, body: Record | None, digest: TxnDigest | None = None) -> bytes:
    """Serialize a txn as ZooKeeper logs and proposes it: header, body if any, digest if any."""
    out = bytearray()
    header.write(out)
    if body is not None:
        body.write(out)
    if digest is not None:
        digest.write(out)
    return bytes(out)


_DIGEST = struct.Struct(">iq")


def encode_txn_digest(header: TxnHeader, body: Record | None, version: int, tree_digest: int | None) -> bytes:
    """:func:`encode_txn` with a TxnDigest of ``version`` and the unsigned 64-bit ``tree_digest``
    (None: no digest), without a TxnDigest record made per txn (the write path's form)."""
    out = bytearray()
    header.write(out)
    if body is not None:
        body.write(out)
    if tree_digest is not None:
        tree_digest &= 0xFFFFFFFFFFFFFFFF  # as the signed Java long the record carries
        out += _DIGEST.pack(version, tree_digest - (1 << 64) if tree_digest >> 63 else tree_digest)
    return bytes(out)


# ---------------------------------------------------------------- reading
def read_body(op: int, data: bytes | memoryview, off: int = 0) -> tuple[Record | None, int]:
    """Decode the body of a txn of type ``op`` at ``off``: (record or None, new offset).

    The legacy forms of the module docstring: an empty closeSession body (or one that is
    only a digest) is None, and a create too short for parentCVersion is an old
    CreateTxnV0 read with parentCVersion -1.
    """
    cls = BODY_TYPES.get(op)
    if cls is None:
        raise JuteError(f"unsupported txn type {op}")
    rest = len(data) - off
    if op == Op.closeSession:
        if rest == 0:
            return None, off
        try:
            return cls.read(data, off)
        except JuteError:
            if rest == DIGEST_SIZE:  # no body, only the digest
                return None, off
            raise
    try:
        return cls.read(data, off)
    except JuteError:
        if op != Op.create:
            raise
        old, end = CreateTxnV0.read(data, off)
        return CreateTxn(old.path, old.data, old.acl, old.ephemeral, -1), end


def decode_body(op: int, data: bytes | memoryview, off: int = 0) -> Any:
    """The body of a txn of type ``op`` at ``off``; bytes after it are not looked at."""
    return read_body(op, data, off)[0]


def decode_txn_digest(data: bytes | memoryview) -> tuple[TxnHeader, Any, TxnDigest | None]:
    """(TxnHeader, body record or None, TxnDigest or None) of txn bytes.

    The body is typed ``Any``: which record it is follows from the header's type (BODY_TYPES).
    """
    header, off = TxnHeader.read(data, 0)
    body, off = read_body(header.type, data, off)
    rest = len(data) - off
    if rest == 0:
        return header, body, None
    if rest == DIGEST_SIZE:
        return header, body, TxnDigest.read(data, off)[0]  # exactly its 12 bytes remain
    raise JuteError(f"{rest} unexpected bytes after a txn of type {header.type}")


def decode_txn(data: bytes | memoryview) -> tuple[TxnHeader, Any]:
    """(TxnHeader, body record or None) of txn bytes; a digest after the body is ignored."""
    header, body, _ = decode_txn_digest(data)
    return header, body


def decode_txn_entry(data: bytes | memoryview) -> TxnEntry:
    """:func:`decode_txn_digest` as a :class:`TxnEntry` (for readers of whole logs)."""
    return TxnEntry(*decode_txn_digest(data))


def decode_multi_txn(txn: MultiTxn) -> list[tuple[int, Record | None]]:
    """The (type, body) of every op inside a MultiTxn; each op's data is one whole txn body."""
    return decode_txn_ops(txn, read_body)


def txn_zxid(txn: bytes | memoryview) -> int:
    """The zxid in serialized txn bytes (read from the TxnHeader without decoding the rest)."""
    if len(txn) < TXN_HEADER_SIZE:
        raise JuteError(f"{len(txn)} bytes cannot hold a TxnHeader")
    zxid: int = _ZXID.unpack_from(txn, ZXID_OFFSET)[0]
    return zxid


__all__ = [
    "BODY_TYPES", "CreateTxnV0", "DIGEST_SIZE", "TXN_HEADER_SIZE", "TxnDigest", "TxnEntry",
    "decode_body", "decode_multi_txn", "decode_txn", "decode_txn_digest", "decode_txn_entry",
    "encode_txn", "encode_txn_digest", "read_body", "txn_zxid", "ZXID_OFFSET",
]
