"""zkCli.sh's commands on top of kazoo, with zkCli.sh's flags, output and error lines.

``Commands.execute(tokens)`` runs one command line and returns its exit code (0, 1 on an
error, 127 for an unknown command), writing what zkCli.sh writes to the same stream:
results to ``out``, "Created ..." and errors to ``err``. Errors are one line, as zkCli
prints them (``Node does not exist: /x``), never a traceback.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, KazooException, SessionExpiredError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.paths import join, normpath
from kazoo.protocol.serialization import Watch
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id

from zkops.server.paths import CONFIG

from . import requests as rq

USAGE_HEAD = "ZooKeeper -server host:port -client-configuration properties-file cmd args"
ADDWATCH_USAGE = ("addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - "
                  "default is PERSISTENT_RECURSIVE")


@dataclass(frozen=True)
class Spec:
    usage: str
    flags: dict[str, bool]  # flag -> takes a value
    min_args: int  # positional arguments, not counting the command name
    max_args: int


SPECS: dict[str, Spec] = {
    "addWatch": Spec(ADDWATCH_USAGE, {"m": True}, 1, 1),
    "addauth": Spec("addauth scheme auth", {}, 1, 2),
    "close": Spec("close ", {}, 0, 0),
    "config": Spec("config [-c] [-w] [-s]", {"c": False, "w": False, "s": False}, 0, 0),
    "connect": Spec("connect host:port", {}, 0, 1),
    "create": Spec("create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
                   {"s": False, "e": False, "c": False, "t": True}, 1, 3),
    "delete": Spec("delete [-v version] path", {"v": True}, 1, 1),
    "deleteall": Spec("deleteall path [-b batch size]", {"b": True}, 1, 1),
    "delquota": Spec("delquota [-n|-b|-N|-B] path", {}, 0, 0),  # parsed in zkcli.quota
    "get": Spec("get [-s] [-w] path", {"s": False, "w": False}, 1, 1),
    "getAcl": Spec("getAcl [-s] path", {"s": False}, 1, 1),
    "getAllChildrenNumber": Spec("getAllChildrenNumber path", {}, 1, 1),
    "getEphemerals": Spec("getEphemerals path", {}, 0, 1),
    "history": Spec("history ", {}, 0, 0),
    "listquota": Spec("listquota path", {}, 0, 0),
    "ls": Spec("ls [-s] [-w] [-R] path", {"s": False, "w": False, "R": False}, 1, 1),
    "printwatches": Spec("printwatches on|off", {}, 0, 1),
    "quit": Spec("quit ", {}, 0, 0),
    "reconfig": Spec("reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | "
                     "[-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
                     {"s": False, "v": True, "file": True, "members": True, "add": True, "remove": True}, 0, 0),
    "redo": Spec("redo cmdno", {}, 1, 1),
    "removewatches": Spec("removewatches path [-c|-d|-a] [-l]", {"c": False, "d": False, "a": False, "l": False},
                          1, 1),
    "set": Spec("set [-s] [-v version] path data", {"s": False, "v": True}, 2, 2),
    "setquota": Spec("setquota -n|-b|-N|-B val path", {}, 0, 0),
    "setAcl": Spec("setAcl [-s] [-v version] [-R] path acl", {"s": False, "v": True, "R": False}, 2, 2),
    "stat": Spec("stat [-w] path", {"w": False}, 1, 1),
    "sync": Spec("sync path", {}, 1, 1),
    "version": Spec("version ", {}, 0, 0),
    "whoami": Spec("whoami ", {}, 0, 0),
}

# KeeperException messages, as zkCli.sh's CliWrapperException words them (path appended)
FRIENDLY = {-101: "Node does not exist: ", -108: "Ephemerals cannot have children: ", -110: "Node already exists: ",
            -111: "Node not empty: ", -119: "Not a read-only call: ", -114: "Acl is not valid : ",
            -102: "Insufficient permission : ", -8: "Arguments are not valid : ", -103: "version No is not valid : "}
CODE_NAMES = {-1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency", -4: "ConnectionLoss",
              -5: "MarshallingError", -6: "Unimplemented", -7: "OperationTimeout", -8: "BadArguments",
              -12: "UnknownSession", -13: "NewConfigNoQuorum", -14: "ReconfigInProgress", -100: "APIError",
              -101: "NoNode", -102: "NoAuth", -103: "BadVersion", -108: "NoChildrenForEphemerals",
              -110: "NodeExists", -111: "Directory not empty", -112: "Session expired", -113: "Invalid callback",
              -114: "InvalidACL", -115: "AuthFailed", -118: "Session moved", -119: "Not a read-only call",
              -120: "Ephemeral node on local session", -121: "No such watcher", -123: "Reconfig is disabled",
              -124: "Session closed because client failed to authenticate", -125: "Quota has exceeded",
              -127: "Op throttled due to high load"}
EVENT_TYPES = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged",
               5: "DataWatchRemoved", 6: "ChildWatchRemoved", 7: "PersistentWatchRemoved"}
KEEPER_STATES = {0: "Disconnected", 3: "SyncConnected", 4: "AuthFailed", 5: "ConnectedReadOnly",
                 6: "SaslAuthenticated", -112: "Expired", 7: "Closed"}
QUOTA_COMMANDS = frozenset({"setquota", "listquota", "delquota"})
PERMS = (("c", 4), ("d", 8), ("r", 1), ("w", 2), ("a", 16))


class CliError(Exception):
    """A one-line error for ``err``; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def validate_path(path: str, sequential: bool = False) -> None:
    """ZooKeeper's client-side path rules with its messages: the server's own checker
    (PathUtils.validatePath in both), so zkcli refuses exactly what ZooKeeper does."""
    from zkops.server.paths import InvalidPath
    from zkops.server.paths import validate_path as check

    try:
        check(path, sequential)
    except InvalidPath as exc:
        reason = str(exc)
        if "@" in reason:  # PathUtils names the path for the rules it checks name by name
            reason = f'Invalid path string "{path}" caused by {reason}'
        raise CliError(reason) from None


