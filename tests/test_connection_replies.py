"""ClientConnection's reply encoders: the create reply written straight from its path
(send_path_reply) is byte for byte the CreateResponse record send_reply writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.ourzk import memory_config
from zkops.server.connection import ClientConnection
from zkops.server.records import CreateResponse
from zkops.server.zkserver import ZooKeeperServer


@pytest.fixture
def server() -> Iterator[ZooKeeperServer]:
    """A real server (a compiled build refuses stand-ins) that is never started, with a batch for
    the replies to join instead of a loop callback."""
    loop = asyncio.new_event_loop()
    try:
        s = ZooKeeperServer(memory_config(0), loop=loop)
        s.out_batch = []
        yield s
    finally:
        loop.close()


@pytest.mark.parametrize("path", ["/a", "/bench/r0s1-17", "/", "/\u00e9\u4e2d/\U0001f600", "/x" * 500])
def test_path_reply_is_a_create_response(path: str, server: ZooKeeperServer) -> None:
    by_record = ClientConnection(server)
    by_record.send_reply(7, 0x100000002, 0, CreateResponse(path))
    by_path = ClientConnection(server)
    by_path.send_path_reply(7, 0x100000002, path)
    assert bytes(by_path.out) == bytes(by_record.out)
    assert by_path.packets_sent == by_record.packets_sent == 1
    assert by_path.flush_scheduled and server.out_batch is not None and by_path in server.out_batch
