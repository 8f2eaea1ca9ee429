"""Lab 4: session timeout negotiation, expiry, and moving a session to another server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

from ...server.fourletterclient import four_letter_or_empty
from .engine import Check, Context, Lesson, LessonFailed, Step, wait_for

_HOLDER = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=float(sys.argv[2]))
zk.start(timeout=30)
zk.ensure_path('/lab4')
zk.create('/lab4/holder', b'', ephemeral=True)
print('ready', flush=True)
time.sleep(3600)
"""


def _conf(ctx: Context) -> dict[str, int]:
    node = ctx.cluster.node_ids()[0]
    reply = four_letter_or_empty(*ctx.cluster.address(node), "conf", 3.0)
    conf = dict(ln.split("=", 1) for ln in reply.splitlines() if "=" in ln)
    return {k: int(conf[k]) for k in ("tickTime", "minSessionTimeout", "maxSessionTimeout")}


def _session_timeout(ctx: Context, session_id: int) -> tuple[int, int] | None:
    """(node, negotiated timeout in ms) from `cons` on whichever server holds the session."""
    for node in ctx.cluster.node_ids():
        for line in four_letter_or_empty(*ctx.cluster.address(node), "cons", 3.0).splitlines():
            if f"sid=0x{session_id:x}," in line:
                m = re.search(r",to=(\d+),", line)
                if m:
                    return node, int(m.group(1))
    return None


def _negotiate(ctx: Context) -> None:
    limits = ctx.note("server_limits", _conf(ctx))
    for key, asked_ms in (("below_min", limits["minSessionTimeout"] // 2),
                          ("above_max", limits["maxSessionTimeout"] * 2)):
        zk = ctx.client(timeout=asked_ms / 1000)

        def session(zk: Any = zk) -> tuple[int, int] | None:  # zk: a KazooClient
            return _session_timeout(ctx, zk.client_id[0])

        found = wait_for(session, 10, "the session in `cons`")
        ctx.note(f"asked_{key}", asked_ms)
        ctx.note(f"negotiated_{key}", found[1])


def _expiry(ctx: Context) -> None:
    conf = ctx.journal["server_limits"]
    asked = conf["minSessionTimeout"] * 2 / 1000
    watcher = ctx.client()
    if watcher.exists("/lab4/holder"):
        watcher.delete("/lab4/holder")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, ctx.cluster.connect_string(), str(asked)],
                              stdout=subprocess.PIPE, text=True)
    try:
        if holder.stdout is None or holder.stdout.readline().strip() != "ready":
            raise LessonFailed("the holder client did not start")
        ctx.note("holder_timeout_ms", int(asked * 1000))
        # the holder may have created its node through another server: sync, or the watcher's
        # server may not have it yet and it would look gone at once
        watcher.sync("/lab4")
        os.kill(holder.pid, signal.SIGSTOP)  # as a long GC pause or a frozen VM would
        t0 = time.monotonic()
        wait_for(lambda: watcher.exists("/lab4/holder") is None, asked * 4 + 30, "the ephemeral to vanish")
        ctx.note("ephemeral_gone_after_s", round(time.monotonic() - t0, 2))
    finally:
        holder.kill()
        holder.wait()


def _move(ctx: Context) -> None:
    zk = ctx.client(timeout=10.0)
    zk.ensure_path("/lab4")
    if zk.exists("/lab4/mine"):
        zk.delete("/lab4/mine")
    zk.create("/lab4/mine", b"", ephemeral=True)
    session = zk.client_id[0]
    node, _ = wait_for(lambda: _session_timeout(ctx, session), 10, "the session in `cons`")
    ctx.note("first_server", node)
    ctx.cluster.kill(node)
    others = [i for i in ctx.cluster.node_ids() if i != node]
    moved = wait_for(lambda: _session_timeout(ctx, session), 60, "the session to reconnect elsewhere")
    ctx.note("second_server", moved[0])
    ctx.note("same_session", zk.client_id[0] == session)
    reader = ctx.client(ids=others)
    reader.sync("/lab4")
    ctx.note("ephemeral_kept", reader.exists("/lab4/mine") is not None)
    ctx.cluster.start(node)
    ctx.leader()


