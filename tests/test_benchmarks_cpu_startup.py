"""benchmarks.cpu and benchmarks.startup run (numbers are not asserted: docs/performance.md)."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

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


def test_cpu_measures_another_tree_of_the_package_alternating_with_this_one(tmp_path, monkeypatch, capsys):
    """--variant NAME:DIR: each tree in a child process of its own, one repetition of each in turn."""
    root = Path(__file__).resolve().parent.parent
    tree = tmp_path / "tree"
    (tree / "zkops").mkdir(parents=True)
    for f in (root / "zkops").glob("*.py"):
        (tree / "zkops" / f.name).symlink_to(f)
    for d in ("server", "provision", "labs", "templates"):
        (tree / "zkops" / d).symlink_to(root / d)
    monkeypatch.setattr(sys, "argv", ["cpu", "--requests", "128", "--sessions", "2", "--reps", "2", "--ops", "get",
                                      "--variant", f"other:{tree}"])
    cpu.main()
    out = capsys.readouterr().out
    assert "2 repetitions, alternating" in out
    assert re.search(r"^get +this +[0-9.]+ \(", out, re.M), out
    assert re.search(r"^get +other +[0-9.]+ \(.*other/this [0-9.]+ \(", out, re.M), out
    monkeypatch.setattr(sys, "argv", ["cpu", "--variant", f"bad:{tmp_path}"])
    with pytest.raises(SystemExit, match="DIR/zkops/server"):
        cpu.main()
