"""Kept cases written by hand, for fixes the seeded runs found in longer sequences (and for
the two stories in issue 17: the reconfig stall and the /zookeeper children).

    python -m tests.fuzz.handmade [--save] [NAME...]   # compare (and save as kept cases)
"""

from __future__ import annotations

import sys
from typing import Any

from tests.fuzz.body import Body
from tests.fuzz.differential import check, save_case
from zkops.server.acl import digest

Step = dict[str, Any]
OPEN = [(31, "world", "anyone")]
U1 = [(31, "digest", digest("u1:p1"))]


def req(c: int, op: int, body: bytes, d: str, xid: int | None = None) -> Step:
    return {"k": "req", "c": c, "op": op, "xid": xid, "body": body.hex(), "d": d}


def conn(c: int) -> Step:
    return {"k": "connect", "c": c}


def create(c: int, path: str, acl: list = OPEN, flags: int = 0) -> Step:
    return req(c, 1, Body().string(path).buffer(b"x").acl(acl).int(flags).bytes(), f"create {path} flags={flags}")


def cr(path: str, flags: int = 0, acl: list = OPEN) -> bytes:
    return Body().string(path).buffer(b"").acl(acl).int(flags).bytes()


def auth(c: int, user: str) -> Step:
    return req(c, 100, Body().int(0).string("digest").buffer(user.encode()).bytes(), f"auth {user}", -4)


def exists(c: int, path: str, w: bool = True) -> Step:
    return req(c, 3, Body().string(path).bool(w).bytes(), f"exists {path} watch={w}")


def getdata(c: int, path: str, w: bool = True) -> Step:
    return req(c, 4, Body().string(path).bool(w).bytes(), f"getData {path} watch={w}")


def children(c: int, path: str, w: bool = True) -> Step:
    return req(c, 8, Body().string(path).bool(w).bytes(), f"getChildren {path} watch={w}")


def setdata(c: int, path: str) -> Step:
    return req(c, 5, Body().string(path).buffer(b"y").int(-1).bytes(), f"setData {path}")


def delete(c: int, path: str) -> Step:
    return req(c, 2, Body().string(path).int(-1).bytes(), f"delete {path}")


def addwatch(c: int, path: str, mode: int) -> Step:
    return req(c, 106, Body().string(path).int(mode).bytes(), f"addWatch {path} mode={mode}")


def rmwatch(c: int, path: str, t: int) -> Step:
    return req(c, 18, Body().string(path).int(t).bytes(), f"removeWatches {path} type={t}")


def _ops(ops: list[tuple[int, bytes]]) -> bytes:
    b = Body()
    for op, sub in ops:
        b.int(op).bool(False).int(-1).raw(sub)
    return b.int(-1).bool(True).int(-1).bytes()


def multi(c: int, ops: list[tuple[int, bytes]], d: str) -> Step:
    return req(c, 14, _ops(ops), d)


def multiread(c: int, ops: list[tuple[int, bytes]], d: str) -> Step:
    return req(c, 22, _ops(ops), d)


