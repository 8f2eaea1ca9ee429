"""The server shell: client port, request pipeline, group commit, timers.

Requests flow as in ZooKeeper (prep -> sync -> final): a write is prepared into a
transaction, handed to the committer (standalone: txn log with group-commit fsync),
and applied to the tree only once durable; then its reply and watch events go out.

What differs by role is decided in one place, the server's ``role``: ``Standalone`` runs
the pipeline above on its own; ``QuorumMember`` hands writes and syncs to the ensemble
(``quorum.Ensemble``, through the ``Replication`` protocol), which applies them once ZAB
commits them. The quorum shell changes the server only through its public methods
(``join``, ``serve``, ``unserve``, ``reload``, ``log_txn``, ...). The reports (4lw, mntr,
AdminServer, metrics) read it through ``stats`` (``stats.ServerStats``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import acl as aclmod
from .codes import Err, Op, Xid, ZkError
from .connection import MALFORMED, UNKNOWN, ClientConnection, Request
from .core import Limits, ServerCore
from .datatree import ApplyResult, DataTree, Node
from .digest import DIGEST_VERSION
from .listening import listen_on
from .records import (
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    Id,
    StatResponse,
    TxnHeader,
)
from .servermode import ServerMode
from .sessions import session_password
from .stats import Counters, QuorumReport, ServerStats, Summary
from .txncodec import encode_txn_digest
from .wire import encode_multi_results
from .znode import leaf_stat

if TYPE_CHECKING:
    from .clientpipe import ClientWorker

log = logging.getLogger("zkops.server")

EMPTY_PASSWD = b"\0" * 16
# how long a learner waits for a session the leader vouched for to reach its own tree
REVALIDATE_APPLY_WAIT_MS = 2000
# how long a stopping server waits for the child writing its snapshot before it kills it
SNAPSHOT_CHILD_WAIT_S = 60.0


def close_inherited_sockets() -> None:
    """In a forked snapshot child: close every socket it inherited from the server (the client
    port, the quorum and election links, every client connection). A server killed while its
    child writes is then gone from the network at once: its clients and peers see their
    connections close, and a restarted server can bind its ports. Files stay open."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every descriptor the process may hold
        fds = list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65536)))
    for fd in fds:
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            pass


class Pending:
    """A write waiting to become durable, and who asked for it (a plain class with slots: one
    is made per write)."""

    __slots__ = ("hdr", "body", "conn", "req", "on_commit", "answer")

    def __init__(self, hdr: TxnHeader, body: Any, conn: ClientConnection | None, req: Request | None,
                 on_commit: Callable[[ApplyResult], None] | None = None,
                 answer: Callable[[], None] | None = None) -> None:
        self.hdr = hdr
        self.body = body
        self.conn = conn
        self.req = req
        self.on_commit = on_commit
        self.answer = answer  # a reply that takes no txn, in its turn

    def __repr__(self) -> str:
        return f"Pending(zxid=0x{self.hdr.zxid:x}, type={self.hdr.type})" if self.hdr is not None else "Pending()"


class GroupCommitter:
    """Makes txns durable in batches: appended on the loop, written and fsynced on one thread.

    The writer thread loops on its own, as Apache's SyncRequestProcessor does: when an fsync
    returns it starts on whatever the loop appended meanwhile, without waiting for the loop
    to hear about the last one. The disk is then never idle while there is something to
    write, and replies to one batch go out while the next is on its way to disk.
    """

    def __init__(self, server: ZooKeeperServer, txnlog: Any, force_sync: bool) -> None:
        self.server = server
        self.txnlog = txnlog
        self.force_sync = force_sync
        self.roll_pending = False
        self.kick_scheduled = False
        self.fsync_ms_last = 0.0
        self.fsync_count = 0
        # the loop rings the writer with a bare lock: released = rung, and the writer's acquire
        # takes the ring (rings while it writes make one more sync); a Condition cost the loop
        # a Python-level notify per iteration and the writer a new lock per wait
        self._bell = threading.Lock()
        self._bell.acquire()
        self._stopping = False
        self._sync_thread = threading.Thread(target=self._run, name="SyncThread", daemon=True)
        self._sync_thread.start()

    def submit(self, zxid: int, data: bytes) -> None:
        """Append one txn; the writer hears of it once per loop iteration, so the txns of one
        iteration go to disk together."""
        try:
            if self.roll_pending:
                self.roll_pending = False
                self.txnlog.roll()
            self.txnlog.append(zxid, data)
        except Exception as exc:  # a closed or failed log: stop, as for a failed write
            self._failed(exc)
            return
        if not self.kick_scheduled:
            self.kick_scheduled = True
            self.server.loop.call_soon(self._kick)

    def _kick(self) -> None:
        self.kick_scheduled = False
        self._ring()

    def _ring(self) -> None:
        bell = self._bell
        if bell.locked():  # only the writer locks it, so it stays locked until this release
            bell.release()

    def _run(self) -> None:
        loop = self.server.loop
        while True:
            self._bell.acquire()
            stopping = self._stopping  # read before the sync: what was appended before close() goes out
            t0 = time.perf_counter()
            try:
                upto = self.txnlog.sync()
            except BaseException as exc:
                if stopping:  # the server is on its way down already: nothing written was acknowledged
                    log.error("txn log: the last write at close failed: %s", exc)
                else:
                    loop.call_soon_threadsafe(self._failed, exc)
                return
            if upto is not None:
                loop.call_soon_threadsafe(self._done, upto, (time.perf_counter() - t0) * 1000)
            if stopping:
                return

    def _failed(self, exc: BaseException) -> None:
        log.critical("txn log write failed, stopping: %s", exc)
        self.server.fatal(exc)

    def _done(self, upto: int, ms: float) -> None:
        self.fsync_ms_last = ms
        self.fsync_count += 1
        self.server.fsync_summary.observe(ms)
        self.server.durable(upto)

    def drain(self) -> None:
        """Make everything appended so far durable, on the calling thread, without telling
        the loop (for a follower about to rebuild its tree from disk)."""
        self.txnlog.sync()

    def switch_log(self, txnlog: Any) -> None:
        """Append to ``txnlog`` from now on (a learner reopened its log after TRUNC or SNAP;
        drain() first)."""
        self.txnlog = txnlog

    def close(self) -> None:
        """Sync what was appended, then stop the writer."""
        self.kick_scheduled = False
        self._stopping = True
        self._ring()
        self._sync_thread.join()


