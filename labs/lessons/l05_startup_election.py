"""Lab 5: start servers one at a time and predict the leader from (epoch, zxid, myid)."""

from __future__ import annotations

import time

from .engine import Check, Context, Lesson, Step, wait_for


def _one(ctx: Context) -> None:
    ctx.cluster.start(1)
    time.sleep(3)  # long enough for several election rounds
    ctx.note("alone_mode", ctx.cluster.modes().get(1))


def _two(ctx: Context) -> None:
    ctx.note("prediction_with_2", 2)
    ctx.cluster.start(2)
    ctx.note("leader_with_2", ctx.leader(among=[1, 2]))


def _three(ctx: Context) -> None:
    ctx.cluster.start(3)
    wait_for(lambda: ctx.cluster.modes().get(3) == "follower", 60, "node 3 to join")
    ctx.note("modes_with_3", {str(k): v for k, v in ctx.cluster.modes().items()})
    elected = [e for e in ctx.cluster.election_events() if e.get("kind") == "leader_elected"]
    ctx.note("timeline_leaders", sorted({e.get("peer") for e in elected}))


LESSON = Lesson(
    number=5, slug="startup-election", title="Start-up election", minutes=20, start_all=False,
    goal="Start the servers one by one and predict, before each start, who will lead.",
    background=(
        "A server that starts (or loses its leader) is LOOKING: it votes for itself and sends its vote\n"
        "(proposed leader, its last zxid, its epoch) to everyone. On receiving a better vote it\n"
        "switches: higher epoch wins, then higher zxid (more history), then higher myid. Once a\n"
        "majority of the voters agree on one server, that server leads and the rest follow. A lone\n"
        "server of a three-server ensemble can never gather a majority, so it stays LOOKING and\n"
        "does not serve. A server that starts after an election joins the existing leader, even\n"
        "if its myid is higher: a running ensemble does not re-elect just because a server arrives."),
    steps=[
        Step("Start server 1 alone", "It votes for itself and waits for a majority that does not come.\n"
             "`srvr` says it is not serving.", ("zkops lab up --nodes 3 --no-start", "zkops lab start 1",
                                              "echo srvr | nc 127.0.0.1 <port of 1>"), _one),
        Step("Start server 2", "Predict: both have zxid 0 and epoch 0, so the higher myid wins: 2.",
             ("zkops lab start 2", "zkops lab status", "zkops lab elections",
              "zkops lab ui  # Elections tab: replay the votes one by one, with the reason for each change"), _two),
        Step("Start server 3", "Predict: 3 has the highest myid, but a leader already runs with a quorum.",
             ("zkops lab start 3", "zkops lab status"), _three),
    ],
    questions=[
        ("Why did server 1 alone not serve?", "One vote out of three is not a majority (two are needed)."),
        ("Why did 2 win over 1?", "Same epoch and zxid; the tie is broken by the higher myid."),
        ("Why does 3 follow 2 although its myid is higher?",
         "2 was already elected with a quorum; 3 learns of the established leader and follows it."),
        ("If 1 had a higher zxid than 2, who would have won?", "1: zxid is compared before myid."),
    ],
    checks=[
        Check("a lone server is not serving", lambda j: None if j["alone_mode"] in (None, "looking")
              else f"it said Mode: {j['alone_mode']}"),
        Check("with 1 and 2, server 2 leads as predicted",
              lambda j: None if j["leader_with_2"] == j["prediction_with_2"] else f"{j['leader_with_2']} led"),
        Check("3 joined as a follower of 2", lambda j: None if j["modes_with_3"] == {
            "1": "follower", "2": "leader", "3": "follower"} else f"modes {j['modes_with_3']}"),
        Check("the election timeline names 2 as the elected leader",
              lambda j: None if j["timeline_leaders"] == [2] else f"timeline elected {j['timeline_leaders']}"),
    ],
    mistakes=["Expecting the highest myid to lead always: only among servers with the same epoch and zxid "
              "that are looking at the same time."],
    timing="20 minutes.",
)
