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
