"""A fuzzy snapshot whose node names an ACL id its cache lacks, loaded as Apache ends up.

Apache 3.8 writes the ACL cache first, then the nodes, while txns keep applying: a txn
that adds a new ACL list, applied between the two, leaves a node naming an id the file's
cache lacks. Apache loads the file anyway (ReferenceCountedACLCache.addUsage ignores the
id) and the txn log replayed after it makes the list again under the same id. Here the
node waits with an ACL granting nothing until the replayed txn (its create, or a setACL)
gives it the list; a node no txn resolves keeps that ACL, with an error logged.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import pytest

from zkops.server import snapshot as snap
from zkops.server.acl import SUPER_ID, AclCheck
from zkops.server.codes import Op, Perm
from zkops.server.database import Database
from zkops.server.datatree import NO_ACCESS_ACL
from zkops.server.records import ACL, CreateTxn, Id, SetACLTxn, SetDataTxn, StatPersisted, TxnHeader
from zkops.server.txncodec import encode_txn
from zkops.server.txnlog import TxnLog

OPEN = [ACL(31, Id("world", "anyone"))]
SECRET = [ACL(31, Id("digest", "u:BvFaefuhWURhnvpD7ipe45CKTpk=")), ACL(1, Id("world", "anyone"))]
READ_ONLY = [ACL(1, Id("world", "anyone"))]
SEAL = 8 + 4 + 1  # adler32 as a long, then the string "/"


def stat(czxid: int = 0, mzxid: int = 0, cversion: int = 0, pzxid: int = 0, aversion: int = 0) -> StatPersisted:
    return StatPersisted(czxid, mzxid, 1_700_000_000_000 + czxid, 1_700_000_000_000 + mzxid, 0, cversion, aversion,
                         0, pzxid)


def _seal(body: bytes) -> bytes:  # the checksum covers the file from its first byte
    return body + struct.pack(">q", zlib.adler32(body)) + struct.pack(">i", 1) + b"/"


def _acl_list_len(data: bytes, off: int) -> int:
    """The byte length of one ACL cache entry's list at ``off`` (after its id)."""
    (n,) = struct.unpack_from(">i", data, off)
    end = off + 4
    for _ in range(n):
        end += 4  # perms
        for _ in range(2):  # scheme, id
            (ln,) = struct.unpack_from(">i", data, end)
            end += 4 + ln
    return end - off


def without_cache_entry(zxid: int, nodes: list[snap.Node], missing: list[ACL], digest: snap.ZxidDigest | None) -> bytes:
    """Our writer's snapshot of ``nodes``, its ACL cache without the entry of ``missing``:
    what a real ZooKeeper writes when a txn making that list applies between its writing
    of the cache and of the nodes."""
    data = snap.serialize(zxid, {}, nodes)[:-SEAL]
    off = 16  # magic, version, dbid
    (count,) = struct.unpack_from(">i", data, off)
    off += 4 + count * 12
    (nacl,) = struct.unpack_from(">i", data, off)
    cache_at = off
    off += 4
    entries = []
    for _ in range(nacl):
        (ref,) = struct.unpack_from(">q", data, off)
        size = 8 + _acl_list_len(data, off + 8)
        entries.append((ref, data[off:off + size]))
        off += size
    wanted = snap.serialize(1, {}, [("", b"", missing, stat())])  # the list's own bytes, id 1
    target = wanted[16 + 4 + 4 + 8:][:_acl_list_len(wanted, 16 + 4 + 4 + 8)]
    kept = [e for ref, e in entries if e[8:] != target]
    assert len(kept) == nacl - 1, "the list to drop is not in the cache"
    out = _seal(data[:cache_at] + struct.pack(">i", len(kept)) + b"".join(kept) + data[off:])
    if digest is not None:
        out = _seal(out + struct.pack(">qiq", digest.zxid, digest.version, digest.digest))
    return out


def base() -> list[snap.Node]:
    return [("", b"", OPEN, stat(cversion=1, pzxid=2)),
            ("/zookeeper", b"", OPEN, stat()),
            ("/zookeeper/quota", b"", OPEN, stat())]


def fuzzy_nodes() -> list[snap.Node]:
    """The tree of snapshot 5 written while txn 6 (create /app/new with SECRET, a list the
    tree had not used yet) applied: /app/new is in the file, SECRET not in its cache."""
    return base() + [("/app", b"a", READ_ONLY, stat(2, 2, cversion=1, pzxid=6)),
                     ("/app/new", b"n", SECRET, stat(6, 6))]


