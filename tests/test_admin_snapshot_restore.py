"""The AdminServer's snapshot and restore commands: off by default, authenticated, rate limited,
and a restore brings the same process back from the posted snapshot."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from tests.support.ourzk import ZkopsProcess
from tests.support.refzk import free_port

pytestmark = pytest.mark.integration
ROOT_AUTH = "digest root:rootpw"


def http(port: int, path: str, auth: str | None = None, body: bytes | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET")
    if auth:
        req.add_header("Authorization", auth)
    if body:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def server(**extra: str) -> ZkopsProcess:
    admin = free_port()
    srv = ZkopsProcess(extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                  "admin.serverPort": str(admin), **extra})
    srv.admin_port = admin  # type: ignore[attr-defined]
    return srv.start()


def client(address: str) -> KazooClient:
    zk = KazooClient(hosts=address, timeout=30, auth_data=[("digest", "root:rootpw")])
    zk.start(timeout=60)
    return zk


def test_off_unless_enabled():
    srv = server()
    try:
        for path, body in (("/commands/snapshot?streaming=true", None), ("/commands/restore", b"x")):
            status, _, out = http(srv.admin_port, path, ROOT_AUTH, body)
            assert status == 503 and "disabled" in json.loads(out)["error"]
        status, _, out = http(srv.admin_port, "/commands/ruok")
        assert status == 200
    finally:
        srv.cleanup()


def test_snapshot_auth_rate_limit_and_restore_restarts_from_it():
    srv = server(**{"admin.snapshot.enabled": "true", "admin.restore.enabled": "true",
                    "admin.restore.intervalInMS": "0"})
    try:
        zk = client(srv.address)
        zk.create("/kept", b"before")
        zk.set_acls("/", [make_digest_acl("root", "rootpw", all=True)])
        assert http(srv.admin_port, "/commands/snapshot?streaming=true")[0] == 401
        assert http(srv.admin_port, "/commands/snapshot?streaming=true", "digest root:wrong")[0] == 403
        assert http(srv.admin_port, "/commands/snapshot?streaming=true", "ip")[0] == 403
        status, headers, snap = http(srv.admin_port, "/commands/snapshot?streaming=true", ROOT_AUTH)
        assert status == 200, snap
        assert headers["Content-Type"] == "application/octet-stream"
        assert int(headers["snapshot_size"]) == len(snap) and headers["last_zxid"].startswith("0x")
        status, _, out = http(srv.admin_port, "/commands/snapshot?streaming=true", ROOT_AUTH)
        assert status == 429 and "Rate limit" in json.loads(out)["error"]

        zk.create("/after", b"gone after the restore")
        zk.set("/kept", b"changed")
        status, _, out = http(srv.admin_port, "/commands/restore", ROOT_AUTH, b"not a snapshot" * 10)
        assert status == 400 and "not a valid snapshot" in json.loads(out)["error"]
        assert zk.get("/kept")[0] == b"changed"  # nothing changed on a refused restore
        assert http(srv.admin_port, "/commands/restore", "digest root:wrong", snap)[0] == 403
        pid = srv.proc.pid
        status, _, out = http(srv.admin_port, "/commands/restore", ROOT_AUTH, snap)
        body = json.loads(out)
        assert status == 200 and body["command"] == "restore" and body["error"] is None, body
        # without Apache's digest trailer the zxid is the newest a node's Stat carries (the
        # setACL of the root, the last txn, changes no zxid field)
        assert body["last_zxid"] == int(headers["last_zxid"], 16) - 1
        zk.stop()
        zk.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                zk = client(srv.address)
                try:
                    if zk.exists("/after") is None:
                        assert zk.get("/kept")[0] == b"before"
                        break
                finally:
                    zk.stop()
                    zk.close()
            except Exception:  # noqa: BLE001 - restarting
                pass
            assert time.monotonic() < deadline, srv.log_tail()
            time.sleep(0.2)
        assert srv.proc.poll() is None and srv.proc.pid == pid
        assert (srv.data_dir / "zookeeper_server.pid").read_text().strip() == str(pid)
        aside = [p for p in srv.data_dir.iterdir() if p.name.startswith("version-2.before-restore-")]
        assert len(aside) == 1 and any(p.name.startswith("log.") for p in aside[0].iterdir())
    finally:
        srv.cleanup()
