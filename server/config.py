"""zoo.cfg, read the way Apache ZooKeeper 3.8 reads it (QuorumPeerConfig), into one record.

Why a careful reader: operators bring the zoo.cfg they already have. It is a Java
properties file (``key=value``, ``key: value`` or ``key value``; ``#``/``!`` comments;
backslash escapes and continuation lines), so it is read with Java's rules. A bad value
stops start-up with a ConfigError naming the key, the line, what is wrong and what would
be right; an unknown key only warns (``ServerConfig.warnings``, logged by the caller).
Keys that only mean something to the JVM server (class names, SASL/SSL plumbing) are
accepted quietly. Settings that ZooKeeper takes as ``-D`` system properties are also read
from ``SERVER_JVMFLAGS``/``JVMFLAGS``, with zoo.cfg winning.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .fourletterwords import ALL_WORDS, APACHE_WORDS, DEFAULT_WORDS
from .values import Value

log = logging.getLogger("zkops.server.config")

# The four-letter words Apache ZooKeeper 3.8 knows; "*" in the whitelist means all of them.
KNOWN_4LW = APACHE_WORDS
# zkops adds "elec" (the election timeline); it is allowed by "*" or by name, never by default.
ALL_4LW = frozenset(ALL_WORDS)
# Apache's default is "srvr" alone; zkops' default is in server.fourletterwords.
DEFAULT_4LW = DEFAULT_WORDS

MIN_SNAP_RETAIN_COUNT = 3  # PurgeTxnLog refuses to keep fewer
MIN_SNAP_COUNT = 2  # ZooKeeperServer.getSnapCount resets smaller values to 2
MAX_SERVER_ID = 255  # the server id is the top byte of every session id it creates
PIDFILE_NAME = "zookeeper_server.pid"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # Java int


class ConfigError(ValueError):
    """A zoo.cfg value is wrong; the message names the key, the line and the fix."""


class PeerSpec(Value):
    """One ``server.N`` line."""

    __slots__ = ("sid", "host", "quorum_port", "election_port", "role", "client_host", "client_port")
    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str  # "participant" | "observer"
    client_host: str | None  # from ";[clientAddr:]clientPort", None if absent
    client_port: int | None

    def __init__(self, sid: int, host: str, quorum_port: int, election_port: int, role: str,
                 client_host: str | None, client_port: int | None) -> None:
        set_ = object.__setattr__
        set_(self, "sid", sid)
        set_(self, "host", host)
        set_(self, "quorum_port", quorum_port)
        set_(self, "election_port", election_port)
        set_(self, "role", role)
        set_(self, "client_host", client_host)
        set_(self, "client_port", client_port)


class ServerConfig:
    """Every setting zkops reads, with ZooKeeper's defaults (two deliberate differences, see docs).

    A record as ``@dataclass`` would make it (the fields in this order, the defaults as class
    attributes, equal by every field, unhashable), written out because every server start
    imports it (``values``); the settings after the first three are keywords.
    """

    source: Path | None
    data_dir: Path
    data_log_dir: Path  # defaults to data_dir
    tick_time: int = 2000
    init_limit: int = 10
    sync_limit: int = 5
    client_port: int | None = None  # clientPort, or from this server's server.N line
    client_port_address: str = "0.0.0.0"
    secure_client_port: int | None = None
    max_client_cnxns: int = 60  # 0 = unlimited
    min_session_timeout: int = 0  # resolved: default 2 * tick_time
    max_session_timeout: int = 0  # resolved: default 20 * tick_time
    snap_count: int = 100000
    autopurge_snap_retain_count: int = 3  # values < 3 are raised to 3, as ZooKeeper does (warn)
    autopurge_purge_interval: int = 24  # hours; 0 disables. NOTE: on by default, unlike ZooKeeper
    four_letter_words: frozenset[str] = DEFAULT_4LW  # "4lw.commands.whitelist"; "*" = all known words
    extended_types_enabled: bool = False
    jute_maxbuffer: int = 0xFFFFF
    force_sync: bool = True  # "forceSync=no" -> False
    pre_alloc_size_kb: int = 65536  # "preAllocSize"
    global_outstanding_limit: int = 1000
    container_check_interval_ms: int = 60000  # znode.container.checkIntervalMs
    servers: dict[int, PeerSpec]  # a new dict for each config
    my_id: int | None = None  # from dataDir/myid when servers exist
    peer_type: str = "participant"  # peerType=observer
    standalone_enabled: bool = True
    reconfig_enabled: bool = False
    enforce_quota: bool = False  # zookeeper.enforceQuota
    digest_enabled: bool = True  # zookeeper.digest.enabled: Apache's tree digest with each txn
    readonly_mode_enabled: bool = False  # readonlymode.enabled
    local_sessions_enabled: bool = False
    local_sessions_upgrading_enabled: bool = False
    super_digest: str | None = None  # zookeeper.DigestAuthenticationProvider.superDigest
    admin_enable_server: bool = True
    admin_server_address: str = "0.0.0.0"
    admin_server_port: int = 8080
    metrics_port: int | None = None  # metricsProvider.httpPort
    election_alg: int = 3
    max_cnxns: int = 0
    client_port_workers: int | None = None  # zkops: 1 = a second process does the client port's I/O
    warnings: list[str]  # a new list for each config
    raw: dict[str, str]  # every key as read (a new dict for each config)

    def __init__(self, source: Path | None, data_dir: Path, data_log_dir: Path, **settings: Any) -> None:
        self.source = source
        self.data_dir = data_dir
        self.data_log_dir = data_log_dir
        cls = type(self)
        for name in _CONFIG_FIELDS[3:]:
            if name in settings:
                value = settings.pop(name)
            elif name in _NEW_EACH_TIME:
                value = _NEW_EACH_TIME[name]()
            else:
                value = getattr(cls, name)
            setattr(self, name, value)
        if settings:
            raise TypeError(f"ServerConfig() got an unexpected keyword argument {next(iter(settings))!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in _CONFIG_FIELDS])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in _CONFIG_FIELDS)})"

    @property
    def voters(self) -> dict[int, PeerSpec]:
        """The participants: the servers that vote and count towards a quorum."""
        return {sid: p for sid, p in self.servers.items() if p.role == "participant"}

    @property
    def observers(self) -> dict[int, PeerSpec]:
        """Servers that follow the leader but do not vote."""
        return {sid: p for sid, p in self.servers.items() if p.role == "observer"}

    @property
    def is_ensemble(self) -> bool:
        """True when this server must join a quorum (QuorumPeerConfig.isDistributed).

        A single participant line with standaloneEnabled=true runs standalone, as ZooKeeper does.
        """
        return bool(self.servers) and (len(self.voters) > 1 or not self.standalone_enabled)


_CONFIG_FIELDS = tuple(ServerConfig.__annotations__)  # in the order the class declares them
_NEW_EACH_TIME: dict[str, Callable[[], object]] = {"servers": dict, "warnings": list, "raw": dict}


# ------------------------------------------------------------------ Java properties syntax
_WS = " \t\f"
_JAVA_TRIM = "".join(chr(i) for i in range(0x21))  # String.trim() drops every char <= U+0020


def java_trim(text: str) -> str:
    """Strip what Java's String.trim() strips (ZooKeeper trims every key and value)."""
    return text.strip(_JAVA_TRIM)


