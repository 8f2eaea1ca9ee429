"""Run a server from a parsed config: recover the database, serve until a signal.

This is the only place that wires storage, the server shell and the OS together.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .database import Database

if TYPE_CHECKING:
    from .zkserver import ZooKeeperServer

log = logging.getLogger("zkops.server")


def run(cfg: Any) -> int:
    """Serve until SIGTERM/SIGINT; returns a process exit code."""
    return asyncio.run(serve(cfg))


class Replicating(Protocol):
    """What a quorum member adds around the server (``quorum.Ensemble``)."""

    def attach(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# builds a member's replication once the server and the database exist
ReplicationFactory = Callable[["ZooKeeperServer", Database, asyncio.AbstractEventLoop], Replicating]


async def serve(cfg: Any, started: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                replication: ReplicationFactory | None = None) -> int:
    """Recover the database and serve until ``stop`` (or SIGTERM/SIGINT): standalone, or as a
    quorum member when ``replication`` is given (``quorum.serve_quorum`` passes it)."""
    from .zkserver import ZooKeeperServer

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    t0 = time.perf_counter()
    # The collector stays off while the database loads (it was off for the imports, __main__):
    # the tree has no cycles, and with the default thresholds the collector walked the growing
    # tree again and again, about a sixth of the time to recover a million znodes.
    # Frozen before it is turned back on: the loaded nodes would otherwise all sit in the
    # youngest generation, and its first collection would walk every one of them.
    gc.disable()
    try:
        db = Database.open(Path(cfg.data_dir), Path(cfg.data_log_dir), force_sync=cfg.force_sync,
                           prealloc_kb=getattr(cfg, "pre_alloc_size_kb", 65536))
        tune_gc()
    finally:
        gc.enable()
    log.info("loaded database in %.1f ms: zxid 0x%x, %d znodes, %d sessions",
             (time.perf_counter() - t0) * 1000, db.tree.last_zxid, db.tree.node_count(), len(db.sessions))
    exit_code = 0

    def on_fatal(exc: BaseException) -> None:
        nonlocal exit_code
        exit_code = 1
        stop.set()

    retain = getattr(cfg, "autopurge_snap_retain_count", 3)
    server = ZooKeeperServer(cfg, db.tree, db.sessions, db.txnlog, loop, on_fatal=on_fatal,
                             server_id=(getattr(cfg, "my_id", 0) or 0) if replication is not None else 0,
                             snapshot_writer=db.snapshot_writer(retain))
    member = replication(server, db, loop) if replication is not None else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    hours = getattr(cfg, "autopurge_purge_interval", 24)
    purge_task = asyncio.create_task(autopurge(db, max(3, retain), hours * 3600, stop)) if hours else None
    try:
        if member is not None:
            member.attach()  # before the client port opens: never a standalone server, even briefly
        await server.start()
        if member is not None:
            await member.start()
        if started is not None:
            started.set()
        await stop.wait()
    finally:
        log.info("shutting down")
        if purge_task is not None:
            purge_task.cancel()
        if member is not None:
            await member.stop()
        await server.stop()
        db.close()
    return exit_code


async def autopurge(db: Database, retain: int, every_s: float, stop: asyncio.Event) -> None:
    """Every ``every_s`` seconds keep the newest ``retain`` snapshots and the logs they need
    (autopurge.purgeInterval, in hours in zoo.cfg), on standalone servers and members alike."""
    while not stop.is_set():
        await asyncio.sleep(every_s)
        try:
            await asyncio.get_running_loop().run_in_executor(None, db.purge, retain)
        except Exception as exc:  # a failed purge must never stop the server
            log.warning("autopurge failed: %s", exc)


def tune_gc() -> None:
    """Znodes form no reference cycles, yet the cyclic collector would walk all of them
    again and again as the tree grows: freeze what recovery loaded and collect rarely.
    No collection first: it would walk that whole tree once more, for the few bytes of
    start-up garbage it could free."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
