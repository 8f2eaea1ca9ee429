"""Autopurge: keep the newest snapshots and the txn logs needed to replay from them.

The rule is Apache ZooKeeper's PurgeTxnLog: find the newest ``retain`` snapshots that
pass the cheap seal check (a torn snapshot does not count as one of them); the oldest of
those, at zxid Z, is the oldest point the server could restart from. It needs the
newest log file starting at or before Z (that file may hold txns after Z) and every
later log. Every snapshot and log file named with a zxid below Z, other than those,
is deleted. Snapshots newer than Z are kept even if damaged, so nothing the server
might still read disappears.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .snapshot import find_snapshots, looks_sealed, snapshot_zxid
from .txnlog import log_files

log = logging.getLogger("zkops.server.purge")

MIN_RETAIN = 3


def logs_needed_from(log_dir: Path, zxid: int) -> int:
    """Start zxid of the oldest log file a restart from a snapshot at ``zxid`` reads."""
    needed = 0
    for first, _ in log_files(Path(log_dir) / "version-2"):
        if first <= zxid:
            needed = first
    return needed


def purge(data_dir: Path, log_dir: Path, retain: int = MIN_RETAIN) -> list[Path]:
    """Delete what the newest ``retain`` (at least 3) snapshots do not need; return it."""
    if retain < MIN_RETAIN:
        raise ValueError(f"retain must be at least {MIN_RETAIN}, not {retain}")
    snaps = find_snapshots(data_dir)
    kept = [p for p in snaps if looks_sealed(p)][:retain]
    if not kept:
        return []
    oldest = snapshot_zxid(kept[-1])
    needed_from = logs_needed_from(log_dir, oldest)
    doomed = [p for p in snaps if snapshot_zxid(p) < oldest]
    doomed += [p for first, p in log_files(Path(log_dir) / "version-2") if first < needed_from]
    deleted = []
    for p in sorted(set(doomed)):
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("autopurge could not delete %s: %s", p, exc)
            continue
        log.info("autopurge deleted %s", p)
        deleted.append(p)
    return deleted


__all__ = ["MIN_RETAIN", "logs_needed_from", "purge"]
