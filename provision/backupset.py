"""A backup set on disk: snapshots and txn logs in Apache ZooKeeper 3.8's formats, plus a manifest.

Layout of a backup directory::

    manifest.json              ensemble, hosts, runs, and per file: size, sha256, zxid range
    files/<host>/snapshot.<z>  copied as the server wrote it
    files/<host>/log.<z>       copied up to its last written byte (no preallocated zeros)

This module only reads and writes that directory: it checks files (sha256, the
snapshot's Adler32 seal, every log record's Adler32), follows the zxid chain from each
snapshot through the logs, and rebuilds the tree at a chosen zxid or time. The file
formats are read with the server's own codecs (``server/snapshot.py``,
``server/txnlog.py``, ``server/txncodec.py``); nothing here parses them a second time.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import json
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zkops.server import snapshot as snapmod
from zkops.server import txnlog
from zkops.server.codes import Op
from zkops.server.datatree import DataTree, Loader, session_owner
from zkops.server.pendingrestore import move_aside
from zkops.server.txncodec import decode_txn

MANIFEST = "manifest.json"
FORMAT = 1
_TIME = struct.Struct(">q")
_TIME_AT = 20  # offset of the time inside a TxnHeader: clientId 8, cxid 4, zxid 8


class BackupError(RuntimeError):
    """The backup cannot give what was asked; the message says which file and why."""


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector off while a tree is rebuilt: znodes hold no reference cycles, and
    with the default thresholds the collector walked the growing tree again and again (as a
    server's recovery did before it turned the collector off: server/app.py). What was built
    stays, so it is frozen before the collector comes back, or the first collections after
    would walk all of it once more."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_on:
            gc.enable()


@dataclass
class FileEntry:
    """One stored file; ``first``/``last`` are its zxid range (a snapshot: both its zxid)."""

    name: str  # "<host>/<file name>"
    kind: str  # "snapshot" | "log"
    size: int
    sha256: str
    first: int
    last: int
    source: str  # host:path it came from
    source_size: int = 0
    source_mtime: float = 0.0
    added: float = 0.0
    first_time: int = 0  # ms of its first txn (logs)
    last_time: int = 0  # ms of its last txn (logs); a snapshot: the file's mtime in ms
    torn: bool = False  # the copy ends in a record cut short (copied while being written)


@dataclass
class Manifest:
    ensemble: str = ""
    hosts: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.exists():
            if Path(directory).is_dir():
                raise BackupError(f"{directory} is not a zkops backup: no {MANIFEST}")
            raise BackupError(f"{directory} does not exist")
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"{path}: unreadable manifest: {exc}") from None
        if raw.get("format") != FORMAT:
            raise BackupError(f"{path}: unknown manifest format {raw.get('format')!r}")
        files = {name: FileEntry(**entry) for name, entry in raw.get("files", {}).items()}
        return cls(raw.get("ensemble", ""), raw.get("hosts", []), raw.get("created", 0.0), raw.get("updated", 0.0),
                   raw.get("runs", []), files)

    def save(self, directory: Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        raw = {"format": FORMAT, "ensemble": self.ensemble, "hosts": self.hosts, "created": self.created,
               "updated": self.updated, "runs": self.runs,
               "files": {n: asdict(e) for n, e in sorted(self.files.items())}}
        tmp = d / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(raw, indent=1) + "\n")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, d / MANIFEST)

    def snapshots(self) -> list[FileEntry]:
        return sorted((e for e in self.files.values() if e.kind == "snapshot"), key=lambda e: e.first)

    def logs(self) -> list[FileEntry]:
        return sorted((e for e in self.files.values() if e.kind == "log"), key=lambda e: (e.first, e.last))


# ---------------------------------------------------------------- storing files
def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_log(data: bytes, name: str) -> tuple[int, int, int, int, bool]:
    """(first zxid, last zxid, first time, last time, torn) of a log file's bytes; damage raises."""
    recs, _, problem = txnlog.scan(data, name)
    if not recs:
        return 0, 0, 0, 0, problem == "torn"
    t0 = _TIME.unpack_from(data, recs[0][1] + _TIME_AT)[0]
    t1 = _TIME.unpack_from(data, recs[-1][1] + _TIME_AT)[0]
    return recs[0][0], recs[-1][0], t0, t1, problem == "torn"


