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


def test_kazoo_suite_passes_but_for_known_failures():
    done = subprocess.run([str(ROOT / "tests/compat/run_kazoo_suite.sh"), "-p", "no:warnings", "--timeout", "120",
                           "-rf"], capture_output=True, text=True, timeout=1800)
    out = done.stdout + done.stderr
    summary = re.search(r"(?:(\d+) failed, )?(\d+) passed(?:, (\d+) skipped)?", out)
    assert summary, out[-3000:]
    failed = set(re.findall(r"^FAILED \S+::(\w+::\w+)", out, re.M))
    assert failed <= KNOWN_FAILURES, f"new failures: {sorted(failed - KNOWN_FAILURES)}\n{_failure_report(out)}"
    passed, skipped = int(summary.group(2)), int(summary.group(3) or 0)
    assert passed >= 490 and skipped <= 3, summary.group(0)


def _failure_report(out: str, limit: int = 6000) -> str:
    """pytest's tracebacks of the failed tests, without the client's reconnection chatter
    (kazoo logs every refused connection, and those lines would crowd out the assertion)."""
    start = out.find("= FAILURES =")
    body = out[start:] if start >= 0 else out
    noise = ("Connection dropped", "Transition to CONNECTING", "Connection time-out")
    lines = [line for line in body.splitlines() if not any(n in line for n in noise)]
    return "\n".join(lines)[-limit:]
