"""Side-by-side benchmark: zkops and Apache ZooKeeper 3.8 in one run, reported as ratios.

python3 -m benchmarks.run [--quick] [--json out.json] [--skip-ensemble] [--skip-standalone] [--depth N]
                          [--reps N] [--variant NAME:VAR=VALUE,...]

Measures, for a standalone server of each: get / set / create throughput at 1, 16 and
128 sessions with pipelined requests (and, for writes, how many txns each server puts in one
sync of its log: mntr's ``zk_cnt_fsynctime`` before and after), start-up time (process start
until `srvr` answers with a mode; the median of several starts, with the AdminServer on as
both ship and off), RSS idle and after 100,000 znodes of 100 bytes; for a three-node ensemble
of each: set and get throughput and failover time (kill -9 of the leader until the first write
through a survivor succeeds), both ensembles up at once and alternating as the standalone
servers do. Every server first gets untimed load of each
measured operation (a JVM compiles its request path in the first seconds). The client is a raw
asyncio jute client in separate processes; on this 2-core machine client and server
share the cores, for both servers alike. ``--depth 4`` is the pipelined generator of
issue 21 (each session keeps 4 requests of 100 bytes in flight).

``--variant NAME:VAR=VALUE,...`` adds a third (fourth, ...) standalone server and a third
(fourth, ...) three-node ensemble: zkops started with those environment variables
(``ZKOPS_EVENT_LOOP=asyncio``, or ``PYTHONPATH=DIR`` for another tree of the package, such as
``scripts/compiled-tree DIR``'s compiled build), measured in the same run and alternating with
the others, so an A/B of two zkops builds shares the run's drift; every variant is reported
against Apache (and paired repetition by repetition). ``--skip-standalone`` leaves out the
standalone throughput figures (``--skip-startup`` the memory and start-up ones), for a run of
the ensembles alone.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import compileall
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from tests.support import refzk
from tests.support.ensemble import Ensemble, mode
from tests.support.ourzk import ZkopsProcess
from zkops.server.fourletterclient import four_letter
from zkops.server.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    Id,
    PathRequest,
    RequestHeader,
    SetDataRequest,
)

OPEN = [ACL(31, Id("world", "anyone"))]
WARM_UP_S = 5.0  # seconds of each operation against each server before the timed figures
ENSEMBLE_WARM_UP_S = 15.0  # Apache's ensemble took three 5 s repetitions to reach its rate
_LEN = struct.Struct(">i")


# ---------------------------------------------------------------- load generator
async def _session(host: str, port: int, op: str, depth: int, until: float, tag: str, counts: list[int],
                   latencies: list[float]) -> None:
    r, w = await asyncio.open_connection(host, port)
    req = ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"
    w.write(_LEN.pack(len(req)) + req)
    n = _LEN.unpack(await r.readexactly(4))[0]
    await r.readexactly(n)
    xid = 0
    value = b"v" * 100

    def frame() -> bytes:
        nonlocal xid
        xid += 1
        if op == "get":
            body = RequestHeader(xid, 4).to_bytes() + PathRequest("/bench", False).to_bytes()
        elif op == "set":
            body = RequestHeader(xid, 5).to_bytes() + SetDataRequest("/bench", value, -1).to_bytes()
        else:
            body = RequestHeader(xid, 1).to_bytes() + CreateRequest(f"/bench/{tag}-{xid}", value, OPEN, 0).to_bytes()
        return _LEN.pack(len(body)) + body

    # a session's replies come in the order of its requests: the oldest send time is the reply's
    sent: collections.deque[float] = collections.deque()
    now = time.monotonic()
    w.write(b"".join(frame() for _ in range(depth)))
    sent.extend([now] * depth)
    inflight = depth
    done = 0
    while inflight:
        n = _LEN.unpack(await r.readexactly(4))[0]
        data = await r.readexactly(n)
        rxid, _, err = struct.unpack_from(">iqi", data)
        if rxid == -1:
            continue
        if err != 0:
            raise RuntimeError(f"{op} failed with error {err}")
        now = time.monotonic()
        latencies.append(now - sent.popleft())
        inflight -= 1
        done += 1
        if now < until:
            w.write(frame())
            sent.append(now)
            inflight += 1
    counts.append(done)
    w.close()


def _worker(addresses: list[str], op: str, sessions: int, depth: int, duration: float, start_at: float,
            wid: str, q: mp.Queue) -> None:
    async def main() -> tuple[int, list[float]]:
        while time.time() < start_at:
            await asyncio.sleep(0.005)
        counts: list[int] = []
        latencies: list[float] = []
        until = time.monotonic() + duration
        tasks = []
        for s in range(sessions):
            host, port = addresses[s % len(addresses)].rsplit(":", 1)
            tasks.append(_session(host, int(port), op, depth, until, f"w{wid}s{s}", counts, latencies))
        await asyncio.gather(*tasks)
        return sum(counts), latencies

    try:
        q.put(asyncio.run(main()))
    except Exception as exc:  # report, do not hang the parent
        q.put(f"error: {exc}")


class Sample(NamedTuple):
    ops_per_s: float
    p50_ms: float
    p99_ms: float


@contextmanager
def environ(changes: dict[str, str | None]) -> Iterator[None]:
    """This process's environment with ``changes`` (None: unset), as it was again afterwards."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _quantile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def throughput(addresses: list[str], op: str, sessions: int, duration: float, depth: int = 16,
               procs: int = 2) -> float:
    return measure(addresses, op, sessions, duration, depth, procs).ops_per_s


