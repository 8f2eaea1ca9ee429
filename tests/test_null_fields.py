"""Every request field the wire can carry as null, null, through a whole server in-process.

Jute writes a null string, buffer or vector as length -1, and the codec reads it back as
None: the records declare those fields Optional (tests/test_jute.py), and every path that
reads one must cope. Each case here sends one request with one field (or one list item, or
one ACL id part) null and pins what the server does: the reply's error code, whether the
connection stays open, and which watch events come first. The outcomes are the pure-Python
server's, which the differential and fuzz suites compare with Apache 3.8; a build that
compiles the request path (mypyc checks declared types at run time) must give the same.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.cpu import SinkTransport
from tests.support.ourzk import memory_config
from zkops.server.codes import Op
from zkops.server.connection import ClientConnection
from zkops.server.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    ConnectRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    Id,
    MultiHeader,
    PathOnly,
    PathRequest,
    ReconfigRequest,
    RequestHeader,
    SaslToken,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    WatchesRequest,
)
from zkops.server.zkserver import ZooKeeperServer

_LEN = struct.Struct(">i")
_REPLY = struct.Struct(">iqi")
OPEN = [ACL(31, Id("world", "anyone"))]
XID = 100
AUTH_XID = -4


class _Transport(SinkTransport):
    """The benchmark's in-process transport, keeping what the server writes."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def write(self, data: Any) -> None:
        self.data += data


def _frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


def _request(op: int, record: Any, xid: int = XID) -> bytes:
    return _frame(RequestHeader(xid, op).to_bytes() + (record.to_bytes() if record is not None else b""))


def _multi(ops: list[tuple[int, Any]], op: int = Op.multi) -> bytes:
    body = bytearray(RequestHeader(XID, op).to_bytes())
    for t, rec in ops:
        body += MultiHeader(t, False, -1).to_bytes() + rec.to_bytes()
    body += MultiHeader(-1, True, -1).to_bytes()
    return _frame(bytes(body))


def _frames(data: bytes | bytearray) -> list[bytes]:
    out, off = [], 0
    while off + 4 <= len(data):
        (n,) = _LEN.unpack_from(data, off)
        out.append(bytes(data[off + 4:off + 4 + n]))
        off += 4 + n
    return out


async def _turns(server: ZooKeeperServer) -> None:
    """Let the commits (loop callbacks without a txn log) and the flushes run."""
    for _ in range(50):
        await asyncio.sleep(0)
        if not server.pending:
            break
    for _ in range(5):
        await asyncio.sleep(0)


def _multi_results(f: bytes, off: int) -> list[tuple[int, int]]:
    """(type, err) of each result of a multi or multiRead reply."""
    out = []
    while True:
        rtype, done, err = struct.unpack_from(">i?i", f, off)
        off += 9
        if done:
            return out
        out.append((rtype, err))
        if rtype == -1:
            off += 4  # ErrorResponse
        elif rtype in (Op.create, Op.create2):
            (n,) = _LEN.unpack_from(f, off)
            off += 4 + max(n, 0) + (68 if rtype == Op.create2 else 0)
        elif rtype == Op.setData:
            off += 68
        elif rtype == Op.getData:
            (n,) = _LEN.unpack_from(f, off)
            off += 4 + max(n, 0) + 68
        elif rtype == Op.getChildren:
            (count,) = _LEN.unpack_from(f, off)
            off += 4
            for _ in range(max(count, 0)):
                (n,) = _LEN.unpack_from(f, off)
                off += 4 + max(n, 0)


