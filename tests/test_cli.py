"""The zkserver command: config discovery, pidfile, start/stop/status/restart with zkServer.sh's
output, logging set-up; against a fake srvr listener, a stand-in for app.run, and the real server."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.refzk import free_port
from zkops.server import cli, logsetup
from zkops.server.fourletterclient import four_letter

# ------------------------------------------------------------------ helpers
SRVR_REPLY = ("Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC\n"
              "Latency min/avg/max: 0/0.5/3\nReceived: 12\nSent: 11\nConnections: 1\nOutstanding: 0\n"
              "Zxid: 0x100000004\nMode: {mode}\nNode count: 5\n")


class FakeZooKeeper:
    """A loopback listener that answers four-letter words as a ZooKeeper server would."""

    def __init__(self, mode: str = "follower", port: int = 0) -> None:
        self.words: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                word = self.request.recv(4).decode()
                outer.words.append(word)
                if word == "srvr":
                    self.request.sendall(SRVR_REPLY.format(mode=mode).encode())
                elif word == "ruok":
                    self.request.sendall(b"imok")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeZooKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_cfg(tmp_path: Path, port: int, extra: str = "", address: str | None = "127.0.0.1") -> Path:
    lines = f"tickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort={port}\n"
    if address:
        lines += f"clientPortAddress={address}\n"
    path = tmp_path / "zoo.cfg"
    path.write_text(lines + extra)
    return path


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


FAKE_APP = '''
"""Stands in for zkops.server.app.run in the zkserver tests."""
import os, signal, socket, sys, threading, time
from pathlib import Path


def run(cfg):
    marker = Path(os.environ["FAKE_MARKER"])
    mode = os.environ.get("FAKE_MODE", "serve")
    marker.write_text(f"started {os.getpid()}\\n")
    if mode == "crash":
        print("fake app: about to fail", file=sys.stderr, flush=True)
        raise RuntimeError("fake failure: address already in use")
    if mode == "exit3":
        return 3
    if mode == "sleep":  # no handlers of its own and no port: only zkserver's SIGTERM handling
        while True:
            time.sleep(0.05)
    stop = threading.Event()
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
    srv = socket.create_server((cfg.client_port_address, cfg.client_port), reuse_port=False)
    srv.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
        except (socket.timeout, InterruptedError):
            continue
        with conn:
            word = conn.recv(4)
            if word == b"ruok":
                conn.sendall(b"imok")
            elif word == b"srvr":
                conn.sendall(b"Zookeeper version: fake\\nMode: standalone\\nNode count: 4\\n")
    srv.close()
    marker.write_text(marker.read_text() + "stopped cleanly\\n")
    return 0
'''


class Fixture:
    """A config, an environment that runs FAKE_APP, and cleanup of whatever it started."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        (tmp_path / "fakeapp.py").write_text(FAKE_APP)
        self.marker = tmp_path / "marker"
        self.cfg = write_cfg(tmp_path, self.port)
        self.pidfile = tmp_path / "data" / "zookeeper_server.pid"
        self.logs = tmp_path / "logs"
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
                        ZKOPS_SERVER_APP="fakeapp:run", FAKE_MARKER=str(self.marker), FAKE_MODE="serve",
                        ZOO_LOG_DIR=str(self.logs))
        self.env.pop("ZOOPIDFILE", None)
        self.env.pop("ZOOCFGDIR", None)
        self.started: list[int] = []
        self.dummies: list[subprocess.Popen] = []

    def zkserver(self, *args: str, mode: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(self.env, FAKE_MODE=mode or self.env["FAKE_MODE"])
        res = subprocess.run([sys.executable, "-m", "zkops.server", *args], capture_output=True, text=True,
                             env=env, timeout=timeout)
        pid = cli.read_pidfile(self.pidfile)
        if pid is not None:
            self.started.append(pid)
        return res

    def dummy_server(self) -> int:
        """A live process whose command line looks like a zkops server (but is not one)."""
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "zkops-dummy"])
        self.dummies.append(p)
        deadline = time.monotonic() + 10
        while b"zkops-dummy" not in Path(f"/proc/{p.pid}/cmdline").read_bytes():  # until it has exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return p.pid

    def cleanup(self) -> None:
        for pid in self.started:
            if cli.is_server_process(pid):
                os.kill(pid, signal.SIGKILL)
        for p in self.dummies:
            p.kill()
            p.wait()


