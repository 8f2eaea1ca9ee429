"""benchmarks.cpu and benchmarks.startup run (numbers are not asserted: docs/performance.md)."""

from __future__ import annotations

import math

from benchmarks import cpu, startup


def test_in_process_cpu_per_request_runs_every_op():
    for op in ("get", "set", "create"):
        [us] = cpu.measure(op, requests=256, sessions=4, depth=4, reps=1)
        assert us > 0


def test_startup_measures_a_server_until_it_serves():
    wall, used, _ = startup.start_once({})
    assert wall > 0
    assert math.isnan(used) or used > 0


def test_in_process_cpu_per_request_with_a_txn_log(tmp_path):
    """--txnlog: the writes go through a real txn log (its directory is removed afterwards)."""
    for op in ("set", "create"):
        [us] = cpu.measure(op, requests=256, sessions=4, depth=4, reps=1, txnlog=str(tmp_path), fsync=False)
        assert us > 0
    assert list(tmp_path.iterdir()) == []
