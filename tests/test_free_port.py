"""The tests' port picker (tests.support.refzk.free_port): a port handed out once is not handed
out again in the same run. An ensemble asks for nine ports in a row, each checked free and then
released; a repeat gave two of its servers the same election port (seen in CI)."""

from __future__ import annotations

import random

import pytest

from tests.support import refzk


def test_a_port_is_never_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([23456, 23456, 23456, 23457, 23458])
    monkeypatch.setattr(refzk, "_ephemeral_low", lambda: 32768)
    monkeypatch.setattr(refzk, "_handed_out", set())
    monkeypatch.setattr(random, "randrange", lambda *_: next(draws))
    first, second = refzk.free_port(), refzk.free_port()
    assert first != second, "the same port was handed out twice"
    assert {first, second} <= {23456, 23457, 23458}


def test_many_ports_are_distinct() -> None:
    ports = [refzk.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
