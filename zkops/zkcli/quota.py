"""zkCli.sh's ``setquota``, ``listquota`` and ``delquota``: the same znodes, requests, lines and
exit codes (see docs/zkcli.md). The usage a server keeps in ``zookeeper_stats`` is the
server's business (``zkops.server.quota``); these commands only write limits and read both."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TextIO

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.security import OPEN_ACL_UNSAFE

from zkops.server.quota import (
    BYTES,
    BYTES_HARD,
    COUNT,
    COUNT_HARD,
    LIMIT_NODE,
    QUOTA_ROOT,
    StatsTrack,
    limit_path,
    stat_path,
)

from . import requests as rq

# zkCli's one-letter flags -> the StatsTrack key each one sets
FLAG_KEYS = {"n": COUNT, "b": BYTES, "N": COUNT_HARD, "B": BYTES_HARD}
GROUP_TEXT = "[-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]"


class QuotaError(Exception):
    """A line for stderr and the exit code zkCli.sh gives it."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


Call = Callable[[str | None, Callable[[], Any]], Any]  # Commands._call: KeeperException -> CliError


def one_flag(words: list[str], takes_value: bool) -> tuple[str | None, str | None, list[str]]:
    """Parse words as commons-cli does for one option group: (flag, value, positional args)."""
    flag: str | None = None
    value: str | None = None
    args: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-") and len(w) > 1:
            name = w[1:]
            if name not in FLAG_KEYS:
                if not name.lstrip("-").isdigit():
                    raise QuotaError(f"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {w}")
                args.append(w)
                i += 1
                continue
            if flag is not None and flag != name:
                raise QuotaError("org.apache.commons.cli.AlreadySelectedException: The option "
                                 f"'{name}' was specified but an option from this group has already been "
                                 f"selected: '{flag}'")
            if takes_value:
                if i + 1 >= len(words):
                    raise QuotaError(f"org.apache.commons.cli.MissingArgumentException: Missing argument for option: "
                                     f"{name}")
                if flag is None:
                    value = words[i + 1]
                i += 1
            flag = name
        else:
            args.append(w)
        i += 1
    return flag, value, args


def _check_usage(stats: StatsTrack, limits: StatsTrack, out: TextIO) -> None:
    """zkCli's "[Warning]" lines when a new limit is already below the usage."""
    if (limits.get(COUNT) > -1 and limits.get(COUNT) < stats.get(COUNT)) or \
            (limits.get(COUNT_HARD) > -1 and limits.get(COUNT_HARD) < stats.get(COUNT)):
        out.write(f"[Warning]: the count quota you create is less than the existing count:{stats.get(COUNT)}\n")
    if (limits.get(BYTES) > -1 and limits.get(BYTES) < stats.get(BYTES)) or \
            (limits.get(BYTES_HARD) > -1 and limits.get(BYTES_HARD) < stats.get(BYTES)):
        out.write(f"[Warning]: the bytes quota you create is less than the existing bytes:{stats.get(BYTES)}\n")


def _java_split(path: str) -> list[str]:
    parts = path.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def set_quota(zk: KazooClient, call: Call, validate: Callable[[str], None], words: list[str],
              out: TextIO, err: TextIO) -> int:
    flag, value, args = one_flag(words, True)
    if flag is None:
        raise QuotaError(f"org.apache.commons.cli.MissingOptionException: Missing required option: {GROUP_TEXT}")
    if not args:
        raise QuotaError("setquota -n|-b|-N|-B val path")
    path = args[0]
    if path.startswith(QUOTA_ROOT):
        err.write(f"cannot set a quota under the path: {QUOTA_ROOT}\n")
        return 0
    limits = StatsTrack({COUNT: -1, BYTES: -1, COUNT_HARD: -1, BYTES_HARD: -1})
    try:
        number = int(value or "", 10)
        if not -2**63 <= number < 2**63 or (flag in ("n", "N") and not -2**31 <= number < 2**31):
            raise ValueError(value)
    except ValueError:
        err.write("NumberFormatException happens when parsing the option value\n")
        return 0
    if flag in ("n", "N") and number <= 0:
        err.write("the num quota must be greater than zero\n")
        return 0
    if flag in ("b", "B") and number < 0:
        err.write("the bytes quota must be greater than or equal to zero\n")
        return 0
    limits.set(FLAG_KEYS[flag], number)
    validate(path)
    if call(path, lambda: zk.exists(path)) is None:
        raise QuotaError(f"{path} does not exist.")
    _no_quota_below(zk, call, validate, path)
    _no_quota_above(zk, call, path)
    node = QUOTA_ROOT
    for part in _java_split(path)[1:]:
        node = f"{node}/{part}"
        if call(node, functools.partial(zk.exists, node)) is None:
            call(node, functools.partial(_create_empty, zk, node))
    lp, sp = f"{node}/{LIMIT_NODE}", stat_path(path)
    if call(lp, lambda: zk.exists(lp)) is None:
        call(lp, lambda: zk.create(lp, limits.to_bytes()))
        call(sp, lambda: zk.create(sp, StatsTrack({COUNT: 0, BYTES: 0}).to_bytes()))
        stored = StatsTrack.parse(call(lp, lambda: zk.get(lp))[0])
        _check_usage(StatsTrack.parse(call(sp, lambda: zk.get(sp))[0]), stored, out)
        return 0
    stored = StatsTrack.parse(call(lp, lambda: zk.get(lp))[0])
    for key in (COUNT, BYTES, COUNT_HARD, BYTES_HARD):
        if limits.get(key) > -1:
            stored.set(key, limits.get(key))
    _check_usage(StatsTrack.parse(call(sp, lambda: zk.get(sp))[0]), stored, out)
    call(lp, lambda: zk.set(lp, stored.to_bytes()))
    return 0


