"""Logical copies of a tree with kazoo: ``zkops export`` and ``zkops import``.

The file is one JSON document written a node per line, so both sides stream it::

    {"format": "zkops-tree/1", "server": "...", "root": "/app", "exported": "...", "nodes": [
    {"path": "/app", "data": "<base64 or null>", "acl": [[31, "world", "anyone"]], "stat": {...}},
    ...
    ]}

Nodes come parents first. ``stat`` is there for the record (import cannot set it);
ephemeral nodes are left out unless asked, and import never creates them. Works
against any ZooKeeper 3.5+ server: only create, getData, getACL, getChildren, setData
and setACL are used, pipelined with kazoo's async calls.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from zkops.server.paths import ZOOKEEPER

FORMAT = "zkops-tree/1"
BATCH = 500
Log = Callable[[str], None]


class TreeFileError(ValueError):
    """The tree file is not one ``zkops export`` wrote, or is damaged; the message names the line."""


def _client(server: str, auth: list[str] | None, timeout: float) -> Any:
    from kazoo.client import KazooClient

    auth_data = []
    for a in auth or []:
        scheme, _, cred = a.partition(":")
        auth_data.append((scheme, cred))
    zk = KazooClient(hosts=server, timeout=timeout, auth_data=auth_data or None,
                     connection_retry={"max_tries": 3, "delay": 0.2})
    zk.start(timeout=timeout)
    return zk


def _join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name


def _stat_dict(st: Any) -> dict[str, int]:
    return {"czxid": st.czxid, "mzxid": st.mzxid, "ctime": st.ctime, "mtime": st.mtime, "version": st.version,
            "cversion": st.cversion, "aversion": st.aversion, "ephemeralOwner": st.ephemeralOwner,
            "dataLength": st.dataLength, "numChildren": st.numChildren, "pzxid": st.pzxid}


@dataclass
class ExportResult:
    nodes: int = 0
    ephemerals_skipped: int = 0
    unreadable: list[str] = field(default_factory=list)


def export_tree(server: str, out: IO[str], root: str = "/", ephemerals: bool = False,
                include_system: bool = False, auth: list[str] | None = None, timeout: float = 15.0) -> ExportResult:
    """Write the tree under ``root`` to ``out``; memory stays bounded by one directory's children."""
    from kazoo.exceptions import NoAuthError, NoNodeError

    zk = _client(server, auth, timeout)
    res = ExportResult()
    try:
        head = {"format": FORMAT, "server": server, "root": root,
                "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        text = json.dumps(head)
        out.write(text[:-1] + ', "nodes": [\n')
        first = True

        def emit(path: str, data: bytes | None, acl: list, st: Any) -> None:
            nonlocal first
            rec: dict[str, Any] = {"path": path, "data": None if data is None else base64.b64encode(data).decode(),
                   "acl": [[a.perms, a.id.scheme, a.id.id] for a in acl], "stat": _stat_dict(st)}
            if st.ephemeralOwner:
                rec["ephemeral"] = True
            out.write(("" if first else ",\n") + json.dumps(rec, separators=(",", ":")))
            first = False
            res.nodes += 1

        def fetch(paths: list[str]) -> list[tuple[str, bytes, list, Any] | None]:
            got = [(p, zk.get_async(p), zk.get_acls_async(p)) for p in paths]
            rows: list[tuple[str, bytes, list, Any] | None] = []
            for p, gd, ga in got:
                try:
                    data, st = gd.get()
                    acl, _ = ga.get()
                except NoNodeError:
                    rows.append(None)  # deleted while we walked
                    continue
                except NoAuthError:
                    res.unreadable.append(p)
                    rows.append(None)
                    continue
                rows.append((p, data, acl, st))
            return rows

        top = fetch([root])[0]
        if top is None:
            raise NoNodeError(root)
        stack: list[str] = []

        def visit(row: tuple[str, bytes, list, Any]) -> None:
            p, data, acl, st = row
            if st.ephemeralOwner and not ephemerals:
                res.ephemerals_skipped += 1
                return
            emit(p, data, acl, st)
            if st.numChildren:
                stack.append(p)

        visit(top)
        while stack:
            parent = stack.pop()
            try:
                names = sorted(zk.get_children(parent))
            except NoNodeError:
                continue
            except NoAuthError:
                res.unreadable.append(parent)
                continue
            kids = [_join(parent, n) for n in names]
            if not include_system:
                kids = [k for k in kids if k != ZOOKEEPER and not k.startswith(ZOOKEEPER + "/")]
            later: list[str] = []
            for i in range(0, len(kids), BATCH):
                for row in fetch(kids[i:i + BATCH]):
                    if row is None:
                        continue
                    before = len(stack)
                    visit(row)
                    if len(stack) > before:
                        later.append(stack.pop())
            stack.extend(reversed(later))  # depth first, in name order
        out.write("\n]}\n")
        return res
    finally:
        zk.stop()
        zk.close()


def read_tree(lines: IO[str]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and a stream of node records of a file ``export_tree`` wrote."""
    first = lines.readline()
    if not first.strip().endswith('"nodes": ['):
        raise TreeFileError("line 1: not a zkops tree file (expected the header ending in '\"nodes\": [')")
    try:
        head = json.loads(first.strip()[: -len(', "nodes": [')] + "}")
    except ValueError as exc:
        raise TreeFileError(f"line 1: {exc}") from None
    if head.get("format") != FORMAT:
        raise TreeFileError(f"line 1: format {head.get('format')!r}, expected {FORMAT}")

    def nodes() -> Iterator[dict[str, Any]]:
        n = 1
        ended = False
        for line in lines:
            n += 1
            text = line.strip()
            if not text:
                continue
            if text == "]}":
                ended = True
                break
            try:
                rec = json.loads(text.rstrip(","))
            except ValueError as exc:
                raise TreeFileError(f"line {n}: {exc}") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("path"), str) or not rec["path"].startswith("/"):
                raise TreeFileError(f"line {n}: not a node record")
            yield rec
        if not ended:
            raise TreeFileError(f"line {n}: the file ends before ']}}' (truncated)")

    return head, nodes()


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    ephemerals_skipped: int = 0
    failed: list[str] = field(default_factory=list)


def _target(prefix: str, root: str, path: str) -> str:
    if not prefix or prefix == "/":
        return path
    prefix = prefix.rstrip("/")
    return prefix if path == "/" else prefix + path


def import_tree(server: str, lines: IO[str], prefix: str = "", overwrite: bool = False,
                auth: list[str] | None = None, timeout: float = 15.0, log: Log | None = None) -> ImportResult:
    """Create what the file holds under ``prefix``; existing nodes are left alone, or with
    ``overwrite`` get the file's data and ACL. Running it twice changes nothing the second time."""
    from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError
    from kazoo.security import ACL, Id

    head, records = read_tree(lines)
    zk = _client(server, auth, timeout)
    res = ImportResult()
    me = {("world", "anyone")}
    for a in auth or []:
        scheme, _, cred = a.partition(":")
        if scheme == "digest":
            from kazoo.security import make_digest_acl_credential

            user, _, pw = cred.partition(":")
            me.add(("digest", make_digest_acl_credential(user, pw)))
    deferred: list[tuple[str, list]] = []  # nodes whose ACL would stop us creating their children
    try:
        if prefix and prefix != "/":
            zk.ensure_path(prefix.rstrip("/") if prefix.rstrip("/") else "/")

        def acl_of(rec: dict[str, Any]) -> list:
            return [ACL(int(p), Id(s, i)) for p, s, i in rec.get("acl") or [[31, "world", "anyone"]]]

        def may_create(acl: list) -> bool:
            return any(a.perms & 4 and (a.id.scheme, a.id.id) in me for a in acl)

        def apply(batch: list[dict[str, Any]]) -> None:
            sent = []
            for rec in batch:
                path = _target(prefix, head.get("root", "/"), rec["path"])
                data = base64.b64decode(rec["data"]) if rec.get("data") is not None else b""
                acl = acl_of(rec)
                if path == "/":
                    sent.append((path, data, acl, None))
                    continue
                initial = acl if may_create(acl) else [ACL(31, Id("world", "anyone"))]
                sent.append((path, data, acl, zk.create_async(path, data, acl=initial)))
            for path, data, acl, fut in sent:
                try:
                    if fut is None:
                        raise NodeExistsError()
                    try:
                        fut.get()
                    except NoAuthError:
                        # the parent's ACL is checked before the name: under a locked parent an
                        # existing node answers NoAuth
                        if zk.exists(path) is None:
                            raise
                        raise NodeExistsError() from None
                    res.created += 1
                    if not may_create(acl):
                        deferred.append((path, acl))
                except NodeExistsError:
                    if not overwrite:
                        res.skipped += 1
                        continue
                    cur, _ = zk.get(path)
                    cur_acl, _ = zk.get_acls(path)
                    if cur == data and list(cur_acl) == list(acl):
                        res.skipped += 1
                        continue
                    if cur != data:
                        zk.set(path, data)
                    if list(cur_acl) != list(acl):
                        if may_create(acl):
                            zk.set_acls(path, acl)
                        else:
                            deferred.append((path, acl))
                    res.updated += 1
                except NoNodeError:
                    # a parent the file does not hold (an export of a subtree): make it, then retry
                    parent = path.rsplit("/", 1)[0] or "/"
                    zk.ensure_path(parent)
                    try:
                        zk.create(path, data, acl=acl if may_create(acl) else [ACL(31, Id("world", "anyone"))])
                        res.created += 1
                        if not may_create(acl):
                            deferred.append((path, acl))
                    except NodeExistsError:
                        res.skipped += 1
                except Exception as exc:  # noqa: BLE001 - reported per node, the rest goes on
                    res.failed.append(f"{path}: {type(exc).__name__}")

        batch: list[dict[str, Any]] = []
        for rec in records:
            if rec.get("ephemeral"):
                res.ephemerals_skipped += 1
                continue
            batch.append(rec)
            if len(batch) >= BATCH:
                apply(batch)
                batch = []
        if batch:
            apply(batch)
        for path, acl in reversed(deferred):  # children before parents
            try:
                zk.set_acls(path, acl)
            except Exception as exc:  # noqa: BLE001
                res.failed.append(f"{path}: setACL {type(exc).__name__}")
        if log and res.failed:
            for f in res.failed[:20]:
                log(f"failed: {f}")
        return res
    finally:
        zk.stop()
        zk.close()


__all__ = ["ExportResult", "ImportResult", "TreeFileError", "export_tree", "import_tree", "read_tree"]