def measure(addresses: list[str], op: str, sessions: int, duration: float, depth: int = 16,
            procs: int = 2) -> Sample:
    """Throughput and request latency (median, p99) of ``sessions`` sessions that each keep
    ``depth`` requests in flight for ``duration`` seconds."""
    procs = min(procs, sessions)
    q: mp.Queue = mp.Queue()
    start_at = time.time() + 0.5
    run_tag = os.urandom(3).hex()
    ps = []
    for i in range(procs):
        n = sessions // procs + (1 if i < sessions % procs else 0)
        p = mp.Process(target=_worker, args=(addresses, op, n, depth, duration, start_at, f"{run_tag}{i}", q))
        p.start()
        ps.append(p)
    results = [q.get(timeout=duration + 120) for _ in ps]
    for p in ps:
        p.join(30)
    errors = [r for r in results if isinstance(r, str)]
    if errors:
        raise RuntimeError(errors[0])
    lat = sorted(x for _, xs in results for x in xs)
    return Sample(sum(n for n, _ in results) / duration, _quantile(lat, 0.5) * 1000, _quantile(lat, 0.99) * 1000)


def _prepare(address: str) -> None:
    from kazoo.client import KazooClient

    c = KazooClient(address, timeout=15)
    c.start(timeout=30)
    c.ensure_path("/bench")
    c.set("/bench", b"v" * 100)
    c.stop()
    c.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_syncs(address: str) -> int | None:
    """How many times the server has synced its txn log (mntr's ``zk_cnt_fsynctime``, which
    both servers keep), or None when it does not say."""
    host, port = address.rsplit(":", 1)
    try:
        reply = four_letter(host, int(port), "mntr")
    except OSError:
        return None
    fields = dict(line.split("\t", 1) for line in reply.splitlines() if "\t" in line)
    try:
        return int(float(fields["zk_cnt_fsynctime"]))
    except (KeyError, ValueError):
        return None


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fill(address: str, count: int) -> None:
    """Create ``count`` znodes of 100 bytes, pipelined."""
    host, port = address.rsplit(":", 1)

    async def main() -> None:
        r, w = await asyncio.open_connection(host, int(port))
        req = ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"
        w.write(_LEN.pack(len(req)) + req)
        await r.readexactly(_LEN.unpack(await r.readexactly(4))[0])
        sent = got = 0
        while got < count:
            batch = []
            while sent < count and sent - got < 256:
                sent += 1
                body = RequestHeader(sent, 1).to_bytes() + CreateRequest(f"/fill-{sent}", b"x" * 100, OPEN, 0).to_bytes()
                batch.append(_LEN.pack(len(body)) + body)
            w.write(b"".join(batch))
            n = _LEN.unpack(await r.readexactly(4))[0]
            await r.readexactly(n)
            got += 1
        w.close()

    asyncio.run(main())


