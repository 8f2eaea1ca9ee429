"""The Vagrant lab on real VMs: three libvirt VMs from the box `zkops lab vagrant box` builds here.

`zkops lab up --backend vagrant` boots them (QEMU's TCG where KVM cannot run guests, as the
Vagrantfile's probe decides), deploys over SSH with the inventory from `vagrant ssh-config`;
then a partition and its heal with iptables inside the VMs, lesson 06 played unattended and
graded by `zkops lab check`, and `zkops lab down`, after which libvirt has no domain, volume
or network of the lab left. libvirtd and virtlogd are the tests' own children where nothing
runs them. Takes 10-20 minutes without KVM; the timings are printed (`-s` shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import libvirtd

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def libvirt():
    try:
        daemons = libvirtd.Daemons()
    except libvirtd.LibvirtUnavailable as exc:
        pytest.fail(f"the VM tests need libvirt: {exc}")
    try:
        yield daemons
    finally:
        daemons.stop()


def _zkops(*args: str, timeout: float) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "zkops.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))
    print(f"$ zkops {' '.join(args)} -> {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def _wait(probe, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


def _client(lab, ids: list[int]):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=lab.connect_string(ids), timeout=20,
                     connection_retry={"max_tries": -1, "delay": 0.5, "max_delay": 2},
                     command_retry={"max_tries": -1, "delay": 0.5, "max_delay": 2})
    zk.start(timeout=60)
    return zk


def test_three_vms_deploy_partition_lesson_and_leave_nothing(libvirt, wheel, tmp_path):
    from zkops.labs.lab import Lab
    from zkops.labs.lessons import find
    from zkops.labs.lessons.engine import play

    timings: dict[str, float] = {}
    t = time.monotonic()
    assert _zkops("lab", "vagrant", "box", timeout=1800).returncode == 0
    timings["box"] = time.monotonic() - t

    # libvirt names the lab's domains, disks and private network after this directory
    prefix = f"zkopsvm{uuid.uuid4().hex[:8]}"
    vagrant_dir = tmp_path / prefix
    vagrant_dir.mkdir()
    shutil.copy(ROOT / "Vagrantfile", vagrant_dir / "Vagrantfile")
    lab_dir = tmp_path / "lab"
    nets_before = set(libvirtd.names("net-list"))
    vols_before = set(libvirtd.names("vol-list"))
    lab_args = ("lab", "--dir", str(lab_dir))
    try:
        t = time.monotonic()
        up = _zkops(*lab_args, "up", "--backend", "vagrant", "--nodes", "3", "--tick-ms", "2000",
                    "--vagrant-dir", str(vagrant_dir), "--wheel", str(wheel), timeout=2400)
        timings["lab up to serving"] = time.monotonic() - t
        assert up.returncode == 0, up.stdout + up.stderr
        assert (vagrant_dir / ".vagrant" / "zkops-libvirt-driver").read_text().strip() in ("kvm", "qemu")
        doms = [d for d in libvirtd.names("list") if d.startswith(prefix)]
        assert sorted(doms) == [f"{prefix}_zk{i}" for i in (1, 2, 3)]

        lab = Lab.load(lab_dir)
        timings["of which vagrant up"] = lab.state.extra["vagrant_up_s"]
        timings["of which deploy"] = lab.state.extra["deploy_s"]
        assert [n.host for n in lab.state.nodes] == ["192.168.56.11", "192.168.56.12", "192.168.56.13"]
        _wait(lambda: sorted(str(m) for m in lab.modes().values()) == ["follower", "follower", "leader"], 120,
              "one leader and two followers")
        leader = lab.wait_leader(timeout=120)
        zk = _client(lab, [1, 2, 3])
        try:
            zk.create("/vm", b"up")
        finally:
            zk.stop()
            zk.close()

        # partition: the leader alone on one side, iptables inside the VMs
        rest = [i for i in (1, 2, 3) if i != leader]
        t = time.monotonic()
        assert _zkops(*lab_args, "partition", f"{rest[0]},{rest[1]}/{leader}", timeout=600).returncode == 0

        def majority_leader() -> int | None:
            modes = lab.modes()
            leaders = [i for i in rest if modes.get(i) == "leader"]
            return leaders[0] if modes.get(leader) is None and len(leaders) == 1 else None

        new_leader = _wait(majority_leader, 300, "the majority to elect a leader and the cut-off one to stop serving")
        timings["partition to new leader"] = time.monotonic() - t
        zk = _client(lab, rest)
        try:
            zk.create("/vm/during-partition", b"majority")
        finally:
            zk.stop()
            zk.close()
        t = time.monotonic()
        assert _zkops(*lab_args, "heal", timeout=600).returncode == 0
        _wait(lambda: lab.modes().get(leader) == "follower", 300, "the old leader to rejoin")
        timings["heal to rejoined"] = time.monotonic() - t
        zk = _client(lab, [leader])
        try:
            zk.sync("/vm")
            assert zk.get("/vm/during-partition")[0] == b"majority", "the rejoined server has the majority's write"
        finally:
            zk.stop()
            zk.close()
        print(f"leader {leader} cut off, {new_leader} elected by the majority; after the heal: {lab.leader()}")

        # lesson 06, unattended, on these VMs; graded by `zkops lab check`
        t = time.monotonic()
        lesson = find("06")
        journal = play(lesson, lambda nodes, observers, start: Lab.load(lab_dir), auto=True, keep=True,
                       state_dir=lab_dir.parent / f"{lab_dir.name}-journals",
                       say=lambda text="", style=None: print(text))
        timings["lesson 06"] = time.monotonic() - t
        assert journal.get("completed"), journal
        check = _zkops(*lab_args, "check", "06", timeout=120)
        assert check.returncode == 0, check.stdout

        t = time.monotonic()
        down = _zkops(*lab_args, "down", timeout=1800)
        timings["lab down"] = time.monotonic() - t
        assert down.returncode == 0, down.stdout + down.stderr
        assert not lab_dir.exists()
        assert [d for d in libvirtd.names("list") if d.startswith(prefix)] == []
        assert set(libvirtd.names("vol-list")) <= vols_before | {v for v in libvirtd.names("vol-list")
                                                                 if "_vagrant_box_image_" in v}
        assert [v for v in libvirtd.names("vol-list") if v.startswith(prefix)] == []
        assert set(libvirtd.names("net-list")) <= nets_before
    finally:
        left = libvirtd.cleanup(prefix)
        for net in set(libvirtd.names("net-list")) - nets_before:  # vagrant-libvirt's management network
            libvirtd.virsh("net-destroy", net)
            libvirtd.virsh("net-undefine", net)
            left.append(f"network {net}")
        print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
        print(f"left behind and removed by the test: {left or 'nothing'}")
