"""Clients nobody here wrote: Java zkCli.sh and the C client cli_mt, side by side.

Each command runs against Apache ZooKeeper 3.8 and against zkops; the outputs must
match once times, zxids and session ids are masked.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from tests.support import refzk
from tests.support.ourzk import InProcessServer

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def zkops_server():
    with InProcessServer() as s:
        yield s


def zkcli(address: str, *cmd: str) -> str:
    out = subprocess.run([str(refzk.ZKCLI), "-server", address, *cmd], env=refzk.zkcli_env(),
                         capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stdout.splitlines()
             if ln and not ln.startswith(("WATCHER::", "WatchedEvent state:SyncConnected type:None"))]
    return "\n".join(lines)


def cli_mt(address: str, cmd: str) -> str:
    out = subprocess.run([str(refzk.CLI_MT), address, f"cmd:{cmd}"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


MASKS = [
    (re.compile(r"0x[0-9a-f]+"), "0x?"),
    (re.compile(r"(ctime|mtime) = .*"), r"\1 = <time>"),
    (re.compile(r"time = \d+ msec"), "time = ? msec"),
    (re.compile(r"session id: .*"), "session id: ?"),
    (re.compile(r"(ctime|mtime)=\d+"), r"\1=?"),
    (re.compile(r"\d{13}"), "<ms>"),
    (re.compile(r"Connecting to .*"), "Connecting to <server>"),
]


def mask(text: str) -> str:
    for pat, rep in MASKS:
        text = pat.sub(rep, text)
    return text


@pytest.mark.parametrize("script", [
    [("create", "{p}", "123"), ("get", "{p}"), ("stat", "{p}"), ("set", "{p}", "456"), ("get", "-s", "{p}"),
     ("ls", "-s", "{p}"), ("create", "-e", "{p}/eph", "x"), ("ls", "{p}"), ("getAcl", "{p}"),
     ("delete", "{p}")],
    [("create", "-s", "{p}", "a"), ("create", "{p}"), ("create", "{p}/child"), ("delete", "{p}"),
     ("deleteall", "{p}"), ("get", "{p}"), ("set", "-v", "7", "/zookeeper", "x")],
    [("create", "{p}", "v"), ("set", "-v", "3", "{p}", "w"), ("setAcl", "{p}", "world:anyone:r"),
     ("set", "{p}", "w"), ("getAcl", "{p}"), ("create", "-c", "{p}c"), ("create", "-t", "5000", "{p}t", "d")],
], ids=["basics", "errors", "acl-and-modes"])
def test_zkcli_sh_output_matches(script, reference_zk, zkops_server):
    p = "/cli-" + uuid.uuid4().hex[:6]
    for step in script:
        cmd = [part.format(p=p) for part in step]
        expected = mask(zkcli(reference_zk.address, *cmd))
        actual = mask(zkcli(zkops_server.address, *cmd))
        assert actual == expected, f"zkCli.sh {' '.join(cmd)}"


@pytest.mark.parametrize("cmd", ["create /cmt{u}", "get /cmt{u}", "ls /", "delete /cmt{u}",
                                 "get /nonexistent{u}", "create +e /cmt{u}e", "ls2 /zookeeper"])
def test_c_client_cli_mt_output_matches(cmd, reference_zk, zkops_server):
    u = uuid.uuid4().hex[:6]
    cmd = cmd.format(u=u)
    expected = mask(cli_mt(reference_zk.address, cmd))
    actual = mask(cli_mt(zkops_server.address, cmd))
    if cmd == "ls /":  # the two servers hold different trees; compare the shape
        assert "rc = 0" in actual and "zookeeper" in actual
        return
    assert actual == expected
