"""zoo.cfg, read as Apache ZooKeeper reads it (QuorumPeerConfig), into one dataclass.

Bad values stop start-up with a ConfigError that names the key and the line; unknown
keys only warn. JVM-only settings (class names, JAAS paths) are accepted and ignored;
the few ``-D`` system properties operators put in SERVER_JVMFLAGS/JVMFLAGS are read
as a fallback for the matching zoo.cfg key.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ALL_4LW = frozenset({"ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "dirs",
                     "wchs", "wchc", "wchp", "dump", "isro", "gtmk", "stmk", "elec"})
# Apache's default is only srvr; a health-check set is more useful and still harmless.
DEFAULT_4LW = frozenset({"ruok", "srvr", "stat", "mntr", "conf", "isro", "envi", "dirs", "cons", "wchs",
                         "elec"})


class ConfigError(ValueError):
    """A zoo.cfg value is wrong; the message names the key, the line and the fix."""


@dataclass(frozen=True)
class PeerSpec:
    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str  # "participant" | "observer"
    client_host: str | None
    client_port: int | None


@dataclass
class ServerConfig:
    source: Path | None
    data_dir: Path
    data_log_dir: Path
    tick_time: int = 2000
    init_limit: int = 10
    sync_limit: int = 5
    client_port: int | None = None
    client_port_address: str = "0.0.0.0"
    secure_client_port: int | None = None
    max_client_cnxns: int = 60
    min_session_timeout: int = 0
    max_session_timeout: int = 0
    snap_count: int = 100000
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval: int = 24
    four_letter_words: frozenset[str] = DEFAULT_4LW
    extended_types_enabled: bool = False
    jute_maxbuffer: int = 0xFFFFF
    force_sync: bool = True
    pre_alloc_size_kb: int = 65536
    global_outstanding_limit: int = 1000
    container_check_interval_ms: int = 60000
    servers: dict[int, PeerSpec] = field(default_factory=dict)
    my_id: int | None = None
    peer_type: str = "participant"
    standalone_enabled: bool = True
    reconfig_enabled: bool = False
    readonly_mode_enabled: bool = False
    local_sessions_enabled: bool = False
    local_sessions_upgrading_enabled: bool = False
    super_digest: str | None = None
    admin_enable_server: bool = True
    admin_server_address: str = "0.0.0.0"
    admin_server_port: int = 8080
    metrics_port: int | None = None
    election_alg: int = 3
    max_cnxns: int = 0
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def voters(self) -> dict[int, PeerSpec]:
        return {sid: p for sid, p in self.servers.items() if p.role == "participant"}

    @property
    def is_ensemble(self) -> bool:
        """True when server lines make this a quorum member rather than a standalone server."""
        if not self.servers:
            return False
        return len(self.voters) > 1 or not self.standalone_enabled or len(self.servers) > 1


# key -> (attribute, kind); kind: int, port, bool, str, path
_KEYS: dict[str, tuple[str, str]] = {
    "tickTime": ("tick_time", "posint"),
    "initLimit": ("init_limit", "posint"),
    "syncLimit": ("sync_limit", "posint"),
    "dataDir": ("data_dir", "path"),
    "dataLogDir": ("data_log_dir", "path"),
    "clientPort": ("client_port", "port"),
    "clientPortAddress": ("client_port_address", "str"),
    "secureClientPort": ("secure_client_port", "port"),
    "maxClientCnxns": ("max_client_cnxns", "nonneg"),
    "minSessionTimeout": ("min_session_timeout", "int"),
    "maxSessionTimeout": ("max_session_timeout", "int"),
    "snapCount": ("snap_count", "posint"),
    "autopurge.snapRetainCount": ("autopurge_snap_retain_count", "int"),
    "autopurge.purgeInterval": ("autopurge_purge_interval", "nonneg"),
    "4lw.commands.whitelist": ("four_letter_words", "4lw"),
    "extendedTypesEnabled": ("extended_types_enabled", "bool"),
    "zookeeper.extendedTypesEnabled": ("extended_types_enabled", "bool"),
    "jute.maxbuffer": ("jute_maxbuffer", "posint"),
    "forceSync": ("force_sync", "yesno"),
    "zookeeper.forceSync": ("force_sync", "yesno"),
    "preAllocSize": ("pre_alloc_size_kb", "posint"),
    "globalOutstandingLimit": ("global_outstanding_limit", "posint"),
    "znode.container.checkIntervalMs": ("container_check_interval_ms", "posint"),
    "peerType": ("peer_type", "peertype"),
    "standaloneEnabled": ("standalone_enabled", "bool"),
    "reconfigEnabled": ("reconfig_enabled", "bool"),
    "readonlymode.enabled": ("readonly_mode_enabled", "bool"),
    "localSessionsEnabled": ("local_sessions_enabled", "bool"),
    "localSessionsUpgradingEnabled": ("local_sessions_upgrading_enabled", "bool"),
    "zookeeper.DigestAuthenticationProvider.superDigest": ("super_digest", "str"),
    "admin.enableServer": ("admin_enable_server", "bool"),
    "admin.serverAddress": ("admin_server_address", "str"),
    "admin.serverPort": ("admin_server_port", "port"),
    "metricsProvider.httpPort": ("metrics_port", "port"),
    "electionAlg": ("election_alg", "int"),
    "maxCnxns": ("max_cnxns", "nonneg"),
}
# JVM -D properties that map onto zoo.cfg keys
_SYSPROPS = {
    "jute.maxbuffer": "jute.maxbuffer",
    "zookeeper.extendedTypesEnabled": "extendedTypesEnabled",
    "zookeeper.4lw.commands.whitelist": "4lw.commands.whitelist",
    "readonlymode.enabled": "readonlymode.enabled",
    "zookeeper.DigestAuthenticationProvider.superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "zookeeper.admin.enableServer": "admin.enableServer",
    "zookeeper.admin.serverPort": "admin.serverPort",
    "zookeeper.forceSync": "forceSync",
    "zookeeper.snapCount": "snapCount",
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
}
# keys that only mean something to the JVM server: accepted, not used
_IGNORED_PREFIXES = ("serverCnxnFactory", "authProvider.", "ssl.", "sslQuorum", "quorum.auth", "client.secure",
                     "metricsProvider.className", "metricsProvider.", "quorumListenOnAllIPs", "cnxTimeout",
                     "electionPortBindRetry", "syncEnabled", "portUnification", "audit.enable",
                     "admin.commandURL", "admin.idleTimeout", "zookeeper.", "jvm.", "multiAddress.",
                     "connectToLearnerMasterLimit", "leaderServes", "clientPortListenBacklog",
                     "dynamicConfigFile", "skipACL", "snapSizeLimitInKb", "txnLogSizeLimitInKb",
                     "learnerMasterPort", "secureClientPortAddress", "sessionRequireClientSASLAuth",
                     "enforceQuota")
_SERVER_RE = re.compile(r"^server\.(\d+)$")
_GROUP_KEYS = ("group.", "weight.")


def _parse_lines(text: str) -> list[tuple[int, str, str]]:
    """Java properties syntax: key=value or key: value, # and ! comments."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#!":
            continue
        m = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", s)
        if not m:
            raise ConfigError(f"line {n}: cannot read {s!r}: expected key=value")
        out.append((n, m.group(1), m.group(2).strip()))
    return out


