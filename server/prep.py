"""Turn client write requests into transactions (ZooKeeper's PrepRequestProcessor).

Validation runs against the tree *plus* every transaction already prepared but not yet
committed (the outstanding changes), so pipelined writes see each other: a create of
/a/b right behind a create of /a succeeds before /a is on disk. A failed check becomes
an error transaction, exactly as ZooKeeper logs it (failed writes also take a zxid).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from . import paths
from .acl import AclCheck, fixup_acl
from .codes import (
    CONTAINER_OWNER,
    MAX_TTL,
    TTL_OWNER_MASK,
    CreateFlag,
    Err,
    Op,
    Perm,
    ZkError,
)
from .datatree import DataTree, is_ttl_owner
from .digest import Predictor
from .paths import InvalidPath, validate_path
from .quota import QuotaExceeded
from .records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateRequest,
    CreateSessionTxn,
    CreateTTLRequest,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from .txncodec import decode_body
from .znode import data_of, prep_view_of

CONFIG_PATH = "/zookeeper/config"
# nodes no client may delete (DataTree.isSpecialPath); their clients' children may go
SPECIAL_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", CONFIG_PATH})

WRITE_OPS = frozenset({Op.create, Op.create2, Op.createContainer, Op.createTTL, Op.delete,
                       Op.setData, Op.setACL, Op.check, Op.multi, Op.createSession,
                       Op.closeSession, Op.deleteContainer, Op.reconfig})


class Change:
    """A node as it will be once every outstanding txn commits (ZooKeeper's ChangeRecord)."""

    __slots__ = ("zxid", "path", "exists", "version", "cversion", "aversion", "acl", "owner",
                 "num_children", "children", "data")

    def __init__(self, zxid: int, path: str, exists: bool, version: int = 0, cversion: int = 0,
                 aversion: int = 0, acl: tuple[ACL, ...] = (), owner: int = 0, num_children: int = 0,
                 children: frozenset[str] | None = None, data: bytes | None = None) -> None:
        self.zxid = zxid
        self.path = path
        self.exists = exists
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.acl = acl
        self.owner = owner
        self.num_children = num_children
        self.children = children
        self.data = data  # the node's data once the outstanding txns commit (for quota checks)

    def copy(self, zxid: int) -> Change:
        return Change(zxid, self.path, self.exists, self.version, self.cversion, self.aversion,
                      self.acl, self.owner, self.num_children, self.children, self.data)


class Preparer:
    """Validates writes against the tree and outstanding changes; assigns zxids."""

    def __init__(self, tree: DataTree, *, extended_types: bool = False, super_digest: str | None = None) -> None:
        self.tree = tree
        self.extended_types = extended_types
        self.super_digest = super_digest
        self.outstanding: deque[Change] = deque()
        self.by_path: dict[str, Change] = {}
        self.next_zxid = tree.last_zxid + 1
        # per-parent count of child creations: the sequential suffix (deletes do not count)
        self.seq: dict[str, int] = {}
        self._seq_undo: list[tuple[str, int | None]] | None = None
        # Is this session open (known and not closing)? Set by the owner of the session tracker;
        # a write from a session that ended meanwhile (a request that sat in a paused follower,
        # or on the server a moved session left) becomes a SESSIONEXPIRED error txn, as Apache's
        # PrepRequestProcessor.checkSession makes it: applying it would leave an ephemeral that
        # nothing ever deletes.
        self.session_open: Callable[[int], bool] = lambda session_id: True
        # The ensemble's reconfig rules (quorum.Ensemble.prepare_reconfig): given the request, the
        # zxid it will carry and the caller's ids, the new /zookeeper/config data, or a ZkError.
        # None outside an ensemble: a standalone server cannot change its membership.
        self.reconfig: Callable[[Any, int, list[Id]], bytes] | None = None
        # zookeeper.enforceQuota: creates and setData checked against the committed tree's quotas
        # (quota.Quotas.check); each warning line goes to on_quota_warning (the shell rate-limits it)
        self.enforce_quota = False
        self.on_quota_warning: Callable[[str], None] = lambda msg: None
        # the tree digest each prepared txn leaves (Apache's precalculated digest): what a leader
        # sends with the proposal, None when digests are off
        self.digests = Predictor(lambda path: self.tree.digest_entry(path), lambda: self.tree.tree_digest(),
                                 decode_body)
        self.last_digest: int | None = None

    # ------------------------------------------------------------ outstanding changes
    def record(self, path: str) -> Change | None:
        ch = self.by_path.get(path)
        if ch is not None:
            return ch if ch.exists else None
        node = self.tree.get(path)
        if node is None:
            return None
        _cz, mz, _pz, _ct, _mt, v, cv, av, ow = node.stat9()  # one read of the head, not eight
        return Change(mz, path, True, v, cv, av, node.acl, ow, node.num_children, None, node.data)

    def exists(self, path: str) -> bool:
        """Whether ``path`` will exist once the outstanding txns commit (no allocation)."""
        ch = self.by_path.get(path)
        if ch is not None:
            return ch.exists
        return path in self.tree.packed

    def _push(self, ch: Change) -> None:
        self.outstanding.append(ch)
        self.by_path[ch.path] = ch

    def _set_seq(self, path: str, value: int | None) -> None:
        if self._seq_undo is not None:
            self._seq_undo.append((path, self.seq.get(path)))
        if value is None:
            self.seq.pop(path, None)
        else:
            self.seq[path] = value

    def _restore_seq(self, path: str, old: int | None) -> None:
        if old is None:
            self.seq.pop(path, None)
        else:
            self.seq[path] = old

    def committed(self, zxid: int) -> None:
        """Forget outstanding changes up to ``zxid``: the tree now shows them."""
        out = self.outstanding
        by_path = self.by_path
        while out and out[0].zxid <= zxid:
            ch = out.popleft()
            if by_path.get(ch.path) is ch:
                del by_path[ch.path]
        if self.digests.order:
            self.digests.committed(zxid)

    def reset(self, last_zxid: int) -> None:
        self.outstanding.clear()
        self.by_path.clear()
        self.digests.reset()
        self.next_zxid = last_zxid + 1

    def take_zxid(self) -> int:
        z = self.next_zxid
        self.next_zxid += 1
        return z

    # ------------------------------------------------------------ entry point
    def prepare(self, session_id: int, cxid: int, op: int, req: Any, auth: list[Id], now_ms: int,
                zxid: int | None = None) -> tuple[TxnHeader, Any]:
        """Build the txn for one write; never raises for a client error (it becomes an error txn).
        ``last_digest`` is then the tree digest the txn leaves."""
        if zxid is None:
            zxid = self.next_zxid
            self.next_zxid = zxid + 1
        hdr = TxnHeader(session_id, cxid, zxid, now_ms, op)
        body: Any
        try:
            if session_id and op != Op.createSession and op != Op.closeSession and not self.session_open(session_id):
                raise ZkError(Err.SESSIONEXPIRED)
            if op == Op.setData:  # the most common writes first
                body = self._set_data(hdr, req, auth)
            elif op == Op.create or op == Op.create2:
                body = self._create(hdr, op, req, auth)
            elif op == Op.multi:
                hdr, body = self._multi(hdr, req, auth)
            else:
                body = self._one(hdr, op, req, auth)
                if type(body) is CreateContainerTxn:
                    hdr.type = Op.createContainer  # as _txn_type
        except ZkError as exc:
            hdr.type = Op.error
            body = ErrorTxn(int(exc.code))
        if self.tree.digest_enabled:  # as _digest
            self.last_digest = self.digests.advance(zxid, hdr.type, body, now_ms, session_id)
        else:
            self.last_digest = None
        return hdr, body

    def prepare_error(self, session_id: int, cxid: int, code: int, now_ms: int) -> tuple[TxnHeader, Any]:
        """An error txn for a write refused before its checks (it still takes a zxid, as in Apache)."""
        hdr, body = TxnHeader(session_id, cxid, self.take_zxid(), now_ms, Op.error), ErrorTxn(int(code))
        self._digest(hdr, body)
        return hdr, body

    def _digest(self, hdr: TxnHeader, body: Any) -> None:
        if self.tree.digest_enabled:
            self.last_digest = self.digests.advance(hdr.zxid, hdr.type, body, hdr.time, hdr.clientId)
        else:
            self.last_digest = None

    def _one(self, hdr: TxnHeader, op: int, req: Any, auth: list[Id]) -> Any:
        if op in (Op.create, Op.create2, Op.createContainer, Op.createTTL):
            return self._create(hdr, op, req, auth)
        if op == Op.delete or op == Op.deleteContainer:
            return self._delete(hdr, op, req, auth)
        if op == Op.setData:
            return self._set_data(hdr, req, auth)
        if op == Op.setACL:
            return self._set_acl(hdr, req, auth)
        if op == Op.check:
            return self._check(hdr, req, auth)
        if op == Op.createSession:
            return CreateSessionTxn(req)
        if op == Op.closeSession:
            return self._close_session(hdr)
        if op == Op.reconfig:
            return self._reconfig(hdr, req, auth)
        if op == Op.error:  # a write whose request did not decode
            raise ZkError(Err.MARSHALLINGERROR)
        raise ZkError(Err.UNIMPLEMENTED)

    # ------------------------------------------------------------ ops
    def _path(self, path: str | None) -> str:
        """``path``, or BADARGUMENTS if it breaks a path rule. A path the tree holds passed them
        when it was made, so it is not checked again: one look-up, whose hash the string keeps
        for the look-ups that follow (docs/performance.md, "Memory")."""
        if path is None or path not in self.tree.packed:
            try:
                validate_path(path)
            except InvalidPath:
                raise ZkError(Err.BADARGUMENTS, path)
        assert path is not None
        return path

    def _create(self, hdr: TxnHeader, op: int, req: CreateRequest | CreateTTLRequest, auth: list[Id]) -> Any:
        """Checks in Apache's order (PrepRequestProcessor.pRequest2TxnCreate): flags, TTL, the
        path's shape, the ACL list, the parent, its ACL, then the full path, existence and an
        ephemeral parent."""
        flags = req.flags
        if flags not in CreateFlag.ALL:
            raise ZkError(Err.BADARGUMENTS, req.path)
        sequential = flags in CreateFlag.SEQUENTIAL
        ttl = getattr(req, "ttl", -1) if op == Op.createTTL else -1
        is_ttl = flags in CreateFlag.TTL
        if is_ttl and not self.extended_types:
            raise ZkError(Err.UNIMPLEMENTED, req.path)
        if is_ttl:
            if ttl <= 0 or ttl > MAX_TTL:
                raise ZkError(Err.BADARGUMENTS, req.path)
        elif ttl >= 0:
            raise ZkError(Err.BADARGUMENTS, req.path)
        path = req.path
        if path is None:
            raise ZkError(Err.MARSHALLINGERROR)
        last = path.rfind("/")
        if last < 0 or "\0" in path:
            raise ZkError(Err.BADARGUMENTS, path)
        parent_path = path[:last] or "/"
        acl = fixup_acl(req.acl, auth, path)
        # As Apache: the createContainer op makes a container whatever its flags say; create
        # and create2 never do (the CONTAINER flag on them makes a plain persistent node)
        container = op == Op.createContainer
        parent = self.record(parent_path)
        if parent is None:
            raise ZkError(Err.NONODE, path)
        if not AclCheck.allowed(Perm.CREATE, parent.acl, auth):  # as AclCheck.check
            raise ZkError(Err.NOAUTH, path)
        # the suffix counts the parent's child creations, which is what a node's cversion
        # keeps (the Stat shows 2 * creations - children, as Apache's DataNode.copyStat)
        counter = self.seq.get(parent_path)
        if counter is None:
            counter = parent.cversion
        if sequential:
            path = f"{path}{counter:010d}"
        try:
            validate_path(path)
        except InvalidPath:
            raise ZkError(Err.BADARGUMENTS, path)
        by_path = self.by_path
        ch = by_path.get(path)  # as exists()
        if ch.exists if ch is not None else path in self.tree.packed:
            raise ZkError(Err.NODEEXISTS, path)
        if parent.owner and not (parent.owner == CONTAINER_OWNER or is_ttl_owner(parent.owner)):
            raise ZkError(Err.NOCHILDRENFOREPHEMERALS, path)
        if op == Op.createTTL and not is_ttl:
            # a createTTL with another flag and a negative ttl passes every check in Apache,
            # which then fails applying it and stops; we refuse it (README, compatibility notes)
            raise ZkError(Err.BADARGUMENTS, path)
        if self.enforce_quota:
            self._check_quota(path, None, req.data, True)
        new_cversion = counter + 1
        ephemeral = flags in CreateFlag.EPHEMERALS and not container
        if container:
            owner = CONTAINER_OWNER
        elif ephemeral:
            owner = hdr.clientId
        elif is_ttl:
            owner = TTL_OWNER_MASK | ttl
        else:
            owner = 0
        zxid = hdr.zxid
        p = Change(zxid, parent_path, True, parent.version, parent.cversion + 1, parent.aversion, parent.acl,
                   parent.owner, parent.num_children + 1)
        if self._seq_undo is None:
            self.seq[parent_path] = new_cversion
        else:
            self._set_seq(parent_path, new_cversion)
        c = Change(zxid, path, True, 0, 0, 0, acl, owner, 0, None, req.data)
        out = self.outstanding  # as _push, twice
        out.append(p)
        out.append(c)
        by_path[parent_path] = p
        by_path[path] = c
        acl_list = list(acl)
        if container:
            return CreateContainerTxn(path, req.data, acl_list, new_cversion)
        if op == Op.createTTL:
            return CreateTTLTxn(path, req.data, acl_list, new_cversion, ttl)
        return CreateTxn(path, req.data, acl_list, ephemeral, new_cversion)

    def _delete(self, hdr: TxnHeader, op: int, req: Any, auth: list[Id]) -> DeleteTxn:
        """Apache's order: the path's shape and the system nodes, the parent, its ACL, the node,
        the version, children. The path is not validated further: "/a/" is just not there."""
        path = req.path
        if path is None:
            raise ZkError(Err.MARSHALLINGERROR)
        last = path.rfind("/")
        if last < 0 or "\0" in path or path in SPECIAL_PATHS:
            raise ZkError(Err.BADARGUMENTS, path)
        parent_path = path[:last] or "/"
        node = self.record(path)
        parent = self.record(parent_path)
        if op == Op.delete:
            if parent is None:
                raise ZkError(Err.NONODE, path)
            AclCheck.check(Perm.DELETE, parent.acl, auth, path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        if op == Op.delete:
            _expect_version(path, req.version, node.version)
        if node.num_children > 0:
            raise ZkError(Err.NOTEMPTY, path)
        if parent is None:
            raise ZkError(Err.NONODE, path)
        zxid = hdr.zxid
        p = parent.copy(zxid)
        p.num_children -= 1
        self._push(p)
        self._push(Change(zxid, path, False))
        if path in self.seq:
            self._set_seq(path, None)
        return DeleteTxn(path)

    def _permitted(self, path: str, perm: int, auth: list[Id]) -> Change:
        """The node at ``path`` as the pending changes leave it, when ``auth`` may ``perm`` it:
        NONODE when there is none, NOAUTH when the ACL says no."""
        node = self.record(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        AclCheck.check(perm, node.acl, auth, path)
        return node

    def _set_data(self, hdr: TxnHeader, req: Any, auth: list[Id]) -> SetDataTxn:
        """_path, _permitted, the version check and _push, with one Change made (not record()'s
        and its copy) and the node's fields read at once."""
        path = self._path(req.path)
        by_path = self.by_path
        node = by_path.get(path)
        if node is not None:  # as record()
            if not node.exists:
                raise ZkError(Err.NONODE, path)
            version, cversion, aversion, acl, owner, num_children = (
                node.version, node.cversion, node.aversion, node.acl, node.owner, node.num_children)
        else:
            tree_node = self.tree.packed.get(path)
            if tree_node is None:
                raise ZkError(Err.NONODE, path)
            version, cversion, aversion, acl, owner, num_children = prep_view_of(tree_node)
        if not AclCheck.allowed(Perm.WRITE, acl, auth):  # as AclCheck.check
            raise ZkError(Err.NOAUTH, path)
        data = req.data
        if self.enforce_quota:
            last = node.data if node is not None else data_of(self.tree.packed[path])
            self._check_quota(path, last, data, False)
        expected = req.version
        if expected != -1 and expected != version:  # as _expect_version
            raise ZkError(Err.BADVERSION, path)
        version += 1
        ch = Change(hdr.zxid, path, True, version, cversion, aversion, acl, owner, num_children, None, data)
        self.outstanding.append(ch)  # as _push
        by_path[path] = ch
        return SetDataTxn(path, data, version)

    def _check_quota(self, path: str, last: bytes | None, data: bytes | None, create: bool) -> None:
        try:
            warnings = self.tree.quotas.check(self.tree, path, last, data, create)
        except QuotaExceeded as exc:
            for w in exc.warnings:
                self.on_quota_warning(w)
            raise ZkError(Err.QUOTAEXCEEDED, exc.prefix)
        for w in warnings:
            self.on_quota_warning(w)

    def _reconfig(self, hdr: TxnHeader, req: Any, auth: list[Id]) -> SetDataTxn:
        """As Apache: a setData of /zookeeper/config whose version field is -1."""
        if self.reconfig is None:
            raise ZkError(Err.UNIMPLEMENTED)
        data = self.reconfig(req, hdr.zxid, auth)
        node = self.record(CONFIG_PATH)
        if node is not None:
            ch = node.copy(hdr.zxid)
            ch.version = -1
            self._push(ch)
        return SetDataTxn(CONFIG_PATH, data, -1)

    def _set_acl(self, hdr: TxnHeader, req: Any, auth: list[Id]) -> SetACLTxn:
        path = self._path(req.path)
        acl = fixup_acl(req.acl, auth, path)
        node = self._permitted(path, Perm.ADMIN, auth)
        _expect_version(path, req.version, node.aversion)
        new_version = node.aversion + 1
        ch = node.copy(hdr.zxid)
        ch.aversion = new_version
        ch.acl = acl
        self._push(ch)
        return SetACLTxn(path, list(acl), new_version)

    def _check(self, hdr: TxnHeader, req: Any, auth: list[Id]) -> CheckVersionTxn:
        path = self._path(req.path)
        node = self._permitted(path, Perm.READ, auth)
        _expect_version(path, req.version, node.version)
        return CheckVersionTxn(path, req.version)

    def _close_session(self, hdr: TxnHeader) -> CloseSessionTxn:
        doomed = set(self.tree.ephemerals_of(hdr.clientId))
        for ch in self.outstanding:
            if ch.owner == hdr.clientId and ch.exists:
                doomed.add(ch.path)
        doomed = {p for p in doomed if (r := self.record(p)) is not None and r.owner == hdr.clientId}
        zxid = hdr.zxid
        for p in sorted(doomed):
            parent = self.record(paths.parent_of(p))
            if parent is not None:
                pc = parent.copy(zxid)
                pc.num_children -= 1
                self._push(pc)
            self._push(Change(zxid, p, False))
        return CloseSessionTxn(sorted(doomed))

    def _multi(self, hdr: TxnHeader, ops: list[tuple[int, Any]], auth: list[Id]) -> tuple[TxnHeader, Any]:
        saved_len = len(self.outstanding)
        saved = dict(self.by_path)
        undo_log: list[tuple[str, int | None]] = []
        self._seq_undo = undo_log
        txns: list[Txn] = []
        failed_at = -1
        err = Err.OK
        for i, (op, req) in enumerate(ops):
            if failed_at >= 0:
                txns.append(Txn(Op.error, ErrorTxn(int(Err.RUNTIMEINCONSISTENCY)).to_bytes()))
                continue
            try:
                if op != Op.createTTL and getattr(req, "flags", None) in CreateFlag.TTL:
                    # a plain create with a TTL flag: Apache makes it a createTTL op without a
                    # ttl, and its cast to CreateTTLRequest fails
                    raise ZkError(Err.MARSHALLINGERROR)
                if op not in (Op.create, Op.create2, Op.createContainer, Op.createTTL, Op.delete,
                              Op.setData, Op.check):
                    raise ZkError(Err.BADARGUMENTS)
                body = self._one(hdr, op, req, auth)
                txns.append(Txn(_txn_type(op, body), body.to_bytes()))
            except ZkError as exc:
                if exc.code == Err.MARSHALLINGERROR:
                    # what Apache meets as a Java exception, not a KeeperException, fails the
                    # whole multi (one error txn), not just this op
                    self._seq_undo = None
                    while len(self.outstanding) > saved_len:
                        self.outstanding.pop()
                    self.by_path = saved
                    for path, old in reversed(undo_log):
                        self._restore_seq(path, old)
                    raise
                failed_at = i
                err = exc.code
                txns.append(Txn(Op.error, ErrorTxn(int(err)).to_bytes()))
        undo, self._seq_undo = self._seq_undo, None
        if failed_at >= 0:
            for path, old in reversed(undo):
                self._restore_seq(path, old)
            while len(self.outstanding) > saved_len:
                self.outstanding.pop()
            self.by_path = saved
            for i in range(failed_at):
                txns[i] = Txn(Op.error, ErrorTxn(int(Err.OK)).to_bytes())
        return hdr, MultiTxn(txns)


def _expect_version(path: str, expected: int, actual: int) -> None:
    """BADVERSION unless ``expected`` is -1 (any version) or the node's ``actual`` one."""
    if expected != -1 and expected != actual:
        raise ZkError(Err.BADVERSION, path)


def _txn_type(op: int, body: Any) -> int:
    """The logged type of a txn: a create that made a container is a createContainer."""
    if isinstance(body, CreateContainerTxn):
        return Op.createContainer
    return op
