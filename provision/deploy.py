"""zkops deploy: render zoo.cfg and myid, start, restart what changed, check the ensemble.

Both connections run the same play (:mod:`.play`): per host a list of tasks that report ok /
changed / failed / skipped (and, for files, a unified diff that ``--diff`` prints), then the
services: start the nodes that are not running, restart rolling (followers first, the leader
last, each back before the next) those whose files or release changed, and check the ensemble.
This module has what is common to both (rendering) and the ``connection: local`` target: nodes
on this machine, separate processes under each host's ``base_dir``. ``connection: ssh`` hosts
get the same play over SSH, with the install, user, firewall and unit tasks of
:mod:`.remote` (``zkops deploy`` picks the SSH play when the inventory has SSH hosts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jinja2

from .. import __version__
from ..server import logsetup
from ..server.cli import running_pid
from ..server.config import PIDFILE_NAME
from .inventory import Host, Inventory
from .play import (
    Options,
    Play,
    Recap,
    Task,
    TaskFailed,
    TaskResult,
    file_task,
    start_unless_running,
    stop_task,
)
from .status import check_ensemble


def template_env() -> jinja2.Environment:
    """Jinja2 over the package's templates/ (StrictUndefined: a missing variable is an error)."""
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
    env = template_env()
    merged = dict(inv.vars)
    merged.update(host.vars)
    known = {"tickTime", "initLimit", "syncLimit", "maxClientCnxns", "autopurge.snapRetainCount",
             "autopurge.purgeInterval", "4lw.commands.whitelist"}
    extra = {k: v for k, v in merged.items() if k not in known and k not in PLAY_VARS}
    extra.update(tls_settings(merged, host))
    ctx = {"host": host, "vars": merged, "peers": inv.hosts, "extra": extra, "version": __version__}
    return {"zoo.cfg": env.get_template("zoo.cfg.j2").render(**ctx),
            "myid": env.get_template("myid.j2").render(**ctx).strip() + "\n"}


class LocalNode:
    """A ``connection: local`` host: a zkserver process on this machine, files under its base_dir."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def read(self, path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

    def write(self, path: str, content: str, mode: str) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(content)
        tmp.chmod(int(mode, 8))
        os.replace(tmp, target)

    def pid(self) -> int | None:
        return running_pid(self.host.data_dir / PIDFILE_NAME)

    def running(self) -> bool:
        return self.pid() is not None

    def _zkserver(self, command: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ZOO_LOG_DIR=str(self.log_dir()))
        return subprocess.run([sys.executable, "-m", "zkops.server", command, str(self.conf_dir() / "zoo.cfg")],
                              capture_output=True, text=True, env=env, timeout=120)

    def start(self) -> None:
        out = self._zkserver("start")
        if out.returncode != 0:
            raise TaskFailed((out.stdout + out.stderr).strip()[-500:])

    def stop(self) -> None:
        out = self._zkserver("stop")
        if out.returncode != 0:
            raise TaskFailed((out.stdout + out.stderr).strip()[-500:])

    def log_dir(self) -> Path:
        return self.host.base_dir / "logs"

    def conf_dir(self) -> Path:
        return self.host.base_dir / "conf"

    def log_tail(self, lines: int = 5) -> str:
        text = self.read(str(self.log_dir() / logsetup.LOG_NAME)) or ""
        return "\n".join(text.splitlines()[-lines:])

    def roll_back(self) -> str | None:
        return None  # a local node runs the zkops of the control machine: no releases to go back to


def local_tasks(inv: Inventory, node: LocalNode, opts: Options) -> list[Task]:
    """The files of a ``connection: local`` host; a change restarts its node."""
    files = render(inv, node.host)
    return [file_task("render zoo.cfg", str(node.conf_dir() / "zoo.cfg"), files["zoo.cfg"], "0644", opts.check),
            file_task("write myid", str(node.host.data_dir / "myid"), files["myid"], "0644", opts.check)]


def deploy(inv: Inventory, opts: Options | None = None) -> Recap:
    """The play for the ``connection: local`` hosts (within ``--limit``): files, services, health.
    ``opts.check`` changes nothing (and starts nothing); ``opts.diff`` prints the files' diffs."""
    opts = opts or Options()
    play = Play(inv, opts)
    nodes = [LocalNode(h) for h in play.hosts("local")]
    ready = play.run_tasks(nodes, lambda node: local_tasks(inv, node, opts))
    if opts.check:
        return play.recap
    play.converge(ready)
    play.recap.status = check_ensemble([h for h in inv.hosts if h.connection == "local"], wait=opts.join_timeout)
    return play.recap


def service_local(inv: Inventory, opts: Options, action: str) -> Recap:
    """start | stop | restart (rolling, the same routine as deploy's and SSH's) for the local hosts."""
    play = Play(inv, opts)
    nodes = [LocalNode(h) for h in play.hosts("local")]
    if action == "restart":
        play.rolling_restart([n for n in nodes if n.running()], reason="requested")
    task = {"start": Task("start service", start_unless_running), "stop": Task("stop service", stop_task)}.get(action)
    if task is not None:
        for node in nodes:
            play.run(node, task)
    return play.recap


def down(inv: Inventory) -> Recap:
    """Stop the local nodes (SSH hosts: ``zkops stop``)."""
    play = Play(inv, Options())
    for host in inv.hosts:
        if host.connection != "local":
            play.recap.add(host.name, "stop service", "skipped", "not a local host")
            continue
        play.run(LocalNode(host), Task("stop service", stop_task))
    return play.recap


__all__ = ["LocalNode", "Recap", "TaskResult", "deploy", "down", "local_tasks", "render", "service_local",
           "template_env", "tls_settings"]
