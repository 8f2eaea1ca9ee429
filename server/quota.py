"""Quotas as Apache ZooKeeper 3.8 keeps them: pure bookkeeping over the data tree.

A quota on ``/p`` is two znodes a client (zkCli's ``setquota``) creates:
``/zookeeper/quota/p/zookeeper_limits`` holds the limits and ``/zookeeper/quota/p/zookeeper_stats``
the usage, both in StatsTrack text (``count=N,bytes=M=;byteHardLimit=..;countHardLimit=..``).
The server keeps the usage up to date on every create, setData and delete below ``/p``: the
stats node's data is rewritten in place (its version and mzxid do not move, as in Apache), and
only the deepest quota above a path is charged. After a snapshot is loaded every usage is
counted again from the tree. With ``zookeeper.enforceQuota`` a create or setData that would go
past a limit is logged ("Quota exceeded: ..."), and refused with QuotaExceeded past a hard limit.

Apache's quirks are kept on purpose (they decide what clients read): the prefix index treats
components made of blanks as absent, a limits node anywhere under a path starting with
``/zookeeper/quota`` registers a quota, deleting a limits node drops every quota below it from
the index, and a usage count includes the quota's own node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Protocol

from .paths import QUOTA as QUOTA_ROOT
from .paths import ZOOKEEPER as PROC

LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"

COUNT = "count"
BYTES = "bytes"
COUNT_HARD = "countHardLimit"
BYTES_HARD = "byteHardLimit"

_SEPARATORS = re.compile(r"[,;]+")


def limit_path(path: str) -> str:
    return f"{QUOTA_ROOT}{path}/{LIMIT_NODE}"


def stat_path(path: str) -> str:
    return f"{QUOTA_ROOT}{path}/{STAT_NODE}"


class StatsTrack:
    """Apache's StatsTrack: named longs, -1 when absent; ``count`` and ``bytes`` always print first."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, int] | None = None) -> None:
        self.values: dict[str, int] = dict(values or {})

    @classmethod
    def parse(cls, data: bytes | str | None) -> StatsTrack:
        """Read ``k=v`` pairs split on runs of ``,`` and ``;``; an empty value reads as -1.
        Pairs that are not numbers are skipped (Apache would fail on them)."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
        out: dict[str, int] = {}
        if not text:
            return cls(out)
        for pair in _SEPARATORS.split(text):
            kv = pair.split("=")
            while kv and kv[-1] == "":  # Java's split drops trailing empty strings
                kv.pop()
            if not kv:
                continue
            value = kv[1] if len(kv) > 1 else ""
            try:
                out[kv[0]] = int(value) if value else -1
            except ValueError:
                continue
        return cls(out)

    def get(self, key: str) -> int:
        return self.values.get(key, -1)

    def set(self, key: str, value: int) -> None:
        self.values[key] = value

    def __str__(self) -> str:
        text = f"{COUNT}={self.get(COUNT)},{BYTES}={self.get(BYTES)}"
        rest = sorted(k for k in self.values if k not in (COUNT, BYTES))
        if rest:
            text += "=" + "".join(f";{k}={self.values[k]}" for k in rest)
        return text

    def to_bytes(self) -> bytes:
        return str(self).encode()


_JAVA_BLANKS = "".join(chr(i) for i in range(33))  # what Java's String.trim() removes


def _components(path: str) -> list[str]:
    # components that trim to nothing are skipped, as Apache's PathTrie skips them
    return [c for c in path.split("/") if c.strip(_JAVA_BLANKS)]


class _TrieNode:
    __slots__ = ("children", "quota", "parent", "name")

    def __init__(self, parent: _TrieNode | None, name: str) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.quota = False
        self.parent = parent
        self.name = name


class PrefixIndex:
    """Which paths carry a quota (Apache's PathTrie, with its rules)."""

    def __init__(self) -> None:
        self.root = _TrieNode(None, "")

    def add(self, path: str) -> None:
        node = self.root
        for part in _components(path):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _TrieNode(node, part)
            node = child
        node.quota = True

    def delete(self, path: str) -> None:
        """Drop ``path`` and everything registered below it."""
        node = self.root
        for part in _components(path):
            child = node.children.get(part)
            if child is None:
                return
            node = child
        if node.parent is not None:
            node.parent.children.pop(node.name, None)

    def deepest(self, path: str) -> str:
        """The deepest registered prefix of ``path``, "/" when none."""
        node = self.root
        best: _TrieNode | None = None
        for part in _components(path):
            nxt = node.children.get(part)
            if nxt is None:
                break
            node = nxt
            if node.quota:
                best = node
        if best is None:
            return "/"
        names = []
        while best is not None and best is not self.root:
            names.append(best.name)
            best = best.parent
        return "/" + "/".join(reversed(names))

    def clear(self) -> None:
        self.root.children.clear()

    def paths(self) -> list[str]:
        out: list[str] = []
        stack = [(self.root, "")]
        while stack:
            node, prefix = stack.pop()
            for name, child in node.children.items():
                p = f"{prefix}/{name}"
                if child.quota:
                    out.append(p)
                stack.append((child, p))
        return sorted(out)


class TreeView(Protocol):
    """What quota bookkeeping needs from the data tree."""

    def data_of(self, path: str) -> bytes | None | int: ...  # a node's data; -1 when there is no node

    def children_of(self, path: str) -> Iterable[str]: ...

    def replace_data(self, path: str, data: bytes) -> None: ...  # in place: no version, no mzxid


_MISSING = -1


class QuotaExceeded(Exception):
    """A create or setData past a hard limit, with ``enforceQuota`` on; ``warnings`` are the
    lines Apache logs on the way."""

    def __init__(self, prefix: str, warnings: list[str]) -> None:
        super().__init__(prefix)
        self.prefix = prefix
        self.warnings = warnings


class Quotas:
    """The quota index of one data tree and the usage updates Apache makes."""

    def __init__(self) -> None:
        self.index = PrefixIndex()
        # errors Apache logs (a stats or limits node missing); the shell's logger reads them
        self.log: Callable[[str], None] = lambda msg: None

    def prefix_for(self, path: str) -> str | None:
        """The quota that charges ``path`` (Apache's getMaxPrefixWithQuota); None for none."""
        if not self.index.root.children:  # no quota anywhere: the common case, kept cheap
            return None
        prefix = self.index.deepest(path)
        return None if prefix in ("/", "") else prefix

    # ------------------------------------------------------------------ usage upkeep
    def _charge(self, tree: TreeView, prefix: str, bytes_diff: int, count_diff: int) -> None:
        path = stat_path(prefix)
        data = tree.data_of(path)
        if isinstance(data, int):  # _MISSING
            self.log(f"Missing node for stat {path}")
            return
        st = StatsTrack.parse(data)
        st.set(COUNT, st.get(COUNT) + count_diff)
        st.set(BYTES, st.get(BYTES) + bytes_diff)
        tree.replace_data(path, st.to_bytes())

    def recount(self, tree: TreeView, path: str) -> None:
        """Count ``path``'s subtree (itself included) into its stats node."""
        count = size = 0
        stack = [path]
        while stack:
            p = stack.pop()
            data = tree.data_of(p)
            if data == _MISSING:
                continue
            count += 1
            size += len(data) if isinstance(data, bytes) else 0
            stack.extend(_join(p, c) for c in tree.children_of(p))
        st = StatsTrack({COUNT: count, BYTES: size})
        sp = stat_path(path)
        if tree.data_of(sp) == _MISSING:
            self.log(f"Missing quota stat node {sp}")
            return
        tree.replace_data(sp, st.to_bytes())

    def created(self, tree: TreeView, path: str, data: bytes | None) -> None:
        if path.startswith(QUOTA_ROOT):
            self._quota_node_created(tree, path)
        if not self.index.root.children:
            return
        prefix = self.prefix_for(path)
        if prefix is not None:
            self._charge(tree, prefix, len(data) if data else 0, 1)

    def _quota_node_created(self, tree: TreeView, path: str) -> None:
        parent, _, name = path.rpartition("/")
        if parent.startswith(QUOTA_ROOT):
            if name == LIMIT_NODE:
                real = parent[len(QUOTA_ROOT):]
                if real:
                    self.index.add(real)
            if name == STAT_NODE:
                self.recount(tree, parent[len(QUOTA_ROOT):])

    def deleted(self, tree: TreeView, path: str, data: bytes | None) -> None:
        if not self.index.root.children:
            return
        parent, _, name = path.rpartition("/")
        if name == LIMIT_NODE and parent.startswith(PROC) and len(parent) > len(QUOTA_ROOT):
            self.index.delete(parent[len(QUOTA_ROOT):])
        prefix = self.prefix_for(path)
        if prefix is not None:
            self._charge(tree, prefix, -(len(data) if data else 0), -1)

    def data_changed(self, tree: TreeView, path: str, old: bytes | None, new: bytes | None) -> None:
        if not self.index.root.children:
            return
        prefix = self.prefix_for(path)
        if prefix is not None:
            self._charge(tree, prefix, (len(new) if new else 0) - (len(old) if old else 0), 0)

    def rebuild(self, tree: TreeView) -> None:
        """After a snapshot load: find every limits node that is a leaf, register its quota and
        count its usage again (Apache's setupQuota)."""
        self.index.clear()
        if tree.data_of(QUOTA_ROOT) == _MISSING:
            return
        stack = [QUOTA_ROOT]
        end = "/" + LIMIT_NODE
        while stack:
            p = stack.pop()
            children = list(tree.children_of(p))
            if children:
                stack.extend(_join(p, c) for c in children)
                continue
            if p.endswith(end):
                real = p[len(QUOTA_ROOT):p.index(end)]
                self.recount(tree, real)
                if real:
                    self.index.add(real)

    # ------------------------------------------------------------------ enforcement
    def check(self, tree: TreeView, path: str, last: bytes | None, data: bytes | None,
              create: bool) -> list[str]:
        """With enforceQuota on: the warnings a create (``create``) or setData of ``path`` logs;
        raises QuotaExceeded past a hard limit."""
        prefix = self.prefix_for(path)
        if not prefix:
            return []
        new_len = len(data) if data else 0
        if create:
            bytes_diff, count_diff = new_len, 1
        else:
            bytes_diff, count_diff = new_len - (len(last) if last else 0), 0
        limits_data = tree.data_of(limit_path(prefix))
        if isinstance(limits_data, int):  # _MISSING
            self.log(f"Missing limit node for quota {limit_path(prefix)}")
            return []
        limits = StatsTrack.parse(limits_data)
        check_count = count_diff != 0 and (limits.get(COUNT) > -1 or limits.get(COUNT_HARD) > -1)
        check_bytes = bytes_diff != 0 and (limits.get(BYTES) > -1 or limits.get(BYTES_HARD) > -1)
        if not check_count and not check_bytes:
            return []
        stats_data = tree.data_of(stat_path(prefix))
        if isinstance(stats_data, int):  # _MISSING
            self.log(f"Missing node for stat {stat_path(prefix)}")
            return []
        usage = StatsTrack.parse(stats_data)
        warnings: list[str] = []
        for checked, used_key, soft_key, hard_key, what, diff in (
                (check_count, COUNT, COUNT, COUNT_HARD, "Count", count_diff),
                (check_bytes, BYTES, BYTES, BYTES_HARD, "Byte", bytes_diff)):
            if not checked:
                continue
            new = usage.get(used_key) + diff
            hard = limits.get(hard_key) > -1
            limit = limits.get(hard_key) if hard else limits.get(soft_key)
            if new > limit:
                noun = "count" if what == "Count" else "bytes"
                warnings.append(f"Quota exceeded: {prefix} [current {noun}={new}, "
                                f"{'hard' if hard else 'soft'}{what}Limit={limit}]")
                if hard:
                    raise QuotaExceeded(prefix, warnings)
        return warnings


# Apache's quota gauges per top-level namespace, in the order mntr prints the sets
NAMESPACE_GAUGES = ("bytes_limit", "count_usage", "count_limit", "bytes_usage")


def namespace_totals(tree: TreeView) -> dict[str, dict[str, int]]:
    """Limits (the hard one when set, else the soft one) and usage summed per top-level
    namespace, from every leaf limits/stats node under /zookeeper/quota (Apache's
    QuotaMetricsUtils): gauge name -> namespace -> value, namespaces in the order found."""
    out: dict[str, dict[str, int]] = {g: {} for g in NAMESPACE_GAUGES}
    if tree.data_of(QUOTA_ROOT) == _MISSING:
        return out
    stack = [QUOTA_ROOT]
    while stack:
        p = stack.pop()
        children = list(tree.children_of(p))
        if children:
            stack.extend(_join(p, c) for c in reversed(children))
            continue
        limits = p.endswith("/" + LIMIT_NODE)
        if not limits and not p.endswith("/" + STAT_NODE):
            continue
        real = p[len(QUOTA_ROOT):]
        second = real.find("/", 1)
        namespace = real[1:second] if second > 0 else real[1:]  # the path's first component
        data = tree.data_of(p)
        if not namespace or not isinstance(data, bytes):
            continue
        st = StatsTrack.parse(data)
        if limits:
            pairs = (("count_limit", st.get(COUNT_HARD) if st.get(COUNT_HARD) > -1 else st.get(COUNT)),
                     ("bytes_limit", st.get(BYTES_HARD) if st.get(BYTES_HARD) > -1 else st.get(BYTES)))
        else:
            pairs = (("count_usage", st.get(COUNT)), ("bytes_usage", st.get(BYTES)))
        for gauge, value in pairs:
            out[gauge][namespace] = out[gauge].get(namespace, 0) + value
    return out


class RateLogger:
    """Apache's RateLogger: a message is written at once, then repeats of it are counted and
    written as "[N times] Message: ..." at most once per ``interval_ms`` or when another
    message comes. ``sink`` gets each line (the shell logs it at WARN)."""

    def __init__(self, sink: Callable[[str], None], interval_ms: int = 100) -> None:
        self.sink = sink
        self.interval_ms = interval_ms
        self.msg: str | None = None
        self.value: str | None = None
        self.count = 0
        self.stamp = 0

    def flush(self) -> None:
        if self.msg is not None and self.count > 0:
            line = (f"[{self.count} times] " if self.count > 1 else "") + f"Message: {self.msg}"
            if self.value is not None:
                line += f" Last value:{self.value}"
            self.sink(line)
        self.msg = None
        self.value = None
        self.count = 0

    def log(self, msg: str, now_ms: int, value: str | None = None) -> None:
        if msg == self.msg:
            self.count += 1
            self.value = value
            if now_ms - self.stamp >= self.interval_ms:
                self.flush()
                self.msg, self.stamp, self.value = msg, now_ms, value
        else:
            self.flush()
            self.msg, self.value, self.stamp = msg, value, now_ms
            self.sink(f"Message:{msg} Value:{'null' if value is None else value}")


def _join(parent: str, child: str) -> str:
    return f"{parent}/{child}" if parent != "/" else f"/{child}"


__all__ = ["LIMIT_NODE", "QUOTA_ROOT", "STAT_NODE", "PrefixIndex", "NAMESPACE_GAUGES", "QuotaExceeded", "Quotas", "RateLogger", "StatsTrack",
           "namespace_totals",
           "TreeView", "limit_path", "stat_path"]