def java_date(ms: int) -> str:
    """java.util.Date#toString in the local zone: ``Wed Dec 02 18:54:57 UTC 2026``."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(ms / 1000))


def format_stat(stat: Any) -> str:
    def hx(v: int) -> str:
        return f"0x{v & 0xFFFFFFFFFFFFFFFF:x}"

    return "\n".join([
        f"cZxid = {hx(stat.czxid)}", f"ctime = {java_date(stat.ctime)}", f"mZxid = {hx(stat.mzxid)}",
        f"mtime = {java_date(stat.mtime)}", f"pZxid = {hx(stat.pzxid)}", f"cversion = {stat.cversion}",
        f"dataVersion = {stat.version}", f"aclVersion = {stat.aversion}",
        f"ephemeralOwner = {hx(stat.ephemeralOwner)}", f"dataLength = {stat.dataLength}",
        f"numChildren = {stat.numChildren}"]) + "\n"


def perm_string(perms: int) -> str:
    return "".join(ch for ch, bit in PERMS if perms & bit)


def parse_acl(text: str, err: TextIO) -> list[ACL] | None:
    """``scheme:id:perms[,...]`` as zkCli's AclParser reads it (bad entries are reported and skipped)."""
    acls = []
    for part in text.split(","):
        first, last = part.find(":"), part.rfind(":")
        if first == -1 or last == first:
            err.write(f"{part} does not have the form scheme:id:perm\n")
            continue
        perms = 0
        for ch in part[last + 1:]:
            bit = dict(PERMS).get(ch)
            if bit is None:
                err.write(f"Unknown perm type: {ch}\n")
            else:
                perms |= bit
        acls.append(ACL(perms, Id(part[:first], part[first + 1:last])))
    return acls or None


def split_line(line: str) -> list[str]:
    """An interactive line into words, as zkCli does: quotes group words and are removed."""
    import re

    words = re.findall(r"\s*([^\"'\s]\S*|\"[^\"]*\"|'[^']*')\s*", line)
    return [w[1:-1] if len(w) >= 2 and w[0] == w[-1] and w[0] in "\"'" else w for w in words]