def _unescape(text: str, line: int, source: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 == len(text):
            out.append(c)
            i += 1
            continue
        c = text[i + 1]
        if c == "u":
            digits = text[i + 2:i + 6]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ConfigError(f"{source}:{line}: malformed \\uxxxx escape {text[i:i + 6]!r}: "
                                  "write \\u followed by exactly four hex digits, or \\\\ for a backslash")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(c, c))
        i += 2
    joined = "".join(out)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in joined):  # \u escapes are UTF-16 code units
        joined = joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined


def _ends_in_continuation(line: str) -> bool:
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1


def read_properties(text: str, source: str = "zoo.cfg") -> list[tuple[int, str, str]]:
    """(line number, key, value) for every entry, in file order, as java.util.Properties.load
    reads it, with keys and values trimmed as ZooKeeper trims them."""
    if text.startswith("\ufeff"):
        text = text[1:]
    parts = re.split(r"(\r\n|\r|\n)", text)
    natural, seps = parts[0::2], parts[1::2]
    out: list[tuple[int, str, str]] = []
    i = 0
    while i < len(natural):
        first = i + 1
        line = natural[i].lstrip(_WS)
        i += 1
        if not line or line[0] in "#!":
            continue
        at_eof = False
        while _ends_in_continuation(line):
            line = line[:-1]
            # Java returns the line when the file ends right after the backslash or its \n or \r
            # (for \r\n it reads on past the \n, finds nothing, and drops an empty line)
            if i >= len(natural) or (i == len(natural) - 1 and not natural[i] and seps[i - 1] != "\r\n"):
                at_eof, i = True, len(natural)
                break
            nxt = natural[i].lstrip(_WS)
            i += 1
            if not line and nxt[:1] in ("#", "!"):
                break  # Java 9+: after a lone backslash the logical line is still empty, so a comment
            line += nxt
        if not line and not at_eof:  # Java keeps an empty entry only when the file ends there
            continue
        # the key ends at the first unescaped '=', ':' or whitespace
        k = 0
        while k < len(line):
            c = line[k]
            if c == "\\":
                k += 2
                continue
            if c in "=:" or c in _WS:
                break
            k += 1
        key_raw, rest = line[:k], line[k:]
        rest = rest.lstrip(_WS)
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(_WS)
        key = java_trim(_unescape(key_raw, first, source))
        value = java_trim(_unescape(rest, first, source))
        out.append((first, key, value))
    return out


def _escape(text: str, what: str) -> str:
    if text != java_trim(text):
        raise ValueError(f"{what}={text!r} cannot be written to zoo.cfg: ZooKeeper trims leading and "
                         "trailing whitespace from every value")
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[ch])
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:  # \uXXXX, in UTF-16 code units as Java reads them
            units = ch.encode("utf-16-be", "surrogatepass")
            out += [f"\\u{int.from_bytes(units[j:j + 2], 'big'):04x}" for j in range(0, len(units), 2)]
        else:
            out.append(ch)
    return "".join(out)


# ------------------------------------------------------------------ values and converters
class _Value(Value):
    __slots__ = ("key", "text", "where", "line")
    key: str
    text: str
    where: str  # "zoo.cfg:12" or "JVMFLAGS -Djute.maxbuffer"
    line: int  # 0 when the value did not come from a file line

    def __init__(self, key: str, text: str, where: str, line: int = 0) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "line", line)


def _fail(v: _Value, problem: str, fix: str) -> ConfigError:
    shown = v.text if v.text else "(empty)"
    return ConfigError(f"{v.where}: {v.key}={shown}: {problem}; {fix}")


_DEC = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX = re.compile(r"(?:0[xX]|#)[0-9a-fA-F]+", re.ASCII)


