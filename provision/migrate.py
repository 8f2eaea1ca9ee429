"""zkops migrate: replace a running Apache ZooKeeper ensemble by zkops, one host at a time.

zkops speaks Apache 3.8's election and quorum protocol and reads and writes its dataDir
formats, so a Java server can be stopped and a zkops server started on the same zoo.cfg,
myid and dataDir; it rejoins the ensemble as the Java one left it. The play:

1. gather facts for every host (what answers on its client port, its zoo.cfg, dataDir and
   myid) and refuse the whole run before touching anything when one of them is wrong;
2. then, one host at a time, followers first and the leader last: wait for a healthy
   ensemble (one leader, every server serving, the leader counting every other voter as
   synced), stop the Java server, start zkops on the same files, wait until it serves and
   the ensemble is healthy again.

``rollback=True`` runs the same play the other way: zkops hosts get Java back. A host that
already runs the wanted kind is ``ok``; a second run changes nothing. ``check=True`` reports
what would change and changes nothing.

How Java runs on a host comes from its ``java:`` mapping (host key, or ``all.vars.java`` for
every host)::

    java: {service: zookeeper}                       # systemctl stop/start zookeeper
    java: {command: "java -cp ... QuorumPeerMain /etc/zookeeper/conf/zoo.cfg",
           pid_file: /var/lib/zookeeper/zookeeper_server.pid, log_file: /var/log/zookeeper/zookeeper.out}

plus ``zoo_cfg`` (default: Debian's /etc/zookeeper/conf/zoo.cfg); ``data_dir`` and
``data_log_dir`` default to what zoo.cfg says and, when given, must agree with it.
``layout: docker`` presets the official Docker image's layout (/conf/zoo.cfg, /data,
/datalog, ``zkServer.sh --config /conf start-foreground``); ``layout: debian`` (the default)
is Debian's package.

What is done on a host goes through a ``HostOps``: ``LocalOps`` here for ``connection:
local``; ``provision/migrate_ssh.py`` gives the SSH one (and installs zkops there as
``zkops deploy`` does). The play, the health checks and the order are the same for both.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zkops.server.config import ConfigError, ServerConfig, load_config
from zkops.server.snapshot import find_snapshots
from zkops.server.txnlog import log_files

from ..server.fourletterclient import four_letter_or_empty
from .deploy import Recap
from .inventory import Host, Inventory, InventoryError
from .status import check_ensemble

JAVA_KEYS = {"layout", "service", "command", "zoo_cfg", "data_dir", "data_log_dir", "pid_file", "log_file"}
DEBIAN_ZOO_CFG = "/etc/zookeeper/conf/zoo.cfg"  # Debian's zookeeper package (and zookeeperd's service)
DEBIAN_SERVICE = "zookeeper"
# where things are, by how Apache ZooKeeper was installed; the inventory's own keys win
LAYOUTS: dict[str, dict[str, Any]] = {
    "debian": {"zoo_cfg": DEBIAN_ZOO_CFG},  # service zookeeper (zookeeperd), dataDir from zoo.cfg
    # the official Docker image: ZOO_CONF_DIR=/conf, ZOO_DATA_DIR=/data, ZOO_DATA_LOG_DIR=/datalog,
    # ZOO_LOG_DIR=/logs; its entrypoint runs zkServer.sh start-foreground, which execs the JVM
    "docker": {"zoo_cfg": "/conf/zoo.cfg", "data_dir": "/data", "data_log_dir": "/datalog",
               "command": "zkServer.sh --config /conf start-foreground",
               "pid_file": "/data/zookeeper_server.pid", "log_file": "/logs/zookeeper.out"},
}
STOP_WAIT = 30.0
SERVING = ("leader", "follower", "observer")


class Kind:
    JAVA = "java"
    ZKOPS = "zkops"


@dataclass
class JavaSpec:
    """How the Java server runs on one host."""

    zoo_cfg: Path
    service: str | None = None
    command: list[str] | None = None
    data_dir: Path | None = None
    data_log_dir: Path | None = None
    pid_file: Path | None = None
    log_file: Path | None = None


@dataclass
class HostFacts:
    host: Host
    java: JavaSpec
    config: ServerConfig | None = None
    kind: str | None = None  # Kind.JAVA | Kind.ZKOPS | None (nothing serving)
    mode: str | None = None
    problem: str | None = None
    ops: HostOps | None = None


class HostOps(Protocol):
    """What the play does on one host; each action returns what it did, or raises
    RuntimeError / OSError / subprocess.SubprocessError saying why not."""

    def check_files(self, f: HostFacts) -> str | None:
        """Read zoo.cfg (setting ``f.config``), myid and the dataDir: why they cannot be taken over, or None."""

    def java_running(self, f: HostFacts) -> bool:
        """``java: {command}``: does ``pid_file`` name a live QuorumPeerMain?"""

    def prepare(self, f: HostFacts, check: bool) -> tuple[str, str] | None:
        """Get zkops ready to start on the host (status, message), or None when there is nothing to do."""

    def stop_java(self, f: HostFacts) -> str: ...

    def start_java(self, f: HostFacts) -> str: ...

    def stop_zkops(self, f: HostFacts) -> str: ...

    def start_zkops(self, f: HostFacts) -> str: ...

    def close(self) -> None: ...


def java_spec(inv: Inventory, host: Host) -> JavaSpec:
    """The host's ``java:`` settings over ``all.vars.java`` over Debian's package layout."""
    merged: dict[str, Any] = {}
    layers = [(inv.vars.get("java"), "all.vars.java"), (host.vars.get("java"), f"{host.name}.vars.java"),
              (host.java, f"all.hosts.{host.name}.java")]
    for layer, where in layers:
        if layer is None:
            continue
        if not isinstance(layer, dict):
            raise InventoryError(f"{inv.source}: {where}: expected a mapping such as {{service: zookeeper}}")
        bad = set(layer) - JAVA_KEYS
        if bad:
            raise InventoryError(f"{inv.source}: {where}.{sorted(bad)[0]}: unknown key "
                                 f"(known: {', '.join(sorted(JAVA_KEYS))})")
        merged.update(layer)
    layout = str(merged.pop("layout", "debian"))
    if layout not in LAYOUTS:
        raise InventoryError(f"{inv.source}: all.hosts.{host.name}.java.layout: {layout!r} is not one of "
                             f"{', '.join(sorted(LAYOUTS))}")
    preset = dict(LAYOUTS[layout])
    if "service" in merged:  # a service of the inventory's own replaces the preset's command
        for key in ("command", "pid_file", "log_file"):
            preset.pop(key, None)
    if "command" in merged:
        preset.pop("service", None)
    merged = {**preset, **merged}
    command = merged.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    if command is not None and (not isinstance(command, list) or not command):
        raise InventoryError(f"{inv.source}: all.hosts.{host.name}.java.command: give the command line as a string "
                             "or a list")
    service = merged.get("service")
    if command is None and service is None:
        service = DEBIAN_SERVICE
    if command is not None and service is not None:
        raise InventoryError(f"{inv.source}: all.hosts.{host.name}.java: give either service or command, not both")

    def path(key: str) -> Path | None:
        return Path(str(merged[key])) if merged.get(key) else None

    return JavaSpec(zoo_cfg=Path(str(merged.get("zoo_cfg", DEBIAN_ZOO_CFG))), service=service,
                    command=[str(c) for c in command] if command else None, data_dir=path("data_dir"),
                    data_log_dir=path("data_log_dir"), pid_file=path("pid_file"), log_file=path("log_file"))


# ------------------------------------------------------------------ facts
def probe(host: Host) -> tuple[str | None, str | None]:
    """(kind, mode) from the client port's ``srvr``: which program serves there, and as what."""
    text = four_letter_or_empty(host.address, host.client_port, "srvr")
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    version = fields.get("Zookeeper version")
    if version is None:
        return None, None
    return (Kind.ZKOPS if "zkops" in version else Kind.JAVA), fields.get("Mode")


