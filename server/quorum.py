"""The ensemble shell: election and quorum ports, and ZAB wired to the client-port server.

This module only moves bytes and time. Decisions come from ``QuorumPeer`` (election +
ZAB); this shell carries out its effects on the real txn log, epoch files and data
tree, forwards client writes from followers to the leader, and opens or closes the
client port as the server gains or loses a role. It drives both sides through their
public entry points: ``QuorumPeer`` (ticks, next zxid, learner states, reload) and
``ZooKeeperServer`` (join, serve, unserve, reload, log_txn; its ``QuorumMember`` role hands
writes here through the ``Replication`` protocol that ``Ensemble`` implements).

Writes on the leader: prep (with the zxid ZAB will give) -> propose -> log + fsync ->
ACK quorum -> COMMIT -> apply and reply. On a follower: forward to the leader, then
apply when the COMMIT comes back, and answer the client whose (session, cxid) it was.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import acl as aclmod
from . import quorumwire as qw
from . import snapshot as snapmod
from .app import serve
from .codes import Err, Op, Perm, ZkError
from .config import ConfigError, ServerConfig
from .connection import ClientConnection, Request
from .database import Database
from .digest import DIGEST_VERSION, to_long
from .election import ElectionEvent, Notification, ServerState
from .electionnet import ElectionNetwork
from .membership import Membership
from .quorumnet import QuorumCallbacks, QuorumNetwork
from .quorumpeer import ConfigAdopted, PeerOutput, QuorumPeer
from .records import Id, PathOnly
from .servermode import ServerMode
from .stats import LearnerReport, QuorumReport
from .txncodec import decode_txn, decode_txn_digest, encode_txn_digest
from .wire import REQUEST_TYPES, decode_multi
from .zab import (
    Abandon,
    Append,
    CommitTxn,
    Envelope,
    Established,
    FollowerInfo,
    History,
    InstallSnapshot,
    MembershipChanged,
    Role,
    SaveEpochs,
    Truncate,
    epoch_of,
)
from .zkserver import Pending, ZooKeeperServer

log = logging.getLogger("zkops.server.quorum")
# read once: an enum member's lookup costs about 0.1 us on CPython 3.11
_LEADER = Role.LEADER
_LEARNING = (Role.OBSERVER, Role.FOLLOWER)

ELECTION_TICK = 0.05  # seconds: the election runs on its own fast tick (finalize wait, resends)
# proposals kept in memory for DIFF; a learner further behind gets a SNAP
HISTORY_WINDOW = int(os.environ.get("ZKOPS_HISTORY_WINDOW", "50000"))


# read once: an IntEnum member's lookup costs about 0.1 us, and every forwarded write asked
# for a few on each side
_OP_CREATESESSION, _OP_MULTI, _OP_SYNC = int(Op.createSession), int(Op.multi), int(Op.sync)
_OP_DELETECONTAINER = int(Op.deleteContainer)


def _encode_request(op: int, record: Any) -> bytes:
    if record is None:
        return b""
    if op == _OP_CREATESESSION:
        return int(record).to_bytes(4, "big", signed=True)
    if op == _OP_MULTI:
        from .records import MultiHeader

        out = bytearray()
        for sub_op, sub in record:
            MultiHeader(sub_op, False, -1).write(out)
            sub.write(out)
        MultiHeader(-1, True, -1).write(out)
        return bytes(out)
    data: bytes = record.to_bytes()
    return data


def _decode_request(op: int, data: bytes) -> Any:
    if op == _OP_CREATESESSION:
        return int.from_bytes(data, "big", signed=True)
    if op == _OP_MULTI:
        return decode_multi(data, 0)
    if not data:
        return None
    cls = REQUEST_TYPES.get(op)
    if cls is None:
        if op == _OP_DELETECONTAINER:
            return PathOnly.from_bytes(data)
        return None
    return cls.from_bytes(data)


class EpochFiles:
    """acceptedEpoch and currentEpoch in dataDir/version-2, as Apache writes them (the decimal
    number, no newline); files an older zkops left in dataDir itself are still read."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "version-2"
        self.old_dir = Path(data_dir)
        self.written: dict[str, int] = {}  # what this object wrote (and fsynced) last, per file

    def read(self, name: str, default: int) -> int:
        for d in (self.dir, self.old_dir):
            try:
                return int((d / name).read_text().strip())
            except (OSError, ValueError):
                continue
        return default

    def write(self, name: str, value: int) -> None:
        if self.written.get(name) == value:
            return  # already on disk: one fsync less on the way to a new epoch
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{value}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)
        self.written[name] = value


