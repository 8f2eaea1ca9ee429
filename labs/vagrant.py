"""The vagrant backend: the project's ``Vagrantfile`` boots zk1..zkN, ``zkops deploy`` installs them.

``vagrant up`` (with ``ZKOPS_NODES`` set to the lab's size) brings the VMs up on their
private network; ``vagrant ssh-config`` says how to reach each one (a NAT port forward on
127.0.0.1 under VirtualBox, the VM's own address under libvirt, always with the machine's
private key); the servers talk to each other on the private addresses the Vagrantfile
gives them (``$ZKOPS_SUBNET.11``, ``.12``, ...). From there on the lab is the ssh backend:
deploy, faults over SSH, and ``down`` also runs ``vagrant destroy -f``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .model import LabError, LabState
from .ssh import SshBackend
from .vagrantcheck import environment, preflight

DEFAULT_SUBNET = "192.168.56"  # the Vagrantfile's default; both read $ZKOPS_SUBNET


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """``vagrant ssh-config`` output -> {machine: {option (lower case): value}}."""
    machines: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip().strip('"')
        if key.lower() == "host":
            current = machines.setdefault(value, {})
        elif current is not None:
            current.setdefault(key.lower(), value)  # ssh takes the first value given
    return machines


def inventory_from_ssh_config(text: str, voters: int, observers: int = 0, tick_ms: int = 2000,
                              subnet: str = DEFAULT_SUBNET) -> dict[str, Any]:
    """The inventory for a lab of ``voters`` + ``observers`` VMs named zk1..zkN by the Vagrantfile."""
    machines = parse_ssh_config(text)
    total = voters + observers
    hosts: dict[str, Any] = {}
    for i in range(1, total + 1):
        name = f"zk{i}"
        cfg = machines.get(name)
        if cfg is None:
            raise LabError(f"`vagrant ssh-config` has no {name} (it lists {', '.join(machines) or 'nothing'}); "
                           f"is ZKOPS_NODES at least {total}?")
        if "hostname" not in cfg:
            raise LabError(f"`vagrant ssh-config` gives no HostName for {name}; is the VM running?")
        host: dict[str, Any] = {"address": f"{subnet}.{10 + i}", "ssh_host": cfg["hostname"],
                                "ssh_port": int(cfg.get("port", "22")), "ssh_user": cfg.get("user", "vagrant"),
                                "myid": i, "role": "observer" if i > voters else "participant"}
        if "identityfile" in cfg:
            host["ssh_key"] = cfg["identityfile"]
        host["become"] = host["ssh_user"] != "root"
        hosts[name] = host
    return {"all": {"vars": {"tickTime": tick_ms, "initLimit": 10, "syncLimit": 5, "4lw.commands.whitelist": "*"},
                    "hosts": hosts}}


def find_vagrant_dir(given: str | None = None) -> Path:
    """Where the Vagrantfile is: ``--vagrant-dir``, ``$ZKOPS_VAGRANT_DIR``, the current directory,
    else this checkout's root."""
    if given:
        if not (Path(given) / "Vagrantfile").is_file():
            raise LabError(f"no Vagrantfile in {given}: write one with `zkops lab vagrant init {given}`")
        return Path(given)
    for candidate in (os.environ.get("ZKOPS_VAGRANT_DIR"), Path.cwd(), Path(__file__).resolve().parent.parent):
        if candidate and (Path(candidate) / "Vagrantfile").is_file():
            return Path(candidate)
    raise LabError("no Vagrantfile found: write one with `zkops lab vagrant init DIR`, then pass --vagrant-dir DIR "
                   "or run from DIR")


def write_vagrantfile(where: Path, force: bool = False) -> Path:
    """Write the packaged Vagrantfile (``labs/files/Vagrantfile``) into ``where``."""
    from importlib import resources

    target = Path(where) / "Vagrantfile"
    content = resources.files("zkops.labs").joinpath("files").joinpath("Vagrantfile").read_bytes()
    if target.exists() and not force and target.read_bytes() != content:
        raise LabError(f"{target} exists and differs from zkops' Vagrantfile; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target


def inventory_yaml(vagrant_dir: str | None, voters: int, observers: int, tick_ms: int) -> str:
    """The inventory of VMs that are already up, for ``zkops deploy`` by hand."""
    import yaml

    where = find_vagrant_dir(vagrant_dir)
    subnet = os.environ.get("ZKOPS_SUBNET", DEFAULT_SUBNET)
    env = environment(voters + observers, subnet)
    text = _vagrant(where, "ssh-config", env=env, capture=True)
    return yaml.safe_dump(inventory_from_ssh_config(text, voters, observers, tick_ms, subnet), sort_keys=False)


def _vagrant(vagrant_dir: Path, *args: str, env: dict[str, str], capture: bool) -> str:
    if shutil.which("vagrant") is None:
        raise LabError("vagrant is not installed (Debian: apt install vagrant, plus VirtualBox or libvirt)")
    done = subprocess.run(["vagrant", *args], cwd=vagrant_dir, env=env, text=True,
                          capture_output=capture, timeout=3600)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip()[-800:] if capture else "see the output above"
        raise LabError(f"`vagrant {' '.join(args)}` failed in {vagrant_dir}: {detail}")
    return done.stdout or ""


class VagrantBackend(SshBackend):
    name = "vagrant"

    @classmethod
    def create(cls, lab_dir: Path, nodes: int, observers: int, tick_ms: int, vagrant_dir: str | None = None,
               wheel: str | None = None) -> LabState:
        where = find_vagrant_dir(vagrant_dir)
        subnet = os.environ.get("ZKOPS_SUBNET", DEFAULT_SUBNET)
        env = environment(nodes + observers, subnet)
        preflight(env, nodes + observers)  # before anything is made
        began = time.monotonic()
        try:
            _vagrant(where, "up", env=env, capture=False)
            booted = time.monotonic() - began
            config = _vagrant(where, "ssh-config", env=env, capture=True)
            data = inventory_from_ssh_config(config, nodes, observers, tick_ms, subnet)
            state = cls.from_inventory(lab_dir, data, wheel)
        except BaseException as exc:
            # A VM that never got an address, a box that would not boot: remove what `up` made.
            try:
                _vagrant(where, "destroy", "-f", env=env, capture=True)
            except LabError as again:
                raise LabError(f"{exc}\n(and removing the VMs failed too: {again})") from exc
            raise
        state.extra.update({"vagrant_dir": str(where), "vagrant_nodes": nodes + observers, "subnet": subnet,
                            "vagrant_up_s": round(booted, 1)})
        return state

    def prepare(self) -> None:
        began = time.monotonic()
        super().prepare()
        self.state.extra["deploy_s"] = round(time.monotonic() - began, 1)

    def destroy(self) -> None:
        try:
            super().destroy()
        finally:
            where = self.state.extra.get("vagrant_dir")
            if where:
                env = environment(int(self.state.extra.get("vagrant_nodes", 3)),
                                  self.state.extra.get("subnet", DEFAULT_SUBNET))
                _vagrant(Path(where), "destroy", "-f", env=env, capture=False)
