"""The quorum port's links: packets written in one turn of the loop go out together, in order,
and nothing queued is lost when the link closes."""

from __future__ import annotations

import asyncio

from zkops.server import quorumwire as qw
from zkops.server.quorumnet import _Link
from zkops.server.quorumwire import PacketType as T


class _Writer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _packets() -> list[qw.QuorumPacket]:
    return [qw.QuorumPacket(T.PROPOSAL, 0x100000001, b"txn", None), qw.QuorumPacket(T.COMMIT, 0x100000001),
            qw.QuorumPacket(T.PING, 0x100000001, b"", (("digest", "u:p"),))]


def test_one_turn_is_one_send_in_order() -> None:
    async def main() -> list[bytes]:
        w = _Writer()
        link = _Link(w, 2, 1)  # type: ignore[arg-type]
        a, b, c = _packets()
        link.write(a)
        link.write(b, c)
        assert w.sent == []  # queued until the turn ends
        await asyncio.sleep(0)
        link.write(a)
        await asyncio.sleep(0)
        return w.sent

    sent = asyncio.run(main())
    a, b, c = _packets()
    assert sent == [b"".join(qw.encode_packet(p) for p in (a, b, c)), qw.encode_packet(a)]


def test_close_sends_what_is_queued_first() -> None:
    async def main() -> _Writer:
        w = _Writer()
        link = _Link(w, 2, 1)  # type: ignore[arg-type]
        link.write(_packets()[0], extra=b"stream")
        link.close()
        link.write(_packets()[1])  # after the close: dropped
        await asyncio.sleep(0)
        return w

    w = asyncio.run(main())
    assert w.closed and w.sent == [qw.encode_packet(_packets()[0]) + b"stream"]


def _read_all(chunks: list[bytes], n: int, snap_after: int | None = None, take: bool = False) -> list[object]:
    """Feed ``chunks`` to a stream and read ``n`` packets through the link's framer (and the SNAP
    stream after packet number ``snap_after``); with ``take``, as the links' readers do: what the
    buffer holds without an await, the rest awaited."""
    from zkops.server.quorumnet import _Framer

    async def main() -> list[object]:
        r = asyncio.StreamReader()

        async def feed() -> None:
            for c in chunks:
                r.feed_data(c)
                await asyncio.sleep(0)
            r.feed_eof()

        task = asyncio.ensure_future(feed())
        f = _Framer(r)
        got: list[object] = []
        for i in range(n):
            p = f.take() if take else None
            got.append(p if p is not None else await f.packet(tried=take))
            if i == snap_after:
                got.append(await f.run(qw.read_snap_stream()))
        await task
        return got

    return asyncio.run(main())


def test_framer_reads_packets_however_the_bytes_arrive() -> None:
    big = qw.QuorumPacket(T.PROPOSAL, 7, bytes(range(256)) * 1000, None)  # more than one read
    packets = _packets() + [big] + _packets()
    raw = b"".join(qw.encode_packet(p) for p in packets)
    for size in (1, 3, 16, 17, 1000, len(raw)):
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
        assert _read_all(chunks, len(packets)) == packets
        assert _read_all(chunks, len(packets), take=True) == packets


def test_framer_reads_a_snap_stream_between_packets() -> None:
    body = b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x01/"  # no sessions, no ACLs, the end
    stream = body + b"\x00\x00\x00\x0aBenWasHere"
    snap = qw.QuorumPacket(T.SNAP, 5)
    raw = qw.encode_packet(snap) + stream + qw.encode_packet(_packets()[1])
    for size in (1, 5, len(raw)):
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
        assert _read_all(chunks, 2, snap_after=0) == [snap, body, _packets()[1]]
        assert _read_all(chunks, 2, snap_after=0, take=True) == [snap, body, _packets()[1]]


def test_framer_at_eof_inside_a_packet() -> None:
    import pytest

    raw = qw.encode_packet(_packets()[0])
    with pytest.raises(asyncio.IncompleteReadError):
        _read_all([raw, raw[:-1]], 2)
    with pytest.raises(asyncio.IncompleteReadError):
        _read_all([raw, raw[:-1]], 2, take=True)