def write_data_dir(d: Path, txns: list[tuple[int, Op, object]], nodes: list[snap.Node] | None = None) -> None:
    nodes = nodes or fuzzy_nodes()
    # an older, whole snapshot (before /app): falling back to it loses /app and its children
    snap.write_snapshot(d, 1, {}, base())
    digest = snap.digest_of(6, nodes)
    assert digest.zxid == 6
    (d / "version-2" / snap.snapshot_name(5)).write_bytes(without_cache_entry(5, nodes, SECRET, digest))
    log = TxnLog(d, prealloc_bytes=4096)
    for zxid, op, body in txns:
        log.append(zxid, encode_txn(TxnHeader(0x100, zxid, zxid, 1_700_000_000_000 + zxid, op), body))
    log.close()


def open_db(d: Path) -> Database:
    return Database.open(d, force_sync=False, prealloc_kb=4)


def test_the_file_names_an_id_its_cache_lacks_and_is_refused_without_a_resolver():
    data = without_cache_entry(5, fuzzy_nodes(), SECRET, None)
    with pytest.raises(snap.SnapshotError, match="not in the cache"):
        snap.parse(data)
    asked = []
    _sessions, nodes, _ = snap.parse_with_digest(data, "s", missing_acl=lambda p, ref: asked.append((p, ref)) or OPEN)
    assert asked == [("/app/new", 3)] and [n[0] for n in nodes][-1] == "/app/new"


def test_the_replayed_create_gives_the_node_its_acl(tmp_path, caplog):
    write_data_dir(tmp_path, [(6, Op.create, CreateTxn("/app/new", b"n", SECRET, False, 1)),
                              (7, Op.setData, SetDataTxn("/app/new", b"v2", 1))])
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        assert "skipping snapshot" not in caplog.text
        assert "loaded snapshot 0x5" in caplog.text
        node = db.tree.nodes["/app/new"]
        assert list(node.acl) == SECRET and node.data == b"v2"
        assert list(db.tree.nodes["/app"].acl) == READ_ONLY
        assert db.tree.pending_acls == {} and db.tree.last_zxid == 7
        # the snapshot's digest (at txn 6) matched the tree: ACLs are not in Apache's digest
        assert db.digest_mismatches == 0 and "digest at 0x6 matches" in caplog.text
        assert "ACL id" not in caplog.text.split("replayed")[-1]  # nothing left unresolved
    finally:
        db.close()


def test_a_replayed_set_acl_gives_the_node_its_acl(tmp_path, caplog):
    # snapshot 5 written while txn 6 (setACL /app to SECRET, new to the tree) applied
    nodes = base() + [("/app", b"a", SECRET, stat(2, 2, aversion=1)), ("/app/new", b"n", OPEN, stat(3, 3))]
    write_data_dir(tmp_path, [(6, Op.setACL, SetACLTxn("/app", SECRET, 1))], nodes)
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        assert "skipping snapshot" not in caplog.text
        node = db.tree.nodes["/app"]
        assert list(node.acl) == SECRET and node.stat().aversion == 1
        assert list(db.tree.nodes["/app/new"].acl) == OPEN and db.digest_mismatches == 0
    finally:
        db.close()


def test_a_deleted_node_leaves_nothing_pending_and_a_later_create_is_fresh(tmp_path, caplog):
    write_data_dir(tmp_path, [(6, Op.create, CreateTxn("/app/new", b"n", SECRET, False, 1)),
                              (7, Op.delete, _delete("/app/new")),
                              (8, Op.create, CreateTxn("/app/new", b"again", READ_ONLY, False, 2))])
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        node = db.tree.nodes["/app/new"]
        assert node.data == b"again" and list(node.acl) == READ_ONLY and node.stat().czxid == 8
        assert db.tree.pending_acls == {} and "granting nothing" not in caplog.text
    finally:
        db.close()


def _delete(path: str) -> object:
    from zkops.server.records import DeleteTxn

    return DeleteTxn(path)


def test_an_id_no_txn_resolves_is_served_with_an_acl_granting_nothing(tmp_path, caplog):
    write_data_dir(tmp_path, [])  # the log lost txn 6
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        assert "skipping snapshot" not in caplog.text
        node = db.tree.nodes["/app/new"]
        assert node.acl == NO_ACCESS_ACL and node.data == b"n"
        assert "node /app/new names ACL id 3" in caplog.text and "granting nothing" in caplog.text
        assert db.tree.pending_acls == {}
        anyone = [Id("ip", "127.0.0.1")]
        assert not any(AclCheck.allowed(p, node.acl, anyone) for p in (Perm.READ, Perm.WRITE, Perm.ADMIN))
        assert AclCheck.allowed(Perm.ADMIN, node.acl, [SUPER_ID])
        # a later write of the live server is an ordinary one (nothing pending any more)
        db.tree.set_acl("/app/new", OPEN, 1)
        assert list(db.tree.nodes["/app/new"].acl) == OPEN
    finally:
        db.close()


