"""The client-port differential fuzzer (tests/fuzz): zkops against a real Apache 3.8.

Kept cases (tests/fuzz/cases, each a shrunk sequence that once differed) and a short seeded
run are in the default suite; the long run (seeds 0-39, 60 steps each) is ``slow``. Each
sequence runs on a fresh Apache standalone and a fresh zkops process; a difference not in
``KNOWN`` fails with the step, both answers and the command that replays it.
"""

from __future__ import annotations

import threading

import pytest

from tests.fuzz.differential import (
    KNOWN,
    Difference,
    ServerPool,
    check,
    compare,
    kept_cases,
    load_case,
    run_pair,
    shrink,
)
from tests.fuzz.executor import Executor
from tests.fuzz.generator import generate
from tests.support import refzk

pytestmark = pytest.mark.reference

KEPT_WORKERS = 3
SHORT_SEEDS = range(1000, 1002)
SHORT_STEPS = 40
LONG_SEEDS = range(40)
LONG_STEPS = 60


def _need_apache() -> None:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")


@pytest.fixture(scope="module")
def pool():
    """Server pairs for this module: each sequence gets a fresh pair, the next one starting
    while it runs; every server is stopped when the module ends."""
    _need_apache()
    with ServerPool() as p:
        yield p


def _explain(name: str, diff: Difference, replay: str) -> str:
    return f"{name} differs from Apache 3.8 (replay: python -m tests.fuzz.differential {replay})\n{diff}"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_kept_cases_answer_as_apache(loop, monkeypatch):
    """Every kept case, three at a time (each on its own fresh pair of servers), with zkops on
    asyncio's loop (a bare install) and on uvloop (``zkops[fast]``)."""
    _need_apache()
    if loop == "uvloop":
        import uvloop  # noqa: F401  (the test extra installs it: a missing one fails here)
    monkeypatch.setenv("ZKOPS_EVENT_LOOP", loop)  # the zkops processes inherit it
    cases = kept_cases()
    assert cases
    failures: dict[str, str] = {}
    lock = threading.Lock()
    todo = list(cases)

    def worker() -> None:
        with ServerPool() as own:
            while True:
                with lock:
                    if not todo:
                        return
                    case = todo.pop(0)
                try:
                    diff = check(load_case(case)["steps"], own)
                    problem = None if diff is None or diff.known else _explain(case.stem, diff, f"--case {case}")
                except Exception as exc:  # a server that would not start: reported, not hidden
                    problem = f"{case.stem}: {exc!r}"
                if problem:
                    with lock:
                        failures[case.stem] = problem

    threads = [threading.Thread(target=worker) for _ in range(KEPT_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, f"{len(failures)} of {len(cases)} kept cases differ:\n\n" + "\n\n".join(
        failures[k] for k in sorted(failures))


@pytest.mark.parametrize("seed", SHORT_SEEDS)
def test_short_seeded_run_answers_as_apache(seed, pool):
    diff = check(generate(seed, SHORT_STEPS), pool)
    assert diff is None or diff.known is not None, _explain(f"seed {seed}", diff,
                                                            f"--seed {seed} --steps {SHORT_STEPS}")


@pytest.mark.slow
def test_long_run_finds_no_unlisted_difference(pool):
    failures = []
    for seed in LONG_SEEDS:
        diff = check(generate(seed, LONG_STEPS), pool)
        if diff is not None and diff.known is None:
            failures.append(_explain(f"seed {seed}", diff, f"--seed {seed} --steps {LONG_STEPS} --shrink"))
    assert not failures, f"{len(failures)} of {len(LONG_SEEDS)} sequences differ:\n\n" + "\n\n".join(failures)


def test_generator_is_deterministic_and_covers_every_request():
    assert generate(7, 50) == generate(7, 50)
    ops = {s["op"] for seed in range(40) for s in generate(seed, 60) if s["k"] == "req"}
    assert {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 103, 104,
            105, 106, 107, -11} <= ops
    kinds = {s["k"] for seed in range(40) for s in generate(seed, 60)}
    assert kinds == {"connect", "attach", "drop", "req", "4lw", "unknown"}


def test_compare_reports_the_first_unlisted_difference_and_passes_listed_ones():
    steps = [{"k": "req", "c": 0, "op": 23, "xid": None, "body": "", "d": ""},
             {"k": "req", "c": 0, "op": 4, "xid": None, "body": "", "d": ""}]
    unknown_op_a = ("req", [("reply", 1, -1, -6, None)], {0: ["closed"]})
    unknown_op_z = ("req", [("reply", 1, -1, -6, None)], {})
    same = ("req", [("reply", 2, 0, -101, None)], {})
    diff = compare(steps, [unknown_op_a, same], [unknown_op_z, same])
    assert diff is not None and diff.known is KNOWN[0]
    other = ("req", [("reply", 2, 0, -8, None)], {})
    diff = compare(steps, [unknown_op_a, same], [unknown_op_z, other])
    assert diff is not None and diff.known is None and diff.index == 1
    assert compare(steps, [same, same], [same, same]) is None


def test_watch_lists_parse_in_any_order_and_with_the_empty_path():
    """wchp/wchc list paths and sessions in hash-table order, which the comparison ignores; a
    watch on the empty path (setWatches takes any path) has an empty heading line."""
    ex = Executor("127.0.0.1:1")
    assert (ex.sid(0x17), ex.sid(0x13)) == ("S0", "S1")
    a = ex.parse_words("wchp", "\n\t0x17\n/q/r\n\t0x13\n/q\n\t0x13\n\t0x17\n\n")
    b = ex.parse_words("wchp", "/q\n\t0x17\n\t0x13\n\n\t0x17\n/q/r\n\t0x13\n\n")
    assert a == b == [("", ["S0"]), ("/q", ["S0", "S1"]), ("/q/r", ["S1"])]
    assert ex.parse_words("wchc", "0x13\n\t/q\n\t\n\n") == [("S1", ["", "/q"])]


def test_shrinking_keeps_only_the_steps_the_difference_needs():
    steps = [{"k": "req", "c": 0, "op": n, "xid": None, "body": "", "d": ""} for n in range(20)]

    def run(candidate):  # differs when steps 3 and 11 are both there, at the later one
        ops = [s["op"] for s in candidate]
        if 3 in ops and 11 in ops:
            i = ops.index(11)
            return Difference(i, candidate[i], "a", "z")
        return None

    first = run(steps)
    small = shrink(steps, first, log=lambda m: None, run=run)
    assert [s["op"] for s in small] == [3, 11]


@pytest.mark.parametrize("enabled", [False, True])
def test_standalone_reconfig_answers_as_apache(enabled):
    """reconfig on a standalone server: refused (RECONFIGDISABLED, or UNIMPLEMENTED when
    enabled, whatever the arguments), with a zxid, and the session's next request answered."""
    _need_apache()
    from tests.support.ourzk import ZkopsProcess
    from tests.support.rawclient import RawClient
    from zkops.server.records import PathRequest, ReconfigRequest

    requests = [ReconfigRequest("some thing", None, None, -1), ReconfigRequest("some thing", None, None, 5),
                ReconfigRequest(None, "1", None, -1),
                ReconfigRequest("server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456", None, None, -1)]
    seen = {}
    for cls in (refzk.RefZooKeeper, ZkopsProcess):
        server = cls(extra_cfg={"reconfigEnabled": "true"} if enabled else {}).start()
        try:
            c = RawClient(server.address)
            out = []
            for r in requests:
                h, _ = c.request(16, r)
                out.append((h.zxid, h.err))
                h, body = c.request(4, PathRequest("/zookeeper/config", False))
                out.append((h.zxid, h.err))
            c.close()
            seen[cls.__name__] = out
        finally:
            server.cleanup()
    assert seen["ZkopsProcess"] == seen["RefZooKeeper"]


def test_a_bare_session_looks_the_same_on_both(pool):
    a, z, a_alive, z_alive = run_pair([{"k": "connect", "c": 0}], pool)
    assert a == z and a_alive and z_alive
