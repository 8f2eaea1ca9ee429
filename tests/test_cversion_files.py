"""Apache's bookkeeping that must survive a move between kinds of server.

- A session's password is Apache's (``java.util.Random(id ^ 0xB3415C00)``), so a client can
  take its session from an Apache server to a zkops one and back.
- A node's cversion is kept as Apache keeps it (creations of children; Stat shows creations
  plus deletions): a dataDir moved Apache -> zkops -> Apache, with deletions on the way, shows
  the same Stat everywhere and sequential names never restart below taken ones.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support import refzk
from tests.support.ourzk import ZkopsProcess
from tests.support.rawclient import RawClient
from zkops.server.sessions import session_password

# captured from Debian's Apache ZooKeeper 3.8.0: a session id and the password it answered with
CAPTURED = [(0x1000003C7C80000, "4a5581f10ffe7e9f387228e1703a19a6")]

needs_apache = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")


def test_session_password_is_apaches() -> None:
    for sid, hexpw in CAPTURED:
        assert session_password(sid).hex() == hexpw
    assert len(session_password(-1)) == 16


@needs_apache
def test_session_password_matches_a_live_apache() -> None:
    with refzk.RefZooKeeper() as zk:
        for _ in range(3):
            c = RawClient(zk.address)
            try:
                assert session_password(c.session_id) == c.connect_response.passwd
            finally:
                c.close()


def _client(address: str) -> KazooClient:
    k = KazooClient(hosts=address, timeout=30, connection_retry={"max_tries": -1, "max_delay": 1})
    k.start(timeout=60)
    return k


def _stat(address: str, path: str) -> tuple:
    k = _client(address)
    try:
        s = k.exists(path)
        assert s is not None
        return (s.cversion, s.pzxid, s.numChildren, s.version, s.mzxid)
    finally:
        k.stop()
        k.close()


@needs_apache
def test_cversion_survives_apache_zkops_apache_moves() -> None:
    work = Path(tempfile.mkdtemp(prefix="cversion-move-"))
    data = work / "data"
    data.mkdir()
    common = {"dataDir": str(data), "snapCount": "2"}
    try:
        # Apache: creations and deletions, then a restart so its snapshot holds /a
        ref = refzk.RefZooKeeper(extra_cfg=dict(common), workdir=work / "apache1")
        ref.start()
        try:
            k = _client(ref.address)
            k.create("/a")
            for i in range(4):
                k.create(f"/a/x{i}")
            k.delete("/a/x0")
            k.delete("/a/x1")
            assert k.create("/a/s-", sequence=True) == "/a/s-0000000004"
            k.stop()
            k.close()
        finally:
            ref.stop()
        ref = refzk.RefZooKeeper(extra_cfg=dict(common), workdir=work / "apache2")
        ref.start()
        try:
            apache_stat = _stat(ref.address, "/a")
        finally:
            ref.stop()

        # zkops on Apache's dataDir: the same Stat, the next sequential name Apache would give
        ours = ZkopsProcess(extra_cfg=dict(common), workdir=work / "zkops")
        ours.start(timeout=60)
        try:
            assert _stat(ours.address, "/a") == apache_stat
            k = _client(ours.address)
            assert k.create("/a/s-", sequence=True) == "/a/s-0000000005"
            k.delete("/a/x2")
            k.delete("/a/s-0000000004")
            for i in range(6):  # enough txns for a snapshot after the deletions (snapCount=2)
                k.set("/a", str(i).encode())
            k.stop()
            k.close()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(data.glob("version-2/snapshot.*")):
                time.sleep(0.1)
            zkops_stat = _stat(ours.address, "/a")
        finally:
            ours.stop()

        # back to Apache: zkops' snapshot and log give the same Stat, and names go on upwards
        ref = refzk.RefZooKeeper(extra_cfg=dict(common), workdir=work / "apache3")
        ref.start()
        try:
            assert _stat(ref.address, "/a") == zkops_stat
            k = _client(ref.address)
            assert k.create("/a/s-", sequence=True) == "/a/s-0000000006"
            k.stop()
            k.close()
        finally:
            ref.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
