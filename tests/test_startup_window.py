"""An ensemble member must never serve a client as if it were standalone.

A member opens its client port while it starts. If it is not yet attached to its ensemble
at that moment, a client that connects in the window is served by a standalone server: its
session and writes are logged under a zxid of the member's own (a restarted follower once
logged a client's create as its own 0x100000006, then stopped on the leader's txn with the
same zxid). These tests pin the order: attach first, then accept clients.
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

import pytest

from tests.support.ensemble import Ensemble
from zkops.server.codes import Op
from zkops.server.config import load_config
from zkops.server.database import Database
from zkops.server.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    Id,
    ReplyHeader,
    RequestHeader,
)
from zkops.server.zkserver import ZooKeeperServer

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _session_and_create(path: str) -> bytes:
    """A ConnectRequest and a create, pipelined: what a client sends as fast as it can."""
    connect = ConnectRequest(0, 0, 10000, 0, b"\0" * 16).to_bytes() + b"\0"
    create = RequestHeader(1, Op.create).to_bytes() + CreateRequest(path, b"x", OPEN_ACL, 0).to_bytes()
    return _frame(connect) + _frame(create)


def _parse(frames: bytes) -> tuple[int, int | None]:
    """(session id, create's error code or None) from what the server sent back."""
    bodies = []
    while len(frames) >= 4:
        (n,) = struct.unpack(">i", frames[:4])
        if len(frames) < 4 + n:
            break
        bodies.append(frames[4:4 + n])
        frames = frames[4 + n:]
    if not bodies:
        return 0, None
    session = ConnectResponse.read(bodies[0], 0)[0].sessionId
    for body in bodies[1:]:
        hdr, _ = ReplyHeader.read(body, 0)
        if hdr.xid == 1:
            return session, hdr.err
    return session, None


async def _probe(port: int, path: str, deadline: float = 30.0) -> tuple[int, int | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_session_and_create(path))
    got = b""
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 1.0)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                break
            got += chunk
            if _parse(got)[1] is not None:
                break
    finally:
        writer.close()
    return _parse(got)


def test_client_port_opens_only_after_the_member_attached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic: a client that connects the moment the client port is open is not served.

    One member of a three-member ensemble starts in this process (its peers are not
    running, so it can never have a role); the probe runs right after the server's client
    port opened, before anything else of the start-up sequence."""
    from zkops.server.quorum import serve_quorum

    ens = Ensemble(voters=3, workdir=tmp_path, extra={"admin.enableServer": "false"})  # configs only, no process
    cfg = load_config(tmp_path / "n1" / "zoo.cfg")
    port = ens.client_port(1)
    seen: dict[str, tuple[int, int | None]] = {}
    original = ZooKeeperServer.start

    async def start_then_probe(self: ZooKeeperServer) -> None:
        await original(self)
        seen["probe"] = await _probe(port, "/window")

    monkeypatch.setattr(ZooKeeperServer, "start", start_then_probe)

    async def main() -> int:
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve_quorum(cfg, stop=stop, started=started))
        try:
            await asyncio.wait_for(started.wait(), 60)
        finally:
            stop.set()
        return await task

    assert asyncio.run(main()) == 0
    session, err = seen["probe"]
    assert session == 0 and err is None, f"served before attaching: session 0x{session:x}, create err {err}"
    db = Database.open(Path(cfg.data_dir), Path(cfg.data_log_dir))
    try:
        assert db.tree.last_zxid == 0 and "/window" not in db.tree.nodes, "a txn was logged by a member alone"
    finally:
        db.close()
