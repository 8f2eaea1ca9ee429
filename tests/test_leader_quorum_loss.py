"""A leader whose followers have stopped must stop leading at once (issue 21).

kazoo's test_update_host_list once waited more than 5 s for its session: a member restarted
while the third was still starting, the two of them elected a new leader, and the old leader,
left alone, went on holding client connections it could no longer commit for. It only gave up
on a tick-based timeout whose start-up grace (syncLimit ticks counted from the start of its
leadership) could last several ticks after its last follower's connection had closed. Apache's
leader checks its synced followers every tick; ours now steps down as soon as the connections
to the followers it needs are gone. tickTime 5000 and syncLimit 10 make the old timeout close
to a minute, far beyond this test's deadline, so the test tells the two behaviours apart
without measuring anything.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.ensemble import Ensemble, mode

pytestmark = pytest.mark.timeout(180)


def test_a_leader_left_without_followers_stops_leading_at_once() -> None:
    ens = Ensemble(3, tick_ms=5000, extra={"initLimit": "10", "syncLimit": "10"})
    try:
        ens.start()
        leader = ens.wait_ready(90)
        for i in ens.ids:
            if i != leader:
                ens.kill(i, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and mode(ens.client_port(leader)) == "leader":
            time.sleep(0.1)
        assert mode(ens.client_port(leader)) != "leader", (
            f"member {leader} still leads 30 s after its followers stopped\n{ens.log_tail()}")
    finally:
        ens.cleanup()
