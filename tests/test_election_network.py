"""The election port's connections (server/electionnet.py) on both event loops a server runs.

A server killed while a peer dials it can accept the connection and be gone before the dialler
writes its first byte. asyncio's own loop drops bytes written to such a connection; uvloop's
raises. Either way the dialler must dial that peer again later: a restarted member that no one
dials back never hears the leader, and stays LOOKING while the others serve.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.refzk import free_port
from zkops.server import electionnet
from zkops.server import electionwire as ew
from zkops.server.election import Notification, ServerState, Vote

_LEN = struct.Struct(">i")


def _loops() -> list[Any]:
    loops: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # the test extra installs it; a bare host runs the asyncio case
        return loops
    return loops + [pytest.param(uvloop.new_event_loop, id="uvloop")]


class FakePeer:
    """A smaller sid's election port: records who dials it and the first notification each sends."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dialled = 0
        self.heard: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> asyncio.Server:
        return await asyncio.start_server(self._conn, "127.0.0.1", self.port)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.dialled += 1
        self.writers.append(writer)
        try:
            head = await reader.readexactly(8)
            rest = await reader.readexactly(12)
            (n,) = _LEN.unpack_from(rest, 8)
            initial = ew.decode_initial(head + rest + await reader.readexactly(n))
            (size,) = _LEN.unpack(await reader.readexactly(4))
            await self.heard.put((initial.sid, await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


def _run(loop_factory: Callable[[], asyncio.AbstractEventLoop], main: Any) -> Any:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)


@pytest.mark.parametrize("loop_factory", _loops())
def test_a_peer_gone_before_our_first_byte_is_dialled_again(loop_factory, monkeypatch):
    """The first dial's connection is dead by the time the dialler writes (the peer was killed
    after its kernel accepted); later sends must dial the peer again and reach it."""
    real_open = asyncio.open_connection
    opened = 0

    async def open_then_lose(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nonlocal opened
        opened += 1
        reader, writer = await real_open(*args, **kwargs)
        if opened == 1:
            writer.transport.abort()
            for _ in range(3):  # let the loop finish closing it, as a busy server's would
                await asyncio.sleep(0)
        return reader, writer

    monkeypatch.setattr(electionnet.asyncio, "open_connection", open_then_lose)

    async def main() -> tuple[int, bytes, int]:
        peer = FakePeer()
        server = await peer.start()
        net = electionnet.ElectionNetwork(3, ("127.0.0.1", free_port()), {2: ("127.0.0.1", peer.port)},
                                          on_message=lambda sid, n: None, is_observer=lambda sid: False)
        await net.start()
        vote = Notification(3, ServerState.LEADING.value, Vote(1, 5, 3), 7)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while peer.heard.empty():
                assert loop.time() < deadline, (
                    f"server 2 was never dialled again: {opened} dial(s), dialling={net.dialing}")
                net.send(2, vote)  # what the election's resends and answers do
                await asyncio.sleep(0.05)
            sid, payload = await peer.heard.get()
            return sid, payload, opened
        finally:
            await net.stop()
            for w in peer.writers:
                w.close()
            server.close()

    sid, payload, dials = _run(loop_factory, main())
    assert dials >= 2
    assert sid == 3
    got = ew.to_core(3, ew.decode_notification(payload), False)
    assert (got.state, got.vote, got.round) == (ServerState.LEADING.value, Vote(1, 5, 3), 7)


@pytest.mark.parametrize("loop_factory", _loops())
def test_a_send_on_a_dead_connection_raises_nothing_and_dials_again(loop_factory, monkeypatch):
    """A connection the peer reset stays in the table until its reader notices; a send in that
    window must not raise (uvloop) and must not keep the peer from being dialled."""

    async def main() -> int:
        peer = FakePeer()
        server = await peer.start()
        net = electionnet.ElectionNetwork(3, ("127.0.0.1", free_port()), {2: ("127.0.0.1", peer.port)},
                                          on_message=lambda sid, n: None, is_observer=lambda sid: False)
        await net.start()
        vote = Notification(3, ServerState.LOOKING.value, Vote(1, 5, 3), 2)
        try:
            net.send(2, vote)
            await asyncio.wait_for(peer.heard.get(), 30)
            first = peer.dialled
            # the link goes dead under us: abort our side's transport, then send before the
            # reader task has run
            net.writers[2].transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)
            assert net.send(2, vote) is False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while peer.heard.empty():
                assert loop.time() < deadline, "server 2 was never dialled again"
                net.send(2, vote)
                await asyncio.sleep(0.05)
            return peer.dialled - first
        finally:
            await net.stop()
            for w in peer.writers:
                w.close()
            server.close()

    assert _run(loop_factory, main()) >= 1


@pytest.mark.parametrize("loop_factory", _loops())
def test_only_a_peer_seen_alive_and_then_lost_is_known_to_be_down(loop_factory):
    """What the election's finalize wait may stop waiting for (quorum._tell_reachable): a peer
    this server reached since it started and then lost. A peer not reached yet (its port not
    bound at a start, or our connection to it not made yet) is not known to be down: deciding
    without it elected, in a cluster started at once, a leader the other members did not."""

    async def main() -> None:
        vote = Notification(1, ServerState.LOOKING.value, Vote(0, 0, 1), 1)
        net3 = electionnet.ElectionNetwork(3, ("127.0.0.1", free_port()), {1: ("127.0.0.1", 0)},
                                           on_message=lambda sid, n: None, is_observer=lambda sid: False)
        net1 = electionnet.ElectionNetwork(1, ("127.0.0.1", free_port()),
                                           {2: ("127.0.0.1", free_port()), 3: net3.bind},
                                           on_message=lambda sid, n: None, is_observer=lambda sid: False)
        net3.set_peers({1: net1.bind})
        await net1.start()
        loop = asyncio.get_running_loop()

        async def until(what: Callable[[], bool], why: str) -> None:
            deadline = loop.time() + 30
            while not what():
                assert loop.time() < deadline, why
                await asyncio.sleep(0.02)

        try:
            assert net1.reachable(2) and net1.reachable(3)  # not tried yet
            net1.send(2, vote)  # nothing listens there: refused
            net1.send(3, vote)  # not started yet: refused
            await until(lambda: not net1.dialing, "the dials never ended")
            assert not net1.connected(2) and net1.reachable(2) and net1.reachable(3)  # never seen: unknown
            await net3.start()
            net1.kick()  # 1 announces itself to 3, which dials back
            await until(lambda: net1.connected(3), "server 3 never dialled back")
            assert net1.reachable(3)
            await net3.stop()
            await until(lambda: not net1.reachable(3), "the lost connection to server 3 was not noticed")
            assert net1.reachable(2)  # still never seen
        finally:
            await net1.stop()
            await net3.stop()

    _run(loop_factory, main())
