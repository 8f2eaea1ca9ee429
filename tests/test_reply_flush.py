"""When a standalone server sends the replies to a batch of writes the log made durable: each
connection's replies leave once its last txn of the batch is applied, not after the whole
batch, so its client can send more while the rest is applied (Apache's final processor
answers each request in turn). Still one send per connection and batch, in order."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from benchmarks.cpu import SinkTransport
from tests.support.ourzk import memory_config
from zkops.server.connection import ClientConnection
from zkops.server.records import ACL, ConnectRequest, CreateRequest, Id, RequestHeader, SetDataRequest
from zkops.server.txnlog import TxnLog
from zkops.server.zkserver import ZooKeeperServer

_LEN = struct.Struct(">i")
OPEN = [ACL(31, Id("world", "anyone"))]


def _frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


class _Recorder(SinkTransport):
    """Keeps each write, with how many replies the other connection had sent at that moment."""

    def __init__(self, other: list[ClientConnection], writes: list[tuple[str, int, bytes]], name: str) -> None:
        super().__init__()
        self.other = other
        self.writes = writes
        self.name = name

    def write(self, data: Any) -> None:
        super().write(data)
        self.writes.append((self.name, self.other[0].packets_sent if self.other else -1, bytes(data)))


async def _settle(server: ZooKeeperServer) -> None:
    for _ in range(1000):
        await asyncio.sleep(0.005)
        if not server.pending:
            return
    raise AssertionError("writes still pending")


async def _scenario(tmp_path: Path) -> tuple[list[tuple[str, int, bytes]], int, int]:
    loop = asyncio.get_running_loop()
    txnlog = TxnLog(tmp_path, force_sync=False)
    server = ZooKeeperServer(memory_config(0, client_port=0, force_sync=False), txnlog=txnlog, loop=loop)
    writes: list[tuple[str, int, bytes]] = []
    b_box: list[ClientConnection] = []
    try:
        a = ClientConnection(server)
        a.connection_made(_Recorder(b_box, writes, "a"))
        b = ClientConnection(server)
        b.connection_made(_Recorder([], writes, "b"))
        b_box.append(b)
        for c in (a, b):
            c.data_received(_frame(ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"))
        await _settle(server)
        a.data_received(_frame(RequestHeader(1, 1).to_bytes() + CreateRequest("/n", b"", OPEN, 0).to_bytes()))
        await _settle(server)
        assert a.connected and b.connected
        await asyncio.sleep(0.1)  # the log's writer is idle again (a second ring wakes it once more)
        writes.clear()
        b_before = b.packets_sent
        # one loop turn: a's write, then b's two; the log makes the three durable together
        a.data_received(_frame(RequestHeader(2, 5).to_bytes() + SetDataRequest("/n", b"1", -1).to_bytes()))
        b.data_received(_frame(RequestHeader(1, 5).to_bytes() + SetDataRequest("/n", b"2", -1).to_bytes())
                        + _frame(RequestHeader(2, 5).to_bytes() + SetDataRequest("/n", b"3", -1).to_bytes()))
        assert len(server.pending) == 3
        await _settle(server)
        await asyncio.sleep(0.05)
        return writes, b_before, b.packets_sent
    finally:
        await server.stop()
        txnlog.close()


def _replies(data: bytes) -> list[tuple[int, int]]:
    """(xid, err) of each reply frame in ``data``."""
    out, at = [], 0
    while at < len(data):
        n = _LEN.unpack_from(data, at)[0]
        xid, _zxid, err = struct.unpack_from(">iqi", data, at + 4)
        out.append((xid, err))
        at += 4 + n
    return out


def test_a_connection_s_replies_leave_after_its_last_txn_of_the_batch(tmp_path: Path) -> None:
    writes, b_before, b_after = asyncio.run(_scenario(tmp_path))
    assert [(name, _replies(data)) for name, _, data in writes] == [("a", [(2, 0)]), ("b", [(1, 0), (2, 0)])]
    # a's reply left before b's txns were applied and answered (before: after the whole batch)
    assert writes[0][1] == b_before
    assert b_after == b_before + 2