def test_an_ordinary_snapshot_loads_as_before(tmp_path, caplog):
    nodes = base() + [("/app", b"a", SECRET, stat(2, 2))]
    snap.write_snapshot(tmp_path, 5, {}, nodes, snap.digest_of(5, nodes))
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        assert list(db.tree.nodes["/app"].acl) == SECRET and db.tree.pending_acls == {}
        assert "ACL id" not in caplog.text and db.digest_mismatches == 0
    finally:
        db.close()


def test_a_create_inside_a_replayed_multi_resolves_too(tmp_path, caplog):
    from zkops.server.records import MultiTxn, Txn

    multi = MultiTxn([Txn(Op.create, CreateTxn("/app/new", b"n", SECRET, False, 1).to_bytes()),
                      Txn(Op.setData, SetDataTxn("/app", b"b", 1).to_bytes())])
    write_data_dir(tmp_path, [(6, Op.multi, multi)])
    caplog.set_level(logging.INFO, logger="zkops.server.db")
    db = open_db(tmp_path)
    try:
        assert "skipping snapshot" not in caplog.text and "granting nothing" not in caplog.text
        assert list(db.tree.nodes["/app/new"].acl) == SECRET and db.tree.nodes["/app"].data == b"b"
        assert db.tree.pending_acls == {}
    finally:
        db.close()


def test_a_backup_of_such_a_data_dir_is_taken_verified_and_restored_with_the_acl(tmp_path):
    """Backup, verify and restore read Apache dataDirs too: a fuzzy snapshot is not damage, and
    the restore gives the node the list its replayed txn made (as a server's recovery does)."""
    from tests.support.refzk import free_port
    from tests.test_backup import inventory, zkops

    source = tmp_path / "src"
    write_data_dir(source / "data", [(6, Op.create, CreateTxn("/app/new", b"n", SECRET, False, 1)),
                                     (7, Op.setData, SetDataTxn("/app/new", b"v2", 1))])
    inv = inventory(tmp_path / "inv.yaml", "zk1", source, free_port())
    done = zkops("backup", str(inv), "--to", str(tmp_path / "b"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "snapshot.5" in done.stdout + done.stderr and "skipping" not in done.stdout + done.stderr
    ver = zkops("backup", "verify", str(tmp_path / "b"))
    assert ver.returncode == 0, ver.stdout + ver.stderr
    target = tmp_path / "dst"
    done = zkops("restore", str(inventory(tmp_path / "r.yaml", "zk1", target, free_port())),
                 "--from", str(tmp_path / "b"))
    assert done.returncode == 0, done.stdout + done.stderr
    db = open_db(target / "data")
    try:
        node = db.tree.nodes["/app/new"]
        assert list(node.acl) == SECRET and node.data == b"v2" and db.tree.last_zxid == 7
        assert list(db.tree.nodes["/app"].acl) == READ_ONLY
    finally:
        db.close()


def test_checking_a_snapshot_accepts_a_missing_acl_id_and_refuses_damage():
    data = without_cache_entry(5, fuzzy_nodes(), SECRET, None)
    assert snap.check(data, "s") == len(fuzzy_nodes())
    with pytest.raises(snap.SnapshotError):
        snap.check(data[:-20], "s")
    whole = snap.serialize(5, {}, base() + [("/app", b"a", OPEN, stat(2, 2)), ("/app/new", b"n", OPEN, stat(6, 6))])
    orphan = _seal(whole[:-SEAL].replace(b"\x00\x00\x00\x04/app", b"\x00\x00\x00\x04/apq", 1))
    assert snap.check(_seal(whole[:-SEAL]), "s") == 5
    with pytest.raises(snap.SnapshotError, match="before its parent"):
        snap.check(orphan, "s")


def test_a_restore_names_an_id_no_txn_resolves(tmp_path):
    from tests.support.refzk import free_port
    from tests.test_backup import inventory, zkops

    write_data_dir(tmp_path / "src" / "data", [])  # the log lost txn 6
    done = zkops("backup", str(inventory(tmp_path / "inv.yaml", "zk1", tmp_path / "src", free_port())),
                 "--to", str(tmp_path / "b"))
    assert done.returncode == 0, done.stdout + done.stderr
    done = zkops("restore", str(inventory(tmp_path / "r.yaml", "zk1", tmp_path / "dst", free_port())),
                 "--from", str(tmp_path / "b"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "node /app/new names ACL id 3" in done.stdout and "granting nothing" in done.stdout
    db = open_db(tmp_path / "dst" / "data")
    try:
        assert db.tree.nodes["/app/new"].acl == NO_ACCESS_ACL and db.tree.nodes["/app/new"].data == b"n"
    finally:
        db.close()
