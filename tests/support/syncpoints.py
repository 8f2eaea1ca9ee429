"""Count the points where a test's files are made durable, whichever way the txn log does it."""

from __future__ import annotations

import fcntl
import os
from typing import Any

from zkops.server import txnlog


def count_sync_points(monkeypatch: Any) -> list[str]:
    """Record every ``fsync``, ``fdatasync`` and synchronous write (a ``pwrite`` to a file opened
    ``O_DSYNC``: the txn log's own with forceSync) from now on, in order."""
    calls: list[str] = []
    real_fsync, real_fdatasync, real_pwrite = os.fsync, os.fdatasync, os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if txnlog.SYNC_WRITE_FLAG and fcntl.fcntl(fd, fcntl.F_GETFL) & txnlog.SYNC_WRITE_FLAG:
            calls.append("sync-write")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("fdatasync"), real_fdatasync(fd))[1])
    monkeypatch.setattr(os, "pwrite", pwrite)
    return calls
