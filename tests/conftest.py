"""Shared fixtures. The reference Apache ZooKeeper is in tests/support/refzk.py."""

from __future__ import annotations

import pytest

from tests.support import refzk


@pytest.fixture(scope="session")
def reference_zk():
    """A standalone Apache ZooKeeper 3.8 for the whole session (marker: reference)."""
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    server = refzk.RefZooKeeper().start()
    yield server
    server.cleanup()


# CI machines are slower and busier than a developer's: no per-example deadlines.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("zkops", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("zkops")