def check_config(f: HostFacts, cfg: ServerConfig) -> str | None:
    """Why this zoo.cfg (with its myid) does not fit the inventory, or None; sets ``f.config``."""
    spec, host = f.java, f.host
    f.config = cfg
    for key, given, actual in (("data_dir", spec.data_dir, cfg.data_dir), ("data_log_dir", spec.data_log_dir,
                                                                           cfg.data_log_dir)):
        if given is not None and given.absolute() != actual.absolute():
            return f"java.{key} is {given} but {spec.zoo_cfg} says {actual}; make them agree"
    if cfg.my_id != host.myid:
        return (f"{cfg.data_dir}/myid says {cfg.my_id} but the inventory gives {host.name} myid {host.myid}; "
                f"set myid: {cfg.my_id} on the host")
    if cfg.client_port is not None and cfg.client_port != host.client_port:
        return f"{spec.zoo_cfg} has clientPort={cfg.client_port} but the inventory says client_port {host.client_port}"
    return None


def _check_files(f: HostFacts) -> str | None:
    """Why this host's zoo.cfg, myid or dataDir cannot be taken over, or None (connection: local)."""
    try:
        cfg = load_config(f.java.zoo_cfg)
    except ConfigError as exc:
        return f"cannot use {f.java.zoo_cfg}: {exc}"
    except OSError as exc:
        return f"cannot read {f.java.zoo_cfg}: {exc.strerror}"
    problem = check_config(f, cfg)
    if problem:
        return problem
    for d in {cfg.data_dir, cfg.data_log_dir}:
        v2 = d / "version-2"
        if not v2.is_dir():
            return f"{v2} is not a directory: dataDir {d} holds no ZooKeeper data (is the path right?)"
        if not os.access(v2, os.R_OK | os.W_OK | os.X_OK):
            return f"{v2}: no permission to read and write it"
    try:
        files = find_snapshots(cfg.data_dir) + [p for _, p in log_files(cfg.data_log_dir / "version-2")]
        for p in files:
            with open(p, "rb") as fh:
                fh.read(16)
    except OSError as exc:
        return f"cannot read the data files: {exc}"
    return None


