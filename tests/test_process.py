"""The real server process: zkserver start/status/stop, and nothing acknowledged lost on kill -9."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from tests.support.ourzk import ZkopsProcess
from zkops.server.snapshot import find_snapshots

pytestmark = pytest.mark.integration


def _client(address: str) -> KazooClient:
    c = KazooClient(hosts=address, timeout=10, connection_retry={"max_tries": -1, "delay": 0.05})
    c.start(timeout=20)
    return c


def test_acknowledged_writes_survive_kill_9():
    with ZkopsProcess() as server:
        acked: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n: int) -> None:
            c = _client(server.address)
            i = 0
            while not stop.is_set():
                path = f"/w{n}-{i}"
                try:
                    # bounded: a create queued just as the server died waits for a reconnect
                    # that may never come (the client retries for ever), and would keep this
                    # thread, and the test process, alive
                    c.create_async(path, b"v" * 50).get(timeout=15)
                except (KazooException, KazooTimeoutError):
                    break
                with lock:
                    acked.append(path)
                i += 1
            c.stop()
            c.close()

        threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill()
        stop.set()
        for t in threads:
            t.join(30)
        assert len(acked) > 50
        server.start()
        c = _client(server.address)
        missing = [p for p in acked if c.exists(p) is None]
        c.stop()
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"


def test_snapshots_roll_and_recovery_reads_them():
    with ZkopsProcess(extra_cfg={"snapCount": "20"}) as server:
        c = _client(server.address)
        for i in range(100):
            c.create(f"/s{i}", str(i).encode())
        # A snapshot still being written when the next one is due is skipped, as Apache's
        # "too busy to snap": on a loaded machine 100 txns may not be enough for two. Keep
        # writing until a second snapshot exists (bounded), so the test holds under any load.
        deadline = time.monotonic() + 60
        rounds = 0
        while len(find_snapshots(server.data_dir)) < 2 and time.monotonic() < deadline:
            c.set("/s7", str(rounds).encode())
            rounds += 1
            if rounds % 20 == 0:
                time.sleep(0.2)
        c.set("/s7", b"changed")
        c.stop()
        assert len(find_snapshots(server.data_dir)) >= 2
        server.kill()
        server.start()
        c = _client(server.address)
        assert c.get("/s7")[0] == b"changed"
        assert len([n for n in c.get_children("/") if n.startswith("s")]) == 100
        c.stop()


def _zkserver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkops.server", *args], capture_output=True, text=True, timeout=60)


def test_zkserver_start_status_stop(tmp_path):
    server = ZkopsProcess(workdir=tmp_path)
    cfg = server.write_config()
    down = _zkserver("status", str(cfg))
    assert down.returncode == 1 and "not running" in down.stdout
    up = _zkserver("start", str(cfg))
    assert up.returncode == 0 and "STARTED" in up.stdout
    try:
        again = _zkserver("start", str(cfg))
        assert again.returncode == 1 and "already running" in again.stdout
        status = _zkserver("status", str(cfg))
        assert status.returncode == 0 and "Mode: standalone" in status.stdout
        assert (server.data_dir / "zookeeper_server.pid").exists()
    finally:
        stop = _zkserver("stop", str(cfg))
    assert stop.returncode == 0 and "STOPPED" in stop.stdout
    assert not (server.data_dir / "zookeeper_server.pid").exists()
    assert _zkserver("status", str(cfg)).returncode == 1


def test_bad_config_is_one_clear_line(tmp_path):
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=99999\n")
    out = _zkserver("start-foreground", str(cfg))
    assert out.returncode == 2
    assert "clientPort" in out.stderr and "zoo.cfg:2" in out.stderr and "Traceback" not in out.stderr


def test_sigterm_then_restart_on_the_same_port(tmp_path):
    server = ZkopsProcess(workdir=tmp_path).start()
    c = _client(server.address)
    c.create("/keep", b"1")
    c.stop()
    server.stop()
    server.start()
    c = _client(server.address)
    assert c.get("/keep")[0] == b"1"
    c.stop()
    server.cleanup()


def test_snapshot_is_written_by_a_child_and_is_exact():
    """The forked child sees the tree exactly at the snapshot's zxid (not fuzzy)."""
    from zkops.server import snapshot as snap

    with ZkopsProcess(extra_cfg={"snapCount": "40"}) as server:
        c = _client(server.address)
        for i in range(200):
            c.create(f"/exact{i}", str(i).encode())
        c.stop()
        deadline = time.time() + 10
        while len(find_snapshots(server.data_dir)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        newest = snap.read_snapshot(find_snapshots(server.data_dir)[0])
        created = {p for p, *_ in newest.nodes if p.startswith("/exact")}
        # every node in the snapshot was created at or before its zxid, and all of those are there
        assert all(stat.czxid <= newest.zxid for _, _, _, stat in newest.nodes)
        # zxid 1 is the session, /exact{i} is zxid i + 2: an exact snapshot holds exactly those <= its zxid
        assert len(created) == min(200, newest.zxid - 1)
        log = (server.workdir / "zkops-server.log").read_text()
        assert "written by child" in log


def test_null_data_stays_null_through_log_and_snapshot():
    """Apache keeps a create's null data as null (length -1), through restarts too."""
    from kazoo.client import KazooClient

    from tests.support.ourzk import ZkopsProcess

    proc = ZkopsProcess(extra_cfg={"snapCount": "2"})
    proc.start()
    try:
        zk = KazooClient(proc.address)
        zk.start()
        zk.create("/null-data", None)
        zk.create("/empty-data", b"")
        for i in range(6):  # enough writes to roll a snapshot with the null node in it
            zk.create(f"/filler-{i}", b"x")
        assert zk.get("/null-data")[0] is None and zk.get("/empty-data")[0] == b""
        zk.stop()
        proc.kill()
        proc.start()
        zk = KazooClient(proc.address)
        zk.start()
        assert zk.get("/null-data")[0] is None and zk.get("/empty-data")[0] == b""
        zk.stop()
    finally:
        proc.cleanup()


def test_a_server_without_tls_does_not_load_openssls_tls_library(tmp_path, monkeypatch):
    """Start-up stays lean: asyncio would load libssl for every server, but only a config with
    a TLS port needs it (tests/test_tls.py runs those). On asyncio's own loop: uvloop, where
    installed, imports ssl itself (server/eventloop.py)."""
    monkeypatch.setenv("ZKOPS_EVENT_LOOP", "asyncio")
    server = ZkopsProcess(workdir=tmp_path).start()
    try:
        c = _client(server.address)
        c.create("/lean", b"x")
        assert c.get("/lean")[0] == b"x"
        c.stop()
        maps = open(f"/proc/{server.proc.pid}/maps").read()  # type: ignore[union-attr]
        assert "libssl" not in maps
    finally:
        server.stop()


def test_a_server_without_tls_on_uvloop_does_not_load_openssl_either(tmp_path, monkeypatch):
    """uvloop imports ssl; a server process without TLS gives it a stand-in while it is imported
    (server/eventloop.py), so neither libssl nor libcrypto is mapped."""
    pytest.importorskip("uvloop")
    monkeypatch.setenv("ZKOPS_EVENT_LOOP", "uvloop")
    server = ZkopsProcess(workdir=tmp_path).start()
    try:
        c = _client(server.address)
        c.create("/lean", b"x")
        assert c.get("/lean")[0] == b"x"
        c.stop()
        maps = open(f"/proc/{server.proc.pid}/maps").read()  # type: ignore[union-attr]
        assert "libuv" in maps or "uvloop" in maps  # it runs uvloop
        assert "libssl" not in maps and "libcrypto" not in maps
    finally:
        server.stop()


def test_numeric_addresses_are_bound_without_loading_the_idna_codec(tmp_path, monkeypatch):
    """A port on a numeric address (the client port's and the AdminServer's here) is bound by
    the server itself (server/listening.py): uvloop would encode the address with the IDNA
    codec to resolve it, which loads unicodedata and stringprep (about 360 KiB) for nothing."""
    pytest.importorskip("uvloop")
    from tests.support.refzk import free_port

    monkeypatch.setenv("ZKOPS_EVENT_LOOP", "uvloop")
    admin = free_port()
    server = ZkopsProcess(workdir=tmp_path, extra_cfg={"admin.enableServer": "true", "admin.serverPort": str(admin),
                                                       "admin.serverAddress": "127.0.0.1"}).start()
    try:
        c = _client(server.address)
        c.create("/lean", b"x")
        c.stop()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/commands/ruok", timeout=10) as r:
            assert r.status == 200
        maps = open(f"/proc/{server.proc.pid}/maps").read()  # type: ignore[union-attr]
        assert "libuv" in maps or "uvloop" in maps  # it runs uvloop
        assert "unicodedata" not in maps
    finally:
        server.stop()


def test_a_client_port_on_a_host_name_is_resolved_and_served(tmp_path):
    """A name in clientPortAddress is left to the event loop, which resolves it."""
    server = ZkopsProcess(workdir=tmp_path, extra_cfg={"clientPortAddress": "localhost"}).start()
    try:
        c = _client(server.address)
        c.create("/named", b"y")
        assert c.get("/named")[0] == b"y"
        c.stop()
    finally:
        server.stop()


# What a standalone server (AdminServer off, no TLS, no SASL) has no use for: the ensemble's
# modules, TLS, SASL, the AdminServer, and the standard library's modules that only the CLI's
# other commands (argparse), logging.handlers (logsetup has its own rolling file) or
# dataclasses' code generation (values) used to bring. Each is import time and idle memory
# in every server process (docs/performance.md, start-up).
NOT_FOR_A_STANDALONE_SERVER = frozenset({
    "zkops.server.quorum", "zkops.server.quorumpeer", "zkops.server.quorumnet", "zkops.server.quorumwire",
    "zkops.server.zab", "zkops.server.election", "zkops.server.electionnet", "zkops.server.electionwire",
    "zkops.server.membership", "zkops.server.tls", "zkops.server.tlspeers", "zkops.server.sasl",
    "zkops.server.adminserver", "zkops.server.httpd", "zkops.server.fourletterclient",
    "argparse", "logging.handlers", "_ssl",
})


def test_a_standalone_server_imports_only_what_it_serves_with(tmp_path, monkeypatch):
    """The server's own -X importtime lines (PYTHONPROFILEIMPORTTIME) name every module it
    imported: by the time it has served a session, none of the ones above."""
    monkeypatch.setenv("ZKOPS_EVENT_LOOP", "asyncio")  # uvloop imports ssl (server/eventloop.py)
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    server = ZkopsProcess(workdir=tmp_path, extra_cfg={"admin.enableServer": "false"}).start()
    try:
        c = _client(server.address)
        c.create("/lean", b"x")
        assert c.get("/lean")[0] == b"x"
        c.stop()
        text = (tmp_path / "stdout.log").read_text(errors="replace")
    finally:
        server.stop()
    imported = {line.rsplit("|", 1)[-1].strip() for line in text.splitlines() if line.startswith("import time:")}
    assert {"zkops.server.zkserver", "zkops.server.connection", "asyncio"} <= imported  # the lines are there
    assert sorted(imported & NOT_FOR_A_STANDALONE_SERVER) == []