# ---------------------------------------------------------------- what reaches the core
def _network(delivered: list[object], requests: list[object]):  # type: ignore[no-untyped-def]
    from zkops.server.quorumnet import QuorumCallbacks, QuorumNetwork

    cb = QuorumCallbacks(
        deliver=lambda sid, env: delivered.append(env.msg), link_down=lambda sid: None, is_leading=lambda: True,
        request=lambda sid, req, auth: requests.append(req), pinged=lambda sid, sessions: None,
        revalidate=lambda session, timeout: True, touched=lambda: [], synced=lambda: None,
        activate_leader=lambda zxid: None, last_seen_config=lambda: b"", config_version=lambda: 0,
        history_last=lambda: 0)
    return QuorumNetwork(1, ("127.0.0.1", 0), cb)


def _drive(side: str, chunks: list[bytes], n: int) -> tuple[list[object], list[object]]:
    """Feed ``chunks`` (each its own read) to the leader's (or the learner's) packet handler."""
    from zkops.server.quorumnet import _Framer

    delivered: list[object] = []
    requests: list[object] = []
    net = _network(delivered, requests)

    async def main() -> None:
        r = asyncio.StreamReader()
        link = _Link(_Writer(), 2, 1)  # type: ignore[arg-type]
        link.uptodate = True
        f = _Framer(r)
        pending = list(chunks)
        r.feed_data(pending.pop(0))
        for i in range(n):
            if i and pending and f.pos >= len(f.buf):  # the framer took all it read: the next read is this chunk
                r.feed_data(pending.pop(0))
            p = f.take()
            if p is None:
                p = await f.packet(tried=True)
            if side == "leader":
                net._leader_packet(link, p, f)
            else:
                net._learner_packet(link, p, None, f)

    asyncio.run(main())
    return delivered, requests


def test_a_run_of_acks_in_one_read_reaches_the_core_as_its_last() -> None:
    """ZAB's leader counts an ACK for every proposal up to it: of consecutive ACKs read together
    only the last goes to the core (one followed by a lower ACK goes too)."""
    from zkops.server.zab import Ack

    z = 0x500000000
    req = qw.ForwardedRequest(7, 1, 5, b"")
    raw = [qw.encode_bare(T.ACK, z + 1), qw.encode_bare(T.ACK, z + 2),
           qw.encode_packet(qw.QuorumPacket(T.REQUEST, -1, qw.encode_request(req), ())),
           qw.encode_bare(T.ACK, z + 4), qw.encode_bare(T.ACK, z + 3), qw.encode_bare(T.ACK, z + 6),
           qw.encode_bare(T.ACK, z + 7)]
    delivered, requests = _drive("leader", [b"".join(raw)], len(raw))
    assert requests == [req]
    # the REQUEST's liveness Ping is left out: the core heard from the learner in this read
    assert delivered == [Ack(z + 2), Ack(z + 4), Ack(z + 7)]


def test_a_request_in_a_read_of_its_own_shows_the_learner_alive() -> None:
    from zkops.server.zab import Ack, Ping

    req = qw.encode_packet(qw.QuorumPacket(T.REQUEST, -1, qw.encode_request(qw.ForwardedRequest(7, 1, 5, b"")), ()))
    delivered, requests = _drive("leader", [qw.encode_bare(T.ACK, 0x500000001), req], 2)
    assert len(requests) == 1 and delivered == [Ack(0x500000001), Ping(0)]


def test_a_run_of_commits_in_one_read_reaches_the_core_as_its_last() -> None:
    from zkops.server.zab import Commit, Proposal

    z = 0x500000000
    raw = [qw.encode_bare(T.COMMIT, z + 1), qw.encode_bare(T.COMMIT, z + 2),
           qw.encode_with_data(T.PROPOSAL, z + 3, b"txn"), qw.encode_bare(T.COMMIT, z + 3),
           qw.encode_bare(T.COMMIT, z + 2)]
    delivered, _ = _drive("learner", [b"".join(raw)], len(raw))
    assert delivered == [Commit(z + 2), Proposal(z + 3, b"txn"), Commit(z + 3), Commit(z + 2)]
    # one read each: every COMMIT goes to the core
    delivered, _ = _drive("learner", raw[:2], 2)
    assert delivered == [Commit(z + 1), Commit(z + 2)]
