"""What ``lab up --backend vagrant`` checks before it runs ``vagrant up``.

Each missing piece is named with how to get it, all at once, before anything is made: Vagrant
itself, a provider that can run (VirtualBox, or the vagrant-libvirt plugin with a libvirt
daemon that answers), the box the ``Vagrantfile`` will boot, and the memory the VMs need.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .model import LabError
from .vagrantbox import BOX_NAME, box_installed

FALLBACK_BOX = "debian/bookworm64"  # the Vagrantfile's default without our own box
DEFAULT_MEMORY_MIB = 768  # the Vagrantfile's default
QEMU_OVERHEAD_MIB = 160  # per VM, on top of its memory: QEMU itself, its page tables, the video RAM
HOST_RESERVE_MIB = 256  # left to the host: vagrant, ssh, the lab's own commands


@dataclass
class Plan:
    provider: str  # libvirt | virtualbox
    box: str
    memory_mib: int
    nodes: int


def _vagrant_plugins() -> str:
    try:
        done = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout


def provider(env: dict[str, str]) -> str:
    """The provider ``vagrant up`` will use: the one asked for, else VirtualBox if installed, else libvirt."""
    asked = env.get("VAGRANT_DEFAULT_PROVIDER")
    if asked:
        return asked
    return "virtualbox" if shutil.which("VBoxManage") else "libvirt"


def box_for(provider_name: str, env: dict[str, str]) -> str:
    """The box the Vagrantfile boots under this provider (the same rule as the Vagrantfile's)."""
    if env.get("ZKOPS_BOX"):
        return env["ZKOPS_BOX"]
    if provider_name == "libvirt" and box_installed(BOX_NAME):
        return BOX_NAME
    return FALLBACK_BOX


def available_mib(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def needed_mib(nodes: int, memory_mib: int) -> int:
    return nodes * (memory_mib + QEMU_OVERHEAD_MIB) + HOST_RESERVE_MIB


def libvirt_problem(uri: str = "qemu:///system") -> str | None:
    if shutil.which("virsh") is None:
        return ("libvirt is not installed: apt install libvirt-daemon-system libvirt-clients qemu-system-x86 "
                "qemu-utils vagrant-libvirt")
    try:
        done = subprocess.run(["virsh", "-c", uri, "uri"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"libvirt at {uri} does not answer within 30 s"
    if done.returncode != 0:
        return (f"libvirtd does not answer at {uri} ({done.stderr.strip()[-200:]}): start it with "
                "`systemctl start libvirtd virtlogd`, or `virtlogd -d && libvirtd -d` where there is no init system")
    return None


def preflight(env: dict[str, str], nodes: int, meminfo: Path = Path("/proc/meminfo")) -> Plan:
    """Everything ``vagrant up`` needs, or a LabError naming every piece that is missing."""
    if shutil.which("vagrant") is None:
        raise LabError("vagrant is not installed: apt install vagrant, plus vagrant-libvirt and "
                       "libvirt-daemon-system (or VirtualBox)")
    problems: list[str] = []
    chosen = provider(env)
    if chosen == "libvirt":
        if "vagrant-libvirt" not in _vagrant_plugins():
            problems.append("the vagrant-libvirt plugin is missing: apt install vagrant-libvirt "
                            "(or `vagrant plugin install vagrant-libvirt`), or install VirtualBox")
        problem = libvirt_problem(env.get("LIBVIRT_DEFAULT_URI", "qemu:///system"))
        if problem:
            problems.append(problem)
    elif chosen == "virtualbox" and shutil.which("VBoxManage") is None:
        problems.append("VirtualBox is not installed (VBoxManage not found); or use libvirt: "
                        "VAGRANT_DEFAULT_PROVIDER=libvirt")
    box = box_for(chosen, env)
    if not box_installed(box):
        how = ("build it offline with `sudo zkops lab vagrant box`" if box == BOX_NAME or chosen == "libvirt"
               else "ask a machine with internet for it")
        problems.append(f"Vagrant has no box {box}: {how}, or `vagrant box add {box} --provider {chosen}` "
                        "(a download of some hundred MB)")
    try:
        memory = int(env.get("ZKOPS_MEMORY", DEFAULT_MEMORY_MIB))
    except ValueError:
        problems.append(f"ZKOPS_MEMORY={env.get('ZKOPS_MEMORY')!r} is not a number of MiB")
        memory = DEFAULT_MEMORY_MIB
    have = available_mib(meminfo)
    need = needed_mib(nodes, memory)
    if have is not None and have < need:
        problems.append(f"not enough free memory for {nodes} VMs of {memory} MiB: {need} MiB needed, {have} MiB "
                        "available; stop other VMs, use fewer --nodes, or set ZKOPS_MEMORY lower (512 is the least "
                        "a Debian VM boots with)")
    if problems:
        raise LabError("cannot bring the Vagrant lab up:\n  - " + "\n  - ".join(problems))
    return Plan(chosen, box, memory, nodes)


def environment(nodes: int, subnet: str) -> dict[str, str]:
    """The environment of every ``vagrant`` command of a lab."""
    return dict(os.environ, ZKOPS_NODES=str(nodes), ZKOPS_SUBNET=subnet)