Connector = Callable[[HostFacts], "HostOps"]


def gather(inv: Inventory, connect: Connector | None = None) -> list[HostFacts]:
    """Facts of every host; ``connect`` gives a host's ops (default: local hosts only), or raises
    RuntimeError saying why the host cannot be reached."""
    facts: list[HostFacts] = []
    specs = [java_spec(inv, host) for host in inv.hosts]  # inventory errors before any connection
    for host, spec in zip(inv.hosts, specs, strict=True):
        f = HostFacts(host, spec)
        f.kind, f.mode = probe(host)
        try:
            f.ops = (connect or local_ops)(f)
            f.problem = f.ops.check_files(f)
        except RuntimeError as exc:
            f.problem = str(exc)
        if (f.problem is None and f.ops is not None and f.kind == Kind.JAVA and f.java.command is not None
                and not f.ops.java_running(f)):
            f.problem = (f"java.pid_file {f.java.pid_file} names no running Java ZooKeeper (QuorumPeerMain); "
                         "give the pid file of the server that serves on this host's client port")
        facts.append(f)
    ids = {f.host.myid for f in facts}
    for f in facts:
        if f.problem is None and f.config is not None and set(f.config.servers) != ids:
            f.problem = (f"{f.java.zoo_cfg} lists servers {sorted(f.config.servers)} but the inventory has myids "
                         f"{sorted(ids)}; list every server of the ensemble")
    return facts


# ------------------------------------------------------------------ health
def _mntr(host: Host) -> dict[str, str]:
    text = four_letter_or_empty(host.address, host.client_port, "mntr")
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def health_problems(hosts: list[Host]) -> list[str]:
    """Why the ensemble is not ready to lose a server now: every server serving, one leader, and the
    leader counting every other voter as synced."""
    problems: list[str] = []
    leaders = []
    for h in hosts:
        kind, mode = probe(h)
        if mode not in SERVING:
            problems.append(f"{h.name} ({h.address}:{h.client_port}) is not serving")
        elif mode == "leader":
            leaders.append(h)
    if len(leaders) != 1:
        problems.append(f"expected one leader, found {len(leaders)}")
        return problems
    voters = sum(1 for h in hosts if h.role == "participant")
    synced = _mntr(leaders[0]).get("zk_synced_followers")
    if synced is None or not synced.isdigit() or int(synced) < voters - 1:
        problems.append(f"the leader {leaders[0].name} counts {synced} synced followers of {voters - 1}")
    return problems


def wait_healthy(hosts: list[Host], wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        problems = health_problems(hosts)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.2)


# ------------------------------------------------------------------ processes (connection: local)
def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[:1] != ["Z"]
    except OSError:
        return False