def parse_options(spec: Spec, words: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    opts: dict[str, str | bool] = {}
    args: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-") and len(w) > 1 and w[1:] in spec.flags:
            if spec.flags[w[1:]]:
                if i + 1 >= len(words):
                    raise CliError(spec.usage)
                opts[w[1:]] = words[i + 1]
                i += 2
                continue
            opts[w[1:]] = True
        elif w.startswith("-") and len(w) > 1 and not w[1:].lstrip("-").isdigit():
            raise CliError(f"Unrecognized option: {w}\n{spec.usage}")
        else:
            args.append(w)
        i += 1
    if not spec.min_args <= len(args) <= spec.max_args:
        raise CliError(spec.usage)
    return opts, args


class Commands:
    """One zkCli session: the client, the history, and whether watch events are printed."""

    def __init__(self, hosts: str, timeout_ms: int, out: TextIO, err: TextIO, read_only: bool = False) -> None:
        self.hosts = hosts
        self.timeout_ms = timeout_ms
        self.read_only = read_only
        self.out, self.err = out, err
        self.history: list[str] = []
        self.print_watches = True
        self.zk: KazooClient | None = None
        self.closed = True
        self._lock = threading.Lock()
        self._announced = threading.Event()  # set once the connection's SyncConnected line is printed

    # ------------------------------------------------------------ connection
    @property
    def request_timeout(self) -> float:
        return max(self.timeout_ms / 1000.0, 5.0)

    def state(self) -> str:
        """What zkCli's prompt shows: CONNECTED, CONNECTING or CLOSED."""
        if self.zk is None or self.closed:
            return "CLOSED"
        return "CONNECTED" if self.zk.state == KazooState.CONNECTED else "CONNECTING"

    def connect(self, hosts: str | None = None, wait: float | None = None) -> bool:
        """Open a session to ``hosts`` (or the current string); True once connected within ``wait``."""
        if hosts:
            self.hosts = hosts
        self.close(announce=False)
        zk = KazooClient(hosts=self.hosts, timeout=self.timeout_ms / 1000.0, read_only=self.read_only,
                         connection_retry={"max_tries": -1, "delay": 0.2, "max_delay": 2})
        original = zk._connection._read_watch_event

        def on_watch_event(buffer: bytes, offset: int) -> None:
            watch, _ = Watch.deserialize(buffer, offset)
            self.event(KEEPER_STATES.get(watch.state, str(watch.state)), EVENT_TYPES.get(watch.type, str(watch.type)),
                       zk.unchroot(watch.path))
            original(buffer, offset)

        zk._connection._read_watch_event = on_watch_event
        zk.add_listener(self._on_state)
        self.zk = zk
        self.closed = False
        self.out.write(f"Connecting to {self.hosts}\n")
        self.out.flush()
        self._announced.clear()
        ready = zk.start_async()
        limit = wait if wait is not None else self.request_timeout
        ready.wait(limit)
        if zk.state == KazooState.CONNECTED:  # the SyncConnected line comes before the next prompt
            self._announced.wait(min(limit, 5.0))
        return zk.state == KazooState.CONNECTED

    def _on_state(self, state: str) -> None:
        if self.closed:
            return
        if state == KazooState.CONNECTED:
            self.event("ConnectedReadOnly" if self.zk and self.zk.client_state == "CONNECTED_RO" else "SyncConnected")
            self._announced.set()
        elif state == KazooState.SUSPENDED:
            self.event("Disconnected")
        elif state == KazooState.LOST:
            self.event("Expired")

    def event(self, state: str, kind: str = "None", path: str | None = None) -> None:
        if self.print_watches:
            with self._lock:
                shown = "null" if path is None else path
                self.out.write(f"\nWATCHER::\n\nWatchedEvent state:{state} type:{kind} path:{shown}\n")
                self.out.flush()

    def close(self, announce: bool = True) -> None:
        zk, self.zk = self.zk, None
        was_open = not self.closed
        self.closed = True
        if zk is None:
            return
        try:
            zk.stop()
            zk.close()
        except KazooException:
            pass
        if announce and was_open:
            self.event("Closed")

    # ------------------------------------------------------------ running commands
    def execute(self, words: list[str], record: bool = True) -> int:
        """Run one command; the exit code a one-shot zkcli returns for it."""
        if not words:
            return 0
        if record:
            self.history.append(" ".join(words))
        name, rest = words[0], words[1:]
        spec = SPECS.get(name)
        if name == "help":
            self.usage()
            return 0
        if spec is None:
            self.usage()
            self.err.write(f"Command not found: Command not found {name}\n")
            return 127
        if name in QUOTA_COMMANDS:
            return self._quota(name, rest)
        try:
            opts, args = parse_options(spec, rest)
            handler: Callable[[dict, list[str]], None] = getattr(self, "do_" + name)
            if name not in ("connect", "close", "history", "redo", "printwatches", "quit", "version") \
                    and (self.zk is None or self.closed):
                self.out.write("Not connected\n")
                return 1
            handler(opts, args)
            return 0
        except CliError as exc:
            if str(exc):
                self.err.write(f"{exc}\n")
            return exc.code
        finally:
            self.out.flush()
            self.err.flush()

    def _quota(self, name: str, words: list[str]) -> int:
        """setquota, listquota, delquota (zkcli.quota): commons-cli's option group rules."""
        from . import quota

        try:
            if self.zk is None or self.closed:
                self.out.write("Not connected\n")
                return 1
            run = {"setquota": quota.set_quota, "listquota": quota.list_quota, "delquota": quota.del_quota}[name]
            return run(self.zk, self._call, validate_path, words, self.out, self.err)
        except (quota.QuotaError, CliError) as exc:
            self.err.write(f"{exc}\n")
            return exc.code
        finally:
            self.out.flush()
            self.err.flush()

    def usage(self) -> None:
        self.err.write(USAGE_HEAD + "\n")
        for name in sorted(SPECS):
            self.err.write(f"\t{SPECS[name].usage}\n")

    def _client(self) -> KazooClient:
        """The open client (commands that need one run only while connected)."""
        zk = self.zk
        assert zk is not None
        return zk

    def _call(self, path: str | None, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (ConnectionClosedError, SessionExpiredError):
            raise CliError("KeeperErrorCode = Session expired" + (f" for {path}" if path else ""))
        except KazooTimeoutError:
            raise CliError("KeeperErrorCode = ConnectionLoss" + (f" for {path}" if path else ""))
        except ConnectionLoss:
            raise CliError("KeeperErrorCode = ConnectionLoss" + (f" for {path}" if path else ""))
        except KazooException as exc:
            code = getattr(exc, "code", None)
            if code in FRIENDLY and path is not None:
                raise CliError(FRIENDLY[code] + path)
            name = CODE_NAMES.get(code, type(exc).__name__) if isinstance(code, int) else type(exc).__name__
            raise CliError(f"KeeperErrorCode = {name}" + (f" for {path}" if path else ""))

    def _full(self, path: str) -> str:
        assert self.zk is not None
        root = normpath(join("/", self.zk.chroot or ""))  # the chroot as an absolute path ("/" for none)
        return normpath(join(root, path.lstrip("/")))

    def _raw(self, request: Any) -> Any:
        assert self.zk is not None
        return rq.call(self.zk, request, self.request_timeout)

    @staticmethod
    def _noop_watch(event: Any) -> None:
        """Registered so the server sets the watch; the event is printed from the wire (all events)."""

    @staticmethod
    def _int(text: str, what: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise CliError(f"{what} argument must be a long value" if what == "-t" else
                           f"{text} is not a valid {what}")

    def _data(self, data: bytes | None) -> str:
        return "null" if data is None else data.decode("utf-8", errors="replace")

    # ------------------------------------------------------------ the commands
    def do_ls(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        zk = self._client()
        watch = self._noop_watch if opts.get("w") else None
        if opts.get("R"):
            queue, seen = deque([path]), []
            while queue:
                node = queue.popleft()
                seen.append(node)
                kids = self._call(node, functools.partial(zk.get_children, node, watch=watch))
                queue.extend((node.rstrip("/") + "/" + k) for k in kids)
            self.out.write("".join(p + "\n" for p in seen))
            return
        if opts.get("s"):
            kids, stat = self._call(path, lambda: zk.get_children(path, watch=watch, include_data=True))
        else:
            kids, stat = self._call(path, lambda: zk.get_children(path, watch=watch)), None
        self.out.write("[" + ", ".join(sorted(kids)) + "]\n")
        if stat is not None:
            self.out.write(format_stat(stat))

    def do_get(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        zk = self._client()
        data, stat = self._call(path, lambda: zk.get(path, watch=self._noop_watch if opts.get("w") else None))
        self.out.write(self._data(data) + "\n")
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_stat(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        zk = self._client()
        stat = self._call(path, lambda: zk.exists(path, watch=self._noop_watch if opts.get("w") else None))
        if stat is None:
            raise CliError(FRIENDLY[-101] + path)
        self.out.write(format_stat(stat))

    def do_set(self, opts: dict, args: list[str]) -> None:
        path, data = args
        validate_path(path)
        version = self._int(opts["v"], "version") if "v" in opts else -1
        zk = self._client()
        stat = self._call(path, lambda: zk.set(path, data.encode(), version=version))
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_create(self, opts: dict, args: list[str]) -> None:
        seq, eph, container = bool(opts.get("s")), bool(opts.get("e")), bool(opts.get("c"))
        ttl = -1
        if "t" in opts:
            ttl = self._int(str(opts["t"]), "-t")
        if container and (seq or eph):
            raise CliError("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.")
        if ttl != -1 and eph:
            raise CliError("TTLs cannot be used with Ephemeral znodes")
        if ttl != -1 and container:
            raise CliError("TTLs cannot be used with Container znodes")
        path = args[0]
        validate_path(path, sequential=seq)
        data = args[1].encode() if len(args) > 1 else None
        acl = parse_acl(args[2], self.err) if len(args) > 2 else None
        if ttl != -1:
            flags = rq.TTL_SEQUENTIAL if seq else rq.TTL
        elif container:
            flags = rq.CONTAINER
        else:
            flags = (rq.EPHEMERAL if eph else 0) | (rq.SEQUENTIAL if seq else 0)
        from kazoo.security import OPEN_ACL_UNSAFE

        request = rq.CreateAny(self._full(path), data, acl or OPEN_ACL_UNSAFE, flags, ttl)
        created, _ = self._call(path, lambda: self._raw(request))
        assert self.zk is not None
        self.err.write(f"Created {self.zk.unchroot(created)}\n")

    def do_delete(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        version = self._int(opts["v"], "version") if "v" in opts else -1
        zk = self._client()
        self._call(path, lambda: zk.delete(path, version=version))

    def do_deleteall(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        zk = self._client()
        order: list[str] = []
        queue = deque([path])
        while queue:  # breadth first, then delete deepest first, as ZKUtil.deleteRecursive does
            node = queue.popleft()
            order.append(node)
            kids = self._call(node, functools.partial(zk.get_children, node))
            queue.extend(node.rstrip("/") + "/" + k for k in kids)
        for node in reversed(order):
            try:
                self._call(node, functools.partial(zk.delete, node))
            except CliError as exc:
                if not str(exc).startswith(FRIENDLY[-101]):  # gone meanwhile: fine
                    raise

    def do_getAcl(self, opts: dict, args: list[str]) -> None:  # noqa: N802 - zkCli's command name
        path = args[0]
        validate_path(path)
        zk = self._client()
        acls, stat = self._call(path, lambda: zk.get_acls(path))
        for acl in acls:
            self.out.write(f"'{acl.id.scheme},'{acl.id.id}\n: {perm_string(acl.perms)}\n")
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_setAcl(self, opts: dict, args: list[str]) -> None:  # noqa: N802
        path, text = args
        validate_path(path)
        acls = parse_acl(text, self.err)
        if acls is None:
            raise CliError("Acl is not valid : null")
        version = self._int(opts["v"], "version") if "v" in opts else -1
        zk = self._client()
        if opts.get("R"):  # the whole subtree; a failure is printed as zkCli prints it, and is not fatal
            queue, node = deque([path]), path
            try:
                while queue:
                    node = queue.popleft()
                    zk.set_acls(node, acls)
                    queue.extend(node.rstrip("/") + "/" + k for k in zk.get_children(node))
            except KazooException as exc:
                code = getattr(exc, "code", None)
                name = CODE_NAMES.get(code, type(exc).__name__) if isinstance(code, int) else type(exc).__name__
                self.out.write(f"KeeperErrorCode = {name} for {node}")
            return
        stat = self._call(path, lambda: zk.set_acls(path, acls, version=version))
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_sync(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        zk = self._client()
        self._call(path, lambda: zk.sync(path))
        self.out.write("Sync is OK\n")

    def do_addauth(self, opts: dict, args: list[str]) -> None:
        if len(args) < 2:
            raise CliError(SPECS["addauth"].usage)
        zk = self._client()
        scheme, auth = args
        self._call(None, lambda: zk.add_auth(scheme, auth))

    def do_whoami(self, opts: dict, args: list[str]) -> None:
        infos = self._call(None, lambda: self._raw(rq.WhoAmI()))
        self.out.write("Auth scheme: User\n" + "".join(f"{scheme}: {user}\n" for scheme, user in infos))

    def do_getEphemerals(self, opts: dict, args: list[str]) -> None:  # noqa: N802
        path = args[0] if args else "/"
        validate_path(path)
        assert self.zk is not None
        found = self._call(path, lambda: self._raw(rq.GetEphemerals(self._full(path))))
        self.out.write("[" + ", ".join(self.zk.unchroot(p) for p in found) + "]\n")

    def do_getAllChildrenNumber(self, opts: dict, args: list[str]) -> None:  # noqa: N802
        path = args[0]
        validate_path(path)
        number = self._call(path, lambda: self._raw(rq.GetAllChildrenNumber(self._full(path))))
        self.out.write(f"{number}\n")

    def do_addWatch(self, opts: dict, args: list[str]) -> None:  # noqa: N802
        mode_name = str(opts.get("m", "PERSISTENT_RECURSIVE"))
        modes = {"PERSISTENT": rq.PERSISTENT_WATCH, "PERSISTENT_RECURSIVE": rq.PERSISTENT_RECURSIVE_WATCH}
        if mode_name not in modes:
            raise CliError(ADDWATCH_USAGE)
        path = args[0]
        validate_path(path)
        self._call(path, lambda: self._raw(rq.AddWatch(self._full(path), modes[mode_name])))

    def do_removewatches(self, opts: dict, args: list[str]) -> None:
        path = args[0]
        validate_path(path)
        kind = rq.WATCHER_CHILDREN if opts.get("c") else rq.WATCHER_DATA if opts.get("d") else rq.WATCHER_ANY
        zk = self._client()
        if opts.get("l"):  # local only: forget what this client would have been told
            full = self._full(path)
            had = False
            if kind in (rq.WATCHER_DATA, rq.WATCHER_ANY):
                had |= bool(zk._data_watchers.pop(full, None))
            if kind in (rq.WATCHER_CHILDREN, rq.WATCHER_ANY):
                had |= bool(zk._child_watchers.pop(full, None))
            if not had:
                raise CliError(f"KeeperErrorCode = No such watcher for {path}")
            return
        self._call(path, lambda: self._raw(rq.RemoveWatches(self._full(path), kind)))
        full = self._full(path)
        if kind in (rq.WATCHER_DATA, rq.WATCHER_ANY):
            zk._data_watchers.pop(full, None)
        if kind in (rq.WATCHER_CHILDREN, rq.WATCHER_ANY):
            zk._child_watchers.pop(full, None)

    def do_config(self, opts: dict, args: list[str]) -> None:
        zk = self._client()
        data, stat = self._call(CONFIG, lambda: zk.get(
            CONFIG, watch=self._noop_watch if opts.get("w") else None))
        text = self._data(data) if data else ""
        if opts.get("c"):
            self.out.write(client_config(text) + "\n")
        else:
            self.out.write(text + ("\n" if text and not text.endswith("\n") else ""))
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_reconfig(self, opts: dict, args: list[str]) -> None:
        """Change the ensemble's membership (the server checks everything again)."""
        zk = self._client()
        whole = "file" in opts or "members" in opts
        if not whole and "add" not in opts and "remove" not in opts:
            raise CliError(SPECS["reconfig"].usage)
        version = -1
        if "v" in opts:
            try:
                version = int(str(opts["v"]), 16)
            except ValueError:
                raise CliError("-v must be followed by a long (configuration version)")
        if whole and ("add" in opts or "remove" in opts):
            raise CliError("Can't use -file or -members together with -add or -remove (mixing incremental and "
                           "non-incremental modes is not allowed)")
        if "file" in opts and "members" in opts:
            raise CliError("Can't use -file and -members together (conflicting non-incremental modes)")
        joining = str(opts["add"]).lower() if "add" in opts else None
        leaving = str(opts["remove"]).lower() if "remove" in opts else None
        members = str(opts["members"]).lower() if "members" in opts else None
        if "file" in opts:
            members = _members_from_file(str(opts["file"]))
        # no path: errors read "Insufficient permission : ", as zkCli words them for reconfig
        data, stat = self._call("", lambda: zk.reconfig(joining, leaving, members, from_config=version))
        self.out.write("Committed new configuration:\n" + self._data(data) + "\n")
        if opts.get("s"):
            self.out.write(format_stat(stat))

    def do_printwatches(self, opts: dict, args: list[str]) -> None:
        if not args:
            self.out.write(f"printwatches is {'on' if self.print_watches else 'off'}\n")
        elif args[0] in ("on", "off"):
            self.print_watches = args[0] == "on"
        else:
            raise CliError(SPECS["printwatches"].usage)

    def do_connect(self, opts: dict, args: list[str]) -> None:
        self.connect(args[0] if args else None)

    def do_close(self, opts: dict, args: list[str]) -> None:
        self.close()

    def do_history(self, opts: dict, args: list[str]) -> None:
        first = max(0, len(self.history) - 11)
        for i in range(first, len(self.history)):
            self.out.write(f"{i} - {self.history[i]}\n")

    def do_redo(self, opts: dict, args: list[str]) -> None:
        try:
            index = int(args[0])
        except ValueError:
            raise CliError(f"{args[0]} is not a valid command index")
        if not 0 <= index < len(self.history) - 1:
            raise CliError("Command index out of range")
        line = self.history[index]
        self.history[-1] = line  # redo records the command it ran, as zkCli does
        code = self.execute(split_line(line), record=False)
        if code:
            raise _Silent(str(code))  # the message is never shown; the exit status stays 1

    def do_quit(self, opts: dict, args: list[str]) -> None:
        raise Quit()

    def do_version(self, opts: dict, args: list[str]) -> None:
        from zkops import __version__

        self.out.write(f"ZooKeeper CLI version: 3.8.0-zkops-{__version__}\n")


class Quit(Exception):
    """``quit``: leave the shell."""


class _Silent(CliError):
    """An error already reported by a nested command."""

    def __str__(self) -> str:
        return ""


def _members_from_file(path: str) -> str:
    """``reconfig -file``: the membership in a dynamic config file, checked as zkCli checks it."""
    from zkops.server.config import ConfigError, parse_server_line, read_properties
    from zkops.server.membership import Membership

    try:
        with open(path, encoding="utf-8") as f:
            rows = read_properties(f.read(), path)
        servers = {}
        for _, key, value in rows:
            if key.startswith("server."):
                sid = int(key[7:])
                servers[sid] = parse_server_line(sid, value, path)
        if not servers:
            raise ConfigError("no server.N lines")
        return Membership(servers).text()
    except OSError as exc:  # worded as Java's FileNotFoundException, which zkCli appends
        raise CliError(f"Error processing {path}{path} ({exc.strerror})")
    except (ValueError, ConfigError) as exc:
        raise CliError(f"Error processing {path}{exc}")


def client_config(text: str) -> str:
    """``config -c``: the client's view of the membership: ``host:port,...`` then the version."""
    servers, version = [], ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("server.") and ";" in value:
            peer, client = value.split(";", 1)
            host, _, port = client.rpartition(":")
            if host in ("", "0.0.0.0"):
                host = peer.split(":")[0]
            servers.append(f"{host}:{port}")
        elif key == "version":
            version = value
    return ",".join(servers) + (f" {version}" if version else "")
