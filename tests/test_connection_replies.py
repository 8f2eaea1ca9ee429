"""ClientConnection's reply encoders: the create reply written straight from its path
(send_path_reply) is byte for byte the CreateResponse record send_reply writes."""

from __future__ import annotations

from typing import Any

import pytest

from zkops.server.connection import ClientConnection
from zkops.server.records import CreateResponse


class _Server:
    """Only what a connection's reply path reads: a batch to join instead of a loop callback."""

    def __init__(self) -> None:
        self.out_batch: list[Any] = []


@pytest.mark.parametrize("path", ["/a", "/bench/r0s1-17", "/", "/\u00e9\u4e2d/\U0001f600", "/x" * 500])
def test_path_reply_is_a_create_response(path: str) -> None:
    server: Any = _Server()
    by_record = ClientConnection(server)
    by_record.send_reply(7, 0x100000002, 0, CreateResponse(path))
    by_path = ClientConnection(server)
    by_path.send_path_reply(7, 0x100000002, path)
    assert bytes(by_path.out) == bytes(by_record.out)
    assert by_path.packets_sent == by_record.packets_sent == 1
    assert by_path.flush_scheduled and by_path in server.out_batch
