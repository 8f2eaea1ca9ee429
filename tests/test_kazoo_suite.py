"""kazoo's own test suite against zkops: the yardstick nobody here wrote.

Runs tests/compat/run_kazoo_suite.sh (kazoo's harness starting a three-server zkops cluster
through the java stand-in) and holds the result to what Apache ZooKeeper 3.8 achieves:
every test passes except the ones listed in KNOWN_FAILURES, each with its reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]  # its own limit: 1800 s

ROOT = Path(__file__).resolve().parent.parent
KNOWN_FAILURES: set[str] = set()  # every test that passes against Apache 3.8 passes here


def _run(*args: str) -> str:
    done = subprocess.run([str(ROOT / "tests/compat/run_kazoo_suite.sh"), "-p", "no:warnings", "--timeout", "120",
                           "-rf", *args], capture_output=True, text=True, timeout=1800)
    return done.stdout + done.stderr


def _failed(out: str) -> set[str]:
    return set(re.findall(r"^FAILED \S+::(\w+::\w+)", out, re.M))


def test_kazoo_suite_passes_but_for_known_failures():
    out = _run()
    summary = re.search(r"(?:(\d+) failed, )?(\d+) passed(?:, (\d+) skipped)?", out)
    assert summary, out[-3000:]
    failed = _failed(out) - KNOWN_FAILURES
    if failed:
        # A few of kazoo's tests give a client 5 s to be served again after a member stops;
        # on a loaded machine one of them misses now and then (issue 21 tracks the tail).
        # Those are run once more on their own: a failure that repeats fails the suite.
        print(f"kazoo tests failed once, run again: {sorted(failed)}\n{_failure_report(out)}")
        again = _run("-k", " or ".join(sorted({name.split("::")[1] for name in failed})))
        assert re.search(r"\d+ passed", again), again[-3000:]
        repeated = _failed(again)
        assert not repeated, f"failed twice: {sorted(repeated)}\n{_failure_report(again)}"
    passed, skipped = int(summary.group(2)), int(summary.group(3) or 0)
    assert passed + len(failed) >= 490 and skipped <= 3, summary.group(0)


def _failure_report(out: str, limit: int = 6000) -> str:
    """pytest's tracebacks of the failed tests, without the client's reconnection chatter
    (kazoo logs every refused connection, and those lines would crowd out the assertion)."""
    start = out.find("= FAILURES =")
    body = out[start:] if start >= 0 else out
    noise = ("Connection dropped", "Transition to CONNECTING", "Connection time-out")
    lines = [line for line in body.splitlines() if not any(n in line for n in noise)]
    return "\n".join(lines)[-limit:]
