"""Start the real Apache ZooKeeper 3.8 (Debian's ``zookeeper`` package) for side-by-side tests.

``scripts/install-test-deps`` installs the package; Debian's zookeeper.jar manifest omits a
few jars the server needs, so the classpath names them explicitly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

JAVA_DIR = Path("/usr/share/java")
EXTRA_JARS = ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar",
              "servlet-api.jar", "slf4j-api.jar", "slf4j-simple.jar")
ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
CLI_MT = Path("/usr/lib/zookeeper/bin/cli_mt")


def available() -> bool:
    """True when the Debian package and a JVM are installed."""
    return (JAVA_DIR / "zookeeper.jar").exists() and shutil.which("java") is not None


def classpath(conf_dir: Path | None = None, admin: bool = False) -> str:
    jars = [JAVA_DIR / "zookeeper.jar", *(JAVA_DIR / j for j in EXTRA_JARS)]
    if admin:  # the AdminServer runs on Jetty, which Debian's manifest leaves out too
        jars += sorted(p for p in JAVA_DIR.glob("jetty9-*.jar") if "alpn" not in p.name and "-9." not in p.name)
    parts = [str(conf_dir)] if conf_dir else []
    parts += [str(j) for j in jars if j.exists()]
    return ":".join(parts)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a server started a moment later must not
    find it taken by some process's outgoing connection (peers dial each other constantly
    while they start, and several test runs share the machine). A port is handed out once per
    run: an ensemble asks for nine in a row, each released before the servers bind them, so a
    repeated draw would give two servers the same port."""
    import random

    low = _ephemeral_low()
    if low > 12000:
        for _ in range(400):
            port = random.randrange(10000, low)
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise OSError("no free port left to hand out")


def wait_ruok(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            # ruok answers before the server serves; srvr says "Mode:" only once it does
            with socket.create_connection((host, port), timeout=1) as s:
                s.sendall(b"srvr")
                reply = b""
                while chunk := s.recv(4096):
                    reply += chunk
                if b"Mode:" in reply:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.01)
    raise TimeoutError(f"no server answered ruok on {host}:{port}: {last}")


@dataclass
class RefZooKeeper:
    """One standalone Apache ZooKeeper process on loopback."""

    port: int = field(default_factory=free_port)
    extra_cfg: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="refzk-")))
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RefZooKeeper:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": "2000", "dataDir": str(data), "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1", "4lw.commands.whitelist": "*",
            "admin.enableServer": "false", "extendedTypesEnabled": "true",
            "maxClientCnxns": "0",
        }
        cfg.update(self.extra_cfg)
        cfg_path = self.workdir / "zoo.cfg"
        cfg_path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        log = open(self.workdir / "server.log", "wb")
        admin = cfg.get("admin.enableServer") == "true"
        cmd = ["java", "-Xmx512m", f"-Dzookeeper.admin.enableServer={'true' if admin else 'false'}",
               "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
               "-cp", classpath(admin=admin), "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg_path)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        try:
            wait_ruok(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError("Apache ZooKeeper did not start:\n" + (self.workdir / "server.log").read_text())
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RefZooKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def digest_mismatches_at_load(data_dir: Path) -> int:
    """How many digest mismatches Apache itself finds loading a copy of ``data_dir`` (its mntr's
    ``zk_digest_mismatches_count`` once it serves): its verdict on a snapshot it wrote, which
    a snapshot taken while a txn was being applied can get wrong about itself."""
    from zkops.server.fourletterclient import four_letter_or_empty

    with RefZooKeeper() as ref:  # started on an empty dataDir: stopped, filled and started again
        ref.stop()
        target = ref.workdir / "data"
        shutil.rmtree(target)
        shutil.copytree(data_dir, target)
        ref.start()
        fields = dict(line.split("\t", 1) for line in four_letter_or_empty("127.0.0.1", ref.port, "mntr", 10.0)
                      .splitlines() if "\t" in line)
    return int(fields["zk_digest_mismatches_count"])


def zkcli_env() -> dict[str, str]:
    """Environment for Debian's zkCli.sh with the missing jars on CLASSPATH."""
    env = dict(os.environ)
    env["CLASSPATH"] = classpath()
    env.setdefault("ZOO_LOG_DIR", tempfile.gettempdir())
    return env


@dataclass
class RefEnsemble:
    """Apache ZooKeeper 3.8 QuorumPeerMain processes on loopback: ``voters`` participants and
    ``observers`` observers, each with its AdminServer on a free port when ``admin`` is set."""

    voters: int = 2
    observers: int = 1
    admin: bool = True
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="refzk-ens-")))
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = list(range(1, self.voters + self.observers + 1))
        self.observer_ids = set(self.ids[self.voters:])
        # client, quorum, election, admin
        self.ports = {i: (free_port(), free_port(), free_port(), free_port()) for i in self.ids}

    def client_port(self, i: int) -> int:
        return self.ports[i][0]

    def admin_port(self, i: int) -> int:
        return self.ports[i][3]

    def start(self, timeout: float = 90.0) -> RefEnsemble:
        members = []
        for j in self.ids:
            _, q, e, _ = self.ports[j]
            members.append(f"server.{j}=127.0.0.1:{q}:{e}{':observer' if j in self.observer_ids else ''}")
        for i in self.ids:
            d = self.workdir / f"a{i}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            lines = ["tickTime=500", "initLimit=20", "syncLimit=10", f"dataDir={d / 'data'}",
                     f"clientPort={self.client_port(i)}", "clientPortAddress=127.0.0.1",
                     "4lw.commands.whitelist=*", f"admin.enableServer={'true' if self.admin else 'false'}",
                     f"admin.serverPort={self.admin_port(i)}", "admin.serverAddress=127.0.0.1"]
            if i in self.observer_ids:
                lines.append("peerType=observer")
            (d / "zoo.cfg").write_text("\n".join(lines + members) + "\n")
            log = open(d / "server.log", "wb")
            self.procs[i] = subprocess.Popen(
                ["java", "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                 "-cp", classpath(admin=self.admin), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 str(d / "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT, cwd=d)
            log.close()
        try:
            for i in self.ids:
                wait_ruok(self.client_port(i), timeout)
        except TimeoutError:
            logs = "\n".join((self.workdir / f"a{i}" / "server.log").read_text(errors="replace")[-2000:]
                             for i in self.ids)
            self.cleanup()
            raise RuntimeError("the Apache ensemble did not start:\n" + logs)
        return self

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RefEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
