"""Lab 1: bring up an ensemble, find the leader, read every field of a Stat."""

from __future__ import annotations

from ...server.fourletterclient import four_letter_or_empty
from .engine import Check, Context, Lesson, Step


def _up(ctx: Context) -> None:
    from .engine import wait_for

    leader = ctx.leader()
    # a quorum serves first; the last server joins a moment later
    wait_for(lambda: all(m is not None for m in ctx.cluster.modes().values()), 60, "every server to join")
    ctx.note("leader", leader)
    ctx.note("modes", {str(k): v for k, v in ctx.cluster.modes().items()})


def _srvr(ctx: Context) -> None:
    reply = four_letter_or_empty(*ctx.cluster.address(ctx.journal["leader"]), "srvr", 3.0)
    ctx.say(reply)
    ctx.note("srvr_mode", next((ln[6:] for ln in reply.splitlines() if ln.startswith("Mode: ")), None))


def _stat(ctx: Context) -> None:
    zk = ctx.client()
    if zk.exists("/lab1"):
        zk.delete("/lab1", recursive=True)
    zk.create("/lab1", b"hello")
    _, st = zk.get("/lab1")
    ctx.note("created", _fields(st))
    zk.set("/lab1", b"hello again")
    _, st = zk.get("/lab1")
    ctx.note("after_set", _fields(st))
    zk.create("/lab1/child", b"")
    _, st = zk.get("/lab1")
    ctx.note("after_child", _fields(st))
    _, child = zk.get("/lab1/child")
    ctx.note("child_czxid", child.czxid)


def _fields(st: object) -> dict[str, int]:
    names = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
             "dataLength", "numChildren", "pzxid")
    return {n: getattr(st, n) for n in names}


def _one_leader(j: dict) -> str | None:
    modes = j["modes"]
    leaders = [k for k, v in modes.items() if v == "leader"]
    if len(leaders) != 1:
        return f"expected exactly one leader, saw modes {modes}"
    if sorted(v for v in modes.values() if v != "leader") != ["follower"] * (len(modes) - 1):
        return f"every other server should be a follower, saw {modes}"
    return None


def _created(j: dict) -> str | None:
    c = j["created"]
    if not (c["czxid"] == c["mzxid"] == c["pzxid"]):
        return f"a new znode has czxid = mzxid = pzxid, saw {c}"
    if (c["version"], c["cversion"], c["numChildren"], c["ephemeralOwner"], c["dataLength"]) != (0, 0, 0, 0, 5):
        return f"a new persistent znode with 5 bytes has version 0, no children, owner 0: {c}"
    return None


def _after_set(j: dict) -> str | None:
    c, s = j["created"], j["after_set"]
    if s["version"] != 1 or s["mzxid"] <= c["mzxid"] or s["czxid"] != c["czxid"] or s["dataLength"] != 11:
        return f"setData bumps version and mzxid, keeps czxid, updates dataLength: {c} -> {s}"
    if s["pzxid"] != c["pzxid"] or s["cversion"] != 0:
        return "setData does not touch cversion or pzxid"
    return None


def _after_child(j: dict) -> str | None:
    s, k = j["after_set"], j["after_child"]
    if (k["cversion"], k["numChildren"], k["version"]) != (1, 1, 1) or k["pzxid"] != j["child_czxid"]:
        return f"a child bumps cversion and numChildren and sets pzxid to the child's czxid: {k}"
    if k["mzxid"] != s["mzxid"]:
        return "a child does not change the parent's mzxid"
    return None


LESSON = Lesson(
    number=1, slug="first-ensemble", title="First ensemble", minutes=20,
    goal="Bring up a three-server ensemble, find its leader, and read every field of a znode's Stat.",
    background=(
        "A ZooKeeper ensemble is a few servers that agree on one ordered history of changes. One of\n"
        "them is the leader: it orders every write and proposes it to the others (the followers);\n"
        "a write is committed once a majority (a quorum) has logged it. Every change gets a zxid,\n"
        "a 64-bit number whose high 32 bits are the leader's epoch and low 32 bits a counter.\n"
        "Each znode carries a Stat: the zxids that created it (czxid) and last changed its data\n"
        "(mzxid) and its children (pzxid), three version counters (data, children, ACL), the\n"
        "owner session of an ephemeral node, the data length and the number of children."),
    steps=[
        Step("Bring up the ensemble",
             "Start three servers on this machine. Each one gets its own client port, data directory\n"
             "and myid; they find each other on the quorum and election ports listed in zoo.cfg.",
             ("zkops lab up --nodes 3", "zkops lab status"), _up),
        Step("Ask a server who it is",
             "The four-letter word `srvr` answers with the server's version, its latency, the last\n"
             "zxid it saw and its Mode: leader, follower or observer.",
             ("echo srvr | nc 127.0.0.1 <client port of node 1>",), _srvr),
        Step("Create a znode and read its Stat",
             "Create /lab1, change its data, then give it a child. Read the Stat after each change\n"
             "and write down which fields moved.",
             ("zkcli -server 127.0.0.1:<port> create /lab1 hello", "zkcli -server 127.0.0.1:<port> stat /lab1",
              "zkcli -server 127.0.0.1:<port> set /lab1 'hello again'",
              "zkcli -server 127.0.0.1:<port> create /lab1/child", "zkcli -server 127.0.0.1:<port> stat /lab1"),
             _stat),
    ],
    questions=[
        ("How many servers answered `Mode: leader`? What are the others?",
         "Exactly one leader; the other two are followers."),
        ("Which Stat fields changed when you ran `set`, and which did not?",
         "version went 0 -> 1, mzxid and mtime moved to the set's zxid and time, dataLength changed; "
         "czxid, ctime, cversion and pzxid stayed."),
        ("Which fields changed when /lab1 got a child?",
         "cversion 0 -> 1, numChildren 0 -> 1, pzxid became the child's czxid; mzxid and version did not move."),
        ("Why are czxid, mzxid and pzxid equal right after create?",
         "One transaction created the node: it is the last change to its data and to its (empty) child list."),
    ],
    checks=[
        Check("exactly one leader, the others followers", _one_leader),
        Check("srvr named the leader's mode", lambda j: None if j["srvr_mode"] == "leader"
              else f"srvr said Mode: {j['srvr_mode']}"),
        Check("a fresh znode: czxid = mzxid = pzxid, versions 0, dataLength 5", _created),
        Check("set: version 1, newer mzxid, same czxid/pzxid/cversion", _after_set),
        Check("a child: cversion 1, numChildren 1, pzxid = the child's czxid", _after_child),
    ],
    mistakes=[
        "Reading mzxid as 'the zxid of the last change to the node or its children': children move pzxid.",
        "Expecting the leader to be node 1: it is usually the highest myid that started together "
        "with a majority (lab 5 explains why).",
    ],
    timing="5 minutes to bring up and find the leader, 15 for the Stat walk-through.",
)