class Ensemble:
    """Glue between one ``ZooKeeperServer`` and its ``QuorumPeer``."""

    def __init__(self, cfg: ServerConfig, server: ZooKeeperServer, db: Database,
                 loop: asyncio.AbstractEventLoop) -> None:
        assert cfg.my_id is not None
        self.cfg = cfg
        self.sid = cfg.my_id
        self.server = server
        self.db = db
        self.loop = loop
        self.epochs = EpochFiles(cfg.data_dir)
        # the committed membership (Apache's QuorumVerifier) and the newest one proposed
        # (lastSeenQuorumVerifier): they differ only while a reconfig is in flight
        self.membership = _newest(Membership.from_config(cfg), db.tree)
        self.last_seen = self.membership
        voters, observers = self.membership.voters, self.membership.observers
        last = db.tree.last_zxid
        accepted = self.epochs.read("acceptedEpoch", epoch_of(last))
        current = self.epochs.read("currentEpoch", epoch_of(last))
        self.peer = QuorumPeer(self.sid, voters, observers, accepted_epoch=accepted, current_epoch=current,
                               history=self._load_history(), committed=last, snapshot=self._snapshot,
                               sync_limit=cfg.sync_limit, init_limit=cfg.init_limit, finalize_ticks=2,
                               config=(self.membership.version, self.membership.text().encode()),
                               config_of=_config_of, members_of=_members_of)
        # our own ports: from the membership, or from zoo.cfg when a reconfig removed us
        me = self.membership.servers.get(self.sid) or cfg.servers[self.sid]
        from .tlspeers import peer_ports

        tls = peer_ports(getattr(cfg, "raw", {}))
        self.election_net = ElectionNetwork(
            self.sid, (_bind(me.host), me.election_port), self._peer_addresses("election"),
            self._on_election, is_observer=lambda s: s in self.membership.observers, tls=tls)
        callbacks = QuorumCallbacks(
            deliver=self._on_zab, link_down=self._on_link_down, is_leading=lambda: self.peer.zab.role == Role.LEADER,
            request=self._on_request, pinged=self._on_pinged, revalidate=self._on_revalidate,
            touched=self._touched, synced=self._on_synced, activate_leader=self._designated_leader,
            last_seen_config=lambda: self.last_seen.text().encode(),
            config_version=lambda: self.membership.version, history_last=lambda: self.peer.zab.history.last,
            learner_alive=self._learner_alive)
        self.quorum_net = QuorumNetwork(self.sid, (_bind(me.host), me.quorum_port), callbacks, tls=tls,
                                        connect_timeout=max(5.0, cfg.tick_time * cfg.init_limit / 1000))
        self._show_config(self.membership.version)
        self.next_voters: set[int] | None = None  # set by prepare_reconfig for the proposal it prepares
        self.waiting: dict[tuple[int, int], Pending] = {}
        # leader: zxid -> (header, body, tree digest) of each txn it proposed and has not applied
        self.prepared: dict[int, tuple[Any, Any, int | None]] = {}
        # learner: syncs sent up, answered in order; leader: (zxid, learner) answered once zxid commits
        self.sync_waiters: collections.deque[tuple[ClientConnection, Request]] = collections.deque()
        self.local_syncs: collections.deque[tuple[ClientConnection, Request]] = collections.deque()
        self.sync_pending: list[tuple[int, int]] = []
        self.look_started = time.monotonic()
        self.events_path = Path(cfg.data_log_dir) / "election-events.jsonl"
        self.events: list[dict[str, Any]] = []
        self.election_ms: list[float] = []
        self._timers: list[asyncio.TimerHandle] = []
        self.stopped = False
        # Apache's txn digests: sent with our proposals, compared after applying a leader's
        # (mntr's zk_digest_mismatches_count). Txns up to digest_fuzzy_until came after a fuzzy
        # snapshot and are not compared, as Apache skips them. ZKOPS_TEST_DIGEST_SKEW is fault
        # injection for tests only: it adds to every digest we send, so learners must object.
        self.digest_mismatches = db.digest_mismatches  # a loaded snapshot's digest counts too
        self.digests_checked = 0
        self.digest_fuzzy_until = db.fuzzy_until
        self.digest_skew = int(os.environ.get("ZKOPS_TEST_DIGEST_SKEW", "0") or 0)

    # ------------------------------------------------------------ membership
    def _peer_addresses(self, kind: str) -> dict[int, tuple[str, int]]:
        servers = self.membership.servers
        if kind == "election":
            return {s: (p.host, p.election_port) for s, p in servers.items()}
        return {s: (p.host, p.quorum_port) for s, p in servers.items()}

    def _quorum_address(self, sid: int) -> tuple[str, int]:
        p = self.membership.servers.get(sid) or self.last_seen.servers.get(sid) or self.cfg.servers[sid]
        return p.host, p.quorum_port

    def _show_config(self, zxid: int) -> None:
        """Put the committed membership in /zookeeper/config, as every Apache server shows it."""
        self.server.core.tree.set_config(self.membership.text().encode(), zxid, int(time.time() * 1000))

    def prepare_reconfig(self, r: Any, zxid: int, auth: list[Id]) -> bytes:
        """The leader's checks of a reconfig request, in Apache's order (PrepRequestProcessor),
        and the new /zookeeper/config data. Raises ZkError with the answer for the client."""
        if not getattr(self.cfg, "reconfig_enabled", False):
            raise ZkError(Err.RECONFIGDISABLED)
        if self.last_seen.version != self.membership.version:
            raise ZkError(Err.RECONFIGINPROGRESS)
        if r.curConfigId != -1 and r.curConfigId != self.last_seen.version:
            raise ZkError(Err.BADVERSION, "/zookeeper/config")
        if r.newMembers is not None:
            new = Membership.non_incremental(r.newMembers)
        else:
            new = self.last_seen.incremental(r.joiningServers, r.leavingServers)
        new = new.with_version(zxid)
        voters = new.voters
        if getattr(self.cfg, "standalone_enabled", True) and len(voters) < 2:
            raise ZkError(Err.BADARGUMENTS, "Reconfig failed - new configuration must include at least 2 followers")
        if not voters:
            raise ZkError(Err.BADARGUMENTS, "Reconfig failed - new configuration must include at least 1 follower")
        synced = {self.sid} | self.peer.zab.synced_followers()
        if not new.quorum_of(synced):
            raise ZkError(Err.NEWCONFIGNOQUORUM)
        node = self.server.core.tree.nodes.get("/zookeeper/config")
        if node is not None:
            aclmod.AclCheck.check(Perm.WRITE, node.acl, auth, "/zookeeper/config")
        self.last_seen = new
        self.next_voters = voters
        log.info("reconfig to version 0x%x proposed: voters %s, observers %s", zxid, sorted(voters),
                 sorted(new.observers))
        return new.text().encode()

    def _activate(self, new: Membership, force: bool = False) -> None:
        """A reconfig committed (ZAB and the election took it already, see ZabPeer._committed):
        links to new members, none to removed ones, and the dynamic config file."""
        if new.version <= self.membership.version and not force:
            return
        old = self.membership
        self.membership = new
        if self.last_seen.version <= new.version:
            self.last_seen = new
        log.info("membership version 0x%x active: voters %s, observers %s (were %s, %s)", new.version,
                 sorted(new.voters), sorted(new.observers), sorted(old.voters), sorted(old.observers))
        self.election_net.set_peers(self._peer_addresses("election"))
        if getattr(self.cfg, "reconfig_enabled", False):
            self._write_dynamic_config()

    def _write_dynamic_config(self) -> None:
        """As Apache with reconfigEnabled: the membership goes to zoo.cfg.dynamic.<version> and
        zoo.cfg points at it (its server lines move out), so a restart starts from the newest
        membership. The first rewrite keeps the original as zoo.cfg.bak."""
        source = self.cfg.source
        if source is None:
            return
        source = Path(source)
        dynamic = source.with_name(f"{source.name}.dynamic.{self.membership.version:x}")
        try:
            _write_atomic(dynamic, self.membership.dynamic_file_text())
            text = source.read_text()
            backup = source.with_name(source.name + ".bak")
            if not backup.exists():
                _write_atomic(backup, text)
            me = self.membership.servers.get(self.sid)
            drop: tuple[str, ...] = ("server.", "group.", "weight.", "dynamicConfigFile")
            if me is not None and me.client_port is not None:
                drop += ("clientPort", "clientPortAddress")  # this server's line carries them now
            kept = [line for line in text.splitlines()
                    if not line.strip().split("=", 1)[0].strip().startswith(drop)]
            kept.append(f"dynamicConfigFile={dynamic}")
            _write_atomic(source, "\n".join(kept) + "\n")
        except OSError as exc:
            log.warning("could not write the dynamic config file %s: %s", dynamic, exc)

    # ------------------------------------------------------------ setup
    def _load_history(self) -> History:
        entries = list(self.db.txnlog.read_from(0))
        last = self.db.tree.last_zxid
        entries = [(z, d) for z, d in entries if z <= last]
        if len(entries) > HISTORY_WINDOW:
            start = entries[-HISTORY_WINDOW - 1][0]
            entries = entries[-HISTORY_WINDOW:]
        else:
            start = entries[0][0] - 1 if entries else last
            # the log may not reach back to 0: anything older only comes by SNAP
            snap = snapmod.find_snapshots(self.db.data_dir)
            if entries and snap:
                start = min(start, snapmod.snapshot_zxid(snap[0]))
            if not entries:
                start = last
        return History(entries, start=start, limit=HISTORY_WINDOW)

    def _snapshot(self) -> tuple[int, bytes]:
        tree = self.server.core.tree
        rows = tree.snapshot_rows()
        sessions = {sid: s.timeout for sid, s in self.server.core.sessions.sessions.items()}
        return tree.last_zxid, snapmod.serialize_rows(tree.last_zxid, sessions, rows.acls, rows)

    def attach(self) -> None:
        """Make the server a member without a role: it serves no client until it has one.
        Called before the client port opens, so no client is ever served as if standalone."""
        self.server.join(self)

    async def start(self) -> None:
        """Join the ensemble: peer ports, election, ticks (after attach())."""
        self._schedule_read_only()
        await self.quorum_net.start()  # first: the election port may wait (electionPortBindRetry)
        await self.election_net.start()
        self._apply(self.peer.start())
        self._timers.append(self.loop.call_later(ELECTION_TICK, self._election_tick))
        self._timers.append(self.loop.call_later(self.cfg.tick_time / 1000, self._zab_tick))

    async def stop(self) -> None:
        self.stopped = True
        for t in self._timers:
            t.cancel()
        await self.election_net.stop()
        await self.quorum_net.stop()

    # ------------------------------------------------------------ timers
    def _election_tick(self) -> None:
        if self.stopped:
            return
        self._tell_reachable()
        self._apply(self.peer.tick_election())
        if self.peer.state == ServerState.LOOKING:
            self.election_net.kick() if self.peer.election.now % 20 == 0 else None
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(self.loop.call_later(ELECTION_TICK, self._election_tick))

    def _zab_tick(self) -> None:
        if self.stopped:
            return
        self._apply(self.peer.tick_zab())
        self._timers.append(self.loop.call_later(self.cfg.tick_time / 1000, self._zab_tick))

    # ------------------------------------------------------------ network inputs
    def _on_election(self, sid: int, msg: Notification) -> None:
        self._tell_reachable()
        self._apply(self.peer.receive_election(msg))

    def _tell_reachable(self) -> None:
        """The election may end its finalize wait once every voter it can still reach agrees."""
        if self.peer.state == ServerState.LOOKING:
            net = self.election_net
            self.peer.set_reachable({s for s in net.peers if net.reachable(s)})

    def _on_link_down(self, sid: int) -> None:
        self._apply(self.peer.zab_link_down(sid))

    def _on_zab(self, sid: int, env: Envelope) -> None:
        self._apply(self.peer.receive_zab(sid, env))

    def _on_request(self, sid: int, req: qw.ForwardedRequest, auth: tuple[tuple[str, str], ...]) -> None:
        if req.op == _OP_SYNC:
            self._leader_sync(sid)
        else:
            self._leader_write(req, auth)

    def _on_pinged(self, sid: int, sessions: list[tuple[int, int]]) -> None:
        now = int(time.time() * 1000)
        for session, _ in sessions:
            self.server.core.sessions.touch(session, now)

    def _on_revalidate(self, session: int, timeout: int) -> bool:
        """A client moved its session to a learner: it is valid while the leader tracks it."""
        s = self.server.core.sessions.sessions.get(session)
        if s is None or s.closing:
            return False
        self.server.core.sessions.touch(session, int(time.time() * 1000))
        return True

    def _touched(self) -> list[tuple[int, int]]:
        return self.server.take_touched_sessions()

    def _on_synced(self) -> None:
        if self.sync_waiters:
            conn, req = self.sync_waiters.popleft()
            self._answer_sync(conn, req)

    def _answer_sync(self, conn: ClientConnection, req: Request) -> None:
        conn.send_reply(req.xid, self.server.core.last_zxid, 0, PathOnly(req.record.path))
        conn.record_latency(req, self.server.core.last_zxid)

    def _learner_alive(self, sid: int) -> bool:
        return self.peer.zab.learner_alive(sid, within_ticks=2)

    def _designated_leader(self, zxid: int) -> int | None:
        """For a reconfig's commit: the server that leads under the new membership (us if we
        still vote), as COMMITANDACTIVATE names it; None for other txns."""
        payload = self.peer.zab.history.payload_of(zxid)
        if payload is None:
            return None
        config = _config_of(payload)
        if config is None:
            return None
        voters, _ = _members_of(config)
        return self.sid if self.sid in voters or not voters else min(voters)

    # ------------------------------------------------------------ outputs
    def _apply(self, out: PeerOutput) -> None:
        for to, n in out.election:
            self.election_net.send(to, n)
        effects = out.effects
        # epochs first: what goes out may promise them (ACKEPOCH, the ACK of NEWLEADER, LEADERINFO)
        saved: list[Any] | None = None
        for eff in effects:
            if eff.__class__ is SaveEpochs:
                saved = [eff for eff in effects if isinstance(eff, SaveEpochs)]
                break
        if saved:
            for eff in saved:
                self._effect(eff)
        if out.zab:
            net = self.quorum_net
            if self.peer.zab.role == _LEADER:
                for to, m in out.zab:
                    net.send_to_learner(to, m)
            else:
                for to, m in out.zab:
                    if isinstance(m.msg, FollowerInfo):
                        net.follow(to, self._quorum_address(to), m)
                    else:
                        net.send_to_leader(m)
        for ev in out.events:
            self._event(ev)
        if saved:
            effects = [eff for eff in effects if not isinstance(eff, SaveEpochs)]
        for eff in effects:
            self._effect(eff)

    def _event(self, ev: ElectionEvent) -> None:
        record = {"ts": time.time(), "server": self.sid, "kind": ev.kind, "round": ev.round}
        if ev.vote is not None:
            record["vote"] = {"epoch": ev.vote.epoch, "zxid": hex(ev.vote.zxid), "leader": ev.vote.leader}
        if ev.peer is not None:
            record["peer"] = ev.peer
        if ev.state is not None:
            record["state"] = ev.state
        if ev.kind == "state_changed" and ev.state == ServerState.LOOKING.value:
            self.look_started = time.monotonic()
        if ev.kind == "leader_elected":
            ms = (time.monotonic() - self.look_started) * 1000
            record["election_ms"] = round(ms, 1)
            self.election_ms.append(ms)
            log.info("LEADER ELECTION TOOK - %d MS (leader %s, I am %s)", ms, ev.peer, ev.state)
        self.events.append(record)
        del self.events[:-1000]
        try:
            with open(self.events_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError:
            pass

    def _effect(self, eff: Any) -> None:
        server = self.server
        if isinstance(eff, Append):  # the two of every write first
            server.log_txn(eff.zxid, eff.payload)
        elif isinstance(eff, CommitTxn):
            self._commit(eff.zxid, eff.payload)
        elif isinstance(eff, SaveEpochs):
            self.epochs.write("acceptedEpoch", eff.accepted)
            self.epochs.write("currentEpoch", eff.current)
        elif isinstance(eff, Truncate):
            log.warning("truncating our log to 0x%x (an uncommitted tail)", eff.zxid)
            self._reload(truncate=eff.zxid)
        elif isinstance(eff, InstallSnapshot):
            log.info("installing the leader's snapshot at 0x%x", eff.zxid)
            self._reload(snapshot=(eff.zxid, eff.data))
        elif isinstance(eff, MembershipChanged):
            self._activate(Membership.parse(eff.config.decode()))
        elif isinstance(eff, ConfigAdopted):
            log.info("a serving server knows membership version 0x%x; taking it", eff.version)
            self._activate(Membership.parse(eff.config.decode()))
            self._show_config(self.membership.version)
        elif isinstance(eff, Established):
            self.last_seen = self.membership
            if getattr(self.cfg, "reconfig_enabled", False) and self.membership.version == 0:
                # as Apache: a static membership takes the new epoch's first zxid as its version
                self.membership = self.last_seen = self.membership.with_version(eff.epoch << 32)
                self._show_config(self.membership.version)
                self._write_dynamic_config()
            self._serve(eff.role, eff.epoch)
        elif isinstance(eff, Abandon):
            log.warning("leaving %s: %s", server.state, eff.reason)
            self.last_seen = self.membership
            self.quorum_net.close_all()
            self._unserve()

    def _reload(self, truncate: int | None = None, snapshot: tuple[int, bytes] | None = None) -> None:
        """Rebuild the tree from disk after TRUNC or SNAP (followers only, not serving)."""
        self.server.drain_log()
        txnlog = self.db.txnlog
        if truncate is not None:
            txnlog.truncate(truncate)
            for p in snapmod.find_snapshots(self.db.data_dir):
                if snapmod.snapshot_zxid(p) > truncate:
                    p.unlink()
        if snapshot is not None:
            zxid, data = snapshot
            txnlog.close()
            for p in list(Path(self.db.log_dir, "version-2").glob("log.*")):
                p.unlink()
            for p in snapmod.find_snapshots(self.db.data_dir):
                p.unlink()  # older states must not win over the leader's at start-up
            snapmod.install_snapshot_bytes(self.db.data_dir, zxid, data)
        txnlog.close()
        db = Database.open(self.db.data_dir, self.db.log_dir, force_sync=self.cfg.force_sync,
                           prealloc_kb=self.cfg.pre_alloc_size_kb)
        self.db = db
        self.server.reload(db.tree, db.sessions, db.txnlog)
        self.digest_fuzzy_until = db.fuzzy_until
        self.peer.reloaded(db.tree.last_zxid)
        held = _newest(Membership.from_config(self.cfg), db.tree)
        if held.version != self.membership.version:
            # a reconfig we missed came with the leader's snapshot, or a TRUNC took away one
            # that never committed
            self._activate(held, force=True)
            self._apply(self.peer.reconfigure(held.voters, held.observers, held.version, held.text().encode()))
        self._show_config(self.membership.version)

    # ------------------------------------------------------------ roles
    def _schedule_read_only(self) -> None:
        """With readonlymode.enabled, a server still without a role after max(2 s, tickTime) serves
        read-only clients (as Apache's QuorumPeer starts its ReadOnlyZooKeeperServer)."""
        if not getattr(self.cfg, "readonly_mode_enabled", False):
            return
        delay = max(2.0, self.cfg.tick_time / 1000.0)
        self.loop.call_later(delay, self.server.enter_read_only)

    def _serve(self, role: Role, epoch: int) -> None:
        self.server.serve(ServerMode(role.value))
        log.info("serving as %s in epoch %d (zxid 0x%x)", role, epoch, self.server.core.last_zxid)

    def _unserve(self) -> None:
        self.server.unserve()
        self._schedule_read_only()
        self.waiting.clear()
        self.prepared.clear()
        self.sync_waiters.clear()
        self.local_syncs.clear()
        self.sync_pending.clear()

    # ------------------------------------------------------------ writes
    def client_write(self, conn: ClientConnection, req: Request, op: int, record: Any) -> None:
        origin = Pending(None, None, conn, req)  # type: ignore[arg-type]
        self._write(conn.session_id, req.xid, op, record, conn.auth, origin)

    def internal_write(self, session_id: int, op: int, record: Any, on_commit: Any) -> None:
        origin = Pending(None, None, None, None, on_commit)  # type: ignore[arg-type]
        self._write(session_id, 0, op, record, [aclmod.SUPER_ID], origin)

    def _write(self, session: int, cxid: int, op: int, record: Any, auth: list[Id], origin: Pending) -> None:
        if not self.peer.established:
            self._fail(origin, Err.CONNECTIONLOSS)
            return
        self.waiting[(session, cxid)] = origin
        if self.peer.can_propose:
            self._propose(session, cxid, op, record, auth, int(time.time() * 1000))
            return
        if self.peer.zab.role in _LEARNING:
            req = qw.ForwardedRequest(session, cxid, op, _encode_request(op, record))
            if self.peer.leader is None or not self.quorum_net.forward(
                    req, tuple([(a.scheme or "", a.id or "") for a in auth])):  # never null: our own ids
                self.waiting.pop((session, cxid), None)
                self._fail(origin, Err.CONNECTIONLOSS)

    def session_reconnected(self, session: int, timeout: int) -> None:
        """A client reattached ``session`` to this server: a learner tells the leader (REVALIDATE)."""
        if self.peer.zab.role in (Role.OBSERVER, Role.FOLLOWER) and self.peer.leader is not None:
            self.quorum_net.revalidate(session, timeout)

    def ask_session(self, session: int, timeout: int, answer: Callable[[bool | None], None]) -> bool:
        """A client reattached a session this learner does not hold (yet): ask the leader."""
        if self.peer.zab.role in (Role.OBSERVER, Role.FOLLOWER) and self.peer.leader is not None:
            return self.quorum_net.revalidate(session, timeout, answer)
        return False

    def _fail(self, origin: Pending, err: Err) -> None:
        if origin.conn is not None and origin.req is not None:
            origin.conn.send_reply(origin.req.xid, self.server.core.last_zxid, int(err))
            origin.conn.write_done()

    def _leader_write(self, msg: qw.ForwardedRequest, auth_ids: tuple[tuple[str, str], ...]) -> None:
        if not self.peer.can_propose:
            return  # the learner will time out and its client reconnect
        try:
            record = _decode_request(msg.op, msg.body)
        except Exception as exc:  # a peer sent junk: refuse this write only
            log.warning("undecodable forwarded write op %s: %s", msg.op, exc)
            return
        auth = [Id(s, i) for s, i in auth_ids]
        self._propose(msg.session, msg.cxid, msg.op, record, auth, int(time.time() * 1000))

    def _propose(self, session: int, cxid: int, op: int, record: Any, auth: list[Id], now: int) -> None:
        core = self.server.core
        zxid = self.peer.next_zxid()
        self.next_voters = None
        hdr, body = core.prep.prepare(session, cxid, op, record, auth, now, zxid=zxid)
        digest = core.prep.last_digest
        tree_digest = None if digest is None else to_long(digest + self.digest_skew)
        payload = encode_txn_digest(hdr, body, DIGEST_VERSION, tree_digest)
        # what the commit applies: these records, not the payload decoded again
        self.prepared[zxid] = (hdr, body, tree_digest)
        got, out = self.peer.propose(payload, self._next_voters())
        assert got == zxid, (hex(got), hex(zxid))
        self._apply(out)

    def _next_voters(self) -> set[int] | None:
        # what prepare() left in next_voters (prepare_reconfig sets it): read through a call, as
        # mypy takes it for the None assigned before prepare(), and a build compiled with mypyc
        # checks the value read against that
        return self.next_voters

    def _commit(self, zxid: int, payload: bytes) -> None:
        prepared = self.prepared.pop(zxid, None) if self.prepared else None
        if prepared is None:  # a learner's commit, or a leader's of a txn from an earlier epoch
            hdr, body, txn_digest = decode_txn_digest(payload)
            tree_digest = None if txn_digest is None or txn_digest.version != DIGEST_VERSION \
                else txn_digest.treeDigest
        else:
            hdr, body, tree_digest = prepared
        origin = self.waiting.pop((hdr.clientId, hdr.cxid), None)
        self.server.apply_txn(hdr, body, origin)
        if tree_digest is not None:
            self._check_digest(hdr.zxid, tree_digest)

        if self.sync_pending:
            ready = [w for w in self.sync_pending if w[0] <= zxid]
            if ready:
                self.sync_pending = [w for w in self.sync_pending if w[0] > zxid]
                for _, learner in ready:
                    self._sync_reply(learner)
        self.server.snapshot_if_due()

    def _check_digest(self, zxid: int, tree_digest: int) -> None:
        """Apache's DataTree.compareDigest: our tree after a txn against the leader's number (a
        TxnDigest's treeDigest of our digest version)."""
        tree = self.server.core.tree
        if not tree.digest_enabled or zxid <= self.digest_fuzzy_until:
            return
        self.digests_checked += 1
        ours = to_long(tree.tree_digest())
        if ours != tree_digest:
            self.digest_mismatches += 1
            if self.digest_mismatches == 1 or self.digest_mismatches % 1000 == 0:
                log.error("digest mismatch on txn 0x%x: the leader says %d, our tree has %d (%d mismatches)",
                          zxid, tree_digest, ours, self.digest_mismatches)

    def persisted(self, zxid: int) -> None:
        self._apply(self.peer.persisted(zxid))

    # ------------------------------------------------------------ sync
    def client_sync(self, conn: ClientConnection, req: Request) -> bool:
        """A client's sync: True when the reply is deferred (a learner asks the leader, which
        answers once what it proposed before has committed)."""
        if self.peer.can_propose or self.peer.leader is None:
            last = self.peer.zab.last_outstanding()
            if last is None:
                return False
            self.local_syncs.append((conn, req))
            self.sync_pending.append((last, self.sid))
            return True
        body = PathOnly(req.record.path).to_bytes()
        if not self.quorum_net.forward(qw.ForwardedRequest(conn.session_id, req.xid, int(Op.sync), body), ()):
            return False
        self.sync_waiters.append((conn, req))
        return True

    def _leader_sync(self, learner: int) -> None:
        last = self.peer.zab.last_outstanding()
        if last is None:
            self._sync_reply(learner)
        else:
            self.sync_pending.append((last, learner))

    def _sync_reply(self, learner: int) -> None:
        if learner == self.sid:
            if self.local_syncs:
                conn, req = self.local_syncs.popleft()
                self._answer_sync(conn, req)
        else:
            self.quorum_net.send_sync(learner)

    # ------------------------------------------------------------ reporting
    def report(self) -> QuorumReport:
        """This member's numbers for the server's reports (stats.ServerStats.quorum)."""
        learners = tuple(LearnerReport(lr.sid, lr.observer, lr.phase, lr.synced, lr.voting)
                         for lr in self.peer.zab.learner_states())
        return QuorumReport(leader=self.peer.leader, established=self.peer.established, learners=learners,
                            election_ms=tuple(self.election_ms), look_started=self.look_started,
                            mntr_rows=tuple(self.mntr(learners)), events=tuple(self.events[-200:]))

    def mntr(self, learners: tuple[LearnerReport, ...]) -> list[tuple[str, object]]:
        """The quorum's own mntr keys (zk_*); ``learners`` as report() sees them."""
        zab = self.peer.zab
        rows: list[tuple[str, object]] = [("zk_peer_state", f"{self.server.state} - broadcast"
                                           if self.peer.established else ServerMode.LOOKING)]
        if self.peer.can_propose:
            rows += [
                ("zk_learners", len(learners)),
                ("zk_followers", sum(1 for lr in learners if not lr.observer)),
                ("zk_synced_followers", sum(1 for lr in learners if not lr.observer and lr.synced)),
                ("zk_synced_non_voting_followers", sum(1 for lr in learners if lr.observer and lr.synced)),
                ("zk_synced_observers", sum(1 for lr in learners if lr.observer and lr.synced)),
                ("zk_pending_syncs", len(self.sync_pending)),
                ("zk_last_proposal_size", 0),
            ]
        rows += [("zk_quorum_size", len(self.peer.election.voters)), ("zk_epoch", zab.current_epoch),
                 ("zk_election_count", len(self.election_ms)),
                 ("zk_last_election_time_ms", round(self.election_ms[-1], 1) if self.election_ms else 0),
                 ("zk_digest_mismatches_count", self.digest_mismatches),
                 ("zk_digest_checked_count", self.digests_checked)]
        return rows


def _bind(host: str) -> str:
    return host


def _newest(configured: Membership, tree: Any) -> Membership:
    """The membership to start from: zoo.cfg's, unless the data tree (snapshot and log) holds a
    reconfig newer than it, as Apache prefers the last committed config it finds."""
    node = tree.nodes.get("/zookeeper/config")
    if node is None or not node.data:
        return configured
    try:
        stored = Membership.parse(node.data.decode())
    except (ValueError, UnicodeDecodeError, ConfigError) as exc:
        log.warning("ignoring unreadable /zookeeper/config in the data tree: %s", exc)
        return configured
    return stored if stored.version > configured.version and stored.servers else configured


_TXN_TYPE_AT = 8 + 4 + 8 + 8  # TxnHeader: clientId, cxid, zxid, time, then the type
_RECONFIG_TYPE = int(Op.reconfig).to_bytes(4, "big", signed=True)


def _config_of(payload: bytes) -> bytes | None:
    """For ZAB: the /zookeeper/config text a reconfig txn installs; None for other txns (asked
    for every commit: the type's four bytes are compared as they are)."""
    if payload[_TXN_TYPE_AT:_TXN_TYPE_AT + 4] != _RECONFIG_TYPE:
        return None
    _, body = decode_txn(payload)
    return bytes(body.data or b"")


def _members_of(config: bytes) -> tuple[set[int], set[int]]:
    m = Membership.parse(config.decode())
    return m.voters, m.observers


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def serve_quorum(cfg: ServerConfig, stop: asyncio.Event | None = None,
                       started: asyncio.Event | None = None) -> int:
    """Serve as a member of the ensemble ``cfg`` names (app.serve with this module's Ensemble)."""
    return await serve(cfg, started=started, stop=stop,
                       replication=lambda server, db, loop: Ensemble(cfg, server, db, loop))


def run_quorum_peer(cfg: ServerConfig) -> int:
    return asyncio.run(serve_quorum(cfg))


__all__ = ["Ensemble", "run_quorum_peer", "serve_quorum", "ZkError"]