def _jvm_props() -> dict[str, str]:
    props: dict[str, str] = {}
    for var in ("JVMFLAGS", "SERVER_JVMFLAGS"):
        for tok in shlex.split(os.environ.get(var, "")):
            if tok.startswith("-D") and "=" in tok:
                k, v = tok[2:].split("=", 1)
                props[k] = v
    return props


def _split_host_port(text: str) -> tuple[str, list[str]]:
    """'host:a:b' or '[v6::addr]:a:b' -> (host, ['a', 'b'])."""
    if text.startswith("["):
        end = text.index("]")
        host = text[1:end]
        rest = text[end + 1:]
        parts = rest.split(":")[1:] if rest else []
        return host, parts
    parts = text.split(":")
    return parts[0], parts[1:]


def parse_server_line(sid: int, value: str, where: str) -> PeerSpec:
    """server.N=host:quorumPort:electionPort[:participant|:observer][;[clientAddr:]clientPort]"""
    addr, _, client = value.partition(";")
    host, parts = _split_host_port(addr.strip())
    if len(parts) < 2 or not host:
        raise ConfigError(f"{where}: server.{sid}={value!r}: expected host:quorumPort:electionPort"
                          "[:participant|:observer][;[clientAddr:]clientPort]")
    qport = _port(parts[0], f"{where}: server.{sid} quorum port")
    eport = _port(parts[1], f"{where}: server.{sid} election port")
    role = "participant"
    if len(parts) >= 3:
        if parts[2] not in ("participant", "observer"):
            raise ConfigError(f"{where}: server.{sid}: role {parts[2]!r} must be participant or observer")
        role = parts[2]
    client_host = None
    client_port = None
    if client.strip():
        c = client.strip()
        if ":" in c and not c.startswith("["):
            client_host, cp = c.rsplit(":", 1)
        elif c.startswith("["):
            h, rest = _split_host_port(c)
            client_host, cp = h, rest[0] if rest else ""
        else:
            cp = c
        client_port = _port(cp, f"{where}: server.{sid} client port")
    return PeerSpec(sid, host, qport, eport, role, client_host, client_port)