@pytest.fixture
def fx(tmp_path):
    f = Fixture(tmp_path)
    yield f
    f.cleanup()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("ZOOPIDFILE", "ZOOCFGDIR", "ZKOPS_SERVER_APP", "ZKOPS_DAEMON", "JVMFLAGS", "SERVER_JVMFLAGS"):
        monkeypatch.delenv(var, raising=False)
    yield
    logsetup.teardown()


# ------------------------------------------------------------------ status
@pytest.mark.parametrize("mode", ["standalone", "leader", "follower", "observer"])
def test_status_prints_client_port_and_mode(tmp_path, capsys, mode):
    with FakeZooKeeper(mode) as fake:
        code, out, err = run_main(capsys, "status", str(write_cfg(tmp_path, fake.port)))
    assert code == 0
    assert out.splitlines() == [f"Client port found: {fake.port}. Client address: 127.0.0.1. Client SSL: false.",
                                f"Mode: {mode}"]
    assert err == f"Using config: {tmp_path / 'zoo.cfg'}\n"
    assert fake.words == ["srvr"]


def test_status_without_client_port_address_says_localhost(tmp_path, capsys):
    with FakeZooKeeper("standalone") as fake:
        code, out, _ = run_main(capsys, "status", str(write_cfg(tmp_path, fake.port, address=None)))
    assert code == 0 and f"Client port found: {fake.port}. Client address: localhost." in out


def test_status_finds_the_port_on_this_servers_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("2")
    with FakeZooKeeper("leader") as fake:
        cfg = tmp_path / "zoo.cfg"
        cfg.write_text(f"dataDir={tmp_path / 'data'}\nserver.1=127.0.0.1:2888:3888;{free_port()}\n"
                       f"server.2=127.0.0.1:2889:3889;127.0.0.1:{fake.port}\nserver.3=127.0.0.1:2890:3890\n")
        code, out, _ = run_main(capsys, "status", str(cfg))
    assert code == 0 and out.splitlines()[-1] == "Mode: leader"
    assert f"Client port found: {fake.port}. Client address: 127.0.0.1." in out


def test_status_not_running_exits_1(tmp_path, capsys):
    code, out, err = run_main(capsys, "status", str(write_cfg(tmp_path, free_port())))
    assert code == 1
    assert out.splitlines()[-1] == "Error contacting service. It is probably not running."
    assert "Traceback" not in err


def test_status_when_the_port_answers_without_a_mode(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def answer() -> None:
            conn, _ = srv.accept()
            conn.recv(4)
            conn.sendall(b"srvr is not executed because it is not in the whitelist.\n")
            conn.close()

        t = threading.Thread(target=answer)
        t.start()
        code, out, _ = run_main(capsys, "status", str(write_cfg(tmp_path, port)))
        t.join(5)
    assert code == 1 and "It is probably not running." in out


# ------------------------------------------------------------------ config errors and discovery
@pytest.mark.parametrize("command", ["start", "start-foreground", "stop", "restart", "status", "print-cmd"])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, command):
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort=99999\n")
    code, out, err = run_main(capsys, command, str(cfg))
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"Using config: {cfg}"
    assert lines[1:] == [f"zkserver: config error: {cfg}:2: clientPort=99999: 99999 is outside 1-65535; "
                         "use a TCP port between 1 and 65535"]
    assert not (tmp_path / "zookeeper_server.pid").exists()


def test_missing_config_file_is_exit_2(tmp_path, capsys):
    code, _, err = run_main(capsys, "status", str(tmp_path / "nope.cfg"))
    assert code == 2 and "cannot read the config file" in err and "Traceback" not in err


