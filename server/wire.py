"""Client-port framing facts: which record each opcode carries, and multi encoding."""

from __future__ import annotations

from typing import Any

from .codes import Op
from .jute import JuteError, Record
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

_END = MultiHeader(-1, True, -1)


def decode_multi(buf: bytes | memoryview, off: int) -> list[tuple[int, Any]]:
    ops: list[tuple[int, Any]] = []
    while True:
        mh, off = MultiHeader.read(buf, off)
        if mh.done:
            return ops
        cls = MULTI_OP_TYPES.get(mh.type)
        if cls is None:
            raise JuteError(f"invalid op type {mh.type} in multi")
        rec, off = cls.read(buf, off)
        ops.append((mh.type, rec))


def encode_multi_results(out: bytearray, results: list[tuple[int, int, Any]]) -> None:
    """Write per-op results in ZooKeeper's MultiResponse layout."""
    for op, err, value in results:
        if op == Op.error:
            MultiHeader(Op.error, False, err).write(out)
            ErrorResponse(err).write(out)
            continue
        if op in (Op.create2, Op.createContainer, Op.createTTL):
            MultiHeader(Op.create2, False, 0).write(out)
        else:
            MultiHeader(op, False, 0).write(out)
        if value is not None:
            value.write(out)
    _END.write(out)
