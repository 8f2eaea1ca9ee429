"""Lab 8: how many failures 3, 4 and 5 servers survive, shown by killing them one by one."""

from __future__ import annotations

import time

from .. import registers
from .engine import Check, Context, Lesson, Step, wait_for


def writable(ctx: Context, ids: list[int], timeout: float = 15.0) -> bool:
    """Can a client connected to ``ids`` get a write acknowledged within ``timeout`` seconds?"""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=ctx.cluster.connect_string(ids), timeout=5.0,
                     connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    deadline = time.monotonic() + timeout
    try:
        zk.start(timeout=timeout)
        while time.monotonic() < deadline:
            try:
                zk.create("/lab8-", b"", sequence=True, ephemeral=True)
                return True
            except Exception:  # noqa: BLE001 - no quorum yet: ConnectionLoss, NotReadOnly, ...
                time.sleep(0.2)
        return False
    except Exception:  # noqa: BLE001 - could not even connect: nobody serves
        return False
    finally:
        zk.stop()
        zk.close()


def _survive(size: int):  # noqa: ANN202 - a step function
    def run(ctx: Context) -> None:
        if len(ctx.cluster.node_ids()) != size:
            ctx.recreate(size)
        ctx.leader(timeout=60)
        regs = None
        if size == 3:  # clients on a register while servers die: `lab check` grades their history
            zk = ctx.client()
            if zk.exists("/lab8-register"):
                zk.set("/lab8-register", b"0")
            else:
                zk.create("/lab8-register", b"0")
            regs = registers.Registers("/lab8-register", [ctx.cluster.connect_string()] * 2).start()
            wait_for(lambda: regs.completed() >= 10, 60, "the register clients to get going")
        alive = list(ctx.cluster.node_ids())
        survived = 0
        while alive:
            victim = alive.pop()  # highest myid first
            ctx.cluster.kill(victim)
            if not writable(ctx, alive, timeout=20.0 if len(alive) > size // 2 else 8.0):
                break
            survived += 1
        ctx.note(f"survived_{size}", survived)
        if regs is not None:
            ctx.journal["register_initial"] = 0
            ctx.journal[registers.JOURNAL_KEY] = regs.stop()

    return run


LESSON = Lesson(
    number=8, slug="quorum-arithmetic", title="Quorum arithmetic", minutes=25,
    goal="Find out by killing servers how many failures ensembles of 3, 4 and 5 survive.",
    background=(
        "A quorum is a strict majority of the voters: floor(n/2) + 1. An ensemble keeps taking writes\n"
        "while a quorum is alive, so it survives n - (floor(n/2) + 1) failures: 1 for 3 servers, 1 for\n"
        "4, 2 for 5. A fourth server adds no tolerance (the quorum grows from 2 to 3) but adds one more\n"
        "server every write must wait for and one more machine that can fail: odd sizes are the rule."),
    steps=[
        Step("Three servers", "Kill servers one at a time; after each, try a write through the survivors.",
             ("zkops lab up --nodes 3", "zkops lab kill 3", "zkcli ... create /x", "zkops lab kill 2",
              "zkops lab check 08  # grades the clients' register history; `zkops lab ui` draws it"),
             _survive(3)),
        Step("Four servers", "The same with four. Predict first.", ("zkops lab up --nodes 4",), _survive(4)),
        Step("Five servers", "And with five.", ("zkops lab up --nodes 5",), _survive(5)),
    ],
    questions=[
        ("How many failures did each size survive?", "3: 1, 4: 1, 5: 2."),
        ("Why is 4 no better than 3?", "Its quorum is 3: with two down, two of four are not a majority."),
        ("Why do the survivors refuse writes when they are fewer than a quorum, even though they are up?",
         "They cannot know whether the others are dead or just cut off and serving a majority elsewhere."),
    ],
    checks=[
        Check("the clients' operations on /lab8-register, while servers died, are linearizable "
              "(see them in `zkops lab ui`)", registers.problem),
        Check("3 servers survived exactly 1 failure", lambda j: None if j["survived_3"] == 1 else f"{j['survived_3']}"),
        Check("4 servers survived exactly 1 failure", lambda j: None if j["survived_4"] == 1 else f"{j['survived_4']}"),
        Check("5 servers survived exactly 2 failures", lambda j: None if j["survived_5"] == 2 else f"{j['survived_5']}"),
    ],
    mistakes=["Counting observers in the quorum: they do not vote (lab 9)."],
    timing="25 minutes (elections after each kill take a few seconds).",
)
