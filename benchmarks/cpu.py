"""Server CPU per request, in-process: bytes in through ``ClientConnection.data_received``, replies
out to a transport that keeps them, on one event loop; no sockets, no disk (no txn log: a txn is
still encoded, then committed on the next loop turn).

python3 -m benchmarks.cpu [--requests N] [--reps N] [--sessions N] [--depth N] [--txnlog DIR [--no-fsync]]

Each session keeps ``depth`` requests in flight, as the pipelined generator does (issue 21: 4,
100-byte data); every figure is microseconds of this process's CPU per request, the median of
``--reps`` repetitions with the min-max. It measures the server's own code (decode, prepare,
txn encoding, apply, watches, reply) and the loop's scheduling, which a compiled build
(scripts/build-fast) or another event loop changes; the kernel's share of a real request
(send and receive calls) is not in it. The cyclic garbage collector is set as a server process
sets it (``app.tune_gc``: rare collections), since its passes are part of a server's CPU.

``--txnlog DIR`` gives the server a real txn log in a fresh directory under DIR (fsync on, as
shipped, unless ``--no-fsync``), so writes also take the log's path: framing, the group
committer's thread and its wake-ups, the write and fsync calls (their CPU, not their wait).
Each round of requests then waits until the round before it is answered, as clients that
keep ``depth`` requests in flight would.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.ourzk import memory_config
from zkops.server.connection import ClientConnection
from zkops.server.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    Id,
    PathRequest,
    RequestHeader,
    SetDataRequest,
)
from zkops.server.zkserver import ZooKeeperServer

_LEN = struct.Struct(">i")
OPEN = [ACL(31, Id("world", "anyone"))]


class SinkTransport(asyncio.Transport):
    """Counts what the server writes; replies are not parsed (the counts are checked instead)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


def _request(op: str, xid: int, tag: str) -> bytes:
    value = b"v" * 100
    if op == "get":
        return _frame(RequestHeader(xid, 4).to_bytes() + PathRequest("/bench", False).to_bytes())
    if op == "set":
        return _frame(RequestHeader(xid, 5).to_bytes() + SetDataRequest("/bench", value, -1).to_bytes())
    return _frame(RequestHeader(xid, 1).to_bytes() + CreateRequest(f"/bench/{tag}-{xid}", value, OPEN, 0).to_bytes())


async def _run(op: str, requests: int, sessions: int, depth: int, rep: int, log_dir: Path | None = None,
               fsync: bool = True) -> float:
    """CPU seconds per request of ``requests`` requests of ``op`` (a fresh server; with a txn log
    in ``log_dir`` when given)."""
    loop = asyncio.get_running_loop()
    txnlog = None
    if log_dir is not None:
        from zkops.server.txnlog import TxnLog

        txnlog = TxnLog(log_dir, force_sync=fsync)
    server = ZooKeeperServer(memory_config(0, client_port=0, force_sync=fsync), txnlog=txnlog, loop=loop)
    _watch_durable(server)
    try:
        return await _drive(server, op, requests, sessions, depth, rep)
    finally:
        await server.stop()
        if txnlog is not None:
            txnlog.close()


async def _settle(server: ZooKeeperServer, most: int) -> None:
    """Wait until at most ``most`` writes are pending (the log's thread answers them; each
    batch it makes durable wakes this up, see _watch_durable)."""
    woken: asyncio.Event = server.bench_durable  # type: ignore[attr-defined]
    while len(server.pending) > most:
        woken.clear()
        await woken.wait()


def _watch_durable(server: ZooKeeperServer) -> None:
    """Wake _settle after every batch the log makes durable (no polling: its wake-ups would be
    CPU of their own)."""
    woken = asyncio.Event()
    durable = server.durable

    def wrapped(zxid: int) -> None:
        durable(zxid)
        woken.set()

    server.bench_durable = woken  # type: ignore[attr-defined]
    server.durable = wrapped  # type: ignore[method-assign]


async def _drive(server: ZooKeeperServer, op: str, requests: int, sessions: int, depth: int, rep: int) -> float:
    conns = []
    for _ in range(sessions):
        c = ClientConnection(server)
        c.connection_made(SinkTransport())
        req = ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"
        c.data_received(_frame(req))
        conns.append(c)
    for _ in range(20):  # the session creates commit
        await asyncio.sleep(0)
    await _settle(server, 0)
    if not all(c.connected for c in conns):
        raise RuntimeError("sessions did not connect")
    _setup_bench(conns[0])
    for _ in range(5):
        await asyncio.sleep(0)
    await _settle(server, 0)
    logged = server.committer is not None
    rounds = max(1, requests // (sessions * depth))
    # the bytes are made before the clock starts: the client's work is not the server's
    chunks = [[b"".join(_request(op, r * depth + i + 1, f"r{rep}s{s}") for i in range(depth))
               for s in range(sessions)] for r in range(rounds)]
    t0 = time.process_time()
    for chunk in chunks:
        for c, data in zip(conns, chunk, strict=True):
            c.data_received(data)
        # let the commits (call_soon) and the flushes run, as a loop turn per arrival does
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if logged:  # clients send more only as replies come
            await _settle(server, sessions * depth)
    for _ in range(5):
        await asyncio.sleep(0)
    if logged:
        await _settle(server, 0)
    took = time.process_time() - t0
    if server.pending:
        raise RuntimeError("requests still pending")
    return took / (rounds * sessions * depth)


def _setup_bench(conn: ClientConnection) -> None:
    conn.data_received(_frame(RequestHeader(1, 1).to_bytes() + CreateRequest("/bench", b"v" * 100, OPEN, 0).to_bytes()))


def measure(op: str, requests: int, sessions: int, depth: int, reps: int, txnlog: str | None = None,
            fsync: bool = True) -> list[float]:
    out = []
    for rep in range(reps):
        log_dir = None if txnlog is None else Path(tempfile.mkdtemp(prefix="cpu-txnlog-", dir=txnlog))
        try:
            out.append(asyncio.run(_run(op, requests, sessions, depth, rep, log_dir, fsync)) * 1e6)
        finally:
            if log_dir is not None:
                shutil.rmtree(log_dir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--ops", default="get,set,create")
    ap.add_argument("--txnlog", metavar="DIR", help="give the server a txn log in a new directory under DIR")
    ap.add_argument("--no-fsync", action="store_true", help="with --txnlog: forceSync=no")
    args = ap.parse_args()
    import zkops.server.prep as prep
    from zkops.server.eventloop import choose

    loop = choose()  # $ZKOPS_EVENT_LOOP, as a server process
    from zkops.server.app import tune_gc

    tune_gc()  # the cyclic collector as a server process sets it (app.serve)
    compiled = not (prep.__file__ or "").endswith(".py")
    log = "none" if args.txnlog is None else f"in {args.txnlog}, fsync {'off' if args.no_fsync else 'on'}"
    print(f"event loop: {loop}, compiled modules: {compiled}, txn log: {log}")
    for op in args.ops.split(","):
        us = measure(op, args.requests, args.sessions, args.depth, args.reps, args.txnlog, not args.no_fsync)
        print(f"{op:6s} {statistics.median(us):6.2f} us/request ({min(us):.2f}-{max(us):.2f}), "
              f"{args.sessions} sessions x {args.depth} in flight", flush=True)


if __name__ == "__main__":
    main()
