"""zkserver: start, stop and check a server with zkServer.sh's habits.

``zkserver [--config DIR] start|start-foreground|stop|restart|status|version|print-cmd [zoo.cfg]``.

Why zkServer.sh's habits: operators, init scripts and monitoring already know them. The
config is the argument (a bare file name is looked up in the config directory), else
$ZOOCFGDIR/zoo.cfg (or --config DIR), else ./conf/zoo.cfg, else /etc/zookeeper/conf/zoo.cfg.
The pidfile is dataDir/zookeeper_server.pid (or $ZOOPIDFILE). ``start`` runs
``start-foreground`` detached, with its output in zookeeper.out in the log directory, and
says STARTED or FAILED TO START; ``status`` asks the client port ``srvr`` and exits 1 when
nothing answers; a bad zoo.cfg is one line on stderr and exit code 2.

Two environment variables are for tests and embedding: ZKOPS_SERVER_APP=module:function
runs that function instead of the server, and ZKOPS_DAEMON=1 (set by ``start``) keeps the
log off stderr, since stderr is zookeeper.out then. ZKOPS_EVENT_LOOP=asyncio keeps the server off
uvloop where uvloop is installed (``eventloop``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import __version__ as ZKOPS_VERSION
from .config import PIDFILE_NAME, ConfigError, ServerConfig, check_tls, load_config

APP_ENV = "ZKOPS_SERVER_APP"
DAEMON_ENV = "ZKOPS_DAEMON"
OUT_NAME = "zookeeper.out"
START_WAIT = 30.0  # seconds `start` waits for a standalone server to answer on its client port
ENSEMBLE_GRACE = 3.0  # an ensemble member answers only once it has a quorum: just check it stays up
STOP_WAIT = 30.0  # seconds `stop` waits after SIGTERM before SIGKILL
DEFAULT_CONFIGS = (Path("conf/zoo.cfg"), Path("/etc/zookeeper/conf/zoo.cfg"))  # after $ZOOCFGDIR
COMMANDS = ("start", "start-foreground", "stop", "restart", "status", "version", "print-cmd")

log = logging.getLogger("zkops.server")


# ------------------------------------------------------------------ finding things
def find_config(arg: str | None, conf_dir: str | None = None) -> Path:
    """The zoo.cfg to use, in zkServer.sh's order; raises ConfigError when there is none."""
    conf_dir = conf_dir or os.environ.get("ZOOCFGDIR") or None
    if arg:
        p = Path(arg)
        if conf_dir and len(p.parts) == 1 and (Path(conf_dir) / p).exists():
            return Path(conf_dir) / p
        return p
    if conf_dir:
        return Path(conf_dir) / "zoo.cfg"
    for c in DEFAULT_CONFIGS:
        if c.exists():
            return c
    raise ConfigError(f"no zoo.cfg found (ZOOCFGDIR is not set; looked for {', '.join(map(str, DEFAULT_CONFIGS))}); "
                      "pass the path: zkserver start /path/to/zoo.cfg")


def pidfile_path(cfg: ServerConfig) -> Path:
    """$ZOOPIDFILE, else dataDir/zookeeper_server.pid (zkServer.sh's choice)."""
    env = os.environ.get("ZOOPIDFILE")
    return Path(env).absolute() if env else cfg.data_dir.absolute() / PIDFILE_NAME


def read_pidfile(path: Path) -> int | None:
    """The pid written in ``path``, or None when it is missing or holds no number."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def process_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (a zombie has already stopped serving)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def is_server_process(pid: int) -> bool:
    """True when ``pid`` is alive and, where /proc tells, runs zkops: after a reboot a stale
    pidfile often names some unrelated process, which must neither block a start nor be killed."""
    if pid <= 0 or not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"zkops" in cmdline or b"zkserver" in cmdline


def running_pid(path: Path) -> int | None:
    """The pid of the live server the pidfile names, else None."""
    pid = read_pidfile(path)
    return pid if pid is not None and is_server_process(pid) else None


def write_pidfile(path: Path, pid: int) -> None:
    """Write ``pid`` (no newline, as zkServer.sh) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(str(pid))
    os.replace(tmp, path)


