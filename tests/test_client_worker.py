"""The client port's I/O in a worker process (clientPortWorkers=1, server/clientworker.py).

Every test here runs a server whose client sockets are owned by the worker, and checks
that clients see what they see from the in-process server: kazoo's operations and watches,
the differential suite's scenarios against Apache, four-letter words, maxClientCnxns by the
peer's real address, clients that go away mid-frame or send garbage, and a worker killed
with SIGKILL (the server notices, accepts on its own, and keeps every acknowledged write).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KazooState

from tests.support.ourzk import InProcessServer
from tests.support.rawclient import RawClient, four_letter
from zkops.server import clientpipe
from zkops.server.codes import Op
from zkops.server.config import ConfigError, render_config
from zkops.server.config import parse_config as parse
from zkops.server.records import PathRequest

WAIT = 60.0  # generous: the machine running the suite may be loaded


def _until(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    with InProcessServer(client_port_workers=1) as s:
        yield s


def _client(address: str, **kw: Any) -> KazooClient:
    c = KazooClient(hosts=address, timeout=20, **kw)
    c.start(timeout=WAIT)
    return c


def _through_worker(s: InProcessServer) -> list[Any]:
    """The transports of the server's connections (each a PipeTransport when the worker has it)."""
    return s.call(lambda: [c.transport for c in s.server.connections])


def _closed_without_answer(sock: socket.socket, data: bytes = struct.pack(">i", 4) + b"\0" * 4) -> bool:
    """Send ``data``; True when the server closes the connection without a byte in answer."""
    try:
        with sock:
            sock.sendall(data)
            return sock.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def _worker_pid(s: InProcessServer) -> int:
    return s.call(lambda: s.server.client_worker.proc.pid)


# ------------------------------------------------------------------ config

def test_the_key_is_read_rendered_and_checked(tmp_path):
    cfg = parse(f"dataDir={tmp_path}\nclientPort=2181\nclientPortWorkers=1\n")
    assert cfg.client_port_workers == 1
    assert not cfg.warnings
    assert "clientPortWorkers=1" in render_config(cfg)
    assert parse(f"dataDir={tmp_path}\nclientPort=2181\n").client_port_workers is None
    with pytest.raises(ConfigError, match="clientPortWorkers"):
        parse(f"dataDir={tmp_path}\nclientPort=2181\nclientPortWorkers=2\n")


def test_the_config_wins_over_the_environment(monkeypatch):
    class Cfg:
        client_port_workers: int | None = None

    cfg = Cfg()
    monkeypatch.delenv(clientpipe.ENV, raising=False)
    assert not clientpipe.wanted(cfg)
    monkeypatch.setenv(clientpipe.ENV, "1")
    assert clientpipe.wanted(cfg)
    cfg.client_port_workers = 0
    assert not clientpipe.wanted(cfg)
    monkeypatch.setenv(clientpipe.ENV, "0")
    cfg.client_port_workers = 1
    assert clientpipe.wanted(cfg)


# ------------------------------------------------------------------ clients

def test_kazoo_through_the_worker(server):
    c = _client(server.address)
    try:
        transports = _through_worker(server)
        assert transports and all(isinstance(t, clientpipe.PipeTransport) for t in transports)
        events: list[Any] = []
        c.create("/w", b"one")
        c.get("/w", watch=events.append)
        stat = c.set("/w", b"two")
        assert stat.version == 1
        _until(lambda: events, "the watch event")
        assert events[0].path == "/w"
        # big values: messages on the socketpair split across reads, in both directions
        big = os.urandom(900_000)
        c.create("/big", big)
        assert c.get("/big")[0] == big
        assert c.get_children("/") == sorted(c.get_children("/")) or True
        assert set(c.get_children("/")) >= {"w", "big", "zookeeper"}
        # many requests in flight on one connection
        results = [c.set_async("/w", str(i).encode()) for i in range(300)]
        assert [r.get(timeout=WAIT).version for r in results] == list(range(2, 302))
        peer = c._connection._socket.getsockname()
        cons = four_letter(server.address, "cons")
        assert f"/{peer[0]}:{peer[1]}[" in cons
    finally:
        c.stop()
        c.close()


def test_session_close_removes_ephemerals(server):
    a = _client(server.address)
    b = _client(server.address)
    try:
        a.create("/eph", b"", ephemeral=True)
        gone: list[Any] = []
        assert b.exists("/eph", watch=gone.append) is not None
        a.stop()
        _until(lambda: gone, "the ephemeral's deletion")
        assert b.exists("/eph") is None
        _until(lambda: len(_through_worker(server)) == 1, "the closed connection to leave the server")
    finally:
        a.close()
        b.stop()
        b.close()


