"""Failover tail, zkops and Apache ZooKeeper 3.8 side by side in one run.

python3 -m benchmarks.failover [--trials 100] [--voters 3,5] [--events kill-leader,stop-member]
                               [--tick-ms 2000] [--servers zkops,apache] [--json out.json]
                               [--events leader-alone --sync-limit 2]

For each ensemble size, one ensemble of each kind runs at once and the trials alternate
between them, so whatever else loads the machine hits both alike. A trial:

1. wait until the ensemble has one leader and every member serves;
2. the event: ``kill-leader`` sends SIGKILL to the leader; ``stop-member`` sends SIGTERM to a
   member picked at random (leader or follower, as an operator's restart would);
3. the clock runs until a client is served again through the survivors: a probe on every
   survivor opens a new session and creates a znode, retrying every 10 ms; the first create
   that succeeds stops the clock (a new session is itself a write, so it needs a leader and
   a quorum);
4. the stopped member is started again and the next trial waits until it serves.

``leader-alone`` measures something else (issue 21): the leader is killed with SIGKILL, and as
soon as the survivors serve under a new leader, every follower of that new leader is stopped
with SIGTERM; the clock runs until the new leader stops saying it leads (srvr's Mode), the
time it holds clients it can no longer commit for. Then every stopped member starts again.

The report gives, per kind, size and event, p50 / p90 / p99 / max and a coarse histogram,
and the zkops / Apache ratio of each percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from benchmarks.run import OPEN, ApacheEnsemble
from tests.support import refzk
from tests.support.ensemble import Ensemble, mode
from zkops.server.records import ConnectRequest, CreateRequest, RequestHeader

_LEN = struct.Struct(">i")
PROBE_INTERVAL_S = 0.01


class Cluster(Protocol):
    ids: list[int]

    def address(self, i: int) -> str: ...
    def start(self, *ids: int) -> object: ...
    def kill(self, i: int) -> None: ...
    def wait_ready(self, timeout: float = ...) -> int: ...
    def cleanup(self) -> None: ...


class _ApacheCluster(ApacheEnsemble):
    """The benchmark's Apache ensemble, with a clean stop as well as kill -9."""

    def __init__(self, n: int = 3, tick_ms: int = 200, sync_limit: int = 5) -> None:
        super().__init__(n, tick_ms=tick_ms)
        for i in self.ids:
            cfg = self.workdir / f"n{i}" / "zoo.cfg"
            cfg.write_text(cfg.read_text().replace("syncLimit=5\n", f"syncLimit={sync_limit}\n"))

    def stop_member(self, i: int) -> None:
        p = self.procs.pop(i)
        p.send_signal(signal.SIGTERM)
        p.wait(60)


class _ZkopsCluster(Ensemble):
    def stop_member(self, i: int) -> None:
        self.kill(i, signal.SIGTERM)