def _java_pid(f: HostFacts) -> int | None:
    if f.java.pid_file is None:
        return None
    try:
        pid = int(f.java.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and b"QuorumPeerMain" in _cmdline(pid) else None


def _wait_gone(pid: int, timeout: float = STOP_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _wait_port_free(host: Host, timeout: float = STOP_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and four_letter_or_empty(host.address, host.client_port, "ruok", timeout=0.5):
        time.sleep(0.05)


def stop_java(f: HostFacts) -> str:
    if f.java.service:
        out = subprocess.run(["systemctl", "stop", f.java.service], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"systemctl stop {f.java.service}: {(out.stdout + out.stderr).strip()[-300:]}")
        wait_port_free(f.host)
        return f"systemctl stop {f.java.service}"
    pid = _java_pid(f)
    if pid is None:
        raise RuntimeError(f"no running Java server named by pid_file {f.java.pid_file}")
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10)
    wait_port_free(f.host)
    return f"stopped pid {pid}"


def start_java(f: HostFacts) -> str:
    if f.java.service:
        out = subprocess.run(["systemctl", "start", f.java.service], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"systemctl start {f.java.service}: {(out.stdout + out.stderr).strip()[-300:]}")
        return f"systemctl start {f.java.service}"
    assert f.java.command is not None
    log = f.java.log_file or (f.config.data_dir if f.config else Path(".")) / "zookeeper.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as logf:
        p = subprocess.Popen(f.java.command, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=log.parent)
    if f.java.pid_file is not None:
        f.java.pid_file.parent.mkdir(parents=True, exist_ok=True)
        f.java.pid_file.write_text(str(p.pid))
    return f"started pid {p.pid}"


def _zkserver(f: HostFacts, command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ZOO_LOG_DIR=str(f.host.base_dir / "logs"))
    env.pop("ZOOPIDFILE", None)  # dataDir/zookeeper_server.pid, where `zkserver stop zoo.cfg` looks
    return subprocess.run([sys.executable, "-m", "zkops.server", command, str(f.java.zoo_cfg)],
                          capture_output=True, text=True, env=env, timeout=120)


def start_zkops(f: HostFacts) -> str:
    out = _zkserver(f, "start")
    if out.returncode:
        raise RuntimeError(f"zkserver start: {(out.stdout + out.stderr).strip()[-300:]}")
    return f"zkserver start {f.java.zoo_cfg}"


def stop_zkops(f: HostFacts) -> str:
    out = _zkserver(f, "stop")
    if out.returncode:
        raise RuntimeError(f"zkserver stop: {(out.stdout + out.stderr).strip()[-300:]}")
    wait_port_free(f.host)
    return f"zkserver stop {f.java.zoo_cfg}"


class LocalOps:
    """``connection: local``: the servers run on this machine; zkops from the installed package."""

    def check_files(self, f: HostFacts) -> str | None:
        return _check_files(f)

    def java_running(self, f: HostFacts) -> bool:
        return _java_pid(f) is not None

    def prepare(self, f: HostFacts, check: bool) -> tuple[str, str] | None:
        return None

    def stop_java(self, f: HostFacts) -> str:
        return stop_java(f)

    def start_java(self, f: HostFacts) -> str:
        return start_java(f)

    def stop_zkops(self, f: HostFacts) -> str:
        return stop_zkops(f)

    def start_zkops(self, f: HostFacts) -> str:
        return start_zkops(f)

    def close(self) -> None:
        pass


def local_ops(f: HostFacts) -> HostOps:
    if f.host.connection != "local":
        raise RuntimeError("connection: ssh hosts are migrated by zkops migrate through provision.migrate_ssh")
    return LocalOps()


def wait_port_free(host: Host, timeout: float = STOP_WAIT) -> None:
    """Until nothing answers on the host's client port; RuntimeError when a server still answers
    after ``timeout`` (a stop that did not stop it)."""
    _wait_port_free(host, timeout)
    if four_letter_or_empty(host.address, host.client_port, "ruok", timeout=2):
        raise RuntimeError(f"a server still answers on {host.address}:{host.client_port} {timeout:.0f} s after "
                           "it was stopped")


def _wait_kind(host: Host, kind: str, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        k, mode = probe(host)
        if k == kind and mode in SERVING:
            return True
        time.sleep(0.2)
    return False


# ------------------------------------------------------------------ the play
def migrate(inv: Inventory, check: bool = False, rollback: bool = False, wait: float = 60.0,
            log: Callable[[str], None] = lambda text: None, connect: Connector | None = None) -> Recap:
    """Move every host of ``inv`` to zkops (or back to Java with ``rollback``), one at a time."""
    facts = gather(inv, connect)
    try:
        return _play(facts, check, rollback, wait, log)
    finally:
        for f in facts:
            if f.ops is not None:
                f.ops.close()


def _play(facts: list[HostFacts], check: bool, rollback: bool, wait: float, log: Callable[[str], None]) -> Recap:
    recap = Recap()
    want, old = (Kind.JAVA, Kind.ZKOPS) if rollback else (Kind.ZKOPS, Kind.JAVA)
    hosts = [f.host for f in facts]
    for f in facts:
        if f.problem:
            recap.add(f.host.name, "gather facts", "failed", f.problem)
        else:
            recap.add(f.host.name, "gather facts", "ok", f"{f.kind or 'nothing serving'}"
                      + (f", {f.mode}" if f.mode else "") + f", dataDir {f.config.data_dir if f.config else '?'}")
    if recap.failed:
        return recap  # nothing touched
    todo = [f for f in facts if f.kind != want]
    for f in facts:
        if f.kind == want:
            recap.add(f.host.name, f"runs {want}", "ok", "already")
    if check:
        problems = health_problems(hosts)
        for f in sorted(todo, key=lambda f: f.mode == "leader"):
            assert f.ops is not None
            prepared = f.ops.prepare(f, True) if want == Kind.ZKOPS else None
            if prepared:
                recap.add(f.host.name, "install zkops", *prepared)
            recap.add(f.host.name, f"replace {old} by {want}", "changed",
                      "(check mode)" + (f"; now refused: {'; '.join(problems)}" if problems else ""))
        return recap
    while todo:
        problems = wait_healthy(hosts, wait)
        if problems:
            for f in todo:
                recap.add(f.host.name, "check ensemble", "failed",
                          "refused before touching this host: " + "; ".join(problems))
            break
        # followers first, the leader last; the leader is asked again before every host
        modes = {f.host.name: probe(f.host)[1] for f in todo}
        f = sorted(todo, key=lambda f: modes[f.host.name] == "leader")[0]
        todo.remove(f)
        recap.add(f.host.name, "check ensemble", "ok", f"healthy, {f.host.name} is {modes[f.host.name]}")
        if not _replace(f, want, hosts, wait, recap, log):
            for rest in todo:
                recap.add(rest.host.name, f"replace by {want}", "skipped", f"stopped after {f.host.name} failed")
            break
    recap.status = check_ensemble(hosts, wait=10)
    return recap


def _replace(f: HostFacts, want: str, hosts: list[Host], wait: float, recap: Recap,
             log: Callable[[str], None]) -> bool:
    name = f.host.name
    ops = f.ops
    assert ops is not None
    stop, start, undo = ((ops.stop_zkops, ops.start_java, ops.start_zkops) if want == Kind.JAVA
                         else (ops.stop_java, ops.start_zkops, ops.start_java))
    if want == Kind.ZKOPS:  # zkops installed before Java stops: the host is down only for the switch
        try:
            prepared = ops.prepare(f, False)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            recap.add(name, "install zkops", "failed", str(exc))
            return False
        if prepared:
            recap.add(name, "install zkops", *prepared)
    t0 = time.monotonic()
    try:
        msg = stop(f)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        recap.add(name, f"stop {Kind.JAVA if want == Kind.ZKOPS else Kind.ZKOPS}", "failed", str(exc))
        return False
    recap.add(name, f"stop {Kind.JAVA if want == Kind.ZKOPS else Kind.ZKOPS}", "changed", msg)
    log(f"[{name}] {msg}")
    try:
        msg = start(f)
        ok = _wait_kind(f.host, want, wait)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        msg, ok = str(exc), False
    if ok:
        recap.add(name, f"start {want}", "changed", f"{msg}; serving as {probe(f.host)[1]} "
                  f"after {time.monotonic() - t0:.1f} s")
        problems = wait_healthy(hosts, wait)
        recap.add(name, "wait synced", "failed" if problems else "ok",
                  "; ".join(problems) if problems else f"ensemble healthy after {time.monotonic() - t0:.1f} s")
        return not problems
    recap.add(name, f"start {want}", "failed", f"{msg}; not serving after {wait:.0f} s, putting the old server back")
    try:
        if want == Kind.ZKOPS:
            try:
                ops.stop_zkops(f)
            except (RuntimeError, OSError, subprocess.SubprocessError):
                pass  # it may not have started at all
        elif f.java.service or ops.java_running(f):
            ops.stop_java(f)
        undo(f)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        recap.add(name, "put the old server back", "failed", str(exc))
    return False