def _integer(lo: int = _INT_MIN, hi: int = _INT_MAX, hex_ok: bool = False) -> Callable[[_Value], int]:
    """A Java int (Integer.parseInt; Integer.decode's 0x form where ZooKeeper reads a -D property)."""

    def conv(v: _Value) -> int:
        if _DEC.fullmatch(v.text):
            n = int(v.text)
        elif hex_ok and _HEX.fullmatch(v.text):
            n = int(v.text.lstrip("#").removeprefix("0x").removeprefix("0X"), 16)
        else:
            example = _EXAMPLES.get(v.key, max(lo, 1))
            raise _fail(v, "not a whole number", f"write digits only, e.g. {v.key}={example}")
        if n < lo:
            raise _fail(v, f"must be at least {lo}", f"use a value >= {lo}")
        if n > hi:
            raise _fail(v, f"must be at most {hi}", f"use a value <= {hi}")
        return n

    return conv


def _port(v: _Value) -> int:
    if not _DEC.fullmatch(v.text):
        raise _fail(v, "not a port number", "use a TCP port between 1 and 65535")
    n = int(v.text)
    if not 1 <= n <= 65535:
        raise _fail(v, f"{n} is outside 1-65535", "use a TCP port between 1 and 65535")
    return n


def _boolean(v: _Value) -> bool:
    low = v.text.lower()
    if low not in ("true", "false"):
        raise _fail(v, "not a boolean", "write true or false")
    return low == "true"


def _yes_no(v: _Value) -> bool:
    low = v.text.lower()
    if low not in ("yes", "no", "true", "false"):
        raise _fail(v, "not yes or no", "write yes (fsync every commit) or no (skip fsync: faster, unsafe)")
    return low in ("yes", "true")


def _host(v: _Value) -> str:
    if not v.text or any(c.isspace() for c in v.text):
        raise _fail(v, "not a host name or address", "write a host name or an IP address such as 0.0.0.0")
    return v.text.removeprefix("[").removesuffix("]") if v.text.startswith("[") else v.text


def _path(v: _Value) -> Path:
    if not v.text:
        raise _fail(v, "no directory given", "write a directory, e.g. /var/lib/zookeeper")
    return Path(v.text)


def _four_letter_words(v: _Value) -> frozenset[str]:
    words = [w.strip() for w in v.text.split(",") if w.strip()]
    if "*" in words:
        return ALL_4LW
    unknown = sorted(set(words) - ALL_4LW)
    if unknown:
        raise _fail(v, f"unknown four-letter word(s) {', '.join(unknown)}",
                    f"list some of {', '.join(sorted(ALL_4LW))} separated by commas, or * for all")
    return frozenset(words)


def _peer_type(v: _Value) -> str:
    low = v.text.lower()
    if low not in ("participant", "observer"):
        raise _fail(v, "not a peer type", "write participant or observer")
    return low


_DIGEST = re.compile(r"[^:]+:[A-Za-z0-9+/]{27}=")


def _super_digest(v: _Value) -> str:
    if not _DIGEST.fullmatch(v.text):
        raise _fail(v, "not a digest", "write user:BASE64(SHA1(user:password)), e.g. the output of "
                    "python3 -c \"import base64,hashlib;print('super:'+base64.b64encode("
                    "hashlib.sha1(b'super:secret').digest()).decode())\"")
    return v.text


def _election_alg(v: _Value) -> int:
    n = _integer()(v)
    if n != 3:
        raise _fail(v, "only electionAlg 3 (fast leader election) exists since ZooKeeper 3.6",
                    "write electionAlg=3 or remove the line")
    return n


class _Setting(Value):
    __slots__ = ("attr", "keys", "conv", "props")
    attr: str
    keys: tuple[str, ...]  # zoo.cfg spellings; the first is the one render_config writes
    conv: Callable[[_Value], object]
    props: tuple[str, ...]  # JVM -D system properties ZooKeeper reads for the same thing

    def __init__(self, attr: str, keys: tuple[str, ...], conv: Callable[[_Value], object],
                 props: tuple[str, ...] = ()) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "conv", conv)
        object.__setattr__(self, "props", props)

    @property
    def spellings(self) -> tuple[str, ...]:
        """Keys accepted in zoo.cfg: ours, and the JVM property names (so they are not lost)."""
        return self.keys + tuple(p for p in self.props if p not in self.keys)


