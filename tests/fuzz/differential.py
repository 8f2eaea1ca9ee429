"""Send the same request sequence to a fresh Apache 3.8 and a fresh zkops; report the first difference.

    python -m tests.fuzz.differential --seed 7 --steps 60           # replay one seeded sequence
    python -m tests.fuzz.differential --seeds 0 40 --steps 60       # count sequences that differ
    python -m tests.fuzz.differential --seed 7 --steps 60 --shrink --keep NAME
    python -m tests.fuzz.differential --case tests/fuzz/cases/NAME.json

A difference listed in ``KNOWN`` (with the reason zkops answers differently on purpose) does
not count as a failure; the executor ends both runs the same way after it (closing the
connection Apache closed), so the comparison goes on to the steps after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fuzz.executor import APACHE_OPS, Executor
from tests.fuzz.generator import generate
from tests.support.ourzk import ZkopsProcess
from tests.support.refzk import RefZooKeeper
from zkops.server.codes import Op

CASES = Path(__file__).resolve().parent / "cases"

Step = dict[str, Any]


@dataclass
class Known:
    """A difference kept on purpose: README's compatibility notes say why."""

    name: str
    reason: str
    matches: Callable[[Step, Any, Any], bool]


def _op(step: Step) -> int | None:
    return step.get("op") if step.get("k") == "req" else None


def _without_close(seen: dict[int, list[Any]], slot: int) -> dict[int, list[Any]]:
    out = dict(seen)
    # Apache closes after it answers; now and then the close comes after our ping's deadline
    if out.get(slot, [None])[-1] in ("closed", "stalled"):
        rest = out.pop(slot)[:-1]
        if rest:
            out[slot] = rest
    return out


def _closes_where_zkops_does_not(slot_of: Callable[[Step], int]) -> Callable[[Step, Any, Any], bool]:
    """Apache closes one connection after the step, zkops keeps it; all else is the same."""

    def matches(step: Step, a: Any, z: Any) -> bool:
        if not (isinstance(a, tuple) and isinstance(z, tuple) and len(a) == 3 and len(z) == 3):
            return False
        slot = slot_of(step)
        return a[:2] == z[:2] and _without_close(a[2], slot) == z[2] and a[2] != z[2]

    return matches


KNOWN: list[Known] = [
    Known("unknown-opcode-keeps-connection",
          "Apache answers an opcode it does not know with UNIMPLEMENTED and closes the connection; "
          "zkops answers the same and keeps it, so a newer client's new request does not cost the "
          "session its connection",
          lambda step, a, z: _op(step) is not None and step["op"] not in APACHE_OPS
          and _closes_where_zkops_does_not(lambda s: s["c"])(step, a, z)),
    Known("wrong-password-keeps-open-connection",
          "a re-attach with a wrong password is refused by both; Apache also closes the session's "
          "open connection, which lets anyone who knows a session id disconnect it; zkops leaves it",
          lambda step, a, z: step.get("k") == "attach" and step.get("pw") == "wrong"
          and _closes_where_zkops_does_not(lambda s: s["from"])(step, a, z)),
    Known("checkwatches-per-connection",
          "checkWatches: Apache 3.8 says a watch exists when any connection watches the path; "
          "zkops answers for the asking connection's own watches (NoWatcher otherwise), as the "
          "request means and as removeWatches already does in both",
          lambda step, a, z: _op(step) == Op.checkWatches and isinstance(a, tuple) and isinstance(z, tuple)
          and len(a[1]) == 1 and len(z[1]) == 1 and a[1][0][:3] == z[1][0][:3]
          and a[1][0][3] == 0 and z[1][0][3] == -121 and a[2] == z[2]),
    Known("standalone-check-answered",
          "a check request outside a multi: Apache 3.8 applies it but never answers (its reply "
          "has no Stat to write), so the client waits until it times out; zkops answers it",
          lambda step, a, z: _op(step) == Op.check and isinstance(a, tuple) and isinstance(z, tuple)
          and a[1] == ["stalled"] and len(z[1]) == 1 and z[1][0][0] == "reply" and a[2] == z[2]),
]


