"""ACL schemes and checks: world, auth, digest, ip, super (and x509/sasl ids when present).

Mirrors ZooKeeper's rules: a session carries a list of authenticated Ids; a node's ACL
grants permissions to Ids; ``super`` passes every check; "auth" ACL entries are
replaced at create/setACL time by the session's authenticated Ids.

base64, hashlib (OpenSSL) and ipaddress are imported where they are used: they cost
start-up time, and many servers never see a digest or ip ACL.
"""

from __future__ import annotations

from .codes import Err, Perm, ZkError
from .records import ACL, Id

WORLD_ANYONE = Id("world", "anyone")
OPEN_ACL_UNSAFE = (ACL(Perm.ALL, WORLD_ANYONE),)
READ_ACL_UNSAFE = (ACL(Perm.READ, WORLD_ANYONE),)
SUPER_ID = Id("super", "")

# schemes whose ids count as "authenticated" for the auth scheme and for whoAmI
AUTHENTICATED_SCHEMES = frozenset({"digest", "sasl", "x509", "super"})


def digest(user_password: str) -> str:
    """user:password -> user:base64(sha1(user:password)), as DigestAuthenticationProvider."""
    import base64
    import hashlib

    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode("utf-8")).digest()
    return f"{user}:{base64.b64encode(sha).decode('ascii')}"


def _ip_matches(client: str | None, spec: str | None) -> bool:
    import ipaddress

    if spec is None:
        # only in an ACL no client could set (fixup_acl refuses a null ip id): a damaged
        # snapshot's; the request fails, as it always has
        raise TypeError("an ip ACL entry without an address")
    if client is None:
        return False  # what ipaddress says of None: not an address
    try:
        if "/" in spec:
            net = ipaddress.ip_network(spec, strict=False)
        else:
            net = ipaddress.ip_network(spec)
        return ipaddress.ip_address(client) in net
    except ValueError:
        return False


def _valid_id(ident: Id) -> bool:
    scheme, value = ident.scheme, ident.id
    if value is None:
        return False
    if scheme == "world":
        return value == "anyone"
    if scheme == "digest":
        return len(value.split(":")) == 2 and not value.endswith(":")  # Java's split drops a trailing ""
    if scheme == "ip":
        import ipaddress

        try:
            ipaddress.ip_network(value, strict=False)
            return True
        except ValueError:
            return False
    if scheme in ("sasl", "x509"):
        return bool(value)
    return False  # "super" and "world" ids other than anyone: Apache has no provider for them


class AclCheck:
    """Permission checks against one session's auth ids."""

    __slots__ = ()

    @staticmethod
    def allowed(perm: int, acl: tuple[ACL, ...] | list[ACL] | None, auth: list[Id]) -> bool:
        if not acl:
            return True
        for a in auth:
            if a.scheme == "super":
                return True
        for entry in acl:
            if not entry.perms & perm:
                continue
            eid = entry.id
            scheme = eid.scheme
            if scheme == "world" and eid.id == "anyone":
                return True
            for a in auth:
                if a.scheme != scheme:
                    continue
                if scheme == "ip":
                    if _ip_matches(a.id, eid.id):
                        return True
                elif a.id == eid.id:
                    return True
        return False

    @staticmethod
    def check(perm: int, acl: tuple[ACL, ...] | list[ACL] | None, auth: list[Id], path: str | None = None) -> None:
        if not AclCheck.allowed(perm, acl, auth):
            raise ZkError(Err.NOAUTH, path)


# an ACL list's value: (perms, scheme, id) of each entry (a scheme or id may be null on the wire)
AclKey = tuple[tuple[int, str | None, str | None], ...]
_fixed: dict[AclKey, tuple[ACL, ...]] = {}


def acl_key(acl: list[ACL] | tuple[ACL, ...]) -> AclKey:
    """An ACL list's value as a hashable key; one entry (the usual case) without a generator."""
    if len(acl) == 1:
        a = acl[0]
        return ((a.perms, a.id.scheme, a.id.id),)
    return tuple((a.perms, a.id.scheme, a.id.id) for a in acl)