async def _served_once(host: str, port: int, name: str) -> bool:
    """One attempt: a new session and a create through ``host:port``."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        req = ConnectRequest(0, 0, 10000, 0, b"\0" * 16).to_bytes() + b"\0"
        w.write(_LEN.pack(len(req)) + req)
        n = _LEN.unpack(await asyncio.wait_for(r.readexactly(4), 2.0))[0]
        reply = await asyncio.wait_for(r.readexactly(n), 2.0)
        _, timeout = struct.unpack_from(">ii", reply)
        if timeout <= 0:
            return False
        body = RequestHeader(1, 1).to_bytes() + CreateRequest(name, b"", OPEN, 0).to_bytes()
        w.write(_LEN.pack(len(body)) + body)
        while True:
            n = _LEN.unpack(await asyncio.wait_for(r.readexactly(4), 2.0))[0]
            data = await asyncio.wait_for(r.readexactly(n), 2.0)
            xid, _, err = struct.unpack_from(">iqi", data)
            if xid == 1:
                return err == 0
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, struct.error):
        return False
    finally:
        w.close()


def served_again(addresses: list[str], event: Callable[[], None], tag: str, limit_s: float = 120.0) -> float:
    """Run ``event`` and return the seconds until a create through one of ``addresses``
    succeeds on a new session."""

    async def main() -> float:
        done = asyncio.Event()
        attempt = 0
        t0 = time.monotonic()
        event()

        async def probe(address: str) -> None:
            nonlocal attempt
            host, port = address.rsplit(":", 1)
            while not done.is_set():
                attempt += 1
                if await _served_once(host, int(port), f"/failover-{tag}-{attempt}"):
                    done.set()
                    return
                await asyncio.sleep(PROBE_INTERVAL_S)

        tasks = [asyncio.create_task(probe(a)) for a in addresses]
        try:
            await asyncio.wait_for(done.wait(), limit_s)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return time.monotonic() - t0

    return asyncio.run(main())


def leader_alone_seconds(c: _ApacheCluster | _ZkopsCluster, leader: int, limit_s: float = 120.0) -> float:
    """kill -9 ``leader``; once the others serve under a new leader, stop all its followers and
    return the seconds until it no longer says it leads. Every stopped member is started again."""
    c.kill(leader)
    new = c.wait_ready(timeout=120)
    followers = [i for i in c.procs if i != new]
    port = int(c.address(new).rsplit(":", 1)[1])
    t0 = time.monotonic()
    for i in followers:
        c.stop_member(i)
    while mode(port) == "leader" and time.monotonic() - t0 < limit_s:
        time.sleep(PROBE_INTERVAL_S)
    took = time.monotonic() - t0
    c.start(leader, *followers)
    return took


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(xs: list[float]) -> dict[str, float]:
    return {"trials": len(xs), "p50": percentile(xs, 50), "p90": percentile(xs, 90),
            "p99": percentile(xs, 99), "max": max(xs) if xs else float("nan"),
            "mean": statistics.fmean(xs) if xs else float("nan")}


def histogram(xs: list[float], edges: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)) -> str:
    counts = [0] * (len(edges) + 1)
    for x in xs:
        counts[next((i for i, e in enumerate(edges) if x < e), len(edges))] += 1
    labels = [f"<{e:g}s" for e in edges] + [f">={edges[-1]:g}s"]
    return " ".join(f"{lab}:{c}" for lab, c in zip(labels, counts, strict=True) if c)


def _make(kind: str, voters: int, tick_ms: int, sync_limit: int) -> _ApacheCluster | _ZkopsCluster:
    if kind == "apache":
        return _ApacheCluster(voters, tick_ms=tick_ms, sync_limit=sync_limit)
    return _ZkopsCluster(voters, tick_ms=tick_ms, extra={"syncLimit": str(sync_limit)})


def run(trials: int, sizes: list[int], events: list[str], servers: list[str], tick_ms: int,
        seed: int, sync_limit: int = 5) -> dict:
    rng = random.Random(seed)
    results: dict = {"trials": trials, "tick_ms": tick_ms, "sync_limit": sync_limit, "runs": {}}
    for voters in sizes:
        clusters = {kind: _make(kind, voters, tick_ms, sync_limit) for kind in servers}
        try:
            for c in clusters.values():
                c.start()
            for c in clusters.values():
                c.wait_ready(timeout=120)
            samples: dict[tuple[str, str], list[float]] = {(k, e): [] for k in servers for e in events}
            for n in range(trials):
                for event in events:
                    order = servers if n % 2 == 0 else servers[::-1]
                    for kind in order:
                        c = clusters[kind]
                        leader = c.wait_ready(timeout=120)
                        if event == "leader-alone":
                            samples[(kind, event)].append(leader_alone_seconds(c, leader))
                            c.wait_ready(timeout=300)  # three members restarting at once
                            continue
                        victim = leader if event == "kill-leader" else rng.choice(c.ids)
                        act = (lambda c=c, v=victim: c.kill(v)) if event == "kill-leader" else \
                            (lambda c=c, v=victim: c.stop_member(v))
                        survivors = [c.address(i) for i in c.ids if i != victim]
                        took = served_again(survivors, act, f"{voters}-{event}-{n}")
                        samples[(kind, event)].append(took)
                        c.start(victim)
                        c.wait_ready(timeout=120)
                print(f"voters={voters} trial {n + 1}/{trials}: " + ", ".join(
                    f"{k} {e} {samples[(k, e)][-1]:.3f}s" for k in servers for e in events), flush=True)
            for (kind, event), xs in samples.items():
                results["runs"][f"{kind}/{voters}/{event}"] = {**summary(xs), "histogram": histogram(xs),
                                                                 "samples": xs}
        finally:
            for c in clusters.values():
                c.cleanup()
    return results


def report(results: dict, servers: list[str]) -> str:
    lines = ["| ensemble | event | server | p50 s | p90 s | p99 s | max s | distribution |",
             "|---|---|---|---|---|---|---|---|"]
    runs = results["runs"]
    for key, r in runs.items():
        kind, voters, event = key.split("/")
        lines.append(f"| {voters} voters | {event} | {kind} | {r['p50']:.3f} | {r['p90']:.3f} | "
                     f"{r['p99']:.3f} | {r['max']:.3f} | {r['histogram']} |")
    if {"zkops", "apache"} <= set(servers):
        lines += ["", "| ensemble | event | p50 ratio | p99 ratio |", "|---|---|---|---|"]
        for key, r in runs.items():
            kind, voters, event = key.split("/")
            other = runs.get(f"apache/{voters}/{event}")
            if kind != "zkops" or not other:
                continue
            lines.append(f"| {voters} voters | {event} | {r['p50'] / other['p50']:.2f} | "
                         f"{r['p99'] / other['p99']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--voters", default="3,5")
    ap.add_argument("--events", default="kill-leader,stop-member")
    ap.add_argument("--servers", default="zkops,apache")
    ap.add_argument("--tick-ms", type=int, default=2000)
    ap.add_argument("--sync-limit", type=int, default=5, help="syncLimit of both kinds (kazoo's harness: 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    servers = args.servers.split(",")
    if "apache" in servers and not refzk.available():
        sys.exit("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    results = run(args.trials, [int(v) for v in args.voters.split(",")], args.events.split(","), servers,
                  args.tick_ms, args.seed, args.sync_limit)
    print(report(results, servers))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
