"""Server-side watch tables and ZooKeeper's trigger rules (Apache 3.8's WatchManager).

There are two tables, data watches and child watches, each path -> {watcher: mode}. A watcher
has one mode per path and table, the last registration's: a one-shot watch set after a
persistent one makes it one-shot again, as Apache's WatcherModeManager does. One-shot
(standard) watches go when they fire; persistent ones stay; persistent recursive ones fire
for every descendant too, but never with NodeChildrenChanged. A watcher registered several
ways gets one event per trigger.

As Apache, a watcher keeps its (possibly empty) entry in a table's by-watcher index after
its watches fire or are removed, until its connection closes: wchs and wchc count it.
"""

from __future__ import annotations

from collections.abc import Hashable

from . import paths
from .codes import EventType, WatcherType

STANDARD = 0
PERSISTENT = 1
RECURSIVE = 2

Watcher = Hashable
# A watched path: None only for a persistent watch set on a null path (addWatch, setWatches2),
# which Apache keeps under null in its HashMap and no event ever fires
WatchPath = str | None


class WatchTable:
    """path -> {watcher: mode} for one kind (data or child) of watch."""

    __slots__ = ("by_path", "by_watcher", "recursive")

    def __init__(self) -> None:
        self.by_path: dict[WatchPath, dict[Watcher, int]] = {}
        self.by_watcher: dict[Watcher, set[WatchPath]] = {}
        self.recursive = 0  # recursive entries: while 0, triggers skip the ancestors

    def add(self, path: WatchPath, watcher: Watcher, mode: int = STANDARD) -> None:
        table = self.by_path.get(path)
        if table is None:
            table = self.by_path[path] = {}
        old = table.get(watcher)
        if old == RECURSIVE:
            self.recursive -= 1
        if mode == RECURSIVE:
            self.recursive += 1
        table[watcher] = mode
        paths_of = self.by_watcher.get(watcher)
        if paths_of is None:
            paths_of = self.by_watcher[watcher] = set()
        paths_of.add(path)

    def has(self, path: str, watcher: Watcher) -> bool:
        table = self.by_path.get(path)
        return table is not None and watcher in table

    def remove(self, path: str, watcher: Watcher) -> bool:
        table = self.by_path.get(path)
        if not table or watcher not in table:
            return False
        if table.pop(watcher) == RECURSIVE:
            self.recursive -= 1
        if not table:
            del self.by_path[path]
        ps = self.by_watcher.get(watcher)
        if ps is not None:
            ps.discard(path)  # the (maybe empty) entry stays until the connection goes
        return True

    def remove_watcher(self, watcher: Watcher) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            table = self.by_path.get(path)
            if table is not None and watcher in table:
                if table.pop(watcher) == RECURSIVE:
                    self.recursive -= 1
                if not table:
                    del self.by_path[path]

    def count(self) -> int:
        return sum(len(t) for t in self.by_path.values())

    def trigger(self, path: str, event_type: int, fired: dict[Watcher, None]) -> None:
        """Add to ``fired`` the watchers this table notifies; one-shot watches on ``path`` go."""
        by_path = self.by_path
        watchers = by_path.get(path)
        if watchers:
            for w, mode in list(watchers.items()):
                if mode == RECURSIVE:
                    if event_type != EventType.NodeChildrenChanged:
                        fired[w] = None
                    continue
                fired[w] = None
                if mode == STANDARD:
                    self.remove(path, w)
        if not self.recursive or event_type == EventType.NodeChildrenChanged:
            return
        for anc in paths.ancestors(path):
            watchers = by_path.get(anc)
            if watchers:
                for w, mode in watchers.items():
                    if mode == RECURSIVE:
                        fired[w] = None


class WatchManager:
    """The data and child watch tables, and how a tree event reaches them."""

    def __init__(self) -> None:
        self.data = WatchTable()
        self.child = WatchTable()

    @property
    def recursive_count(self) -> int:
        return self.data.recursive + self.child.recursive

    # ------------------------------------------------------------ registration
    def add_data(self, path: str, watcher: Watcher) -> None:
        self.data.add(path, watcher)

    def add_child(self, path: str, watcher: Watcher) -> None:
        self.child.add(path, watcher)

    def add_persistent(self, path: WatchPath, watcher: Watcher, recursive: bool) -> None:
        mode = RECURSIVE if recursive else PERSISTENT
        self.data.add(path, watcher, mode)
        self.child.add(path, watcher, mode)

    def remove_connection(self, watcher: Watcher) -> None:
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    # ------------------------------------------------------------ check / remove
    def _tables(self, wtype: int) -> tuple[WatchTable, ...]:
        if wtype == WatcherType.CHILDREN:
            return (self.child,)
        if wtype == WatcherType.DATA:
            return (self.data,)
        return (self.child, self.data)

    def contains(self, path: str, watcher: Watcher, wtype: int) -> bool:
        """Whether this connection watches ``path`` that way (any mode). Apache answers yes
        when any connection does; README's compatibility notes say why we do not.

        Raises ValueError where Apache 3.8's walk up the path's parents fails (its
        PathParentIterator cuts at the last '/'): a relative path with no '/' at all, and any
        relative path the walk goes past the path itself, which it does in a table holding a
        recursive watch. Like Apache, type Any asks both tables, children first."""
        found = False
        relative = bool(path) and path[0] != "/"
        for table in self._tables(wtype):
            if relative and "/" not in path:
                raise ValueError(f"no parent of the relative path {path!r}")
            if table.has(path, watcher):
                found = True
            elif relative and table.recursive:
                raise ValueError(f"no root above the relative path {path!r}")
        return found

    def remove(self, path: str, watcher: Watcher, wtype: int) -> bool:
        removed = False
        for table in self._tables(wtype):
            if table.remove(path, watcher):
                removed = True
        return removed

    # ------------------------------------------------------------ triggers
    def trigger(self, event_type: int, path: str) -> list[tuple[Watcher, int, str]]:
        """Watchers to notify for one tree event, as (watcher, event type, path)."""
        data, child = self.data, self.child
        if not data.recursive and not child.recursive and path not in data.by_path and path not in child.by_path:
            return []  # the common case: nobody watches this path
        fired: dict[Watcher, None] = {}
        if event_type == EventType.NodeChildrenChanged:
            child.trigger(path, event_type, fired)
        elif event_type == EventType.NodeDeleted:
            data.trigger(path, event_type, fired)
            more: dict[Watcher, None] = {}
            child.trigger(path, event_type, more)
            for w in more:
                fired[w] = None
        else:  # NodeCreated, NodeDataChanged
            data.trigger(path, event_type, fired)
        return [(w, event_type, path) for w in fired]

    # ------------------------------------------------------------ reporting
    def watch_count(self) -> int:
        return self.data.count() + self.child.count()

    def paths_by_watcher(self) -> dict[Watcher, set[WatchPath]]:
        """Data watches by connection, empty entries included (Apache's wchc and watches)."""
        return {w: set(ps) for w, ps in self.data.by_watcher.items()}

    def watchers_by_path(self) -> dict[WatchPath, set[Watcher]]:
        """Data watches by path (Apache's wchp and watches_by_path)."""
        return {p: set(ws) for p, ws in self.data.by_path.items()}

    def summary(self) -> tuple[int, int, int]:
        """wchs: connections, paths and watches of the data table, as Apache counts them."""
        table = self.data
        return len(table.by_watcher), len(table.by_path), sum(len(ps) for ps in table.by_watcher.values())