def test_config_discovery_order(tmp_path, monkeypatch):
    a, b, c = (tmp_path / d for d in ("a", "b", "c"))
    for d in (a, b, c / "conf"):
        d.mkdir(parents=True)
        (d / "zoo.cfg").write_text("x")
    (a / "other.cfg").write_text("x")
    monkeypatch.chdir(c)
    monkeypatch.setattr(cli, "DEFAULT_CONFIGS", (Path("conf/zoo.cfg"), tmp_path / "etc.cfg"))
    assert cli.find_config(str(b / "zoo.cfg")) == b / "zoo.cfg"  # an argument wins
    assert cli.find_config(None) == Path("conf/zoo.cfg")  # ./conf/zoo.cfg
    monkeypatch.setenv("ZOOCFGDIR", str(a))
    assert cli.find_config(None) == a / "zoo.cfg"  # $ZOOCFGDIR/zoo.cfg
    assert cli.find_config("other.cfg") == a / "other.cfg"  # a bare name is looked up there
    assert cli.find_config(None, str(b)) == b / "zoo.cfg"  # --config DIR beats $ZOOCFGDIR
    monkeypatch.delenv("ZOOCFGDIR")
    (c / "conf" / "zoo.cfg").unlink()
    with pytest.raises(cli.ConfigError, match="no zoo.cfg found"):
        cli.find_config(None)
    (tmp_path / "etc.cfg").write_text("x")
    assert cli.find_config(None) == tmp_path / "etc.cfg"  # /etc/zookeeper/conf/zoo.cfg last


def test_config_dir_option(tmp_path, capsys):
    with FakeZooKeeper("standalone") as fake:
        write_cfg(tmp_path, fake.port)
        code, out, err = run_main(capsys, "--config", str(tmp_path), "status")
    assert code == 0 and "Mode: standalone" in out and f"Using config: {tmp_path / 'zoo.cfg'}" in err


