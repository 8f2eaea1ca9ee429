"""Differential tests: the same kazoo scenario against Apache ZooKeeper 3.8 and zkops.

Each scenario returns a list of normalised observations (values, stats, error class
names, watch events); the two lists must be equal. Times and session ids are
normalised; zxids are made relative to the scenario's first write so both servers
can be compared even though their histories before the scenario differ.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import ZnodeStat
from kazoo.security import make_digest_acl

from tests.support.ourzk import InProcessServer

pytestmark = pytest.mark.reference


class Recorder:
    def __init__(self, client: KazooClient, base: str) -> None:
        self.client = client
        self.base = base
        self.out: list[Any] = []
        self.zxid0: int | None = None
        self.events: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def z(self, zxid: int) -> Any:
        if self.zxid0 is None or zxid < self.zxid0:
            return "old" if zxid else 0
        return zxid - self.zxid0

    def norm(self, value: Any) -> Any:
        if isinstance(value, ZnodeStat):
            owner = value.ephemeralOwner
            sid = self.client.client_id[0] if self.client.client_id else None
            return ("stat", self.z(value.czxid), self.z(value.mzxid), value.ctime > 0, value.mtime >= value.ctime,
                    value.version, value.cversion, value.aversion,
                    "me" if owner == sid and owner else (hex(owner) if owner and owner < 0 else bool(owner)),
                    value.dataLength, value.numChildren, self.z(value.pzxid))
        if isinstance(value, BaseException):
            return type(value).__name__
        if isinstance(value, tuple):
            return tuple(self.norm(v) for v in value)
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        if isinstance(value, str) and value.startswith(self.base):
            return "<base>" + value[len(self.base):]
        return value

    def do(self, label: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except KazooException as exc:
            self.out.append((label, "error", type(exc).__name__))
            return None
        except Exception as exc:  # client-side validation errors count as observations too
            self.out.append((label, "raised", type(exc).__name__))
            return None
        self.out.append((label, self.norm(value)))
        return value

    def start_zxid(self) -> None:
        stat = self.client.exists(self.base)
        self.zxid0 = stat.czxid

    def watcher(self, tag: str) -> Callable[[Any], None]:
        def w(event: Any) -> None:
            with self.lock:
                path = event.path[len(self.base):] if event.path and event.path.startswith(self.base) else event.path
                self.events.append((tag, event.type, path))
        return w

    def settle(self, label: str) -> None:
        time.sleep(0.3)
        with self.lock:
            self.out.append((label, sorted(self.events)))
            self.events.clear()


def scenario_crud(r: Recorder) -> None:
    c, b = r.client, r.base
    r.do("create", lambda: c.create(b + "/a", b"hello"))
    r.do("create2", lambda: c.create(b + "/a2", b"x", include_data=True))
    r.do("get", lambda: c.get(b + "/a"))
    r.do("set", lambda: c.set(b + "/a", b"world"))
    r.do("set-badversion", lambda: c.set(b + "/a", b"v", version=7))
    r.do("set-version", lambda: c.set(b + "/a", b"v", version=1))
    r.do("exists", lambda: c.exists(b + "/a"))
    r.do("exists-missing", lambda: c.exists(b + "/missing"))
    r.do("create-exists", lambda: c.create(b + "/a"))
    r.do("create-null", lambda: c.create(b + "/null", None))
    r.do("get-null", lambda: c.get(b + "/null"))
    r.do("set-null", lambda: c.set(b + "/a", None))
    r.do("get-set-null", lambda: c.get(b + "/a"))
    r.do("create-noparent", lambda: c.create(b + "/x/y"))
    r.do("delete-badversion", lambda: c.delete(b + "/a", version=5))
    r.do("create-child", lambda: c.create(b + "/a/c"))
    r.do("delete-notempty", lambda: c.delete(b + "/a"))
    r.do("children", lambda: sorted(c.get_children(b + "/a")))
    r.do("children2", lambda: c.get_children(b + "/a", include_data=True))
    r.do("delete-child", lambda: c.delete(b + "/a/c"))
    r.do("delete", lambda: c.delete(b + "/a", version=2))
    r.do("get-missing", lambda: c.get(b + "/a"))
    r.do("empty-data", lambda: c.create(b + "/empty", b""))
    r.do("get-empty", lambda: c.get(b + "/empty"))
    r.do("big-data", lambda: c.create(b + "/big", b"x" * 500000))
    r.do("get-big", lambda: len(c.get(b + "/big")[0]))
    r.do("parent", lambda: c.exists(b))


def scenario_sequential(r: Recorder) -> None:
    c, b = r.client, r.base
    r.do("p", lambda: c.create(b + "/p"))
    r.do("c1", lambda: c.create(b + "/p/c1"))
    r.do("s1", lambda: c.create(b + "/p/s-", sequence=True))
    r.do("del c1", lambda: c.delete(b + "/p/c1"))
    r.do("s2", lambda: c.create(b + "/p/s-", sequence=True))
    r.do("s3-eph", lambda: c.create(b + "/p/e-", sequence=True, ephemeral=True))
    r.do("noname", lambda: c.create(b + "/p/", sequence=True))
    r.do("stat", lambda: c.exists(b + "/p"))
    r.do("children", lambda: sorted(c.get_children(b + "/p")))


def scenario_ephemeral(r: Recorder) -> None:
    c, b = r.client, r.base
    r.do("eph", lambda: c.create(b + "/e", b"1", ephemeral=True))
    r.do("eph-stat", lambda: c.exists(b + "/e"))
    r.do("eph-child", lambda: c.create(b + "/e/child"))
    r.do("eph-seq", lambda: c.create(b + "/es-", ephemeral=True, sequence=True))
    r.do("delete-eph", lambda: c.delete(b + "/e"))


def scenario_multi(r: Recorder) -> None:
    c, b = r.client, r.base

    def ok() -> Any:
        t = c.transaction()
        t.create(b + "/m1", b"1")
        t.create(b + "/m1/m2", b"2")
        t.set_data(b + "/m1", b"3")
        t.check(b + "/m1", 1)
        t.delete(b + "/m1/m2")
        return t.commit()

    def fail() -> Any:
        t = c.transaction()
        t.create(b + "/f1")
        t.delete(b + "/nonexistent")
        t.create(b + "/f2")
        return t.commit()

    def badcheck() -> Any:
        t = c.transaction()
        t.check(b + "/m1", 99)
        t.set_data(b + "/m1", b"9")
        return t.commit()

    r.do("multi-ok", ok)
    r.do("multi-fail", fail)
    r.do("after-fail", lambda: c.exists(b + "/f1"))
    r.do("badcheck", badcheck)
    r.do("m1", lambda: c.get(b + "/m1"))


def scenario_watches(r: Recorder) -> None:
    c, b = r.client, r.base
    c.create(b + "/w", b"0")
    r.do("get-w", lambda: c.get(b + "/w", watch=r.watcher("data")))
    r.do("children-w", lambda: c.get_children(b + "/w", watch=r.watcher("child")))
    r.do("exists-missing-w", lambda: c.exists(b + "/w/new", watch=r.watcher("exists")))
    r.do("create", lambda: c.create(b + "/w/new"))
    r.settle("after-create")
    r.do("set", lambda: c.set(b + "/w", b"1"))
    r.do("set-again", lambda: c.set(b + "/w", b"2"))
    r.settle("after-set")
    r.do("get-w2", lambda: c.get(b + "/w/new", watch=r.watcher("data2")))
    r.do("children-w2", lambda: c.get_children(b + "/w", watch=r.watcher("child2")))
    r.do("delete", lambda: c.delete(b + "/w/new"))
    r.settle("after-delete")


def scenario_acl(r: Recorder) -> None:
    c, b = r.client, r.base
    acl = make_digest_acl("alice", "secret", all=True)
    r.do("create-acl", lambda: c.create(b + "/sec", b"s", acl=[acl]))
    r.do("get-noauth", lambda: c.get(b + "/sec"))
    r.do("set-noauth", lambda: c.set(b + "/sec", b"x"))
    r.do("getacl-noauth", lambda: c.get_acls(b + "/sec")[0])
    r.do("exists-noauth", lambda: c.exists(b + "/sec"))
    r.do("addauth-wrong", lambda: c.add_auth("digest", "alice:wrong"))
    r.do("get-wrongauth", lambda: c.get(b + "/sec"))
    r.do("addauth", lambda: c.add_auth("digest", "alice:secret"))
    r.do("get-auth", lambda: c.get(b + "/sec"))
    r.do("getacl-auth", lambda: c.get_acls(b + "/sec")[0])
    r.do("setacl", lambda: c.set_acls(b + "/sec", [make_digest_acl("alice", "secret", read=True, admin=True)]))
    r.do("set-readonly", lambda: c.set(b + "/sec", b"x"))
    r.do("create-under-readonly", lambda: c.create(b + "/sec/child"))
    r.do("setacl-badversion", lambda: c.set_acls(b + "/sec", [acl], version=9))
    from kazoo.security import ACL, Id

    r.do("auth-scheme-acl", lambda: c.create(b + "/authacl", acl=[ACL(31, Id("auth", ""))]))
    # the order of a session's auth ids is a Java HashSet's: compare as a set
    r.do("auth-acl-read", lambda: sorted(c.get_acls(b + "/authacl")[0], key=lambda a: a.id.id))
    r.do("invalid-acl", lambda: c.create(b + "/bad", acl=[ACL(31, Id("digest", "nocolon"))]))
    r.do("invalid-scheme", lambda: c.create(b + "/bad2", acl=[ACL(31, Id("nosuch", "x"))]))
    r.do("world-bad", lambda: c.create(b + "/bad3", acl=[ACL(31, Id("world", "someone"))]))
    r.do("ip-acl", lambda: c.create(b + "/ip", acl=[ACL(31, Id("ip", "127.0.0.1"))]))
    r.do("ip-get", lambda: c.get(b + "/ip"))
    r.do("ip-other", lambda: c.create(b + "/ip2", acl=[ACL(31, Id("ip", "10.1.2.0/24"))]))
    r.do("ip-other-get", lambda: c.get(b + "/ip2"))


def scenario_paths(r: Recorder) -> None:
    c, b = r.client, r.base
    for bad in ["//x", "/a/", "/./x", "/a/../b", "/a\u0001b"]:
        r.do(f"create {bad!r}", lambda bad=bad: c.create(b + bad))
    r.do("delete-zookeeper", lambda: c.delete("/zookeeper/quota"))
    r.do("delete-root", lambda: c.delete("/"))
    r.do("set-config", lambda: c.set("/zookeeper/config", b"x"))
    r.do("get-config", lambda: c.get("/zookeeper/config")[1].aversion)
    r.do("unicode", lambda: c.create(b + "/ünï©ødé", "ü".encode()))
    r.do("unicode-get", lambda: c.get(b + "/ünï©ødé")[0])


def scenario_child_order(r: Recorder) -> None:
    """getChildren lists in Apache's HashSet order, through table growth and deletes."""
    c, b = r.client, r.base
    c.create(b + "/o")
    names = [f"n{i}" for i in range(40)] + ["zeta", "alpha", "Ω", "ü-1", "x" * 30]
    for i, n in enumerate(names):
        c.create(f"{b}/o/{n}")
        if i in (3, 5, 7, 12, 20, 44):
            r.do(f"order@{i}", lambda: c.get_children(b + "/o"))
    for n in names[::3]:
        c.delete(f"{b}/o/{n}")
    r.do("after-deletes", lambda: c.get_children(b + "/o"))
    for n in ["n0", "again", "n3"]:
        c.create(f"{b}/o/{n}")
    r.do("after-recreate", lambda: c.get_children(b + "/o"))


