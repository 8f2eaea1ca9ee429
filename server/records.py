"""Every jute record the 3.8 client protocol, the txn log and the quorum use.

Field names and order follow ``zookeeper.jute``; the classes are generated codecs
(see :mod:`zkops.server.jute`).
"""

from __future__ import annotations

from .jute import Record


# ---------------------------------------------------------------- data
class Id(Record):
    FIELDS = (("scheme", "ustring"), ("id", "ustring"))
    __slots__ = ("scheme", "id")
    scheme: str | None
    id: str | None


class ACL(Record):
    FIELDS = (("perms", "int"), ("id", Id))
    __slots__ = ("perms", "id")
    perms: int
    id: Id


class Stat(Record):
    FIELDS = (
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("dataLength", "int"), ("numChildren", "int"),
        ("pzxid", "long"),
    )
    __slots__ = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "ephemeralOwner", "dataLength", "numChildren", "pzxid")
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int


class StatPersisted(Record):
    FIELDS = (
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("pzxid", "long"),
    )
    __slots__ = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "ephemeralOwner", "pzxid")
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    pzxid: int


class ClientInfo(Record):
    FIELDS = (("authScheme", "ustring"), ("user", "ustring"))
    __slots__ = ("authScheme", "user")
    authScheme: str | None
    user: str | None


# ---------------------------------------------------------------- connection
class ConnectRequest(Record):
    """The 44-byte form; a 45th byte, when present, is the readOnly flag."""

    FIELDS = (("protocolVersion", "int"), ("lastZxidSeen", "long"), ("timeOut", "int"),
              ("sessionId", "long"), ("passwd", "buffer"))
    __slots__ = ("protocolVersion", "lastZxidSeen", "timeOut", "sessionId", "passwd")
    protocolVersion: int
    lastZxidSeen: int
    timeOut: int
    sessionId: int
    passwd: bytes | None


class ConnectResponse(Record):
    FIELDS = (("protocolVersion", "int"), ("timeOut", "int"), ("sessionId", "long"),
              ("passwd", "buffer"))
    __slots__ = ("protocolVersion", "timeOut", "sessionId", "passwd")
    protocolVersion: int
    timeOut: int
    sessionId: int
    passwd: bytes | None


class RequestHeader(Record):
    FIELDS = (("xid", "int"), ("type", "int"))
    __slots__ = ("xid", "type")
    xid: int
    type: int


class ReplyHeader(Record):
    FIELDS = (("xid", "int"), ("zxid", "long"), ("err", "int"))
    __slots__ = ("xid", "zxid", "err")
    xid: int
    zxid: int
    err: int


class MultiHeader(Record):
    FIELDS = (("type", "int"), ("done", "bool"), ("err", "int"))
    __slots__ = ("type", "done", "err")
    type: int
    done: bool
    err: int


class AuthPacket(Record):
    FIELDS = (("type", "int"), ("scheme", "ustring"), ("auth", "buffer"))
    __slots__ = ("type", "scheme", "auth")
    type: int
    scheme: str | None
    auth: bytes | None


class WatcherEvent(Record):
    FIELDS = (("type", "int"), ("state", "int"), ("path", "ustring"))
    __slots__ = ("type", "state", "path")
    type: int
    state: int
    path: str | None


class ErrorResponse(Record):
    FIELDS = (("err", "int"),)
    __slots__ = ("err",)
    err: int


# ---------------------------------------------------------------- requests
class PathRequest(Record):
    """exists/getData/getChildren/getChildren2 share this shape: path + watch."""

    FIELDS = (("path", "ustring"), ("watch", "bool"))
    __slots__ = ("path", "watch")
    path: str | None
    watch: bool


class PathOnly(Record):
    """getACL, sync, getAllChildrenNumber, getEphemerals and SyncResponse: one path."""

    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)
    path: str | None


class CreateRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("flags", "int"))
    __slots__ = ("path", "data", "acl", "flags")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int


class CreateTTLRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("flags", "int"),
              ("ttl", "long"))
    __slots__ = ("path", "data", "acl", "flags", "ttl")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int
    ttl: int


class DeleteRequest(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")
    path: str | None
    version: int


class SetDataRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("version", "int"))
    __slots__ = ("path", "data", "version")
    path: str | None
    data: bytes | None
    version: int


class CheckVersionRequest(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")
    path: str | None
    version: int


class SetACLRequest(Record):
    FIELDS = (("path", "ustring"), ("acl", [ACL]), ("version", "int"))
    __slots__ = ("path", "acl", "version")
    path: str | None
    acl: list[ACL] | None
    version: int


class SetWatches(Record):
    FIELDS = (("relativeZxid", "long"), ("dataWatches", ["ustring"]),
              ("existWatches", ["ustring"]), ("childWatches", ["ustring"]))
    __slots__ = ("relativeZxid", "dataWatches", "existWatches", "childWatches")
    relativeZxid: int
    dataWatches: list[str] | None
    existWatches: list[str] | None
    childWatches: list[str] | None


class SetWatches2(Record):
    FIELDS = (("relativeZxid", "long"), ("dataWatches", ["ustring"]),
              ("existWatches", ["ustring"]), ("childWatches", ["ustring"]),
              ("persistentWatches", ["ustring"]), ("persistentRecursiveWatches", ["ustring"]))
    __slots__ = ("relativeZxid", "dataWatches", "existWatches", "childWatches",
                 "persistentWatches", "persistentRecursiveWatches")
    relativeZxid: int
    dataWatches: list[str] | None
    existWatches: list[str] | None
    childWatches: list[str] | None
    persistentWatches: list[str] | None
    persistentRecursiveWatches: list[str] | None


class AddWatchRequest(Record):
    FIELDS = (("path", "ustring"), ("mode", "int"))
    __slots__ = ("path", "mode")
    path: str | None
    mode: int


class WatchesRequest(Record):
    """checkWatches and removeWatches: path + WatcherType."""

    FIELDS = (("path", "ustring"), ("type", "int"))
    __slots__ = ("path", "type")
    path: str | None
    type: int


class ReconfigRequest(Record):
    FIELDS = (("joiningServers", "ustring"), ("leavingServers", "ustring"),
              ("newMembers", "ustring"), ("curConfigId", "long"))
    __slots__ = ("joiningServers", "leavingServers", "newMembers", "curConfigId")
    joiningServers: str | None
    leavingServers: str | None
    newMembers: str | None
    curConfigId: int


class SaslToken(Record):
    """GetSASLRequest / SetSASLResponse: one opaque token."""

    FIELDS = (("token", "buffer"),)
    __slots__ = ("token",)
    token: bytes | None


# ---------------------------------------------------------------- responses
class StatResponse(Record):
    """exists, setData and setACL answer with a bare Stat."""

    FIELDS = (("stat", Stat),)
    __slots__ = ("stat",)
    stat: Stat


class CreateResponse(Record):
    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)
    path: str | None


class Create2Response(Record):
    FIELDS = (("path", "ustring"), ("stat", Stat))
    __slots__ = ("path", "stat")
    path: str | None
    stat: Stat


class GetDataResponse(Record):
    FIELDS = (("data", "buffer"), ("stat", Stat))
    __slots__ = ("data", "stat")
    data: bytes | None
    stat: Stat


class GetChildrenResponse(Record):
    FIELDS = (("children", ["ustring"]),)
    __slots__ = ("children",)
    children: list[str] | None


class GetChildren2Response(Record):
    FIELDS = (("children", ["ustring"]), ("stat", Stat))
    __slots__ = ("children", "stat")
    children: list[str] | None
    stat: Stat


class GetACLResponse(Record):
    FIELDS = (("acl", [ACL]), ("stat", Stat))
    __slots__ = ("acl", "stat")
    acl: list[ACL] | None
    stat: Stat


