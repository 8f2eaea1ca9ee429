"""``zkops restore``: give every node of an ensemble the tree of a backup at one zxid or time.

The tree is rebuilt here once (snapshot, then txns up to the point, then no sessions and
no ephemerals) and written as one snapshot; every node gets that snapshot as the only
file of its ``version-2``, and its old ``version-2`` directories are moved aside to
``version-2.before-restore-<time>`` (never deleted). A node that answers on its client
port stops the restore unless ``--force``, which stops the ensemble first.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zkops.server import snapshot as snapmod

from ..server.fourletterclient import four_letter_or_empty
from . import backupset
from .inventory import Host, Inventory
from .remote import Options


@dataclass
class RestoreResult:
    zxid: int
    snapshot: str
    txns: int
    znodes: int
    sessions_dropped: int
    ephemerals_dropped: int
    written: list[str]
    moved_aside: list[str]


def _listening(h: Host) -> bool:
    """Does anything accept connections on the node's client port? (A busy server may be slow
    to answer ruok; a refused connection is the clear "not running".)"""
    addr = "127.0.0.1" if h.address in ("0.0.0.0", "") else h.address
    try:
        with socket.create_connection((addr, h.client_port), timeout=5):
            return True
    except OSError:
        return four_letter_or_empty(h.address, h.client_port, "ruok", timeout=2) == "imok"


def running_hosts(inv: Inventory) -> list[Host]:
    return [h for h in inv.hosts if _listening(h)]


def restore(inv: Inventory, src: Path, opts: Options, to_zxid: int | None = None, to_time_ms: int | None = None,
            check: bool = False, force: bool = False, log: Callable[[str], None] = print) -> RestoreResult:
    point = backupset.choose(Path(src), to_zxid, to_time_ms)
    rebuilt = backupset.rebuild(Path(src), point)
    result = RestoreResult(rebuilt.zxid, point.snapshot.name, rebuilt.txns, rebuilt.tree.node_count(),
                           rebuilt.sessions_dropped, rebuilt.ephemerals_dropped, [], [])
    for path, ref in rebuilt.unresolved_acls.items():
        log(f"node {path} names ACL id {ref}, which neither the snapshot's ACL cache nor a txn up to the restore "
            f"point defines: it is restored with an ACL granting nothing (a super user can setACL it)")
    if check:
        return result
    hosts = [h for h in inv.hosts if not opts.limit or h.name in opts.limit]
    up = running_hosts(inv)
    if up and not force:
        raise backupset.BackupError("the ensemble is running (" + ", ".join(h.name for h in up) + " listen on their client port): "
                                    "stop it first, or pass --force to have zkops stop it")
    if up:
        _stop(inv, opts, log)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    local = [h for h in hosts if h.connection == "local"]
    remote = [h for h in hosts if h.connection != "local"]
    for h in local:
        moved = backupset.write_restored(rebuilt, h.data_dir, h.data_log_dir, stamp)
        result.written.append(f"{h.name}:{h.data_dir}/version-2/{snapmod.snapshot_name(rebuilt.zxid)}")
        result.moved_aside += [f"{h.name}:{m}" for m in moved]
        log(f"{h.name}: restored 0x{rebuilt.zxid:x}" + (f", old files in {', '.join(map(str, moved))}" if moved else ""))
    if remote:
        with tempfile.TemporaryDirectory(prefix="zkops-restore-") as tmp:
            snap = snapmod.write_snapshot(Path(tmp), rebuilt.zxid, {}, backupset.snapshot_nodes(rebuilt.tree))
            for h in remote:
                moved_remote = _put_remote(h, opts, snap, stamp)
                result.written.append(f"{h.name}:{h.data_dir}/version-2/{snap.name}")
                result.moved_aside += [f"{h.name}:{m}" for m in moved_remote]
                log(f"{h.name}: restored 0x{rebuilt.zxid:x}"
                    + (f", old files in {', '.join(moved_remote)}" if moved_remote else ""))
    return result


def _stop(inv: Inventory, opts: Options, log: Callable[[str], None]) -> None:
    for h in inv.hosts:
        if h.connection == "local":
            # the pidfile every zkserver writes (zkops deploy, start, start-foreground)
            try:
                pid = int((h.data_dir / "zookeeper_server.pid").read_text().strip())
                os.kill(pid, signal.SIGTERM)
                log(f"{h.name}: stopping pid {pid}")
            except (OSError, ValueError):
                log(f"{h.name}: answers ruok but has no pidfile in {h.data_dir}: stop it yourself")
    if any(h.connection != "local" for h in inv.hosts):
        from .remote import service_remote

        recap = service_remote(inv, opts, "stop")
        for r in recap.results:
            log(f"{r.host}: {r.task}: {r.status}")
    deadline = time.monotonic() + 60
    while running_hosts(inv):
        if time.monotonic() > deadline:
            raise backupset.BackupError("the ensemble did not stop within 60 s; nothing was restored")
        time.sleep(0.5)


def _put_remote(h: Host, opts: Options, snap: Path, stamp: str) -> list[str]:
    from .remote import Node

    node = Node(h, opts)
    node.connect()
    try:
        upload = f"/tmp/.zkops-restore-{secrets.token_hex(6)}"
        node.conn.put(str(snap), upload)
        data = str(h.data_dir)
        logs = str(h.data_log_dir or h.data_dir)
        q = shlex.quote
        script = f"""set -e
owner=$(stat -c %U:%G {q(data)})
for d in {' '.join(q(d) for d in dict.fromkeys([data, logs]))}; do
  if [ -e "$d/version-2" ]; then
    aside="$d/version-2.before-restore-{stamp}"; n=1
    while [ -e "$aside" ]; do aside="$d/version-2.before-restore-{stamp}-$n"; n=$((n+1)); done
    mv "$d/version-2" "$aside"; echo "$aside"
  fi
  install -d -m 0750 -o "${{owner%:*}}" -g "${{owner#*:}}" "$d/version-2"
done
install -m 0640 -o "${{owner%:*}}" -g "${{owner#*:}}" {q(upload)} {q(data)}/version-2/{q(snap.name)}
rm -f {q(upload)}
"""
        _, out = node.run(f"sh -c {q(script)}")
        return [line for line in out.splitlines() if "before-restore" in line]
    finally:
        node.close()


__all__ = ["RestoreResult", "restore", "running_hosts"]
