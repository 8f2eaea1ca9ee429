"""Shared fixtures. The reference Apache ZooKeeper is in tests/support/refzk.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import refzk

# The servers the tests start run asyncio's own loop, as a bare install does, though the test
# extra installs uvloop: tests/test_eventloop.py and the kept fuzz cases run it on purpose.
os.environ.setdefault("ZKOPS_EVENT_LOOP", "asyncio")


@pytest.fixture(scope="session")
def reference_zk():
    """A standalone Apache ZooKeeper 3.8 for the whole session (marker: reference)."""
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    server = refzk.RefZooKeeper().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine of the tests' own (marker: docker), with DOCKER_HOST pointing at it and
    the debootstrap base image as the labs' image base."""
    import os

    from tests.support import dockerd

    if not dockerd.available():
        pytest.fail("the docker tests need root and Debian's docker.io (scripts/install-test-deps)")
    eng = dockerd.Engine()
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "ZKOPS_LAB_DOCKER_BASE")}
    try:
        os.environ["DOCKER_HOST"] = eng.url
        os.environ["ZKOPS_LAB_DOCKER_BASE"] = eng.base_image()
        yield eng
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        eng.stop()


# CI machines are slower and busier than a developer's: no per-example deadlines.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("zkops", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("zkops")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project wheel, built once per run, for the tests that install it on SSH hosts."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(root)], check=True)
    return next(out.glob("zkops-*.whl"))
