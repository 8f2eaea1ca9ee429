"""Backup, verify and restore of a large tree: time and peak memory of each step.

python3 -m benchmarks.backup [--znodes 1000000] [--txns 100000] [--runs 3] [--export N]

Builds a data directory with one snapshot of ``--znodes`` znodes of 100 bytes (1,000
parents of 1,000 children) and a txn log of ``--txns`` setData txns after it, then
times each step as the operator runs it, a fresh ``zkops`` process per step, with its
peak RSS (``ru_maxrss`` of that process): a full backup, an incremental run with
nothing new, ``backup verify`` (every file read, every snapshot node parsed),
``restore --check`` and a restore into an empty data directory. ``--export N`` also
times ``zkops export`` and ``zkops import`` of N znodes between two zkops servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from zkops.server import snapshot as snapmod
from zkops.server.codes import Op
from zkops.server.paths import QUOTA, ZOOKEEPER
from zkops.server.records import ACL, Id, SetDataTxn, StatPersisted, TxnHeader
from zkops.server.txncodec import encode_txn
from zkops.server.txnlog import TxnLog

OPEN = [ACL(31, Id("world", "anyone"))]


def build(data_dir: Path, znodes: int, txns: int) -> int:
    """A snapshot of ``znodes`` nodes at zxid ``znodes + 2`` and ``txns`` setData txns after it."""
    parents = max(1, znodes // 1000)
    per = znodes // parents
    now = int(time.time() * 1000) - 3_600_000
    payload = b"x" * 100

    def nodes():
        empty = StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0)
        yield "", b"", OPEN, empty
        yield ZOOKEEPER, b"", OPEN, empty
        yield QUOTA, b"", OPEN, empty
        zxid = 1
        for p in range(parents):
            parent = f"/p{p:04d}"
            yield parent, b"", OPEN, StatPersisted(zxid, zxid, now, now, 0, per, 0, 0, zxid + per)
            zxid += 1
            for c in range(per):
                yield f"{parent}/c{c:04d}", payload, OPEN, StatPersisted(zxid, zxid, now, now, 0, 0, 0, 0, zxid)
                zxid += 1

    last = parents * (per + 1)
    snapmod.write_snapshot(data_dir, last, {}, nodes())
    with TxnLog(data_dir, prealloc_bytes=64 << 20) as log:
        for i in range(txns):
            z = last + 1 + i
            path = f"/p{i % parents:04d}/c{(i // parents) % per:04d}"
            log.append(z, encode_txn(TxnHeader(0, i, z, now + i, Op.setData), SetDataTxn(path, payload, 1)))
            if i % 10000 == 9999:
                log.sync()
    return last + txns


def measured(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one command in its own process (RSS through wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_b = proc.stdout.read()  # type: ignore[union-attr]
    err_b = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out_b.decode()}\n{err_b.decode()}")
    return elapsed, usage.ru_maxrss / 1024, out_b.decode()


def zkops(*args: str) -> list[str]:
    return [sys.executable, "-m", "zkops.cli", *args]


def inventory(path: Path, base: Path) -> Path:
    path.write_text(yaml.safe_dump({"all": {"hosts": {"zk1": {
        "connection": "local", "address": "127.0.0.1", "client_port": 1, "quorum_port": 2, "election_port": 3,
        "base_dir": str(base), "data_dir": str(base / "data")}}}}))
    return path


def fmt(values: list[float], unit: str) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} {unit}"
    return f"{statistics.median(values):.2f} {unit} (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--txns", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--export", type=int, default=0, help="also export/import this many znodes")
    ap.add_argument("--build-only", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_only:
        print(build(Path(args.build_only), args.znodes, args.txns))
        return 0
    work = Path(tempfile.mkdtemp(prefix="zkops-bench-backup-", dir="/var/tmp"))
    try:
        src = work / "source"
        t0 = time.perf_counter()
        # in a child: a fork keeps the parent's peak RSS in the child's ru_maxrss, so the
        # measuring process must stay small
        last = int(subprocess.run([sys.executable, "-m", "benchmarks.backup", "--znodes", str(args.znodes),
                                   "--txns", str(args.txns), "--build-only", str(src / "data")],
                                  check=True, capture_output=True, text=True).stdout)
        size = sum(f.stat().st_size for f in (src / "data" / "version-2").iterdir())
        print(f"data directory: {args.znodes:,} znodes + {args.txns:,} txns, {size / 2**20:.0f} MiB "
              f"(built in {time.perf_counter() - t0:.1f} s); last zxid 0x{last:x}")
        inv = inventory(work / "source.yaml", src)
        steps: dict[str, list[tuple[float, float]]] = {}
        for run in range(args.runs):
            bdir = work / f"backup{run}"
            target = work / f"target{run}"
            for name, cmd in (
                    ("backup (full)", zkops("backup", str(inv), "--to", str(bdir))),
                    ("backup (incremental, nothing new)", zkops("backup", str(inv), "--to", str(bdir))),
                    ("backup verify", zkops("backup", "verify", str(bdir))),
                    ("restore --check", zkops("restore", str(inv), "--from", str(bdir), "--check")),
                    ("restore", zkops("restore", str(inventory(work / f"t{run}.yaml", target)), "--from", str(bdir)))):
                secs, rss, _ = measured(cmd)
                steps.setdefault(name, []).append((secs, rss))
            shutil.rmtree(bdir)
            shutil.rmtree(target)
        for name, vals in steps.items():
            print(f"{name:36s} {fmt([v[0] for v in vals], 's'):38s} peak RSS {fmt([v[1] for v in vals], 'MiB')}")
        if args.export:
            _export_import(work, args.export)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _export_import(work: Path, n: int) -> None:
    from kazoo.client import KazooClient

    from tests.support.ourzk import ZkopsProcess

    a, b = ZkopsProcess().start(), ZkopsProcess().start()
    try:
        zk = KazooClient(hosts=a.address, timeout=30)
        zk.start()
        zk.create("/e")
        per = 1000
        for p in range(max(1, n // per)):
            zk.create(f"/e/p{p:04d}")
            futs = [zk.create_async(f"/e/p{p:04d}/c{c:04d}", b"x" * 100) for c in range(per)]
            for f in futs:
                f.get()
        zk.stop()
        f = work / "tree.json"
        secs, rss, _ = measured(zkops("export", "--server", a.address, "/e", "-o", str(f)))
        print(f"{'export':36s} {secs:.2f} s{'':31s} peak RSS {rss:.2f} MiB ({n:,} znodes)")
        secs, rss, _ = measured(zkops("import", str(f), "--server", b.address))
        print(f"{'import':36s} {secs:.2f} s{'':31s} peak RSS {rss:.2f} MiB")
    finally:
        a.cleanup()
        b.cleanup()


if __name__ == "__main__":
    sys.exit(main())