def scenario_attacker(r: Recorder) -> None:
    """What someone without the password tries: the protected node through multi, through the
    listing of a protected parent, through watches re-sent by setWatches after a reconnect."""
    from kazoo.protocol.connection import _CONNECTION_DROP
    from kazoo.protocol.states import KazooState

    c, b = r.client, r.base
    secret = make_digest_acl("alice", "secret", all=True)
    r.do("create-vault", lambda: c.create(b + "/vault", b"v", acl=[secret]))
    r.do("create-open", lambda: c.create(b + "/open"))
    r.do("create-hidden", lambda: c.create(b + "/open/hidden", b"h", acl=[secret]))
    r.do("ls-protected-parent", lambda: c.get_children(b + "/vault"))
    r.do("ls2-protected-parent", lambda: c.get_children(b + "/vault", include_data=True))
    r.do("ls-open-parent", lambda: c.get_children(b + "/open"))
    r.do("get-hidden", lambda: c.get(b + "/open/hidden"))

    def multi(*ops: tuple[str, tuple]) -> Any:
        t = c.transaction()
        for name, args in ops:
            getattr(t, name)(*args)
        return t.commit()

    r.do("multi-set", lambda: multi(("check", (b + "/open", 0)), ("set_data", (b + "/vault", b"pwn"))))
    r.do("multi-create-under", lambda: multi(("create", (b + "/vault/x", b""))))
    r.do("multi-setacl-via-check", lambda: multi(("check", (b + "/vault", 0)), ("create", (b + "/o2", b""))))
    r.do("multi-delete-protected-child", lambda: multi(("delete", (b + "/open/hidden",))))
    r.do("vault-unchanged", lambda: c.exists(b + "/vault"))
    r.do("setacl-noauth", lambda: c.set_acls(b + "/vault", [make_digest_acl("eve", "x", all=True)]))
    r.do("watch-vault", lambda: c.exists(b + "/vault", watch=r.watcher("exists")))
    back = threading.Event()
    c.add_listener(lambda state: back.set() if state == KazooState.CONNECTED else None)
    c._call(_CONNECTION_DROP, c.handler.async_result())  # reconnect: kazoo re-sends the watch with setWatches
    back.wait(10)
    r.do("addauth", lambda: c.add_auth("digest", "alice:secret"))
    r.do("set-vault", lambda: c.set(b + "/vault", b"v2"))
    r.settle("events-after-set")
    r.do("get-vault", lambda: c.get(b + "/vault")[0])
    r.do("bogus-scheme", lambda: c.add_auth("nosuch", "x"))


