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
from tests.support.rawclient import RawClient, four_letter
from zkops.server.acl import OPEN_ACL_UNSAFE
from zkops.server.codes import Op
from zkops.server.records import CreateRequest
from zkops.server.sessions import session_password

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


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kinds", [{1: "zkops", 2: "apache", 3: "apache"}, {1: "apache", 2: "zkops", 3: "zkops"}],
                         ids=["apache-leads", "zkops-leads"])
def test_a_zkops_follower_asks_the_leader_about_a_session_it_does_not_hold(kinds: dict[int, str]) -> None:
    """The learner's REVALIDATE with a waited-for answer, against either kind of leader: a session
    nobody made (its password right) is expired because the leader says so, the answer leaves the
    follower's connection to the leader intact, and a real session moves as before."""
    ens = MixedEnsemble(kinds)
    try:
        ens.start()
        leader = ens.wait_ready(timeout=DEADLINE)
        ours = next(i for i in ens.ids if i != leader and kinds[i] == "zkops")
        other = next(i for i in ens.ids if i not in (leader, ours))
        ghost = (leader << 56) | 0x5EED
        c = RawClient(ens.address(ours), session_id=ghost, passwd=session_password(ghost))
        assert c.session_id == 0  # expired: the leader does not know it
        c.close()
        if kinds[leader] == "apache":  # its LearnerHandler counts every REVALIDATE it answers
            assert _mntr(ens, leader)["zk_revalidate_count"] >= 1
        else:
            log = (ens.workdir / f"n{ours}" / "zkops-server.log").read_text(errors="replace")
            assert f"Session 0x{ghost:x} of client 127.0.0.1 is not known here: asking the leader" in log
        real = RawClient(ens.address(other))
        moved = RawClient(ens.address(ours), session_id=real.session_id, passwd=real.connect_response.passwd)
        assert moved.session_id == real.session_id
        hdr, _ = moved.request(Op.create, CreateRequest("/moved", b"", OPEN_ACL_UNSAFE, 0))
        assert hdr.err == 0
        real.close()
        moved.close()
        assert ens.leader() == leader and ens.modes()[ours] == "follower", ens.log_tail()
    finally:
        ens.cleanup()


def _mntr(ens: MixedEnsemble, i: int) -> dict[str, int]:
    rows = (line.split("\t", 1) for line in four_letter(ens.address(i), "mntr").splitlines() if "\t" in line)
    return {k: int(v) for k, v in rows if v.strip().lstrip("-").isdigit()}
