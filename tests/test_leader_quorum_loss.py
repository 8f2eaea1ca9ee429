"""An established leader whose followers have stopped stops leading at its next tick (issue 21).

kazoo's test_update_host_list once waited more than 5 s for its session: a new leader had
just been elected when the member it needed stopped, and the leader, left alone, went on
holding client connections it could no longer commit for. It only gave up on a tick-based check
that granted it syncLimit ticks counted from the start of its leadership. Apache's leader checks
at every tick, once established, that the learners it is synced with make a quorum, with no
such allowance; ours does the same now (the check stays periodic: stepping down on the closing
links themselves livelocked the simulation).

With tickTime 5000 and syncLimit 20 the old allowance lasts 100 s from the start of the
leadership, far past this test's deadline, while the check fires within one tick (5 s) of the
followers' connections closing: the deadline tells the two apart without measuring anything.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.ensemble import Ensemble, mode

pytestmark = pytest.mark.timeout(240)


def test_an_established_leader_left_without_followers_stops_leading() -> None:
    ens = Ensemble(3, tick_ms=5000, extra={"initLimit": "20", "syncLimit": "20"})
    try:
        ens.start()
        leader = ens.wait_ready(120)
        for i in ens.ids:
            if i != leader:
                ens.kill(i, signal.SIGTERM)
        port = ens.client_port(leader)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and mode(port) == "leader":
            time.sleep(0.2)
        assert mode(port) != "leader", (
            f"member {leader} still leads 45 s after its followers stopped\n{ens.log_tail()}")
        assert ens.procs[leader].poll() is None, "the leader's process died instead of going back to election"
    finally:
        ens.cleanup()
