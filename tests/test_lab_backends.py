"""Lab backends: every backend in the one table satisfies the Backend protocol (structurally:
every method, with parameters the protocol's callers can pass), and the CLI offers exactly the
table's names."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
import time

import pytest

from zkops.labs import cli
from zkops.labs.backends import BACKENDS, REGISTRY, Backend, backend_class
from zkops.labs.local import LocalBackend
from zkops.labs.model import LabError, LabState, Node


def _protocol_members() -> list[str]:
    return sorted(name for name, value in vars(Backend).items()
                  if callable(value) or isinstance(value, staticmethod)
                  if not name.startswith("_") or name == "__init__")


def _accepts(impl: inspect.Signature, proto: inspect.Signature) -> bool:
    """An implementation accepts every call the protocol's signature allows: the same
    parameters by name and position, and any more of its own only with defaults."""
    want = [p for p in proto.parameters.values() if p.name != "self"]
    have = [p for p in impl.parameters.values() if p.name != "self"]
    if [p.name for p in have[:len(want)]] != [p.name for p in want]:
        return False
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in have[len(want):])


def test_the_protocol_names_what_lab_asks_of_a_backend():
    assert set(_protocol_members()) >= {
        "__init__", "create", "prepare", "destroy", "start", "stop", "kill", "signal", "running",
        "process_state", "apply_faults", "election_events"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_backend_in_the_table_satisfies_the_protocol(name):
    cls = REGISTRY[name]
    for member in _protocol_members():
        impl = getattr(cls, member, None)
        assert callable(impl), f"{name} backend has no {member}"
        assert _accepts(inspect.signature(impl), inspect.signature(getattr(Backend, member))), \
            f"{name} backend's {member}{inspect.signature(impl)} does not take {inspect.signature(getattr(Backend, member))}"
    assert isinstance(object.__new__(cls), Backend)  # runtime_checkable: every member is there


def test_the_table_is_the_list_of_backends():
    assert BACKENDS == tuple(REGISTRY) == ("local", "netns", "docker", "vagrant", "ssh")
    assert all(backend_class(name) is cls for name, cls in REGISTRY.items())
    with pytest.raises(LabError, match="unknown backend 'nope'.*local, netns, docker, vagrant, ssh"):
        backend_class("nope")


def _backend_choices(parser: argparse.ArgumentParser, path: list[str]) -> tuple[str, ...]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and path:
            return _backend_choices(action.choices[path[0]], path[1:])
        if not path and "--backend" in action.option_strings:
            return tuple(action.choices)
    raise AssertionError(f"no --backend under {path}")


@pytest.mark.parametrize("command", ["up", "run"])
def test_the_cli_backend_choices_come_from_the_table(command):
    parser = argparse.ArgumentParser(prog="zkops")
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert _backend_choices(parser, ["lab", command]) == tuple(REGISTRY)


TERM_RECORDER = """
import pathlib, signal, sys, time
def term(*_):
    pathlib.Path(sys.argv[1]).with_name("terminated").write_text("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
pathlib.Path(sys.argv[1]).with_name("ready").write_text("")
time.sleep(120)
"""


def test_the_local_backend_stops_its_process_cleanly(tmp_path):
    """``stop`` (in the protocol, used by ``Lab.up --no-start``): SIGTERM to a process of the lab, then reaped."""
    (tmp_path / "n1").mkdir()
    cfg = tmp_path / "n1" / "zoo.cfg"  # the local backend recognises its processes by their zoo.cfg
    proc = subprocess.Popen([sys.executable, "-c", TERM_RECORDER, str(cfg)])
    try:
        node = Node(id=1, role="participant", host="127.0.0.1", client_port=0, quorum_port=0,
                    election_port=0, pid=proc.pid)
        backend = LocalBackend(tmp_path, LabState(backend="local", nodes=[node], tick_ms=500))
        deadline = time.monotonic() + 30
        while not (tmp_path / "n1" / "ready").exists() and time.monotonic() < deadline:  # its handler is set
            time.sleep(0.05)
        assert backend.running(node)
        backend.stop(node)
        assert backend.process_state(node) == "stopped"
        assert (tmp_path / "n1" / "terminated").read_text() == "SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
