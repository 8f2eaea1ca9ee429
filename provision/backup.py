"""``zkops backup``: copy one voter's newest snapshot and every txn log after it into a backup set.

Local hosts' files are read in place; SSH hosts' files are copied (as root, or through
``sudo -n`` for ``become`` users) to a temporary file on the host and fetched over SFTP,
logs trimmed of their preallocated zeros first. A later run fetches only the files that
are new or changed since the last one (by size and mtime on the host), so it adds the
new logs and the newest snapshot. ``--keep N`` keeps the N newest snapshots and the logs
they need. The set itself is :mod:`zkops.provision.backupset`.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zkops.server import snapshot as snapmod
from zkops.server.datatree import DataTree

from . import backupset
from .inventory import Host, Inventory
from .play import Options, TaskFailed, mode


@dataclass(frozen=True)
class RemoteFile:
    name: str  # snapshot.<z> or log.<z>
    path: str
    size: int
    mtime: float


class Source(Protocol):
    host: Host

    def listing(self) -> list[RemoteFile]: ...

    def fetch(self, f: RemoteFile) -> bytes: ...

    def close(self) -> None: ...


def _dirs(h: Host) -> tuple[str, str]:
    data = str(h.data_dir) + "/version-2"
    logs = str(h.data_log_dir or h.data_dir) + "/version-2"
    return data, logs


def _wanted(name: str, kind_dir: str, data: str, logs: str) -> bool:
    if name.startswith("snapshot.") and kind_dir == data:
        try:
            snapmod.snapshot_zxid(Path(name))
        except ValueError:
            return False
        return name.count(".") == 1  # compressed snapshots are not read by zkops
    if name.startswith("log.") and kind_dir == logs:
        try:
            int(name[4:], 16)
        except ValueError:
            return False
        return True
    return False


class LocalSource:
    def __init__(self, host: Host) -> None:
        self.host = host

    def listing(self) -> list[RemoteFile]:
        data, logs = _dirs(self.host)
        out = []
        for d in dict.fromkeys([data, logs]):
            p = Path(d)
            if not p.is_dir():
                continue
            for f in p.iterdir():
                if f.is_file() and _wanted(f.name, d, data, logs):
                    st = f.stat()
                    out.append(RemoteFile(f.name, str(f), st.st_size, st.st_mtime))
        return out

    def fetch(self, f: RemoteFile) -> bytes:
        from zkops.server import txnlog

        return txnlog.read_used(Path(f.path)) if f.name.startswith("log.") else Path(f.path).read_bytes()

    def close(self) -> None:
        pass


_LIST_SCRIPT = r"""
import json, os, sys
out = []
for d in dict.fromkeys(sys.argv[1:]):
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        p = os.path.join(d, n)
        if os.path.isfile(p):
            st = os.stat(p)
            out.append([d, n, st.st_size, st.st_mtime])
print(json.dumps(out))
"""
# a copy readable by the login user, trimmed of the zeros a log file is preallocated with
_COPY_SCRIPT = r"""
import os, sys
src, dst, trim = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with open(src, "rb") as f:
    data = f.read()
if trim:
    data = data.rstrip(b"\0")
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "wb") as f:
    f.write(data)
user = os.environ.get("SUDO_UID")
if user:
    os.chown(dst, int(user), -1)