def _port(text: str, where: str) -> int:
    try:
        p = int(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a port number (1-65535)") from None
    if not 1 <= p <= 65535:
        raise ConfigError(f"{where}: {p} is outside 1-65535")
    return p


def _convert(kind: str, key: str, value: str, where: str) -> object:
    if kind in ("int", "posint", "nonneg"):
        try:
            n = int(value)
        except ValueError:
            raise ConfigError(f"{where}: {key}={value!r} must be a whole number") from None
        if kind == "posint" and n <= 0:
            raise ConfigError(f"{where}: {key}={n} must be greater than 0")
        if kind == "nonneg" and n < 0:
            raise ConfigError(f"{where}: {key}={n} must not be negative")
        return n
    if kind == "port":
        return _port(value, f"{where}: {key}")
    if kind == "bool":
        v = value.lower()
        if v not in ("true", "false", "yes", "no"):
            raise ConfigError(f"{where}: {key}={value!r} must be true or false")
        return v in ("true", "yes")
    if kind == "yesno":
        v = value.lower()
        if v not in ("yes", "no", "true", "false"):
            raise ConfigError(f"{where}: {key}={value!r} must be yes or no")
        return v in ("yes", "true")
    if kind == "path":
        return Path(value)
    if kind == "4lw":
        words = frozenset(w.strip() for w in value.split(",") if w.strip())
        if "*" in words:
            return ALL_4LW
        unknown = words - ALL_4LW
        if unknown:
            raise ConfigError(f"{where}: {key}: unknown four-letter word(s) {', '.join(sorted(unknown))}")
        return words
    if kind == "peertype":
        if value not in ("participant", "observer"):
            raise ConfigError(f"{where}: peerType={value!r} must be participant or observer")
        return value
    return value


def parse_config(text: str, source: str = "zoo.cfg", base_dir: Path | None = None) -> ServerConfig:
    lines = _parse_lines(text)
    values: dict[str, tuple[int, str]] = {}
    for n, k, v in lines:
        values[k] = (n, v)
    for prop, key in _jvm_props().items():
        mapped = _SYSPROPS.get(prop)
        if mapped and mapped not in values:
            values[mapped] = (0, key)
    if "dataDir" not in values:
        raise ConfigError(f"{source}: dataDir is not set: add a line like dataDir=/var/lib/zookeeper")
    kwargs: dict[str, object] = {}
    warnings: list[str] = []
    servers: dict[int, PeerSpec] = {}
    for key, (n, value) in values.items():
        where = f"{source}:{n}" if n else f"{source} (JVM flag)"
        if key in _KEYS:
            attr, kind = _KEYS[key]
            kwargs[attr] = _convert(kind, key, value, where)
            continue
        m = _SERVER_RE.match(key)
        if m:
            sid = int(m.group(1))
            servers[sid] = parse_server_line(sid, value, where)
            continue
        if key.startswith(_GROUP_KEYS) or key.startswith(_IGNORED_PREFIXES):
            continue
        warnings.append(f"{where}: unknown key {key!r} ignored")
    data_dir = Path(kwargs.pop("data_dir"))  # type: ignore[arg-type]
    if base_dir is not None and not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    log_dir = kwargs.pop("data_log_dir", None)
    log_dir = Path(log_dir) if log_dir is not None else data_dir  # type: ignore[arg-type]
    if base_dir is not None and not log_dir.is_absolute():
        log_dir = base_dir / log_dir
    cfg = ServerConfig(source=Path(source) if source else None, data_dir=data_dir, data_log_dir=log_dir,
                       **kwargs)  # type: ignore[arg-type]
    cfg.raw = {k: v for k, (_, v) in values.items()}
    cfg.warnings = warnings
    cfg.servers = servers
    if not cfg.min_session_timeout or cfg.min_session_timeout < 0:
        cfg.min_session_timeout = 2 * cfg.tick_time
    if not cfg.max_session_timeout or cfg.max_session_timeout < 0:
        cfg.max_session_timeout = 20 * cfg.tick_time
    if cfg.max_session_timeout < cfg.min_session_timeout:
        raise ConfigError(f"{source}: maxSessionTimeout ({cfg.max_session_timeout}) must not be less than "
                          f"minSessionTimeout ({cfg.min_session_timeout})")
    if cfg.autopurge_snap_retain_count < 3:
        warnings.append(f"{source}: autopurge.snapRetainCount={cfg.autopurge_snap_retain_count} raised to 3")
        cfg.autopurge_snap_retain_count = 3
    if servers:
        _resolve_myid(cfg, source)
    if cfg.client_port is None and cfg.my_id is not None and cfg.my_id in servers:
        me = servers[cfg.my_id]
        cfg.client_port = me.client_port
        if me.client_host:
            cfg.client_port_address = me.client_host
    if cfg.client_port is None and cfg.secure_client_port is None:
        raise ConfigError(f"{source}: no clientPort: add clientPort=2181 (or a ;clientPort on this server's line)")
    return cfg


def _resolve_myid(cfg: ServerConfig, source: str) -> None:
    myid_file = cfg.data_dir / "myid"
    try:
        text = myid_file.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"{myid_file}: file is missing: with server.N lines in {source}, dataDir must hold a "
                          "myid file with this server's N") from None
    try:
        cfg.my_id = int(text)
    except ValueError:
        raise ConfigError(f"{myid_file}: {text!r} is not a number") from None
    if cfg.my_id not in cfg.servers:
        raise ConfigError(f"{myid_file}: myid {cfg.my_id} matches no server.N line in {source} "
                          f"(servers: {', '.join(str(s) for s in sorted(cfg.servers))})")
    if cfg.servers[cfg.my_id].role == "observer":
        cfg.peer_type = "observer"


