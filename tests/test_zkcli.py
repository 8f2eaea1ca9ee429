"""zkcli: one-shot output and exit codes side by side with the real zkCli.sh, and the
interactive shell driven through a pseudo-terminal (prompt, the seed 000 walkthrough with
its WATCHER event, completion, history, a server going away)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pexpect
import pytest
from kazoo.client import KazooClient

from tests.support import refzk
from tests.support.ourzk import InProcessServer

ZKCLI = [sys.executable, "-m", "zkops.zkcli"]
NOISE = ("Connecting to ", "WATCHER::", "WatchedEvent state:SyncConnected type:None path:null",
         "WatchedEvent state:Closed type:None path:null")


@pytest.fixture(scope="module")
def server():
    with InProcessServer() as s:
        yield s


def _clean(text: str, path: str) -> str:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith(NOISE)
             and "SLF4J" not in ln and "log4j" not in ln]
    out = "\n".join(lines).replace(path, "<p>")
    out = re.sub(r"(ctime|mtime) = .*", r"\1 = <time>", out)
    out = re.sub(r"0x[0-9a-f]+", "0x?", out)
    return re.sub(r"<p>\d{10}", "<p><seq>", out)


def run_ours(address: str, *cmd: str) -> tuple[int, str, str]:
    done = subprocess.run([*ZKCLI, "-server", address, *cmd], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def run_theirs(address: str, *cmd: str) -> tuple[int, str, str]:
    done = subprocess.run([str(refzk.ZKCLI), "-server", address, *cmd], env=refzk.zkcli_env(),
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


SCRIPTS = {
    "basics": [("create", "{p}", "123"), ("create", "{p}", "123"), ("ls", "{p}"), ("get", "{p}"),
               ("get", "-s", "{p}"), ("stat", "{p}"), ("set", "-s", "{p}", "456"), ("ls", "-s", "{p}"),
               ("create", "{p}/c1", "x"), ("ls", "-R", "{p}"), ("getAllChildrenNumber", "{p}"),
               ("getAcl", "-s", "{p}"), ("sync", "{p}"), ("deleteall", "{p}"), ("get", "{p}")],
    "errors": [("get", "{p}"), ("stat", "{p}"), ("create", "{p}/x/y"), ("create", "bad"), ("create", "{p}", "v"),
               ("set", "-v", "9", "{p}", "x"), ("delete", "-v", "9", "{p}"), ("create", "{p}/c"),
               ("delete", "{p}"), ("create", "-e", "-c", "{p}e"), ("create", "-t", "abc", "{p}t"),
               ("set", "{p}"), ("ls",), ("delete", "/zookeeper"), ("removewatches", "{p}"),
               ("addWatch", "-m", "BOGUS", "{p}"), ("getAllChildrenNumber", "{p}/nope"), ("nosuchcommand",),
               ("deleteall", "{p}")],
    "modes-and-acls": [("create", "-s", "{p}", "a"), ("create", "-c", "{p}c"), ("create", "-t", "60000", "{p}t", "d"),
                       ("create", "{p}a", "v", "world:anyone:cdrwa"), ("setAcl", "-s", "{p}a", "world:anyone:r"),
                       ("create", "{p}a/x"), ("setAcl", "{p}a", "digest:u:p:cdrwa"), ("getAcl", "{p}a"),
                       ("setAcl", "{p}a", "bogus"), ("create", "{p}b", "x", "world:anyone:zz"),
                       ("get", "{p}c"), ("addWatch", "{p}c"), ("whoami",), ("getEphemerals", "{p}"),
                       ("printwatches", "off"), ("version",)],
    "quotas": [("create", "{p}", "abc"), ("create", "{p}/c", "abc"), ("create", "{p}/c/d", "abc"),
               ("setquota", "-n", "2", "{p}"), ("listquota", "{p}"), ("setquota", "-b", "10", "{p}"),
               ("listquota", "{p}"), ("setquota", "-N", "3", "{p}/c"), ("setquota", "-n", "0", "{p}"),
               ("setquota", "-b", "-1", "{p}"), ("setquota", "-n", "abc", "{p}"), ("setquota", "{p}"),
               ("setquota", "-n", "2", "{p}/nope"), ("setquota", "-n", "2", "/zookeeper/quota{p}"),
               ("listquota", "{p}/nope"), ("setquota", "-n", "5", "-b", "10", "{p}"), ("setquota", "-x", "1", "{p}"),
               ("setquota", "-n", "2"), ("set", "{p}/c", "0123456789"), ("create", "{p}/e"), ("listquota", "{p}"),
               ("delquota", "-n", "{p}"), ("listquota", "{p}"), ("delquota", "-n", "-b", "{p}"),
               ("delquota", "-x", "{p}"), ("delquota", "{p}"), ("listquota", "{p}"), ("delquota", "{p}"),
               ("setquota", "-B", "3", "{p}/c"), ("setquota", "-n", "9", "{p}"), ("listquota", "{p}/c"),
               ("delquota", "-B", "{p}/c"), ("listquota", "{p}/c"), ("delquota", "{p}/c"), ("listquota",),
               ("delquota",), ("delquota", "/"), ("listquota", "/"), ("listquota", "bad"), ("setquota", "-n", "1", "/"),
               ("get", "{p}//x"), ("deleteall", "{p}")],
}


@pytest.mark.reference
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_one_shot_commands_match_zkcli_sh(name, server):
    """Every command, run once by zkCli.sh and once by zkcli, against the same server (on fresh paths)."""
    theirs_p, ours_p = "/sh-" + uuid.uuid4().hex[:6], "/py-" + uuid.uuid4().hex[:6]
    for step in SCRIPTS[name]:
        t_code, t_out, t_err = run_theirs(server.address, *(w.format(p=theirs_p) for w in step))
        o_code, o_out, o_err = run_ours(server.address, *(w.format(p=ours_p) for w in step))
        what = " ".join(step)
        if step[0] == "version":  # the version string names the implementation
            assert "ZooKeeper CLI version: 3.8.0-zkops-" in o_out and "ZooKeeper CLI version: 3.8" in t_out
            continue
        assert (o_code, _clean(o_out, ours_p)) == (t_code, _clean(t_out, theirs_p)), f"stdout of {what}"
        assert _clean(o_err, ours_p) == _clean(t_err, theirs_p), f"stderr of {what}"
        assert "Traceback" not in o_err


def test_unreachable_server_is_one_line_and_exit_1(tmp_path):
    from tests.support.refzk import free_port

    done = subprocess.run([*ZKCLI, "-server", f"127.0.0.1:{free_port()}", "-timeout", "2000", "ls", "/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Unable to connect" in done.stderr and "Traceback" not in done.stderr


def _shell(address: str, tmp_path: Path) -> pexpect.spawn:
    env = dict(os.environ, ZKCLI_HISTORY=str(tmp_path / "history"), TERM="dumb")
    child = pexpect.spawn(ZKCLI[0], [*ZKCLI[1:], "-server", address, "-timeout", "4000"], env=env,
                          encoding="utf-8", timeout=20, dimensions=(40, 200))
    child.logfile_read = open(tmp_path / "session.log", "w")  # noqa: SIM115 - read back on failure
    return child


def prompt(address: str, state: str = "CONNECTED") -> str:
    return re.escape(f"[zk: {address}({state}) ") + r"(\d+)\] "


def test_seed_000_walkthrough_in_the_interactive_shell(server, tmp_path):
    sh = _shell(server.address, tmp_path)
    try:
        sh.expect("Welcome to ZooKeeper!")
        sh.expect(prompt(server.address))
        assert sh.match.group(1) == "0"
        sh.sendline("create /zkbook 123")
        sh.expect("Created /zkbook")
        sh.expect(prompt(server.address))
        sh.sendline("ls /")
        sh.expect(r"\[.*zkbook.*zookeeper\]")
        sh.expect(prompt(server.address))
        sh.sendline("get -w /zkbook")
        sh.expect("123")
        sh.expect(prompt(server.address))
        other = KazooClient(server.address)
        other.start()
        other.set("/zkbook", b"456")
        other.stop()
        sh.expect(r"WATCHER::\s+WatchedEvent state:SyncConnected type:NodeDataChanged path:/zkbook")
        sh.sendline("get /zkbook")
        sh.expect("456")
        sh.expect(prompt(server.address))
        sh.sendline('create /zkbook/q "two words"')
        sh.expect("Created /zkbook/q")
        sh.sendline("get /zkbook/q")
        sh.expect("two words")
        sh.sendline("set -v 7 /zkbook x")
        sh.expect("version No is not valid : /zkbook")
        sh.sendline("delete /zkbook")
        sh.expect("Node not empty: /zkbook")
        sh.sendline("deleteall /zkbook")
        sh.expect(prompt(server.address))
        sh.sendline("get /zkbook")
        sh.expect("Node does not exist: /zkbook")
        sh.expect(prompt(server.address))
        sh.sendline("history")
        sh.expect(r"0 - create /zkbook 123")
        sh.expect(prompt(server.address))
        sh.sendline("redo 1")
        sh.expect(r"\[.*zookeeper\]")
        sh.expect(prompt(server.address))
        sh.sendline("close")
        sh.expect(r"WatchedEvent state:Closed type:None path:null")
        sh.expect(prompt(server.address, "CLOSED"))
        sh.sendline("ls /")
        sh.expect("Not connected")
        sh.sendline(f"connect {server.address}")
        sh.expect(prompt(server.address))
        sh.sendline("quit")
        sh.expect(pexpect.EOF)
    finally:
        sh.close(force=True)
    assert "Traceback" not in (tmp_path / "session.log").read_text()
    assert "create /zkbook 123" in (tmp_path / "history").read_text(), "history is kept between sessions"


def test_tab_completes_commands_and_paths(server, tmp_path):
    zk = KazooClient(server.address)
    zk.start()
    zk.ensure_path("/completion/alpha-node")
    zk.stop()
    sh = _shell(server.address, tmp_path)
    try:
        sh.expect(prompt(server.address))
        sh.send("getAllCh\t")
        sh.expect("getAllChildrenNumber ")
        sh.send("/compl\t")
        sh.expect("/completion")
        sh.send("/al\t")
        sh.expect("/alpha-node")  # the echo continues the line: /completion/alpha-node
        sh.send("\r")
        sh.expect(r"\r\n0\r\n")
        sh.expect(prompt(server.address))
    finally:
        sh.close(force=True)


@pytest.mark.integration
def test_the_shell_survives_its_server_going_away(tmp_path):
    from tests.support.ensemble import Ensemble

    with Ensemble(3) as ens:
        ens.wait_ready()
        hosts = ens.connect_string
        sh = _shell(hosts, tmp_path)
        try:
            sh.expect(prompt(hosts))
            sh.sendline("create -e /mine here")
            sh.expect("Created /mine")
            sh.expect(prompt(hosts))
            sh.sendline("whoami")
            sh.expect(prompt(hosts))
            # which server holds the session: the one whose cons lists a session with our ephemeral
            owner = None
            for i in ens.ids:
                zk = KazooClient(ens.address(i))
                zk.start()
                stat = zk.exists("/mine")
                zk.stop()
                if stat is not None:
                    owner = stat.ephemeralOwner
                    break
            assert owner is not None
            holder = next(i for i in ens.ids if f"0x{owner:x}" in _cons(ens, i))
            ens.kill(holder)
            sh.expect(r"WatchedEvent state:Disconnected type:None path:null")
            sh.expect(r"WatchedEvent state:SyncConnected type:None path:null", timeout=30)
            sh.sendline("get /mine")
            sh.expect("here")
            sh.expect(prompt(hosts))
            sh.sendline("quit")
            sh.expect(pexpect.EOF)
        finally:
            sh.close(force=True)


def _cons(ens, i: int) -> str:
    import socket

    host, port = ens.address(i).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(b"cons")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode()


def test_scripts_read_stdin_without_prompts(server):
    done = subprocess.run([*ZKCLI, "-server", server.address], input="create /piped x\nget /piped\ndelete /piped\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "\nx\n" in done.stdout and "[zk:" not in done.stdout
    assert "Created /piped" in done.stderr


@pytest.mark.reference
@pytest.mark.integration
def test_reconfig_matches_zkcli_sh_on_an_ensemble(tmp_path):
    """reconfig's usage errors, NoAuth, and a super user's add, remove (-s) and stale -v, run
    by zkCli.sh and by zkcli in turn against one three-server zkops ensemble."""
    from tests.support.refzk import free_port
    from tests.test_reconfig import _super_ensemble

    ens = _super_ensemble()
    ens.start()
    try:
        ens.wait_ready(30)
        address = ens.address(1)
        p = [free_port() for _ in range(3)]
        joining = f"server.100=127.0.0.1:{p[0]}:{p[1]}:observer;{p[2]}"

        def norm(text: str) -> str:
            text = _clean(text, "/no-such-path")
            for i, port in enumerate([*p, *(x for ports in ens.ports.values() for x in ports)]):
                text = text.replace(f":{port}", f":<p{i}>")
            return re.sub(r"version=[0-9a-f]+", "version=<v>", text)

        for words in (["reconfig"], ["reconfig", "-v", "zz", "-remove", "100"],
                      ["reconfig", "-add", joining, "-members", joining],
                      ["reconfig", "-file", str(tmp_path / "missing")], ["reconfig", "-add", joining]):
            theirs, ours = run_theirs(address, *words), run_ours(address, *words)
            assert (ours[0], norm(ours[1]), norm(ours[2])) == (theirs[0], norm(theirs[1]), norm(theirs[2])), words
        script = (f"addauth digest super:test\nreconfig -s -add {joining}\nreconfig -remove 100\n"
                  "reconfig -v 1 -remove 100\n")
        outputs = []
        for cmd, env in (([str(refzk.ZKCLI)], refzk.zkcli_env()), (ZKCLI, None)):
            done = subprocess.run([*cmd, "-server", address], input=script, env=env, capture_output=True, text=True,
                                  timeout=60)
            outputs.append((norm(done.stdout.replace("Welcome to ZooKeeper!\nJLine support is disabled\n", "")),
                            norm(done.stderr)))
        assert "Committed new configuration:" in outputs[0][0] and "version No is not valid : " in outputs[0][1]
        assert outputs[1] == outputs[0]
    finally:
        ens.cleanup()