# (zxid, sessions, the tree's (path, stored znode) pairs: DataTree.packed) -> whatever it returns
SnapshotWriter = Callable[[int, dict[int, int], Iterable[tuple[str, bytes | Node]]], Any]


class Replication(Protocol):
    """What a quorum member hands its writes and syncs to (``quorum.Ensemble``)."""

    def client_write(self, conn: ClientConnection, req: Request, op: int, record: Any) -> None:
        """Propose (leader) or forward (learner) a client's write; apply_txn answers it."""

    def internal_write(self, session_id: int, op: int, record: Any,
                       on_commit: Callable[[ApplyResult], None] | None) -> None:
        """The same for a write the server makes itself (session create/expire, containers)."""

    def persisted(self, zxid: int) -> None:
        """Our log holds every txn up to ``zxid``."""

    def client_sync(self, conn: ClientConnection, req: Request) -> bool:
        """A client's sync: True when the ensemble answers it later."""

    def prepare_reconfig(self, r: Any, zxid: int, auth: list[Id]) -> bytes:
        """The leader's checks of a reconfig and the new /zookeeper/config data."""

    def report(self) -> QuorumReport:
        """The quorum's numbers, for the reports."""

    def session_reconnected(self, session: int, timeout: int) -> None:
        """A client reattached ``session`` to this server (a learner tells the leader: REVALIDATE)."""

    def ask_session(self, session: int, timeout: int, answer: Callable[[bool | None], None]) -> bool:
        """A client reattached a session this server does not hold: a learner asks the leader
        (REVALIDATE) and hands ``answer`` its verdict (None: the connection to the leader closed
        first). False when there is no leader to ask (``answer`` is then never called)."""