def _create_empty(zk: KazooClient, path: str) -> None:
    """A node with null data, as zkCli creates the quota tree; one that exists already is fine."""
    try:
        rq.call(zk, rq.CreateAny(path, None, OPEN_ACL_UNSAFE, rq.PERSISTENT, -1), 30)
    except NodeExistsError:
        pass


def _no_quota_below(zk: KazooClient, call: Call, validate: Callable[[str], None], path: str) -> None:
    """zkCli refuses a quota on a path that has a quota further down."""
    top = QUOTA_ROOT + path
    validate(top)
    if call(top, lambda: _get(zk, top)) is _MISSING:
        return
    stack = [top]
    while stack:
        node = stack.pop()
        children = call(node, functools.partial(_children, zk, node))
        if children is _MISSING:
            continue
        if node != top and LIMIT_NODE in children:
            raise QuotaError(f"{path} has a child {node[len(QUOTA_ROOT):]} which has a quota")
        # depth first, in the order the server lists children, as ZKUtil.visitSubTreeDFS goes
        stack.extend(f"{node}/{c}" for c in reversed(children))


def _no_quota_above(zk: KazooClient, call: Call, path: str) -> None:
    node = QUOTA_ROOT
    for part in _java_split(path)[1:-1]:
        node = f"{node}/{part}"
        children = call(node, functools.partial(_children, zk, node))
        if children is _MISSING or not children:
            return
        if LIMIT_NODE in children and node != QUOTA_ROOT + path:
            raise QuotaError(f"{path} has a parent {node[len(QUOTA_ROOT):]} which has a quota")


_MISSING: Any = object()


def _children(zk: KazooClient, node: str) -> Any:
    try:
        return zk.get_children(node)
    except NoNodeError:
        return _MISSING


def _get(zk: KazooClient, path: str) -> Any:
    try:
        return zk.get(path)[0]
    except NoNodeError:
        return _MISSING


def list_quota(zk: KazooClient, call: Call, validate: Callable[[str], None], words: list[str],
               out: TextIO, err: TextIO) -> int:
    args = list(words)
    for w in args:
        if w.startswith("-") and len(w) > 1 and not w[1:].lstrip("-").isdigit():
            raise QuotaError(f"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {w}")
    if not args:
        raise QuotaError("listquota path")
    path = args[0]
    err.write(f"absolute path is {limit_path(path)}\n")
    err.flush()
    found = []
    for p in (limit_path(path), stat_path(path)):
        validate(p)
        data = call(p, functools.partial(_get, zk, p))
        if data is _MISSING:
            err.write(f"quota for {path} does not exist.\n")
            return 0
        found.append(data)
    out.write(f"Output quota for {path} {StatsTrack.parse(found[0])}\n")
    out.write(f"Output stat for {path} {StatsTrack.parse(found[1])}\n")
    return 0


def del_quota(zk: KazooClient, call: Call, validate: Callable[[str], None], words: list[str],
              out: TextIO, err: TextIO) -> int:
    flag, _, args = one_flag(words, False)
    if not args:
        raise QuotaError("delquota [-n|-b|-N|-B] path")
    path = args[0]
    parent, lp = QUOTA_ROOT + path, limit_path(path)
    validate(lp)
    if call(lp, lambda: zk.exists(lp)) is None:
        out.write(f"Quota does not exist for {path}\n")
        return 0
    data = call(lp, lambda: _get(zk, lp))
    if data is _MISSING:
        err.write(f"quota for {path} does not exist.\n")
        return 0
    if flag is None:
        for child in call(parent, lambda: zk.get_children(parent)):
            cp = f"{parent}/{child}"
            call(cp, functools.partial(zk.delete, cp))
        node = parent
        while node != QUOTA_ROOT:
            if call(node, functools.partial(zk.get_children, node)):
                break
            call(node, functools.partial(zk.delete, node))
            node = node[:node.rfind("/")]
        return 0
    limits = StatsTrack.parse(data)
    limits.set(FLAG_KEYS[flag], -1)
    call(lp, lambda: zk.set(lp, limits.to_bytes()))
    return 0


__all__ = ["QuotaError", "del_quota", "list_quota", "set_quota"]