def store(directory: Path, manifest: Manifest, host: str, name: str, data: bytes, source: str,
          source_size: int, source_mtime: float) -> FileEntry:
    """Write one fetched file into the set and record it (replacing an older copy of it)."""
    kind = "snapshot" if name.startswith("snapshot.") else "log"
    if kind == "log":
        data = data.rstrip(b"\0") if data.endswith(b"\0") else data
        if len(data) < txnlog.HEADER_SIZE:
            data = data.ljust(txnlog.HEADER_SIZE, b"\0")  # the header ends in zero bytes
        try:
            first, last, t0, t1, torn = describe_log(data, source)
        except txnlog.CorruptLogError as exc:
            raise BackupError(f"{source}: the server's log is damaged: {exc}") from None
    else:
        first = last = snapmod.snapshot_zxid(Path(name))
        t0 = t1 = int(source_mtime * 1000)
        torn = False
    d = Path(directory) / "files" / host
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / name)
    entry = FileEntry(f"{host}/{name}", kind, len(data), sha256_of(data), first, last, source, source_size,
                      source_mtime, time.time(), t0, t1, torn)
    manifest.files[entry.name] = entry
    return entry


def prune(directory: Path, manifest: Manifest, keep: int) -> list[str]:
    """Keep the ``keep`` newest snapshots and the logs they need; returns what was removed."""
    snaps = manifest.snapshots()
    if keep < 1 or len(snaps) <= keep:
        return []
    oldest_kept = snaps[-keep].first
    doomed = [e for e in snaps[:-keep]]
    doomed += [e for e in manifest.logs() if e.last and e.last <= oldest_kept]
    removed = []
    for e in doomed:
        try:
            (Path(directory) / "files" / e.name).unlink()
        except FileNotFoundError:
            pass
        manifest.files.pop(e.name, None)
        removed.append(e.name)
    return removed


# ---------------------------------------------------------------- checking
def _next_ok(prev: int, nxt: int) -> bool:
    """Does ``nxt`` directly follow ``prev`` in ZooKeeper's zxid sequence?"""
    if nxt == prev + 1:
        return True
    return (nxt >> 32) > (prev >> 32) and (nxt & 0xFFFFFFFF) == 1


@dataclass
class Span:
    """What one snapshot can restore to: any zxid from ``snapshot`` to ``last``."""

    snapshot: str
    first: int
    last: int
    first_time: int
    last_time: int
    stops_because: str = ""


@dataclass
class Report:
    directory: Path
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    txns: int = 0
    spans: list[Span] = field(default_factory=list)
    bad: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.spans)

    def lines(self) -> list[str]:
        out = [f"{self.checked} files checked, {self.txns} txns"]
        out += [f"problem: {p}" for p in self.problems]
        if not self.spans:
            out.append("nothing to restore to")
        for s in self.spans:
            out.append(f"can restore to any zxid 0x{s.first:x} .. 0x{s.last:x} ({_when(s.first_time)} .. "
                       f"{_when(s.last_time)}) from {s.snapshot}" + (f"; stops: {s.stops_because}" if s.stops_because
                                                                    else ""))
        return out


def _when(ms: int) -> str:
    if not ms:
        return "?"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _read_checked(directory: Path, e: FileEntry) -> bytes:
    path = Path(directory) / "files" / e.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BackupError(f"{e.name}: missing from the backup") from None
    if len(data) != e.size:
        raise BackupError(f"{e.name}: {len(data)} bytes, the manifest says {e.size} (truncated or changed)")
    if sha256_of(data) != e.sha256:
        raise BackupError(f"{e.name}: sha256 differs from the manifest (damaged or changed)")
    return data


def _txn_times(directory: Path, e: FileEntry) -> tuple[bytes, list[tuple[int, int, int]]]:
    data = _read_checked(directory, e)
    try:
        recs, _, _ = txnlog.scan(data, e.name)
    except txnlog.CorruptLogError as exc:
        raise BackupError(str(exc)) from None
    return data, recs