class ZooKeeperServer:
    """Everything one server runs on its event loop (standalone, or a quorum member's
    client side once the quorum shell joins it)."""

    def __init__(self, cfg: Any, tree: DataTree | None = None, sessions: dict[int, int] | None = None,
                 txnlog: Any = None, loop: asyncio.AbstractEventLoop | None = None, *, server_id: int = 0,
                 snapshot_writer: SnapshotWriter | None = None,
                 on_fatal: Callable[[BaseException], None] | None = None) -> None:
        """``server_id`` is the ensemble member's id (0 standalone): conf's serverId, and the
        top byte of the session ids this server makes (1 when standalone, as before)."""
        self.cfg = cfg
        self.loop = loop or asyncio.get_event_loop()
        self.server_id = server_id
        limits = Limits(tick_time=cfg.tick_time, min_session_timeout=cfg.min_session_timeout,
                        max_session_timeout=cfg.max_session_timeout,
                        extended_types=cfg.extended_types_enabled, super_digest=cfg.super_digest,
                        server_id=server_id or 1)
        now = _now_ms()
        self.core = ServerCore(limits, tree, now)
        if not getattr(cfg, "digest_enabled", True):
            self.core.tree.set_digest_enabled(False)  # zookeeper.digest.enabled=false
        self._quota_setup(cfg)
        for sid, timeout in (sessions or {}).items():
            self.core.sessions.add(sid, timeout, now)
        self.jute_maxbuffer = cfg.jute_maxbuffer
        self.txnlog = txnlog
        self.committer = GroupCommitter(self, txnlog, cfg.force_sync) if txnlog is not None else None
        self.pending: deque[Pending] = deque()
        self.connections: set[ClientConnection] = set()
        self.by_session: dict[int, ClientConnection] = {}
        self.counters = Counters()
        self.fsync_summary = Summary()
        self.looking_count = 0  # times an ensemble member went looking (metrics: looking_count)
        self.state = ServerMode.STANDALONE
        self.running = True
        self.servers: list[asyncio.base_events.Server] = []
        self.txns_since_snapshot = 0
        self.snap_threshold = self._next_snap_threshold()
        self.snapshot_in_progress = False
        self.snapshot_child: int | None = None  # the pid of the forked child writing one
        self.on_fatal = on_fatal
        self._timers: list[asyncio.TimerHandle] = []
        self.snapshot_writer = snapshot_writer
        self.fork_snapshots = True  # write snapshots from a forked child (see _fork_snapshot)
        # who decides by role: Standalone, or QuorumMember once the quorum shell joins
        self.role: Standalone | QuorumMember = Standalone(self)
        self.stats = ServerStats(self, lambda: self.role.quorum())
        # Sessions heard from since the last report to the leader (ensemble mode only): the
        # leader owns expiry, so a follower must report activity, never mere connectedness.
        self.touched_sessions: set[int] = set()
        self.expire_sessions = True  # only the leader (or a standalone server) expires sessions
        self.serving_clients = True  # False while an ensemble member has no role
        self.read_only = False  # serving read-only sessions while cut off (readonlymode.enabled)
        self.sasl_users: dict[str, str] | None = None  # from the JAAS file, read on the first sasl request
        self.ro_sessions: set[int] = set()
        # While a batch of durable txns is applied: the connections that have output, flushed
        # once at its end (one write each, without a loop callback per connection)
        self.out_batch: list[ClientConnection] | None = None
        self.client_worker: ClientWorker | None = None  # clientPortWorkers=1: the client port's I/O process

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        cfg = self.cfg
        if cfg.client_port:
            from . import clientpipe

            worker = clientpipe.wanted(cfg)
            srv = await self.loop.create_server(lambda: ClientConnection(self),
                                                **listen_on(cfg.client_port_address, cfg.client_port),
                                                backlog=1024, start_serving=not worker)
            self.servers.append(srv)
            log.info("binding to port %s:%d", cfg.client_port_address, cfg.client_port)
            if worker:  # a second process accepts, reads and writes the client sockets
                self.client_worker = clientpipe.ClientWorker(self.loop, srv, lambda: ClientConnection(self))
                await self.client_worker.start()
        if cfg.secure_client_port:
            from .tls import server_context  # ssl is imported only when a TLS port is configured

            ctx = server_context(cfg.raw)
            address = cfg.raw.get("secureClientPortAddress") or cfg.client_port_address
            srv = await self.loop.create_server(lambda: ClientConnection(self, secure=True),
                                                **listen_on(address, cfg.secure_client_port), backlog=1024,
                                                ssl=ctx, ssl_handshake_timeout=10)
            self.servers.append(srv)
            log.info("binding to TLS port %s:%d (client certificates: %s)", address, cfg.secure_client_port,
                     cfg.raw.get("ssl.clientAuth", "need") if cfg.raw.get("ssl.trustStore.location") else "none")
        await self._start_http()
        self._schedule_tick()
        self._schedule_containers()

    async def _start_http(self) -> None:
        """The AdminServer (on by default, as in Apache ZooKeeper) and the Prometheus port (when asked)."""
        cfg = self.cfg
        raw = getattr(cfg, "raw", {})
        wants_admin = getattr(cfg, "admin_enable_server", False)
        metrics_port = getattr(cfg, "metrics_port", None)
        if metrics_port is None and "Prometheus" in raw.get("metricsProvider.className", ""):
            metrics_port = 7000
        if not wants_admin and metrics_port is None:
            return
        from .httpd import start_http

        if wants_admin:
            from . import adminserver

            srv = await start_http(cfg.admin_server_address, cfg.admin_server_port,
                                   adminserver.handler(self.stats, self.loop),
                                   "AdminServer")
            if srv is not None:
                self.servers.append(srv)
        if metrics_port is not None:
            from . import metrics

            host = raw.get("metricsProvider.httpHost", "0.0.0.0")
            srv = await start_http(host, metrics_port, metrics.handler(self.stats), "Prometheus metrics")
            if srv is not None:
                self.servers.append(srv)

    async def stop(self) -> None:
        self.running = False
        for t in self._timers:
            t.cancel()
        for srv in self.servers:
            srv.close()
        for conn in list(self.connections):
            conn.close()
        if self.client_worker is not None:  # no more clients: the worker ends, closing their sockets
            await self.client_worker.stop()
        # let queued writes finish so nothing acknowledged is left behind
        for _ in range(200):
            if not self.pending:
                break
            await asyncio.sleep(0.01)
        if self.committer is not None:
            self.committer.close()
        await self._wait_snapshot_child()

    async def _wait_snapshot_child(self) -> None:
        """A stopped server leaves nothing writing in its data directory: the snapshot on its
        way is finished (killed only past SNAPSHOT_CHILD_WAIT_S; its temporary file stays, which
        nothing reads)."""
        pid = self.snapshot_child
        if pid is None:
            return
        deadline = time.monotonic() + SNAPSHOT_CHILD_WAIT_S
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    log.error("snapshot child %d failed", pid)
                break
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                log.warning("killed the snapshot child %d: still writing %.0f s after the server stopped",
                            pid, SNAPSHOT_CHILD_WAIT_S)
                break
            await asyncio.sleep(0.01)
        self.snapshot_child = None
        self.snapshot_in_progress = False

    def fatal(self, exc: BaseException) -> None:
        self.running = False
        if self.on_fatal is not None:
            self.on_fatal(exc)

    def _schedule_tick(self) -> None:
        if not self.running:
            return
        delay = max(0.001, self.core.sessions.ms_to_next_check(_now_ms()) / 1000)
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(self.loop.call_later(delay, self._tick))

    def _tick(self) -> None:
        now = _now_ms()
        expired = self.core.sessions.expired(now)
        if not self.expire_sessions:
            for s in expired:
                if s.session_id in self.ro_sessions:  # a read-only session is this server's alone
                    self._drop_ro_session(s.session_id, "expired")
                    continue
                s.closing = False
                self.core.sessions.touch(s.session_id, now)
            expired = []
        for s in expired:
            log.info("Expiring session 0x%x, timeout of %dms exceeded", s.session_id, s.timeout)
            self.submit_internal(s.session_id, Op.closeSession, None)
        self._schedule_tick()

    def _schedule_containers(self) -> None:
        if not self.running:
            return
        interval = getattr(self.cfg, "container_check_interval_ms", 60000) / 1000
        self._timers.append(self.loop.call_later(interval, self._check_containers))

    def _check_containers(self) -> None:
        if self.expire_sessions:
            self.check_containers(_now_ms())
        self._schedule_containers()

    def check_containers(self, now: int) -> int:
        """Delete empty containers that once had children and expired empty TTL nodes."""
        tree = self.core.tree
        doomed = []
        for p in list(tree.containers):
            n = tree.nodes.get(p)
            if n is not None and n.cversion > 0 and not n.children:
                doomed.append(p)
        from .datatree import ttl_of

        for p in list(tree.ttls):
            n = tree.nodes.get(p)
            if n is not None and not n.children and now - n.mtime > ttl_of(n.owner):
                doomed.append(p)
        for p in doomed:
            if self.core.prep.record(p) is not None:
                self.submit_internal(0, Op.deleteContainer, _PathReq(p))
        return len(doomed)

    def _quota_setup(self, cfg: Any) -> None:
        """zookeeper.enforceQuota and Apache's quota log lines (rate-limited warnings)."""
        from .quota import RateLogger

        rate = RateLogger(log.warning)
        self.core.prep.enforce_quota = bool(getattr(cfg, "enforce_quota", False))
        self.core.prep.on_quota_warning = lambda msg: rate.log(msg, int(time.monotonic() * 1000))
        self.core.tree.quotas.log = log.error
        if self.core.prep.enforce_quota:
            log.info("zookeeper.enforceQuota = true, Quota Enforce enables")

    # ------------------------------------------------------------ reporting
    trace_mask = 0

    def mode(self) -> ServerMode:
        return ServerMode.READ_ONLY if self.read_only else self.state

    def serving(self) -> bool:
        return self.running and (self.serving_clients or self.read_only)

    def x509_super_user(self) -> str | None:
        """The client certificate DN that is a super user: zoo.cfg, else ``-D`` in SERVER_JVMFLAGS."""
        key = "zookeeper.X509AuthenticationProvider.superUser"
        value = getattr(self.cfg, "raw", {}).get(key)
        if value is None:
            from .config import jvm_properties

            value = jvm_properties(os.environ).get(key, (None, ""))[0]
        return value

    # ------------------------------------------------------------ read-only mode
    def enter_read_only(self) -> None:
        """Cut off from the quorum with readonlymode.enabled: serve reads to clients that asked for
        read-only sessions (ReadOnlyZooKeeperServer); writes get NOTREADONLY."""
        if self.serving_clients or self.read_only or not self.running:
            return
        self.read_only = True
        log.info("no quorum: serving read-only clients from zxid 0x%x", self.core.last_zxid)

    def leave_read_only(self) -> None:
        """Back in a quorum: read-only sessions end so their clients find a read-write server."""
        if not self.read_only:
            return
        self.read_only = False
        for sid in list(self.ro_sessions):
            self._drop_ro_session(sid, "the server rejoined the quorum")
        log.info("left read-only mode")

    def _drop_ro_session(self, sid: int, why: str) -> None:
        self.ro_sessions.discard(sid)
        self.core.sessions.remove(sid)
        conn = self.by_session.pop(sid, None)
        log.info("closing read-only session 0x%x: %s", sid, why)
        if conn is not None:
            conn.session_id = 0
            conn.close()

    def _connect_read_only(self, conn: ClientConnection, req: ConnectRequest) -> None:
        core = self.core
        timeout = core.limits.negotiate(req.timeOut)
        sid = req.sessionId
        if sid == 0:
            sid = core.sessions.new_session_id()
        elif req.passwd != session_password(sid):
            conn.send_connect_response(ConnectResponse(0, 0, 0, EMPTY_PASSWD), True)
            conn.close()
            return
        core.sessions.add(sid, timeout, _now_ms())
        self.ro_sessions.add(sid)
        old = self.by_session.get(sid)
        if old is not None and old is not conn:
            old.session_id = 0
            old.close()
        conn.session_id = sid
        conn.timeout = timeout
        conn.read_only_session = True
        self.by_session[sid] = conn
        log.info("Established read-only session 0x%x with negotiated timeout %d for client %s", sid, timeout,
                 conn.peer[0])
        conn.send_connect_response(ConnectResponse(0, timeout, sid, session_password(sid)), True)

    # ------------------------------------------------------------ quorum membership
    def join(self, replication: Replication) -> None:
        """Become a quorum member without a role: it serves no client until serve(). Called
        before the client port opens, so no client is ever served as if standalone."""
        self.role = QuorumMember(self, replication)
        self.core.prep.reconfig = replication.prepare_reconfig
        self.state = ServerMode.LOOKING
        self.looking_count += 1
        self.expire_sessions = False
        self.serving_clients = False

    def serve(self, mode: ServerMode) -> None:
        """The quorum established this server as ``mode`` (leader, follower or observer): serve
        clients; a leader owns session expiry and prepares from what is committed."""
        self.leave_read_only()
        self.state = mode
        self.serving_clients = True
        self.expire_sessions = mode == ServerMode.LEADER
        if mode == ServerMode.LEADER:
            self.core.restart_prep()
            self.core.take_over_sessions(_now_ms())

    def unserve(self) -> None:
        """The role is lost: look for a leader again, serving nobody (read-only mode may follow)."""
        self.state = ServerMode.LOOKING
        self.looking_count += 1
        self.serving_clients = False
        self.expire_sessions = False
        for conn in list(self.connections):
            conn.close()

    def drain_log(self) -> None:
        """Make every appended txn durable now, on this thread (before a reload)."""
        if self.committer is not None:
            self.committer.drain()

    def reload(self, tree: DataTree, sessions: dict[int, int], txnlog: Any) -> None:
        """Serve the state a learner rebuilt from disk after TRUNC or SNAP (drain_log() first)."""
        self.txnlog = txnlog
        if self.committer is not None:
            self.committer.switch_log(txnlog)
        self.core.reload(tree)
        if not getattr(self.cfg, "digest_enabled", True):
            tree.set_digest_enabled(False)
        now = _now_ms()
        for sid, timeout in sessions.items():
            self.core.sessions.add(sid, timeout, now)

    def take_touched_sessions(self) -> list[tuple[int, int]]:
        """(session, timeout) of the live sessions heard from since the last call (a learner
        reports them to its leader, which owns expiry)."""
        tracked = self.core.sessions.sessions
        out = [(s, tracked[s].timeout) for s in self.touched_sessions if s in tracked]
        self.touched_sessions.clear()
        return out

    # ------------------------------------------------------------ reporting (continued)
    def four_letter(self, conn: ClientConnection, word: str) -> None:
        from .fourletter import answer

        whitelist = getattr(self.cfg, "four_letter_words", frozenset({"srvr"}))
        conn.packets_received += 1  # Apache counts the word as a packet received, its answer as one sent
        text = answer(self.stats, word, whitelist)
        conn.out += text.encode()
        conn.packets_sent += 1
        conn.close()

    # ------------------------------------------------------------ connections
    def accept_connection(self, conn: ClientConnection) -> bool:
        limit = self.cfg.max_client_cnxns
        if limit:
            same = sum(1 for c in self.connections if c.peer[0] == conn.peer[0])
            if same >= limit:
                log.warning("Too many connections from %s - max is %d", conn.peer[0], limit)
                return False
        self.connections.add(conn)
        return True

    def connection_closed(self, conn: ClientConnection) -> None:
        if conn in self.connections:  # the server-wide packet counts keep what it received and sent
            self.counters.packets_received += conn.packets_received
            self.counters.packets_sent += conn.packets_sent
        self.connections.discard(conn)
        self.core.watches.remove_connection(conn)
        if conn.session_id and self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]

    def touch(self, conn: ClientConnection) -> None:
        if conn.session_id:
            self.core.sessions.touch(conn.session_id, _now_ms())
            self.role.touched(conn.session_id)

    def connect(self, conn: ClientConnection, req: ConnectRequest) -> None:
        core = self.core
        conn.connected = True
        if not self.serving_clients:
            if self.read_only and conn.readonly_requested:
                self._connect_read_only(conn, req)
                return
            if self.read_only:
                log.info("Refusing session request for not-read-only client %s", conn.peer[0])
            else:
                log.info("closing connection from %s: this server is not serving (no quorum role)", conn.peer[0])
            conn.close()
            return
        if req.lastZxidSeen > core.last_zxid:
            log.warning("Refusing session request for client %s as it has seen zxid 0x%x our last zxid is 0x%x;"
                        " client must try another server", conn.peer[0], req.lastZxidSeen, core.last_zxid)
            conn.close()
            return
        timeout = core.limits.negotiate(req.timeOut)
        if req.sessionId == 0:
            sid = core.sessions.new_session_id()
            conn.session_id = sid
            conn.timeout = timeout
            conn.outstanding_writes += 1
            conn.held = True

            def created(result: ApplyResult, conn: ClientConnection = conn, sid: int = sid) -> None:
                conn.outstanding_writes -= 1
                conn.held = False
                if conn.closing:
                    return
                self.by_session[sid] = conn
                log.info("Established session 0x%x with negotiated timeout %d for client %s",
                         sid, timeout, conn.peer[0])
                conn.send_connect_response(ConnectResponse(0, timeout, sid, session_password(sid)), False)
                conn.drain()

            self.submit_internal(sid, Op.createSession, timeout, on_commit=created)
            return
        sid = req.sessionId
        s = core.sessions.sessions.get(sid)
        if s is None and req.passwd == session_password(sid):
            # maybe committed and not applied here yet: the leader knows (Apache's learners ask too)
            def answered(valid: bool | None, conn: ClientConnection = conn, sid: int = sid) -> None:
                self._revalidated(conn, sid, timeout, valid, _now_ms() + REVALIDATE_APPLY_WAIT_MS)

            if self.role.ask_session(sid, timeout, answered):
                log.info("Session 0x%x of client %s is not known here: asking the leader", sid, conn.peer[0])
                conn.held = True
                return
        if s is None or s.closing or req.passwd != session_password(sid):
            self._expired(conn, sid)
            return
        self._reattach(conn, sid, timeout)

    def _expired(self, conn: ClientConnection, sid: int) -> None:
        log.info("Invalid session 0x%x for client %s, probably expired", sid, conn.peer[0])
        conn.send_connect_response(ConnectResponse(0, 0, 0, EMPTY_PASSWD), False)
        conn.close()

    def _revalidated(self, conn: ClientConnection, sid: int, timeout: int, valid: bool | None,
                     deadline_ms: int) -> None:
        """The leader's answer about a session this learner did not hold when its client came."""
        if conn.closing:
            return
        if valid is False:
            self._expired(conn, sid)
            return
        s = self.core.sessions.sessions.get(sid)
        if valid is None or (s is None and _now_ms() >= deadline_ms):
            # no verdict, or the leader's commit of it has not reached us: the client tries again
            log.info("closing connection from %s: session 0x%x not known here yet", conn.peer[0], sid)
            conn.close()
            return
        if s is None:  # the leader committed it before answering; its COMMIT is on its way to the tree
            self.loop.call_later(0.005, self._revalidated, conn, sid, timeout, valid, deadline_ms)
            return
        if s.closing:
            self._expired(conn, sid)
            return
        conn.held = False
        self._reattach(conn, sid, timeout)
        conn.drain()

    def _reattach(self, conn: ClientConnection, sid: int, timeout: int) -> None:
        core = self.core
        s = core.sessions.sessions[sid]
        old = self.by_session.get(sid)
        if old is not None and old is not conn:
            old.session_id = 0  # the session moved; the old socket must not close it
            old.close()
        conn.session_id = sid
        conn.timeout = timeout
        s.timeout = timeout
        core.sessions.touch(sid, _now_ms())
        self.role.reattached(sid, timeout)
        self.by_session[sid] = conn
        conn.send_connect_response(ConnectResponse(0, timeout, sid, session_password(sid)), False)

    # ------------------------------------------------------------ requests
    def handle(self, conn: ClientConnection, req: Request) -> None:
        op = req.op
        core = self.core
        xid = req.xid
        if op == Op.ping:
            conn.send_reply(Xid.PING, core.last_zxid, 0)
            return
        if req.write:
            self._write(conn, req)
            return
        if req.record is MALFORMED:
            if op == Op.auth:  # Apache reads an auth packet on the connection's thread: it closes
                log.warning("closing connection from %s: malformed auth packet", conn.peer[0])
                conn.close()
                return
            self._finish(conn, req, core.last_zxid, Err.MARSHALLINGERROR)
            return
        if req.record is UNKNOWN:
            # as Apache's UnimplementedRequestProcessor: zxid -1 (Apache then closes the
            # connection; we keep it, see README's compatibility notes)
            self._finish(conn, req, -1, Err.UNIMPLEMENTED)
            return
        try:
            if op == Op.auth:
                self._auth(conn, req)
                return
            if op == Op.setWatches or op == Op.setWatches2:
                r = req.record
                pers = getattr(r, "persistentWatches", None)
                rec = getattr(r, "persistentRecursiveWatches", None)
                notes: list[tuple[Any, int, str]] = []
                try:
                    core.set_watches(r.relativeZxid, r.dataWatches, r.existWatches, r.childWatches,
                                     pers, rec, conn, conn.auth, notes)
                finally:  # events found before a failure still go out first, as in Apache
                    for _w, etype, path in notes:
                        conn.send_event(etype, path)
                conn.send_reply(xid, core.last_zxid, 0)
                return
            if op == Op.multiRead:
                results, err = core.multi_read(req.record, conn, conn.auth, conn.session_id)
                payload = bytearray()
                encode_multi_results(payload, results)
                conn.send_raw_reply(xid, core.last_zxid, err, payload)
                conn.record_latency(req, core.last_zxid)
                return
            if op == Op.sasl:
                self._sasl(conn, req)
                return
            if op == Op.sync and not conn.read_only_session and self.role.sync(conn, req):
                return
            body = core.read(op, req.record, conn, conn.auth, conn.session_id)
        except ZkError as exc:
            self._finish(conn, req, core.last_zxid, exc.code)
            return
        conn.send_reply(xid, core.last_zxid, 0, body)
        conn.record_latency(req, core.last_zxid)

    def _write(self, conn: ClientConnection, req: Request) -> None:
        """A write: into the pipeline as a txn (refusals too take a zxid, as in Apache), or
        answered at once; either way the session's later requests go on (write_done)."""
        op = req.op
        core = self.core
        if conn.read_only_session:
            if op == Op.closeSession:
                conn.send_reply(req.xid, core.last_zxid, 0)
                conn.write_done()
                self._drop_ro_session(conn.session_id, "closed by the client")
            else:
                self._finish(conn, req, core.last_zxid, Err.NOTREADONLY)
                conn.write_done()
            return
        if op == Op.deleteContainer:
            # Apache reads a client's deleteContainer body as a raw path, length prefix and all,
            # and that never passes its path check
            self._refuse(conn, req, Err.BADARGUMENTS)
            return
        if req.record is MALFORMED:
            if op == Op.reconfig or op == Op.closeSession:
                # Apache decodes a reconfig before it makes a txn of it: no zxid
                self._answer_in_turn(conn, req, Err.MARSHALLINGERROR)
            else:
                self.submit(conn, req, Op.error, None)
            return
        if op == Op.multi and any(getattr(r, "path", "") is None for _t, r in req.record):
            # Apache takes the multi's zxid, then looks up every op's path before it makes the
            # txn: a null one fails the request with no txn (the zxid is skipped), and the
            # reply still carries an empty result list
            self.role.skip_zxid()
            self._answer_in_turn(conn, req, Err.MARSHALLINGERROR, _EMPTY_MULTI)
            return
        if op == Op.reconfig:
            self.role.reconfig(conn, req)
            return
        self.role.submit(conn, req, op, req.record)

    def _answer_in_turn(self, conn: ClientConnection, req: Request, code: int, payload: bytes | None = None) -> None:
        """Answer a write that takes no txn once the writes before it are answered, as it
        would leave Apache's pipeline."""

        def answer() -> None:
            if not conn.closing:
                if payload is None:
                    conn.send_reply(req.xid, self.core.last_zxid, int(code))
                else:
                    conn.send_raw_reply(req.xid, self.core.last_zxid, int(code), payload)
                conn.record_latency(req, self.core.last_zxid)
            conn.write_done()

        if not self.pending:  # (a quorum member's writes never wait here: they wait in ZAB)
            answer()
            return
        last = self.pending[-1].hdr
        self.pending.append(Pending(TxnHeader(0, 0, last.zxid, 0, Op.error), None, None, None, answer=answer))

    def _refuse(self, conn: ClientConnection, req: Request, code: int) -> None:
        """Answer a write with ``code`` through an error txn, which takes a zxid as in Apache."""
        self.role.refuse(conn, req, code)

    def _sasl(self, conn: ClientConnection, req: Request) -> None:
        """One step of a client's SASL DIGEST-MD5 exchange (users from the JAAS file, see sasl.py)."""
        from .records import SaslToken
        from .sasl import DigestMd5Server, SaslError, users_from_environment

        if self.sasl_users is None:
            self.sasl_users = users_from_environment(getattr(self.cfg, "raw", {}))
        try:
            if not self.sasl_users:
                raise SaslError("no SASL users are configured (java.security.auth.login.config)")
            if conn.sasl is None:
                conn.sasl = DigestMd5Server(self.sasl_users)
            reply, user = conn.sasl.step(req.record.token or b"")
        except (SaslError, UnicodeDecodeError) as exc:
            log.warning("SASL authentication failed for %s: %s", conn.peer[0], exc)
            conn.send_reply(req.xid, self.core.last_zxid, int(Err.AUTHFAILED))
            conn.close()
            return
        if user is not None:
            ident = Id("sasl", user)
            if ident not in conn.auth:
                conn.auth.append(ident)
            log.info("Successfully authenticated client: authenticationID=%s", user)
        conn.send_reply(req.xid, self.core.last_zxid, 0, SaslToken(reply))

    def reconfig_refusal(self, conn: ClientConnection, r: Any) -> int:
        """Why a standalone server refuses a reconfig, as Apache's PrepRequestProcessor does:
        RECONFIGDISABLED unless reconfigEnabled, else UNIMPLEMENTED (a standalone server has no
        membership to change; Apache checks no argument first). In an ensemble the leader
        prepares reconfigs (quorum.Ensemble.prepare_reconfig)."""
        if not getattr(self.cfg, "reconfig_enabled", False):
            return Err.RECONFIGDISABLED
        log.warning("reconfig from %s refused: a standalone server has no membership to change", conn.peer[0])
        return Err.UNIMPLEMENTED

    def _finish(self, conn: ClientConnection, req: Request, zxid: int, err: int, body: Any = None) -> None:
        conn.send_reply(req.xid, zxid, int(err), body)
        conn.record_latency(req, zxid)

    def _auth(self, conn: ClientConnection, req: Request) -> None:
        pkt = req.record
        try:
            ids = aclmod.authenticate(pkt.scheme or "", pkt.auth, self.cfg.super_digest, conn.peer[0])
        except ZkError:
            log.warning("Authentication failed for scheme: %s", pkt.scheme)
            conn.send_reply(Xid.AUTH, 0, int(Err.AUTHFAILED))
            conn.close()
            return
        for i in ids:
            if i not in conn.auth:
                conn.auth.append(i)
        conn.send_reply(Xid.AUTH, 0, 0)

    # ------------------------------------------------------------ writes
    def submit(self, conn: ClientConnection, req: Request, op: int, record: Any) -> None:
        self.role.submit(conn, req, op, record)

    def submit_internal(self, session_id: int, op: int, record: Any,
                        on_commit: Callable[[ApplyResult], None] | None = None) -> None:
        self.role.submit_internal(session_id, op, record, on_commit)

    def durable(self, zxid: int) -> None:
        """Every txn up to ``zxid`` is on disk (the group committer says so)."""
        self.role.durable(zxid)

    def log_txn(self, zxid: int, data: bytes) -> None:
        """Append one txn to the log; durable() follows once it is on disk."""
        assert self.committer is not None
        self.committer.submit(zxid, data)

    def snapshot_if_due(self) -> None:
        """Start a snapshot once enough txns were applied since the last one."""
        if self.txns_since_snapshot >= self.snap_threshold:
            self._take_snapshot()

    def apply_txn(self, hdr: TxnHeader, body: Any, origin: Pending | None) -> ApplyResult:
        """Apply one committed txn; notify watchers; answer the client that asked for it."""
        result, notes = self.core.commit(hdr, body)
        for w, etype, path in notes:
            if not w.closing:
                w.send_event(etype, path)
        self.txns_since_snapshot += 1
        op = hdr.type
        if op == Op.closeSession:
            sid = hdr.clientId
            holder = self.by_session.pop(sid, None)
            if holder is not None and (origin is None or holder is not origin.conn):
                holder.close()
        if origin is None:
            return result
        if origin.on_commit is not None:
            origin.on_commit(result)
        conn = origin.conn
        if conn is None or origin.req is None:
            return result
        self._reply_write(conn, origin.req, hdr, result)
        if op == Op.closeSession:
            conn.close()
        else:
            conn.write_done()
        return result

    def _reply_write(self, conn: ClientConnection, req: Request, hdr: TxnHeader, result: ApplyResult) -> None:
        if conn.closing:
            return
        zxid = hdr.zxid
        op = req.op
        if op == Op.multi:
            if result.multi is None:
                conn.send_reply(req.xid, zxid, result.err or int(Err.MARSHALLINGERROR))
            else:
                payload = bytearray()
                encode_multi_results(payload, [(t, e, _multi_value(t, v)) for t, e, v in result.multi])
                conn.send_raw_reply(req.xid, zxid, 0, payload)
        elif result.err:
            conn.send_reply(req.xid, zxid, result.err)
        elif op == Op.setData:  # a StatResponse: the Stat alone
            conn.send_stat_reply(req.xid, zxid, result.value)
        elif op == Op.create:  # a CreateResponse: the path alone
            conn.send_path_reply(req.xid, zxid, result.value[0])
        else:
            conn.send_reply(req.xid, zxid, 0, ServerCore.write_reply(op, result))
        conn.record_latency(req, zxid)

    # ------------------------------------------------------------ snapshots
    def _next_snap_threshold(self) -> int:
        n = max(2, int(getattr(self.cfg, "snap_count", 100000)))
        # spread the servers of an ensemble apart, as ZooKeeper does (os.urandom: the random
        # module would cost start-up time for this one number)
        return n // 2 + int.from_bytes(os.urandom(4), "big") % (n // 2 + 1)

    def _take_snapshot(self) -> None:
        if self.snapshot_in_progress or self.snapshot_writer is None or self.committer is None:
            return
        self.txns_since_snapshot = 0
        self.snap_threshold = self._next_snap_threshold()
        self.committer.roll_pending = True
        tree = self.core.tree
        zxid = tree.last_zxid
        sessions = {sid: s.timeout for sid, s in self.core.sessions.sessions.items()}
        self.snapshot_in_progress = True
        if self.fork_snapshots and hasattr(os, "fork"):
            # the child's copy of the tree stands still: it walks the live dict itself, and
            # the loop is spared copying every node first
            self._fork_snapshot(zxid, sessions, tree.packed.items())
            return
        items = list(tree.packed.items())
        fut = self.loop.run_in_executor(None, self.snapshot_writer, zxid, sessions, items)

        def done(f: asyncio.Future[Any]) -> None:
            self.snapshot_in_progress = False
            if f.exception() is not None:
                log.error("snapshot at 0x%x failed: %s", zxid, f.exception())

        fut.add_done_callback(done)


    def _fork_snapshot(self, zxid: int, sessions: dict[int, int], items: Iterable[tuple[str, bytes | Node]]) -> None:
        """Write the snapshot from a forked child: copy-on-write gives it the tree exactly
        at ``zxid``, and serializing 100k nodes no longer competes with requests for the GIL."""
        writer = self.snapshot_writer
        assert writer is not None
        pid = os.fork()
        if pid == 0:  # child: serialize, write, leave without running any parent cleanup
            code = 0
            try:
                close_inherited_sockets()
                writer(zxid, sessions, items)
            except BaseException:
                code = 1
            os._exit(code)
        started = time.monotonic()
        self.snapshot_child = pid

        def reap() -> None:
            if self.snapshot_child != pid:
                return  # stop() waited for it
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                self.loop.call_later(0.05, reap)
                return
            self.snapshot_child = None
            self.snapshot_in_progress = False
            if os.waitstatus_to_exitcode(status) != 0:
                log.error("snapshot at 0x%x failed in child %d", zxid, pid)
            else:
                log.info("snapshot 0x%x written by child %d in %.0f ms", zxid, pid,
                         (time.monotonic() - started) * 1000)

        self.loop.call_later(0.05, reap)




