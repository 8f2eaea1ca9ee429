"""The on-disk database: recovery at start-up, snapshots and purge while running.

Recovery is ZooKeeper's: the newest snapshot that reads back whole, then every logged
transaction after it replayed through the same ``DataTree.apply`` the live server
uses. Sessions come back from the snapshot and the createSession/closeSession txns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import purge as purgemod
from . import snapshot as snapmod
from .codes import Op
from .datatree import DataTree, Loader, Node, SnapshotRows
from .digest import DIGEST_VERSION, M64, to_long
from .txncodec import decode_txn
from .txnlog import TxnLog

log = logging.getLogger("zkops.server.db")


class Database:
    """Tree, sessions and the open txn log of one data directory."""

    def __init__(self, data_dir: Path, log_dir: Path, tree: DataTree, sessions: dict[int, int],
                 txnlog: TxnLog) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.tree = tree
        self.sessions = sessions
        self.txnlog = txnlog
        # the zxid of a loaded snapshot's digest when the snapshot is fuzzy (its digest came after
        # its start): txn digests are not compared until then, as in Apache
        self.fuzzy_until = 0
        # snapshot digests that disagreed with the tree at their zxid (mntr's
        # zk_digest_mismatches_count starts from this)
        self.digest_mismatches = 0

    @classmethod
    def open(cls, data_dir: Path, log_dir: Path | None = None, *, force_sync: bool = True,
             prealloc_kb: int = 65536) -> Database:
        log_dir = log_dir or data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        sessions: dict[int, int] = {}
        tree, snap = _load_newest_snapshot(data_dir)
        start = 0
        fuzzy_until = 0
        mismatches = 0
        pending: snapmod.ZxidDigest | None = None  # the snapshot's digest, until its zxid is reached
        if snap is not None:
            if snap.digest is not None and snap.digest.zxid > snap.zxid:
                fuzzy_until = snap.digest.zxid
            tree.snapshot_loaded()
            pending = _digest_to_check(snap, tree)
            if pending is not None and pending.zxid == snap.zxid:
                mismatches += _compare_digest(tree, pending, snap.path)
                pending = None
            sessions.update(snap.sessions)
            tree.last_zxid = snap.zxid
            start = snap.zxid
            log.info("loaded snapshot 0x%x: %d nodes, %d sessions", snap.zxid, len(tree.nodes), len(snap.sessions))
            if tree.pending_acls:
                log.info("snapshot 0x%x: %d nodes name an ACL id its cache lacks (a fuzzy snapshot): their "
                         "ACL comes from the txns replayed after it", snap.zxid, len(tree.pending_acls))
        txnlog = TxnLog(log_dir, force_sync=force_sync, prealloc_bytes=prealloc_kb * 1024)
        replayed = 0
        for zxid, data in txnlog.read_from(start + 1):
            if zxid <= tree.last_zxid:
                continue
            hdr, body = decode_txn(data)
            tree.apply(hdr, body)
            if hdr.type == Op.createSession:
                sessions[hdr.clientId] = body.timeOut
            elif hdr.type == Op.closeSession:
                sessions.pop(hdr.clientId, None)
            replayed += 1
            if pending is not None and zxid >= pending.zxid:
                if zxid == pending.zxid:
                    mismatches += _compare_digest(tree, pending, snap.path if snap else None)
                else:
                    log.warning("no txn 0x%x in the log: the snapshot's digest is not compared", pending.zxid)
                pending = None
        if pending is not None:
            log.warning("the log ends at 0x%x, before the snapshot digest's zxid 0x%x: it is not compared",
                        tree.last_zxid, pending.zxid)
        if replayed:
            log.info("replayed %d txns up to 0x%x", replayed, tree.last_zxid)
        for path, ref in sorted(tree.unresolved_acls().items()):
            # Apache keeps the id and fails each use of the node's ACL; the node here grants nothing
            log.error("node %s names ACL id %d, which neither the snapshot's ACL cache nor a txn after it "
                      "defines: it is served with an ACL granting nothing (a super user can setACL it)", path, ref)
        db = cls(data_dir, log_dir, tree, sessions, txnlog)
        db.fuzzy_until = fuzzy_until
        db.digest_mismatches = mismatches
        return db

    def snapshot_writer(self, retain: int) -> Callable[[int, dict[int, int], Iterable[tuple[str, bytes | Node]]], Path]:
        """A function the server runs on a worker thread to write a fuzzy snapshot."""

        def write(zxid: int, sessions: dict[int, int], items: Iterable[tuple[str, bytes | Node]]) -> Path:
            rows = SnapshotRows(items, zxid)
            digest = snapmod.zxid_digest(zxid, rows.digest) if self.tree.digest_enabled else None
            path = snapmod.write_snapshot_rows(self.data_dir, zxid, sessions, rows.acls, rows, digest)
            log.info("snapshot written: %s", path.name)
            return path

        return write

    def purge(self, retain: int) -> Any:
        return purgemod.purge(self.data_dir, self.log_dir, max(3, retain))

    def close(self) -> None:
        self.txnlog.close()


def _digest_to_check(snap: snapmod.SnapshotData, tree: DataTree) -> snapmod.ZxidDigest | None:
    """The snapshot's digest if it is to be compared (DataTree.deserializeZxidDigest's rules:
    not an empty one, not one older than the snapshot, not another digest version)."""
    d = snap.digest
    if d is None or d.zxid <= 0 or d.zxid < snap.zxid or not tree.digest_enabled:
        return None
    if d.version != DIGEST_VERSION:
        log.info("snapshot digest version %d, ours %d: not compared", d.version, DIGEST_VERSION)
        return None
    return d


def _compare_digest(tree: DataTree, expected: snapmod.ZxidDigest, path: Path | None) -> int:
    """1 (and an error logged) when the tree's digest differs from the snapshot's, else 0."""
    ours = tree.tree_digest()
    if ours == expected.digest & M64:
        log.info("snapshot digest at 0x%x matches the tree", expected.zxid)
        return 0
    log.error("snapshot %s: its digest at 0x%x is %d, the tree there has %d (digest mismatch)",
              path.name if path else "?", expected.zxid, to_long(expected.digest), to_long(ours))
    return 1


def _load_newest_snapshot(data_dir: Path) -> tuple[DataTree, snapmod.SnapshotData | None]:
    """The tree of the newest snapshot that reads back whole (damaged ones are skipped, saying
    why), or an empty tree. Nodes go into the tree as they are read, in the file's order (a
    parent always comes before its children, as ZooKeeper's deserialization has them): no list
    of a million nodes and their temporaries is held beside the tree being built. A node naming
    an ACL id the file's cache lacks does not make it damaged (see Loader.missing_acl)."""
    for path in snapmod.find_snapshots(data_dir):
        tree = DataTree()
        loader = Loader(tree)
        try:
            return tree, snapmod.read_snapshot(path, raw_sink=loader, missing_acl=loader.missing_acl)
        except (snapmod.SnapshotError, OSError, ValueError) as exc:
            log.warning("skipping snapshot %s: %s", path.name, exc)
    return DataTree(), None
