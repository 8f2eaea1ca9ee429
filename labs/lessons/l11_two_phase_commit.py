"""Lab 11: two-phase commit on ZooKeeper, a coordinator crash that blocks it, and ZAB that does not block."""

from __future__ import annotations

import threading
import time

from .engine import Check, Context, Lesson, Step, wait_for
from .l06_kill_leader import Writer

PARTICIPANTS = ("p1", "p2", "p3")


def _participant(ctx: Context, tx: str, name: str, vote: str, outcome: dict[str, str | None],
                 wait: float) -> None:
    """Vote, then wait for the coordinator's decision in the transaction node's data."""
    zk = ctx.client()
    decided = threading.Event()

    def on_tx(data: bytes | None, stat: object) -> None:
        if data:
            outcome[name] = data.decode()
            decided.set()

    zk.DataWatch(tx)(on_tx)
    zk.set(f"{tx}/{name}", vote.encode())
    if not decided.wait(wait):
        outcome[name] = None  # voted, cannot decide alone: blocked


def _coordinate(ctx: Context, tx: str, votes: dict[str, str], crash_before_decision: bool,
                wait: float) -> dict[str, str | None]:
    coordinator = ctx.client()
    coordinator.ensure_path("/lab11")
    if coordinator.exists(tx):
        coordinator.delete(tx, recursive=True)
    coordinator.create(tx, b"")
    for p in PARTICIPANTS:
        coordinator.create(f"{tx}/{p}", b"")
    outcome: dict[str, str | None] = {}
    threads = [threading.Thread(target=_participant, args=(ctx, tx, p, votes[p], outcome, wait), daemon=True)
               for p in PARTICIPANTS]
    for t in threads:
        t.start()

    def all_voted() -> bool:
        return all(coordinator.get(f"{tx}/{p}")[0] for p in PARTICIPANTS)

    wait_for(all_voted, 20, "every participant's vote")
    if crash_before_decision:
        coordinator.stop()  # the coordinator's process dies between the votes and the decision
        coordinator.close()
    else:
        decision = "commit" if all(coordinator.get(f"{tx}/{p}")[0] == b"commit" for p in PARTICIPANTS) else "abort"
        coordinator.set(tx, decision.encode())
    for t in threads:
        t.join(wait + 10)
    return outcome


def _happy(ctx: Context) -> None:
    ctx.note("all_commit", _coordinate(ctx, "/lab11/tx1", dict.fromkeys(PARTICIPANTS, "commit"), False, 10))
    votes = {"p1": "commit", "p2": "abort", "p3": "commit"}
    ctx.note("one_abort", _coordinate(ctx, "/lab11/tx2", votes, False, 10))


def _crash(ctx: Context) -> None:
    ctx.note("coordinator_crashed", _coordinate(ctx, "/lab11/tx3", dict.fromkeys(PARTICIPANTS, "commit"), True, 5))


def _zab(ctx: Context) -> None:
    leader = ctx.leader()
    zk = ctx.client(timeout=10.0)
    zk.ensure_path("/lab6")
    writer = Writer(zk)
    writer.thread.start()
    wait_for(lambda: len(writer.acked) >= 10, 30, "writes")
    t_kill = time.monotonic()
    ctx.cluster.kill(leader)
    wait_for(lambda: writer.acked[-1][0] > t_kill, 60, "writes after the leader crash")
    writer.stop.set()
    writer.thread.join(10)
    survivors = [i for i in ctx.cluster.node_ids() if i != leader]
    reader = ctx.client(ids=survivors)
    reader.sync("/lab6")  # the writer's server may be ahead of the reader's: catch up first
    present = set(reader.get_children("/lab6"))
    ctx.note("zab_writes_after_crash", sum(1 for t, _ in writer.acked if t > t_kill))
    ctx.note("zab_acked_missing", [p for _, p in writer.acked if p.rsplit("/", 1)[1] not in present])
    ctx.cluster.start(leader)


LESSON = Lesson(
    number=11, slug="two-phase-commit", title="Two-phase commit, and why ZAB does not block", minutes=35,
    prerequisites=("labs 3, 6 and 10",),
    goal="Run two-phase commit over znodes, crash its coordinator between the votes and the decision, "
         "and contrast with ZAB surviving a leader crash.",
    background=(
        "In two-phase commit a coordinator asks every participant to vote; if all vote commit it decides\n"
        "commit, else abort, and tells everyone. A participant that voted commit has promised to commit\n"
        "if told so: until it hears the decision it can neither commit nor abort. If the coordinator\n"
        "crashes after the votes, the participants block (three-phase commit adds a pre-commit round\n"
        "to avoid this under some failure assumptions). ZooKeeper's recipe keeps the transaction in\n"
        "znodes (/lab11/tx with one child per participant holding its vote, the decision in the\n"
        "transaction node). ZAB itself is also a two-phase protocol (propose, acknowledge, commit), but\n"
        "it needs only a majority and any member of a majority can take over as leader with the\n"
        "whole committed history: a leader crash costs an election, not a blocked system."),
    steps=[
        Step("Two-phase commit", "Run a transaction where everyone votes commit, then one where p2 votes abort.",
             ("create /lab11/tx1", "create /lab11/tx1/p1 ...", "get -w /lab11/tx1", "set /lab11/tx1/p1 commit"),
             _happy),
        Step("Crash the coordinator", "This time the coordinator dies after collecting the votes. Do the\n"
             "participants learn the outcome?", (), _crash),
        Step("Contrast with ZAB", "Kill the ZooKeeper leader while a client writes: an election later, writes\n"
             "continue, nothing acknowledged is lost.", ("zkops lab kill <leader>",), _zab),
    ],
    questions=[
        ("Why can p1 not simply commit after the coordinator crashed?", "The coordinator might have decided "
         "abort (another vote or its own failure) and told someone else; committing could disagree."),
        ("Why does ZAB not block when its leader crashes?", "Commitment needs only a majority, the new leader "
         "is elected by a majority and has every committed proposal, and it finishes what was in flight."),
    ],
    checks=[
        Check("everyone committed when all voted commit", lambda j: None if set(j["all_commit"].values()) == {
            "commit"} and len(j["all_commit"]) == 3 else f"{j['all_commit']}"),
        Check("one abort vote aborted the transaction for all", lambda j: None if set(j["one_abort"].values()) == {
            "abort"} else f"{j['one_abort']}"),
        Check("after the coordinator's crash every participant is blocked", lambda j: None if list(
            j["coordinator_crashed"].values()) == [None] * 3 else f"{j['coordinator_crashed']}"),
        Check("ZAB took writes after its leader crashed and lost none", lambda j: None if j[
            "zab_writes_after_crash"] > 0 and not j["zab_acked_missing"] else "writes lost or blocked"),
    ],
    mistakes=["Believing ZooKeeper makes 2PC non-blocking: it stores the votes durably, but the decision "
              "still waits for the coordinator (or a recovery protocol)."],
    timing="35 minutes.",
)
