"""Run a server from a parsed config: recover the database, serve until a signal.

This is the only place that wires storage, the server shell and the OS together.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any

from .database import Database

log = logging.getLogger("zkops.server")


def run(cfg: Any) -> int:
    """Serve until SIGTERM/SIGINT; returns a process exit code."""
    return asyncio.run(serve(cfg))


async def serve(cfg: Any, started: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> int:
    from .zkserver import ZooKeeperServer

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    t0 = time.perf_counter()
    db = Database.open(Path(cfg.data_dir), Path(cfg.data_log_dir), force_sync=cfg.force_sync,
                       prealloc_kb=getattr(cfg, "pre_alloc_size_kb", 65536))
    log.info("loaded database in %.1f ms: zxid 0x%x, %d znodes, %d sessions",
             (time.perf_counter() - t0) * 1000, db.tree.last_zxid, db.tree.node_count(), len(db.sessions))
    tune_gc()
    exit_code = 0

    def on_fatal(exc: BaseException) -> None:
        nonlocal exit_code
        exit_code = 1
        stop.set()

    server = ZooKeeperServer(cfg, db.tree, db.sessions, db.txnlog, loop, on_fatal=on_fatal,
                             snapshot_writer=db.snapshot_writer(getattr(cfg, "autopurge_snap_retain_count", 3)))
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    purge_task = asyncio.create_task(_autopurge(cfg, db, stop))
    try:
        await server.start()
        if started is not None:
            started.set()
        await stop.wait()
    finally:
        log.info("shutting down")
        purge_task.cancel()
        await server.stop()
        db.close()
    return exit_code


async def _autopurge(cfg: Any, db: Database, stop: asyncio.Event) -> None:
    hours = getattr(cfg, "autopurge_purge_interval", 24)
    if not hours:
        return
    retain = max(3, getattr(cfg, "autopurge_snap_retain_count", 3))
    while not stop.is_set():
        await asyncio.sleep(hours * 3600)
        try:
            await asyncio.get_running_loop().run_in_executor(None, db.purge, retain)
        except Exception as exc:  # a failed purge must never stop the server
            log.warning("autopurge failed: %s", exc)


def tune_gc() -> None:
    """Znodes form no reference cycles, yet the cyclic collector would walk all of them
    again and again as the tree grows: freeze what recovery loaded and collect rarely.
    No collection first: it would walk that whole tree once more, for the few bytes of
    start-up garbage it could free."""
    import gc

    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
