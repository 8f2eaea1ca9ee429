"""Server-side watch tables and ZooKeeper's trigger rules.

Watchers are opaque hashable objects (the server uses its connection objects). One-shot
(standard) watches are removed when they fire; persistent ones stay; persistent
recursive ones also fire for every descendant, but never with NodeChildrenChanged.
A watcher registered several ways gets one event per trigger.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from . import paths
from .codes import EventType, WatcherType

STANDARD = 0
PERSISTENT = 1
RECURSIVE = 2

Watcher = Hashable


class WatchTable:
    """path -> {watcher: mode} for one kind (data or child) of watch."""

    __slots__ = ("by_path", "by_watcher")

    def __init__(self) -> None:
        self.by_path: dict[str, dict[Watcher, int]] = {}
        self.by_watcher: dict[Watcher, set[str]] = {}

    def add(self, path: str, watcher: Watcher, mode: int = STANDARD) -> None:
        table = self.by_path.get(path)
        if table is None:
            table = self.by_path[path] = {}
        old = table.get(watcher)
        # a persistent registration is never downgraded by a later one-shot one
        if old is None or (old == STANDARD and mode != STANDARD) or (old == PERSISTENT and mode == RECURSIVE):
            table[watcher] = mode
        paths_of = self.by_watcher.get(watcher)
        if paths_of is None:
            paths_of = self.by_watcher[watcher] = set()
        paths_of.add(path)

    def has(self, path: str, watcher: Watcher, modes: Iterable[int] | None = None) -> bool:
        table = self.by_path.get(path)
        if not table or watcher not in table:
            return False
        return modes is None or table[watcher] in modes

    def remove(self, path: str, watcher: Watcher, modes: Iterable[int] | None = None) -> bool:
        table = self.by_path.get(path)
        if not table or watcher not in table:
            return False
        if modes is not None and table[watcher] not in modes:
            return False
        del table[watcher]
        if not table:
            del self.by_path[path]
        ps = self.by_watcher.get(watcher)
        if ps is not None:
            ps.discard(path)
            if not ps:
                del self.by_watcher[watcher]
        return True

    def remove_watcher(self, watcher: Watcher) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            table = self.by_path.get(path)
            if table is not None:
                table.pop(watcher, None)
                if not table:
                    del self.by_path[path]

    def count(self) -> int:
        return sum(len(t) for t in self.by_path.values())


class WatchManager:
    """Both watch tables plus the count of recursive watches (so most triggers skip ancestors)."""

    def __init__(self) -> None:
        self.data = WatchTable()
        self.child = WatchTable()
        self.recursive_count = 0

    # ------------------------------------------------------------ registration
    def add_data(self, path: str, watcher: Watcher) -> None:
        self.data.add(path, watcher)

    def add_child(self, path: str, watcher: Watcher) -> None:
        self.child.add(path, watcher)

    def add_persistent(self, path: str, watcher: Watcher, recursive: bool) -> None:
        mode = RECURSIVE if recursive else PERSISTENT
        if recursive and not self.data.has(path, watcher, (RECURSIVE,)):
            self.recursive_count += 1
        self.data.add(path, watcher, mode)
        self.child.add(path, watcher, mode)

    def remove_connection(self, watcher: Watcher) -> None:
        for path in list(self.data.by_watcher.get(watcher, ())):
            if self.data.has(path, watcher, (RECURSIVE,)):
                self.recursive_count -= 1
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    # ------------------------------------------------------------ check / remove
    def _matching(self, path: str, watcher: Watcher, wtype: int) -> list[tuple[WatchTable, tuple[int, ...]]]:
        if wtype == WatcherType.CHILDREN:
            return [(self.child, (STANDARD,))]
        if wtype == WatcherType.DATA:
            return [(self.data, (STANDARD,))]
        if wtype == 4:  # WatcherType.Persistent
            return [(self.data, (PERSISTENT,)), (self.child, (PERSISTENT,))]
        if wtype == 5:  # WatcherType.PersistentRecursive
            return [(self.data, (RECURSIVE,)), (self.child, (RECURSIVE,))]
        return [(self.data, (STANDARD, PERSISTENT, RECURSIVE)), (self.child, (STANDARD, PERSISTENT, RECURSIVE))]

    def contains(self, path: str, watcher: Watcher, wtype: int) -> bool:
        return any(t.has(path, watcher, modes) for t, modes in self._matching(path, watcher, wtype))

    def remove(self, path: str, watcher: Watcher, wtype: int) -> bool:
        removed = False
        for table, modes in self._matching(path, watcher, wtype):
            was_recursive = table is self.data and table.has(path, watcher, (RECURSIVE,))
            if table.remove(path, watcher, modes):
                removed = True
                if was_recursive:
                    self.recursive_count -= 1
        return removed

    # ------------------------------------------------------------ triggers
    def trigger(self, event_type: int, path: str) -> list[tuple[Watcher, int, str]]:
        """Watchers to notify for one tree event, as (watcher, event type, path)."""
        if not self.recursive_count and path not in self.data.by_path and path not in self.child.by_path:
            return []  # the common case: nobody watches this path
        out: list[tuple[Watcher, int, str]] = []
        seen: set[Watcher] = set()
        if event_type == EventType.NodeChildrenChanged:
            self._fire(self.child, path, event_type, out, seen, exact_only=True)
        elif event_type == EventType.NodeDeleted:
            self._fire(self.data, path, event_type, out, seen)
            self._fire(self.child, path, event_type, out, seen, exact_only=True, no_recursive=True)
        else:  # NodeCreated, NodeDataChanged
            self._fire(self.data, path, event_type, out, seen)
        return out

    def _fire(self, table: WatchTable, path: str, event_type: int, out: list[tuple[Watcher, int, str]],
              seen: set[Watcher], exact_only: bool = False, no_recursive: bool = False) -> None:
        by_path = table.by_path
        watchers = by_path.get(path)
        if watchers:
            doomed = []
            for w, mode in watchers.items():
                if mode == STANDARD:
                    doomed.append(w)
                elif mode == RECURSIVE and (event_type == EventType.NodeChildrenChanged or no_recursive):
                    continue
                if w not in seen:
                    seen.add(w)
                    out.append((w, event_type, path))
            for w in doomed:
                table.remove(path, w)
        if exact_only or not self.recursive_count:
            return
        for anc in paths.ancestors(path):
            watchers = by_path.get(anc)
            if not watchers:
                continue
            for w, mode in watchers.items():
                if mode == RECURSIVE and w not in seen:
                    seen.add(w)
                    out.append((w, event_type, path))

    # ------------------------------------------------------------ reporting
    def watch_count(self) -> int:
        return self.data.count() + self.child.count()

    def paths_by_watcher(self) -> dict[Watcher, set[str]]:
        out: dict[Watcher, set[str]] = {}
        for table in (self.data, self.child):
            for w, ps in table.by_watcher.items():
                out.setdefault(w, set()).update(ps)
        return out

    def watchers_by_path(self) -> dict[str, set[Watcher]]:
        out: dict[str, set[Watcher]] = {}
        for table in (self.data, self.child):
            for p, ws in table.by_path.items():
                out.setdefault(p, set()).update(ws)
        return out
