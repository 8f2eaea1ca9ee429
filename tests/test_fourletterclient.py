"""The package's one four-letter-word client (zkops.server.fourletterclient)."""

from __future__ import annotations

import socket

import pytest

from tests.support.ourzk import InProcessServer
from zkops.server.fourletterclient import four_letter, four_letter_or_empty


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_a_word_gets_the_whole_reply() -> None:
    with InProcessServer() as srv:
        assert four_letter("127.0.0.1", srv.port, "ruok") == "imok"
        assert "Mode: standalone" in four_letter("127.0.0.1", srv.port, "srvr")
        assert four_letter_or_empty("0.0.0.0", srv.port, "ruok") == "imok", "a wildcard address is asked on loopback"


def test_an_unreachable_server_raises_or_answers_empty() -> None:
    port = _closed_port()
    with pytest.raises(OSError):
        four_letter("127.0.0.1", port, "ruok", 2.0)
    assert four_letter_or_empty("127.0.0.1", port, "ruok", 2.0) == ""