def _expiry_window(j: dict) -> str | None:
    t, tick = j["holder_timeout_ms"] / 1000, j["server_limits"]["tickTime"] / 1000
    gone = j["ephemeral_gone_after_s"]
    # the client's last ping came up to a third of the timeout before the pause; the
    # server expires sessions at tick boundaries, and the leader has to commit the deletes
    if not (t / 2 <= gone <= t + 2 * tick + 5):
        return f"the ephemeral vanished after {gone} s; a {t} s session should expire after about {t} s"
    return None


LESSON = Lesson(
    number=4, slug="sessions", title="Sessions: timeouts, expiry and reconnecting", minutes=25,
    goal="Negotiate a session timeout, watch a silent client's session expire, and keep a session "
         "alive across a server crash.",
    background=(
        "A client opens a session with one server and asks for a timeout; the server clamps it to\n"
        "minSessionTimeout..maxSessionTimeout (2 and 20 ticks by default). The client pings when\n"
        "idle. If the ensemble hears nothing for the whole timeout, the leader expires the session\n"
        "and deletes its ephemeral nodes. Sessions are checked in tick-sized buckets, so expiry\n"
        "happens at a tick boundary, up to one tick late. If the client's server dies, the client\n"
        "reconnects to another server with the same session id and password: as long as that\n"
        "happens within the timeout, the session and its ephemerals survive."),
    steps=[
        Step("Negotiate", "Read minSessionTimeout and maxSessionTimeout in `conf`. Connect asking for half\n"
             "the minimum, then for twice the maximum; read the granted timeout in `cons` (`to=`).",
             ("zkcli -server 127.0.0.1:<port> -timeout <min/2>", "echo cons | nc 127.0.0.1 <port>",
              "echo conf | nc 127.0.0.1 <port>"), _negotiate),
        Step("Expire", "A client creates an ephemeral node and then freezes (SIGSTOP, like a long GC\n"
             "pause). Time how long the ephemeral survives.",
             ("python3 holder.py & kill -STOP $!", "zkcli ... stat /lab4/holder   (repeat)"), _expiry),
        Step("Move", "Connect to the ensemble, create an ephemeral, find the server holding the session\n"
             "with `cons`, kill it, and see the client reconnect elsewhere with the same session.",
             ("create -e /lab4/mine", "zkops lab kill <node>", "echo cons | nc ...", "zkops lab start <node>"),
             _move),
    ],
    questions=[
        ("You asked for half the minimum. What did you get and why?",
         "minSessionTimeout (2 x tickTime by default): the server raises timeouts below its minimum."),
        ("You asked for twice the maximum. What did you get?", "maxSessionTimeout, 20 ticks by default."),
        ("Why did the frozen client's ephemeral not vanish at exactly the timeout?",
         "The last ping was some time before the freeze, and expiry runs at tick boundaries: it happens "
         "between (timeout - ping interval) and timeout + a tick after the freeze."),
        ("Why did /lab4/mine survive its server's death?", "The session belongs to the ensemble, not to one "
         "server; the client reconnected within the timeout with its session id and password."),
    ],
    checks=[
        Check("a timeout below the minimum was raised to minSessionTimeout", lambda j: None if j[
            "negotiated_below_min"] == j["server_limits"]["minSessionTimeout"] else f"got {j['negotiated_below_min']}"),
        Check("a timeout above the maximum was lowered to maxSessionTimeout", lambda j: None if j[
            "negotiated_above_max"] == j["server_limits"]["maxSessionTimeout"] else f"got {j['negotiated_above_max']}"),
        Check("the frozen client's ephemeral vanished about one timeout later", _expiry_window),
        Check("the session moved to another server", lambda j: None if j["same_session"] and j[
            "second_server"] != j["first_server"] else "the session did not move"),
        Check("its ephemeral survived the move", lambda j: None if j["ephemeral_kept"] else "it was deleted"),
    ],
    mistakes=[
        "Expecting a closed laptop lid (or SIGSTOP) to close the session at once: nothing tells the "
        "server; only the timeout does.",
        "Choosing a session timeout shorter than a GC pause: the session expires and locks are lost.",
    ],
    timing="5 minutes negotiation, 10 expiry, 10 moving.",
)