async def _outcome(send: bytes, session: bool = True, replies: list[Any] | None = None,
                   after: Callable[[ZooKeeperServer], None] | None = None) -> tuple[Any, ...]:
    """(error code of the reply to XID (or to the auth packet) or None, whether the connection
    is still open, the watch events (type, path) written before that reply, and the name of an
    exception that escaped, if any). A multi's error code comes with its results' (type, err)."""
    multi = len(send) >= 12 and _LEN.unpack_from(send, 8)[0] in (Op.multi, Op.multiRead)
    loop = asyncio.get_running_loop()
    escaped: list[str] = []
    loop.set_exception_handler(lambda _loop, ctx: escaped.append(type(ctx.get("exception")).__name__))
    server = ZooKeeperServer(memory_config(0, client_port=0), loop=loop)
    try:
        conn = ClientConnection(server)
        transport = _Transport()
        conn.connection_made(transport)
        if session:
            conn.data_received(_frame(ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"))
            await _turns(server)
            assert conn.connected
            # /n with data and a child, /e empty: what the cases read, change and watch
            for xid, path in enumerate(("/n", "/n/c", "/e"), 1):
                conn.data_received(_request(Op.create, CreateRequest(path, b"d", OPEN, 0), xid))
            await _turns(server)
            # a change the reconnecting watches below missed (set at zxid 0)
            conn.data_received(_request(Op.setData, SetDataRequest("/n", b"d2", -1), 9))
            await _turns(server)
            transport.data.clear()
        try:
            conn.data_received(send)
        except Exception as exc:  # noqa: BLE001 - a real server's loop closes the connection
            escaped.append(type(exc).__name__)
        await _turns(server)
        err, events = None, []
        if after is not None:
            after(server)
        for f in _frames(transport.data):
            xid, _zxid, code = _REPLY.unpack_from(f, 0)
            if replies is not None:
                replies.append((xid, code, f[16:]))
            if xid == -1:
                etype, _state, n = struct.unpack_from(">iii", f, 16)
                events.append((etype, f[28:28 + n].decode() if n >= 0 else None))
            elif xid in (XID, AUTH_XID) or (not session and err is None):
                err = code
                if multi and len(f) > 16:
                    err = (code, _multi_results(f, 16))
        if after is not None:  # the connection goes: its watches with it
            conn.connection_lost(None)
            await _turns(server)
            after(server)
        return err, not transport.closed, events, escaped[0] if escaped else None
    finally:
        await server.stop()


def run(send: bytes, session: bool = True, replies: list[Any] | None = None,
        after: Callable[[ZooKeeperServer], None] | None = None) -> tuple[Any, ...]:
    logger = logging.getLogger("zkops")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_outcome(send, session, replies, after))
    finally:
        logger.setLevel(level)  # later tests in this process read the server's warnings (test_quota, test_cli)


# ---------------------------------------------------------------- cases
Case = Callable[[], bytes]
OK, NONODE, NOAUTH, BADVERSION, NOTEMPTY = 0, -101, -102, -103, -111
MARSHALLING, UNIMPLEMENTED, BADARGUMENTS, INVALIDACL, AUTHFAILED = -5, -6, -8, -114, -115
NOWATCHER, RECONFIGDISABLED = -121, -123
OPEN_KEPT, CLOSED = True, False
CHANGED, CHILDREN, DELETED = 3, 4, 2


def _acl(scheme: str | None, ident: str | None) -> list[ACL]:
    return [ACL(31, Id(scheme, ident))]


CASES: dict[str, tuple[Case, tuple[Any, ...]]] = {
    # creates: path, data, acl, and each part of an ACL's id
    "create path": (lambda: _request(Op.create, CreateRequest(None, b"x", OPEN, 0)),
                    (MARSHALLING, OPEN_KEPT, [], None)),
    "create data": (lambda: _request(Op.create, CreateRequest("/x", None, OPEN, 0)), (OK, OPEN_KEPT, [], None)),
    "create2 data": (lambda: _request(Op.create2, CreateRequest("/x", None, OPEN, 0)), (OK, OPEN_KEPT, [], None)),
    "create acl": (lambda: _request(Op.create, CreateRequest("/x", b"x", None, 0)),
                   (INVALIDACL, OPEN_KEPT, [], None)),
    "create acl scheme": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl(None, "anyone"), 0)),
                          (INVALIDACL, OPEN_KEPT, [], None)),
    "create world id": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl("world", None), 0)),
                        (MARSHALLING, OPEN_KEPT, [], None)),
    "create digest id": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl("digest", None), 0)),
                         (MARSHALLING, OPEN_KEPT, [], None)),
    "create ip id": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl("ip", None), 0)),
                     (MARSHALLING, OPEN_KEPT, [], None)),
    "create sasl id": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl("sasl", None), 0)),
                       (INVALIDACL, OPEN_KEPT, [], None)),
    "create auth id": (lambda: _request(Op.create, CreateRequest("/x", b"x", _acl("auth", None), 0)),
                       (INVALIDACL, OPEN_KEPT, [], None)),
    "createContainer data": (lambda: _request(Op.createContainer, CreateRequest("/x", None, OPEN, 4)),
                             (OK, OPEN_KEPT, [], None)),
    "createTTL path": (lambda: _request(Op.createTTL, CreateTTLRequest(None, b"x", OPEN, 5, 1000)),
                       (MARSHALLING, OPEN_KEPT, [], None)),
    "createTTL data": (lambda: _request(Op.createTTL, CreateTTLRequest("/x", None, OPEN, 5, 1000)),
                       (OK, OPEN_KEPT, [], None)),
    "createTTL acl": (lambda: _request(Op.createTTL, CreateTTLRequest("/x", b"x", None, 5, 1000)),
                      (INVALIDACL, OPEN_KEPT, [], None)),
    # other writes
    "delete path": (lambda: _request(Op.delete, DeleteRequest(None, -1)), (MARSHALLING, OPEN_KEPT, [], None)),
    "deleteContainer path": (lambda: _request(Op.deleteContainer, PathOnly(None)),
                             (BADARGUMENTS, OPEN_KEPT, [], None)),
    "setData path": (lambda: _request(Op.setData, SetDataRequest(None, b"x", -1)),
                     (BADARGUMENTS, OPEN_KEPT, [], None)),
    "setData data": (lambda: _request(Op.setData, SetDataRequest("/e", None, -1)), (OK, OPEN_KEPT, [], None)),
    "setACL path": (lambda: _request(Op.setACL, SetACLRequest(None, OPEN, -1)), (BADARGUMENTS, OPEN_KEPT, [], None)),
    "setACL acl": (lambda: _request(Op.setACL, SetACLRequest("/e", None, -1)), (INVALIDACL, OPEN_KEPT, [], None)),
    "setACL digest id": (lambda: _request(Op.setACL, SetACLRequest("/e", _acl("digest", None), -1)),
                         (MARSHALLING, OPEN_KEPT, [], None)),
    "check path": (lambda: _request(Op.check, CheckVersionRequest(None, -1)), (BADARGUMENTS, OPEN_KEPT, [], None)),
    "reconfig all": (lambda: _request(Op.reconfig, ReconfigRequest(None, None, None, -1)),
                     (RECONFIGDISABLED, OPEN_KEPT, [], None)),
    # reads
    "exists path": (lambda: _request(Op.exists, PathRequest(None, True)), (MARSHALLING, OPEN_KEPT, [], None)),
    "getData path": (lambda: _request(Op.getData, PathRequest(None, True)), (MARSHALLING, OPEN_KEPT, [], None)),
    "getChildren path": (lambda: _request(Op.getChildren, PathRequest(None, True)),
                         (MARSHALLING, OPEN_KEPT, [], None)),
    "getChildren2 path": (lambda: _request(Op.getChildren2, PathRequest(None, False)),
                          (MARSHALLING, OPEN_KEPT, [], None)),
    "getACL path": (lambda: _request(Op.getACL, PathOnly(None)), (MARSHALLING, OPEN_KEPT, [], None)),
    "sync path": (lambda: _request(Op.sync, PathOnly(None)), (OK, OPEN_KEPT, [], None)),
    "getEphemerals path": (lambda: _request(Op.getEphemerals, PathOnly(None)), (OK, OPEN_KEPT, [], None)),
    "getAllChildrenNumber path": (lambda: _request(Op.getAllChildrenNumber, PathOnly(None)),
                                  (MARSHALLING, OPEN_KEPT, [], None)),
    "checkWatches path": (lambda: _request(Op.checkWatches, WatchesRequest(None, 3)),
                          (MARSHALLING, OPEN_KEPT, [], None)),
    "removeWatches path": (lambda: _request(Op.removeWatches, WatchesRequest(None, 3)),
                           (NOWATCHER, OPEN_KEPT, [], None)),
    "addWatch path": (lambda: _request(Op.addWatch, AddWatchRequest(None, 0)), (OK, OPEN_KEPT, [], None)),
    "addWatch recursive path": (lambda: _request(Op.addWatch, AddWatchRequest(None, 1)),
                                (OK, OPEN_KEPT, [], None)),
    # setWatches: a null list is no watches; a null path in a one-shot list fails the
    # request after the events found before it; in a persistent list it is a watch on null
    "setWatches lists": (lambda: _request(Op.setWatches, SetWatches(0, None, None, None)),
                         (OK, OPEN_KEPT, [], None)),
    "setWatches data path": (lambda: _request(Op.setWatches, SetWatches(0, ["/n", None], None, None)),
                             (MARSHALLING, OPEN_KEPT, [(CHANGED, "/n")], None)),
    "setWatches exist path": (lambda: _request(Op.setWatches, SetWatches(0, None, [None], None)),
                              (MARSHALLING, OPEN_KEPT, [], None)),
    "setWatches child path": (lambda: _request(Op.setWatches, SetWatches(0, None, None, ["/n", None])),
                              (MARSHALLING, OPEN_KEPT, [(CHILDREN, "/n")], None)),
    "setWatches2 lists": (lambda: _request(Op.setWatches2, SetWatches2(0, None, None, None, None, None)),
                          (OK, OPEN_KEPT, [], None)),
    "setWatches2 persistent path": (lambda: _request(Op.setWatches2, SetWatches2(0, [], [], [], [None], [])),
                                    (OK, OPEN_KEPT, [], None)),
    "setWatches2 recursive path": (lambda: _request(Op.setWatches2, SetWatches2(0, [], [], [], ["/n"], [None])),
                                   (OK, OPEN_KEPT, [], None)),
    # auth and SASL
    "auth scheme": (lambda: _request(Op.auth, AuthPacket(0, None, b"u:p")), (AUTHFAILED, CLOSED, [], None)),
    "auth data": (lambda: _request(Op.auth, AuthPacket(0, "digest", None)), (OK, OPEN_KEPT, [], None)),
    "sasl token": (lambda: _request(Op.sasl, SaslToken(None)), (AUTHFAILED, CLOSED, [], None)),
    # multi and multiRead
    "multi create path": (lambda: _multi([(Op.create, CreateRequest(None, b"x", OPEN, 0))]),
                          ((MARSHALLING, []), OPEN_KEPT, [], None)),
    "multi create data": (lambda: _multi([(Op.create, CreateRequest("/x", None, OPEN, 0))]),
                          ((OK, [(Op.create, OK)]), OPEN_KEPT, [], None)),
    "multi create acl": (lambda: _multi([(Op.create, CreateRequest("/x", b"x", None, 0))]),
                         ((OK, [(-1, INVALIDACL)]), OPEN_KEPT, [], None)),
    "multi createTTL data": (lambda: _multi([(Op.createTTL, CreateTTLRequest("/x", None, OPEN, 5, 1000))]),
                             ((OK, [(Op.create2, OK)]), OPEN_KEPT, [], None)),
    "multi delete path": (lambda: _multi([(Op.delete, DeleteRequest(None, -1))]),
                          ((MARSHALLING, []), OPEN_KEPT, [], None)),
    "multi setData path": (lambda: _multi([(Op.setData, SetDataRequest(None, b"x", -1))]),
                           ((MARSHALLING, []), OPEN_KEPT, [], None)),
    "multi setData data": (lambda: _multi([(Op.setData, SetDataRequest("/e", None, -1))]),
                           ((OK, [(Op.setData, OK)]), OPEN_KEPT, [], None)),
    "multi check path": (lambda: _multi([(Op.check, CheckVersionRequest(None, -1))]),
                         ((MARSHALLING, []), OPEN_KEPT, [], None)),
    "multiRead getData path": (lambda: _multi([(Op.getData, PathRequest("/n", False)),
                                               (Op.getData, PathRequest(None, False))], Op.multiRead),
                               ((MARSHALLING, [(Op.getData, OK)]), OPEN_KEPT, [], None)),
    "multiRead getChildren path": (lambda: _multi([(Op.getChildren, PathRequest(None, False))], Op.multiRead),
                                   ((MARSHALLING, []), OPEN_KEPT, [], None)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_null_field_is_answered_as_the_pure_server_answers_it(name: str) -> None:
    send, expected = CASES[name]
    assert run(send()) == expected


def test_a_connect_request_with_a_null_password() -> None:
    # a new session: the password is not looked at; a session to resume: it does not match
    new = _frame(ConnectRequest(0, 0, 30000, 0, None).to_bytes() + b"\0")
    err, open_, _events, escaped = run(new, session=False)
    assert (open_, escaped) == (OPEN_KEPT, None)
    resume = _frame(ConnectRequest(0, 0, 30000, 0x1234, None).to_bytes() + b"\0")
    assert run(resume, session=False)[1:] == (CLOSED, [], None)


def _get(path: str, xid: int) -> bytes:
    return _request(Op.getData, PathRequest(path, False), xid)


@pytest.mark.parametrize("write", [
    CreateRequest("/x", None, OPEN, 0), SetDataRequest("/x", None, -1),
], ids=["create", "setData"])
def test_null_data_is_kept_and_read_back_as_null(write: Any) -> None:
    # /x made with data first when the null comes from a setData
    setup = b"" if isinstance(write, CreateRequest) else _request(Op.create, CreateRequest("/x", b"abc", OPEN, 0), 90)
    op = Op.create if isinstance(write, CreateRequest) else Op.setData
    replies: list[Any] = []
    assert run(setup + _request(op, write) + _get("/x", 101), replies=replies)[:2] == (OK, OPEN_KEPT)
    (xid, err, body), = [r for r in replies if r[0] == 101]
    assert err == OK and body[:4] == b"\xff\xff\xff\xff"  # data: null
    stat = struct.unpack_from(">qqqqiiiqiiq", body, 4)
    assert stat[8] == 0  # dataLength


def test_a_persistent_watch_on_a_null_path_counts_fires_never_and_goes_with_its_connection() -> None:
    seen: list[tuple[int, int, int]] = []
    send = (_request(Op.addWatch, AddWatchRequest(None, 1), 101)
            + _request(Op.setWatches2, SetWatches2(0, [], [], [], [None, "/n"], [None]))
            + _request(Op.setData, SetDataRequest("/n", b"x", -1), 102))
    replies: list[Any] = []

    def after(server: ZooKeeperServer) -> None:
        seen.append(server.core.watches.summary())

    assert run(send, replies=replies, after=after)[:2] == (OK, OPEN_KEPT)
    # the null path and /n in the data table; /n's persistent watch fires once, null's never
    assert seen == [(1, 2, 2), (0, 0, 0)]
    assert [(x, e) for x, e, _ in replies] == [(101, OK), (XID, OK), (-1, OK), (102, OK)]
