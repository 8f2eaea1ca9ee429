"""Session expiry, containers and TTL nodes on a live (in-process) server with short ticks."""

from __future__ import annotations

import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from tests.support.ourzk import InProcessServer
from tests.support.rawclient import RawClient
from zkops.server.codes import CreateFlag, Op
from zkops.server.records import ACL, CreateRequest, Id
from zkops.server.sessions import SessionTracker

OPEN = [ACL(31, Id("world", "anyone"))]


def _client(address: str, timeout: float = 1.0) -> KazooClient:
    c = KazooClient(hosts=address, timeout=timeout)
    c.start(timeout=10)
    return c


def test_expiry_rounds_up_to_the_next_tick():
    t = SessionTracker(tick_ms=2000, now_ms=0)
    t.add(1, 5000, now_ms=100)
    assert t.sessions[1].expires_at == 6000
    assert t.expired(5999) == []
    assert [s.session_id for s in t.expired(6000)] == [1]


def test_touch_moves_a_session_to_a_later_bucket():
    t = SessionTracker(tick_ms=1000, now_ms=0)
    t.add(7, 3000, now_ms=0)
    t.touch(7, 2500)
    assert t.expired(4000) == []
    assert [s.session_id for s in t.expired(6000)] == [7]


def test_expired_session_loses_its_ephemerals_and_watchers_hear_it():
    with InProcessServer(tick_time=100, min_session_timeout=300, max_session_timeout=1000) as s:
        # the watcher connects first: its watch must be set before the owner's session expires
        # (a kazoo connect can take longer than that on a loaded machine)
        watcher = _client(s.address, timeout=5)
        # a raw client that goes silent (no pings) with its socket open: as a hung process would
        owner = RawClient(s.address, timeout_ms=1000)
        hdr, _ = owner.request(Op.create, CreateRequest("/lease", b"x", OPEN, CreateFlag.EPHEMERAL))
        assert hdr.err == 0
        deleted = threading.Event()
        watcher.exists("/lease", watch=lambda e: e.type == "DELETED" and deleted.set())
        assert deleted.wait(5), "the ephemeral was not deleted on session expiry"
        assert watcher.exists("/lease") is None
        assert owner.session_id not in s.call(lambda: dict(s.server.core.sessions.sessions))
        # the expired session's socket was closed, and it cannot come back
        owner.sock.settimeout(5)
        assert owner.sock.recv(10) == b""
        again = RawClient(s.address, session_id=owner.session_id, passwd=owner.connect_response.passwd)
        assert again.connect_response.timeOut == 0
        watcher.stop()


def test_reconnect_within_timeout_keeps_the_session():
    with InProcessServer(tick_time=100, min_session_timeout=1000, max_session_timeout=4000) as s:
        c = _client(s.address, timeout=3)
        c.create("/mine", ephemeral=True)
        sid = c.client_id[0]
        lost = threading.Event()
        back = threading.Event()
        c.add_listener(lambda st: (lost.set() if st == KazooState.SUSPENDED else
                                   back.set() if st == KazooState.CONNECTED and lost.is_set() else None))
        s.call(lambda: [x.transport.abort() for x in list(s.server.connections) if x.session_id == sid])
        assert back.wait(10)
        assert c.client_id[0] == sid
        assert c.exists("/mine") is not None
        c.stop()


def _raw_create(c: RawClient, op: int, req) -> int:
    hdr, _ = c.request(op, req)
    return hdr.err


def _exists(c: RawClient, path: str) -> bool:
    from zkops.server.records import PathRequest

    hdr, _ = c.request(Op.exists, PathRequest(path, False))
    return hdr.err == 0


def test_empty_container_that_had_children_is_deleted():
    from zkops.server.records import DeleteRequest

    with InProcessServer(container_check_interval_ms=100) as s:
        c = RawClient(s.address)
        assert _raw_create(c, Op.createContainer, CreateRequest("/ctr", b"", OPEN, CreateFlag.CONTAINER)) == 0
        assert _raw_create(c, Op.createContainer, CreateRequest("/never", b"", OPEN, CreateFlag.CONTAINER)) == 0
        assert _raw_create(c, Op.create, CreateRequest("/ctr/child", b"", OPEN, 0)) == 0
        assert _raw_create(c, Op.delete, DeleteRequest("/ctr/child", -1)) == 0
        deadline = time.time() + 5
        while _exists(c, "/ctr") and time.time() < deadline:
            time.sleep(0.05)
        assert not _exists(c, "/ctr")
        assert _exists(c, "/never"), "a container that never had children stays"
        c.close()


def test_ttl_node_expires_once_untouched_and_childless():
    from zkops.server.records import CreateTTLRequest

    with InProcessServer(container_check_interval_ms=100) as s:
        c = RawClient(s.address)
        ttl = CreateFlag.PERSISTENT_WITH_TTL
        assert _raw_create(c, Op.createTTL, CreateTTLRequest("/ttl", b"x", OPEN, ttl, 300)) == 0
        assert _raw_create(c, Op.createTTL, CreateTTLRequest("/ttl-parent", b"", OPEN, ttl, 300)) == 0
        assert _raw_create(c, Op.create, CreateRequest("/ttl-parent/kid", b"", OPEN, 0)) == 0
        assert _exists(c, "/ttl")
        time.sleep(1.0)
        assert not _exists(c, "/ttl")
        assert _exists(c, "/ttl-parent")
        c.close()
