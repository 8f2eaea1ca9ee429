"""zkops migrate on ``connection: ssh`` hosts: the ``HostOps`` of provision/migrate.py over SSH.

The play (health checks, order, recap) is migrate.py's; this module does the host's part with
provision/remote.py's ``Node`` (Fabric/paramiko, the same keys, known_hosts and ``become`` as
``zkops deploy``):

- gather facts: connect (an unreachable host, a refused key, an unknown host key fail the run
  here, before any host is touched), the host's facts as deploy gathers them (systemd, a Python
  for the venv), zoo.cfg read over SSH and parsed here by the server's own config loader, myid,
  the dataDir and dataLogDir (``version-2`` there, every snapshot and txn log readable) and
  their owner;
- install zkops as ``zkops deploy`` does (the wheel built once here, a venv in
  ``/opt/zkops/<release>``, ``/opt/zkops/current``) before Java stops;
- zkops then runs on Java's own zoo.cfg, myid and dataDir, as the user that owns the dataDir
  (Debian: ``zookeeper``), so Java reads what zkops wrote after a rollback: with systemd as
  ``zkops.service`` (``zkserver start-foreground <zoo.cfg>``), the Java service disabled while
  zkops runs and enabled again by the rollback; without systemd as ``zkserver start``.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..requires import need
from ..server.config import ConfigError, parse_config, read_properties
from .deploy import Recap
from .inventory import Inventory
from .migrate import STOP_WAIT, HostFacts, HostOps, check_config, migrate, wait_port_free
from .play import TaskStatus
from .remote import INSTALL_ROOT, Node, Options, TaskFailed, build_wheel
from .wheel import Wheel
from .wheel import from_file as wheel_from_file

UNIT = "/etc/systemd/system/zkops.service"
LOG_DIR = "/var/log/zkops"
ZKSERVER = f"{INSTALL_ROOT}/current/bin/zkserver"


def render_unit(zoo_cfg: Path, user: str) -> str:
    """zkops.service for a migrated host: zkops on Java's zoo.cfg, as the dataDir's owner."""
    return f"""# Written by zkops migrate: zkops on Apache ZooKeeper's own files ({zoo_cfg}).
[Unit]
Description=zkops ZooKeeper server (migrated from Apache ZooKeeper)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
Environment=ZOO_LOG_DIR={LOG_DIR}
ExecStart={ZKSERVER} start-foreground {zoo_cfg}
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


def _last(rows: list[tuple[int, str, str]], key: str) -> str | None:
    value = None
    for _, k, v in rows:
        if k == key:
            value = v.strip()
    return value


