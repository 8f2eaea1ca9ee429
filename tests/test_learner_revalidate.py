"""A learner asked to reattach a session it has not applied yet asks the leader (REVALIDATE).

A client that makes its session on one follower and moves to another at once (before its
first reply carries a zxid, so the second server cannot refuse it for being behind) may reach a
follower whose tree has not applied the createSession commit yet. Apache's learners ask the
leader and wait for its answer; zkops learners answered "expired" on their own, which kills a
live session (its ephemerals go with it, kazoo reports LOST). Now the learner holds the
connection until the leader answers: expired only when the leader says so; when it vouches for
the session, the learner waits for the commit to reach its own tree (the leader sent it before
the answer, on the same connection); without a verdict the connection closes unanswered and the
client tries again, as on any lost connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.ourzk import memory_config
from zkops.server import zkserver
from zkops.server.records import ConnectRequest, ConnectResponse
from zkops.server.servermode import ServerMode
from zkops.server.sessions import session_password
from zkops.server.stats import QuorumReport
from zkops.server.zkserver import ZooKeeperServer

SID = (2 << 56) | 7  # a session server 2 made


class AskingReplication:
    """A quorum member's replication whose leader answers when the test says."""

    def __init__(self, leader_reachable: bool = True) -> None:
        self.asked: list[tuple[int, Callable[[bool | None], None]]] = []
        self.told: list[int] = []
        self.leader_reachable = leader_reachable

    def client_write(self, conn: Any, req: Any, op: int, record: Any) -> None:
        pass

    def internal_write(self, session_id: int, op: int, record: Any, on_commit: Any) -> None:
        pass

    def persisted(self, zxid: int) -> None:
        pass

    def client_sync(self, conn: Any, req: Any) -> bool:
        return True

    def prepare_reconfig(self, r: Any, zxid: int, auth: list[Any]) -> bytes:
        return b""

    def report(self) -> QuorumReport:
        return QuorumReport(leader=1, established=True, election_ms=(), learners=(), mntr_rows=(), events=())

    def session_reconnected(self, session: int, timeout: int) -> None:
        self.told.append(session)

    def ask_session(self, session: int, timeout: int, answer: Callable[[bool | None], None]) -> bool:
        if not self.leader_reachable:
            return False
        self.asked.append((session, answer))
        return True


class Conn:
    """The parts of a client connection the connect path uses."""

    peer = ("127.0.0.1", 40000)
    readonly_requested = False

    def __init__(self) -> None:
        self.connected = False
        self.closing = False
        self.held = False
        self.session_id = 0
        self.timeout = 0
        self.responses: list[ConnectResponse] = []
        self.drained = 0

    def send_connect_response(self, resp: ConnectResponse, readonly: bool) -> None:
        self.responses.append(resp)

    def close(self) -> None:
        self.closing = True

    def drain(self) -> None:
        self.drained += 1


@pytest.fixture
def follower() -> Iterator[tuple[ZooKeeperServer, AskingReplication, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    try:
        server = ZooKeeperServer(memory_config(0), loop=loop, server_id=3)
        rep = AskingReplication()
        server.join(rep)
        server.serve(ServerMode.FOLLOWER)
        yield server, rep, loop
    finally:
        loop.close()


def _reattach(server: ZooKeeperServer, sid: int = SID, passwd: bytes | None = None) -> Conn:
    conn = Conn()
    server.connect(conn, ConnectRequest(0, 0, 10000, sid, session_password(sid) if passwd is None else passwd))  # type: ignore[arg-type]
    return conn


def _commit_session(server: ZooKeeperServer, sid: int = SID) -> None:
    server.core.sessions.add(sid, 10000, zkserver._now_ms())


def test_the_learner_waits_for_the_leader_instead_of_calling_the_session_expired(follower: Any) -> None:
    server, rep, _ = follower
    conn = _reattach(server)
    assert conn.responses == [] and not conn.closing and conn.held  # held, pipelined requests too
    assert [s for s, _ in rep.asked] == [SID]
    _commit_session(server)  # the leader's COMMIT came before its answer, on the same connection
    rep.asked[0][1](True)
    assert [(r.sessionId, r.timeOut) for r in conn.responses] == [(SID, 10000)]
    assert conn.session_id == SID and not conn.held and conn.drained == 1 and not conn.closing
    assert rep.told == [SID]  # and the leader learns the session's new owner, as on any reattach


def test_a_session_the_leader_vouched_for_is_awaited_until_its_commit_is_applied(follower: Any) -> None:
    server, rep, loop = follower
    conn = _reattach(server)
    rep.asked[0][1](True)  # answered before our log let us apply the commit
    assert conn.responses == [] and not conn.closing
    loop.run_until_complete(asyncio.sleep(0.02))
    assert conn.responses == [] and not conn.closing  # still waiting for it
    _commit_session(server)
    loop.run_until_complete(asyncio.sleep(0.05))
    assert [r.sessionId for r in conn.responses] == [SID] and not conn.closing


def test_the_leader_saying_expired_is_expired(follower: Any) -> None:
    server, rep, _ = follower
    conn = _reattach(server)
    rep.asked[0][1](False)
    assert [r.sessionId for r in conn.responses] == [0] and conn.closing


def test_no_verdict_closes_without_an_answer_so_the_client_tries_again(follower: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    server, rep, loop = follower
    conn = _reattach(server)
    rep.asked[0][1](None)  # the connection to the leader closed first
    assert conn.responses == [] and conn.closing
    monkeypatch.setattr(zkserver, "REVALIDATE_APPLY_WAIT_MS", 0)
    conn = _reattach(server)
    rep.asked[1][1](True)  # vouched for, but the commit never comes within the wait
    loop.run_until_complete(asyncio.sleep(0.02))
    assert conn.responses == [] and conn.closing


def test_a_wrong_password_or_no_leader_is_answered_at_once(follower: Any) -> None:
    server, rep, _ = follower
    conn = _reattach(server, passwd=b"\x01" * 16)
    assert [r.sessionId for r in conn.responses] == [0] and conn.closing and rep.asked == []
    rep.leader_reachable = False
    conn = _reattach(server)
    assert [r.sessionId for r in conn.responses] == [0] and conn.closing


def test_a_client_that_went_away_meanwhile_gets_nothing(follower: Any) -> None:
    server, rep, _ = follower
    conn = _reattach(server)
    conn.closing = True
    _commit_session(server)
    rep.asked[0][1](True)
    assert conn.responses == []
