"""The request semantics of one ZooKeeper server, without any I/O.

``ServerCore`` owns the data tree, watches, sessions and the preparer. The network
shell hands it decoded requests; reads are answered at once, writes become
transactions the shell must make durable (standalone: fsync; ensemble: ZAB) and then
pass back to ``commit``. Watch notifications come back as lists for the shell to send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import paths
from .acl import AclCheck, id_set_order, user_name
from .codes import Err, EventType, Op, Perm, WatcherType, ZkError
from .datatree import ApplyResult, DataTree, Node
from .javaorder import hashset_capacity, hashset_order
from .metrics import STAT_OVERHEAD_BYTES, PerNamespace
from .prep import Preparer
from .records import (
    ACL,
    ClientInfo,
    CountResponse,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    Id,
    PathOnly,
    StatResponse,
    TxnHeader,
    WhoAmIResponse,
)
from .sessions import SessionTracker
from .watches import WatchManager
from .znode import acl_of, data_of, leaf_stat, stat_of

log = logging.getLogger(__name__)

READ_OPS = frozenset({Op.exists, Op.getData, Op.getChildren, Op.getChildren2, Op.getACL,
                      Op.getAllChildrenNumber, Op.getEphemerals, Op.sync, Op.multiRead,
                      Op.checkWatches, Op.removeWatches, Op.addWatch, Op.whoAmI, Op.ping})

Notification = tuple[Any, int, str]  # (watcher, event type, path)


@dataclass
class Limits:
    tick_time: int = 2000
    min_session_timeout: int = 4000
    max_session_timeout: int = 40000
    extended_types: bool = False
    super_digest: str | None = None
    server_id: int = 1

    def negotiate(self, requested: int) -> int:
        return max(self.min_session_timeout, min(self.max_session_timeout, requested))


class ServerCore:
    """Tree + watches + sessions + preparer, and the rules that join them."""

    def __init__(self, limits: Limits, tree: DataTree | None = None, now_ms: int = 0) -> None:
        self.limits = limits
        self.tree = tree or DataTree()
        self.watches = WatchManager()
        self.sessions = SessionTracker(limits.tick_time, limits.server_id, now_ms)
        self.prep = Preparer(self.tree, extended_types=limits.extended_types,
                             super_digest=limits.super_digest)
        self.prep.session_open = self._session_open
        self.reads = PerNamespace()  # bytes read per top-level namespace (mntr)

    def _session_open(self, session_id: int) -> bool:
        s = self.sessions.sessions.get(session_id)
        return s is not None and not s.closing

    @property
    def last_zxid(self) -> int:
        return self.tree.last_zxid

    # ------------------------------------------------------------------ role changes
    def reload(self, tree: DataTree) -> None:
        """Serve ``tree`` from now on (a learner rebuilt its state from disk after TRUNC or
        SNAP): the preparer forgets what it predicted from the old tree."""
        self.tree = tree
        self.prep.tree = tree
        self.restart_prep()

    def restart_prep(self) -> None:
        """The preparer starts again from the tree's last zxid (a new leader prepares from
        what is committed, not from what it predicted as a learner)."""
        self.prep.reset(self.tree.last_zxid)
        self.prep.seq.clear()

    def take_over_sessions(self, now_ms: int) -> None:
        """A new leader owns expiry: every session it knows of lives a full timeout from now."""
        for s in list(self.sessions.sessions.values()):
            s.closing = False
            self.sessions.touch(s.session_id, now_ms)

    # ------------------------------------------------------------------ writes
    def commit(self, hdr: TxnHeader, body: Any) -> tuple[ApplyResult, list[Notification] | tuple[()]]:
        """Apply a durable txn; returns its result and the watch notifications it fired."""
        result = self.tree.apply(hdr, body)
        self.prep.committed(hdr.zxid)
        op = hdr.type
        if op == Op.createSession and result.err == 0:
            self.sessions.add(hdr.clientId, body.timeOut, hdr.time)
        elif op == Op.closeSession:
            self.sessions.remove(hdr.clientId)
        watches = self.watches
        # no watch at all (the usual write): no table to look in (a recursive watch is in by_path too)
        if not (result.events and (watches.data.by_path or watches.child.by_path)):
            return result, ()
        notes: list[Notification] = []
        trigger = watches.trigger
        allowed = AclCheck.allowed
        for etype, path, acl in result.events:
            for note in trigger(etype, path):
                # only to connections that may read the node (ZOOKEEPER-4799); a one-shot
                # watch that is not told is spent all the same, as in Apache
                auth = getattr(note[0], "auth", None)
                if auth is None or allowed(Perm.READ, acl, auth):
                    notes.append(note)
        return result, notes

    # ------------------------------------------------------------------ reads
    def _permitted(self, given: str | None, perm: int, auth: list[Id]) -> tuple[str, Node]:
        """A read's path as given and its node, when ``auth`` may ``perm`` it: NONODE when
        there is none, NOAUTH when the ACL says no (MARSHALLINGERROR for a null path)."""
        path = _given(given)
        node = self.tree.get(path or "/")
        if node is None:
            raise ZkError(Err.NONODE, path)
        AclCheck.check(perm, node.acl, auth, path)
        return path, node

    def read(self, op: int, req: Any, watcher: Any, auth: list[Id], session_id: int) -> Any:
        """Answer one read-side request; raises ZkError with the reply's error code.

        As Apache's FinalRequestProcessor: read paths are looked up as given, never validated
        (a malformed path is simply not there: NONODE; "" names the root, as in Apache's node
        table); a null path fails the request with MARSHALLINGERROR.
        """
        tree = self.tree
        if op == Op.getData:  # the usual read: _permitted, _given and the node's data read once
            path = req.path
            if path is None:
                raise ZkError(Err.MARSHALLINGERROR)
            stored = tree.packed.get(path or "/")
            if stored is None:
                raise ZkError(Err.NONODE, path)
            if not AclCheck.allowed(Perm.READ, acl_of(stored), auth):  # as AclCheck.check
                raise ZkError(Err.NOAUTH, path)
            if req.watch:
                self.watches.add_data(path, watcher)
            data = data_of(stored)
            self.reads.add(path, (len(data) if data else 0) + STAT_OVERHEAD_BYTES)
            return GetDataResponse(data, stat_of(stored))
        if op == Op.exists:
            path = _given(req.path)
            if "\0" in path:
                raise ZkError(Err.BADARGUMENTS, path)
            there = tree.packed.get(path or "/")
            if req.watch:
                self.watches.add_data(path, watcher)
            if there is None:
                raise ZkError(Err.NONODE, path)
            self.reads.add(path, STAT_OVERHEAD_BYTES)
            return StatResponse(stat_of(there))
        if op == Op.getChildren or op == Op.getChildren2:
            path, node = self._permitted(req.path, Perm.READ, auth)
            if req.watch:
                self.watches.add_child(path, watcher)
            children = tree.children_listed(node)
            self.reads.add(path, sum(map(len, children)) + STAT_OVERHEAD_BYTES)
            if op == Op.getChildren:
                return GetChildrenResponse(children)
            return GetChildren2Response(children, node.stat())
        if op == Op.getACL:
            path, node = self._permitted(req.path, Perm.READ | Perm.ADMIN, auth)
            acl = list(node.acl)
            if not AclCheck.allowed(Perm.ADMIN, node.acl, auth):
                acl = [_redact(a) for a in acl]
            return GetACLResponse(acl, node.stat())
        if op == Op.getAllChildrenNumber:
            path, node = self._permitted(req.path, Perm.READ, auth)
            if path == "/":  # Apache: the size of its node table less its two keys for the root
                return CountResponse(len(tree.packed) - 1)
            prefix = path + "/"
            return CountResponse(sum(1 for p in tree.packed if p.startswith(prefix)))
        if op == Op.getEphemerals:
            # its own name: a compiled build types a local by its first assignment (``prefix`` is
            # a str above), and would refuse the null path this one may be
            given: str | None = req.path
            eph = tree.ephemerals_of(session_id)
            if given is None or _java_trim(given) in ("", "/"):
                found = list(eph)
            else:
                found = [p for p in eph if p.startswith(given)]
            return GetChildrenResponse(hashset_order(sorted(found), hashset_capacity(len(eph))))
        if op == Op.sync:
            return PathOnly(req.path)
        if op == Op.addWatch:
            if req.mode not in (0, 1):  # WatcherMode.fromZooDef throws
                raise ZkError(Err.MARSHALLINGERROR, req.path)
            self.watches.add_persistent(req.path, watcher, recursive=req.mode == 1)
            return ErrorResponse(0)
        if op == Op.checkWatches or op == Op.removeWatches:
            # WatcherType.fromInt knows Children, Data and Any only in 3.8
            if req.type not in (WatcherType.CHILDREN, WatcherType.DATA, WatcherType.ANY):
                raise ZkError(Err.MARSHALLINGERROR, req.path)
            if op == Op.checkWatches:
                if req.path is None:
                    raise ZkError(Err.MARSHALLINGERROR)
                try:
                    watched = self.watches.contains(req.path, watcher, req.type)
                except ValueError:  # Apache's parent walk throws: MarshallingError
                    raise ZkError(Err.MARSHALLINGERROR, req.path) from None
            else:
                watched = req.path is not None and self.watches.remove(req.path, watcher, req.type)
            if not watched:
                raise ZkError(Err.NOWATCHER, req.path)
            return None
        if op == Op.whoAmI:
            return WhoAmIResponse([ClientInfo(a.scheme, user_name(a)) for a in id_set_order(auth)])
        raise ZkError(Err.UNIMPLEMENTED)

    def multi_read(self, ops: list[tuple[int, Any]], watcher: Any, auth: list[Id],
                   session_id: int) -> tuple[list[tuple[int, int, Any]], int]:
        """multiRead: each op answered on its own; a failing op yields an error result only.

        As Apache's FinalRequestProcessor, a write op (or a null path) stops the loop: the
        reply is MARSHALLINGERROR, and still carries the results gathered before it."""
        results: list[tuple[int, int, Any]] = []
        for op, req in ops:
            if op not in (Op.getChildren, Op.getData):
                return results, int(Err.MARSHALLINGERROR)
            try:
                results.append((op, 0, self.read(op, req, watcher, auth, session_id)))
            except ZkError as exc:
                if exc.code == Err.MARSHALLINGERROR:
                    return results, int(exc.code)
                results.append((Op.error, int(exc.code), ErrorResponse(int(exc.code))))
        return results, 0

    def set_watches(self, rel_zxid: int, data: list[str | None] | None, exist: list[str | None] | None,
                    child: list[str | None] | None, persistent: list[str | None] | None,
                    recursive: list[str | None] | None, watcher: Any,
                    auth: list[Id], out: list[Notification] | None = None) -> list[Notification]:
        """Re-register a reconnecting client's watches; return events it missed while away.

        As Apache's DataTree.setWatches: lists in order, paths looked up as given ("" is the
        root); a null path fails the request with MARSHALLINGERROR, after the events found
        before it (they are in ``out`` for the caller to send)."""
        nodes = self.tree.nodes
        if out is None:
            out = []
        kinds = ((data, _missed_data, self.watches.add_data),
                 (exist, _missed_exist, self.watches.add_data),
                 (child, _missed_child, self.watches.add_child))
        for listed, missed_of, add in kinds:
            for p in listed or ():
                path = _given(p)
                missed = missed_of(nodes.get(path or "/"), rel_zxid)
                if missed is None:
                    add(path, watcher)
                else:
                    out.append((watcher, missed, path))
        for p in persistent or ():  # a null path is a watch on null here, as in Apache's HashMap
            self.watches.add_persistent(p, watcher, recursive=False)
        for p in recursive or ():
            self.watches.add_persistent(p, watcher, recursive=True)
        return out

    # ------------------------------------------------------------------ replies for writes
    @staticmethod
    def write_reply(op: int, result: ApplyResult) -> Any:
        """The response record of a committed write (None for empty bodies)."""
        if op == Op.create:
            return CreateResponse(result.value[0])
        if op in (Op.create2, Op.createContainer, Op.createTTL):
            return Create2Response(result.value[0], leaf_stat(result.value[1]))
        if op == Op.setData or op == Op.setACL:
            return StatResponse(result.value)
        if op == Op.reconfig:
            return GetDataResponse(*result.value)
        return None


def _missed_data(node: Node | None, rel_zxid: int) -> int | None:
    """The EventType a data watch set at ``rel_zxid`` missed: deletion, a change, or None."""
    if node is None:
        return EventType.NodeDeleted
    return EventType.NodeDataChanged if node.mzxid > rel_zxid else None


def _missed_exist(node: Node | None, rel_zxid: int) -> int | None:
    """The EventType an exists watch (on a node that was absent) missed: creation, or None."""
    return EventType.NodeCreated if node is not None else None


def _missed_child(node: Node | None, rel_zxid: int) -> int | None:
    """The EventType a child watch set at ``rel_zxid`` missed: deletion, new children, or None."""
    if node is None:
        return EventType.NodeDeleted
    return EventType.NodeChildrenChanged if node.pzxid > rel_zxid else None


def _given(path: str | None) -> str:
    """A read's path as given; null fails the request as Apache's NullPointerException does."""
    if path is None:
        raise ZkError(Err.MARSHALLINGERROR)
    return path


def _java_trim(s: str) -> str:
    return s.strip("".join(chr(c) for c in range(33)))


def _redact(a: ACL) -> ACL:
    if a.id.scheme == "digest":
        ident = a.id.id
        if ident is None:  # no client can set one (fixup_acl refuses it): a damaged snapshot's
            raise TypeError("a digest ACL entry without an id")
        return ACL(a.perms, Id("digest", ident.split(":", 1)[0] + ":x"))
    return a


__all__ = ["Limits", "ServerCore", "READ_OPS", "paths"]
