"""The seams between the server's parts (docs/architecture.md, "Seams").

- The reports (4lw, mntr, AdminServer, metrics) read a server only through its
  ``stats.ServerStats`` view, never its fields or its cores.
- ``ZooKeeperServer`` decides by role in one place, its ``role`` (``Standalone`` or
  ``QuorumMember``); a quorum member's writes, syncs and numbers go through the
  ``Replication`` it joined.
- The quorum shell assigns no field of the server or of the cores.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.ourzk import InProcessServer, memory_config
from tests.support.rawclient import four_letter
from zkops.server.codes import Op
from zkops.server.connection import ClientConnection, Request
from zkops.server.servermode import ServerMode
from zkops.server.stats import LearnerReport, QuorumReport
from zkops.server.zab import LearnerPhase
from zkops.server.zkserver import QuorumMember, Standalone, ZooKeeperServer

SERVER = Path(__file__).resolve().parent.parent / "server"
REPORTS = ("fourletter.py", "mntr.py", "adminserver.py", "metrics.py")


def _tree(name: str) -> ast.AST:
    return ast.parse((SERVER / name).read_text())


@pytest.mark.parametrize("name", REPORTS)
def test_a_report_reads_only_the_stats_view(name: str) -> None:
    tree = _tree(name)
    fields = {"core", "ensemble", "pending", "committer", "counters", "zab"}
    touched = sorted({f"{ast.unparse(n)} (line {n.lineno})" for n in ast.walk(tree)
                      if isinstance(n, ast.Attribute) and n.attr in fields})
    assert not touched, f"{name} reads the server's insides: {touched}"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "ZooKeeperServer" not in names


def test_the_server_has_no_ensemble_switch() -> None:
    tree = _tree("zkserver.py")
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "ensemble"]


def test_the_quorum_shell_assigns_no_field_of_the_server_or_the_cores() -> None:
    tree = _tree("quorum.py")
    bad = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, (ast.Store, ast.Del)):
            base = ast.unparse(n.value)
            if base.split(".")[0] == "server" or base.startswith("self.server") or \
                    any(part in base.split(".") for part in ("core", "zab", "peer", "election", "prep", "sessions")):
                bad.append(f"{ast.unparse(n)} (line {n.lineno})")
    assert not bad, bad


def test_both_roles_answer_the_same_questions() -> None:
    def public(cls: type) -> set[str]:
        return {k for k, v in vars(cls).items() if callable(v) and not k.startswith("_")}

    assert public(Standalone) == public(QuorumMember)


class FakeReplication:
    """Records what a quorum member hands on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def client_write(self, conn: Any, req: Any, op: int, record: Any) -> None:
        self.calls.append(("client_write", op))

    def internal_write(self, session_id: int, op: int, record: Any, on_commit: Any) -> None:
        self.calls.append(("internal_write", op))

    def persisted(self, zxid: int) -> None:
        self.calls.append(("persisted", zxid))

    def client_sync(self, conn: Any, req: Any) -> bool:
        self.calls.append(("client_sync", req.op))
        return True

    def prepare_reconfig(self, r: Any, zxid: int, auth: list[Any]) -> bytes:
        return b""

    def report(self) -> QuorumReport:
        return QuorumReport(leader=3, established=True, election_ms=(12.5,),
                            learners=(LearnerReport(2, False, LearnerPhase.SYNCED, True, True),),
                            mntr_rows=(("zk_quorum_size", 3),), events=({"kind": "leader_elected"},))


@pytest.fixture
def server() -> Any:
    loop = asyncio.new_event_loop()
    try:
        yield ZooKeeperServer(memory_config(0), loop=loop, server_id=3)
    finally:
        loop.close()


def test_a_joined_server_serves_nobody_until_it_has_a_role(server: ZooKeeperServer) -> None:
    assert isinstance(server.role, Standalone) and server.stats.quorum() is None
    server.join(FakeReplication())
    assert isinstance(server.role, QuorumMember)
    assert server.mode() is ServerMode.LOOKING and not server.serving() and server.stats.looking_count == 1
    server.serve(ServerMode.FOLLOWER)
    assert server.mode() is ServerMode.FOLLOWER and server.serving() and not server.expire_sessions
    server.unserve()
    assert server.mode() is ServerMode.LOOKING and not server.serving() and server.stats.looking_count == 2
    server.serve(ServerMode.LEADER)
    assert server.expire_sessions  # the leader owns session expiry


def test_a_members_writes_syncs_and_numbers_go_through_its_replication(server: ZooKeeperServer) -> None:
    rep = FakeReplication()
    server.join(rep)
    server.serve(ServerMode.FOLLOWER)
    conn = ClientConnection(server)  # a real one (a compiled build refuses stand-ins), never connected
    conn.session_id = 0x55
    server.submit(conn, Request(1, Op.setData, None, 0.0, True), Op.setData, None)
    server.submit_internal(0x55, Op.closeSession, None)
    server.durable(7)
    assert server.role.sync(conn, Request(2, Op.sync, None, 0.0, False))
    assert rep.calls == [("client_write", Op.setData), ("internal_write", Op.closeSession), ("persisted", 7),
                         ("client_sync", Op.sync)]
    assert not server.pending  # nothing waits in the standalone pipeline
    q = server.stats.quorum()
    assert q is not None and q.leader == 3 and q.election_ms == (12.5,)
    server.role.touched(0x55)
    assert server.take_touched_sessions() == []  # 0x55 is not a live session here
    assert server.stats.server_id == 3


def test_the_4lw_answers_from_the_stats_view() -> None:
    with InProcessServer() as s:
        stats = s.server.stats
        srvr = four_letter(s.address, "srvr")
        assert f"Node count: {s.call(lambda: stats.node_count)}\n" in srvr
        assert f"Zxid: 0x{s.call(lambda: stats.last_zxid):x}\n" in srvr
        assert s.call(stats.mode) is ServerMode.STANDALONE and s.call(stats.quorum) is None
        assert four_letter(s.address, "elec") == ""  # no elections on a standalone server


def test_zab_tells_the_shell_what_it_needs_through_methods() -> None:
    from tests.test_zab_rules import established
    from zkops.server.zab import LearnerState

    net = established(n=3, leader=1, observers=(4,))
    leader = net.peers[1]
    assert leader.last_outstanding() is None
    zxid = leader.next_zxid()
    got, _ = leader.propose(b"txn")
    assert got == zxid and leader.last_outstanding() == zxid and leader.next_zxid() == zxid + 1
    assert sorted(leader.learner_states(), key=lambda lr: lr.sid) == [
        LearnerState(2, False, LearnerPhase.SYNCED, True), LearnerState(3, False, LearnerPhase.SYNCED, True),
        LearnerState(4, True, LearnerPhase.SYNCED, False)]
    assert leader.synced_followers() == {2, 3}
    assert leader.learner_alive(2) and not leader.learner_alive(9)
    assert leader.history.payload_of(zxid) == b"txn" and leader.history.payload_of(zxid + 1) is None


def test_a_members_session_ids_carry_its_server_id() -> None:
    loop = asyncio.new_event_loop()
    try:
        for server_id, top in ((3, 3), (0, 1)):  # standalone: 1, as before
            s = ZooKeeperServer(memory_config(0), loop=loop, server_id=server_id)
            assert s.core.sessions.new_session_id() >> 56 == top
            assert s.stats.server_id == server_id
    finally:
        loop.close()