@dataclass
class WheelBox:
    """The project wheel, built (or read from ``--wheel``) once, when the first host needs it."""

    given: Path | None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    wheel: Wheel | None = None

    def get(self) -> Wheel:
        if self.wheel is None:
            if self.given is not None:
                self.wheel = wheel_from_file(self.given)
            else:
                self.tmp = tempfile.TemporaryDirectory(prefix="zkops-wheel-")
                self.wheel = build_wheel(Path(self.tmp.name))
        return self.wheel

    def cleanup(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


@dataclass
class SshOps:
    """One SSH host's part of the migration."""

    node: Node
    wheels: WheelBox
    owner: str = "root"

    # ---- facts
    @property
    def systemd(self) -> bool:
        return self.node.facts.get("systemd") == "yes"

    def check_files(self, f: HostFacts) -> str | None:
        try:
            return self._check_files(f)
        except TaskFailed as exc:
            raise RuntimeError(str(exc)) from None

    def _check_files(self, f: HostFacts) -> str | None:
        spec, node = f.java, self.node
        text = node.read(str(spec.zoo_cfg))
        if text is None:
            return f"cannot read {spec.zoo_cfg} on {f.host.name} (is java.zoo_cfg right?)"
        try:
            rows = read_properties(text, str(spec.zoo_cfg))
        except ConfigError as exc:
            return f"cannot use {spec.zoo_cfg}: {exc}"
        if _last(rows, "dynamicConfigFile"):
            return f"{spec.zoo_cfg} uses dynamicConfigFile: zkops migrate over SSH reads static server lines only"
        given = _last(rows, "dataDir")
        if not given:
            return f"{spec.zoo_cfg}: dataDir is not set"
        data_dir = Path(given) if Path(given).is_absolute() else spec.zoo_cfg.parent / given
        myid = node.read(str(data_dir / "myid"))
        # the server's own loader, on the host's text and myid staged here (never this machine's dataDir)
        with tempfile.TemporaryDirectory(prefix="zkops-migrate-cfg-") as stage:
            if myid is not None:
                (Path(stage) / "myid").write_text(myid)
            try:
                cfg = parse_config(text + f"\ndataDir={stage}\n", str(spec.zoo_cfg), spec.zoo_cfg.parent)
            except ConfigError as exc:
                return f"cannot use {spec.zoo_cfg}: {str(exc).replace(stage, str(data_dir))}"
        if str(cfg.data_log_dir) == stage:
            cfg.data_log_dir = data_dir
        cfg.data_dir = data_dir
        problem = check_config(f, cfg)
        if problem:
            return problem
        script = r"""
for d in "$@"; do
  v="$d/version-2"
  [ -d "$v" ] || { echo "missing $v"; continue; }
  for p in "$v"/snapshot.* "$v"/log.*; do
    [ -e "$p" ] || continue
    head -c 16 "$p" >/dev/null 2>&1 || echo "unreadable $p"
  done
done
echo "owner $(stat -c %U "$1")"
"""
        dirs = list(dict.fromkeys([str(cfg.data_dir), str(cfg.data_log_dir)]))
        _, out = node.run(f"sh -c {shlex.quote(script)} check " + " ".join(shlex.quote(d) for d in dirs),
                          check=False)
        for line in out.splitlines():
            if line.startswith("missing "):
                v2 = line.split(" ", 1)[1]
                return (f"{v2} is not a directory: dataDir {Path(v2).parent} holds no ZooKeeper data "
                        "(is the path right?)")
            if line.startswith("unreadable "):
                return f"cannot read the data file {line.split(' ', 1)[1]}"
            if line.startswith("owner "):
                self.owner = line.split(" ", 1)[1].strip() or "root"
        if f.java.service and self.systemd:
            code, _ = node.run(f"systemctl cat {shlex.quote(f.java.service)}", check=False)
            if code != 0:
                return f"there is no service {f.java.service} on {f.host.name} (set java.service or java.command)"
        return None

    def java_running(self, f: HostFacts) -> bool:
        try:
            return self._java_pid(f) is not None
        except TaskFailed as exc:
            raise RuntimeError(str(exc)) from None

    def _java_pid(self, f: HostFacts) -> int | None:
        if f.java.pid_file is None:
            return None
        pid = (self.node.read(str(f.java.pid_file)) or "").strip()
        if not pid.isdigit():
            return None
        code, _ = self.node.run(f"kill -0 {pid} && tr '\\0' ' ' < /proc/{pid}/cmdline | grep -q QuorumPeerMain",
                                check=False)
        return int(pid) if code == 0 else None

    # ---- zkops
    def prepare(self, f: HostFacts, check: bool) -> tuple[str, str] | None:
        """Install zkops as ``zkops deploy`` does, and its log directory and unit."""
        from . import remote

        try:
            installed = remote.install(self.node, self.wheels.get(), check)
        except TaskFailed as exc:
            raise RuntimeError(str(exc)) from None
        if installed.status == TaskStatus.FAILED:
            raise RuntimeError(installed.message)
        status, what = str(installed.status), installed.message
        if check:
            return status, what
        owner = shlex.quote(self.owner)
        self.node.run(f"install -d -m 0750 -o {owner} -g {owner} {LOG_DIR}")
        if self.systemd:
            unit = render_unit(f.java.zoo_cfg, self.owner)
            if self.node.read(UNIT) != unit:
                self.node.put_text(UNIT, unit, "0644")
                self.node.run("systemctl daemon-reload")
                status, what = "changed", f"{what}; {UNIT}"
        return status, what

    def start_zkops(self, f: HostFacts) -> str:
        if self.systemd:
            self._run("systemctl enable --now zkops")
            return "systemctl enable --now zkops"
        self._run(f"cd / && runuser -u {shlex.quote(self.owner)} -- env ZOO_LOG_DIR={LOG_DIR} {ZKSERVER} start "
                  f"{shlex.quote(str(f.java.zoo_cfg))}")
        return f"zkserver start {f.java.zoo_cfg}"

    def stop_zkops(self, f: HostFacts) -> str:
        if self.systemd:
            self._run("systemctl disable --now zkops")
            msg = "systemctl disable --now zkops"
        else:
            self._run(f"cd / && runuser -u {shlex.quote(self.owner)} -- env ZOO_LOG_DIR={LOG_DIR} {ZKSERVER} stop "
                      f"{shlex.quote(str(f.java.zoo_cfg))}")
            msg = f"zkserver stop {f.java.zoo_cfg}"
        wait_port_free(f.host)
        return msg

    # ---- Java
    def stop_java(self, f: HostFacts) -> str:
        if f.java.service:
            svc = shlex.quote(f.java.service)
            # disabled too: a reboot must not start Java beside zkops (the rollback enables it again)
            self._run(f"systemctl stop {svc} && (systemctl disable {svc} >/dev/null 2>&1 || true)"
                      if self.systemd else f"service {svc} stop")
            wait_port_free(f.host)
            return f"{'systemctl' if self.systemd else 'service'} stop {f.java.service}"
        pid = self._java_pid(f)
        if pid is None:
            raise RuntimeError(f"no running Java server named by pid_file {f.java.pid_file}")
        wait = int(STOP_WAIT * 10)
        self._run(f"kill {pid}; i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt {wait} ]; do sleep 0.1; "
                  f"i=$((i+1)); done; kill -9 {pid} 2>/dev/null; true")
        wait_port_free(f.host)
        return f"stopped pid {pid}"

    def start_java(self, f: HostFacts) -> str:
        if f.java.service:
            svc = shlex.quote(f.java.service)
            self._run(f"(systemctl enable {svc} >/dev/null 2>&1 || true) && systemctl start {svc}"
                      if self.systemd else f"service {svc} start")
            return f"{'systemctl' if self.systemd else 'service'} start {f.java.service}"
        assert f.java.command is not None
        log = f.java.log_file or (f.config.data_dir if f.config else Path("/tmp")) / "zookeeper.out"
        cmd = shlex.join(f.java.command)
        owner = shlex.quote(self.owner)
        script = (f"mkdir -p {shlex.quote(str(log.parent))} && cd {shlex.quote(str(log.parent))} && "
                  f"runuser -u {owner} -- setsid sh -c {shlex.quote('exec ' + cmd)} "
                  f">> {shlex.quote(str(log))} 2>&1 < /dev/null & echo $!")
        _, out = self._run(script)
        pid = out.strip().splitlines()[-1] if out.strip() else ""
        if not pid.isdigit():
            raise RuntimeError(f"starting {cmd}: no pid ({out[-200:]})")
        if f.java.pid_file is not None:
            pf = shlex.quote(str(f.java.pid_file))
            self._run(f"mkdir -p $(dirname {pf}) && echo {pid} > {pf}")
        return f"started pid {pid}"

    def _run(self, command: str) -> tuple[int, str]:
        try:
            return self.node.run(command)
        except TaskFailed as exc:
            raise RuntimeError(str(exc)) from None

    def close(self) -> None:
        self.node.close()


def migrate_ssh(inv: Inventory, opts: Options, check: bool = False, rollback: bool = False,
                wait: float = 60.0) -> Recap:
    """``zkops migrate`` for an inventory with SSH hosts (``connection: local`` hosts run locally)."""
    from . import remote
    from .migrate import local_ops

    need("paramiko", "zkops over SSH")  # before any host: one clear message (MissingPackage)
    need("fabric", "zkops over SSH")
    wheels = WheelBox(opts.wheel)

    def connect(f: HostFacts) -> HostOps:
        if f.host.connection == "local":
            return local_ops(f)
        node = Node(f.host, opts)
        try:
            node.connect()
            remote.gather_facts(node)
        except TaskFailed as exc:
            node.close()
            raise RuntimeError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a network error while gathering is this host's problem
            node.close()
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        return SshOps(node, wheels)

    try:
        return migrate(inv, check=check, rollback=rollback, wait=wait, log=opts.log, connect=connect)
    finally:
        wheels.cleanup()
