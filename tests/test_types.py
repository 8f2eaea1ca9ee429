"""The package type-checks: mypy over all of zkops, strict for zkops.server.

``scripts/typecheck`` lays the package out as installed (the source tree maps
``zkops.server`` to ``server/`` and so on) and runs mypy with ``[tool.mypy]`` of
pyproject.toml; any error fails this test with mypy's report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_errors() -> None:
    env = dict(os.environ, ZKOPS_PYTHON=sys.executable)
    proc = subprocess.run([str(ROOT / "scripts" / "typecheck")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, "mypy found errors:\n" + report
    assert "Success" in report, report