SCENARIOS = [scenario_child_order, scenario_crud, scenario_sequential, scenario_ephemeral, scenario_multi, scenario_watches,
             scenario_acl, scenario_paths, scenario_attacker]


def run_scenario(address: str, scenario: Callable[[Recorder], None]) -> list[Any]:
    client = KazooClient(hosts=address, timeout=10)
    client.start(timeout=15)
    try:
        base = "/diff-" + uuid.uuid4().hex[:8]
        client.create(base)
        r = Recorder(client, base)
        r.start_zxid()
        scenario(r)
        return r.out
    finally:
        client.stop()
        client.close()


@pytest.fixture(scope="module")
def zkops_server():
    with InProcessServer() as s:
        yield s


def differences(apache: str, ours: str, scenario: Callable[[Recorder], None]) -> str:
    """What zkops at ``ours`` answers differently from Apache at ``apache`` in ``scenario`` (""
    when nothing). The Apache server is shared by the whole test session: a session another
    test left behind can expire in the middle of a scenario, and its closeSession txn moves
    every later zxid up by one there. So a scenario that differs is run on Apache once more,
    and only a difference that repeats is one."""
    actual = run_scenario(ours, scenario)
    report = ""
    for _ in range(2):
        expected = run_scenario(apache, scenario)
        diffs = [(e, a) for e, a in zip(expected, actual, strict=False) if e != a]
        if not diffs and len(expected) == len(actual):
            return ""
        report = "\n".join(f"  apache: {e}\n  zkops:  {a}" for e, a in diffs)
        if len(expected) != len(actual):
            report += f"\n  apache made {len(expected)} observations, zkops {len(actual)}"
    return report


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_same_as_apache(scenario, reference_zk, zkops_server):
    report = differences(reference_zk.address, zkops_server.address, scenario)
    assert not report, "zkops differs from Apache ZooKeeper:\n" + report
