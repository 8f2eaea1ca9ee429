"""The safety run: an ensemble in network namespaces, concurrent clients, a nemesis, and checks.

``python -m tests.safety.run [--long] [--seed N] [--nodes 3|5] [--seconds S] [--out DIR]``

Prints a summary, writes ``schedule.json`` (planned and applied faults) and ``summary.json`` to
``--out``, and on failure the history (``history.json``) and the servers' logs. Exit status 0
when every check passed. Root only (the netns lab backend).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from zkops.labs.history import History
from zkops.labs.lab import Lab, LabError
from zkops.labs.linearizability import check_history
from zkops.server.fourletterclient import four_letter_or_empty

from .nemesis import Nemesis, plan
from .workload import (
    EPH_PARENT,
    OP_TIMEOUT,
    REG_ROOT,
    SEQ_PARENT,
    SESSION_TIMEOUT,
    Create,
    CreateWorker,
    RegisterWorker,
    make_client,
    register_path,
)

KEYS = [f"r{i}" for i in range(5)]
FINAL_PROCESS = 999_999


@dataclass
class Report:
    """Everything a run found; ``ok`` only if every check passed."""

    seed: int
    nodes: int
    seconds: float
    elapsed: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    register_results: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    out: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"seed {self.seed}, {self.nodes} nodes, {self.seconds:.0f} s of faults, "
                 f"{self.elapsed:.0f} s in all",
                 "ops: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))]
        lines += [f"  {r}" for r in self.register_results.values()]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        verdict = "all checks passed" if self.ok else f"FAILED ({len(self.problems)} problems)"
        lines.append(f"RESULT: {verdict}")
        lines.append(f"output: {self.out}")
        return "\n".join(lines)


# ---------------------------------------------------------------- checks after the run
def check_creates(workers: list[CreateWorker], children: dict[str, dict[str, Any]]) -> list[str]:
    """(b) no acknowledged persistent create missing; (c) sequence numbers unique and increasing
    in real-time (acknowledgement) order."""
    problems = []
    seq = [c for w in workers if w.sequential for c in w.creates]
    present = children.get(SEQ_PARENT, {})
    for c in seq:
        if not c.ephemeral and c.path.rsplit("/", 1)[1] not in present:
            problems.append(f"acknowledged persistent create {c.path} (acked at {c.ack:.3f}) is missing")
    paths = [c.path for c in seq]
    if len(paths) != len(set(paths)):
        dup = sorted({p for p in paths if paths.count(p) > 1})[:5]
        problems.append(f"two acknowledged creates got the same sequential path: {dup}")
    # if A was acknowledged before B was invoked, A's number must be smaller
    by_ack = sorted(seq, key=lambda c: c.ack or 0.0)
    by_invoke = sorted(seq, key=lambda c: c.invoke)
    best: tuple[int, Create | None] = (-1, None)
    i = 0
    for b in by_invoke:
        while i < len(by_ack) and (by_ack[i].ack or 0.0) < b.invoke:
            n = int(by_ack[i].path[-10:])
            if n > best[0]:
                best = (n, by_ack[i])
            i += 1
        if best[1] is not None and int(b.path[-10:]) <= best[0]:
            a = best[1]
            problems.append(f"sequence order: {a.path} acked at {a.ack:.3f} before {b.path} was invoked at "
                            f"{b.invoke:.3f}, yet has the larger number")
            break
    return problems


def check_ephemerals(workers: list[CreateWorker], children: dict[str, dict[str, Any]],
                     live: dict[int, bool], now: float) -> list[str]:
    """(d) ephemerals vanish only when their session ended: a live session keeps all of its
    acknowledged ephemerals, and was never seen missing one; a session that ended more than two
    session timeouts ago keeps none. Sessions in between (disconnected, just closed) are not judged."""
    problems = []
    for w in workers:
        for sid, s in w.sessions.items():
            mine = [c for c in w.creates if c.ephemeral and c.session == sid]
            alive = live.get(sid, False) and s.ended is None
            long_gone = s.ended_at is not None and s.ended_at < now - 2 * SESSION_TIMEOUT
            for c in mine:
                parent, name = c.path.rsplit("/", 1)
                node = children.get(parent, {}).get(name)
                if alive and (node is None or node.get("owner") != sid):
                    problems.append(f"ephemeral {c.path} of live session {sid:#x} is missing at the end")
                if long_gone and node is not None and node.get("owner") == sid:
                    problems.append(f"ephemeral {c.path} outlived its session {sid:#x} ({s.ended})")
            if alive and s.suspects:
                problems.append(f"live session {sid:#x} saw its own ephemeral missing during the run: "
                                f"{s.suspects[:3]}")
    return problems


def list_children(client: KazooClient, parents: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for parent in parents:
        client.sync(parent)
        out[parent] = {}
        for name in client.get_children(parent):
            stat = client.exists(f"{parent}/{name}")
            if stat is not None:
                out[parent][name] = {"owner": stat.ephemeralOwner}
    return out


# ---------------------------------------------------------------- the run
def wait_all_serving(lab: Lab, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        modes = lab.modes()
        if all(m in ("leader", "follower", "observer") for m in modes.values()) and lab.leader() is not None:
            return
        time.sleep(0.2)
    raise LabError(f"ensemble not all serving after {timeout:.0f} s: {lab.modes()}")


def run(seed: int = 1, seconds: float = 60.0, nodes: int = 3, out: Path | None = None,
        say: Callable[[str], None] = print, register_workers: int = 8) -> Report:
    """One full run; always takes its lab down. Returns the report (also written to ``out``)."""
    out = out or Path(tempfile.mkdtemp(prefix=f"zkops-safety-{seed}-"))
    out.mkdir(parents=True, exist_ok=True)
    report = Report(seed, nodes, seconds, out=str(out))
    steps = plan(seed, seconds)
    lab_dir = Path(tempfile.mkdtemp(prefix="zkops-safety-lab-")) / "lab"
    history = History()
    stop = threading.Event()
    started = time.monotonic()
    lab: Lab | None = None
    workers: list[Any] = []
    nemesis: Nemesis | None = None
    try:
        lab = Lab.up(lab_dir, backend="netns", nodes=nodes, tick_ms=200)
        say(f"lab up in {lab_dir}: {lab.connect_string()}")
        wait_all_serving(lab)
        admin = make_client(lab.connect_string())
        admin.start(timeout=30)
        for p in (REG_ROOT, SEQ_PARENT, EPH_PARENT):
            admin.ensure_path(p)
        for k in KEYS:
            admin.create(register_path(k), b"0")
        admin.stop()
        admin.close()
        ids = lab.node_ids()
        for w in range(register_workers):
            hosts = lab.connect_string() if w % 2 == 0 else lab.connect_string([ids[w // 2 % len(ids)]])
            workers.append(RegisterWorker(w + 1, hosts, stop, seed * 1000 + w, history, KEYS))
        for w in range(4):
            hosts = lab.connect_string() if w % 2 == 0 else lab.connect_string([ids[w % len(ids)]])
            workers.append(CreateWorker(100 + w, hosts, stop, seed * 1000 + 100 + w, sequential=w < 2))
        for w in workers:
            w.connect()
        for w in workers:
            w.start()
        nemesis = Nemesis(lab, steps, stop, say=say)
        nemesis.start()
        nemesis.join(seconds + 120)
        nemesis.recover()
        say("faults over: healing, waiting for every node to serve")
        wait_all_serving(lab, 120)
        time.sleep(3.0)  # clients reconnect and work on a healthy ensemble for a while
        stop.set()
        for w in workers:
            w.join(2 * OP_TIMEOUT + 10)
        report.problems += [f"worker {w.name} did not stop" for w in workers if w.is_alive()]
        # final reads, through a fresh client, into the history
        final = make_client(lab.connect_string())
        final.start(timeout=30)
        for k in KEYS:
            inv = history.invoke(FINAL_PROCESS, "read", k)
            final.sync(register_path(k))
            data, _ = final.get(register_path(k))
            history.complete(inv, "ok", int(data))
        creators = [w for w in workers if isinstance(w, CreateWorker)]
        live = {w.current: (w.current is not None and w.connected() and w.session_id() == w.current)
                for w in creators}
        children = list_children(final, [SEQ_PARENT, EPH_PARENT])
        report.problems += check_creates(creators, children)
        report.problems += check_ephemerals(creators, children, live, time.monotonic())
        # every session closed: after that, none of their ephemerals may remain
        for w in workers:
            w.close()
        time.sleep(SESSION_TIMEOUT * 2)
        leftover = list_children(final, [SEQ_PARENT, EPH_PARENT])
        eph_ids = {sid for w in creators for sid in w.sessions}
        for parent, kids in leftover.items():
            for name, meta in kids.items():
                if meta["owner"] in eph_ids:
                    report.problems.append(f"ephemeral {parent}/{name} remains after its session "
                                           f"{meta['owner']:#x} was closed")
        final.stop()
        final.close()
        # the registers
        results = check_history(history.snapshot(), initial=0)
        for key, r in results.items():
            report.register_results[key] = r.describe()
            if r.valid is False:
                report.problems.append(r.describe())
                (out / f"counterexample-{key}.json").write_text(json.dumps(r.counterexample, indent=1))
            elif r.valid is None:
                report.problems.append(r.describe())
        for w in workers:
            for k, v in w.counts.items():
                report.counts[k] = report.counts.get(k, 0) + v
        report.counts["history-events"] = len(history.events)
        acked = [c for w in creators for c in w.creates]
        seq = [c for c in acked if c.path.startswith(SEQ_PARENT)]
        report.counts["acked-persistent-seq"] = sum(1 for c in seq if not c.ephemeral)
        report.counts["acked-ephemeral-seq"] = sum(1 for c in seq if c.ephemeral)
        report.counts["acked-ephemeral"] = len(acked) - len(seq)
        report.counts["sessions"] = sum(len(w.sessions) for w in creators)
        report.counts["faults-applied"] = len(nemesis.log)
    except Exception as e:  # noqa: BLE001 - the report says what broke; the lab still comes down
        report.problems.append(f"harness error: {type(e).__name__}: {e}")
    finally:
        stop.set()
        for w in workers:
            w.close()
        if lab is not None:
            if not report.ok:
                for n in lab.state.nodes:
                    for word in ("dump", "cons", "srvr"):
                        text = four_letter_or_empty(n.host, n.client_port, word)
                        (out / f"n{n.id}-{word}.txt").write_text(text)
                    for name in ("zkops-server.log", "stdout.log"):
                        src = lab.dir / f"n{n.id}" / name
                        if src.exists():
                            shutil.copy(src, out / f"n{n.id}-{name}")
            try:
                lab.down()
            except Exception as e:  # noqa: BLE001
                report.problems.append(f"lab down failed: {e}")
        shutil.rmtree(lab_dir.parent, ignore_errors=True)
        report.elapsed = time.monotonic() - started
        (out / "schedule.json").write_text(json.dumps({
            "seed": seed, "seconds": seconds, "nodes": nodes,
            "planned": [asdict(s) for s in steps],
            "applied": nemesis.dump() if nemesis else []}, indent=1))
        if not report.ok:
            history.dump(out / "history.json")
        (out / "creates.json").write_text(json.dumps([
            {"worker": w.wid, "hosts": w.hosts, "sessions": [asdict(x) for x in w.sessions.values()],
             "creates": [asdict(c) for c in w.creates], "unknown": [asdict(c) for c in w.unknown]}
            for w in workers if isinstance(w, CreateWorker)], indent=1))
        (out / "summary.json").write_text(json.dumps(asdict(report) | {"ok": report.ok}, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.safety.run", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="RNG seed (default: from the clock)")
    ap.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    ap.add_argument("--seconds", type=float, default=None, help="how long faults are injected")
    ap.add_argument("--long", action="store_true", help="10 minutes of faults")
    ap.add_argument("--out", type=Path, default=None,
                    help="where the schedule, summary and failures go (default: $TMPDIR/zkops-safety/seed-N)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    seconds = args.seconds if args.seconds is not None else (600.0 if args.long else 60.0)
    out = args.out or Path(tempfile.gettempdir()) / "zkops-safety" / f"seed-{seed}"
    report = run(seed, seconds, args.nodes, out)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
