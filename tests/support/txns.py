"""Sample txns for the codec and txn log tests: a header maker and one txn of every type."""

from __future__ import annotations

from zkops.server.codes import Op
from zkops.server.jute import Record
from zkops.server.records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

OPEN = [ACL(31, Id("world", "anyone"))]
SID = 0x1000A2B3C4D0000


def hdr(zxid: int, op: int, sid: int = SID) -> TxnHeader:
    return TxnHeader(sid, zxid & 0x7FFFFFFF, zxid, 1_700_000_000_000 + zxid, op)


# one txn of every type the log holds, as the server serializes them
EVERY_TYPE: list[tuple[int, Record]] = [
    (Op.createSession, CreateSessionTxn(30000)),
    (Op.create, CreateTxn("/a", b"hi", OPEN, False, 1)),
    (Op.create2, CreateTxn("/e", b"", OPEN, True, 2)),
    (Op.createContainer, CreateContainerTxn("/c", b"x", OPEN, 3)),
    (Op.createTTL, CreateTTLTxn("/t", b"y", OPEN, 4, 5000)),
    (Op.setData, SetDataTxn("/a", b"bye", 1)),
    (Op.setACL, SetACLTxn("/a", [ACL(1, Id("digest", "u:x"))], 1)),
    (Op.multi, MultiTxn([Txn(Op.create, CreateTxn("/m", b"", OPEN, False, 5).to_bytes()),
                         Txn(Op.check, CheckVersionTxn("/a", 1).to_bytes()),
                         Txn(Op.delete, DeleteTxn("/m").to_bytes())])),
    (Op.error, ErrorTxn(-101)),
    (Op.deleteContainer, DeleteTxn("/c")),
    (Op.delete, DeleteTxn("/t")),
    (Op.closeSession, CloseSessionTxn(["/e"])),
]
