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


class ACL(Record):
    FIELDS = (("perms", "int"), ("id", Id))
    __slots__ = ("perms", "id")


class Stat(Record):
    FIELDS = (
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("dataLength", "int"), ("numChildren", "int"),
        ("pzxid", "long"),
    )
    __slots__ = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "ephemeralOwner", "dataLength", "numChildren", "pzxid")


class StatPersisted(Record):
    FIELDS = (
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("pzxid", "long"),
    )
    __slots__ = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "ephemeralOwner", "pzxid")


class ClientInfo(Record):
    FIELDS = (("authScheme", "ustring"), ("user", "ustring"))
    __slots__ = ("authScheme", "user")


# ---------------------------------------------------------------- connection
class ConnectRequest(Record):
    """The 44-byte form; a 45th byte, when present, is the readOnly flag."""

    FIELDS = (("protocolVersion", "int"), ("lastZxidSeen", "long"), ("timeOut", "int"),
              ("sessionId", "long"), ("passwd", "buffer"))
    __slots__ = ("protocolVersion", "lastZxidSeen", "timeOut", "sessionId", "passwd")


class ConnectResponse(Record):
    FIELDS = (("protocolVersion", "int"), ("timeOut", "int"), ("sessionId", "long"),
              ("passwd", "buffer"))
    __slots__ = ("protocolVersion", "timeOut", "sessionId", "passwd")


class RequestHeader(Record):
    FIELDS = (("xid", "int"), ("type", "int"))
    __slots__ = ("xid", "type")


class ReplyHeader(Record):
    FIELDS = (("xid", "int"), ("zxid", "long"), ("err", "int"))
    __slots__ = ("xid", "zxid", "err")


class MultiHeader(Record):
    FIELDS = (("type", "int"), ("done", "bool"), ("err", "int"))
    __slots__ = ("type", "done", "err")


class AuthPacket(Record):
    FIELDS = (("type", "int"), ("scheme", "ustring"), ("auth", "buffer"))
    __slots__ = ("type", "scheme", "auth")


class WatcherEvent(Record):
    FIELDS = (("type", "int"), ("state", "int"), ("path", "ustring"))
    __slots__ = ("type", "state", "path")


class ErrorResponse(Record):
    FIELDS = (("err", "int"),)
    __slots__ = ("err",)


# ---------------------------------------------------------------- requests
class PathRequest(Record):
    """exists/getData/getChildren/getChildren2 share this shape: path + watch."""

    FIELDS = (("path", "ustring"), ("watch", "bool"))
    __slots__ = ("path", "watch")


class PathOnly(Record):
    """getACL, sync, getAllChildrenNumber, getEphemerals and SyncResponse: one path."""

    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)


class CreateRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("flags", "int"))
    __slots__ = ("path", "data", "acl", "flags")


class CreateTTLRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("flags", "int"),
              ("ttl", "long"))
    __slots__ = ("path", "data", "acl", "flags", "ttl")


