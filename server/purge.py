"""Autopurge: keep the newest N snapshots and the log files needed to replay from them."""

from __future__ import annotations

import logging
from pathlib import Path

from .snapshot import find_snapshots, snapshot_zxid
from .txnlog import log_files

log = logging.getLogger("zkops.server.purge")


def purge(data_dir: Path, log_dir: Path, retain: int = 3) -> list[Path]:
    """Delete snapshots beyond the newest ``retain`` (at least 3) and logs older than all kept ones."""
    retain = max(3, retain)
    snaps = find_snapshots(data_dir)
    if len(snaps) <= retain:
        return []
    keep = snaps[:retain]
    oldest_kept = snapshot_zxid(keep[-1])
    doomed = list(snaps[retain:])
    logs = log_files(Path(log_dir) / "version-2")
    # the newest log starting at or before the oldest kept snapshot holds txns it needs
    needed_from = 0
    for first, _ in logs:
        if first <= oldest_kept:
            needed_from = first
    doomed += [p for first, p in logs if first < needed_from]
    for p in doomed:
        try:
            p.unlink()
            log.info("purged %s", p)
        except OSError as exc:
            log.warning("could not purge %s: %s", p, exc)
    return doomed