"""


class SshSource:
    def __init__(self, host: Host, opts: Options) -> None:
        from .remote import Node

        self.host = host
        self.node = Node(host, opts)
        self.node.connect()

    def _py(self, script: str, *args: str) -> str:
        return self.node.run("python3 -c " + shlex.quote(script) + " " + " ".join(shlex.quote(a) for a in args))[1]

    def listing(self) -> list[RemoteFile]:
        data, logs = _dirs(self.host)
        rows = json.loads(self._py(_LIST_SCRIPT, data, logs) or "[]")
        return [RemoteFile(n, f"{d}/{n}", size, mtime) for d, n, size, mtime in rows if _wanted(n, d, data, logs)]

    def fetch(self, f: RemoteFile) -> bytes:
        import io

        tmp = f"/tmp/.zkops-backup-{secrets.token_hex(6)}"
        try:
            self._py(_COPY_SCRIPT, f.path, tmp, "1" if f.name.startswith("log.") else "0")
            buf = io.BytesIO()
            self.node.conn.get(tmp, buf)
            return buf.getvalue()
        finally:
            self.node.run(f"rm -f {tmp}", check=False)

    def close(self) -> None:
        self.node.close()


def open_source(h: Host, opts: Options) -> Source:
    return LocalSource(h) if h.connection == "local" else SshSource(h, opts)


def _newest(files: list[RemoteFile]) -> int:
    best = 0
    for f in files:
        best = max(best, int(f.name.split(".", 1)[1], 16))
    return best


@dataclass
class BackupResult:
    host: str
    snapshot: str
    fetched: list[str] = field(default_factory=list)
    unchanged: int = 0
    pruned: list[str] = field(default_factory=list)
    last_zxid: int = 0
    seconds: float = 0.0


def backup(inv: Inventory, to: Path, opts: Options, keep: int | None = None,
           log: Callable[[str], None] = print) -> BackupResult:
    """One backup run into ``to`` (created or extended)."""
    started = time.time()
    voters = [h for h in inv.hosts if h.role == "participant" and (not opts.limit or h.name in opts.limit)]
    if not voters:
        raise backupset.BackupError("the inventory has no voter to back up")
    # the leader has every committed txn; with none serving, the voter with the newest files
    modes = {h.name: mode(h) for h in voters}
    leader = [h for h in voters if modes[h.name] in ("leader", "standalone")]
    candidates = leader + [h for h in voters if h not in leader]
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    man = backupset.Manifest.load(to) if (to / backupset.MANIFEST).exists() else backupset.Manifest(created=started)
    man.ensemble = inv.source
    man.hosts = [{"name": h.name, "address": h.address, "myid": h.myid, "role": h.role} for h in inv.hosts]
    errors = []
    chosen: tuple[Source, list[RemoteFile]] | None = None
    listings: list[tuple[Source, list[RemoteFile]]] = []
    try:
        for h in candidates:
            try:
                src = open_source(h, opts)
            except TaskFailed as exc:
                errors.append(f"{h.name}: {exc}")
                continue
            files = src.listing()
            listings.append((src, files))
            if h in leader and files:
                chosen = (src, files)
                break
        if chosen is None:
            with_snap = [(s, f) for s, f in listings if f]
            if not with_snap:
                raise backupset.BackupError("no voter has a snapshot or a txn log to back up"
                                            + ("".join(f"\n  {e}" for e in errors)))
            chosen = max(with_snap, key=lambda sf: _newest(sf[1]))
        src, files = chosen
        h = src.host
        log(f"backing up {h.name} ({modes.get(h.name) or 'not serving'})")
        result = _copy(src, files, to, man, log)
        result.pruned = backupset.prune(to, man, keep) if keep else []
        man.updated = time.time()
        result.seconds = man.updated - started
        man.runs.append({"time": started, "host": h.name, "snapshot": result.snapshot, "fetched": result.fetched,
                         "unchanged": result.unchanged, "pruned": result.pruned, "last_zxid": result.last_zxid})
        man.save(to)
        return result
    finally:
        for s, _ in listings:
            s.close()


def _copy(src: Source, files: list[RemoteFile], to: Path, man: backupset.Manifest,
          log: Callable[[str], None]) -> BackupResult:
    h = src.host
    snaps = sorted((f for f in files if f.name.startswith("snapshot.")), key=lambda f: -snapmod.snapshot_zxid(
        Path(f.name)))
    logs = sorted((f for f in files if f.name.startswith("log.")), key=lambda f: int(f.name[4:], 16))
    result = BackupResult(h.name, "")
    snap_zxid = None
    for f in snaps:  # the newest that is sealed (Apache writes snapshots in place)
        key = f"{h.name}/{f.name}"
        if key in man.files:
            snap_zxid = man.files[key].first
            result.snapshot = key
            result.unchanged += 1
            break
        data = src.fetch(f)
        try:
            snapmod.check(data, f"{h.name}:{f.path}") if len(data) < (64 << 20) else _sealed(data, f)
        except snapmod.SnapshotError as exc:
            log(f"skipping {h.name}:{f.path}: {exc}")
            continue
        backupset.store(to, man, h.name, f.name, data, f"{h.name}:{f.path}", f.size, f.mtime)
        result.fetched.append(key)
        result.snapshot = key
        snap_zxid = snapmod.snapshot_zxid(Path(f.name))
        break
    if snap_zxid is None and logs and (int(logs[0].name[4:], 16) & 0xFFFFFFFF) == 1:
        # no snapshot yet (zkops writes its first after snapCount txns), but the logs go back
        # to the first txn of the history: the tree before it is the empty one
        snap_zxid = int(logs[0].name[4:], 16) - 1
        name = snapmod.snapshot_name(snap_zxid)
        key = f"{h.name}/{name}"
        if key not in man.files:
            data = snapmod.serialize(snap_zxid, {}, backupset.snapshot_nodes(DataTree()))
            backupset.store(to, man, h.name, name, data, f"{h.name}:(empty tree before the first txn)", 0, 0.0)
            result.fetched.append(key)
        result.snapshot = key
    if snap_zxid is None:
        raise backupset.BackupError(f"{h.name} has no whole snapshot, and its logs do not reach back to the "
                                    f"first txn")
    # from the log holding the snapshot's zxid, or from where the stored logs end if that is
    # earlier, so that the chain goes on from the last run without a gap
    stored = [e.last for e in man.logs() if e.last]
    since = min(snap_zxid, max(stored)) if stored else snap_zxid
    firsts = [int(f.name[4:], 16) for f in logs]
    start = 0
    for i, z in enumerate(firsts):
        if z <= since + 1:
            start = i
    for f in logs[start:]:
        key = f"{h.name}/{f.name}"
        old = man.files.get(key)
        # a copy that ended in a record cut short is fetched again: mtime can miss the rest of
        # that write (its granularity is a clock tick) and the file size is preallocated
        if old is not None and old.source_size == f.size and old.source_mtime == f.mtime and not old.torn:
            result.unchanged += 1
            result.last_zxid = max(result.last_zxid, old.last)
            continue
        entry = backupset.store(to, man, h.name, f.name, src.fetch(f), f"{h.name}:{f.path}", f.size, f.mtime)
        result.fetched.append(key)
        result.last_zxid = max(result.last_zxid, entry.last)
    result.last_zxid = max(result.last_zxid, snap_zxid)
    return result


def _sealed(data: bytes, f: RemoteFile) -> None:
    # a large snapshot is read in full by `backup verify`; here only its seal
    if not data.endswith(b"\x00\x00\x00\x01/") and b"\x00\x00\x00\x01/" not in data[-64:]:
        raise snapmod.SnapshotError(f"{f.path}: not sealed (being written, or truncated)")


__all__ = ["BackupResult", "LocalSource", "RemoteFile", "SshSource", "backup", "open_source"]