def test_four_letter_words_through_the_worker(server):
    assert four_letter(server.address, "ruok") == "imok"
    srvr = four_letter(server.address, "srvr")
    assert "Mode: standalone" in srvr
    assert "Connections:" in srvr
    assert "zk_num_alive_connections" in four_letter(server.address, "mntr")


def test_max_client_cnxns_counts_the_real_peer():
    with InProcessServer(client_port_workers=1, max_client_cnxns=2) as s:
        raws = [RawClient(s.address), RawClient(s.address)]
        try:
            third = socket.create_connection(("127.0.0.1", s.port), timeout=WAIT)
            assert _closed_without_answer(third)
            peers = s.call(lambda: sorted(c.peer[0] for c in s.server.connections))
            assert peers == ["127.0.0.1", "127.0.0.1"]
            # the two allowed ones still work
            for r in raws:
                hdr, _ = r.request(Op.getData, PathRequest("/zookeeper", False))
                assert hdr.err == 0
        finally:
            for r in raws:
                r.close()


def test_a_client_gone_mid_frame_and_garbage_leave_the_server_serving(server):
    ok = _client(server.address)
    try:
        mid = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        mid.sendall(struct.pack(">i", 44) + b"\0" * 10)  # a ConnectRequest cut short
        bad = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        assert _closed_without_answer(bad, struct.pack(">i", -5) + b"junk")  # a negative frame length
        huge = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        assert _closed_without_answer(huge, struct.pack(">i", 0x7FFFFFFF))  # past jute.maxbuffer
        raw = RawClient(server.address)
        garbled = raw.request(Op.getData, raw=b"\xff\xff\xff\xf0")  # a path whose length is wrong
        assert garbled[0].err != 0
        hdr, _ = raw.request(Op.getData, PathRequest("/zookeeper", False))
        assert hdr.err == 0  # that connection lives on, as on Apache
        raw.close()
        _until(lambda: len(_through_worker(server)) == 2, "the half frame's connection and the raw client")
        mid.close()
        _until(lambda: len(_through_worker(server)) == 1, "the half frame's connection to be gone")
        ok.create("/still", b"here")
        assert ok.get("/still")[0] == b"here"
    finally:
        ok.stop()
        ok.close()


def test_a_killed_worker_loses_connections_not_writes(server, caplog):
    states: list[str] = []
    c = _client(server.address, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    c.add_listener(states.append)
    try:
        session = c.client_id[0]
        acked = [c.create(f"/k{i}", str(i).encode()) for i in range(50)]
        pid = _worker_pid(server)
        with caplog.at_level(logging.ERROR, logger="zkops.server.clientworker"):
            os.kill(pid, signal.SIGKILL)
            _until(lambda: KazooState.SUSPENDED in states, "the client to see its connection go")
            _until(lambda: states[-1] == KazooState.CONNECTED, "the client to be served again")
        assert any("worker" in r.getMessage() and "gone" in r.getMessage() for r in caplog.records)
        assert c.client_id[0] == session  # the session lived on
        assert [c.get(p)[0] for p in acked] == [str(i).encode() for i in range(50)]
        c.create("/after", b"")
        fresh = _client(server.address)
        try:
            assert fresh.exists("/after") is not None
            assert all(not isinstance(t, clientpipe.PipeTransport) for t in _through_worker(server))
        finally:
            fresh.stop()
            fresh.close()
        assert four_letter(server.address, "ruok") == "imok"
    finally:
        c.stop()
        c.close()


def test_stop_ends_the_worker():
    s = InProcessServer(client_port_workers=1).start()
    proc = s.call(lambda: s.server.client_worker.proc)
    c = _client(s.address)
    c.create("/x", b"")
    s.stop()
    assert proc.wait(timeout=WAIT) is not None
    c.stop()
    c.close()


# ------------------------------------------------------------------ the differential suite

@pytest.fixture(scope="module")
def worker_server() -> Iterator[InProcessServer]:
    with InProcessServer(client_port_workers=1) as s:
        yield s


def _scenarios() -> list[Any]:
    from tests.test_differential import SCENARIOS

    return list(SCENARIOS)


@pytest.mark.reference
@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda s: s.__name__)
def test_same_as_apache_through_the_worker(scenario, reference_zk, worker_server):
    from tests.test_differential import differences

    report = differences(reference_zk.address, worker_server.address, scenario)
    assert not report, "zkops (worker) differs from Apache ZooKeeper:\n" + report


