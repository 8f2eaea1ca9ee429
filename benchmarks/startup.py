"""Start-up of a standalone zkops server: process start until ``srvr`` answers with a mode.

python3 -m benchmarks.startup [--runs 30] [--variant NAME:VAR=VALUE,...] ... [--importtime]

An empty dataDir, the AdminServer off, one server at a time; every variant (environment
variables for the server process: ``ZKOPS_EVENT_LOOP=asyncio``, ``PYTHONPATH=DIR`` for
another tree of the package) is started in turn, run after run, so drift hits them alike.
``srvr`` is polled every 2 ms. Prints the median with the min and max of each, of the wall
clock and of the CPU time the server's main thread had used by then (/proc/PID/schedstat:
steadier than the wall clock on a loaded machine, where the wait for a core is in the latter),
and the server's RSS once it serves.

Bytecode: an installed server runs from compiled modules (pip writes them), but a development
shell often sets PYTHONDONTWRITEBYTECODE, and then every start compiles every module of the
package again (about 60 ms here). So the servers get a bytecode cache of their own
(PYTHONPYCACHEPREFIX, a temporary directory; each variant is started once to fill it before
the counted starts); ``--no-bytecode-cache`` starts them with the caller's environment as it is.
``--importtime`` prints the slowest imports of one start instead (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.refzk import free_port


def _config(workdir: Path, port: int) -> Path:
    (workdir / "data").mkdir(parents=True)
    cfg = workdir / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                   "admin.enableServer=false\n4lw.commands.whitelist=*\n")
    return cfg


def _serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            return b"Mode:" in reply
    except OSError:
        return False


def _cpu_s(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return float("nan")


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def bytecode_cache_env(cache_dir: str) -> dict[str, str]:
    """The environment of a server that compiles each module once, into ``cache_dir``."""
    return {"PYTHONPYCACHEPREFIX": cache_dir, "PYTHONDONTWRITEBYTECODE": ""}


def start_once(env: dict[str, str], extra_args: list[str] | None = None,
               rss: list[float] | None = None) -> tuple[float, float, str]:
    """Seconds from spawning the server until it serves, the CPU seconds of its main thread by
    then, and its stderr when extra_args asked for it; appends its RSS (MiB) then to ``rss``.
    An empty value in ``env`` removes that variable."""
    workdir = Path(tempfile.mkdtemp(prefix="zkops-startup-"))
    port = free_port()
    cfg = _config(workdir, port)
    full_env = dict(os.environ, ZOO_LOG_DIR=str(workdir), **env)
    for k in [k for k, v in env.items() if not v]:
        del full_env[k]
    cmd = [sys.executable, *(extra_args or []), "-m", "zkops.server", "start-foreground", str(cfg)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=full_env, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if extra_args else subprocess.DEVNULL)
    try:
        while not _serving(port):
            if proc.poll() is not None or time.monotonic() - t0 > 30:
                raise RuntimeError("the server did not start")
            time.sleep(0.002)
        took = time.monotonic() - t0
        cpu = _cpu_s(proc.pid)
        if rss is not None:
            rss.append(_rss_mib(proc.pid))
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        shutil.rmtree(workdir, ignore_errors=True)
    return took, cpu, (err or b"").decode(errors="replace")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--variant", action="append", default=[], help="NAME:VAR=VALUE,...")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="start the servers in this environment as it is (PYTHONDONTWRITEBYTECODE and all)")
    args = ap.parse_args()
    cache_dir = tempfile.mkdtemp(prefix="zkops-startup-pyc-")
    try:
        _run(args, {} if args.no_bytecode_cache else bytecode_cache_env(cache_dir))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def _run(args: argparse.Namespace, base_env: dict[str, str]) -> None:
    if args.importtime:
        start_once(base_env)  # fills the bytecode cache
        _, _, err = start_once(base_env, ["-X", "importtime"])
        rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")][1:]
        rows.sort(key=lambda r: -int(r[1]))
        for r in rows[:40]:
            print(f"{int(r[1]):8d} us cumulative {int(r[0].split(':')[1]):8d} us self  {r[2].rstrip()}")
        return
    variants: dict[str, dict[str, str]] = {"default": {}}
    for spec in args.variant:
        name, _, env = spec.partition(":")
        variants[name] = dict(kv.split("=", 1) for kv in env.split(",") if kv)
    variants = {name: {**base_env, **env} for name, env in variants.items()}
    if base_env:
        for env in variants.values():
            start_once(env)  # fills the bytecode cache
    took: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    rss: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, env in variants.items():
            wall, used, _ = start_once(env, rss=rss[name])
            took[name].append(wall)
            cpu[name].append(used)
    for name, xs in took.items():
        cs, ms = cpu[name], rss[name]
        print(f"{name:12s} start-up to serving: median {statistics.median(xs) * 1000:6.1f} ms "
              f"(min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}); main thread CPU by then "
              f"{statistics.median(cs) * 1000:.1f} ms ({min(cs) * 1000:.1f}-{max(cs) * 1000:.1f}); "
              f"RSS {statistics.median(ms):.1f} MiB ({min(ms):.1f}-{max(ms):.1f}); {len(xs)} starts")


if __name__ == "__main__":
    main()