# ---------------------------------------------------------------- servers
class Standalone:
    """One server of either kind. ``admin`` turns its AdminServer on (on a free port) or off;
    None keeps the harness's habit (off for Apache, zkops's default on)."""

    variants: dict[str, dict[str, str]] = {}  # name -> environment of a zkops variant (--variant)

    def __init__(self, kind: str, admin: bool | None = None) -> None:
        self.kind = kind
        self.admin = admin
        self.proc_obj: object | None = None

    def _admin_cfg(self) -> dict[str, str]:
        if self.admin is None:
            return {}
        if self.admin:
            return {"admin.enableServer": "true", "admin.serverPort": str(refzk.free_port())}
        return {"admin.enableServer": "false"}

    def start(self) -> float:
        t0 = time.monotonic()
        if self.kind == "apache":
            z = refzk.RefZooKeeper(extra_cfg={"maxClientCnxns": "0", "autopurge.purgeInterval": "0",
                                              **self._admin_cfg()})
            z.start()
            self.proc_obj = z
        else:
            z = ZkopsProcess(extra_cfg={"maxClientCnxns": "0", **self._admin_cfg()})
            with environ(self.variants.get(self.kind, {})):  # ZkopsProcess hands its process this environment
                z.start()
            self.proc_obj = z
        return time.monotonic() - t0

    @property
    def address(self) -> str:
        return self.proc_obj.address  # type: ignore[union-attr]

    @property
    def pid(self) -> int:
        return self.proc_obj.proc.pid  # type: ignore[union-attr]

    def cleanup(self) -> None:
        if self.proc_obj is not None:
            self.proc_obj.cleanup()  # type: ignore[attr-defined]