def claim_pidfile(path: Path) -> int | None:
    """Write our pid unless a live server already owns the pidfile; returns that server's pid."""
    me = os.getpid()
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = read_pidfile(path)
            if pid == me:  # `start` wrote our pid for us
                return None
            if pid is not None and is_server_process(pid):
                return pid
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(me))
        return None
    write_pidfile(path, me)
    return None


def release_pidfile(path: Path, pid: int | None = None) -> None:
    """Remove the pidfile if it still names ``pid`` (default: this process)."""
    if read_pidfile(path) == (os.getpid() if pid is None else pid):
        with contextlib.suppress(OSError):
            path.unlink()


def client_address(cfg: ServerConfig) -> tuple[str, str, int, bool]:
    """(address as zkServer.sh prints it, address to connect to, port, TLS) for ``status``."""
    if cfg.client_port is not None:
        port, secure = cfg.client_port, False
        explicit = "clientPortAddress" in cfg.raw or cfg.client_port_address != "0.0.0.0"
        shown = cfg.client_port_address if explicit else "localhost"
    elif cfg.secure_client_port is not None:
        port, secure = cfg.secure_client_port, True
        shown = cfg.raw.get("secureClientPortAddress") or "localhost"
    else:
        raise ConfigError(f"{cfg.source}: neither clientPort nor secureClientPort is set")
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "localhost"}.get(shown, shown)
    return shown, connect, port, secure


# ------------------------------------------------------------------ commands
def _load(path: Path, serving: bool = False) -> ServerConfig:
    try:
        cfg = load_config(path)
        if serving:
            check_tls(cfg)
        return cfg
    except ConfigError as exc:
        print(f"zkserver: config error: {exc}", file=sys.stderr)
        raise SystemExit(2)


def _server_entry(cfg: ServerConfig) -> Callable[[ServerConfig], int | None]:
    """What runs the server: $ZKOPS_SERVER_APP, the quorum peer for ensembles, else app.run."""
    hook = os.environ.get(APP_ENV)
    if hook:
        gc.enable()  # app.serve turns it back on after the imports (__main__); a hook may not run it
        module, _, func = hook.partition(":")
        entry: Callable[[ServerConfig], int | None] = getattr(importlib.import_module(module), func or "run")
        return entry
    if cfg.is_ensemble:
        from .quorum import run_quorum_peer

        return run_quorum_peer
    from .app import run

    return run


def _import_asyncio_without_tls() -> bool:
    """Import asyncio without ssl when no TLS was configured; True when it did (this process
    then gives uvloop no ssl either: ``eventloop.choose``'s ``without_ssl``).

    asyncio imports ssl, and loading OpenSSL is a tenth of a server's start-up. A config with a
    TLS port loaded ssl already (``check_tls``), so asyncio gets it there; otherwise asyncio's
    modules see no ssl and would refuse a TLS transport, which nothing in this process asks for.
    Any later ``import ssl`` (a status check) still gets the real module.
    """
    if "ssl" in sys.modules or "asyncio" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    return True


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Until the server installs its own handlers, SIGTERM ends the process through ``finally``
    blocks (so the pidfile goes) instead of killing it outright."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


