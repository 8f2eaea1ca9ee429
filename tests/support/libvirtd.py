"""A libvirt daemon for the VM tests: the machine's own if it answers, else one of the tests' own.

Where there is no init system (containers, CI runners) nobody starts libvirtd; the tests then
run ``virtlogd`` and ``libvirtd`` as their own children and stop them by pid afterwards. The
VMs, volumes and networks a test made are removed by name before that (``cleanup``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

URI = "qemu:///system"


class LibvirtUnavailable(RuntimeError):
    pass


def virsh(*args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


def answers() -> bool:
    try:
        return virsh("uri", timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Daemons:
    """virtlogd + libvirtd, started only if libvirt does not answer already."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.dir: Path | None = None
        for tool in ("virsh", "libvirtd", "virtlogd", "vagrant", "qemu-system-x86_64"):
            if shutil.which(tool) is None:
                raise LibvirtUnavailable(f"{tool} is not installed: run scripts/install-test-deps")
        if answers():
            return
        self.dir = Path(tempfile.mkdtemp(prefix="zkops-libvirtd-"))
        try:
            for exe in ("virtlogd", "libvirtd"):
                with open(self.dir / f"{exe}.log", "ab") as log:
                    self.procs.append(subprocess.Popen([exe], stdout=log, stderr=subprocess.STDOUT,
                                                       start_new_session=True))
                if exe == "virtlogd":
                    time.sleep(0.5)
            deadline = time.monotonic() + 60
            while not answers():
                dead = [p for p in self.procs if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    tail = (self.dir / "libvirtd.log").read_text(errors="replace")[-2000:]
                    raise LibvirtUnavailable(f"libvirtd did not come up: {tail}")
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

    @property
    def started(self) -> bool:
        return bool(self.procs)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def names(kind: str) -> list[str]:
    """Domains (``list``), networks (``net-list``) or the default pool's volumes (``vol-list``)."""
    args = {"list": ["list", "--all", "--name"], "net-list": ["net-list", "--all", "--name"],
            "vol-list": ["vol-list", "default"]}[kind]
    out = virsh(*args)
    if out.returncode != 0:
        return []
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if kind == "vol-list":  # "Name Path" table
        lines = [line.split()[0] for line in lines[2:]] if len(lines) > 2 and lines[1].startswith("-") else []
    return lines


def cleanup(prefix: str) -> list[str]:
    """Remove every domain, volume and network whose name starts with ``prefix``; what was removed."""
    removed = []
    for dom in names("list"):
        if dom.startswith(prefix):
            virsh("destroy", dom)
            virsh("undefine", dom, "--remove-all-storage")
            removed.append(f"domain {dom}")
    for vol in names("vol-list"):
        if vol.startswith(prefix):
            virsh("vol-delete", "--pool", "default", vol)
            removed.append(f"volume {vol}")
    for net in names("net-list"):
        if net.startswith(prefix):
            virsh("net-destroy", net)
            virsh("net-undefine", net)
            removed.append(f"network {net}")
    return removed