CASES = {
 "whoami-order-and-addauth-ip": ("whoAmI lists ids in Apache's set order; addauth ip succeeds; super is not an ACL scheme a client may set",
   [conn(0), auth(0, "u2:p2"), auth(0, "u1:p1"), req(0, 100, Body().int(0).string("ip").buffer(b"x").bytes(), "auth ip", -4),
    req(0, 107, b"", "whoAmI"), create(0, "/s", [(31, "super", "")]), req(0, 107, b"", "whoAmI")]),
 "multi-create-flags": ("in a multi create, create2 and createContainer become the op their flags name (create2 answers as create, flag 4 a container); a top-level create with flag 4 is a plain node",
   [conn(0), multi(0, [(15, cr("/m1")), (19, cr("/m2", 1)), (1, cr("/m3", 4)), (21, Body().string("/m4").buffer(b"").acl(OPEN).int(0).long(5).bytes()),
                      (21, Body().string("/m5").buffer(b"").acl(OPEN).int(5).long(5000).bytes())], "[create2; createContainer flags 1; create flags 4; createTTL flags 0; createTTL flags 5]"),
    create(0, "/c4", flags=4), req(0, 15, cr("/c5", 4), "create2 /c5 flags=4"),
    multi(0, [(1, cr("/m6")), (15, cr("/m7", 5))], "[create; create2 with a TTL flag]")]),
 "multiread-stops-at-a-write-op": ("a multiRead answers MarshallingError at the first write op, with the results before it",
   [conn(0), create(0, "/r"), multiread(0, [(4, Body().string("/r").bool(True).bytes()), (8, Body().string("/nope").bool(False).bytes()),
                                            (13, Body().string("/r").int(-1).bytes()), (4, Body().string("/r").bool(False).bytes())], "[getData; getChildren; check; getData]"),
    setdata(0, "/r")]),
 "malformed-reconfig-takes-no-zxid": ("a reconfig whose body does not decode is MarshallingError and takes no zxid (Apache decodes it before it makes a txn); a whole one takes a zxid",
   [conn(0), req(0, 16, Body().string("x").bytes(), "reconfig cut short"), create(0, "/r"),
    req(0, 16, Body().string(None).string("1").string(None).long(-1).bytes(), "reconfig leaving=1"), create(0, "/s")]),
 "multi-null-path-skips-a-zxid": ("a multi op with a null path: MarshallingError with an empty result list, no txn, and its zxid is skipped",
   [conn(0), multi(0, [(1, Body().string("/m").buffer(b"").acl(OPEN).int(0).bytes()), (2, Body().string(None).int(-1).bytes())], "[create /m; delete None]"),
    create(0, "/n"), multi(0, [(5, Body().string("/n").buffer(b"z").int(-1).bytes())], "[setData /n]")]),

 "events-only-to-readers": ("ZOOKEEPER-4799: watch events go only to connections with READ on the node (the parent for child events)",
   [conn(0), conn(1), auth(1, "u1:p1"), exists(0, "/p"), children(0, "/"), addwatch(0, "/q", 1),
    create(1, "/p", U1), create(1, "/q", U1), create(1, "/q/r", U1), setdata(1, "/q/r"), delete(1, "/q/r"), delete(1, "/p"),
    {"k":"4lw","w":"wchs"}, {"k":"4lw","w":"wchc"}]),
 "one-shot-after-persistent": ("a one-shot watch set after a persistent one on the same path makes it one-shot again (Apache's WatcherModeManager)",
   [conn(0), create(0, "/w"), addwatch(0, "/w", 0), getdata(0, "/w"), setdata(0, "/w"), setdata(0, "/w"),
    addwatch(0, "/w", 1), children(0, "/w"), create(0, "/w/c"), delete(0, "/w/c"), setdata(0, "/w"),
    {"k":"4lw","w":"wchs"}, {"k":"4lw","w":"wchp"}]),
 "remove-watches-covers-persistent": ("removeWatches of type Data or Children removes a persistent watch from that table; wchs keeps the emptied connection",
   [conn(0), create(0, "/w"), addwatch(0, "/w", 0), rmwatch(0, "/w", 2), setdata(0, "/w"), create(0, "/w/c"),
    rmwatch(0, "/w", 1), create(0, "/w/d"), {"k":"4lw","w":"wchs"}, {"k":"4lw","w":"wchc"},
    getdata(0, "/w"), setdata(0, "/w"), {"k":"4lw","w":"wchs"}, {"k":"4lw","w":"wchc"}]),
 "zookeeper-children-deletable": ("a client's children of /zookeeper and /zookeeper/quota can be deleted again; the system nodes cannot",
   [conn(0), create(0, "/zookeeper/x"), create(0, "/zookeeper/quota/q"), create(0, "/zookeeper/quota/q/r"),
    delete(0, "/zookeeper/quota/q/r"), delete(0, "/zookeeper/quota/q"), delete(0, "/zookeeper/x"),
    delete(0, "/zookeeper/quota"), delete(0, "/zookeeper/config"), delete(0, "/zookeeper"), delete(0, "/")]),
}


def main(argv: list[str]) -> int:
    save = "--save" in argv
    names = [a for a in argv if not a.startswith("-")]
    differing = 0
    for name, (why, steps) in CASES.items():
        if names and name not in names:
            continue
        d = check(steps)
        differing += d is not None and d.known is None
        print(name, "same" if d is None else ("known" if d.known else f"DIFFERS\n{d}"))
        if save:
            save_case(name, steps, why)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
