"""zkops deploy: Ansible-style tasks with ok/changed/failed, a recap, and status checks.

This module holds the play: render zoo.cfg and myid with Jinja2, start nodes that are
not running, restart only those whose files changed (followers first, the leader
last), then check the ensemble. Hosts with ``connection: local`` run on this machine
as separate processes; ``connection: ssh`` hosts are not supported yet (the deploy
issue tracks it) and fail their tasks with a clear message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2

from .. import __version__
from ..server.fourletterclient import four_letter_or_empty
from .inventory import Host, Inventory
from .status import EnsembleStatus, check_ensemble


@dataclass
class TaskResult:
    host: str
    task: str
    status: str  # ok | changed | failed | skipped
    message: str = ""


@dataclass
class Recap:
    results: list[TaskResult] = field(default_factory=list)
    status: EnsembleStatus | None = None

    def add(self, host: str, task: str, status: str, message: str = "") -> TaskResult:
        r = TaskResult(host, task, status, message)
        self.results.append(r)
        return r

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            c = out.setdefault(r.host, {"ok": 0, "changed": 0, "failed": 0, "skipped": 0})
            c[r.status] += 1
        return out

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.results) or (self.status is not None and not self.status.healthy)


def _env() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(lambda name: resources.files("zkops.templates").joinpath(name).read_text())
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


PLAY_VARS = {"firewall", "firewall_peers_only", "tls", "tls_port", "java"}  # steer the play; not zoo.cfg settings
TLS_DIR = "/etc/zkops/tls"


def tls_settings(merged: dict, host: Host) -> dict[str, object]:
    """zoo.cfg keys for ``tls: true`` on an SSH host: a TLS client port and mutual TLS between servers,
    with the certificates ``zkops deploy`` makes (provision/pki.py) in /etc/zkops/tls."""
    if not merged.get("tls") or host.connection != "ssh":
        return {}
    return {"secureClientPort": int(merged.get("tls_port", 2281)),
            "ssl.keyStore.location": f"{TLS_DIR}/node.pem", "ssl.trustStore.location": f"{TLS_DIR}/ca.pem",
            "ssl.clientAuth": "want", "sslQuorum": "true",
            "ssl.quorum.keyStore.location": f"{TLS_DIR}/node.pem",
            "ssl.quorum.trustStore.location": f"{TLS_DIR}/ca.pem"}


def render(inv: Inventory, host: Host) -> dict[str, str]:
    """The files one host needs, by name: zoo.cfg and myid."""
    env = _env()
    merged = dict(inv.vars)
    merged.update(host.vars)
    known = {"tickTime", "initLimit", "syncLimit", "maxClientCnxns", "autopurge.snapRetainCount",
             "autopurge.purgeInterval", "4lw.commands.whitelist"}
    extra = {k: v for k, v in merged.items() if k not in known and k not in PLAY_VARS}
    extra.update(tls_settings(merged, host))
    ctx = {"host": host, "vars": merged, "peers": inv.hosts, "extra": extra, "version": __version__}
    return {"zoo.cfg": env.get_template("zoo.cfg.j2").render(**ctx),
            "myid": env.get_template("myid.j2").render(**ctx).strip() + "\n"}


def _write_if_changed(path: Path, content: str) -> bool:
    try:
        if path.read_text() == content:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)
    return True


def _pid(host: Host) -> int | None:
    try:
        pid = int((host.data_dir / "zookeeper_server.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _zkserver(host: Host, command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ZOO_LOG_DIR=str(host.base_dir / "logs"))
    return subprocess.run([sys.executable, "-m", "zkops.server", command, str(host.base_dir / "conf" / "zoo.cfg")],
                          capture_output=True, text=True, env=env, timeout=120)


def _wait_serving(host: Host, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Mode: " in four_letter_or_empty(host.address, host.client_port, "srvr"):
            return True
        time.sleep(0.2)
    return False


def deploy(inv: Inventory, check_only: bool = False) -> Recap:
    recap = Recap()
    changed_hosts: list[Host] = []
    for host in inv.hosts:
        if host.connection != "local":
            recap.add(host.name, "connect", "failed", "connection: ssh is not implemented yet (see the deploy issue)")
            continue
        files = render(inv, host)
        conf = host.base_dir / "conf"
        for task, path, content in (("render zoo.cfg", conf / "zoo.cfg", files["zoo.cfg"]),
                                    ("write myid", host.data_dir / "myid", files["myid"])):
            if check_only:
                try:
                    same = path.read_text() == content
                except OSError:
                    same = False
                recap.add(host.name, task, "ok" if same else "changed", "(check mode)")
                continue
            changed = _write_if_changed(path, content)
            recap.add(host.name, task, "changed" if changed else "ok", str(path))
            if changed and host not in changed_hosts:
                changed_hosts.append(host)
    if check_only:
        return recap
    local = [h for h in inv.hosts if h.connection == "local"]
    # start what is not running
    for host in local:
        if _pid(host) is None:
            out = _zkserver(host, "start")
            ok = out.returncode == 0
            recap.add(host.name, "start service", "changed" if ok else "failed",
                      "" if ok else (out.stdout + out.stderr).strip()[-500:])
            if host in changed_hosts:
                changed_hosts.remove(host)
        else:
            recap.add(host.name, "start service", "ok", f"running as {_pid(host)}")
    # restart the changed ones, one at a time, followers first and the leader last
    modes = {h.name: _mode(h) for h in changed_hosts}
    for host in sorted(changed_hosts, key=lambda h: modes[h.name] == "leader"):
        pid = _pid(host)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if _pid(host) is None:
                    break
                time.sleep(0.1)
        out = _zkserver(host, "start")
        ok = out.returncode == 0 and _wait_serving(host)
        recap.add(host.name, "restart (files changed)", "changed" if ok else "failed",
                  "" if ok else (out.stdout + out.stderr).strip()[-500:])
    recap.status = check_ensemble(local)
    return recap


def _mode(host: Host) -> str | None:
    for line in four_letter_or_empty(host.address, host.client_port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:]
    return None


def down(inv: Inventory) -> Recap:
    recap = Recap()
    for host in inv.hosts:
        if host.connection != "local":
            recap.add(host.name, "stop service", "skipped", "not a local host")
            continue
        pid = _pid(host)
        if pid is None:
            recap.add(host.name, "stop service", "ok", "not running")
            continue
        out = _zkserver(host, "stop")
        recap.add(host.name, "stop service", "changed" if out.returncode == 0 else "failed", out.stdout.strip())
    return recap