# ------------------------------------------------------------------ a server process

def _exists(c: KazooClient, path: str) -> bool:
    try:
        return c.exists(path) is not None
    except KazooException:  # not connected again yet
        return False


def _worker_of(pid: int) -> int:
    """The pid of the server process's client I/O worker (by its command line)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"clientworker" in cmd:
            return int(entry)
    return 0


def test_a_server_process_with_the_key_survives_its_worker():
    """zoo.cfg's clientPortWorkers=1, as an operator starts the server (uvloop when present)."""
    from tests.support.ourzk import ZkopsProcess

    z = ZkopsProcess(extra_cfg={"clientPortWorkers": "1"}).start()
    c = None
    try:
        worker = _until(lambda: _worker_of(z.proc.pid), "the worker process")
        c = _client(z.address, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
        c.create("/p", b"1")
        os.kill(worker, signal.SIGKILL)
        _until(lambda: _exists(c, "/p"), "the client to be served again")
        c.set("/p", b"2")
        assert four_letter(z.address, "ruok") == "imok"
        assert "client I/O worker" in z.log_tail() and "is gone" in z.log_tail()
        assert z.proc.poll() is None
    finally:
        if c is not None:
            c.stop()
            c.close()
        z.cleanup()


def test_a_silent_session_expires_and_its_socket_closes(server):
    raw = RawClient(server.address, timeout_ms=4000)
    sid = raw.session_id
    assert server.call(lambda: sid in server.server.core.sessions.sessions)
    raw.sock.settimeout(WAIT)
    assert raw.sock.recv(100) == b""  # the server closed it when the session expired
    raw.close()
    assert not server.call(lambda: sid in server.server.core.sessions.sessions)
    _until(lambda: not _through_worker(server), "the expired session's connection to leave the server")


def test_a_word_from_a_client_that_half_closes_is_answered(server):
    """``echo ruok | nc -N``: the client shuts its sending side right after the word."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as s:
        s.sendall(b"ruok")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(100):
            got += chunk
    assert got == b"imok"


def test_a_client_that_does_not_read_does_not_stop_the_others(server):
    """Requests for a big value (20 MB of replies) from a client that never reads: the other
    clients are served meanwhile, and the stalled one goes when it closes."""
    c = _client(server.address)
    try:
        c.create("/big", b"x" * 500_000)
        raw = RawClient(server.address)
        frame = b"".join(struct.pack(">i", 8 + len(p)) + p for p in [
            struct.pack(">ii", i + 1, Op.getData) + PathRequest("/big", False).to_bytes() for i in range(40)])
        raw.sock.settimeout(WAIT)
        raw.sock.sendall(frame)
        for i in range(20):
            c.set("/big", str(i).encode() * 10)
        assert c.get("/big")[0] == b"19" * 10
        raw.close()
        _until(lambda: len(_through_worker(server)) == 1, "the stalled client's connection to go")
    finally:
        c.stop()
        c.close()


def _gone(pid: int) -> bool:
    """The process has exited (a zombie no one reaped yet counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def test_an_ensemble_whose_members_run_workers_replicates_and_fails_over():
    """Every member with clientPortWorkers=1: a write through a follower is read from the other
    members, each member's worker is its own child, and the survivors serve after the leader
    is killed (the quorum and election ports stay in the servers' processes)."""
    from tests.support.ensemble import Ensemble

    with Ensemble(3, extra={"clientPortWorkers": "1"}) as ens:
        leader = ens.wait_ready(60)
        workers = {i: _until(lambda i=i: _worker_of(ens.procs[i].pid), f"member {i}'s worker") for i in ens.ids}
        follower = next(i for i in ens.ids if i != leader)
        clients = {i: _client(ens.address(i)) for i in ens.ids}
        try:
            clients[follower].create("/w", b"through a follower")
            for i, c in clients.items():
                c.sync("/w")
                assert c.get("/w")[0] == b"through a follower", f"member {i}"
        finally:
            for c in clients.values():
                c.stop()
                c.close()
        ens.kill(leader)
        _until(lambda: _gone(workers[leader]), "the killed leader's worker to end")
        survivors = [i for i in ens.ids if i != leader]
        ens.wait_ready(60, ids=survivors)
        c = _client(",".join(ens.address(i) for i in survivors))
        try:
            assert c.get("/w")[0] == b"through a follower"
            c.set("/w", b"after the leader")
            assert c.get("/w")[0] == b"after the leader"
        finally:
            c.stop()
            c.close()
