"""zkops export / import between Apache ZooKeeper 3.8 and zkops, with ACLs, prefixes and overwrite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, make_digest_acl

from tests.support import refzk
from tests.support.ourzk import ZkopsProcess

pytestmark = [pytest.mark.integration, pytest.mark.reference]
AUTH = ("digest", "alice:secret")


def zkops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkops.cli", *args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "250", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp"})


def client(address: str) -> KazooClient:
    zk = KazooClient(hosts=address, timeout=30, auth_data=[AUTH])
    zk.start(timeout=60)
    return zk


def walk(zk: KazooClient, root: str) -> dict[str, tuple[bytes, list]]:
    out = {}
    stack = [root]
    while stack:
        p = stack.pop()
        data, st = zk.get(p)
        if st.ephemeralOwner:
            continue
        out[p[len(root):] or "/"] = (data, sorted(zk.get_acls(p)[0]))
        stack += [f"{p}/{c}" if p != "/" else f"/{c}" for c in zk.get_children(p)]
    return out


@pytest.fixture
def servers():
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    apache = refzk.RefZooKeeper().start()
    ours = ZkopsProcess().start()
    try:
        yield apache, ours
    finally:
        ours.cleanup()
        apache.cleanup()


def populate(zk: KazooClient) -> None:
    alice = make_digest_acl("alice", "secret", all=True)
    zk.create("/app", b"top")
    zk.create("/app/bin", bytes(range(256)))
    zk.create("/app/empty", b"")
    zk.create("/app/private", b"only alice", acl=[alice])
    zk.create("/app/private/child", b"c", acl=[alice])
    zk.create("/app/readonly", b"ro", acl=[ACL(1, Id("world", "anyone")), alice])  # read for all, all for alice
    zk.create("/app/locked", b"no create for anyone")
    zk.create("/app/locked/below", b"made before the lock")
    zk.set_acls("/app/locked", [ACL(1, Id("world", "anyone"))])
    zk.create("/app/seq-", b"s", sequence=True)
    zk.create("/app/live", b"e", ephemeral=True)
    zk.create("/app/many")
    tx = zk.transaction()
    for i in range(1200):
        tx.create(f"/app/many/c{i:04d}", f"{i}".encode())
    tx.commit()


def test_export_import_round_trip_apache_and_zkops(servers, tmp_path: Path):
    apache, ours = servers
    za, zo = client(apache.address), client(ours.address)
    try:
        populate(za)
        exported = tmp_path / "tree.json"
        out = zkops("export", "--server", apache.address, "/app", "-o", str(exported), "--auth", "digest:alice:secret")
        assert out.returncode == 0, out.stderr
        assert "ephemerals skipped" in out.stderr
        head = json.loads(exported.read_text())  # the streamed file is one JSON document
        assert head["format"] == "zkops-tree/1" and len(head["nodes"]) == walk(za, "/app").__len__()
        assert all("stat" in n for n in head["nodes"])

        first = zkops("import", str(exported), "--server", ours.address, "--auth", "digest:alice:secret")
        assert first.returncode == 0, first.stderr
        assert walk(zo, "/app") == walk(za, "/app")
        again = zkops("import", str(exported), "--server", ours.address, "--auth", "digest:alice:secret")
        assert again.returncode == 0 and "0 created, 0 updated" in again.stderr, again.stderr

        zo.set("/app/bin", b"changed")
        kept = zkops("import", str(exported), "--server", ours.address, "--auth", "digest:alice:secret")
        assert kept.returncode == 0 and zo.get("/app/bin")[0] == b"changed"
        over = zkops("import", str(exported), "--server", ours.address, "--auth", "digest:alice:secret",
                     "--overwrite")
        assert over.returncode == 0 and "1 updated" in over.stderr, over.stderr
        assert zo.get("/app/bin")[0] == bytes(range(256))

        # and back: zkops -> Apache, under a prefix
        back = tmp_path / "back.json"
        assert zkops("export", "--server", ours.address, "/app", "-o", str(back),
                     "--auth", "digest:alice:secret").returncode == 0
        imp = zkops("import", str(back), "--server", apache.address, "--prefix", "/restored",
                    "--auth", "digest:alice:secret")
        assert imp.returncode == 0, imp.stderr
        assert walk(za, "/restored/app") == walk(za, "/app")
    finally:
        za.stop()
        zo.stop()


def test_ephemerals_on_request_and_bad_files(servers, tmp_path: Path):
    apache, ours = servers
    za = client(apache.address)
    try:
        za.create("/e", b"")
        za.create("/e/live", b"x", ephemeral=True)
        f = tmp_path / "eph.json"
        assert zkops("export", "--server", apache.address, "/e", "--ephemerals", "-o", str(f)).returncode == 0
        nodes = json.loads(f.read_text())["nodes"]
        assert [n["path"] for n in nodes if n.get("ephemeral")] == ["/e/live"]
        imp = zkops("import", str(f), "--server", ours.address)
        assert imp.returncode == 0 and "1 ephemerals skipped" in imp.stderr, imp.stderr
        truncated = tmp_path / "cut.json"
        truncated.write_text(f.read_text().rsplit("\n]}", 1)[0])  # cut at a line end
        bad = zkops("import", str(truncated), "--server", ours.address)
        assert bad.returncode == 2 and "truncated" in bad.stderr, bad.stderr
        junk = tmp_path / "junk.json"
        junk.write_text("[1, 2]\n")
        bad = zkops("import", str(junk), "--server", ours.address)
        assert bad.returncode == 2 and "not a zkops tree file" in bad.stderr, bad.stderr
    finally:
        za.stop()
