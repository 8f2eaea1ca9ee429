"""Lab 2: persistent, ephemeral and sequential znodes; versions and optimistic locking."""

from __future__ import annotations

import re

from .engine import Check, Context, Lesson, Step


def _kinds(ctx: Context) -> None:
    owner = ctx.client()
    other = ctx.client()
    if other.exists("/lab2"):
        other.delete("/lab2", recursive=True)
    other.create("/lab2", b"")
    owner.create("/lab2/persistent", b"stays")
    owner.create("/lab2/ephemeral", b"goes", ephemeral=True)
    seq = [owner.create("/lab2/job-", b"", sequence=True) for _ in range(3)]
    seq.append(owner.create("/lab2/job-", b"", sequence=True, ephemeral=True))
    ctx.note("sequential", seq)
    _, st = other.get("/lab2/ephemeral")
    ctx.note("ephemeral_owner_is_session", st.ephemeralOwner == owner.client_id[0])
    from kazoo.exceptions import NoChildrenForEphemeralsError

    try:
        owner.create("/lab2/ephemeral/child", b"")
        ctx.note("ephemeral_child", "created")
    except NoChildrenForEphemeralsError:
        ctx.note("ephemeral_child", "NoChildrenForEphemerals")
    owner.stop()
    owner.close()
    other.sync("/lab2")  # the session's close is committed; make sure other's server applied it
    ctx.note("after_close", sorted(other.get_children("/lab2")))


def _versions(ctx: Context) -> None:
    from kazoo.exceptions import BadVersionError

    zk = ctx.client()
    zk.create("/lab2/counter", b"0")
    data, st = zk.get("/lab2/counter")
    zk.set("/lab2/counter", str(int(data) + 1).encode(), version=st.version)  # succeeds: version 0
    try:
        zk.set("/lab2/counter", b"99", version=st.version)  # stale: version is 1 now
        ctx.note("stale_set", "accepted")
    except BadVersionError:
        ctx.note("stale_set", "BadVersion")
    # Optimistic locking: two writers increment with compare-and-set, retrying on BadVersion.
    a, b = zk, ctx.client()
    retries = 0
    for _ in range(10):
        for c in (a, b):
            while True:
                data, st = c.get("/lab2/counter")
                try:
                    c.set("/lab2/counter", str(int(data) + 1).encode(), version=st.version)
                    break
                except BadVersionError:
                    retries += 1
    zk.sync("/lab2/counter")  # b wrote last, perhaps through another server
    data, st = zk.get("/lab2/counter")
    ctx.note("counter", int(data))
    ctx.note("counter_version", st.version)


def _sequential(j: dict) -> str | None:
    names = [s.rsplit("/", 1)[1] for s in j["sequential"]]
    if not all(re.fullmatch(r"job-\d{10}", n) for n in names):
        return f"sequential names end in 10 digits: {names}"
    nums = [int(n[4:]) for n in names]
    if nums != sorted(nums) or len(set(nums)) != len(nums):
        return f"suffixes increase: {nums}"
    return None


LESSON = Lesson(
    number=2, slug="znodes", title="Znodes: persistent, ephemeral, sequential, versions", minutes=25,
    goal="Create each kind of znode, see which survive their session, and update data safely with versions.",
    background=(
        "A znode is persistent (it stays until deleted) or ephemeral (it is deleted when the session\n"
        "that created it ends). Either kind can be sequential: ZooKeeper appends a 10-digit counter\n"
        "kept by the parent, so concurrent clients get unique, ordered names. Ephemerals cannot\n"
        "have children, because their life is tied to one session. Every setData can name the\n"
        "version it expects; if someone changed the node in between, the write fails with\n"
        "BadVersion instead of overwriting their change: optimistic locking."),
    steps=[
        Step("Persistent, ephemeral and sequential nodes",
             "In one session create a persistent node, an ephemeral node and some sequential ones.\n"
             "Try to give the ephemeral a child. Then close that session and list /lab2 again from\n"
             "another client.",
             ("zkcli -server 127.0.0.1:<port> create /lab2", "create /lab2/persistent stays",
              "create -e /lab2/ephemeral goes", "create -s /lab2/job-", "create -s -e /lab2/job-",
              "create /lab2/ephemeral/child", "quit", "zkcli -server 127.0.0.1:<port> ls /lab2"), _kinds),
        Step("Versions and optimistic locking",
             "Set /lab2/counter with the version you read, then again with the same (now stale)\n"
             "version. Then let two clients increment the counter ten times each with\n"
             "read-modify-write and retry on BadVersion.",
             ("create /lab2/counter 0", "get -s /lab2/counter", "set -v 0 /lab2/counter 1",
              "set -v 0 /lab2/counter 99"), _versions),
    ],
    questions=[
        ("What happened to /lab2/ephemeral and to the ephemeral sequential node when the session closed?",
         "Both were deleted with the session; the persistent and persistent sequential nodes stayed."),
        ("Why can an ephemeral node not have children?",
         "Its children would outlive it or have to die with another session's node; ZooKeeper forbids it "
         "(NoChildrenForEphemerals)."),
        ("Why did the second `set -v 0` fail?", "The first set moved the version to 1; the stale version 0 "
         "no longer matches, so the server refuses with BadVersion instead of losing an update."),
        ("After 20 increments by two clients with compare-and-set, what is the counter?",
         "21 (it started at 0 and was set to 1 first): no increment was lost, whatever the interleaving."),
    ],
    checks=[
        Check("sequential names: 10-digit, increasing suffixes", _sequential),
        Check("the ephemeral's ephemeralOwner is the creating session",
              lambda j: None if j["ephemeral_owner_is_session"] else "ephemeralOwner should be the session id"),
        Check("an ephemeral cannot have children",
              lambda j: None if j["ephemeral_child"] == "NoChildrenForEphemerals" else "the child was created"),
        Check("closing the session removed the ephemerals only",
              lambda j: None if j["after_close"] == sorted(["persistent", *[
                  s.rsplit("/", 1)[1] for s in j["sequential"][:3]]]) else f"left: {j['after_close']}"),
        Check("a stale version is refused with BadVersion",
              lambda j: None if j["stale_set"] == "BadVersion" else "the stale write was accepted"),
        Check("no increment lost under compare-and-set",
              lambda j: None if j["counter"] == 21 and j["counter_version"] == 21
              else f"counter {j['counter']} (version {j['counter_version']}), expected 21"),
    ],
    mistakes=[
        "Expecting a sequential suffix to restart at 0 after deleting children: the counter only grows "
        "(it counts creations under the parent).",
        "Forgetting -v: a plain `set` always wins and silently overwrites someone else's change.",
    ],
    timing="10 minutes for the kinds of nodes, 15 for versions.",
)
