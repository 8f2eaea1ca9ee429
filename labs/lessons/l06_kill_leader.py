"""Lab 6: kill the leader, predict the next one, time the outage, see writes resume."""

from __future__ import annotations

import threading
import time

from .. import registers
from .engine import Check, Context, Lesson, LessonFailed, Step, predicted_leader, wait_for


class Writer:
    """Creates sequential znodes as fast as the ensemble acknowledges them, noting each ack."""

    def __init__(self, zk: object, prefix: str = "/lab6/w-") -> None:
        self.zk = zk
        self.prefix = prefix
        self.acked: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                path = self.zk.create(self.prefix, b"", sequence=True)  # type: ignore[attr-defined]
                self.acked.append((time.monotonic(), path))
            except Exception:  # noqa: BLE001 - connection loss during the election: retry
                time.sleep(0.02)


def _events_by_server(events: list[dict]) -> dict[int, list[dict]]:
    """Election events per server, in the order each server wrote them."""
    out: dict[int, list[dict]] = {}
    for e in events:
        if isinstance(e.get("server"), int):
            out.setdefault(e["server"], []).append(e)
    return out


def first_own_votes(events: list[dict], before: dict[int, int]) -> dict[int, int]:
    """Each server's first vote for itself among the events it wrote after its first
    ``before[server]`` ones: server -> the zxid it voted with."""
    own: dict[int, int] = {}
    for sid, evs in _events_by_server(events).items():
        for e in evs[before.get(sid, 0):]:
            vote = e.get("vote")
            if e.get("kind") == "vote_sent" and vote and vote.get("leader") == sid:
                own[sid] = int(vote["zxid"], 16)
                break
    return own


def _prepare(ctx: Context) -> None:
    leader = ctx.note("leader_before", ctx.leader())
    zk = ctx.client()
    zk.ensure_path("/lab6")
    if zk.exists("/lab6/register"):
        zk.set("/lab6/register", b"0")
    else:
        zk.create("/lab6/register", b"0")
    for i in range(20):
        zk.set("/lab6", str(i).encode())
    zxids = {i: z for i, z in ctx.cluster.zxids().items() if i != leader}
    ctx.note("survivor_zxids", {str(k): hex(v) if v is not None else None for k, v in zxids.items()})
    ctx.note("prediction", predicted_leader(zxids))


def _kill(ctx: Context) -> None:
    leader = ctx.journal["leader_before"]
    zk = ctx.client(timeout=10.0)
    writer = Writer(zk)
    writer.thread.start()
    # two more clients read, write and compare-and-set one znode throughout: `lab check` grades their history
    regs = registers.Registers("/lab6/register", [ctx.cluster.connect_string()] * 2).start()
    wait_for(lambda: len(writer.acked) >= 20, 30, "the writer to get going")
    wait_for(lambda: regs.completed() >= 10, 60, "the register clients to get going")
    # what each server had recorded before the kill: the election after it is what comes next
    # (counted, not timed: a VM's clock can be seconds off the host's)
    recorded = _events_by_server(ctx.cluster.election_events())
    counts_before = {sid: len(evs) for sid, evs in recorded.items()}
    t_kill = time.monotonic()
    ctx.cluster.kill(leader)
    survivors = [i for i in ctx.cluster.node_ids() if i != leader]
    new_leader = ctx.leader(among=survivors, timeout=60)
    ctx.note("leader_after", new_leader)
    # each survivor's first vote is for itself with the last zxid it logged: the rule picks from those
    own: dict[int, int] = {}

    def own_votes() -> bool:
        own.update(first_own_votes(ctx.cluster.election_events(), counts_before))
        return all(s in own for s in survivors)

    try:  # a server's events reach its file (and a VM's file the host) a moment after they happen
        wait_for(own_votes, 30, "every survivor's first vote", interval=0.5)
    except LessonFailed:  # judged with the votes that did arrive
        pass
    ctx.note("zxids_at_election", {str(k): hex(v) for k, v in sorted(own.items())})
    ctx.note("rule_winner", predicted_leader(own) if own else None)
    wait_for(lambda: writer.acked and writer.acked[-1][0] > t_kill, 60, "writes to resume")
    done = regs.completed()  # and some register operations after the election too
    wait_for(lambda: regs.completed() >= done + 20, 60, "register operations after the election")
    ctx.journal["register_initial"] = 0
    ctx.journal[registers.JOURNAL_KEY] = regs.stop()
    ctx.note("register_operations", sum(1 for e in ctx.journal[registers.JOURNAL_KEY] if e["kind"] != "invoke"))
    writer.stop.set()
    writer.thread.join(10)
    before = [t for t, _ in writer.acked if t <= t_kill]
    after = [t for t, _ in writer.acked if t > t_kill]
    ctx.note("outage_s", round(after[0] - (before[-1] if before else t_kill), 3))
    acked = [p for _, p in writer.acked]
    reader = ctx.client(ids=survivors)
    reader.sync("/lab6")  # the writer's server may be ahead of the reader's: catch up first
    present = set(reader.get_children("/lab6"))
    ctx.note("acked_writes", len(acked))
    ctx.note("acked_missing", [p for p in acked if p.rsplit("/", 1)[1] not in present])
    ctx.cluster.start(leader)
    wait_for(lambda: ctx.cluster.modes().get(leader) == "follower", 60, "the old leader to rejoin")
    ctx.note("old_leader_rejoined_as", ctx.cluster.modes().get(leader))