class Standalone:
    """A server on its own: it prepares its writes, the group committer makes them durable,
    and it applies them in order (the pipeline of this module's docstring)."""

    def __init__(self, server: ZooKeeperServer) -> None:
        self.server = server
        self.commit_scheduled = False  # without a txn log: the loop turn's writes commit together

    def quorum(self) -> QuorumReport | None:
        return None

    def submit(self, conn: ClientConnection, req: Request, op: int, record: Any) -> None:
        core = self.server.core
        hdr, body = core.prep.prepare(conn.session_id, req.xid, op, record, conn.auth, int(time.time() * 1000))
        if op == Op.closeSession:
            core.sessions.set_closing(conn.session_id)
        self._enqueue(Pending(hdr, body, conn, req))

    def submit_internal(self, session_id: int, op: int, record: Any,
                        on_commit: Callable[[ApplyResult], None] | None) -> None:
        hdr, body = self.server.core.prep.prepare(session_id, 0, op, record, [aclmod.SUPER_ID], _now_ms())
        self._enqueue(Pending(hdr, body, None, None, on_commit))

    def refuse(self, conn: ClientConnection, req: Request, code: int) -> None:
        hdr, body = self.server.core.prep.prepare_error(conn.session_id, req.xid, code, _now_ms())
        self._enqueue(Pending(hdr, body, conn, req))

    def reconfig(self, conn: ClientConnection, req: Request) -> None:
        """A standalone server has no membership to change: refused (with a zxid, as Apache)."""
        self.refuse(conn, req, self.server.reconfig_refusal(conn, req.record))

    def skip_zxid(self) -> None:
        """A write failed before it became a txn after taking its zxid (Apache skips it)."""
        self.server.core.prep.take_zxid()

    def sync(self, conn: ClientConnection, req: Request) -> bool:
        return False  # answered at once: nothing is in flight anywhere else

    def touched(self, session_id: int) -> None:
        pass  # this server expires its sessions itself

    def reattached(self, session_id: int, timeout: int) -> None:
        pass  # no other server to tell

    def ask_session(self, session_id: int, timeout: int, answer: Callable[[bool | None], None]) -> bool:
        return False  # every session this server knows of is in its own tree

    def _enqueue(self, p: Pending) -> None:
        server = self.server
        server.pending.append(p)
        # as Apache logs it: the tree digest the txn leaves after its body (prepared just now)
        data = encode_txn_digest(p.hdr, p.body, DIGEST_VERSION, server.core.prep.last_digest)
        if server.committer is None:
            # no log (an in-memory server): the writes of one loop turn are durable at once, in
            # one batch, as the group committer makes them
            if not self.commit_scheduled:
                self.commit_scheduled = True
                server.loop.call_soon(self._commit_all)
        else:
            server.committer.submit(p.hdr.zxid, data)

    def _commit_all(self) -> None:
        self.commit_scheduled = False
        pending = self.server.pending
        if pending:
            self.server.durable(pending[-1].hdr.zxid)

    def durable(self, zxid: int) -> None:
        """Apply the txns up to ``zxid``, reply, notify watchers."""
        server = self.server
        pending = server.pending
        batch: list[ClientConnection] = []
        server.out_batch = batch
        try:
            while pending and pending[0].hdr.zxid <= zxid:
                p = pending.popleft()
                if p.answer is not None:
                    p.answer()
                    continue
                server.apply_txn(p.hdr, p.body, p)
        finally:
            server.out_batch = None
            for conn in batch:
                try:
                    conn.flush()
                except Exception:  # one broken transport must not keep the others' replies
                    log.exception("flushing replies to %s:%d failed", conn.peer[0], conn.peer[1])
        server.snapshot_if_due()


