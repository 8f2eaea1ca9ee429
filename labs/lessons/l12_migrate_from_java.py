"""Lab 12: move a running Apache ZooKeeper ensemble to zkops one server at a time, under a writer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...server.fourletterclient import four_letter_or_empty
from ..lab import Lab
from ..model import Program
from .engine import Check, Context, Lesson, LessonFailed, Step, wait_for
from .l06_kill_leader import Writer

WAIT = 90.0  # migrate's --wait: how long a step may take to become healthy on a loaded machine


def _srvr(host: str, port: int) -> dict[str, str]:
    text = four_letter_or_empty(host, port, "srvr", timeout=1.0)
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def _mntr(host: str, port: int) -> dict[str, str]:
    text = four_letter_or_empty(host, port, "mntr", timeout=1.0)
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def _program(version: str | None) -> str | None:
    if version is None:
        return None
    return Program.ZKOPS.value if "zkops" in version else Program.APACHE.value


class _UpWatch(threading.Thread):
    """Every 50 ms: which servers accept a connection on their client port; keeps the most down at once."""

    def __init__(self, addresses: dict[int, tuple[str, int]]) -> None:
        super().__init__(daemon=True)
        self.addresses = addresses
        self.most_down = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            down = 0
            for host, port in self.addresses.values():
                try:
                    socket.create_connection((host, port), timeout=1).close()
                except OSError:
                    down += 1
            self.most_down = max(self.most_down, down)
            self.stopping.wait(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


@dataclass
class _Run:
    """What lives through the steps: the session clients, the up-watcher, and (from step 2) the writer."""

    up: _UpWatch
    writer: Writer | None = None
    sessions: dict[int, tuple[Any, list[str], int]] = field(default_factory=dict)


_RUNS: dict[int, _Run] = {}


def _lab(ctx: Context) -> Lab:
    if not isinstance(ctx.cluster, Lab):
        raise LessonFailed("this lab needs a `zkops lab` ensemble")
    return ctx.cluster


def _run(ctx: Context) -> _Run:
    try:
        return _RUNS[id(ctx)]
    except KeyError:
        raise LessonFailed("the writer is not running: play the steps in order") from None


def _pause_across(acks: list[float], stop: float, until: float) -> float:
    """The longest wait between acknowledged writes from the last one before ``stop`` (the gap a stop
    opens starts there) to the last one before ``until`` (the next stop's gap belongs to the next step)."""
    lo = max((a for a in acks if a <= stop), default=stop)
    first_after = min((a for a in acks if a > stop), default=until)
    hi = max(max((a for a in acks if a <= until), default=lo), first_after)
    points = [lo, *[a for a in acks if lo < a <= hi]]
    if len(points) < 2:
        return round(hi - lo, 3)
    return round(max(b - a for a, b in zip(points, points[1:], strict=False)), 3)


def _snapshot(lab: Lab) -> dict[str, Any]:
    """Each server's program, mode and epoch, from ``srvr`` (None where nothing serves)."""
    out: dict[str, dict[str, Any]] = {"programs": {}, "modes": {}, "epochs": {}}
    for i in lab.node_ids():
        host, port = lab.address(i)
        text = four_letter_or_empty(host, port, "srvr", timeout=1.0)
        f = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        version = f.get("Zookeeper version")
        if text and version is None:  # in an election: srvr says "not currently serving", envi still answers
            envi = four_letter_or_empty(host, port, "envi", timeout=1.0)
            version = next((line.split("=", 1)[1] for line in envi.splitlines()
                            if line.startswith("zookeeper.version=")), None)
        zxid = int(f["Zxid"], 16) if "Zxid" in f else None
        out["programs"][str(i)] = _program(version)
        out["modes"][str(i)] = f.get("Mode") or ("looking" if text else None)
        out["epochs"][str(i)] = None if zxid is None else zxid >> 32
    return out


def _programs(lab: Lab) -> dict[str, str | None]:
    return {str(s.id): None if s.program is None else s.program.value for s in lab.status()}


def _apache(ctx: Context) -> None:
    lab = _lab(ctx)
    leader = ctx.note("leader_at_start", ctx.leader(timeout=60))
    wait_for(lambda: all(s.mode in ("leader", "follower") for s in lab.status()), 60, "every server to serve")
    status = lab.status()
    ctx.note("programs_at_start", {str(s.id): None if s.program is None else s.program.value for s in status})
    ctx.note("versions_at_start", sorted({s.version or "-" for s in status}))
    ctx.note("epoch_at_start", next(s.epoch for s in status if s.id == leader))
    run = _Run(_UpWatch({i: lab.address(i) for i in lab.node_ids()}))
    _RUNS[id(ctx)] = run

    def stop() -> None:
        if run.writer is not None:
            run.writer.stop.set()
            run.writer.thread.join(10)
        run.up.stop()
        _RUNS.pop(id(ctx), None)

    ctx.on_close(stop)
    run.up.start()
    zk = ctx.client(timeout=30.0)
    zk.ensure_path("/lab12")
    for k in range(10):
        zk.create(f"/lab12/java-{k}", b"written to Apache ZooKeeper")
    for i in lab.node_ids():  # one client per server, that server first: its session must survive the moves
        states: list[str] = []
        c = ctx.client(ids=[i, *[j for j in lab.node_ids() if j != i]], timeout=30.0, randomize_hosts=False)
        c.add_listener(lambda s, states=states: states.append(str(s)))
        c.create(f"/lab12/session-{i}", b"", ephemeral=True)
        run.sessions[i] = (c, states, c.client_id[0])
    ctx.note("sessions_at_start", {str(i): hex(s) for i, (_, _, s) in run.sessions.items()})


def _write(ctx: Context) -> None:
    run = _run(ctx)
    zk = ctx.client(timeout=30.0)
    run.writer = Writer(zk, "/lab12/w-")
    run.writer.thread.start()
    wait_for(lambda: run.writer is not None and len(run.writer.acked) >= 20, 60, "the writer to get going")
    ctx.note("acked_before_migrate", len(run.writer.acked))


def _by_hand(ctx: Context) -> None:
    lab = _lab(ctx)
    leader = ctx.leader(timeout=60)
    ctx.note("leader_before_hand_move", leader)
    node = ctx.note("moved_by_hand", min(i for i in lab.node_ids() if i != leader))
    t0 = time.monotonic()
    lab.kill(node)
    lab.start(node, program=Program.ZKOPS.value)

    def joined() -> bool:
        s = next(s for s in lab.status() if s.id == node)
        return s.program == Program.ZKOPS and s.mode == "follower"

    wait_for(joined, 60, f"node {node} to follow as zkops")
    ctx.note("hand_move_s", round(time.monotonic() - t0, 3))
    ctx.note("leader_after_hand_move", ctx.leader(timeout=60))
    reader = ctx.client(ids=[node], timeout=30.0)
    reader.sync("/lab12")
    ctx.note("java_znodes_on_zkops", sum(1 for k in reader.get_children("/lab12") if k.startswith("java-")))


def _mixed(ctx: Context) -> None:
    lab = _lab(ctx)
    leader = ctx.leader(timeout=60)
    host, port = lab.address(leader)
    voters = len(lab.node_ids()) - len(lab.observer_ids())
    wait_for(lambda: _mntr(host, port).get("zk_synced_followers") == str(voters - 1), 60,
             f"the leader to count {voters - 1} synced followers")
    table: dict[str, dict[str, Any]] = {}
    for i in lab.node_ids():
        h, p = lab.address(i)
        srvr, mntr = _srvr(h, p), _mntr(h, p)
        zxid = int(srvr["Zxid"], 16) if "Zxid" in srvr else None
        table[str(i)] = {"program": _program(srvr.get("Zookeeper version")), "mode": srvr.get("Mode"),
                         "epoch": None if zxid is None else zxid >> 32,
                         "digest_mismatches": mntr.get("zk_digest_mismatches_count"),
                         "znodes": mntr.get("zk_znode_count")}
        ctx.say(f"  node {i}: {srvr.get('Zookeeper version', '-')[:60]}  Mode: {srvr.get('Mode')}")
    ctx.note("mixed", table)
    ctx.note("mixed_synced_followers", _mntr(host, port).get("zk_synced_followers"))


def _migrate(ctx: Context, rollback: bool, check: bool = False,
             on_log: Callable[[str], None] | None = None) -> Any:
    """``zkops migrate [--check] [--rollback] migrate.yaml``, through its Python API; prints its recap."""
    from ...provision.inventory import load
    from ...provision.migrate import migrate

    lab = _lab(ctx)

    def log(text: str) -> None:
        ctx.say(f"  {text}")
        if on_log is not None:
            on_log(text)

    recap = migrate(load(lab.dir / "migrate.yaml"), check=check, rollback=rollback, wait=WAIT, log=log)
    for r in recap.results:
        ctx.say(f"  {r.host:5} {r.task:22} {r.status:8} {r.message}")
    return recap


def _rollback(ctx: Context) -> None:
    lab = _lab(ctx)
    recap = _migrate(ctx, rollback=True)
    ctx.note("rollback_changed", sorted({r.host for r in recap.results if r.status == "changed"}))
    ctx.note("rollback_failed", [f"{r.host}: {r.task}: {r.message}" for r in recap.results if r.status == "failed"])
    ctx.note("programs_after_rollback", _programs(lab))


def _forward(ctx: Context) -> None:
    lab, run = _lab(ctx), _run(ctx)
    if run.writer is None:
        raise LessonFailed("the writer is not running: play the steps in order")
    plan = _migrate(ctx, rollback=False, check=True)
    ctx.note("plan", [r.host for r in plan.results if r.status == "changed"])
    ctx.note("programs_after_check", _programs(lab))
    leader = ctx.leader(timeout=60)
    ctx.note("leader_before_migrate", leader)
    ctx.note("epoch_before_migrate", next(s.epoch for s in lab.status() if s.id == leader))
    t0 = time.monotonic()
    acked0 = len(run.writer.acked)
    stops: list[tuple[float, str, dict[str, Any]]] = []

    def stopped(text: str) -> None:  # migrate's log line, right after it stopped a host's old server
        stops.append((time.monotonic(), text, _snapshot(lab)))

    recap = _migrate(ctx, rollback=False, on_log=stopped)
    t_end = time.monotonic()
    ctx.note("migrate_failed", [f"{r.host}: {r.task}: {r.message}" for r in recap.results if r.status == "failed"])
    ctx.note("migrate_s", round(t_end - t0, 3))
    # migrate says "healthy, zkN is <mode>" just before it takes each host: the order and the roles
    taken = [r for r in recap.results if r.task == "check ensemble" and r.status == "ok"]
    ctx.note("migrate_order", [[r.host, r.message.rsplit(" is ", 1)[-1]] for r in taken])
    # between the steps: what every server said right after each stop, and the writer's longest pause
    # from the last write acknowledged before that stop to the last one before the next stop
    acks = [t for t, _ in run.writer.acked]
    steps = []
    for k, (t, text, seen) in enumerate(stops):
        until = stops[k + 1][0] if k + 1 < len(stops) else t_end
        steps.append({"step": text, "acked": sum(1 for a in acks if a <= t),
                      "longest_pause_s": _pause_across(acks, t, until), **seen})
    for st in steps:
        ctx.say(f"  {st['step']}: programs {st['programs']} modes {st['modes']} epochs {st['epochs']}; "
                f"{st['acked']} writes acknowledged, longest pause {st['longest_pause_s']} s")
    ctx.note("migrate_steps", steps)
    ctx.note("after_migrate", _snapshot(lab))
    ctx.note("acked_during_migrate", sum(1 for t, _ in run.writer.acked[acked0:] if t <= t_end))
    leader = ctx.leader(timeout=60)
    ctx.note("leader_after_migrate", leader)
    ctx.note("epoch_after_migrate", next(s.epoch for s in lab.status() if s.id == leader))


def _tree(zk: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every znode outside /zookeeper: its data and Stat, read level by level with pipelined requests."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    level = ["/"]
    while level:
        pending = [(p, zk.get_async(p), zk.get_children_async(p)) for p in level]
        level = []
        for p, got, kids in pending:
            data, stat = got.get(timeout=30)
            out[p] = (data.hex(), tuple(stat))
            level += [f"{p.rstrip('/')}/{k}" for k in kids.get(timeout=30) if not (p == "/" and k == "zookeeper")]
    return out


def _result(ctx: Context) -> None:
    lab, run = _lab(ctx), _run(ctx)
    if run.writer is None:
        raise LessonFailed("the writer is not running: play the steps in order")
    run.writer.stop.set()
    run.writer.thread.join(30)
    run.up.stop()
    ctx.note("programs_at_end", _programs(lab))
    acked = [p for _, p in run.writer.acked]
    ctx.note("acked_writes", len(acked))
    missing: dict[str, list[str]] = {}
    trees: dict[int, dict[str, tuple[str, tuple[int, ...]]]] = {}
    for i in lab.node_ids():
        reader = ctx.client(ids=[i], timeout=30.0)
        reader.sync("/")  # this server may be a little behind the writer's: catch up first
        have = set(reader.get_children("/lab12"))
        missing[str(i)] = [p for p in acked if p.rsplit("/", 1)[1] not in have][:5]
        trees[i] = _tree(reader)
    ctx.note("acked_missing", {i: m for i, m in missing.items() if m})
    ctx.note("znodes_per_node", {str(i): len(t) for i, t in trees.items()})
    first = trees[lab.node_ids()[0]]
    ctx.note("tree_differences", sorted({p for t in trees.values() for p in set(t) | set(first)
                                         if t.get(p) != first.get(p)})[:5])
    quorum = (len(lab.node_ids()) - len(lab.observer_ids())) // 2 + 1
    ctx.note("quorum", quorum)
    ctx.note("fewest_servers_up", len(lab.node_ids()) - run.up.most_down)
    ctx.note("sessions", {str(i): {"same_session": c.client_id[0] == sid, "lost": "LOST" in states,
                                   "ephemeral_kept": c.exists(f"/lab12/session-{i}") is not None}
                          for i, (c, states, sid) in run.sessions.items()})


def _every(journal: dict[str, Any], key: str, want: str) -> str | None:
    seen = journal[key]
    return None if seen and all(v == want for v in seen.values()) else f"{seen}"


def _followers_first(j: dict[str, Any]) -> str | None:
    roles = [role for _, role in j["migrate_order"]]
    ok = len(roles) == len(j["programs_at_start"]) and roles[-1] == "leader" and set(roles[:-1]) == {"follower"}
    return None if ok else f"moved in this order: {j['migrate_order']}"


def _mixed_served(j: dict[str, Any]) -> str | None:
    m = j["mixed"]
    programs = {v["program"] for v in m.values()}
    modes = sorted(v["mode"] or "-" for v in m.values())
    ok = programs == {"apache", "zkops"} and modes == ["follower", "follower", "leader"]
    return None if ok and j["mixed_synced_followers"] == "2" else f"{m}, synced followers {j['mixed_synced_followers']}"


def _sessions_kept(j: dict[str, Any]) -> str | None:
    bad = {i: s for i, s in j["sessions"].items() if not s["same_session"] or s["lost"] or not s["ephemeral_kept"]}
    return None if not bad else f"{bad}"


LESSON = Lesson(
    number=12, slug="migrate-from-java", title="Migrate a running Apache ZooKeeper ensemble to zkops", minutes=40,
    program=Program.APACHE.value,
    prerequisites=("labs 1 and 6",
                   "Java and Apache ZooKeeper 3.8 (Debian: `apt-get install zookeeper default-jre-headless`)"),
    goal="Replace the Java servers of a live ensemble by zkops one at a time while a client writes: see a "
         "mixed ensemble serve, roll a server back, and lose neither a write nor a session.",
    background=(
        "zkops speaks Apache ZooKeeper 3.8's election and quorum protocol and reads and writes its\n"
        "dataDir (snapshots, transaction logs, myid, the epoch files), so a Java server can be stopped\n"
        "and zkops started on the same zoo.cfg and dataDir: it rejoins the ensemble where the Java\n"
        "server left it, and the ensemble keeps its quorum as long as only one server is away. An\n"
        "ensemble of Apache and zkops servers is an ordinary ensemble: whichever leads, the others\n"
        "follow it with the same proposals, the same txn digests and the same tree. `zkops migrate`\n"
        "does the move for every host of an inventory: it checks that the ensemble is healthy and\n"
        "every voter synced, stops one Java server, starts zkops on its files, waits until it is\n"
        "synced, and only then takes the next one, followers first and the leader last.\n"
        "`--rollback` is the same play the other way."),
    steps=[
        Step("An Apache ZooKeeper ensemble", "Bring up three Java servers. `zkops lab status` says which\n"
             "program serves on each node (the server column, from `srvr`'s version line), the leader\n"
             "and the epoch. The lab also wrote `migrate.yaml`, the inventory `zkops migrate` needs: how\n"
             "each Java server runs (its command, zoo.cfg and pid file). Write a few znodes, and connect one\n"
             "client per server (that server first in its list) holding an ephemeral znode in a 30 s\n"
             "session: these sessions must survive everything that follows.",
             ("zkops lab up --apache", "zkops lab status", "echo srvr | nc 127.0.0.1 <client port>",
              "cat ~/.local/state/zkops/lab/migrate.yaml", "zkcli -server <one server> create -e /lab12/session-1"),
             _apache),
        Step("A client writes", "Start a client creating sequential znodes through every server as fast as\n"
             "they are acknowledged. It runs through the move by hand, the rollback and the whole migration;\n"
             "each acknowledged name is noted.",
             ("zkops lab watch /lab12 &", "zkcli -server <all servers> create -s /lab12/w- x"), _write),
        Step("Move one follower by hand", "What migrate does for one host: stop a follower's Java server and\n"
             "start zkops on the same zoo.cfg and dataDir. It reads Java's snapshot and txn log, and rejoins\n"
             "as a follower of the Java leader, with the znodes written to Java.",
             ("zkops lab kill <follower>", "zkops lab start <follower> --as zkops", "zkops lab status"),
             _by_hand),
        Step("Look at the mixed ensemble", "Two Java servers and one zkops server in one ensemble. Ask each\n"
             "with `srvr` and `mntr`: the version line, the mode, the epoch, the leader's\n"
             "zk_synced_followers (the zkops follower counts) and zk_digest_mismatches_count on each\n"
             "server (every server checks each transaction's digest against its own tree).",
             ("echo srvr | nc 127.0.0.1 <port>", "echo mntr | nc 127.0.0.1 <port> | grep -e synced -e digest"),
             _mixed),
        Step("Roll it back with zkops migrate --rollback", "`--rollback` puts Java back on the hosts that run\n"
             "zkops: here only the one you moved. Java reads what zkops wrote in the meantime.",
             ("zkops migrate --rollback ~/.local/state/zkops/lab/migrate.yaml", "zkops lab status"), _rollback),
        Step("Migrate the ensemble with zkops migrate", "First `--check` (it says what it would change and\n"
             "changes nothing), then the real run. Watch `zkops lab status -f` in another terminal: one\n"
             "server away at a time, the followers first; when the leader's turn comes the others elect a\n"
             "new leader in a new epoch. The lab prints, right after each server is stopped, the programs,\n"
             "modes and epochs, the writes acknowledged so far and the writer's longest pause in that step.",
             ("zkops migrate --check ~/.local/state/zkops/lab/migrate.yaml",
              "zkops migrate ~/.local/state/zkops/lab/migrate.yaml", "zkops lab status -f"), _forward),
        Step("Check the result", "Stop the writer. Every node runs zkops; every acknowledged write is on\n"
             "every server; every server has the same tree (data and Stat of every znode); the session\n"
             "clients kept their sessions and ephemeral znodes.",
             ("zkops lab status", "zkcli -server <each server> ls /lab12 | wc -l"), _result),
    ],
    questions=[
        ("Why does migrate move the followers first?",
         "Stopping a follower costs nothing but its own clients' connections: the leader keeps a quorum "
         "with the others and writes go on without a pause. Moving the followers first also means that "
         "when the leader's turn comes, the new leader is elected among servers that already run zkops, "
         "so the ensemble changes leader once, not at every step."),
        ("Why the leader last?",
         "Stopping the leader always costs an election (writes pause for it, the epoch goes up) and "
         "sessions move to the new leader. Doing it once, at the end, pays that price once; doing it "
         "first would pay it, then elect a Java server that has to be moved (and elected away from) "
         "again."),
        ("What happens to the sessions of the clients connected to the server being moved?",
         "Their TCP connection closes; the client library reconnects to another server of its list with "
         "the same session id and password, within the session timeout, and the session, its ephemeral "
         "znodes and its watches carry on (the session lives in the ensemble, not in one server). Only "
         "requests in flight see a ConnectionLoss. A session expires only if the client cannot reach a "
         "serving server for its whole timeout."),
        ("What would happen if two servers of the three were moved at once?",
         "Only one server would be left, which is no quorum of three: the ensemble stops serving reads "
         "and writes until one of them is back and synced (if the leader was among them, after a new "
         "election). No acknowledged write is lost, but clients see an outage and sessions can expire. "
         "That is why migrate waits until the ensemble is healthy, every voter synced, before taking the "
         "next host, and refuses to start when it is not."),
        ("Why can the rollback be trusted?",
         "zkops writes Apache's formats (snapshots, txn logs, epoch files), so the Java server starts on "
         "what zkops wrote, and the Java server speaks the same protocol to the others."),
    ],
    checks=[
        Check("every node ran Apache ZooKeeper at the start",
              lambda j: _every(j, "programs_at_start", "apache")),
        Check("the follower moved by hand served the znodes written to Java, under the same leader",
              lambda j: None if j["java_znodes_on_zkops"] == 10 and j["leader_after_hand_move"] == j["leader_before_hand_move"]
              else f"{j['java_znodes_on_zkops']} of 10 znodes, leader {j['leader_before_hand_move']} -> "
                   f"{j['leader_after_hand_move']}"),
        Check("the mixed ensemble served: Apache and zkops servers, one leader, every follower synced",
              _mixed_served),
        Check("no server of the mixed ensemble counted a txn digest mismatch",
              lambda j: None if all(v["digest_mismatches"] == "0" for v in j["mixed"].values())
              else f"{ {i: v['digest_mismatches'] for i, v in j['mixed'].items()} }"),
        Check("`zkops migrate --rollback` moved back only the node that ran zkops, and Java served everywhere",
              lambda j: None if j["rollback_changed"] == [f"zk{j['moved_by_hand']}"] and not j["rollback_failed"]
              and all(v == "apache" for v in j["programs_after_rollback"].values())
              else f"changed {j['rollback_changed']}, failed {j['rollback_failed']}, {j['programs_after_rollback']}"),
        Check("`zkops migrate --check` changed nothing", lambda j: _every(j, "programs_after_check", "apache")),
        Check("`zkops migrate` moved the followers first and the leader last", _followers_first),
        Check("the epoch went up when the leader was moved",
              lambda j: None if j["epoch_after_migrate"] > j["epoch_before_migrate"] and not j["migrate_failed"]
              else f"epoch {j['epoch_before_migrate']} -> {j['epoch_after_migrate']}, failed {j['migrate_failed']}"),
        Check("every node runs zkops at the end", lambda j: _every(j, "programs_at_end", "zkops")),
        Check("no acknowledged write of the writer lost (on any server)",
              lambda j: None if j["acked_writes"] > 0 and j["acked_during_migrate"] > 0 and not j["acked_missing"]
              else f"{j['acked_writes']} acknowledged, missing {j['acked_missing']}"),
        Check("the same tree on every node", lambda j: None if not j["tree_differences"]
              else f"differences at {j['tree_differences']} ({j['znodes_per_node']} znodes)"),
        Check("never fewer than a quorum of servers up (one server away at a time)",
              lambda j: None if j["fewest_servers_up"] >= j["quorum"]
              else f"only {j['fewest_servers_up']} up at one moment, quorum {j['quorum']}"),
        Check("every session survived the moves (same session, ephemeral znode kept)", _sessions_kept),
    ],
    mistakes=[
        "Restarting the Java server with a fresh dataDir, or zkops with a dataDir of its own: the server "
        "then joins with no history and must be sent a full snapshot; worse, with a wrong myid it takes "
        "another server's place.",
        "Moving the next server before the previous one is synced (`zk_synced_followers` on the leader): "
        "two servers away at once is no quorum.",
        "Reading the pause of the leader's step as lost writes: the writer's ConnectionLoss is retried, "
        "and every acknowledged write is still there afterwards.",
    ],
    timing="40 minutes: 5 to bring up the Java ensemble (a JVM takes a few seconds per server), 10 for the "
           "move by hand and the mixed ensemble, 15 for the rollback and the migration, 10 for the questions. "
           "Expected: the mixed ensemble serves with the Java leader and 2 synced followers, 0 digest "
           "mismatches everywhere; `--rollback` touches one host; `zkops migrate` takes the two followers, "
           "then the leader, in a few seconds each; the epoch goes up by one at the leader's step only; the "
           "writer pauses at a follower's step only when it was connected to that follower (it reconnects "
           "elsewhere: about a second), and for about one election (0.2-3 s on a loaded machine) at the "
           "leader's; no acknowledged write lost, the same tree everywhere, and every "
           "session kept.",
)
