"""Client-port framing facts: which record each opcode carries, and a multi request's ops and results.

The ops of a multi request are read by :mod:`zkops.server.multicodec` (the loop it shares with
the multi txn); here are the request records they may be and what Apache makes of them.
"""

from __future__ import annotations

from typing import Any

from .codes import Op
from .jute import JuteError, Record
from .multicodec import decode_request_ops, table_reader
from .records import (
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    MultiHeader,
    PathOnly,
    PathRequest,
    ReconfigRequest,
    SaslToken,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    WatchesRequest,
)

REQUEST_TYPES: dict[int, type[Record] | None] = {
    Op.create: CreateRequest,
    Op.create2: CreateRequest,
    Op.createContainer: CreateRequest,
    Op.createTTL: CreateTTLRequest,
    Op.delete: DeleteRequest,
    Op.deleteContainer: PathOnly,
    Op.exists: PathRequest,
    Op.getData: PathRequest,
    Op.setData: SetDataRequest,
    Op.getACL: PathOnly,
    Op.setACL: SetACLRequest,
    Op.getChildren: PathRequest,
    Op.getChildren2: PathRequest,
    Op.sync: PathOnly,
    Op.ping: None,
    Op.check: CheckVersionRequest,
    Op.reconfig: ReconfigRequest,
    Op.checkWatches: WatchesRequest,
    Op.removeWatches: WatchesRequest,
    Op.auth: AuthPacket,
    Op.setWatches: SetWatches,
    Op.setWatches2: SetWatches2,
    Op.sasl: SaslToken,
    Op.getEphemerals: PathOnly,
    Op.getAllChildrenNumber: PathOnly,
    Op.addWatch: AddWatchRequest,
    Op.whoAmI: None,
    Op.closeSession: None,
}

MULTI_OP_TYPES: dict[int, type[Record]] = {
    Op.create: CreateRequest,
    Op.create2: CreateRequest,
    Op.createContainer: CreateRequest,
    Op.createTTL: CreateTTLRequest,
    Op.delete: DeleteRequest,
    Op.setData: SetDataRequest,
    Op.check: CheckVersionRequest,
    Op.getChildren: PathRequest,
    Op.getData: PathRequest,
}
_READ_KIND = frozenset({Op.getChildren, Op.getData})
_read_multi_op = table_reader(MULTI_OP_TYPES)
_END = MultiHeader(-1, True, -1)


def _create_type(flags: int) -> int:
    """The op a create inside a multi becomes: Apache's Op.create picks it from the flags alone
    (a TTL flag would make it a createTTL without a ttl: it stays a create here, and the
    preparer fails the multi when it gets to it, as Apache's cast to CreateTTLRequest does)."""
    return Op.createContainer if flags == 4 else Op.create


def _normalize(op: int, rec: Any) -> tuple[int, Any]:
    """The op (and record) a request-form multi op becomes, as Apache's MultiOperationRecord reads it."""
    if op in (Op.create, Op.create2, Op.createContainer):
        return _create_type(rec.flags), rec
    if op == Op.createTTL and rec.flags not in (5, 6):
        return _create_type(rec.flags), CreateRequest(rec.path, rec.data, rec.acl, rec.flags)
    if op in _READ_KIND:
        return op, PathRequest(rec.path, False)
    return op, rec


def decode_multi(buf: bytes | memoryview, off: int, read: bool = False) -> list[tuple[int, Any]]:
    """The ops of a multi (``read``: a multiRead), as Apache's MultiOperationRecord reads them.

    create, create2 and createContainer all become the op their flags name (so a create2 in a
    multi answers as a create, and flag 4 makes a container); createTTL stays one only with a
    TTL flag. Read ops lose their watch flag. A record Apache could not read raises JuteError,
    which fails the request with MARSHALLINGERROR: an unknown op type, read and write ops
    mixed, read ops in a multi.
    """
    ops = [_normalize(op, rec) for op, rec in decode_request_ops(buf, off, _read_multi_op)]
    kinds = {op in _READ_KIND for op, _ in ops}
    if len(kinds) > 1:
        raise JuteError("read and write ops mixed in one multi")
    if ops and not read and kinds == {True}:
        raise JuteError("read ops in a multi")
    return ops  # write ops in a multiRead fail when they are reached (ZooKeeperServer.multi_read)


def encode_multi_results(out: bytearray, results: list[tuple[int, int, Any]]) -> None:
    """Write per-op results in ZooKeeper's MultiResponse layout."""
    for op, err, value in results:
        if op == Op.error:
            MultiHeader(Op.error, False, err).write(out)
            ErrorResponse(err).write(out)
            continue
        if op in (Op.create2, Op.createContainer, Op.createTTL):  # a CreateResult with a Stat
            MultiHeader(Op.create2, False, 0).write(out)
        else:
            MultiHeader(op, False, 0).write(out)
        if value is not None:
            value.write(out)
    _END.write(out)
