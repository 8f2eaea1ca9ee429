"""zkserver: start, stop and check a server with zkServer.sh's habits.

``zkserver start|start-foreground|stop|restart|status|version [zoo.cfg]``. The config is
the argument, else $ZOOCFGDIR/zoo.cfg, else ./conf/zoo.cfg, else
/etc/zookeeper/conf/zoo.cfg. The pidfile is dataDir/zookeeper_server.pid (or
$ZOOPIDFILE); ``status`` asks the client port with ``srvr`` and exits 1 when down.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .config import ConfigError, ServerConfig, load_config

PIDFILE = "zookeeper_server.pid"


def find_config(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    candidates = []
    if os.environ.get("ZOOCFGDIR"):
        candidates.append(Path(os.environ["ZOOCFGDIR"]) / "zoo.cfg")
    candidates += [Path("conf/zoo.cfg"), Path("/etc/zookeeper/conf/zoo.cfg")]
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def pidfile_for(cfg: ServerConfig) -> Path:
    return Path(os.environ["ZOOPIDFILE"]) if os.environ.get("ZOOPIDFILE") else cfg.data_dir / PIDFILE


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _load(path: Path) -> ServerConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"zkserver: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(2)


def four_letter(host: str, port: int, word: str, timeout: float = 3.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode(errors="replace")


def _client_address(cfg: ServerConfig) -> tuple[str, int]:
    host = cfg.client_port_address
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, cfg.client_port or 2181


def cmd_start_foreground(path: Path) -> int:
    from . import logsetup

    cfg = _load(path)
    logfile = logsetup.setup(logsetup.log_dir(cfg.data_log_dir), foreground=True)
    log = logging.getLogger("zkops.server")
    for w in cfg.warnings:
        log.warning("%s", w)
    pidfile = pidfile_for(cfg)
    other = read_pid(pidfile)
    if other is not None and other != os.getpid():
        print(f"zkserver: already running as process {other} (pidfile {pidfile})", file=sys.stderr)
        return 1
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")
    log.info("starting with %s, logging to %s", path, logfile)
    try:
        if cfg.is_ensemble:
            from .quorum import run_quorum_peer

            return run_quorum_peer(cfg)
        from .app import run

        return run(cfg)
    finally:
        try:
            if read_pid(pidfile) in (None, os.getpid()):
                pidfile.unlink()
        except OSError:
            pass


def cmd_start(path: Path, wait: float = 30.0) -> int:
    cfg = _load(path)
    pidfile = pidfile_for(cfg)
    other = read_pid(pidfile)
    if other is not None:
        print(f"zkserver: already running as process {other}.")
        return 1
    from . import logsetup

    logs = logsetup.log_dir(cfg.data_log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / "zookeeper.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground", str(path)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    out.close()
    print("Starting zookeeper ... ", end="", flush=True)
    host, port = _client_address(cfg)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print("FAILED TO START")
            tail = (logs / "zookeeper.out").read_text(errors="replace")[-2000:]
            print(tail, file=sys.stderr)
            return 1
        try:
            if four_letter(host, port, "ruok", 1.0) == "imok":
                print("STARTED")
                return 0
        except OSError:
            pass
        time.sleep(0.1)
    print("STARTED (not answering yet)")
    return 0


def cmd_stop(path: Path, wait: float = 30.0) -> int:
    cfg = _load(path)
    pidfile = pidfile_for(cfg)
    pid = read_pid(pidfile)
    print("Stopping zookeeper ... ", end="", flush=True)
    if pid is None:
        print(f"no zookeeper to stop (could not find file {pidfile} or its process)")
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and read_pid(pidfile) == pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        if read_pid(pidfile) == pid:
            os.kill(pid, signal.SIGKILL)
    try:
        pidfile.unlink()
    except OSError:
        pass
    print("STOPPED")
    return 0


def cmd_status(path: Path) -> int:
    cfg = _load(path)
    host, port = _client_address(cfg)
    print(f"Client port found: {port}. Client address: {host}. Client SSL: false.")
    try:
        reply = four_letter(host, port, "srvr")
    except OSError:
        print("Error contacting service. It is probably not running.")
        return 1
    for line in reply.splitlines():
        if line.startswith("Mode: "):
            print(line)
            return 0
    print("Error contacting service. It is probably not running.")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zkserver", description="Run a zkops ZooKeeper server.")
    parser.add_argument("command", choices=["start", "start-foreground", "stop", "restart", "status", "version"])
    parser.add_argument("config", nargs="?", help="path to zoo.cfg")
    args = parser.parse_args(argv)
    if args.command == "version":
        from .fourletter import VERSION_STRING

        print(f"Apache ZooKeeper, version {VERSION_STRING}")
        return 0
    path = find_config(args.config)
    print(f"Using config: {path}", file=sys.stderr)
    if args.command == "start-foreground":
        return cmd_start_foreground(path)
    if args.command == "start":
        return cmd_start(path)
    if args.command == "stop":
        return cmd_stop(path)
    if args.command == "restart":
        cmd_stop(path)
        return cmd_start(path)
    return cmd_status(path)
