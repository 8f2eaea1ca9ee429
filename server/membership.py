"""The ensemble's membership (Apache's QuorumVerifier): who votes, who observes, which version.

A membership is the set of ``server.N`` lines plus a version, the zxid of the reconfig that
made it (0 for a static zoo.cfg). It is what ``/zookeeper/config`` holds, in Apache's exact
text, and what a reconfig request changes: incrementally (servers joining, ids leaving) or
wholesale (a new member list). This module only computes; the quorum shell decides when a
membership is proposed, committed and activated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .codes import Err, ZkError
from .config import ConfigError, PeerSpec, ServerConfig, format_server_line, parse_server_line

_DYNAMIC_SUFFIX = re.compile(r"\.dynamic\.([0-9a-fA-F]+)$")


def _java_long_hash(value: int) -> int:
    """java.lang.Long.hashCode() spread by HashMap.hash(), as an unsigned 32-bit int."""
    v = value & 0xFFFFFFFFFFFFFFFF
    h = (v ^ (v >> 32)) & 0xFFFFFFFF
    return h ^ (h >> 16)


def hashmap_order(ids: Iterable[int]) -> list[int]:
    """The iteration order of a java.util.HashMap<Long, ...> holding ``ids`` (inserted in the
    given order), which is the order Apache writes ``server.N`` lines in /zookeeper/config."""
    ordered = list(ids)
    capacity = 16
    while len(ordered) > capacity * 3 // 4:
        capacity *= 2
    return sorted(ordered, key=lambda sid: _java_long_hash(sid) & (capacity - 1))


def server_text(p: PeerSpec) -> str:
    """One member as Apache's QuorumServer.toString() prints it (a bare client port gets 0.0.0.0)."""
    return format_server_line(p, bare_client_host="0.0.0.0")


@dataclass(frozen=True)
class Membership:
    servers: dict[int, PeerSpec] = field(default_factory=dict)
    version: int = 0

    @property
    def voters(self) -> set[int]:
        return {s for s, p in self.servers.items() if p.role == "participant"}

    @property
    def observers(self) -> set[int]:
        return {s for s, p in self.servers.items() if p.role == "observer"}

    def quorum_of(self, synced: set[int]) -> bool:
        """Whether ``synced`` holds a majority of this membership's voters."""
        voters = self.voters
        return len(voters & synced) > len(voters) // 2

    def with_version(self, version: int) -> Membership:
        return replace(self, version=version)

    def lines(self) -> list[str]:
        return [f"server.{sid}={server_text(self.servers[sid])}" for sid in hashmap_order(self.servers)]

    def text(self) -> str:
        """The data of /zookeeper/config: the member lines and ``version=<hex>``, no final newline."""
        return "".join(line + "\n" for line in self.lines()) + f"version={self.version:x}"

    def dynamic_file_text(self) -> str:
        """A dynamic config file (zoo.cfg.dynamic.<version>): the member lines; the name holds the version."""
        return "\n".join(self.lines()) + "\n"

    # ------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfg: ServerConfig) -> Membership:
        version = 0
        dynamic = getattr(cfg, "raw", {}).get("dynamicConfigFile")
        if dynamic:
            m = _DYNAMIC_SUFFIX.search(str(dynamic))
            if m:
                version = int(m.group(1), 16)
        return cls(dict(cfg.servers), version)

    @classmethod
    def parse(cls, text: str) -> Membership:
        """Read /zookeeper/config's data back (the inverse of ``text``)."""
        servers: dict[int, PeerSpec] = {}
        version = 0
        for line in text.splitlines():
            key, _, value = line.partition("=")
            key = key.strip()
            if key == "version":
                version = int(value.strip(), 16)
            elif key.startswith("server."):
                sid = int(key[7:])
                servers[sid] = parse_server_line(sid, value)
        return cls(servers, version)

    # ------------------------------------------------------------ reconfig
    def incremental(self, joining: str | None, leaving: str | None) -> Membership:
        """Apply a reconfig's joining and leaving lists (comma-separated), as Apache's
        PrepRequestProcessor does: leaving ids first, then each joiner added or replaced.
        Raises ZkError with the code Apache answers for bad input."""
        servers = dict(self.servers)
        for item in _split(leaving):
            try:
                sid = int(item)
            except ValueError:
                raise ZkError(Err.MARSHALLINGERROR, f"leaving server id {item!r} is not a number")
            servers.pop(sid, None)
        for item in _split(joining):
            parts = [p for p in item.split("=") if p]
            if len(parts) != 2:
                raise ZkError(Err.BADARGUMENTS, "Wrong format of server string")
            key = parts[0].strip()
            try:
                sid = int(key[key.rfind(".") + 1:])
            except ValueError:
                raise ZkError(Err.MARSHALLINGERROR, f"server id in {key!r} is not a number")
            try:
                spec = parse_server_line(sid, parts[1])
            except ConfigError as exc:
                raise ZkError(Err.BADARGUMENTS, f"Reconfiguration failed: {exc}")
            if spec.client_port is None:
                raise ZkError(Err.BADARGUMENTS,
                              "Wrong format of server string - each server should have 3 ports specified")
            servers.pop(sid, None)
            servers[sid] = spec
        return Membership(servers, self.version)

    @staticmethod
    def non_incremental(new_members: str) -> Membership:
        """A whole new member list (comma- or newline-separated ``server.N=...`` lines)."""
        servers: dict[int, PeerSpec] = {}
        for item in _split(new_members.replace("\n", ",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep:
                raise ZkError(Err.BADARGUMENTS, f"{item!r} is not a server.N=... line")
            if key == "version":
                continue
            if not key.startswith("server."):
                raise ZkError(Err.BADARGUMENTS, f"{key}: a member list holds only server.N lines")
            try:
                sid = int(key[7:])
                servers[sid] = parse_server_line(sid, value)
            except ValueError:
                raise ZkError(Err.BADARGUMENTS, f"{key}: the server id is not a number")
            except ConfigError as exc:
                raise ZkError(Err.BADARGUMENTS, str(exc))
        if not any(p.role == "participant" for p in servers.values()):
            # Apache's parseDynamicConfig fails outside its ConfigException path here
            raise ZkError(Err.MARSHALLINGERROR, "the new member list has no participant")
        return Membership(servers, 0)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


__all__ = ["Membership", "hashmap_order", "server_text"]