def verify(directory: Path, full: bool = True) -> Report:
    """Check every file and the zxid chain; say which zxids (and times) each snapshot reaches.

    ``full`` also reads every snapshot through its seal (slow for large trees)."""
    directory = Path(directory)
    man = Manifest.load(directory)
    rep = Report(directory)
    times: dict[int, int] = {}
    chain: list[int] = []  # every txn zxid across the logs, merged, ascending
    logs = man.logs()
    for e in logs:
        rep.checked += 1
        try:
            data, recs = _txn_times(directory, e)
        except BackupError as exc:
            rep.problems.append(str(exc))
            rep.bad.add(e.name)
            continue
        for z, s, _ in recs:
            if chain and z <= chain[-1]:
                continue
            chain.append(z)
            times[z] = _TIME.unpack_from(data, s + _TIME_AT)[0]
    rep.txns = len(chain)
    for e in man.snapshots():
        rep.checked += 1
        try:
            data = _read_checked(directory, e)
            if full:
                snapmod.check(data, e.name)
            elif not data.endswith(b"\x00\x00\x00\x01/"):
                raise BackupError(f"{e.name}: no seal at its end (truncated)")
        except (BackupError, snapmod.SnapshotError) as exc:
            rep.problems.append(str(exc))
            rep.bad.add(e.name)
            continue
        span = Span(e.name, e.first, e.first, e.last_time, e.last_time)
        prev = e.first
        i = bisect.bisect_right(chain, e.first)
        while i < len(chain):
            z = chain[i]
            if not _next_ok(prev, z):
                span.stops_because = f"no txn 0x{_successor(prev):x} in the logs (next is 0x{z:x})"
                gap = (f"the txn chain has a gap: {span.stops_because}; a log file is missing or truncated "
                       f"(`--keep` can drop the part before it)")
                if gap not in rep.problems:
                    rep.problems.append(gap)
                break
            prev = z
            i += 1
        span.last = prev
        if prev != e.first:
            span.last_time = times[prev]
            first_after = chain[bisect.bisect_right(chain, e.first)]
            span.first_time = min(e.last_time, times[first_after]) if e.last_time else times[first_after]
        rep.spans.append(span)
    return rep


def _successor(z: int) -> int:
    return z + 1


# ---------------------------------------------------------------- restoring
@dataclass
class RestorePoint:
    zxid: int  # the last txn applied (or the snapshot's zxid)
    snapshot: FileEntry
    txns: int  # how many txns after the snapshot


def choose(directory: Path, to_zxid: int | None = None, to_time_ms: int | None = None) -> RestorePoint:
    """Pick the snapshot and the last txn for a restore; refuse when the backup is damaged."""
    directory = Path(directory)
    rep = verify(directory, full=False)
    if rep.problems:
        raise BackupError("the backup is damaged, refusing to restore from it:\n  " + "\n  ".join(rep.problems))
    if not rep.spans:
        raise BackupError(f"{directory}: no snapshot in the backup")
    man = Manifest.load(directory)
    if to_zxid is None and to_time_ms is None:
        best = max(rep.spans, key=lambda s: s.last)
        target = best.last
    elif to_zxid is not None:
        fits = [s for s in rep.spans if s.first <= to_zxid]
        if not fits:
            raise BackupError(f"0x{to_zxid:x} is before the oldest snapshot (0x{rep.spans[0].first:x})")
        best = max(fits, key=lambda s: s.first)
        if to_zxid > best.last:
            raise BackupError(f"0x{to_zxid:x} is past what the backup reaches from {best.snapshot} "
                              f"(0x{best.last:x}{'; ' + best.stops_because if best.stops_because else ''})")
        target = to_zxid
    else:
        assert to_time_ms is not None
        target = -1
        best = rep.spans[0]
        for s in sorted(rep.spans, key=lambda s: s.first):
            z = _last_at_or_before(directory, man, s, to_time_ms)
            if z is not None:
                best, target = s, z
        if target < 0:
            raise BackupError(f"{_when(to_time_ms)} is before the oldest restore point "
                              f"({_when(rep.spans[0].first_time)})")
    snap = man.files[best.snapshot]
    return RestorePoint(target, snap, sum(1 for _ in _txns_between(directory, man, snap.first, target, raw=True)))


def _last_at_or_before(directory: Path, man: Manifest, span: Span, when_ms: int) -> int | None:
    """The last zxid in ``span`` whose txn time is at or before ``when_ms`` (the snapshot's
    zxid when no txn after it is that old but the snapshot file is)."""
    found = span.first if span.first_time and span.first_time <= when_ms else None
    for z, data in _txns_between(directory, man, span.first, span.last, raw=True):
        if _TIME.unpack_from(data, _TIME_AT)[0] <= when_ms:
            found = z
        else:
            break
    return found


