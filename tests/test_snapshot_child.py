"""A server's stop waits for the child writing its snapshot.

Snapshots are written by a forked child (``ZooKeeperServer._fork_snapshot``). A server that
stopped while one was on its way left the child running: "stopped" then did not mean that the
data directory stood still, and a file could appear in it after the process was gone (seen as
a flaky restore test: the files moved aside by `zkops restore` were not those listed once the
server had stopped). Now stop() waits for the child, and kills it only past a generous limit.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.support.ourzk import memory_config
from zkops.server import zkserver
from zkops.server.zkserver import ZooKeeperServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="snapshots are forked only where fork exists")


def _slow_writer(marker: Path, seconds: float):
    def write(zxid: int, sessions: dict[int, int], items: object) -> Path:
        time.sleep(seconds)
        marker.write_text(f"{zxid}\n")
        return marker

    return write


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_returns_once_the_snapshot_child_has_written(tmp_path: Path) -> None:
    marker = tmp_path / "written"

    async def run() -> int:
        server = ZooKeeperServer(memory_config(0), snapshot_writer=_slow_writer(marker, 1.0))
        server._fork_snapshot(7, {}, server.core.tree.nodes.items())  # as _take_snapshot does
        pid = server.snapshot_child
        assert pid is not None
        await server.stop()
        return pid

    pid = asyncio.run(run())
    assert marker.read_text() == "7\n"  # written before stop() returned
    assert not _alive(pid)  # and reaped: no zombie, no orphan


def test_a_child_past_the_limit_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(zkserver, "SNAPSHOT_CHILD_WAIT_S", 0.2)
    marker = tmp_path / "written"

    async def run() -> int:
        server = ZooKeeperServer(memory_config(0), snapshot_writer=_slow_writer(marker, 30.0))
        server._fork_snapshot(9, {}, server.core.tree.nodes.items())
        pid = server.snapshot_child
        assert pid is not None
        await server.stop()
        return pid

    pid = asyncio.run(run())
    assert not _alive(pid) and not marker.exists()
    assert f"killed the snapshot child {pid}" in caplog.text