class QuorumMember:
    """A member of an ensemble: writes and syncs go through the ensemble (ZAB orders them,
    the leader prepares them), and apply_txn runs when they commit."""

    def __init__(self, server: ZooKeeperServer, replication: Replication) -> None:
        self.server = server
        self.replication = replication

    def quorum(self) -> QuorumReport | None:
        return self.replication.report()

    def submit(self, conn: ClientConnection, req: Request, op: int, record: Any) -> None:
        if op == Op.closeSession:
            self.server.core.sessions.set_closing(conn.session_id)
        self.replication.client_write(conn, req, op, record)

    def submit_internal(self, session_id: int, op: int, record: Any,
                        on_commit: Callable[[ApplyResult], None] | None) -> None:
        self.replication.internal_write(session_id, op, record, on_commit)

    def refuse(self, conn: ClientConnection, req: Request, code: int) -> None:
        """The leader prepares the refusal from the request itself (ensembles are not fuzzed)."""
        if req.record is MALFORMED:
            self.submit(conn, req, Op.error, None)
        else:
            self.submit(conn, req, req.op, req.record)

    def reconfig(self, conn: ClientConnection, req: Request) -> None:
        """The leader checks and prepares it (quorum.Ensemble.prepare_reconfig)."""
        self.submit(conn, req, req.op, req.record)

    def skip_zxid(self) -> None:
        pass  # zxids are the leader's to give

    def sync(self, conn: ClientConnection, req: Request) -> bool:
        return self.replication.client_sync(conn, req)

    def touched(self, session_id: int) -> None:
        """The leader owns expiry: report activity to it (never mere connectedness)."""
        self.server.touched_sessions.add(session_id)

    def reattached(self, session_id: int, timeout: int) -> None:
        """A client moved its session here: the leader must learn who owns it now."""
        self.touched(session_id)
        self.replication.session_reconnected(session_id, timeout)

    def ask_session(self, session_id: int, timeout: int, answer: Callable[[bool | None], None]) -> bool:
        """A session this learner has not applied yet may be one the leader just committed (a
        client that made it on another server and moved at once): the leader says."""
        return self.replication.ask_session(session_id, timeout, answer)

    def durable(self, zxid: int) -> None:
        self.replication.persisted(zxid)


class _PathReq:
    """A minimal request record for internal deletes (deleteContainer)."""

    __slots__ = ("path", "version")

    def __init__(self, path: str) -> None:
        self.path = path
        self.version = -1


_EMPTY_MULTI = b"\xff\xff\xff\xff\x01\xff\xff\xff\xff"  # a MultiResponse with no results


def _multi_value(op: int, value: Any) -> Any:
    if value is None:
        return None
    if op == Op.create:
        return CreateResponse(value[0])
    if op in (Op.create2, Op.createContainer, Op.createTTL):
        return Create2Response(value[0], leaf_stat(value[1]))
    if op == Op.setData:
        return StatResponse(value)
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["GroupCommitter", "Path", "QuorumMember", "Replication", "Standalone", "ZooKeeperServer"]