@dataclass
class Difference:
    index: int  # step number; len(steps) for the final tree, -1 for a server that died
    step: Step | None
    apache: Any
    zkops: Any
    known: Known | None = None

    def signature(self) -> tuple:
        """What kind of difference this is, for shrinking (the same kind must stay)."""
        if self.step is None:
            return ("final" if self.index >= 0 else "died",)
        return (self.step["k"], self.step.get("op"))

    def __str__(self) -> str:
        where = "final tree" if self.step is None else f"step {self.index}: {json.dumps(self.step)}"
        tag = f" [known: {self.known.name}]" if self.known else ""
        return f"{where}{tag}\n  apache: {self.apache!r}\n  zkops:  {self.zkops!r}"


def run_one(server: Any, steps: list[Step], out: dict[str, Any], key: str) -> None:
    try:
        out[key] = Executor(server.address).run(steps)
    except Exception as exc:  # the executor's own failure shows as a trace that differs
        out[key] = [("executor-error", repr(exc))]


def _start(make: Callable[[], Any], out: dict[str, Any], key: str, attempts: int = 3) -> None:
    """Start a server, trying again on a fresh port: on a busy machine another process can take
    the port between our probe and the server's bind, or a start can time out."""
    errors = []
    for _ in range(attempts):
        server = make()
        try:
            server.start()
            out[key] = server
            return
        except Exception as exc:  # noqa: BLE001 - reported below if every attempt fails
            errors.append(repr(exc)[:2000])
            server.cleanup()
    out[key + "-error"] = "\n".join(errors)


class ServerPool:
    """Fresh server pairs (Apache, zkops), the next pair starting while a sequence runs on the
    current one, and used pairs stopped in the background. ``close`` stops every server the
    pool started (use it as a context manager)."""

    def __init__(self, prefetch: bool = True) -> None:
        self.prefetch = prefetch
        self._next: tuple[list[threading.Thread], dict[str, Any]] | None = None
        self._stoppers: list[threading.Thread] = []

    def _launch(self) -> tuple[list[threading.Thread], dict[str, Any]]:
        servers: dict[str, Any] = {}
        threads = [threading.Thread(target=_start, args=(RefZooKeeper, servers, "apache")),
                   threading.Thread(target=_start, args=(ZkopsProcess, servers, "zkops"))]
        for t in threads:
            t.start()
        return threads, servers

    def take(self) -> tuple[Any, Any]:
        pending = self._next or self._launch()
        self._next = None
        threads, servers = pending
        for t in threads:
            t.join()
        if self.prefetch:
            self._next = self._launch()
        if "apache" not in servers or "zkops" not in servers:
            self.release(tuple(servers[k] for k in ("apache", "zkops") if k in servers))
            raise RuntimeError("a server did not start:\n" + servers.get("apache-error", "")
                               + servers.get("zkops-error", ""))
        return servers["apache"], servers["zkops"]

    def release(self, pair: tuple[Any, ...]) -> None:
        t = threading.Thread(target=lambda: [s.cleanup() for s in pair])
        t.start()
        self._stoppers.append(t)

    def close(self) -> None:
        if self._next is not None:
            threads, servers = self._next
            self._next = None
            for t in threads:
                t.join()
            for key in ("apache", "zkops"):
                if key in servers:
                    servers[key].cleanup()
        for t in self._stoppers:
            t.join()
        self._stoppers.clear()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_pair(steps: list[Step], pool: ServerPool | None = None) -> tuple[list[Any], list[Any], bool, bool]:
    """Run ``steps`` on a fresh Apache and a fresh zkops at the same time; both traces, and
    whether each server was still running at the end."""
    own = pool is None
    pool = pool or ServerPool(prefetch=False)
    try:
        ref, ours = pool.take()
        try:
            out: dict[str, Any] = {}
            runners = [threading.Thread(target=run_one, args=(ref, steps, out, "apache")),
                       threading.Thread(target=run_one, args=(ours, steps, out, "zkops"))]
            for t in runners:
                t.start()
            for t in runners:
                t.join()
            return out["apache"], out["zkops"], ref.proc.poll() is None, ours.proc.poll() is None
        finally:
            pool.release((ref, ours))
    finally:
        if own:
            pool.close()


