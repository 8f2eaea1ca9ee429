"""Mixed ensembles against an all-Apache one, in one run: what moving to zkops one node at a time costs.

python3 -m benchmarks.mixed [--arrangements AAA,ZAA,ZZA,ZZZ] [--duration 3] [--reps 3]
                            [--failover-trials 10] [--json out.json]

An arrangement names the kind of each of three voters, sid 1 first: ``A`` Apache ZooKeeper 3.8,
``Z`` zkops (so ``ZAA`` is one zkops server beside two Apache ones). Every arrangement runs at
the same time and the throughput figures alternate between them, repetition by repetition, so
the machine's drift hits all alike. Per arrangement: set and get at 16 sessions spread over
every member (each session keeps ``--depth`` requests in flight), the p99 of their requests,
and the failover tail (kill -9 of the leader until a new session's create succeeds through the
survivors, see benchmarks.failover). Ratios are against ``AAA`` of the same run, with the spread
of the paired repetitions.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
from pathlib import Path

from benchmarks.failover import served_again, summary
from benchmarks.run import _prepare, measure
from tests.support import refzk
from tests.support.mixed import MixedEnsemble

KINDS = {"A": "apache", "Z": "zkops"}


def ensemble_of(arrangement: str, tick_ms: int) -> MixedEnsemble:
    return MixedEnsemble({i + 1: KINDS[c] for i, c in enumerate(arrangement)}, tick_ms=tick_ms)


def run(arrangements: list[str], duration: float, reps: int, depth: int, failover_trials: int,
        tick_ms: int) -> dict:
    results: dict = {"duration_s": duration, "reps": reps, "depth": depth, "tick_ms": tick_ms, "runs": {}}
    clusters = {a: ensemble_of(a, tick_ms) for a in arrangements}
    try:
        for c in clusters.values():
            c.start()
        for a, c in clusters.items():
            leader = c.wait_ready(timeout=120)
            _prepare(c.address(leader))
            results["runs"][a] = {"leader_kind": c.kinds[leader], "samples": {}}
        for op in ("set", "get"):
            for rep in range(reps):
                order = arrangements if rep % 2 == 0 else arrangements[::-1]
                for a in order:
                    c = clusters[a]
                    m = measure([c.address(i) for i in c.ids], op, 16, duration, depth)
                    s = results["runs"][a]["samples"].setdefault(op, {"ops_per_s": [], "p99_ms": []})
                    s["ops_per_s"].append(m.ops_per_s)
                    s["p99_ms"].append(m.p99_ms)
                    print(f"{a} {op}_16 rep {rep + 1}: {m.ops_per_s:.0f} ops/s, p99 {m.p99_ms:.1f} ms", flush=True)
        for n in range(failover_trials):
            for a in (arrangements if n % 2 == 0 else arrangements[::-1]):
                c = clusters[a]
                leader = c.wait_ready(timeout=120)
                survivors = [c.address(i) for i in c.ids if i != leader]
                took = served_again(survivors, lambda c=c, v=leader: c.kill(v, signal.SIGKILL), f"{a}-{n}")
                results["runs"][a].setdefault("failover_s", []).append(took)
                c.start(leader)
                c.wait_ready(timeout=120)
        for r in results["runs"].values():
            for s in r["samples"].values():
                s["median_ops_per_s"] = statistics.median(s["ops_per_s"])
                s["median_p99_ms"] = statistics.median(s["p99_ms"])
            if r.get("failover_s"):
                r["failover"] = summary(r["failover_s"])
    finally:
        for c in clusters.values():
            c.cleanup()
    return results


def report(results: dict, baseline: str = "AAA") -> str:
    runs = results["runs"]
    base = runs.get(baseline)
    lines = [f"| arrangement | set_16 ops/s | get_16 ops/s | set p99 ms | get p99 ms | failover p50 / p99 s "
             f"| set vs {baseline} | get vs {baseline} |", "|---|---|---|---|---|---|---|---|"]
    for a, r in runs.items():
        s, g = r["samples"]["set"], r["samples"]["get"]
        fo = r.get("failover")
        ratios = []
        for op in ("set", "get"):
            if base is None:
                ratios.append("")
                continue
            mine, theirs = r["samples"][op]["ops_per_s"], base["samples"][op]["ops_per_s"]
            paired = [x / y for x, y in zip(mine, theirs, strict=True) if y]
            ratios.append(f"{statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f})")
        failover = f"{fo['p50']:.2f} / {fo['p99']:.2f}" if fo else ""
        lines.append(f"| {a} (leader {r['leader_kind']}) | {s['median_ops_per_s']:.0f} | {g['median_ops_per_s']:.0f} "
                     f"| {s['median_p99_ms']:.1f} | {g['median_p99_ms']:.1f} | {failover} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arrangements", default="AAA,ZAA,ZZA,ZZZ")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--failover-trials", type=int, default=10)
    ap.add_argument("--tick-ms", type=int, default=2000)
    ap.add_argument("--json")
    args = ap.parse_args()
    arrangements = args.arrangements.split(",")
    if any(set(a) - set(KINDS) or len(a) < 3 for a in arrangements):
        sys.exit("an arrangement is three or more letters, A (Apache) or Z (zkops), e.g. ZAA")
    if "A" in "".join(arrangements) and not refzk.available():
        sys.exit("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    results = run(arrangements, args.duration, args.reps, args.depth, args.failover_trials, args.tick_ms)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