class CountResponse(Record):
    """GetAllChildrenNumberResponse."""

    FIELDS = (("totalNumber", "int"),)
    __slots__ = ("totalNumber",)
    totalNumber: int


class WhoAmIResponse(Record):
    FIELDS = (("clientInfo", [ClientInfo]),)
    __slots__ = ("clientInfo",)
    clientInfo: list[ClientInfo] | None


# ---------------------------------------------------------------- txn log
class TxnHeader(Record):
    FIELDS = (("clientId", "long"), ("cxid", "int"), ("zxid", "long"), ("time", "long"),
              ("type", "int"))
    __slots__ = ("clientId", "cxid", "zxid", "time", "type")
    clientId: int
    cxid: int
    zxid: int
    time: int
    type: int


class CreateTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("ephemeral", "bool"),
              ("parentCVersion", "int"))
    __slots__ = ("path", "data", "acl", "ephemeral", "parentCVersion")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    ephemeral: bool
    parentCVersion: int


class CreateContainerTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("parentCVersion", "int"))
    __slots__ = ("path", "data", "acl", "parentCVersion")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    parentCVersion: int


class CreateTTLTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("parentCVersion", "int"),
              ("ttl", "long"))
    __slots__ = ("path", "data", "acl", "parentCVersion", "ttl")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    parentCVersion: int
    ttl: int


class DeleteTxn(Record):
    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)
    path: str | None


class SetDataTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("version", "int"))
    __slots__ = ("path", "data", "version")
    path: str | None
    data: bytes | None
    version: int


class CheckVersionTxn(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")
    path: str | None
    version: int


class SetACLTxn(Record):
    FIELDS = (("path", "ustring"), ("acl", [ACL]), ("version", "int"))
    __slots__ = ("path", "acl", "version")
    path: str | None
    acl: list[ACL] | None
    version: int


class CreateSessionTxn(Record):
    FIELDS = (("timeOut", "int"),)
    __slots__ = ("timeOut",)
    timeOut: int


class CloseSessionTxn(Record):
    FIELDS = (("paths2Delete", ["ustring"]),)
    __slots__ = ("paths2Delete",)
    paths2Delete: list[str] | None


class ErrorTxn(Record):
    FIELDS = (("err", "int"),)
    __slots__ = ("err",)
    err: int


class Txn(Record):
    """One op of a MultiTxn: its type and its own serialized txn."""

    FIELDS = (("type", "int"), ("data", "buffer"))
    __slots__ = ("type", "data")
    type: int
    data: bytes | None


class MultiTxn(Record):
    FIELDS = (("txns", [Txn]),)
    __slots__ = ("txns",)
    txns: list[Txn] | None


class TxnDigest(Record):
    """What 3.8 may append after a txn body: the data tree's digest after applying it."""

    FIELDS = (("version", "int"), ("treeDigest", "long"))
    __slots__ = ("version", "treeDigest")
    version: int
    treeDigest: int


class CreateTxnV0(Record):
    """A create from before parentCVersion existed; ZooKeeper still reads these."""

    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("ephemeral", "bool"))
    __slots__ = ("path", "data", "acl", "ephemeral")
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    ephemeral: bool


# ---------------------------------------------------------------- files and quorum
class FileHeader(Record):
    FIELDS = (("magic", "int"), ("version", "int"), ("dbid", "long"))
    __slots__ = ("magic", "version", "dbid")
    magic: int
    version: int
    dbid: int


class QuorumPacket(Record):
    FIELDS = (("type", "int"), ("zxid", "long"), ("data", "buffer"), ("authinfo", [Id]))
    __slots__ = ("type", "zxid", "data", "authinfo")
    type: int
    zxid: int
    data: bytes | None
    authinfo: list[Id] | None


class LearnerInfo(Record):
    FIELDS = (("serverid", "long"), ("protocolVersion", "int"), ("configVersion", "long"))
    __slots__ = ("serverid", "protocolVersion", "configVersion")
    serverid: int
    protocolVersion: int
    configVersion: int
