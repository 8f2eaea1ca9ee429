"""ZooKeeper's numeric constants: opcodes, error codes, event types, states, flags.

Values are facts of the wire protocol (ZooDefs.OpCode, KeeperException.Code,
Watcher.Event, CreateMode, ZooDefs.Perms); the names follow ZooKeeper's.

Opcodes, event types and states are plain int class attributes, not IntEnum members:
every request compares its opcode against a dozen of them, and an IntEnum member costs
several times a plain int to look up. ``name_of`` gives a value's name back for logs.
"""

from __future__ import annotations

from enum import IntEnum


class Op:
    notification = 0
    create = 1
    delete = 2
    exists = 3
    getData = 4
    setData = 5
    getACL = 6
    setACL = 7
    getChildren = 8
    sync = 9
    ping = 11
    getChildren2 = 12
    check = 13
    multi = 14
    create2 = 15
    reconfig = 16
    checkWatches = 17
    removeWatches = 18
    createContainer = 19
    deleteContainer = 20
    createTTL = 21
    multiRead = 22
    auth = 100
    setWatches = 101
    sasl = 102
    getEphemerals = 103
    getAllChildrenNumber = 104
    setWatches2 = 105
    addWatch = 106
    whoAmI = 107
    createSession = -10
    closeSession = -11
    error = -1


class Err(IntEnum):
    OK = 0
    SYSTEMERROR = -1
    RUNTIMEINCONSISTENCY = -2
    DATAINCONSISTENCY = -3
    CONNECTIONLOSS = -4
    MARSHALLINGERROR = -5
    UNIMPLEMENTED = -6
    OPERATIONTIMEOUT = -7
    BADARGUMENTS = -8
    UNKNOWNSESSION = -12
    NEWCONFIGNOQUORUM = -13
    RECONFIGINPROGRESS = -14
    APIERROR = -100
    NONODE = -101
    NOAUTH = -102
    BADVERSION = -103
    NOCHILDRENFOREPHEMERALS = -108
    NODEEXISTS = -110
    NOTEMPTY = -111
    SESSIONEXPIRED = -112
    INVALIDCALLBACK = -113
    INVALIDACL = -114
    AUTHFAILED = -115
    SESSIONMOVED = -118
    NOTREADONLY = -119
    EPHEMERALONLOCALSESSION = -120
    NOWATCHER = -121
    REQUESTTIMEOUT = -122
    RECONFIGDISABLED = -123
    SESSIONCLOSEDREQUIRESASLAUTH = -124
    QUOTAEXCEEDED = -125
    THROTTLEDOP = -127


class ZkError(Exception):
    """A request failed with a ZooKeeper error code; the code goes on the wire."""

    def __init__(self, code: Err, path: str | None = None) -> None:
        super().__init__(f"{code.name}{'' if path is None else ' for ' + path}")
        self.code = code
        self.path = path


class EventType:
    NONE = -1
    NodeCreated = 1
    NodeDeleted = 2
    NodeDataChanged = 3
    NodeChildrenChanged = 4
    DataWatchRemoved = 5
    ChildWatchRemoved = 6
    PersistentWatchRemoved = 7


class KeeperState:
    Disconnected = 0
    SyncConnected = 3
    AuthFailed = 4
    ConnectedReadOnly = 5
    SaslAuthenticated = 6
    Expired = -112
    Closed = 7


def name_of(constants: type, value: int) -> str | None:
    """The name ``value`` has in a constants class such as Op, None if it has none."""
    names = _NAMES.get(constants)
    if names is None:
        names = _NAMES[constants] = {v: k for k, v in vars(constants).items()
                                     if isinstance(v, int) and not k.startswith("_")}
    return names.get(value)


_NAMES: dict[type, dict[int, str]] = {}


class Xid:
    """Reserved xids: negative values the client uses for control traffic."""

    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8
    SASL = -9  # not sent by 3.8 clients; kept for completeness


class Perm:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class CreateFlag:
    """CreateMode as the wire's integer flag."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    ALL = frozenset(range(7))
    SEQUENTIAL = frozenset({2, 3, 6})
    EPHEMERALS = frozenset({1, 3})
    TTL = frozenset({5, 6})


class AddWatchMode:
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class WatcherType:
    """The `type` of removeWatches / checkWatches."""

    CHILDREN = 1
    DATA = 2
    ANY = 3


# ephemeralOwner values that mark a node as a container or a TTL node.
CONTAINER_OWNER = -0x8000000000000000
TTL_OWNER_MASK = -0x100000000000000  # 0xFF00000000000000 as a signed long
MAX_TTL = (1 << 40) - 1