_SETTINGS: tuple[_Setting, ...] = (
    _Setting("tick_time", ("tickTime",), _integer(1)),
    _Setting("init_limit", ("initLimit",), _integer(0)),
    _Setting("sync_limit", ("syncLimit",), _integer(0)),
    _Setting("data_dir", ("dataDir",), _path),
    _Setting("data_log_dir", ("dataLogDir",), _path),
    _Setting("client_port", ("clientPort",), _port),
    _Setting("client_port_address", ("clientPortAddress",), _host),
    _Setting("secure_client_port", ("secureClientPort",), _port),
    _Setting("max_client_cnxns", ("maxClientCnxns",), _integer(0)),
    _Setting("min_session_timeout", ("minSessionTimeout",), _integer(-1)),
    _Setting("max_session_timeout", ("maxSessionTimeout",), _integer(-1)),
    _Setting("snap_count", ("snapCount",), _integer(hex_ok=True), ("zookeeper.snapCount",)),
    _Setting("autopurge_snap_retain_count", ("autopurge.snapRetainCount",), _integer()),
    _Setting("autopurge_purge_interval", ("autopurge.purgeInterval",), _integer(0)),
    _Setting("four_letter_words", ("4lw.commands.whitelist",), _four_letter_words,
             ("zookeeper.4lw.commands.whitelist",)),
    _Setting("extended_types_enabled", ("extendedTypesEnabled", "zookeeper.extendedTypesEnabled"), _boolean,
             ("zookeeper.extendedTypesEnabled",)),
    _Setting("jute_maxbuffer", ("jute.maxbuffer",), _integer(1, hex_ok=True), ("jute.maxbuffer",)),
    _Setting("force_sync", ("forceSync", "zookeeper.forceSync"), _yes_no, ("zookeeper.forceSync",)),
    _Setting("pre_alloc_size_kb", ("preAllocSize", "zookeeper.preAllocSize"), _integer(1, hex_ok=True),
             ("zookeeper.preAllocSize",)),
    _Setting("global_outstanding_limit", ("globalOutstandingLimit", "zookeeper.globalOutstandingLimit"),
             _integer(1, hex_ok=True), ("zookeeper.globalOutstandingLimit",)),
    _Setting("container_check_interval_ms", ("znode.container.checkIntervalMs",), _integer(1, hex_ok=True),
             ("znode.container.checkIntervalMs",)),
    _Setting("peer_type", ("peerType",), _peer_type),
    _Setting("standalone_enabled", ("standaloneEnabled",), _boolean),
    _Setting("reconfig_enabled", ("reconfigEnabled",), _boolean),
    _Setting("enforce_quota", ("enforceQuota", "zookeeper.enforceQuota"), _boolean, ("zookeeper.enforceQuota",)),
    _Setting("digest_enabled", ("digest.enabled", "zookeeper.digest.enabled"), _boolean,
             ("zookeeper.digest.enabled",)),
    _Setting("readonly_mode_enabled", ("readonlymode.enabled",), _boolean, ("readonlymode.enabled",)),
    _Setting("local_sessions_enabled", ("localSessionsEnabled",), _boolean),
    _Setting("local_sessions_upgrading_enabled", ("localSessionsUpgradingEnabled",), _boolean),
    _Setting("super_digest", ("DigestAuthenticationProvider.superDigest",
                              "zookeeper.DigestAuthenticationProvider.superDigest"), _super_digest,
             ("zookeeper.DigestAuthenticationProvider.superDigest",)),
    _Setting("admin_enable_server", ("admin.enableServer", "zookeeper.admin.enableServer"), _boolean,
             ("zookeeper.admin.enableServer",)),
    _Setting("admin_server_address", ("admin.serverAddress", "zookeeper.admin.serverAddress"), _host,
             ("zookeeper.admin.serverAddress",)),
    _Setting("admin_server_port", ("admin.serverPort", "zookeeper.admin.serverPort"), _port,
             ("zookeeper.admin.serverPort",)),
    _Setting("metrics_port", ("metricsProvider.httpPort",), _port),
    _Setting("election_alg", ("electionAlg",), _election_alg),
    _Setting("max_cnxns", ("maxCnxns", "zookeeper.maxCnxns"), _integer(0), ("zookeeper.maxCnxns",)),
    _Setting("client_port_workers", ("clientPortWorkers",), _integer(0, 1)),
)
_SETTING_KEYS = {k for s in _SETTINGS for k in s.spellings}
_EXAMPLES: dict[str, object] = {
    k: default for s in _SETTINGS if (default := getattr(ServerConfig, s.attr, None)) is not None
    for k in (*s.keys, *s.props) if isinstance(default, int) and not isinstance(default, bool)
}

# Keys only the JVM server needs (class names, SASL/SSL/JAAS plumbing, JVM tuning): accepted, unused.
_JVM_ONLY_PREFIXES = ("authProvider.", "ssl.", "sslQuorum", "quorum.auth", "quorum.cnxn.threads.size",
                      "jvm.pause.", "metricsProvider.", "serverCnxnFactory", "clientCnxnSocket",
                      "zookeeper.", "kerberos.", "jaasLoginRenew", "java.", "javax.", "netty.",
                      "admin.commandURL", "admin.idleTimeout", "admin.portUnification", "admin.forceHttps",
                      "portUnification", "quorumListenOnAllIPs", "clientPortListenBacklog",
                      "connectToLearnerMasterLimit", "cnxTimeout", "electionPortBindRetry",
                      "fsync.warningthresholdms", "audit.enable", "syncEnabled", "secureClientPortAddress",
                      "multiAddress.", "snapshot.trust.empty",
                      "snapshot.compression.method", "requestThrottle", "learner.", "leaderServes",
                      "flushDelay", "maxWriteQueuePollTime", "maxBatchSize", "serializeLastProcessedZxid")
# Keys that change ZooKeeper's behaviour in ways zkops does not implement: warned about by name.
_UNSUPPORTED = {
    "skipACL": "ACLs are always checked",
    "snapSizeLimitInKb": "snapshots are never skipped for size",
    "txnLogSizeLimitInKb": "txn logs roll by count, not size",
    "sessionRequireClientSASLAuth": "SASL is not implemented",
    "observerMasterPort": "observers always follow the leader",
    "oraclePath": "the oracle quorum (two-server fallback) is not implemented",
}
# Quorum options that, turned on, would make a zkops server misbehave beside Apache servers
# (silently not doing what the ensemble relies on): refused at start-up, naming the key.
_REFUSED_WHEN_TRUE = {
    "sslQuorumReloadCertFiles": "zkops loads the quorum key and trust stores once, at start-up; remove the key "
                                "(or set it to false) and restart the server after replacing the files",
    "quorum.auth.enableSasl": "quorum SASL is not implemented; remove the quorum.auth.* keys and use sslQuorum=true "
                              "(mutual TLS) to authenticate servers to each other",
    "quorum.auth.learnerRequireSasl": "quorum SASL is not implemented; use sslQuorum=true instead",
    "quorum.auth.serverRequireSasl": "quorum SASL is not implemented; use sslQuorum=true instead",
}
_SERVER_KEY = re.compile(r"server\.(.*)")


