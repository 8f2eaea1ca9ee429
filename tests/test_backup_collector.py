"""A restore rebuilds the tree without the cyclic collector walking the growing tree (znodes
hold no cycles; with the default thresholds the collector ran a collection every few hundred
znodes, and its older generations walked the whole tree again and again)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.backup import build
from zkops.provision import backupset


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    build(data, 20_000, 500)
    out = tmp_path / "backup"
    man = backupset.Manifest()
    for f in sorted((data / "version-2").iterdir()):
        raw = f.read_bytes()
        backupset.store(out, man, "zk1", f.name, raw, f"zk1:{f}", len(raw), f.stat().st_mtime)
    man.save(out)
    return out


@pytest.fixture
def collections() -> Iterator[list[int]]:
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


def test_a_restore_rebuilds_the_tree_without_the_collector(backup_dir: Path, collections: list[int]) -> None:
    point = backupset.choose(backup_dir)
    collections.clear()
    assert gc.isenabled()
    rebuilt = backupset.rebuild(backup_dir, point)
    assert collections == [] and gc.isenabled()  # off while it built, and back on after
    assert rebuilt.tree.node_count() >= 20_000 and rebuilt.txns == 500 and rebuilt.zxid == point.zxid

