"""Lab 7: cut the leader off; the majority elects, the old leader's unacknowledged write vanishes."""

from __future__ import annotations

from .. import registers
from .engine import Check, Context, Lesson, Step, wait_for


def _isolate(ctx: Context) -> None:
    leader = ctx.note("leader_before", ctx.leader())
    setup = ctx.client()
    if setup.exists("/lab7"):
        setup.delete("/lab7", recursive=True)
    setup.create("/lab7", b"")
    setup.create("/lab7/register", b"0")
    majority = [i for i in ctx.cluster.node_ids() if i != leader]
    # clients on the register throughout: one only on the leader (it writes; a cut-off leader may
    # answer reads from its old state until it steps down: ZooKeeper's reads are sequentially
    # consistent, not linearizable) and two on the majority; `lab check` grades their history
    regs = registers.Registers("/lab7/register", [ctx.cluster.connect_string([leader])]
                               + [ctx.cluster.connect_string(majority)] * 2, reads=[False, True, True]).start()
    wait_for(lambda: regs.completed() >= 10, 60, "the register clients to get going")
    lonely = ctx.client(ids=[leader], command_retry=None, connection_retry={"max_tries": -1, "delay": 0.1})
    ctx.cluster.isolate(leader)
    pending = lonely.create_async("/lab7/doomed", b"written to a leader without a quorum")
    try:
        pending.get(timeout=30)
        ctx.note("doomed_write", "acknowledged")
    except Exception as exc:  # noqa: BLE001 - ConnectionLoss, or a timeout of our wait
        ctx.note("doomed_write", type(exc).__name__)
    wait_for(lambda: ctx.cluster.modes().get(leader) != "leader", 60, "the cut-off leader to step down")
    ctx.note("old_leader_mode_while_cut", ctx.cluster.modes().get(leader))
    ctx.note("leader_of_majority", ctx.leader(among=majority, timeout=60))
    zk = ctx.client(ids=majority)
    zk.create("/lab7/majority", b"written during the partition")
    ctx.note("majority_write", "acknowledged")
    ctx.journal["register_initial"] = 0
    ctx.journal[registers.JOURNAL_KEY] = regs.stop()


def _heal(ctx: Context) -> None:
    old = ctx.journal["leader_before"]
    ctx.cluster.heal()
    wait_for(lambda: ctx.cluster.modes().get(old) == "follower", 60, "the old leader to rejoin")
    ctx.note("old_leader_mode_after_heal", ctx.cluster.modes().get(old))
    zk = ctx.client(ids=[old])
    zk.sync("/lab7")
    ctx.note("children_seen_by_old_leader", sorted(c for c in zk.get_children("/lab7") if c != "register"))


LESSON = Lesson(
    number=7, slug="partition", title="Network partition", minutes=30,
    goal="Isolate the leader, see the majority carry on without it, heal, and see the old leader give up "
         "what it never committed.",
    background=(
        "A leader keeps its role only while a quorum of followers answers it (within syncLimit\n"
        "ticks). Cut off in a minority, it stops serving and goes LOOKING, while the majority elects a\n"
        "new leader in a new epoch and carries on. Writes the old leader received after the cut were\n"
        "logged by it alone: never acknowledged, never committed. When the partition heals, the old\n"
        "leader syncs from the new one, which tells it to truncate that uncommitted tail. There cannot\n"
        "be two serving leaders: each needs a majority, and two majorities share a server, which\n"
        "follows only the newest epoch."),
    steps=[
        Step("Isolate the leader", "Cut the leader's links to the other servers. A client connected\n"
             "only to the old leader tries a write; another client writes through the majority.",
             ("zkops lab isolate <leader>", "zkcli -server <old leader> create /lab7/doomed",
              "zkops lab status", "zkcli -server <a survivor> create /lab7/majority"), _isolate),
        Step("Heal", "Restore the network and see the old leader rejoin as a follower. List /lab7 on it.",
             ("zkops lab heal", "zkops lab status", "zkcli -server <old leader> ls /lab7",
              "zkops lab ui  # drag servers into groups to partition; cut links drawn red"), _heal),
    ],
    questions=[
        ("What happened to the write sent to the isolated leader?", "It was never acknowledged (the client "
         "saw ConnectionLoss) and after healing it does not exist anywhere."),
        ("What did the isolated leader do?", "Stopped serving after syncLimit ticks without a quorum and "
         "went LOOKING; it cannot win an election alone."),
        ("Why is split brain impossible?", "Serving requires a majority; two majorities of the same "
         "ensemble intersect, and the shared server accepts only the newest epoch's leader."),
    ],
    checks=[
        Check("the clients' operations on /lab7/register are linearizable (see them in `zkops lab ui`)",
              registers.problem),
        Check("the write to the cut-off leader was not acknowledged",
              lambda j: None if j["doomed_write"] != "acknowledged" else "the lonely leader acknowledged it"),
        Check("the cut-off leader stopped leading", lambda j: None if j["old_leader_mode_while_cut"] != "leader"
              else "it still said leader"),
        Check("the majority elected another leader and took writes",
              lambda j: None if j["leader_of_majority"] != j["leader_before"] and j["majority_write"] == "acknowledged"
              else "the majority did not elect a new leader"),
        Check("after healing the old leader follows and has the majority's write, not its own",
              lambda j: None if j["old_leader_mode_after_heal"] == "follower" and j[
                  "children_seen_by_old_leader"] == ["majority"] else f"it sees {j['children_seen_by_old_leader']}"),
    ],
    mistakes=["Thinking the old leader's log 'wins' because it is longer: the new epoch wins; what the old "
              "leader never committed is truncated."],
    timing="30 minutes.",
)