def test_version_needs_no_config(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(capsys, "version")
    assert code == 0 and out.startswith("Apache ZooKeeper, version 3.8.") and "zkops" in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["launch"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_print_cmd(tmp_path, capsys):
    cfg = write_cfg(tmp_path, 2181)
    code, out, _ = run_main(capsys, "print-cmd", str(cfg))
    assert code == 0 and out.strip() == f"{sys.executable} -m zkops.server start-foreground {cfg}"


# ------------------------------------------------------------------ pidfile
def test_pidfile_location(tmp_path, monkeypatch):
    from zkops.server.config import parse_config

    cfg = parse_config(f"dataDir={tmp_path}\nclientPort=1\n", environ={})
    assert cli.pidfile_path(cfg) == tmp_path / "zookeeper_server.pid"
    monkeypatch.setenv("ZOOPIDFILE", str(tmp_path / "run" / "zk.pid"))
    assert cli.pidfile_path(cfg) == tmp_path / "run" / "zk.pid"


def test_process_checks(fx):
    assert cli.process_alive(os.getpid())
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert cli.process_alive(child.pid) and not cli.is_server_process(child.pid)  # not zkops
    finally:
        child.kill()
    time.sleep(0.2)
    assert not cli.process_alive(child.pid)  # a zombie until reaped: already stopped
    child.wait()
    assert not cli.process_alive(child.pid)
    assert cli.is_server_process(fx.dummy_server())


def test_claim_pidfile(fx):
    path = fx.tmp / "sub" / "zk.pid"
    assert cli.claim_pidfile(path) is None and path.read_text() == str(os.getpid())  # no newline, as zkServer.sh
    assert cli.claim_pidfile(path) is None  # our own pid
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.write_text(str(dead.pid))
    assert cli.claim_pidfile(path) is None and cli.read_pidfile(path) == os.getpid()  # stale: taken over
    path.write_text("garbage")
    assert cli.claim_pidfile(path) is None and cli.read_pidfile(path) == os.getpid()
    live = fx.dummy_server()
    path.write_text(str(live))
    assert cli.claim_pidfile(path) == live and cli.read_pidfile(path) == live  # left alone
    cli.release_pidfile(path)
    assert path.exists()  # not ours to remove
    cli.release_pidfile(path, live)
    assert not path.exists()


def test_start_foreground_refuses_when_a_server_runs(fx, capsys, monkeypatch):
    monkeypatch.setenv("ZKOPS_SERVER_APP", "tests.test_cli:_must_not_run")
    fx.pidfile.parent.mkdir(parents=True)
    other = fx.dummy_server()
    fx.pidfile.write_text(str(other))
    code, _, err = run_main(capsys, "start-foreground", str(fx.cfg))
    assert code == 1 and f"zkserver: already running as process {other}" in err
    assert cli.read_pidfile(fx.pidfile) == other


def _must_not_run(cfg: object) -> int:
    raise AssertionError("the server must not start")


_seen: dict[str, object] = {}


def _record_run(cfg: object) -> int:
    pid = cli.read_pidfile(Path(cfg.data_dir) / "zookeeper_server.pid")  # type: ignore[attr-defined]
    _seen.update(pidfile=pid, cfg=cfg, sigterm=signal.getsignal(signal.SIGTERM))
    logging.getLogger("zkops.server.app").info("fake app running")
    return int(os.environ.get("FAKE_EXIT", "0"))


def _raise_run(cfg: object) -> int:
    raise RuntimeError("boom in the app")


def test_start_foreground_in_process(fx, capsys, monkeypatch):
    monkeypatch.setenv("ZKOPS_SERVER_APP", "tests.test_cli:_record_run")
    monkeypatch.setenv("ZOO_LOG_DIR", str(fx.logs))
    (fx.tmp / "zoo.cfg").write_text(fx.cfg.read_text() + "bogusKey=1\n")
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run_main(capsys, "start-foreground", str(fx.cfg))
    assert code == 0
    assert _seen["pidfile"] == os.getpid() and not fx.pidfile.exists()  # written while running, then removed
    assert _seen["sigterm"] not in (before, signal.SIG_DFL)  # SIGTERM exits through finally until app.run takes over
    assert signal.getsignal(signal.SIGTERM) == before
    log = (fx.logs / "zkops-server.log").read_text()
    assert "fake app running" in log and "unknown key 'bogusKey' ignored" in log and "WARN" in log
    assert "fake app running" in err  # foreground: the log goes to stderr too
    monkeypatch.setenv("FAKE_EXIT", "3")
    assert run_main(capsys, "start-foreground", str(fx.cfg))[0] == 3


def test_start_foreground_app_failure_is_logged(fx, capsys, monkeypatch):
    monkeypatch.setenv("ZKOPS_SERVER_APP", "tests.test_cli:_raise_run")
    monkeypatch.setenv("ZOO_LOG_DIR", str(fx.logs))
    code, _, _ = run_main(capsys, "start-foreground", str(fx.cfg))
    assert code == 1 and not fx.pidfile.exists()
    log = (fx.logs / "zkops-server.log").read_text()
    assert "the server failed" in log and "RuntimeError: boom in the app" in log


# ------------------------------------------------------------------ start / stop as processes
def test_start_status_stop(fx):
    up = fx.zkserver("start", str(fx.cfg))
    assert up.returncode == 0, up.stderr
    assert up.stdout == "Starting zookeeper ... STARTED\n"
    pid = cli.read_pidfile(fx.pidfile)
    assert pid is not None and cli.is_server_process(pid)
    assert fx.marker.read_text() == f"started {pid}\n"
    again = fx.zkserver("start", str(fx.cfg))
    assert again.returncode == 1 and again.stdout == f"Starting zookeeper ... already running as process {pid}.\n"
    status = fx.zkserver("status", str(fx.cfg))
    assert status.returncode == 0 and status.stdout.splitlines()[-1] == "Mode: standalone"
    assert (fx.logs / "zookeeper.out").exists()
    stop = fx.zkserver("stop", str(fx.cfg))
    assert stop.returncode == 0 and stop.stdout == "Stopping zookeeper ... STOPPED\n"
    assert not fx.pidfile.exists() and not cli.process_alive(pid)
    assert fx.marker.read_text().endswith("stopped cleanly\n")
    assert fx.zkserver("status", str(fx.cfg)).returncode == 1
    # in the background the log goes to the log file only, not to zookeeper.out
    assert "starting pid" in (fx.logs / "zkops-server.log").read_text()
    assert "starting pid" not in (fx.logs / "zookeeper.out").read_text()


def test_start_failure_shows_the_log_tail(fx):
    res = fx.zkserver("start", str(fx.cfg), mode="crash")
    assert res.returncode == 1
    assert res.stdout == "Starting zookeeper ... FAILED TO START\n"
    assert "exited with code 1" in res.stderr and "RuntimeError: fake failure: address already in use" in res.stderr
    assert "fake app: about to fail" in res.stderr  # from zookeeper.out
    assert not fx.pidfile.exists()


def test_start_reports_a_server_that_does_not_answer_yet(fx):
    res = fx.zkserver("--wait", "1", "start", str(fx.cfg), mode="sleep")
    assert res.returncode == 0 and res.stdout.endswith("STARTED\n")
    assert "is up but not answering after 1s" in res.stderr
    # the app has no SIGTERM handler: zkserver's own handler still ends it and removes the pidfile
    pid = cli.read_pidfile(fx.pidfile)
    stop = fx.zkserver("stop", str(fx.cfg))
    assert stop.returncode == 0 and not fx.pidfile.exists() and not cli.process_alive(pid)


def test_start_of_an_ensemble_member_does_not_wait_for_a_quorum(fx):
    (fx.tmp / "data").mkdir(exist_ok=True)
    (fx.tmp / "data" / "myid").write_text("1")
    ports = [free_port() for _ in range(6)]
    fx.cfg.write_text(fx.cfg.read_text() + "".join(
        f"server.{i + 1}=127.0.0.1:{ports[2 * i]}:{ports[2 * i + 1]}\n" for i in range(3)))
    t0 = time.monotonic()
    res = fx.zkserver("start", str(fx.cfg), mode="sleep")
    assert res.returncode == 0 and "STARTED" in res.stdout and "waiting for a quorum" in res.stderr
    assert time.monotonic() - t0 < cli.START_WAIT / 2
    assert fx.zkserver("stop", str(fx.cfg)).returncode == 0


def test_stop_kills_a_server_that_ignores_sigterm(fx):
    assert fx.zkserver("start", str(fx.cfg), mode="ignore-term").returncode == 0
    pid = cli.read_pidfile(fx.pidfile)
    res = fx.zkserver("--wait", "1", "stop", str(fx.cfg))
    assert res.returncode == 0 and res.stdout.endswith("STOPPED\n")
    assert f"process {pid} did not exit 1s after SIGTERM; sending SIGKILL" in res.stderr
    assert not cli.process_alive(pid) and not fx.pidfile.exists()


def test_stop_without_a_server(fx):
    res = fx.zkserver("stop", str(fx.cfg))
    assert res.returncode == 0
    assert res.stdout == f"Stopping zookeeper ... no zookeeper to stop (could not find file {fx.pidfile})\n"
    fx.pidfile.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    fx.pidfile.write_text(str(dead.pid))
    res = fx.zkserver("stop", str(fx.cfg))
    assert res.returncode == 0 and "is not running; removed the stale pidfile" in res.stdout
    assert not fx.pidfile.exists()


def test_a_stale_or_foreign_pidfile_does_not_block_start(fx):
    fx.pidfile.parent.mkdir(parents=True, exist_ok=True)
    foreign = subprocess.Popen(["sleep", "30"])  # e.g. a pid reused after a reboot
    try:
        fx.pidfile.write_text(str(foreign.pid))
        res = fx.zkserver("start", str(fx.cfg))
        assert res.returncode == 0 and "STARTED" in res.stdout
        assert cli.read_pidfile(fx.pidfile) != foreign.pid
        assert fx.zkserver("stop", str(fx.cfg)).returncode == 0
        assert foreign.poll() is None  # never signalled
    finally:
        foreign.kill()
        foreign.wait()


def test_restart_gives_a_new_process(fx):
    assert fx.zkserver("start", str(fx.cfg)).returncode == 0
    first = cli.read_pidfile(fx.pidfile)
    res = fx.zkserver("restart", str(fx.cfg))
    assert res.returncode == 0 and "STOPPED" in res.stdout and "STARTED" in res.stdout
    second = cli.read_pidfile(fx.pidfile)
    assert second != first and not cli.process_alive(first) and cli.is_server_process(second)
    assert fx.zkserver("status", str(fx.cfg)).returncode == 0
    assert fx.zkserver("stop", str(fx.cfg)).returncode == 0


def test_zoopidfile_is_honoured(fx):
    fx.env["ZOOPIDFILE"] = str(fx.tmp / "run" / "zk.pid")
    assert fx.zkserver("start", str(fx.cfg)).returncode == 0
    pid = cli.read_pidfile(fx.tmp / "run" / "zk.pid")
    fx.started.append(pid)
    assert pid is not None and not fx.pidfile.exists()
    assert fx.zkserver("stop", str(fx.cfg)).returncode == 0 and not (fx.tmp / "run" / "zk.pid").exists()


def test_sigterm_to_start_foreground(fx):
    proc = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground", str(fx.cfg)],
                            env=dict(fx.env, FAKE_MODE="serve"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fx.started.append(proc.pid)
    deadline = time.monotonic() + 30
    while not (fx.marker.exists() and fx.pidfile.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cli.read_pidfile(fx.pidfile) == proc.pid
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert not fx.pidfile.exists() and "stopped cleanly" in fx.marker.read_text()
    assert "Traceback" not in out and "stopped (exit code 0)" in out


def test_console_script_and_module_agree():
    beside = Path(sys.executable).parent / "zkserver"  # the venv's scripts, whether or not it is on PATH
    exe = str(beside) if beside.exists() else shutil.which("zkserver")
    assert exe is not None, "the zkserver console script is not installed (pip install -e .)"
    a = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60)
    b = subprocess.run([sys.executable, "-m", "zkops.server", "version"], capture_output=True, text=True, timeout=60)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


# ------------------------------------------------------------------ logging
def test_logsetup_file_format_and_handlers(tmp_path, capsys):
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    try:
        path = logsetup.setup(tmp_path / "logs", foreground=True, level="DEBUG", myid=3)
        path = logsetup.setup(tmp_path / "logs", foreground=True, level="DEBUG", myid=3)  # again: no duplicates
        assert path == tmp_path / "logs" / "zkops-server.log"
        ours = [h for h in logging.getLogger().handlers if h in logsetup._installed]
        assert len(ours) == 2 and foreign in logging.getLogger().handlers
        rot = next(h for h in ours if isinstance(h, logsetup.RollingFileHandler))
        assert (rot.maxBytes, rot.backupCount) == (10 * 1024 * 1024, 10)

        async def in_a_task() -> None:
            logging.getLogger("zkops.server.quorum").info("from a task")

        async def main() -> None:
            await asyncio.create_task(in_a_task(), name="election")

        asyncio.run(main())
        logging.getLogger("zkops.server.config").debug("plain")
        lines = [line for line in path.read_text().splitlines() if "asyncio" not in line and "selector" not in line]
        assert lines[0].endswith("[myid:3] - INFO  [MainThread/election:test_cli@"
                                 f"{in_a_task.__code__.co_firstlineno + 1}] - from a task")
        assert "[myid:3] - DEBUG [MainThread/-:test_cli@" in lines[1] and lines[1].endswith("] - plain")
        assert time.strftime("%Y-%m-%d") in lines[0][:10]
        assert "from a task" in capsys.readouterr().err
    finally:
        logging.getLogger().removeHandler(foreign)
        logsetup.teardown()
    assert not logsetup._installed


def test_log_file_rolls_at_its_size_and_keeps_its_backups(tmp_path):
    """zookeeper.log's rolling, as logging.handlers.RotatingFileHandler did it: a record that
    would take the file to maxBytes first moves it to .1 (.1 to .2, ...), up to backupCount."""
    path = tmp_path / "z.log"
    h = logsetup.RollingFileHandler(path, maxBytes=100, backupCount=2)
    h.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("zkops.test.rolling")
    log.propagate = False
    log.addHandler(h)
    try:
        for i in range(7):
            log.warning("%d%s", i, "x" * 39)  # 41 bytes a line: two fit below 100
    finally:
        log.removeHandler(h)
        h.close()
        log.propagate = True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.log", "z.log.1", "z.log.2"]
    assert [line[0] for line in path.read_text().splitlines()] == ["6"]
    assert [line[0] for line in (tmp_path / "z.log.1").read_text().splitlines()] == ["4", "5"]
    assert [line[0] for line in (tmp_path / "z.log.2").read_text().splitlines()] == ["2", "3"]


def test_logsetup_background_writes_the_file_only(tmp_path, capsys):
    path = logsetup.setup(tmp_path, foreground=False)
    logging.getLogger("zkops.server").warning("quiet")
    logsetup.teardown()
    assert "quiet" in path.read_text() and "quiet" not in capsys.readouterr().err


@pytest.mark.parametrize("env, level", [({}, logging.INFO), ({"ZOO_LOG_LEVEL": "debug"}, logging.DEBUG),
                                        ({"ZOO_LOG4J_PROP": "WARN,ROLLINGFILE"}, logging.WARNING),
                                        ({"ZOO_LOG4J_PROP": "nonsense"}, logging.INFO)])
def test_log_level_from_the_environment(monkeypatch, env, level):
    for var in ("ZOO_LOG_LEVEL", "ZOO_LOG4J_PROP"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert logsetup.level_from_env() == level


def test_log_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_LOG_DIR", raising=False)
    assert logsetup.log_dir(tmp_path) == tmp_path
    monkeypatch.setenv("ZOO_LOG_DIR", "/var/log/zk")
    assert logsetup.log_dir(tmp_path) == Path("/var/log/zk")


# ------------------------------------------------------------------ the real server
@pytest.mark.integration
def test_real_server_start_status_stop(tmp_path):
    port = free_port()
    cfg = write_cfg(tmp_path, port, extra="4lw.commands.whitelist=*\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ZKOPS_SERVER_APP", "ZOOPIDFILE", "ZOOCFGDIR")}
    env["ZOO_LOG_DIR"] = str(tmp_path / "logs")

    def zk(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zkops.server", *args], capture_output=True, text=True,
                              env=env, timeout=90)

    up = zk("start", str(cfg))
    pid = cli.read_pidfile(tmp_path / "data" / "zookeeper_server.pid")
    try:
        assert up.returncode == 0 and up.stdout == "Starting zookeeper ... STARTED\n", up.stderr
        assert four_letter("127.0.0.1", port, "ruok") == "imok"
        status = zk("status", str(cfg))
        assert status.returncode == 0 and status.stdout.splitlines() == [
            f"Client port found: {port}. Client address: 127.0.0.1. Client SSL: false.", "Mode: standalone"]
        assert "Zookeeper version: 3.8" in four_letter("127.0.0.1", port, "srvr")
    finally:
        down = zk("stop", str(cfg))
        if pid is not None and cli.is_server_process(pid):
            os.kill(pid, signal.SIGKILL)
    assert down.returncode == 0 and down.stdout == "Stopping zookeeper ... STOPPED\n"
    assert not (tmp_path / "data" / "zookeeper_server.pid").exists()
    assert zk("status", str(cfg)).returncode == 1
    log = (tmp_path / "logs" / "zkops-server.log").read_text()
    assert "starting pid" in log and "stopped (exit code 0)" in log
