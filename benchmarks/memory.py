"""Memory and recovery of a large tree, zkops beside Apache ZooKeeper 3.8.

python3 -m benchmarks.memory [--fill 100000] [--recover 1000000] [--runs 3] [--servers zkops,apache]
                             [--variant NAME:VAR=VALUE,...] [--no-bytecode-cache] [--json out.json]

- ``fill``: a fresh standalone server of each kind, ``--fill`` znodes of 100 bytes created
  through the client port (benchmarks.run's pipelined creator, one level under the root); RSS
  of the server process (the JVM included) idle and once they are in. Runs alternate
  between the servers. ``--variant NAME:VAR=VALUE,...`` adds a zkops server started with
  those environment variables (``PYTHONPATH=DIR``: another tree of the package) to the fill.
- ``recover``: a data directory holding one snapshot of ``--recover`` znodes of 100 bytes
  (1,000 children under each of ``N/1000`` parents, benchmarks.backup's builder); a zkops
  server started on a copy of it, timed from process start until ``srvr`` answers (the tree
  is loaded before the client port opens) and a read of the last znode succeeds; then its
  RSS. Apache 3.8 is started on a copy of the same directory (our snapshots are its format)
  with a heap of ``--apache-heap`` (the test harness's 512 MiB is too small for a million
  znodes), timed the same way: from process start until the read of the last znode succeeds
  (Apache opens its client port before it loads the snapshot). ``--baseline PYTHONPATH``
  recovers with another zkops tree too (a checkout of an older commit laid out as an
  installed ``zkops`` package). Runs alternate between the variants, so the comparison sees
  the same machine load.

The zkops servers run from compiled modules, as an installed package does: a development
shell's PYTHONDONTWRITEBYTECODE would have each of them compile every module at start-up,
which leaves about 3 MiB more in its heap (see ``benchmarks.startup``);
``--no-bytecode-cache`` keeps the environment as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import backup
from benchmarks.run import Standalone, environ, fill, rss_kb
from tests.support import refzk
from tests.support.ourzk import ZkopsProcess


def fill_rss(kind: str, count: int) -> tuple[int, int]:
    """(idle RSS, RSS with ``count`` znodes) in KiB of a fresh server of ``kind``."""
    s = Standalone(kind)
    try:
        s.start()
        time.sleep(1.0)
        idle = rss_kb(s.pid)
        fill(s.address, count)
        time.sleep(1.0)
        return idle, rss_kb(s.pid)
    finally:
        s.cleanup()


def _read(address: str, path: str, timeout: float) -> None:
    from kazoo.client import KazooClient

    c = KazooClient(address, timeout=30)
    c.start(timeout=timeout)
    try:
        c.get(path)
    finally:
        c.stop()
        c.close()


def recover(source: Path, last_path: str, pythonpath: str | None = None) -> tuple[float, int]:
    """(seconds until serving, RSS in KiB) of zkops started on a copy of ``source``."""
    z = ZkopsProcess(extra_cfg={"admin.enableServer": "false"})
    saved = os.environ.get("PYTHONPATH")
    try:
        shutil.copytree(source, z.data_dir)
        if pythonpath is not None:
            os.environ["PYTHONPATH"] = pythonpath
        t0 = time.monotonic()
        try:
            z.start(timeout=600)
        finally:
            if pythonpath is not None:
                if saved is None:
                    del os.environ["PYTHONPATH"]
                else:
                    os.environ["PYTHONPATH"] = saved
        _read(z.address, last_path, 120)
        took = time.monotonic() - t0
        time.sleep(1.0)
        assert z.proc is not None
        return took, rss_kb(z.proc.pid)
    finally:
        z.cleanup()


def recover_apache(source: Path, last_path: str, heap: str) -> tuple[float, int]:
    """(seconds until serving, RSS in KiB) of Apache ZooKeeper started on a copy of ``source``."""
    work = Path(tempfile.mkdtemp(prefix="zkops-membench-apache-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        data = work / "data"
        shutil.copytree(source, data)
        port = refzk.free_port()
        cfg = work / "zoo.cfg"
        cfg.write_text(f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                       "admin.enableServer=false\n4lw.commands.whitelist=*\nautopurge.purgeInterval=0\n")
        cmd = ["java", f"-Xmx{heap}", "-Dzookeeper.admin.enableServer=false",
               "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", refzk.classpath(),
               "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)]
        with open(work / "server.log", "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        _read(f"127.0.0.1:{port}", last_path, 600)
        took = time.monotonic() - t0
        time.sleep(1.0)
        return took, rss_kb(proc.pid)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def _spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fill", type=int, default=100_000, help="znodes created on a fresh server (0: skip)")
    ap.add_argument("--recover", type=int, default=1_000_000, help="znodes in the recovered snapshot (0: skip)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--servers", default="zkops,apache")
    ap.add_argument("--baseline", help="PYTHONPATH of another zkops tree to recover with as well")
    ap.add_argument("--apache-heap", default="2g", help="Apache's -Xmx for the recovery")
    ap.add_argument("--variant", action="append", default=[], help="NAME:VAR=VALUE,... (another zkops, fill)")
    ap.add_argument("--no-bytecode-cache", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    servers = args.servers.split(",")
    for spec in args.variant:
        name, _, env = spec.partition(":")
        Standalone.variants[name] = dict(kv.split("=", 1) for kv in env.split(",") if kv)
        servers.append(name)
    if args.no_bytecode_cache:
        return _main(args, servers)
    cache_dir = tempfile.mkdtemp(prefix="zkops-membench-pyc-")
    try:
        # the servers inherit this environment
        with environ({"PYTHONPYCACHEPREFIX": cache_dir, "PYTHONDONTWRITEBYTECODE": None}):
            for kind in servers:  # a first start of each zkops fills the cache
                if kind != "apache":
                    s = Standalone(kind)
                    try:
                        s.start()
                    finally:
                        s.cleanup()
            return _main(args, servers)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def _main(args: argparse.Namespace, servers: list[str]) -> int:
    if "apache" in servers and not refzk.available():
        sys.exit("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    results: dict = {"fill": {}, "recover": {}}
    if args.fill:
        for kind in servers:
            results["fill"][kind] = {"idle_kb": [], "filled_kb": []}
        for run in range(args.runs):
            for kind in (servers if run % 2 == 0 else servers[::-1]):
                idle, filled = fill_rss(kind, args.fill)
                results["fill"][kind]["idle_kb"].append(idle)
                results["fill"][kind]["filled_kb"].append(filled)
                print(f"{kind:7s} fill {args.fill}: idle {idle / 1024:.1f} MiB, filled {filled / 1024:.1f} MiB",
                      flush=True)
        for kind in servers:
            idle = [kb / 1024 for kb in results["fill"][kind]["idle_kb"]]
            filled = [kb / 1024 for kb in results["fill"][kind]["filled_kb"]]
            print(f"{kind:8s} RSS idle {_spread(idle)} MiB, with {args.fill} znodes {_spread(filled)} MiB", flush=True)
        for kind in (k for k in servers if k != "apache" and "apache" in servers):
            ratios = [a / b for a, b in zip(results["fill"][kind]["filled_kb"],
                                            results["fill"]["apache"]["filled_kb"], strict=True)]
            results["fill"]["ratio" if kind == "zkops" else f"ratio_{kind}"] = ratios
            print(f"RSS with {args.fill} znodes, {kind} / Apache: {_spread(ratios)}", flush=True)
    if args.recover:
        work = Path(tempfile.mkdtemp(prefix="zkops-membench-"))
        try:
            src = work / "data"
            src.mkdir()
            backup.build(src, args.recover, 0)
            parents = max(1, args.recover // 1000)
            last = f"/p{parents - 1:04d}/c{args.recover // parents - 1:04d}"
            variants: dict[str, str | None] = {kind: None for kind in servers if kind in ("zkops", "apache")}
            if args.baseline:
                variants["baseline"] = args.baseline
            for label in variants:
                results["recover"][label] = {"znodes": args.recover, "seconds": [], "rss_mib": []}
            for run in range(args.runs):
                order = list(variants) if run % 2 == 0 else list(variants)[::-1]
                for label in order:
                    if label == "apache":
                        t, r = recover_apache(src, last, args.apache_heap)
                    else:
                        t, r = recover(src, last, variants[label])
                    results["recover"][label]["seconds"].append(t)
                    results["recover"][label]["rss_mib"].append(r / 1024)
                    print(f"{label:8s} recover {args.recover}: serving after {t:.2f} s, RSS {r / 1024:.1f} MiB",
                          flush=True)
            for label in variants:
                took, rss = results["recover"][label]["seconds"], results["recover"][label]["rss_mib"]
                print(f"{label:8s} recovery of {args.recover}: {_spread(took)} s, RSS {_spread(rss)} MiB", flush=True)
            if "zkops" in variants and "apache" in variants:
                ratios = [a / b for a, b in zip(results["recover"]["zkops"]["seconds"],
                                                results["recover"]["apache"]["seconds"], strict=True)]
                results["recover"]["time_ratio"] = ratios
                print(f"recovery time of {args.recover}, zkops / Apache: {_spread(ratios)}", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
