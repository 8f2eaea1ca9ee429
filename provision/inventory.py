"""Inventories: which hosts form the ensemble, with Ansible-like group and host vars.

```yaml
all:
  vars: {tickTime: 2000, initLimit: 10, syncLimit: 5}
  hosts:
    zk1: {connection: local, address: 127.0.0.1, client_port: 2181, quorum_port: 2888, election_port: 3888}
```

Validation happens before any host is touched; every error names its YAML path and
says what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_VARS: dict[str, Any] = {
    "tickTime": 2000, "initLimit": 10, "syncLimit": 5, "maxClientCnxns": 60,
    "autopurge.snapRetainCount": 3, "autopurge.purgeInterval": 24,
    "4lw.commands.whitelist": "ruok,srvr,stat,mntr,conf,isro,envi,dirs,cons,wchs",
}
HOST_KEYS = {"connection", "address", "client_address", "client_port", "quorum_port", "election_port", "myid",
             "role", "base_dir", "data_dir", "data_log_dir", "ssh_host", "ssh_user", "ssh_port", "ssh_key", "become",
             "python", "vars", "java"}
CONNECTIONS = {"local", "ssh"}


class InventoryError(ValueError):
    """The inventory is wrong; the message names the YAML path and the fix."""


@dataclass
class Host:
    name: str
    connection: str
    address: str
    client_port: int
    quorum_port: int
    election_port: int
    myid: int
    role: str = "participant"
    client_address: str = "0.0.0.0"
    base_dir: Path = Path("/var/lib/zkops")
    data_dir: Path = Path("/var/lib/zkops/data")
    data_log_dir: Path | None = None
    ssh_user: str | None = None
    ssh_port: int = 22
    ssh_key: str | None = None
    ssh_host: str | None = None  # where SSH connects, when not ``address`` (a NAT port forward, a bastion name)
    become: bool = False  # run the play's commands through ``sudo -n`` (set when ssh_user is not root)
    python: str | None = None  # the interpreter of the node's venv (default: found at gather facts)
    vars: dict[str, Any] = field(default_factory=dict)
    java: dict[str, Any] | None = None  # how Apache ZooKeeper runs there today (zkops migrate)


@dataclass
class Inventory:
    hosts: list[Host]
    vars: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    source: str = "<embedded>"


def default_local(base: Path | None = None, nodes: int = 3) -> Inventory:
    """The embedded default: three nodes on 127.0.0.1 with distinct ports and directories."""
    base = base or Path(os.environ.get("ZKOPS_LOCAL_DIR", Path.home() / ".local/state/zkops/local"))
    data = {"all": {"vars": {"tickTime": 500, "initLimit": 10, "syncLimit": 5,
                             "4lw.commands.whitelist": "*"},
                    "hosts": {f"zk{i}": {"connection": "local", "address": "127.0.0.1",
                                         "client_address": "127.0.0.1",
                                         "client_port": 2180 + i, "quorum_port": 2887 + i,
                                         "election_port": 3887 + i, "base_dir": str(base / f"zk{i}"),
                                         "vars": {"admin.serverPort": 8079 + i}}  # AdminServers 8080-8082
                              for i in range(1, nodes + 1)}}}
    return parse(data, "<embedded default>")


def load(path: Path | str) -> Inventory:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, str(path))


def _int(value: Any, where: str, low: int = 1, high: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError:
            raise InventoryError(f"{where}: {value!r} is not a whole number") from None
    if not low <= value <= high:
        raise InventoryError(f"{where}: {value} is outside {low}-{high}")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InventoryError(f"{where}: {value!r} must be true or false")


def parse(data: Any, source: str = "<inventory>") -> Inventory:
    if not isinstance(data, dict) or "all" not in data or not isinstance(data["all"], dict):
        raise InventoryError(f"{source}: expected a top-level 'all:' group with 'hosts:' (see docs/deploy.md)")
    group = data["all"]
    unknown = set(group) - {"vars", "hosts", "children"}
    if unknown:
        raise InventoryError(f"{source}: all.{sorted(unknown)[0]}: unknown key (use vars, hosts)")
    gvars = dict(DEFAULT_VARS)
    gvars.update(group.get("vars") or {})
    hosts_in = group.get("hosts") or {}
    if not isinstance(hosts_in, dict) or not hosts_in:
        raise InventoryError(f"{source}: all.hosts: list at least one host")
    hosts: list[Host] = []
    used_ids: dict[int, str] = {}
    for name, hv in hosts_in.items():
        where = f"{source}: all.hosts.{name}"
        hv = dict(hv or {})
        bad = set(hv) - HOST_KEYS
        if bad:
            raise InventoryError(f"{where}.{sorted(bad)[0]}: unknown key (known: {', '.join(sorted(HOST_KEYS))})")
        conn = hv.get("connection", "ssh")
        if conn not in CONNECTIONS:
            raise InventoryError(f"{where}.connection: {conn!r} must be local or ssh")
        role = hv.get("role", "participant")
        if role not in ("participant", "observer"):
            raise InventoryError(f"{where}.role: {role!r} must be participant or observer")
        myid = hv.get("myid")
        if myid is not None:
            myid = _int(myid, f"{where}.myid", 1, 254)
            if myid in used_ids:
                raise InventoryError(f"{where}.myid: {myid} is also {used_ids[myid]}'s; give each host its own")
            used_ids[myid] = name
        base = Path(hv.get("base_dir", f"/var/lib/zookeeper/{name}" if conn == "local" else "/var/lib/zkops"))
        hosts.append(Host(
            name=name, connection=conn, address=str(hv.get("address", name)),
            client_port=_int(hv.get("client_port", 2181), f"{where}.client_port"),
            quorum_port=_int(hv.get("quorum_port", 2888), f"{where}.quorum_port"),
            election_port=_int(hv.get("election_port", 3888), f"{where}.election_port"),
            myid=myid or 0, role=role, client_address=str(hv.get("client_address", "0.0.0.0")),
            base_dir=base, data_dir=Path(hv.get("data_dir", base / "data")),
            data_log_dir=Path(hv["data_log_dir"]) if hv.get("data_log_dir") else None,
            ssh_user=hv.get("ssh_user"), ssh_port=_int(hv.get("ssh_port", 22), f"{where}.ssh_port"),
            ssh_key=hv.get("ssh_key"), ssh_host=hv.get("ssh_host"),
            become=_bool(hv.get("become", hv.get("ssh_user") not in (None, "root")), f"{where}.become"),
            python=str(hv["python"]) if hv.get("python") else None, vars=dict(hv.get("vars") or {}),
            java=hv.get("java")))
    # stable myids for hosts that have none: in inventory order, skipping used ones
    next_id = 1
    for h in hosts:
        if not h.myid:
            while next_id in used_ids:
                next_id += 1
            h.myid = next_id
            used_ids[next_id] = h.name
    seen: dict[tuple[str, int], str] = {}
    for h in hosts:
        for kind, port in (("client_port", h.client_port), ("quorum_port", h.quorum_port),
                           ("election_port", h.election_port)):
            key = (h.address, port)
            if key in seen:
                raise InventoryError(f"{source}: all.hosts.{h.name}.{kind}: {h.address}:{port} is already used by "
                                     f"{seen[key]}; give each node its own ports")
            seen[key] = f"{h.name}.{kind}"
    inv = Inventory(hosts, gvars, source=source)
    voters = [h for h in hosts if h.role == "participant"]
    if len(voters) % 2 == 0:
        inv.warnings.append(f"{source}: {len(voters)} voters: an even number tolerates no more failures than "
                            f"{len(voters) - 1}; consider an odd number")
    return inv