# ------------------------------------------------------------------ server.N lines
def _host_and_ports(text: str, where: str, what: str) -> list[str]:
    """ZooKeeper's ConfigUtils.getHostAndPort: ``[v6]:a:b`` or ``host:a:b``, split on ':'."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"{where}: {what} {text!r} starts with '[' but has no ']': "
                              "write IPv6 addresses as [addr]:port")
        rest = text[end + 1:]
        if rest and (not rest.startswith(":") or len(rest) == 1):
            raise ConfigError(f"{where}: {what} {text!r}: expected ':' and a port after ']'")
        return [text[1:end], *(rest[1:].split(":") if rest else [])]
    return text.split(":")


_LINE_FORM = "host:quorumPort:electionPort[:participant|:observer][;[clientAddress:]clientPort]"


def parse_server_line(sid: int, value: str, where: str = "server line") -> PeerSpec:
    """``server.N=host:quorumPort:electionPort[:participant|:observer][;[clientAddr:]clientPort]``."""
    key = f"server.{sid}"
    halves = [h for h in java_trim(value).split(";")]
    while len(halves) > 1 and not halves[-1]:
        halves.pop()  # Java's split drops trailing empty strings: "a:1:2;" has no client part
    if len(halves) > 2:
        raise ConfigError(f"{where}: {key}={value}: more than one ';'; the form is {key}={_LINE_FORM}")
    addr = halves[0].strip()
    if "|" in addr:
        raise ConfigError(f"{where}: {key}={value}: several quorum addresses (multiAddress) are not "
                          f"supported; give one address: {key}={_LINE_FORM}")
    parts = _host_and_ports(addr, where, key)
    if len(parts) not in (3, 4) or not parts[0] or any(c.isspace() for c in parts[0]):
        raise ConfigError(f"{where}: {key}={value}: cannot read host and ports; "
                          f"write {key}={_LINE_FORM}, e.g. {key}=zk{sid}.example.com:2888:3888")
    host = parts[0]
    qport = _port(_Value(f"{key} quorum port", parts[1].strip(), where))
    eport = _port(_Value(f"{key} election port", parts[2].strip(), where))
    if qport == eport:
        raise ConfigError(f"{where}: {key}={value}: quorum port and election port are both {qport}; "
                          "they must differ (ZooKeeper uses 2888 and 3888)")
    role = "participant"
    if len(parts) == 4:
        role = parts[3].strip().lower()
        if role not in ("participant", "observer"):
            raise ConfigError(f"{where}: {key}={value}: role {parts[3]!r} is not a peer type; "
                              "write :participant, :observer, or nothing (participant)")
    client_host: str | None = None
    client_port: int | None = None
    if len(halves) == 2:
        cparts = _host_and_ports(halves[1].strip(), where, f"{key} client address")
        if len(cparts) == 1:
            cport_text = cparts[0]
        elif len(cparts) == 2 and cparts[0] and not any(c.isspace() for c in cparts[0]):
            client_host, cport_text = cparts
        else:
            raise ConfigError(f"{where}: {key}={value}: cannot read the client address after ';'; "
                              "write ;clientPort or ;clientAddress:clientPort (IPv6 in brackets)")
        client_port = _port(_Value(f"{key} client port", cport_text.strip(), where))
    return PeerSpec(sid, host, qport, eport, role, client_host, client_port)


def _server_id(key: str, where: str) -> int:
    m = _SERVER_KEY.fullmatch(key)
    tail = m.group(1) if m else key
    if not _DEC.fullmatch(tail) or tail.startswith(("+", "-")):
        raise ConfigError(f"{where}: {key}: the part after 'server.' must be the server id, a number "
                          f"from 0 to {MAX_SERVER_ID}, e.g. server.1")
    sid = int(tail)
    if sid > MAX_SERVER_ID:
        raise ConfigError(f"{where}: {key}: server id {sid} is above {MAX_SERVER_ID}; session ids carry the "
                          f"server id in one byte, so use 0-{MAX_SERVER_ID}")
    return sid


# ------------------------------------------------------------------ JVM flags
def jvm_properties(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``-Dkey=value`` from SERVER_JVMFLAGS then JVMFLAGS (zkServer.sh puts JVMFLAGS last, and the
    JVM keeps the last). Returns key -> (value, where)."""
    props: dict[str, tuple[str, str]] = {}
    for var in ("SERVER_JVMFLAGS", "JVMFLAGS"):
        text = environ.get(var, "")
        if not text:
            continue
        import shlex  # here: most starts have no JVM flags to read

        try:
            tokens = shlex.split(text)
        except ValueError:
            tokens = text.split()
        for tok in tokens:
            if tok.startswith("-D") and len(tok) > 2:
                key, _, value = tok[2:].partition("=")
                props[key] = (java_trim(value), f"{var} -D{key}")
    return props


# ------------------------------------------------------------------ the parser
def _entries(rows: Iterable[tuple[int, str, str]], source: str, raw: dict[str, str],
             warnings: list[str]) -> dict[str, _Value]:
    """Last occurrence wins, as in java.util.Properties; a repeated key is worth a warning."""
    seen: dict[str, tuple[int, _Value]] = {}
    for n, key, value in rows:
        if key in seen:
            warnings.append(f"{source}:{n}: {key} is set again; the value on line {seen[key][0]} is ignored")
        seen[key] = (n, _Value(key, value, f"{source}:{n}", n))
        raw[key] = value
    return {k: v for k, (_, v) in seen.items()}