class ApacheEnsemble:
    """Three Apache ZooKeeper processes (QuorumPeerMain) on loopback."""

    def __init__(self, n: int = 3, tick_ms: int = 200) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="refens-"))
        self.ids = list(range(1, n + 1))
        self.ports = {i: (refzk.free_port(), refzk.free_port(), refzk.free_port()) for i in self.ids}
        self.procs: dict[int, subprocess.Popen] = {}
        lines = [f"server.{i}=127.0.0.1:{q}:{e}" for i, (_, q, e) in self.ports.items()]
        for i in self.ids:
            d = self.workdir / f"n{i}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            (d / "zoo.cfg").write_text(
                f"tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={d / 'data'}\n"
                f"clientPort={self.ports[i][0]}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
                "admin.enableServer=false\nmaxClientCnxns=0\n" + "\n".join(lines) + "\n")

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i][0]}"

    def start(self, *ids: int) -> None:
        for i in ids or self.ids:
            d = self.workdir / f"n{i}"
            log = open(d / "server.log", "ab")
            self.procs[i] = subprocess.Popen(
                ["java", "-Xmx512m", "-Dzookeeper.admin.enableServer=false", "-cp", refzk.classpath(),
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")],
                stdout=log, stderr=subprocess.STDOUT, cwd=d)
            log.close()

    def kill(self, i: int) -> None:
        p = self.procs.pop(i)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def leader(self) -> int | None:
        ls = [i for i in self.procs if mode(self.ports[i][0]) == "leader"]
        return ls[0] if len(ls) == 1 else None

    def wait_ready(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            modes = {i: mode(self.ports[i][0]) for i in self.procs}
            if list(modes.values()).count("leader") == 1 and all(m in ("leader", "follower") for m in modes.values()):
                return next(i for i, m in modes.items() if m == "leader")
            time.sleep(0.1)
        raise TimeoutError("Apache ensemble not ready")

    def cleanup(self) -> None:
        for i in list(self.procs):
            self.kill(i)
        shutil.rmtree(self.workdir, ignore_errors=True)


def failover_seconds(addresses: dict[int, str], kill, leader: int) -> float:
    """kill -9 the leader, then retry a create through the survivors until one succeeds."""
    from kazoo.client import KazooClient

    survivors = ",".join(a for i, a in addresses.items() if i != leader)
    c = KazooClient(survivors, timeout=10, connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2})
    c.start(timeout=30)
    t0 = time.monotonic()
    kill(leader)
    i = 0
    while True:
        i += 1
        try:
            c.create(f"/failover-{i}")
            break
        except Exception:
            time.sleep(0.02)
        if time.monotonic() - t0 > 120:
            raise TimeoutError("no write succeeded within 120 s of the failover")
    took = time.monotonic() - t0
    c.stop()
    c.close()
    return took


def startup_seconds(kind: str, admin: bool, runs: int) -> float:
    """Median of ``runs`` cold starts (process start until srvr answers with a mode): one
    start of a JVM varies by a factor of two or more from run to run on this machine."""
    took = []
    for _ in range(runs):
        s = Standalone(kind, admin=admin)
        try:
            took.append(s.start())
        finally:
            s.cleanup()
    return statistics.median(took)


def warm_up(addresses: list[str], ops: tuple[str, ...], depth: int, seconds: float = WARM_UP_S) -> None:
    """Untimed load of every measured operation before the first figure: the first figures of a
    run otherwise found Apache's JVM still compiling its request path (its first 3-node set
    ran at half the rate of its third), which flattered zkops."""
    for op in ops:
        measure(addresses, op, 16, seconds, depth)


def ensemble_figures(kinds: list[str], duration: float, depth: int, reps: int, results: dict) -> None:
    """3-node set and get at 16 sessions spread over the members, as the standalone figures are
    taken: both ensembles up at once, each repetition alternating between them, the median kept
    with the paired ratios' spread, and the CPU of all three members per request; then one
    failover of each (kill -9 of the leader)."""
    up: dict[str, ApacheEnsemble | Ensemble] = {}
    try:
        for kind in kinds:
            up[kind] = ApacheEnsemble() if kind == "apache" else Ensemble(3, env=Standalone.variants.get(kind))
            up[kind].start()
        for kind, ens in up.items():
            _prepare(ens.address(ens.wait_ready()))
            if isinstance(ens, Ensemble):
                print(f"{kind:7s} 3-node members' {request_path(ens)}", flush=True)
            warm_up([ens.address(i) for i in ens.ids], ("set", "get"), depth, ENSEMBLE_WARM_UP_S)
            results["ensemble"][kind] = {}
        time.sleep(1.0)
        for op in ("set", "get"):
            key = f"{op}_16"
            samples: dict[str, list[float]] = {kind: [] for kind in up}
            p99s: dict[str, list[float]] = {kind: [] for kind in up}
            cpu_us: dict[str, list[float]] = {kind: [] for kind in up}
            for rep in range(reps):
                for kind in (kinds if rep % 2 == 0 else kinds[::-1]):
                    ens = up[kind]
                    pids = [p.pid for p in ens.procs.values()]
                    cpu0 = sum(cpu_s(pid) for pid in pids)
                    m = measure([ens.address(i) for i in ens.ids], op, 16, duration, depth)
                    samples[kind].append(m.ops_per_s)
                    p99s[kind].append(m.p99_ms)
                    done = m.ops_per_s * duration
                    cpu_us[kind].append((sum(cpu_s(pid) for pid in pids) - cpu0) / done * 1e6 if done else float("nan"))
            if "apache" in samples:
                # repetition i of one against repetition i of Apache, as the standalone figures
                for kind in samples:
                    if kind == "apache":
                        continue
                    pkey = f"3node_{key}" if kind == "zkops" else f"{kind}/3node_{key}"
                    results["paired_ratios"][pkey] = [
                        a / b for a, b in zip(samples[kind], samples["apache"], strict=True) if b]
            for kind in up:
                r = results["ensemble"][kind]
                r[key] = statistics.median(samples[kind])
                r[f"{key}_p99_ms"] = statistics.median(p99s[kind])
                r[f"{key}_cpu_us"] = statistics.median(cpu_us[kind])
                shown = " ".join(f"{x:.0f}" for x in samples[kind])
                tails = " ".join(f"{x:.1f}" for x in p99s[kind])
                cpus = " ".join(f"{x:.1f}" for x in cpu_us[kind])
                print(f"{kind:7s} 3-node {op} sessions=16: {r[key]:9.0f} ops/s ({shown}), p99 {tails} ms, "
                      f"CPU of the three {cpus} us/request", flush=True)
            for kind in samples:
                if kind != "apache" and "apache" in samples:
                    pkey = f"3node_{key}" if kind == "zkops" else f"{kind}/3node_{key}"
                    # the CPU of the three per request, paired as well (shown in the report's table)
                    results["paired_ratios"][f"{pkey}_cpu_us"] = [
                        a / b for a, b in zip(cpu_us[kind], cpu_us["apache"], strict=True) if b]
        for kind, ens in up.items():  # last: it kills the leader
            addr = {i: ens.address(i) for i in ens.ids}
            r = results["ensemble"][kind]
            r["failover_s"] = failover_seconds(addr, ens.kill, ens.wait_ready())
            print(f"{kind:7s} 3-node failover: {r['failover_s']:.2f} s", flush=True)
    finally:
        for ens in up.values():
            ens.cleanup()


# ---------------------------------------------------------------- the run
def request_path(ens: Ensemble) -> str:
    """What the first member's start-up log says of its event loop and request path (``event
    loop: uvloop, request path: compiled (mypyc: ...)``), so a run shows what each variant ran."""
    deadline = time.monotonic() + 30
    log = ens.workdir / f"n{ens.ids[0]}" / "zkops-server.log"
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if "request path:" in line:
                return line[line.find("event loop:") if "event loop:" in line else line.index("request path:"):]
        time.sleep(0.1)
    return "request path: (not logged)"


def run(quick: bool, skip_ensemble: bool, servers: list[str], depth: int = 16, reps: int | None = None,
        ops: tuple[str, ...] = ("get", "set", "create"), session_counts: tuple[int, ...] = (1, 16, 128),
        skip_startup: bool = False, skip_standalone: bool = False) -> dict:
    duration = 2.0 if quick else 5.0
    fill_count = 20_000 if quick else 100_000
    results: dict = {"machine": {"cores": os.cpu_count()}, "duration_s": duration, "depth": depth,
                     "standalone": {}, "ensemble": {}, "paired_ratios": {}}
    # Both servers run at once and every figure alternates between them, so drift of the
    # machine over the minutes of a run (other load, the disk) hits both alike; the median
    # of the repetitions is kept.
    if reps is None:
        reps = 1 if quick else 3
    up: dict[str, Standalone] = {}
    try:
        for kind in [] if skip_standalone else servers:
            up[kind] = Standalone(kind)
            up[kind].start()
            _prepare(up[kind].address)
            warm_up([up[kind].address], ops, depth)
        time.sleep(1.0)
        for kind, s in up.items():
            results["standalone"][kind] = {"rss_idle_kb": rss_kb(s.pid)}
        for op in ops if up else ():
            for sessions in session_counts:
                samples: dict[str, list[float]] = {kind: [] for kind in up}
                p99s: dict[str, list[float]] = {kind: [] for kind in up}
                cpu_us: dict[str, list[float]] = {kind: [] for kind in up}
                per_sync: dict[str, list[float]] = {kind: [] for kind in up}
                for rep in range(reps):
                    for kind in (servers if rep % 2 == 0 else servers[::-1]):
                        cpu0 = cpu_s(up[kind].pid)
                        syncs0 = log_syncs(up[kind].address) if op != "get" else None
                        m = measure([up[kind].address], op, sessions, duration, depth)
                        samples[kind].append(m.ops_per_s)
                        p99s[kind].append(m.p99_ms)
                        # the server process's CPU (all its threads) per request: steadier than
                        # throughput on a loaded machine, where a share of the cores is the figure
                        done = m.ops_per_s * duration
                        cpu_us[kind].append((cpu_s(up[kind].pid) - cpu0) / done * 1e6 if done else float("nan"))
                        # txns per log sync: how a server batches its writes to the disk
                        syncs1 = log_syncs(up[kind].address) if syncs0 is not None else None
                        if syncs0 is not None and syncs1 is not None and syncs1 > syncs0:
                            per_sync[kind].append(done / (syncs1 - syncs0))
                if "apache" in samples:
                    # repetition i of one against repetition i of the other: the spread of the ratio
                    for kind in samples:
                        if kind == "apache":
                            continue
                        key = f"{op}_{sessions}" if kind == "zkops" else f"{kind}/{op}_{sessions}"
                        results["paired_ratios"][key] = [
                            a / b for a, b in zip(samples[kind], samples["apache"], strict=True) if b]
                for kind in up:
                    value = statistics.median(samples[kind])
                    results["standalone"][kind][f"{op}_{sessions}"] = value
                    results["standalone"][kind][f"{op}_{sessions}_p99_ms"] = statistics.median(p99s[kind])
                    results["standalone"][kind][f"{op}_{sessions}_cpu_us"] = statistics.median(cpu_us[kind])
                    shown = " ".join(f"{x:.0f}" for x in samples[kind])
                    tails = " ".join(f"{x:.1f}" for x in p99s[kind])
                    cpus = " ".join(f"{x:.1f}" for x in cpu_us[kind])
                    batches = ""
                    if per_sync[kind]:
                        results["standalone"][kind][f"{op}_{sessions}_txns_per_sync"] = statistics.median(
                            per_sync[kind])
                        batches = ", txns per log sync " + " ".join(f"{x:.1f}" for x in per_sync[kind])
                    print(f"{kind:7s} {op:6s} sessions={sessions:3d}: {value:9.0f} ops/s ({shown}), "
                          f"p99 {tails} ms, server CPU {cpus} us/request{batches}", flush=True)
    finally:
        for s in up.values():
            s.cleanup()
    for kind in [] if skip_startup else servers:
        r = results["standalone"].setdefault(kind, {})
        # memory on a fresh server: the throughput runs above leave allocator high-water marks
        s = Standalone(kind)
        try:
            s.start()
            fill(s.address, fill_count)
            time.sleep(1.0)
            r[f"rss_{fill_count}_znodes_kb"] = rss_kb(s.pid)
        finally:
            s.cleanup()
        # start-up with each server as shipped (AdminServer on) and with the AdminServer off
        runs = 3 if quick else 7
        r["startup_s"] = startup_seconds(kind, True, runs)
        r["startup_no_adminserver_s"] = startup_seconds(kind, False, runs)
        print(f"{kind:7s} start-up: {r['startup_s']:.3f} s, without AdminServer "
              f"{r['startup_no_adminserver_s']:.3f} s (median of {runs})", flush=True)
        results["standalone"][kind] = r
    if not skip_ensemble:
        ensemble_figures(servers, duration, depth, reps, results)
    return results


def report(results: dict, kind: str = "zkops") -> str:
    lines = [f"| metric | {kind} | Apache | {kind} / Apache |", "|---|---|---|---|"]
    for section in ("standalone", "ensemble"):
        ours, theirs = results[section].get(kind, {}), results[section].get("apache", {})
        for key in ours:
            if key not in theirs:
                continue
            a, b = ours[key], theirs[key]
            ratio = a / b if b else float("nan")
            better = "lower is better" if key.endswith(("_s", "_kb", "_ms", "_us")) else "higher is better"
            fmt = "{:.2f}" if isinstance(a, float) and a < 100 else "{:.0f}"
            shown = f"{ratio:.2f}"
            pkey = key if kind == "zkops" else f"{kind}/{key}"
            if section == "ensemble":
                pkey = f"3node_{key}" if kind == "zkops" else f"{kind}/3node_{key}"
            paired = results.get("paired_ratios", {}).get(pkey)
            if paired and len(paired) > 1:
                shown += f" {statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f})"
            lines.append(f"| {section} {key} ({better}) | {fmt.format(a)} | {fmt.format(b)} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-ensemble", action="store_true")
    ap.add_argument("--servers", default="zkops,apache")
    ap.add_argument("--depth", type=int, default=16,
                    help="requests each session keeps in flight (16; 4 is the issue tracker's generator)")
    ap.add_argument("--reps", type=int, help="paired repetitions of each throughput figure (1 quick, 3 full)")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:VAR=VALUE,...: another zkops server started with that environment")
    ap.add_argument("--ops", default="get,set,create", help="which throughput figures (get,set,create)")
    ap.add_argument("--sessions", default="1,16,128", help="session counts of the throughput figures")
    ap.add_argument("--skip-startup", action="store_true", help="no memory and start-up figures")
    ap.add_argument("--skip-standalone", action="store_true", help="no standalone throughput figures")
    ap.add_argument("--json")
    args = ap.parse_args()
    servers = args.servers.split(",")
    for spec in args.variant:
        name, _, env = spec.partition(":")
        Standalone.variants[name] = dict(kv.split("=", 1) for kv in env.split(",") if kv)
        servers.append(name)
    if not refzk.available() and "apache" in args.servers:
        sys.exit("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    # An installed wheel ships byte-compiled modules (pip compiles at install time); an
    # editable checkout run with PYTHONDONTWRITEBYTECODE=1 would compile every module on
    # every start instead, which is not what users run.
    import zkops.server
    compileall.compile_dir(Path(zkops.server.__file__).parent, quiet=1)
    results = run(args.quick, args.skip_ensemble, servers, args.depth, args.reps, tuple(args.ops.split(",")),
                  tuple(int(n) for n in args.sessions.split(",")), args.skip_startup, args.skip_standalone)
    for kind in servers:
        if kind != "apache":
            print(report(results, kind))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