def fixup_acl(acl: list[ACL] | None, auth: list[Id], path: str | None = None) -> tuple[ACL, ...]:
    """Validate a client's ACL and expand ``auth`` entries (PrepRequestProcessor.fixupACL).

    ACLs without the ``auth`` scheme do not depend on the session, so their checked
    form is cached: most creates carry the same one or two ACL lists.
    """
    if not acl:
        raise ZkError(Err.INVALIDACL, path)
    try:
        key = acl_key(acl)
    except AttributeError:
        raise ZkError(Err.INVALIDACL, path)
    cached = _fixed.get(key)
    if cached is not None:
        return cached
    result = _fixup(acl, auth, path)
    if not any(a.id.scheme == "auth" for a in acl):
        if len(_fixed) > 10_000:
            _fixed.clear()
        _fixed[key] = result
    return result


def _fixup(acl: list[ACL], auth: list[Id], path: str | None) -> tuple[ACL, ...]:
    out: list[ACL] = []
    for entry in acl:
        if entry is None or entry.id is None or entry.id.scheme is None:
            raise ZkError(Err.INVALIDACL, path)
        if entry.id.id is None and entry.id.scheme in ("world", "digest", "ip"):
            raise ZkError(Err.MARSHALLINGERROR, path)  # Apache's NullPointerException
        if entry.id.scheme == "auth":
            # in the order of the connection's id set, as Apache iterates it
            authed = [a for a in id_set_order(auth) if a.scheme in AUTHENTICATED_SCHEMES and a.scheme != "super"]
            if not authed:
                raise ZkError(Err.INVALIDACL, path)
            for a in authed:
                item = ACL(entry.perms, Id(a.scheme, a.id))
                if item not in out:
                    out.append(item)
        else:
            if not _valid_id(entry.id):
                raise ZkError(Err.INVALIDACL, path)
            item = ACL(entry.perms, Id(entry.id.scheme, entry.id.id))
            if item not in out:
                out.append(item)
    return tuple(out)


def authenticate(scheme: str, auth: bytes | None, super_digest: str | None, peer: str = "") -> list[Id]:
    """Ids granted by an addauth packet; raises ZkError(AUTHFAILED) for an unknown scheme.
    The ip scheme grants the connection's own address, as Apache's IP provider does."""
    if scheme == "ip":
        return [Id("ip", peer)]
    if scheme == "digest":
        value = (auth or b"").decode("utf-8", "replace")
        ident = digest(value)
        ids = [Id("digest", ident)]
        if super_digest and ident == super_digest:
            ids.append(SUPER_ID)
        return ids
    raise ZkError(Err.AUTHFAILED)


def user_name(ident: Id) -> str | None:
    """What whoAmI reports for an id (the user part of a digest id)."""
    value = ident.id
    if ident.scheme == "digest":
        if value is None:  # a session's digest ids are all digest()'s: never null
            raise TypeError("a digest id without a value")
        return value.split(":", 1)[0]
    return value


class AclCache:
    """Interns ACL lists so 100k nodes with the same ACL share one tuple."""

    __slots__ = ("_by_value",)

    def __init__(self) -> None:
        self._by_value: dict[AclKey, tuple[ACL, ...]] = {}

    def intern(self, acl: tuple[ACL, ...] | list[ACL]) -> tuple[ACL, ...]:
        key = acl_key(acl)
        found = self._by_value.get(key)
        if found is None:
            found = tuple(acl)
            self._by_value[key] = found
        return found


def _java_string_hash(s: str) -> int:
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h


def id_set_order(ids: list[Id]) -> list[Id]:
    """A connection's ids in the order Apache keeps them: a set backed by a ConcurrentHashMap
    (16 buckets for a handful of ids), bucket by Id.hashCode, first come first within one."""
    size = 16
    while len(ids) > size * 3 // 4:
        size *= 2

    def bucket(i: Id) -> int:
        h = (37 * (37 * 17 + _java_string_hash(i.scheme or "")) + _java_string_hash(i.id or "")) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (size - 1)

    return sorted(ids, key=bucket)
