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
import socket
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


def _sockets_of(pid: int) -> list[str]:
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads a process's descriptors from /proc")
def test_the_child_holds_none_of_the_servers_sockets(tmp_path: Path) -> None:
    """A server killed (kill -9) while its child writes must be gone from the network at once:
    the child had inherited the client port, the quorum links and every client connection, so
    a restarted server could not bind its port and clients and peers of the dead server saw
    their connections stay open until the snapshot was written."""
    release = tmp_path / "release"
    listener = socket.create_server(("127.0.0.1", 0))  # as the server's port would be, open at the fork

    def held_writer(zxid: int, sessions: dict[int, int], items: object) -> Path:
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return release

    async def run() -> list[str]:
        server = ZooKeeperServer(memory_config(0), snapshot_writer=held_writer)
        server._fork_snapshot(5, {}, server.core.tree.nodes.items())
        pid = server.snapshot_child
        assert pid is not None
        try:
            deadline = time.monotonic() + 30
            while True:  # the child closes them first thing; it may not have been scheduled yet
                held = _sockets_of(pid)
                if not held or time.monotonic() > deadline:
                    return held
                await asyncio.sleep(0.02)
        finally:
            release.write_text("go\n")
            await server.stop()

    try:
        assert asyncio.run(run()) == []
        assert listener.fileno() >= 0  # the parent's own sockets stay open
        listener.getsockname()
    finally:
        listener.close()