def load_config(path: Path | str) -> ServerConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    cfg = parse_config(text, str(path), path.parent)
    dyn = cfg.raw.get("dynamicConfigFile")
    if dyn:
        dpath = Path(dyn) if Path(dyn).is_absolute() else path.parent / dyn
        try:
            for n, k, v in _parse_lines(dpath.read_text()):
                m = _SERVER_RE.match(k)
                if m:
                    cfg.servers[int(m.group(1))] = parse_server_line(int(m.group(1)), v, f"{dpath}:{n}")
        except OSError as exc:
            raise ConfigError(f"{dpath}: cannot read dynamicConfigFile: {exc.strerror}") from None
        if cfg.servers:
            _resolve_myid(cfg, str(path))
            me = cfg.servers[cfg.my_id]  # type: ignore[index]
            if cfg.client_port is None:
                cfg.client_port = me.client_port
    return cfg


def render_config(cfg: ServerConfig) -> str:
    """A zoo.cfg that parses back to the same settings."""
    lines = [
        f"tickTime={cfg.tick_time}", f"initLimit={cfg.init_limit}", f"syncLimit={cfg.sync_limit}",
        f"dataDir={cfg.data_dir}",
    ]
    if cfg.data_log_dir != cfg.data_dir:
        lines.append(f"dataLogDir={cfg.data_log_dir}")
    if cfg.client_port is not None:
        lines.append(f"clientPort={cfg.client_port}")
    lines += [
        f"clientPortAddress={cfg.client_port_address}",
        f"maxClientCnxns={cfg.max_client_cnxns}",
        f"minSessionTimeout={cfg.min_session_timeout}", f"maxSessionTimeout={cfg.max_session_timeout}",
        f"snapCount={cfg.snap_count}",
        f"autopurge.snapRetainCount={cfg.autopurge_snap_retain_count}",
        f"autopurge.purgeInterval={cfg.autopurge_purge_interval}",
        f"4lw.commands.whitelist={','.join(sorted(cfg.four_letter_words))}",
        f"extendedTypesEnabled={str(cfg.extended_types_enabled).lower()}",
        f"jute.maxbuffer={cfg.jute_maxbuffer}",
        f"forceSync={'yes' if cfg.force_sync else 'no'}",
        f"standaloneEnabled={str(cfg.standalone_enabled).lower()}",
    ]
    for sid in sorted(cfg.servers):
        p = cfg.servers[sid]
        host = f"[{p.host}]" if ":" in p.host else p.host
        line = f"server.{sid}={host}:{p.quorum_port}:{p.election_port}:{p.role}"
        if p.client_port is not None:
            line += f";{p.client_host + ':' if p.client_host else ''}{p.client_port}"
        lines.append(line)
    return "\n".join(lines) + "\n"