def cmd_start_foreground(path: Path) -> int:
    """Validate, set up logging, own the pidfile, run the server until it stops."""
    cfg = _load(path, serving=True)
    without_ssl = _import_asyncio_without_tls()
    from . import logsetup

    daemon = os.environ.get(DAEMON_ENV) == "1"
    logfile = logsetup.setup(logsetup.log_dir(cfg.data_log_dir), foreground=not daemon, myid=cfg.my_id)
    pidfile = pidfile_path(cfg)
    other = claim_pidfile(pidfile)
    if other is not None:
        msg = f"already running as process {other} (pidfile {pidfile})"
        log.error("%s", msg)
        print(f"zkserver: {msg}", file=sys.stderr)
        return 1
    log.info("starting pid %d with %s (log file %s, pidfile %s)", os.getpid(), path, logfile, pidfile)
    for w in cfg.warnings:
        log.warning("%s", w)
    from .compiled import describe
    from .eventloop import choose

    log.info("event loop: %s, request path: %s", choose(without_ssl=without_ssl), describe())
    try:
        with _sigterm_exits():
            code = _server_entry(cfg)(cfg)
        log.info("stopped (exit code %s)", code or 0)
        return int(code or 0)
    except KeyboardInterrupt:  # ^C before the server took over SIGINT
        log.info("interrupted")
        return 0
    except Exception:
        log.exception("the server failed")
        return 1
    finally:
        release_pidfile(pidfile)


def _serving(cfg: ServerConfig) -> bool:
    from .fourletterclient import four_letter  # the commands that ask a server, not the server

    _, host, port, secure = client_address(cfg)
    try:
        if "ruok" in cfg.four_letter_words:
            return four_letter(host, port, "ruok", 1.0, use_ssl=secure) == "imok"
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _child_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "zkops.server", "start-foreground", str(path.absolute())]


def cmd_start(path: Path, wait: float = START_WAIT) -> int:
    """Run start-foreground detached; STARTED once it serves (or, in an ensemble, stays up)."""
    from . import logsetup

    cfg = _load(path, serving=True)
    for w in cfg.warnings:
        print(f"zkserver: warning: {w}", file=sys.stderr)
    print("Starting zookeeper ... ", end="", flush=True)
    pidfile = pidfile_path(cfg)
    other = running_pid(pidfile)
    if other is not None:
        print(f"already running as process {other}.")
        return 1
    logs = logsetup.log_dir(cfg.data_log_dir).absolute()
    logs.mkdir(parents=True, exist_ok=True)
    out_path = logs / OUT_NAME
    env = dict(os.environ, **{DAEMON_ENV: "1", "ZOO_LOG_DIR": str(logs)})
    if env.get("ZOOPIDFILE"):
        env["ZOOPIDFILE"] = str(pidfile)
    with open(out_path, "ab") as out:
        import subprocess  # only the detached start needs it

        proc = subprocess.Popen(_child_command(path), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    write_pidfile(pidfile, proc.pid)  # at once, as zkServer.sh: a second start sees it
    grace = min(wait, ENSEMBLE_GRACE) if cfg.is_ensemble else wait
    deadline = time.monotonic() + grace
    serving = False
    while proc.poll() is None and time.monotonic() < deadline:
        if _serving(cfg) and proc.poll() is None:
            serving = True
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        release_pidfile(pidfile, proc.pid)
        print("FAILED TO START")
        print(f"zkserver: the server exited with code {proc.returncode}; end of {out_path}:\n"
              f"{_tail(out_path, 30)}\nend of {logs / logsetup.LOG_NAME}:\n{_tail(logs / logsetup.LOG_NAME, 30)}",
              file=sys.stderr)
        return 1
    proc.returncode = 0  # detached on purpose: no "still running" warning when this process exits
    print("STARTED")
    if not serving:
        why = "waiting for a quorum" if cfg.is_ensemble else f"not answering after {wait:.0f}s"
        print(f"zkserver: process {proc.pid} is up but {why}; check with: zkserver status {path}",
              file=sys.stderr)
    return 0


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)