def _read_text(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # what java.util.Properties.load(InputStream) assumes


def parse_config(text: str, source: str = "zoo.cfg", base_dir: Path | None = None, *,
                 environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Parse zoo.cfg text; relative paths are taken from ``base_dir`` (else the working directory).

    ``environ`` (default os.environ) supplies SERVER_JVMFLAGS/JVMFLAGS and ZOOKEEPER_JUTE_MAXBUFFER.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    warnings: list[str] = []
    entries = _entries(read_properties(text, source), source, raw, warnings)
    jvm = jvm_properties(env)

    values: dict[str, object] = {}
    where_of: dict[str, _Value] = {}
    for s in _SETTINGS:
        chosen = None
        for k in s.spellings:  # among spellings, the later line wins
            v = entries.get(k)
            if v is not None and (chosen is None or v.line > chosen.line):
                chosen = v
        if chosen is None:
            for p in s.props:
                if p in jvm:
                    chosen = _Value(p, jvm[p][0], jvm[p][1])
        if chosen is None and s.attr == "jute_maxbuffer" and env.get("ZOOKEEPER_JUTE_MAXBUFFER"):
            chosen = _Value("jute.maxbuffer", java_trim(env["ZOOKEEPER_JUTE_MAXBUFFER"]),
                            "environment ZOOKEEPER_JUTE_MAXBUFFER")
        if chosen is not None:
            values[s.attr] = s.conv(chosen)
            where_of[s.attr] = chosen

    server_entries: dict[str, _Value] = {}
    dynamic = entries.get("dynamicConfigFile")
    for key, v in entries.items():
        if key in _SETTING_KEYS or key in ("dynamicConfigFile", "version"):
            continue
        if key.startswith(("server.", "group", "weight")):
            if dynamic is not None:
                raise ConfigError(f"{v.where}: {key}: with dynamicConfigFile set, server, group and weight "
                                  f"lines belong in that file ({dynamic.text}); move this line there")
            server_entries[key] = v
        elif key in _REFUSED_WHEN_TRUE and v.text.strip().lower() == "true":
            raise ConfigError(f"{v.where}: {key}=true is not supported by zkops: {_REFUSED_WHEN_TRUE[key]}")
        elif key in _UNSUPPORTED:
            warnings.append(f"{v.where}: {key} is not supported by zkops ({_UNSUPPORTED[key]}); ignored")
        elif key.startswith(_JVM_ONLY_PREFIXES):
            log.debug("%s: %s only matters to the JVM server; ignored", v.where, key)
        else:
            import difflib  # only for a misspelled key

            known = {s.keys[0] for s in _SETTINGS} | {"dynamicConfigFile"}
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            warnings.append(f"{v.where}: unknown key {key!r} ignored"
                            + (f" (did you mean {hint[0]}?)" if hint else " (keys are case-sensitive)"))

    if "data_dir" not in values:
        raise ConfigError(f"{source}: dataDir is not set: add a line such as dataDir=/var/lib/zookeeper")
    data_dir = _resolve(values.pop("data_dir"), base_dir)  # type: ignore[arg-type]
    log_dir = values.pop("data_log_dir", None)
    data_log_dir = _resolve(log_dir, base_dir) if log_dir is not None else data_dir  # type: ignore[arg-type]
    cfg = ServerConfig(source=Path(source) if source else None, data_dir=data_dir, data_log_dir=data_log_dir,
                       **values)
    cfg.raw = raw
    cfg.warnings = warnings

    _resolve_timeouts(cfg, where_of, source)
    if cfg.autopurge_snap_retain_count < MIN_SNAP_RETAIN_COUNT:
        warnings.append(f"{where_of['autopurge_snap_retain_count'].where}: autopurge.snapRetainCount="
                        f"{cfg.autopurge_snap_retain_count} is below {MIN_SNAP_RETAIN_COUNT}; "
                        f"using {MIN_SNAP_RETAIN_COUNT}")
        cfg.autopurge_snap_retain_count = MIN_SNAP_RETAIN_COUNT
    if cfg.snap_count < MIN_SNAP_COUNT:
        warnings.append(f"{where_of['snap_count'].where}: snapCount={cfg.snap_count} is below "
                        f"{MIN_SNAP_COUNT}; using {MIN_SNAP_COUNT}")
        cfg.snap_count = MIN_SNAP_COUNT
    # as FourLetterCommands.isEnabled: zkServer.sh status needs srvr; read-only clients need isro
    cfg.four_letter_words = cfg.four_letter_words | {"srvr"}
    if cfg.readonly_mode_enabled:
        cfg.four_letter_words = cfg.four_letter_words | {"isro"}

    if dynamic is not None:
        dpath = _resolve(Path(dynamic.text), base_dir)
        rows = read_properties(_read_text(dpath, "dynamicConfigFile"), str(dpath))
        dyn_entries = _entries(rows, str(dpath), raw, warnings)
        for key, v in dyn_entries.items():
            if not key.startswith(("server.", "group", "weight")) and key != "version":
                raise ConfigError(f"{v.where}: {key}: a dynamic config file holds only server.N, group, "
                                  "weight and version lines; move this setting to zoo.cfg")
            if key != "version":
                server_entries[key] = v
    _read_servers(cfg, server_entries)
    if cfg.servers:
        _resolve_membership(cfg, where_of, source)
    _resolve_client_port(cfg, where_of, source)
    return cfg


def _resolve(p: Path, base_dir: Path | None) -> Path:
    return base_dir / p if base_dir is not None and not p.is_absolute() else p


def _resolve_timeouts(cfg: ServerConfig, where_of: dict[str, _Value], source: str) -> None:
    """Unset or -1 means 2 and 20 ticks, as ZooKeeperServer does."""
    if "min_session_timeout" not in where_of or cfg.min_session_timeout == -1:
        cfg.min_session_timeout = 2 * cfg.tick_time
    if "max_session_timeout" not in where_of or cfg.max_session_timeout == -1:
        cfg.max_session_timeout = 20 * cfg.tick_time
    if cfg.max_session_timeout < cfg.min_session_timeout:
        mx = where_of.get("max_session_timeout")
        mn = where_of.get("min_session_timeout")
        at = mx.where if mx else (mn.where if mn else source)
        mn_from = f"line {mn.line}" if mn and mn.line else ("from JVM flags" if mn else "2 x tickTime")
        mx_from = "" if mx else " (20 x tickTime)"
        raise ConfigError(f"{at}: maxSessionTimeout={cfg.max_session_timeout}{mx_from} is less than "
                          f"minSessionTimeout={cfg.min_session_timeout} ({mn_from}); raise maxSessionTimeout "
                          "or lower minSessionTimeout so that min <= max")


def _read_servers(cfg: ServerConfig, entries: dict[str, _Value]) -> None:
    hierarchical = False
    for key, v in sorted(entries.items(), key=lambda kv: kv[1].line):
        if key.startswith(("group", "weight")):
            hierarchical = True
            continue
        sid = _server_id(key, v.where)
        cfg.servers[sid] = parse_server_line(sid, v.text, v.where)
    if hierarchical:
        cfg.warnings.append(f"{cfg.source}: group/weight lines (hierarchical quorums) are not supported by "
                            "zkops; a simple majority of the participants is used")


def _resolve_membership(cfg: ServerConfig, where_of: dict[str, _Value], source: str) -> None:
    """QuorumPeerConfig.parseDynamicConfig, setupMyId, setupPeerType and checkValidity."""
    voters, observers = len(cfg.voters), len(cfg.observers)
    if voters == 0:
        if not cfg.standalone_enabled:
            raise ConfigError(f"{source}: standaloneEnabled=false needs at least one participant in the "
                              "server.N lines; mark a server :participant")
        if observers:
            raise ConfigError(f"{source}: server.N lines list observers but no participant; "
                              "observers need participants to follow")
    elif voters == 1 and cfg.standalone_enabled:
        if observers:
            raise ConfigError(f"{source}: one participant with observers is not a quorum; add participants "
                              "or set standaloneEnabled=false")
        cfg.warnings.append(f"{source}: only one server.N participant: running standalone "
                            "(set standaloneEnabled=false to run a one-server quorum)")
    elif voters <= 2:
        cfg.warnings.append(f"{source}: {voters} participants tolerate no server failure; use at least 3")
    elif voters % 2 == 0:
        cfg.warnings.append(f"{source}: {voters} participants tolerate no more failures than {voters - 1}; "
                            "consider an odd number")

    myid_file = cfg.data_dir / "myid"
    listed = ", ".join(str(s) for s in sorted(cfg.servers))
    if myid_file.is_file():
        text = _read_text(myid_file, "myid file").strip()
        if not _DEC.fullmatch(text) or text.startswith(("+", "-")):
            raise ConfigError(f"{myid_file}: myid {text!r} is not a number; the file must hold only this "
                              f"server's id from the server.N lines ({listed})")
        cfg.my_id = int(text)
    distributed = cfg.is_ensemble
    if cfg.my_id is None:
        if distributed:
            raise ConfigError(f"{myid_file}: myid file is missing: with server.N lines in {source}, dataDir "
                              f"must hold a file named myid with this server's id (one of {listed}), "
                              f"e.g. echo {min(cfg.servers)} > {myid_file}")
        return
    if cfg.my_id not in cfg.servers:
        msg = (f"{myid_file}: myid {cfg.my_id} matches no server.N line in {source} (ids: {listed}); "
               "fix the myid file or add a server line for it")
        if distributed:
            raise ConfigError(msg)
        cfg.warnings.append(msg)
        return
    if distributed:
        for attr, key in (("init_limit", "initLimit"), ("sync_limit", "syncLimit")):
            if getattr(cfg, attr) == 0:
                at = where_of[attr].where
                raise ConfigError(f"{at}: {key}=0: an ensemble member needs a limit in ticks; use e.g. "
                                  f"{key}={10 if attr == 'init_limit' else 5}")
    if cfg.extended_types_enabled and cfg.my_id == MAX_SERVER_ID:
        raise ConfigError(f"{myid_file}: myid {cfg.my_id} cannot be used with extendedTypesEnabled=true "
                          "(TTL session ids reserve it); use an id from 0 to 254")
    role = cfg.servers[cfg.my_id].role
    if "peer_type" in where_of and cfg.peer_type != role:
        cfg.warnings.append(f"{where_of['peer_type'].where}: peerType={cfg.peer_type} but server.{cfg.my_id} "
                            f"is a {role}; using {role} from the server line")
    cfg.peer_type = role


def _resolve_client_port(cfg: ServerConfig, where_of: dict[str, _Value], source: str) -> None:
    """QuorumPeerConfig.setupClientPort: this server's line can carry its client address."""
    me = cfg.servers.get(cfg.my_id) if cfg.my_id is not None else None
    if me is not None and me.client_port is not None:
        if cfg.client_port is not None and cfg.client_port != me.client_port:
            raise ConfigError(f"{where_of['client_port'].where}: clientPort={cfg.client_port} but server."
                              f"{me.sid} says ;{me.client_port}; make them agree or drop clientPort")
        cfg.client_port = me.client_port
        if me.client_host is not None:
            wild = ("0.0.0.0", "::")
            if ("client_port_address" in where_of and cfg.client_port_address not in wild
                    and me.client_host not in wild and cfg.client_port_address != me.client_host):
                cfg.warnings.append(f"{where_of['client_port_address'].where}: clientPortAddress="
                                    f"{cfg.client_port_address} but server.{me.sid} says {me.client_host}; "
                                    "using the server line")
            cfg.client_port_address = me.client_host
    if cfg.client_port is None:
        if "client_port_address" in where_of:
            raise ConfigError(f"{where_of['client_port_address'].where}: clientPortAddress is set but "
                              "clientPort is not; add clientPort=2181")
        if cfg.secure_client_port is None:
            hint = f" (or ;2181 on server.{cfg.my_id}'s line)" if me is not None else ""
            raise ConfigError(f"{source}: clientPort is not set: add clientPort=2181{hint}")


def check_tls(cfg: ServerConfig) -> None:
    """Load the TLS material a config names (secureClientPort, sslQuorum), so a server that would
    fail on it stops before it starts, naming the key. Separate from parsing: tools that only
    read a config (status, deploy's rendering) need not reach the key files."""
    peer_keys = ("sslQuorum", "portUnification", "electionPortBindRetry", "zookeeper.electionPortBindRetry")
    if cfg.secure_client_port is None and not any(k in cfg.raw for k in peer_keys):
        return
    from .tls import TlsConfigError, server_context  # ssl only for configs that use it
    from .tlspeers import peer_ports

    try:
        if cfg.secure_client_port is not None:
            server_context(cfg.raw)
        peer_ports(cfg.raw)
    except TlsConfigError as exc:
        raise ConfigError(f"{cfg.source}: {exc}")


def load_config(path: Path) -> ServerConfig:
    """Read and parse a zoo.cfg file; relative paths in it are taken from the file's directory."""
    path = Path(path)
    return parse_config(_read_text(path, "config file"), str(path), path.parent)


# ------------------------------------------------------------------ writing zoo.cfg back
def render_config(cfg: ServerConfig) -> str:
    """A zoo.cfg that parses back to the same settings (given the same myid file).

    Core keys are always written; the rest only when they differ from the default, and the
    session timeouts only when they are not the tickTime-derived defaults.
    """
    defaults = ServerConfig(source=None, data_dir=Path("."), data_log_dir=Path("."))
    lines: list[str] = []

    def put(key: str, value: object) -> None:
        text = str(value)
        lines.append(f"{key}={_escape(text, key)}")

    put("tickTime", cfg.tick_time)
    put("initLimit", cfg.init_limit)
    put("syncLimit", cfg.sync_limit)
    put("dataDir", cfg.data_dir)
    if cfg.data_log_dir != cfg.data_dir:
        put("dataLogDir", cfg.data_log_dir)
    if cfg.client_port is not None:
        put("clientPort", cfg.client_port)
    if cfg.client_port_address != defaults.client_port_address:
        put("clientPortAddress", cfg.client_port_address)
    if cfg.secure_client_port is not None:
        put("secureClientPort", cfg.secure_client_port)
    put("maxClientCnxns", cfg.max_client_cnxns)
    if cfg.min_session_timeout != 2 * cfg.tick_time:
        put("minSessionTimeout", cfg.min_session_timeout)
    if cfg.max_session_timeout != 20 * cfg.tick_time:
        put("maxSessionTimeout", cfg.max_session_timeout)
    put("autopurge.snapRetainCount", cfg.autopurge_snap_retain_count)
    put("autopurge.purgeInterval", cfg.autopurge_purge_interval)
    words = cfg.four_letter_words
    put("4lw.commands.whitelist", "*" if words == ALL_4LW else ",".join(sorted(words)))
    optional: list[tuple[str, str, Callable[[object], str]]] = [
        ("snap_count", "snapCount", str),
        ("extended_types_enabled", "extendedTypesEnabled", _java_bool),
        ("jute_maxbuffer", "jute.maxbuffer", str),
        ("force_sync", "forceSync", lambda b: "yes" if b else "no"),
        ("pre_alloc_size_kb", "preAllocSize", str),
        ("global_outstanding_limit", "globalOutstandingLimit", str),
        ("container_check_interval_ms", "znode.container.checkIntervalMs", str),
        ("standalone_enabled", "standaloneEnabled", _java_bool),
        ("reconfig_enabled", "reconfigEnabled", _java_bool),
        ("readonly_mode_enabled", "readonlymode.enabled", _java_bool),
        ("digest_enabled", "digest.enabled", _java_bool),
        ("local_sessions_enabled", "localSessionsEnabled", _java_bool),
        ("local_sessions_upgrading_enabled", "localSessionsUpgradingEnabled", _java_bool),
        ("super_digest", "DigestAuthenticationProvider.superDigest", str),
        ("admin_enable_server", "admin.enableServer", _java_bool),
        ("admin_server_address", "admin.serverAddress", str),
        ("admin_server_port", "admin.serverPort", str),
        ("election_alg", "electionAlg", str),
        ("max_cnxns", "maxCnxns", str),
        ("client_port_workers", "clientPortWorkers", str),
    ]
    for attr, key, fmt in optional:
        value = getattr(cfg, attr)
        if value != getattr(defaults, attr):
            put(key, fmt(value))
    if cfg.metrics_port is not None:
        put("metricsProvider.className", "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider")
        put("metricsProvider.httpPort", cfg.metrics_port)
    if cfg.peer_type != "participant":
        put("peerType", cfg.peer_type)
    for sid in sorted(cfg.servers):
        put(f"server.{sid}", format_server_line(cfg.servers[sid]))
    return "\n".join(lines) + "\n"


def _java_bool(value: object) -> str:
    return "true" if value else "false"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def format_server_line(p: PeerSpec, bare_client_host: str | None = None) -> str:
    """The value of a ``server.N`` line, as ZooKeeper writes it in a dynamic config file.

    A client port given without a host stays bare, or gets ``bare_client_host`` when one is
    given (Apache's QuorumServer.toString() prints 0.0.0.0 there)."""
    text = f"{_bracket(p.host)}:{p.quorum_port}:{p.election_port}:{p.role}"
    if p.client_port is not None:
        client_host = p.client_host or bare_client_host
        text += f";{_bracket(client_host) + ':' if client_host else ''}{p.client_port}"
    return text


__all__ = [
    "ALL_4LW", "DEFAULT_4LW", "KNOWN_4LW", "PIDFILE_NAME", "ConfigError", "PeerSpec", "ServerConfig",
    "format_server_line", "java_trim", "jvm_properties", "load_config", "parse_config", "parse_server_line",
    "read_properties", "render_config",
]
