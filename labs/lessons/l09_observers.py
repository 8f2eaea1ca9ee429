"""Lab 9: an observer serves reads and forwards writes but does not vote."""

from __future__ import annotations

from .engine import Check, Context, Lesson, Step, wait_for
from .l08_quorum_arithmetic import writable


def _roles(ctx: Context) -> None:
    ctx.leader()
    obs = ctx.cluster.observer_ids()[0]
    wait_for(lambda: ctx.cluster.modes().get(obs) == "observer", 60, "the observer to sync")
    ctx.note("observer", obs)
    ctx.note("modes", {str(k): v for k, v in ctx.cluster.modes().items()})


def _serve(ctx: Context) -> None:
    obs = ctx.journal["observer"]
    voters = [i for i in ctx.cluster.node_ids() if i != obs]
    via_voter = ctx.client(ids=voters)
    via_voter.ensure_path("/lab9")
    via_voter.set("/lab9", b"from a voter")
    via_observer = ctx.client(ids=[obs])
    via_observer.sync("/lab9")
    ctx.note("observer_reads", via_observer.get("/lab9")[0].decode())
    via_observer.set("/lab9", b"through the observer")
    via_voter.sync("/lab9")  # the voter it reads from may not have applied the commit yet
    ctx.note("voter_reads_forwarded_write", via_voter.get("/lab9")[0].decode())


def _quorum(ctx: Context) -> None:
    obs = ctx.journal["observer"]
    voters = [i for i in ctx.cluster.node_ids() if i != obs]
    ctx.cluster.kill(obs)
    ctx.note("writable_without_observer", writable(ctx, voters))
    ctx.cluster.start(obs)
    wait_for(lambda: ctx.cluster.modes().get(obs) == "observer", 60, "the observer to come back")
    for v in voters[1:]:
        ctx.cluster.kill(v)
    ctx.note("writable_with_observer_and_one_voter", writable(ctx, [voters[0], obs], timeout=8.0))
    events = ctx.cluster.election_events()
    ctx.note("observer_ever_elected", any(e.get("kind") == "leader_elected" and e.get("peer") == obs
                                          for e in events))


LESSON = Lesson(
    number=9, slug="observers", title="Observers", minutes=20, observers=1,
    goal="Add an observer, see it serve reads and forward writes, and see that it never counts for a quorum.",
    background=(
        "An observer receives the committed history like a follower and serves clients, but it does not\n"
        "vote in elections or acknowledge proposals. Observers scale reads (and clients in far data\n"
        "centres) without making every write wait for more servers, and without changing how many\n"
        "failures the voters tolerate."),
    steps=[
        Step("Roles", "Bring up three voters and one observer; `srvr` on the observer says Mode: observer.",
             ("zkops lab up --nodes 3 --observers 1", "zkops lab status"), _roles),
        Step("Reads and writes through the observer", "Write through a voter and read on the observer (after\n"
             "`sync`); write through the observer and read on a voter.",
             ("zkcli -server <observer> sync /lab9", "zkcli -server <observer> get /lab9",
              "zkcli -server <observer> set /lab9 x"), _serve),
        Step("The observer does not vote", "Kill the observer: writes go on. Bring it back, kill two voters:\n"
             "the observer and the last voter are not a quorum.",
             ("zkops lab kill <observer>", "zkops lab start <observer>", "zkops lab kill <voter>"), _quorum),
    ],
    questions=[
        ("Why do writes through the observer still work?", "It forwards them to the leader, like a follower."),
        ("Why did the observer plus one voter not take writes?", "The quorum is 2 of the 3 voters; the "
         "observer's presence does not count."),
        ("When would you add observers instead of voters?", "To serve more reads or remote clients without "
         "slowing writes or changing the quorum."),
    ],
    checks=[
        Check("the observer says observer; one leader among the voters", lambda j: None if j["modes"][str(
            j["observer"])] == "observer" and list(j["modes"].values()).count("leader") == 1 else f"{j['modes']}"),
        Check("the observer serves reads", lambda j: None if j["observer_reads"] == "from a voter"
              else f"read {j['observer_reads']}"),
        Check("writes through the observer reach the voters", lambda j: None if j[
            "voter_reads_forwarded_write"] == "through the observer" else "not forwarded"),
        Check("killing the observer does not stop writes",
              lambda j: None if j["writable_without_observer"] else "writes stopped"),
        Check("an observer and one voter are no quorum",
              lambda j: None if not j["writable_with_observer_and_one_voter"] else "they took writes"),
        Check("the observer was never elected", lambda j: None if not j["observer_ever_elected"] else "it was"),
    ],
    mistakes=["Adding observers to survive more failures: only voters count."],
    timing="20 minutes.",
)
