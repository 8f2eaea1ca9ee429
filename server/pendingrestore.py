"""The AdminServer's restore: install a posted snapshot and restart the server from it.

The posted bytes are checked with the snapshot codec (seal and tree) before anything
changes; then the server's ``version-2`` directories are moved aside (never deleted) and
the snapshot becomes the only file of a new ``version-2``. The restart replaces the
process image in place (``execv`` of the same command line: same pid, same pidfile,
same ports), so the server comes back exactly as a fresh start would, from that
snapshot. Sockets and the txn log's file are closed by the exec; every acknowledged txn
was already on disk.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import snapshot as snapmod

log = logging.getLogger("zkops.server.restore")


@dataclass
class Installed:
    zxid: int
    nodes: int
    moved_aside: list[Path]


def snapshot_zxid(data: bytes) -> tuple[int, int]:
    """(zxid, node count) of snapshot bytes: the digest's zxid when the file has one, else the
    newest zxid any node's Stat carries. Raises :class:`snapshot.SnapshotError` when damaged."""
    _sessions, nodes, digest = snapmod.parse_with_digest(data, "the posted snapshot")
    if digest is not None:
        return digest.zxid, len(nodes)
    newest = 0
    for _, _, _, st in nodes:
        newest = max(newest, st.czxid, st.mzxid, st.pzxid)
    return newest, len(nodes)


def move_aside(data_dir: Path, log_dir: Path, stamp: str | None = None) -> list[Path]:
    """Rename the ``version-2`` directories of ``data_dir`` and ``log_dir`` to
    ``version-2.before-restore-<stamp>`` (never deleted); returns where they went."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved: list[Path] = []
    for base in dict.fromkeys([Path(data_dir), Path(log_dir)]):
        v2 = base / "version-2"
        if v2.exists():
            aside = base / f"version-2.before-restore-{stamp}"
            n = 1
            while aside.exists():
                aside = base / f"version-2.before-restore-{stamp}-{n}"
                n += 1
            os.replace(v2, aside)
            moved.append(aside)
    return moved


def install(data_dir: Path, log_dir: Path, data: bytes) -> Installed:
    """Check ``data``, move the old files aside, and make it the only snapshot."""
    zxid, count = snapshot_zxid(data)
    moved = move_aside(data_dir, log_dir)
    snapmod.install_snapshot_bytes(Path(data_dir), zxid, data)
    if Path(log_dir) != Path(data_dir):
        (Path(log_dir) / "version-2").mkdir(parents=True, exist_ok=True)
    log.warning("restored a posted snapshot at 0x%x (%d nodes); old files in %s", zxid, count,
                ", ".join(map(str, moved)) or "-")
    return Installed(zxid, count, moved)


def restart_soon(loop: Any, delay: float = 0.3) -> None:
    """Re-execute this process's command line once the reply has gone out."""
    loop.call_later(delay, restart_now)


def restart_now() -> None:  # pragma: no cover - replaces the process
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    log.warning("restarting (same pid %d) from the restored snapshot: %s", os.getpid(), " ".join(argv))
    for h in logging.getLogger().handlers + logging.getLogger("zkops").handlers:
        try:
            h.flush()
        except Exception:  # noqa: BLE001
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


__all__ = ["Installed", "install", "restart_now", "restart_soon", "snapshot_zxid"]
