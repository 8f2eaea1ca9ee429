"""A session that moves from an Apache follower to a zkops follower under an Apache leader.

Apache's leader remembers which learner owns each session and refuses (SESSIONMOVED) a write
forwarded by another one; a learner that takes over a reconnecting session tells the leader
with REVALIDATE. Found by zkops migrate: a client of a Java server being replaced reconnected
to an already migrated zkops follower and got SESSIONMOVED on every write until the leader
changed."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionMovedError

from tests.support import refzk
from tests.support.mixed import MixedEnsemble

pytestmark = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")

DEADLINE = 90.0


@pytest.mark.timeout(300)
def test_a_session_moved_to_a_zkops_follower_writes_through_an_apache_leader() -> None:
    # zkops has the lowest sid: an Apache server leads
    ens = MixedEnsemble({1: "zkops", 2: "apache", 3: "apache"}, extra={"maxSessionTimeout": "60000"})
    k = None
    try:
        ens.start()
        leader = ens.wait_ready(timeout=DEADLINE)
        assert ens.kinds[leader] == "apache"
        follower = next(i for i in (2, 3) if i != leader)
        k = KazooClient(hosts=f"{ens.address(follower)},{ens.address(1)}", timeout=30, randomize_hosts=False,
                        connection_retry={"max_tries": -1, "max_delay": 0.5})
        k.start(timeout=60)
        k.create("/before", b"")
        session = k.client_id[0]
        ens.kill(follower)  # the client's session moves to the zkops follower
        moved = 0
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                k.create("/after", b"")
                break
            except ConnectionLoss:
                pass  # still reconnecting
            except SessionMovedError:
                moved += 1
            assert time.monotonic() < deadline, f"no write went through; {moved} SESSIONMOVED\n{ens.log_tail()}"
            time.sleep(0.2)
        assert moved == 0, f"{moved} writes refused with SESSIONMOVED before one went through"
        assert k.client_id[0] == session
        assert ens.leader() == leader
    finally:
        if k is not None:
            k.stop()
            k.close()
        ens.cleanup()
