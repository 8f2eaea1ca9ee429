"""Server CPU per request, in-process: bytes in through ``ClientConnection.data_received``, replies
out to a transport that keeps them, on one event loop; no sockets, no disk (no txn log: a txn is
still encoded, then committed on the next loop turn).

python3 -m benchmarks.cpu [--requests N] [--reps N] [--sessions N] [--depth N] [--txnlog DIR [--no-fsync]]
                          [--variant NAME:DIR ...]

Each session keeps ``depth`` requests in flight, as the pipelined generator does (issue 21: 4,
100-byte data); every figure is microseconds of this process's CPU per request, the median of
``--reps`` repetitions with the min-max. It measures the server's own code (decode, prepare,
txn encoding, apply, watches, reply) and the loop's scheduling, which a compiled build
(``ZKOPS_COMPILE=1``, docs/performance.md "The compiled build") or another event loop changes; the kernel's share of a real request
(send and receive calls) is not in it. The cyclic garbage collector is set as a server process
sets it (``app.tune_gc``: rare collections), since its passes are part of a server's CPU.

``--txnlog DIR`` gives the server a real txn log in a fresh directory under DIR (fsync on, as
shipped, unless ``--no-fsync``), so writes also take the log's path: framing, the group
committer's thread and its wake-ups, the write and fsync calls (their CPU, not their wait).
Each round of requests then waits until the round before it is answered, as clients that
keep ``depth`` requests in flight would.

``--variant NAME:DIR`` (repeatable) compares trees of the package in one run: this checkout
("this") and each DIR laid out as installed (``DIR/zkops/server/...``, e.g. an unpacked
compiled wheel) are measured in child processes, one repetition of each in turn, and every
variant is also reported as its paired ratio to this checkout (median and min-max of the
per-repetition ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
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
    """Counts what the server writes; replies are not parsed (the counts are checked instead).
    Each write sets ``wrote`` (replies to writes follow a batch the log made durable: see _settle)."""

    def __init__(self, wrote: asyncio.Event | None = None) -> None:
        super().__init__()
        self.written = 0
        self.closed = False
        self.wrote = wrote

    def write(self, data: Any) -> None:
        self.written += len(data)
        if self.wrote is not None:
            self.wrote.set()

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
    try:
        return await _drive(server, op, requests, sessions, depth, rep, asyncio.Event())
    finally:
        await server.stop()
        if txnlog is not None:
            txnlog.close()


async def _settle(server: ZooKeeperServer, most: int, wrote: asyncio.Event) -> None:
    """Wait until at most ``most`` writes are pending. The log's thread makes them durable and
    the loop then answers them: the replies' writes wake this up (no polling: its wake-ups
    would be CPU of their own; nor a hook in the server, which a compiled build has no room for)."""
    while len(server.pending) > most:
        wrote.clear()
        await wrote.wait()


async def _drive(server: ZooKeeperServer, op: str, requests: int, sessions: int, depth: int, rep: int,
                 wrote: asyncio.Event) -> float:
    conns = []
    for _ in range(sessions):
        c = ClientConnection(server)
        c.connection_made(SinkTransport(wrote))
        req = ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"
        c.data_received(_frame(req))
        conns.append(c)
    for _ in range(20):  # the session creates commit
        await asyncio.sleep(0)
    await _settle(server, 0, wrote)
    if not all(c.connected for c in conns):
        raise RuntimeError("sessions did not connect")
    _setup_bench(conns[0])
    for _ in range(5):
        await asyncio.sleep(0)
    await _settle(server, 0, wrote)
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
            await _settle(server, sessions * depth, wrote)
    for _ in range(5):
        await asyncio.sleep(0)
    if logged:
        await _settle(server, 0, wrote)
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


ROOT = Path(__file__).resolve().parent.parent


def _child(tree: Path | None, args: argparse.Namespace, ops: list[str]) -> dict[str, float]:
    """One repetition of every op in a fresh process running the package from ``tree`` (None:
    this checkout), as microseconds per request by op."""
    path = [str(tree)] if tree is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    cmd = [sys.executable, "-m", "benchmarks.cpu", "--json", "--reps", "1", "--ops", ",".join(ops),
           "--requests", str(args.requests), "--sessions", str(args.sessions), "--depth", str(args.depth)]
    if args.txnlog:
        cmd += ["--txnlog", args.txnlog] + (["--no-fsync"] if args.no_fsync else [])
    with tempfile.TemporaryDirectory(prefix="cpu-bench-") as cwd:  # not the checkout: its zkops/ would win
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks.cpu in {tree or ROOT} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["file"].startswith(str(tree or ROOT)):
        raise SystemExit(f"the child ran {result['file']}, not the tree {tree or ROOT}")
    return {op: float(v) for op, v in result["us"].items()}


def _spread(values: list[float], fmt: str = "6.2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):.2f}-{max(values):.2f})"


def compare(args: argparse.Namespace) -> None:
    """--variant: this checkout and each tree, one repetition of each in turn."""
    trees: dict[str, Path | None] = {"this": None}
    for spec in args.variant:
        name, _, where = spec.partition(":")
        if not name or not where or not (Path(where) / "zkops" / "server").is_dir():
            raise SystemExit(f"--variant {spec}: want NAME:DIR with DIR/zkops/server")
        trees[name] = Path(where).resolve()
    ops = args.ops.split(",")
    got: dict[str, dict[str, list[float]]] = {name: {op: [] for op in ops} for name in trees}
    for _ in range(args.reps):
        for name, tree in trees.items():
            for op, us in _child(tree, args, ops).items():
                got[name][op].append(us)
    print(f"{args.reps} repetitions, alternating; {args.sessions} sessions x {args.depth} in flight; "
          "us/request median (min-max)")
    for op in ops:
        base = got["this"][op]
        for name in trees:
            us = got[name][op]
            ratio = "" if name == "this" else \
                f"   {name}/this {_spread([a / b for a, b in zip(us, base, strict=True)], '.3f')}"
            print(f"{op:6s} {name:10s} {_spread(us)}{ratio}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--ops", default="get,set,create")
    ap.add_argument("--txnlog", metavar="DIR", help="give the server a txn log in a new directory under DIR")
    ap.add_argument("--no-fsync", action="store_true", help="with --txnlog: forceSync=no")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:DIR",
                    help="also measure the package tree at DIR (DIR/zkops/server/...), alternating with this one")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # --variant's children
    args = ap.parse_args()
    if args.variant:
        compare(args)
        return
    import zkops.server.prep as prep
    from zkops.server.eventloop import choose

    loop = choose()  # $ZKOPS_EVENT_LOOP, as a server process
    from zkops.server.app import tune_gc

    tune_gc()  # the cyclic collector as a server process sets it (app.serve)
    compiled = not (prep.__file__ or "").endswith(".py")
    log = "none" if args.txnlog is None else f"in {args.txnlog}, fsync {'off' if args.no_fsync else 'on'}"
    if not args.json:
        print(f"event loop: {loop}, compiled modules: {compiled}, txn log: {log}")
    medians: dict[str, float] = {}
    for op in args.ops.split(","):
        us = measure(op, args.requests, args.sessions, args.depth, args.reps, args.txnlog, not args.no_fsync)
        medians[op] = statistics.median(us)
        if not args.json:
            print(f"{op:6s} {statistics.median(us):6.2f} us/request ({min(us):.2f}-{max(us):.2f}), "
                  f"{args.sessions} sessions x {args.depth} in flight", flush=True)
    if args.json:
        print(json.dumps({"compiled": compiled, "file": prep.__file__, "us": medians}))


if __name__ == "__main__":
    main()