def cmd_stop(path: Path, wait: float = STOP_WAIT) -> int:
    """SIGTERM the pidfile's server and wait for it to exit (SIGKILL after ``wait`` seconds)."""
    cfg = _load(path)
    pidfile = pidfile_path(cfg)
    print("Stopping zookeeper ... ", end="", flush=True)
    pid = read_pidfile(pidfile)
    if pid is None:
        print(f"no zookeeper to stop (could not find file {pidfile})")
        return 0
    if not is_server_process(pid):
        release_pidfile(pidfile, pid)
        print(f"no zookeeper to stop (process {pid} from {pidfile} is not running; removed the stale pidfile)")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        print(f"cannot signal process {pid}: permission denied")
        return 1
    except ProcessLookupError:
        pass
    if not _wait_exit(pid, wait):
        print(f"zkserver: process {pid} did not exit {wait:.0f}s after SIGTERM; sending SIGKILL", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10.0)
    release_pidfile(pidfile, pid)
    print("STOPPED")
    return 0


def cmd_status(path: Path) -> int:
    """zkServer.sh status: the client port, then the Mode line from ``srvr``; exit 1 when down."""
    cfg = _load(path)
    from .fourletterclient import four_letter

    shown, host, port, secure = client_address(cfg)
    print(f"Client port found: {port}. Client address: {shown}. Client SSL: {str(secure).lower()}.")
    try:
        reply = four_letter(host, port, "srvr", use_ssl=secure)
    except OSError:
        reply = ""
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            print(line.strip())
            return 0
    print("Error contacting service. It is probably not running.")
    return 1


def cmd_version() -> int:
    """Print the version as ZooKeeper's VersionInfoMain does."""
    from .version import VERSION_STRING

    print(f"Apache ZooKeeper, version {VERSION_STRING}")
    return 0


def _serving_args(argv: list[str]) -> str | None:
    """The zoo.cfg of ``start-foreground zoo.cfg``, the command line every server process has
    (``start`` runs it): read without argparse, whose import is a few ms of every start-up."""
    if len(argv) == 2 and argv[0] == "start-foreground" and not argv[1].startswith("-"):
        return argv[1]
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``zkserver`` and ``python -m zkops.server``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    cfg_arg = _serving_args(argv)
    if cfg_arg is not None:
        try:
            path = find_config(cfg_arg)
        except ConfigError as exc:
            print(f"zkserver: config error: {exc}", file=sys.stderr)
            return 2
        print(f"Using config: {path}", file=sys.stderr)
        try:
            return cmd_start_foreground(path)
        except SystemExit as exc:  # _load's exit 2
            return exc.code if isinstance(exc.code, int) else 1
    gc.enable()  # off for a server's imports only (__main__)
    import argparse

    parser = argparse.ArgumentParser(prog="zkserver", description="Run a zkops ZooKeeper server.")
    parser.add_argument("--version", action="version", version=f"zkserver (zkops {ZKOPS_VERSION})")
    parser.add_argument("--config", metavar="DIR", help="directory holding zoo.cfg (like zkServer.sh --config)")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help=f"how long start waits to see the server serve (default {START_WAIT:.0f}) and "
                             f"stop waits before SIGKILL (default {STOP_WAIT:.0f})")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("cfg", nargs="?", metavar="zoo.cfg", help="config file (default: see --config)")
    args = parser.parse_args(argv)
    if args.command == "version":
        return cmd_version()
    try:
        path = find_config(args.cfg, args.config)
    except ConfigError as exc:
        print(f"zkserver: config error: {exc}", file=sys.stderr)
        return 2
    print(f"Using config: {path}", file=sys.stderr)
    try:
        if args.command == "start-foreground":
            return cmd_start_foreground(path)
        if args.command == "start":
            return cmd_start(path, START_WAIT if args.wait is None else args.wait)
        if args.command == "stop":
            return cmd_stop(path, STOP_WAIT if args.wait is None else args.wait)
        if args.command == "restart":
            cmd_stop(path, STOP_WAIT if args.wait is None else args.wait)
            return cmd_start(path, START_WAIT if args.wait is None else args.wait)
        if args.command == "print-cmd":
            _load(path)
            print(" ".join(_child_command(path)))
            return 0
        return cmd_status(path)
    except SystemExit as exc:  # _load's exit 2
        return exc.code if isinstance(exc.code, int) else 1
