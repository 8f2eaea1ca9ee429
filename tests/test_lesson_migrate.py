"""Lab 12 (migrate from Java): the Apache ZooKeeper lab nodes, their migrate inventory, and the lesson
played `--auto` on the local backend with `check` passing (needs Debian's Apache ZooKeeper 3.8 and Java)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support import refzk
from zkops.labs import apache
from zkops.labs import cli as lab_cli
from zkops.labs.lab import Lab, LabError
from zkops.labs.local import LocalBackend
from zkops.labs.model import NodeStatus, Program
from zkops.provision.inventory import load
from zkops.provision.migrate import java_spec


def _pids_under(path: Path) -> list[int]:
    """Processes whose command line names ``path`` (servers and relays a lab under it started)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _kill_all_under(path: Path) -> list[int]:
    left = [p for p in _pids_under(path) if p != os.getpid()]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def test_an_apache_lab_writes_a_migrate_inventory_of_its_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(apache, "missing", lambda: None)  # only the layout: nothing is started
    state = LocalBackend.create(tmp_path, 3, 0, 500, program="apache")
    assert [n.program for n in state.nodes] == ["apache"] * 3
    inv = load(tmp_path / "migrate.yaml")
    assert [h.myid for h in inv.hosts] == [1, 2, 3]
    for host, node in zip(inv.hosts, state.nodes, strict=True):
        assert (host.connection, host.client_port, host.base_dir) == ("local", node.client_port,
                                                                     tmp_path / f"n{node.id}")
        spec = java_spec(inv, host)
        assert spec.zoo_cfg == tmp_path / f"n{node.id}" / "zoo.cfg"
        assert spec.pid_file == tmp_path / f"n{node.id}" / "java.pid"
        assert spec.command is not None and apache.MAIN_CLASS in spec.command and str(spec.zoo_cfg) in spec.command
        assert "maxSessionTimeout=60000" in spec.zoo_cfg.read_text()


def test_a_zkops_lab_writes_no_migrate_inventory(tmp_path: Path):
    state = LocalBackend.create(tmp_path, 3, 0, 500)
    assert [n.program for n in state.nodes] == ["zkops"] * 3
    assert not (tmp_path / "migrate.yaml").exists()


def test_apache_nodes_need_java_and_the_package_and_say_how_to_get_them(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(apache.shutil, "which", lambda name: None)
    with pytest.raises(LabError, match="Java runtime.*apt-get install zookeeper"):
        Lab.up(tmp_path / "lab", program="apache")
    assert not (tmp_path / "lab").exists(), "a refused lab leaves no directory"


def test_apache_nodes_run_on_the_local_backend_only(tmp_path: Path):
    with pytest.raises(LabError, match="local backend only"):
        Lab.up(tmp_path / "lab", backend="netns", program="apache")
    with pytest.raises(LabError, match="unknown server program"):
        Lab.up(tmp_path / "lab", program="cobol")
    assert not (tmp_path / "lab").exists()


def test_which_program_a_server_runs():
    assert apache.program_of("java -cp x org.apache.zookeeper.server.quorum.QuorumPeerMain /z.cfg") == Program.APACHE
    assert apache.program_of("python -m zkops.server start-foreground /z.cfg") == Program.ZKOPS
    status = NodeStatus(1, "participant", "h:1", "running", "leader", 1, 0, 0,
                        "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC")
    assert status.program == Program.APACHE
    assert NodeStatus(1, "participant", "h:1", "running", "leader", 1, 0, 0, "3.8.0-zkops-0.1.0").program == "zkops"
    assert NodeStatus(1, "participant", "h:1", "stopped", None, None, None, None).program is None
    table = lab_cli.status_table([status])
    assert [c.header for c in table.columns][:4] == ["node", "role", "process", "server"]


def test_the_lab_commands_take_apache_and_start_as():
    import argparse

    ap = argparse.ArgumentParser()
    lab_cli.add_parser(ap.add_subparsers(dest="command"))
    assert ap.parse_args(["lab", "up", "--apache"]).apache
    assert ap.parse_args(["lab", "start", "2", "--as", "zkops"]).program == "zkops"
    with pytest.raises(SystemExit):
        ap.parse_args(["lab", "start", "2", "--as", "cobol"])


@pytest.mark.integration
@pytest.mark.timeout(900)
@pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")
def test_lab_12_plays_auto_from_apache_to_zkops_and_check_passes(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture):
    """`zkops lab run 12 --auto`, then `zkops lab check 12`: the Java ensemble ends as zkops with no
    acknowledged write lost, the same tree everywhere, a quorum up throughout and every session kept."""
    lab_dir = tmp_path / "lab"
    try:
        t0 = time.monotonic()
        played = lab_cli.standalone(["lab", "--dir", str(lab_dir), "run", "12", "--auto"])
        took = time.monotonic() - t0
        out = capsys.readouterr().out
        checked = lab_cli.standalone(["lab", "--dir", str(lab_dir), "check", "12"])
        report = capsys.readouterr().out
        assert played == 0, out[-6000:]
        assert checked == 0, report + out[-6000:]
        assert "not seen" not in report
        print(f"lab 12 played in {took:.1f} s")
        assert not lab_dir.exists(), "the lab's ensemble is torn down after playing"
        deadline = time.monotonic() + 30
        while _pids_under(lab_dir) and time.monotonic() < deadline:  # a stopped server may take a moment to go
            time.sleep(0.1)
        assert not _pids_under(lab_dir), "a server the lab or migrate started is still running"
    finally:
        _kill_all_under(lab_dir)