def _txns_between(directory: Path, man: Manifest, after: int, upto: int, raw: bool = False) -> Iterator[Any]:
    """Txns with after < zxid <= upto, merged across the stored logs: (zxid, bytes)."""
    last = after
    for e in man.logs():
        if e.last and e.last <= last:
            continue
        if e.first > upto:
            break
        data = _read_checked(directory, e)
        recs, _, _ = txnlog.scan(data, e.name)
        for z, s, end in recs:
            if z <= last:
                continue
            if z > upto:
                return
            last = z
            yield z, data[s:end]


@dataclass
class Rebuilt:
    zxid: int
    tree: DataTree
    sessions_dropped: int
    ephemerals_dropped: int
    txns: int
    # nodes whose ACL id neither the snapshot's cache nor a replayed txn defines (path -> id):
    # they are restored with an ACL granting nothing, as a server serves them
    unresolved_acls: dict[str, int] = field(default_factory=dict)


def rebuild(directory: Path, point: RestorePoint) -> Rebuilt:
    """The tree at ``point``: the snapshot, then every txn up to the point, then no sessions."""
    with _collector_paused():
        return _rebuild(directory, point)


def _rebuild(directory: Path, point: RestorePoint) -> Rebuilt:
    data = _read_checked(directory, point.snapshot)
    tree = DataTree()
    loader = Loader(tree)  # streamed, and a fuzzy snapshot's missing ACL ids wait for their txns
    sessions, _, _ = snapmod.parse_with_digest(data, point.snapshot.name, raw_sink=loader,
                                               missing_acl=loader.missing_acl)
    del data
    tree.last_zxid = point.snapshot.first
    live = dict(sessions)
    applied = 0
    man = Manifest.load(directory)
    for _z, raw in _txns_between(directory, man, point.snapshot.first, point.zxid):
        hdr, body = decode_txn(raw)
        tree.apply(hdr, body)
        if hdr.type == Op.createSession:
            live[hdr.clientId] = 0
        elif hdr.type == Op.closeSession:
            live.pop(hdr.clientId, None)
        applied += 1
    unresolved = dict(sorted(tree.unresolved_acls().items()))
    owners = [o for o in tree.ephemerals if session_owner(o)]
    dropped = 0
    for owner in owners:
        for p in sorted(tree.ephemerals.get(owner, ()), key=lambda s: (-s.count("/"), s)):
            tree.delete(p, tree.last_zxid)
            dropped += 1
        tree.ephemerals.pop(owner, None)
    tree.last_zxid = point.zxid
    return Rebuilt(point.zxid, tree, len(set(live) | set(owners)), dropped, applied, unresolved)


def snapshot_nodes(tree: DataTree) -> Iterator[snapmod.Node]:
    """The tree as a snapshot stores it: root "" first, parents before children."""
    for path, node in tree.walk():
        yield ("" if path == "/" else path), node.data, list(node.acl), node.persisted()


def write_restored(rebuilt: Rebuilt, data_dir: Path, log_dir: Path | None = None,
                   stamp: str | None = None) -> list[Path]:
    """Put the rebuilt tree into a data directory as its only snapshot; the old ``version-2``
    directories are moved aside (never deleted). Returns where they went."""
    moved = move_aside(Path(data_dir), Path(log_dir or data_dir), stamp)
    snapmod.write_snapshot(Path(data_dir), rebuilt.zxid, {}, snapshot_nodes(rebuilt.tree))
    return moved


def parse_zxid(text: str) -> int:
    t = text.strip().lower()
    return int(t, 16) if t.startswith("0x") else int(t, 0)


def parse_time(text: str) -> int:
    """Epoch milliseconds of ``text``: ISO 8601 (UTC unless it says), or epoch seconds."""
    from datetime import datetime, timezone

    t = text.strip()
    try:
        return round(float(t) * 1000)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise BackupError(f"{text!r} is not a time (ISO 8601 such as 2026-12-05T23:10:00Z, or epoch seconds)")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


__all__ = ["BackupError", "FileEntry", "Manifest", "Rebuilt", "Report", "RestorePoint", "Span", "choose",
           "describe_log", "parse_time", "parse_zxid", "prune", "rebuild", "snapshot_nodes", "store", "verify",
           "write_restored"]