class DeleteRequest(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")


class SetDataRequest(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("version", "int"))
    __slots__ = ("path", "data", "version")


class CheckVersionRequest(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")


class SetACLRequest(Record):
    FIELDS = (("path", "ustring"), ("acl", [ACL]), ("version", "int"))
    __slots__ = ("path", "acl", "version")


class SetWatches(Record):
    FIELDS = (("relativeZxid", "long"), ("dataWatches", ["ustring"]),
              ("existWatches", ["ustring"]), ("childWatches", ["ustring"]))
    __slots__ = ("relativeZxid", "dataWatches", "existWatches", "childWatches")


class SetWatches2(Record):
    FIELDS = (("relativeZxid", "long"), ("dataWatches", ["ustring"]),
              ("existWatches", ["ustring"]), ("childWatches", ["ustring"]),
              ("persistentWatches", ["ustring"]), ("persistentRecursiveWatches", ["ustring"]))
    __slots__ = ("relativeZxid", "dataWatches", "existWatches", "childWatches",
                 "persistentWatches", "persistentRecursiveWatches")


class AddWatchRequest(Record):
    FIELDS = (("path", "ustring"), ("mode", "int"))
    __slots__ = ("path", "mode")


class WatchesRequest(Record):
    """checkWatches and removeWatches: path + WatcherType."""

    FIELDS = (("path", "ustring"), ("type", "int"))
    __slots__ = ("path", "type")


class ReconfigRequest(Record):
    FIELDS = (("joiningServers", "ustring"), ("leavingServers", "ustring"),
              ("newMembers", "ustring"), ("curConfigId", "long"))
    __slots__ = ("joiningServers", "leavingServers", "newMembers", "curConfigId")


class SaslToken(Record):
    """GetSASLRequest / SetSASLResponse: one opaque token."""

    FIELDS = (("token", "buffer"),)
    __slots__ = ("token",)


# ---------------------------------------------------------------- responses
class StatResponse(Record):
    """exists, setData and setACL answer with a bare Stat."""

    FIELDS = (("stat", Stat),)
    __slots__ = ("stat",)


class CreateResponse(Record):
    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)


class Create2Response(Record):
    FIELDS = (("path", "ustring"), ("stat", Stat))
    __slots__ = ("path", "stat")


class GetDataResponse(Record):
    FIELDS = (("data", "buffer"), ("stat", Stat))
    __slots__ = ("data", "stat")


class GetChildrenResponse(Record):
    FIELDS = (("children", ["ustring"]),)
    __slots__ = ("children",)


class GetChildren2Response(Record):
    FIELDS = (("children", ["ustring"]), ("stat", Stat))
    __slots__ = ("children", "stat")


class GetACLResponse(Record):
    FIELDS = (("acl", [ACL]), ("stat", Stat))
    __slots__ = ("acl", "stat")


class CountResponse(Record):
    """GetAllChildrenNumberResponse."""

    FIELDS = (("totalNumber", "int"),)
    __slots__ = ("totalNumber",)


class WhoAmIResponse(Record):
    FIELDS = (("clientInfo", [ClientInfo]),)
    __slots__ = ("clientInfo",)


# ---------------------------------------------------------------- txn log
class TxnHeader(Record):
    FIELDS = (("clientId", "long"), ("cxid", "int"), ("zxid", "long"), ("time", "long"),
              ("type", "int"))
    __slots__ = ("clientId", "cxid", "zxid", "time", "type")


class CreateTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("ephemeral", "bool"),
              ("parentCVersion", "int"))
    __slots__ = ("path", "data", "acl", "ephemeral", "parentCVersion")


class CreateContainerTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("parentCVersion", "int"))
    __slots__ = ("path", "data", "acl", "parentCVersion")


class CreateTTLTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("acl", [ACL]), ("parentCVersion", "int"),
              ("ttl", "long"))
    __slots__ = ("path", "data", "acl", "parentCVersion", "ttl")


class DeleteTxn(Record):
    FIELDS = (("path", "ustring"),)
    __slots__ = ("path",)


class SetDataTxn(Record):
    FIELDS = (("path", "ustring"), ("data", "buffer"), ("version", "int"))
    __slots__ = ("path", "data", "version")


class CheckVersionTxn(Record):
    FIELDS = (("path", "ustring"), ("version", "int"))
    __slots__ = ("path", "version")


class SetACLTxn(Record):
    FIELDS = (("path", "ustring"), ("acl", [ACL]), ("version", "int"))
    __slots__ = ("path", "acl", "version")


class CreateSessionTxn(Record):
    FIELDS = (("timeOut", "int"),)
    __slots__ = ("timeOut",)


class CloseSessionTxn(Record):
    FIELDS = (("paths2Delete", ["ustring"]),)
    __slots__ = ("paths2Delete",)


class ErrorTxn(Record):
    FIELDS = (("err", "int"),)
    __slots__ = ("err",)


class Txn(Record):
    """One op of a MultiTxn: its type and its own serialized txn."""

    FIELDS = (("type", "int"), ("data", "buffer"))
    __slots__ = ("type", "data")


class MultiTxn(Record):
    FIELDS = (("txns", [Txn]),)
    __slots__ = ("txns",)


# ---------------------------------------------------------------- files and quorum
class FileHeader(Record):
    FIELDS = (("magic", "int"), ("version", "int"), ("dbid", "long"))
    __slots__ = ("magic", "version", "dbid")


class QuorumPacket(Record):
    FIELDS = (("type", "int"), ("zxid", "long"), ("data", "buffer"), ("authinfo", [Id]))
    __slots__ = ("type", "zxid", "data", "authinfo")


class LearnerInfo(Record):
    FIELDS = (("serverid", "long"), ("protocolVersion", "int"), ("configVersion", "long"))
    __slots__ = ("serverid", "protocolVersion", "configVersion")
