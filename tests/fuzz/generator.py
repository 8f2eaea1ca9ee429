"""Seeded request sequences: every client request, well-formed and malformed.

A sequence is a list of JSON-able steps (so a shrunk failure can be kept as a file):

- ``{"k": "connect", "c": slot}``: a new session on connection slot ``c``;
- ``{"k": "attach", "c": slot, "from": other, "pw": "right"|"wrong"}``: a new connection
  re-attaching the session of slot ``from``;
- ``{"k": "drop", "c": slot}``: the client closes the socket (no closeSession);
- ``{"k": "req", "c": slot, "op": n, "xid": x|None, "body": hex, "d": text}``: one request;
- ``{"k": "4lw", "w": word}``: wchs, wchc or wchp on a fresh socket;
- ``{"k": "unknown", "op": n, "body": hex, "d": text}``: an opcode Apache does not know, on a
  new session's connection of its own (its reply only: Apache then closes the connection).
"""

from __future__ import annotations

import random
from typing import Any

from tests.fuzz.body import Body, describe
from zkops.server.acl import digest
from zkops.server.codes import Op

SLOTS = 4
USERS = ("u1:p1", "u2:p2")

GOOD_PATHS = ["/a", "/a/b", "/a/b/c", "/b", "/c", "/a/s", "/", "/zookeeper", "/zookeeper/quota",
              "/zookeeper/config", "/zookeeper/x", "/zookeeper/quota/q", "/zookeeper/quota/q/r"]
BAD_PATHS: list[str | None] = [None, "", "a", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/.", "/a\x01",
                               "/a\x7f", "/\uffff", "/zookeeper/", "/\u00e9t\u00e9", "/a/b/c/d/e"]
SEQ_PATHS = ["/a/", "/a/s", "/", "/zookeeper/", "/zookeeper/q", "/zookeeper/quota/", "/b/n-"]

OPEN = [(31, "world", "anyone")]
ACLS: list[Any] = [
    OPEN, OPEN, OPEN, OPEN, OPEN, OPEN,
    [(1, "world", "anyone")],
    [(31, "auth", "")],
    [(31, "digest", digest(USERS[0]))],
    [(31, "digest", digest(USERS[1])), (1, "world", "anyone")],
    [(31, "ip", "127.0.0.1")],
    [(31, "ip", "10.0.0.0/8")],
    [(15, "world", "anyone")],
    [(29, "world", "anyone")],
    [(27, "world", "anyone")],
    [],
    None,
    [(31, "foo", "bar")],
    [(31, "world", "nobody")],
    [(31, "ip", "not-an-ip")],
    [(31, "digest", "nocolon")],
    [(0, "world", "anyone")],
    [(63, "world", "anyone")],
    [(31, None, "anyone")],
    [(31, "world", None)],
    [(31, "auth", "x"), (31, "world", "anyone")],
    [(31, "super", "")],
]
VERSIONS = [-1, -1, -1, -1, 0, 0, 1, 2, -2, 5]
FLAGS = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, -1, 100]
UNKNOWN_OPS = [10, 23, 24, 99, 108, 200, 0, -5, -12, 1000]
WORDS = ("wchs", "wchc", "wchp")