LESSON = Lesson(
    number=6, slug="kill-leader", title="Kill the leader", minutes=25,
    goal="Kill the leader while a client writes, predict its successor, time the outage and check that "
         "no acknowledged write was lost.",
    background=(
        "When followers lose their leader they go LOOKING and elect a new one among themselves: the\n"
        "highest (epoch, zxid, myid) wins, so the server with the most history leads. Every write the\n"
        "old leader acknowledged had been logged by a majority, and any two majorities intersect,\n"
        "so the new leader (elected by a majority, with the highest zxid in it) has every one of them.\n"
        "Clients see a connection loss, reconnect to a survivor, and carry on with the same session."),
    steps=[
        Step("Predict", "Find the leader and the last zxid of every other server (`srvr`). Who will lead\n"
             "if the leader dies?", ("zkops lab status",), _prepare),
        Step("Kill it", "Start a client writing in a loop, kill the leader with SIGKILL, and watch the\n"
             "election, the client reconnecting and the writes resuming. Then restart the old leader.",
             ("zkops lab kill <leader>", "zkops lab elections", "zkops lab status", "zkops lab start <leader>",
              "zkops lab ui  # kill from the page, watch the new leader drawn, replay the election"),
             _kill),
    ],
    questions=[
        ("Who won, and was it your prediction?",
         "The survivor with the highest zxid, ties broken by the highest myid; usually the highest myid, "
         "because followers are in sync. With a client writing, one follower may have logged a proposal the "
         "other has not when the leader dies: then it wins whatever its myid, so a prediction made from "
         "`srvr` a moment earlier can miss. `zkops lab elections` shows the zxid each survivor voted with."),
        ("How long were writes blocked? What does it depend on?",
         "Detection (the followers notice at once when the TCP connection breaks, or after syncLimit ticks "
         "of silence), the election (a few message rounds), and syncing the new followers."),
        ("Was any acknowledged write lost?", "No: each was on a majority, and the new leader is in every "
         "majority of the survivors' votes with the most complete history."),
        ("What does the old leader become when it comes back?", "A follower of the new epoch's leader."),
    ],
    checks=[
        Check("the survivor with the highest (zxid, myid) when the election began became leader",
              lambda j: None if j["leader_after"] == j["rule_winner"]
              else f"the votes favoured {j['rule_winner']} ({j['zxids_at_election']}), {j['leader_after']} won"),
        Check("writes resumed after an outage of less than 30 s",
              lambda j: None if j["outage_s"] < 30 else f"outage {j['outage_s']} s"),
        Check("no acknowledged write lost", lambda j: None if not j["acked_missing"] and j["acked_writes"] > 0
              else f"missing {j['acked_missing'][:5]}"),
        Check("the clients' reads and writes of /lab6/register are linearizable (see them in `zkops lab ui`)",
              registers.problem),
        Check("the old leader came back as a follower",
              lambda j: None if j["old_leader_rejoined_as"] == "follower" else j["old_leader_rejoined_as"]),
    ],
    mistakes=["Reading a ConnectionLoss as a failed write: the write may or may not have happened; only "
              "acknowledged writes are guaranteed (and kazoo's retry may apply a create twice unless the "
              "recipe guards against it)."],
    timing="25 minutes.",
)