def compare(steps: list[Step], apache: list[Any], zkops: list[Any], apache_alive: bool = True,
            zkops_alive: bool = True) -> Difference | None:
    """The first difference between two traces of ``steps``, None when they agree."""
    first_known = None
    for i, (a, z) in enumerate(zip(apache, zkops, strict=False)):
        if a == z:
            continue
        step = steps[i] if i < len(steps) else None
        diff = Difference(i, step, a, z)
        if step is not None:
            diff.known = next((k for k in KNOWN if k.matches(step, a, z)), None)
        if diff.known is None:
            return diff
        first_known = first_known or diff
    if len(apache) != len(zkops):
        return Difference(min(len(apache), len(zkops)), None, len(apache), len(zkops))
    if apache_alive != zkops_alive:
        return Difference(-1, None, apache_alive, zkops_alive)
    return first_known


def check(steps: list[Step], pool: ServerPool | None = None) -> Difference | None:
    return compare(steps, *run_pair(steps, pool))


def shrink(steps: list[Step], diff: Difference, log: Callable[[str], None] = print,
           run: Callable[[list[Step]], Difference | None] | None = None) -> list[Step]:
    """Delta debugging (ddmin) over steps: the smallest sequence that still shows the same
    kind of unlisted difference (``run`` compares one sequence; default: on fresh servers)."""
    want = diff.signature()
    if run is None:
        with ServerPool() as pool:
            return shrink(steps, diff, log, lambda candidate: check(candidate, pool))

    def fails(candidate: list[Step]) -> bool:
        d = run(candidate)
        return d is not None and d.known is None and d.signature() == want

    # cut everything after the failing step first
    if 0 <= diff.index < len(steps):
        head = steps[:diff.index + 1]
        if fails(head):
            steps = head
    n = 2
    while len(steps) >= 2:
        chunk = max(1, len(steps) // n)
        reduced = False
        for start in range(0, len(steps), chunk):
            candidate = steps[:start] + steps[start + chunk:]
            if candidate and fails(candidate):
                steps = candidate
                n = max(n - 1, 2)
                reduced = True
                log(f"  shrunk to {len(steps)} steps")
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(steps), n * 2)
    return steps


def load_case(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def kept_cases() -> list[Path]:
    return sorted(CASES.glob("*.json"))


def save_case(name: str, steps: list[Step], why: str) -> Path:
    CASES.mkdir(exist_ok=True)
    path = CASES / f"{name}.json"
    lines = ",\n".join("    " + json.dumps(s, ensure_ascii=True) for s in steps)
    path.write_text(f'{{\n  "name": {json.dumps(name)},\n  "why": {json.dumps(why)},\n  "steps": [\n{lines}\n  ]\n}}\n')
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.differential", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "END"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--case", type=Path)
    ap.add_argument("--shrink", action="store_true")
    ap.add_argument("--keep", metavar="NAME", help="save the shrunk sequence as tests/fuzz/cases/NAME.json")
    ap.add_argument("--show", action="store_true", help="print the steps")
    args = ap.parse_args(argv)
    if args.case:
        case = load_case(args.case)
        runs = [(case["name"], case["steps"])]
    elif args.seeds:
        runs = [(f"seed {s}", generate(s, args.steps)) for s in range(*args.seeds)]
    elif args.seed is not None:
        runs = [(f"seed {args.seed}", generate(args.seed, args.steps))]
    else:
        ap.error("give --seed, --seeds or --case")
    with ServerPool() as pool:
        return _run_all(runs, args, pool)


def _run_all(runs: list[tuple[str, list[Step]]], args: argparse.Namespace, pool: ServerPool) -> int:
    differing = known = 0
    for name, steps in runs:
        if args.show:
            for i, s in enumerate(steps):
                print(f"  {i:3d} {json.dumps(s)}")
        t0 = time.monotonic()
        diff = check(steps, pool)
        took = time.monotonic() - t0
        if diff is None:
            print(f"{name}: same ({took:.1f} s)")
            continue
        if diff.known:
            known += 1
            print(f"{name}: known difference ({took:.1f} s)\n{diff}")
            continue
        differing += 1
        print(f"{name}: DIFFERS ({took:.1f} s)\n{diff}")
        if args.shrink:
            small = shrink(steps, diff, run=lambda candidate: check(candidate, pool))
            print(f"{name}: shrunk to {len(small)} steps:")
            for s in small:
                print("  " + json.dumps(s))
            if args.keep:
                print(f"kept as {save_case(args.keep, small, str(diff).splitlines()[0])}")
    print(f"{differing} of {len(runs)} sequences differ ({known} more only in known ways)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