class Generator:
    """Builds one sequence from a seed; the same seed always gives the same steps."""

    def __init__(self, seed: int, mangle: float = 0.03) -> None:
        self.rng = random.Random(seed)
        self.mangle = mangle
        self.connected: set[int] = set()

    # ---------------------------------------------------------------- pieces
    def path(self, good: float = 0.85, null: bool = True) -> str | None:
        r = self.rng
        p = r.choice(GOOD_PATHS) if r.random() < good else r.choice(BAD_PATHS)
        return "/a/.." if p is None and not null else p

    def data(self) -> bytes | None:
        return self.rng.choice([b"", b"x", b"hello", None, b"\0\xff", b"d" * 300])

    def body(self) -> Body:
        return Body(self.rng, self.mangle)

    def create_body(self, op: int) -> tuple[Body, str]:
        r = self.rng
        flags = r.choice(FLAGS)
        path = r.choice(SEQ_PATHS) if flags in (2, 3, 6) and r.random() < 0.5 else self.path()
        acl = r.choice(ACLS)
        b = self.body().string(path).buffer(self.data()).acl(acl).int(flags)
        d = f"{describe(path)} flags={flags} acl={describe(acl)}"
        if op == Op.createTTL:
            ttl = r.choice([1, 1000, 100000, 0, -1, 1 << 40, (1 << 40) - 1])
            if flags not in (5, 6) and ttl < 0:
                # Apache accepts this one, fails applying it and exits (README, compatibility
                # notes): the rest of the sequence would compare against a dead server
                ttl = 0
            b.long(ttl)
            d += f" ttl={ttl}"
        return b, d

    def multi_ops(self, read: bool) -> tuple[Body, str]:
        r = self.rng
        b = self.body()
        descs = []
        for _ in range(r.randint(0, 4)):
            if read:
                op = r.choice([Op.getData, Op.getChildren, Op.getData, Op.getChildren, Op.create, Op.exists,
                               Op.check, 99])
            else:
                op = r.choice([Op.create, Op.create2, Op.createContainer, Op.createTTL, Op.delete, Op.setData,
                               Op.check, Op.create, Op.delete, Op.setData, Op.getData, Op.getChildren,
                               Op.exists, 99])
            b.int(op).bool(False).int(-1)
            sub, d = self.op_body(op)
            b.raw(sub.bytes())
            descs.append(f"{op}:{d}")
        if r.random() < 0.05:
            b.int(-1).bool(False).int(-1)  # a header that is not "done": the record runs out
            descs.append("unterminated")
        else:
            b.int(-1).bool(True).int(-1)
        return b, "[" + "; ".join(descs) + "]"

    def op_body(self, op: int) -> tuple[Body, str]:
        """A request body for ``op`` and a short description."""
        r = self.rng
        b = self.body()
        if op in (Op.create, Op.create2, Op.createContainer, Op.createTTL):
            return self.create_body(op)
        if op == Op.delete or op == Op.check:
            p, v = self.path(), r.choice(VERSIONS)
            return b.string(p).int(v), f"{describe(p)} v={v}"
        if op in (Op.exists, Op.getData, Op.getChildren, Op.getChildren2):
            p, w = self.path(), r.random() < 0.5
            return b.string(p).bool(w), f"{describe(p)} watch={w}"
        if op == Op.setData:
            p, v = self.path(), r.choice(VERSIONS)
            return b.string(p).buffer(self.data()).int(v), f"{describe(p)} v={v}"
        if op in (Op.getACL, Op.sync, Op.getEphemerals, Op.getAllChildrenNumber, Op.deleteContainer):
            p = self.path() if r.random() < 0.9 else r.choice(["/a/", "/zoo"])
            return b.string(p), describe(p)
        if op == Op.setACL:
            p, acl, v = self.path(), r.choice(ACLS), r.choice(VERSIONS)
            return b.string(p).acl(acl).int(v), f"{describe(p)} acl={describe(acl)} v={v}"
        if op == Op.reconfig:
            joining = r.choice([None, "", "server.2=127.0.0.1:2888:3888;2181", "garbage", "server.1=x"])
            leaving = r.choice([None, "", "1", "2", "x"])
            members = r.choice([None, None, "", "server.1=127.0.0.1:2888:3888;2181"])
            cid = r.choice([-1, -1, 0, 5])
            b.string(joining).string(leaving).string(members).long(cid)
            return b, f"j={joining!r} l={leaving!r} m={members!r} id={cid}"
        if op in (Op.checkWatches, Op.removeWatches):
            p, t = self.path(), r.choice([1, 2, 3, 3, 4, 5, 0, 6, -1])
            return b.string(p).int(t), f"{describe(p)} type={t}"
        if op == Op.addWatch:
            # no null path: Apache takes the watch, then fails to clean up that connection (its
            # other watches stay listed for ever, a close by the server hangs); README
            p, m = self.path(null=False), r.choice([0, 1, 0, 1, 2, -1])
            return b.string(p).int(m), f"{describe(p)} mode={m}"
        if op == Op.auth:
            scheme = r.choice(["digest", "digest", "digest", "digest", "ip", "world", "foo", "super", "digest"])
            auth = r.choice([*USERS, *USERS, "u3:p3", "nocolon", ""]).encode()
            return b.int(0).string(scheme).buffer(auth), f"{scheme} {auth!r}"
        if op in (Op.setWatches, Op.setWatches2):
            lists = [[self.path(0.95, null=i < 3) for _ in range(r.randint(0, 2))]
                     for i in range(3 if op == Op.setWatches else 5)]  # persistent lists: no null (addWatch)
            rel = r.choice([0, 0, 1, 3, 10, 1 << 40])
            b.long(rel)
            for ls in lists:
                b.strings(ls)
            return b, f"rel={rel} {lists}"
        if op in (Op.multi, Op.multiRead):
            return self.multi_ops(op == Op.multiRead)
        if op in (Op.whoAmI, Op.closeSession, Op.ping):
            return b, ""
        # unknown opcodes: a path-shaped body, as a client of a newer version might send
        return b.string(self.path()), "unknown"

    # ---------------------------------------------------------------- steps
    def request(self, slot: int) -> dict[str, Any]:
        r = self.rng
        op = r.choices(
            [Op.create, Op.create2, Op.createContainer, Op.createTTL, Op.delete, Op.deleteContainer, Op.exists,
             Op.getData, Op.setData, Op.getACL, Op.setACL, Op.getChildren, Op.getChildren2, Op.sync, Op.check,
             Op.multi, Op.multiRead, Op.reconfig, Op.checkWatches, Op.removeWatches, Op.auth, Op.setWatches,
             Op.setWatches2, Op.getEphemerals, Op.getAllChildrenNumber, Op.addWatch, Op.whoAmI, Op.closeSession,
             Op.ping, -1],
            weights=[10, 5, 2, 2, 7, 1, 5, 5, 5, 2, 3, 4, 2, 1, 1, 6, 2, 1, 2, 3, 3, 1, 1, 1, 1, 4, 1, 1, 1, 1])[0]
        unknown = op == -1
        if unknown:
            op = r.choice(UNKNOWN_OPS)
        b, d = self.op_body(op)
        raw = b.bytes()
        if b.notes:
            d += " {" + ", ".join(b.notes) + "}"
        if raw and r.random() < self.mangle:
            cut = r.randrange(len(raw))
            raw = raw[:cut]
            d += f" {{cut at {cut}}}"
        elif r.random() < self.mangle:
            raw += b"\x00\x01junk"
            d += " {junk}"
        if unknown:
            # on a connection of its own: Apache closes the connection after it, and a busy
            # Apache now and then leaves that connection's watches behind in wchs/wchc/wchp
            return {"k": "unknown", "op": op, "body": raw.hex(), "d": d}
        xid = {Op.auth: -4, Op.setWatches: -8, Op.setWatches2: -8, Op.ping: -2}.get(op)
        if op == Op.closeSession:
            self.connected.discard(slot)
        return {"k": "req", "c": slot, "op": op, "xid": xid, "body": raw.hex(), "d": d}

    def step(self) -> dict[str, Any]:
        r = self.rng
        free = [s for s in range(SLOTS) if s not in self.connected]
        x = r.random()
        if not self.connected or (free and x < 0.06):
            slot = r.choice(free) if free else 0
            self.connected.add(slot)
            return {"k": "connect", "c": slot}
        if free and x < 0.09:
            slot = r.choice(free)
            self.connected.add(slot)
            return {"k": "attach", "c": slot, "from": r.choice(sorted(self.connected - {slot})),
                    "pw": "wrong" if r.random() < 0.3 else "right"}
        if x < 0.11:
            slot = r.choice(sorted(self.connected))
            self.connected.discard(slot)
            return {"k": "drop", "c": slot}
        if x < 0.15:
            return {"k": "4lw", "w": r.choice(WORDS)}
        return self.request(r.choice(sorted(self.connected)))


def generate(seed: int, steps: int) -> list[dict[str, Any]]:
    """The sequence of ``steps`` steps for ``seed``."""
    g = Generator(seed)
    return [g.step() for _ in range(steps)]
