"""The quorum port as Apache ZooKeeper 3.8 runs it: one connection from each learner to the
leader, QuorumPackets both ways (see ``quorumwire``).

This shell translates between packets and the ZAB core's messages, which travel in
``Envelope``s: the core's session of a learner is its connection here (a fresh number per
accepted connection on the leader, the core's own attempt number on the learner). Where
Apache's protocol says more than the core does, the translation keeps the difference:

- NEWLEADER carries ``newEpoch << 32`` and the ACK of it must say the same, while the core's
  NewLeader names the last zxid of the sync; each side remembers the other form.
- Apache learners commit only what a COMMIT named: before UPTODATE the leader sends COMMIT for
  every proposal of the sync that the core's UpToDate declares committed.
- A learner answers the leader's PING with the sessions its clients touched; the leader's
  PING, REQUEST (forwarded writes and syncs), REVALIDATE and SYNC go to the owner's callbacks.
- A reconfig's commit travels as COMMITANDACTIVATE / INFORMANDACTIVATE.

Bad bytes, an unknown first packet or a learner that never says who it is close that
connection with a log line; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import quorumwire as qw
from .quorumwire import PacketType as T
from .quorumwire import QuorumPacket
from .taskset import TaskSet
from .tlspeers import PeerListener, PeerPorts, dial_failure
from .zab import (
    Ack,
    AckEpoch,
    Commit,
    Envelope,
    FollowerInfo,
    Inform,
    LeaderInfo,
    NewLeader,
    Ping,
    Proposal,
    SyncMode,
    SyncStart,
    UpToDate,
)

log = logging.getLogger("zkops.server.quorumport")

_COUNTER = 0xFFFFFFFF
# packet types as plain ints for the per-packet branches (an IntEnum member's attribute lookup
# costs about 0.1 us each on CPython 3.11; a packet used to pass up to a dozen of them)
_PROPOSAL, _ACK, _COMMIT, _PING = int(T.PROPOSAL), int(T.ACK), int(T.COMMIT), int(T.PING)
_REQUEST, _REVALIDATE, _SYNC, _INFORM = int(T.REQUEST), int(T.REVALIDATE), int(T.SYNC), int(T.INFORM)
_COMMITANDACTIVATE, _INFORMANDACTIVATE = int(T.COMMITANDACTIVATE), int(T.INFORMANDACTIVATE)
_LEADERINFO, _NEWLEADER, _UPTODATE = int(T.LEADERINFO), int(T.NEWLEADER), int(T.UPTODATE)
_DIFF, _TRUNC, _SNAP, _ACKEPOCH = int(T.DIFF), int(T.TRUNC), int(T.SNAP), int(T.ACKEPOCH)


@dataclass
class QuorumCallbacks:
    """What the owner (the ensemble shell) answers or is told."""

    deliver: Callable[[int, Envelope], None]  # a ZAB message from a peer
    link_down: Callable[[int], None]  # the current connection to/from that peer ended
    is_leading: Callable[[], bool]
    request: Callable[[int, qw.ForwardedRequest, tuple[tuple[str, str], ...]], None]  # leader: a learner's REQUEST
    pinged: Callable[[int, list[tuple[int, int]]], None]  # leader: sessions a learner's clients touched
    revalidate: Callable[[int, int], bool]  # leader: is this session alive (it moved to a learner)
    touched: Callable[[], list[tuple[int, int]]]  # learner: sessions to report in a PING reply
    synced: Callable[[], None]  # learner: the leader answered our oldest SYNC
    activate_leader: Callable[[int], int | None]  # leader: designated leader if zxid is a reconfig
    last_seen_config: Callable[[], bytes]  # leader: NEWLEADER's config text
    config_version: Callable[[], int]  # learner: LearnerInfo's config version
    history_last: Callable[[], int]  # learner: the core's last logged zxid
    learner_alive: Callable[[int], bool] = lambda sid: False  # leader: synced and heard from lately


@dataclass(eq=False)
class _Link:
    writer: asyncio.StreamWriter
    sid: int
    session: int
    observer: bool = False
    epoch: int = 0
    newleader_core: int | None = None  # the core's NewLeader zxid, until its ACK goes by
    pending: set[int] = field(default_factory=set)  # leader: sync proposals not yet COMMITted
    committed: int = 0  # learner: the newest zxid the leader said is committed
    info_sent: bool = False
    uptodate: bool = False  # learner: UPTODATE came; before it Apache's leader takes only our ACK
    closed: bool = False
    # learner: sessions asked about with REVALIDATE, and who waits for each answer
    revalidating: dict[int, list[Callable[[bool | None], None]]] = field(default_factory=dict)
    # packets written since the last flush: what one turn of the loop writes goes out in one send
    out: list[bytes] = field(default_factory=list)
    heard: int = -1  # leader: the framer's fill in which a packet of this learner last went to the core

    def write(self, *packets: QuorumPacket, extra: bytes = b"") -> None:
        """Queue packets, in order, for this turn's flush (the same bytes, fewer sends: the
        receiver also wakes once for them)."""
        if self.closed or self.writer.is_closing():
            return
        out = self.out
        if not out:
            asyncio.get_running_loop().call_soon(self.flush)
        for p in packets:
            out.append(qw.encode_packet(p))
        if extra:
            out.append(extra)

    def send(self, data: bytes) -> None:
        """Queue one packet already encoded (``quorumwire.encode_bare`` / ``encode_with_data``),
        as ``write`` queues the ones it encodes (a writer that began closing meanwhile is found
        by the flush, which then sends nothing)."""
        if self.closed:
            return
        out = self.out
        if not out:
            asyncio.get_running_loop().call_soon(self.flush)
        out.append(data)

    def flush(self) -> None:
        out = self.out
        if not out:
            return
        self.out = []
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self.closed = True
        self.writer.close()


class QuorumNetwork:
    def __init__(self, my_sid: int, bind: tuple[str, int], cb: QuorumCallbacks,
                 tls: PeerPorts | tuple[Any, Any] | None = None, connect_timeout: float = 10.0) -> None:
        self.my_sid = my_sid
        self.bind = bind
        self.cb = cb
        self.ports = PeerPorts.of(tls)
        self.tls_server: Any = self.ports.tls_server
        self.tls_client: Any = self.ports.tls_client
        self.connect_timeout = connect_timeout
        self.server: PeerListener | None = None
        self.learners: dict[int, _Link] = {}  # leader side: the current connection of each learner
        self.leader_link: _Link | None = None  # learner side
        self.follow_session = -1
        self.conn_ids = itertools.count(1)
        self.tasks = TaskSet()
        self.running = False
        self.refused = 0
        # leader: the last PROPOSAL or COMMIT sent and its bytes (ZAB gives every follower the
        # same message object: it is encoded, and its activation looked up, once)
        self._sent: tuple[object, bytes] = (None, b"")

    async def start(self) -> None:
        self.running = True
        self.server = PeerListener("quorum", self.ports, self._accept, log)
        await self.server.start(self.bind[0], self.bind[1])

    async def stop(self) -> None:
        self.running = False
        if self.server is not None:
            self.server.close()
        self.close_all()
        self.tasks.cancel_all()

    def close_all(self) -> None:
        self.follow_session = -1
        for link in list(self.learners.values()):
            self._close(link)
        self.learners.clear()
        if self.leader_link is not None:
            self._close(self.leader_link)
            self.leader_link = None

    @staticmethod
    def _close(link: _Link) -> None:
        link.close()

    def connected(self, sid: int) -> bool:
        link = self.leader_link
        return sid in self.learners or (link is not None and link.sid == sid and not link.closed)

    # ------------------------------------------------------------ learner side
    def follow(self, leader: int, address: tuple[str, int], env: Envelope) -> None:
        """Open this attempt's connection to the leader and say FOLLOWERINFO/OBSERVERINFO (the
        core's FollowerInfo in ``env``); a repeat within one attempt goes nowhere."""
        session = env.session
        if session == self.follow_session:
            return
        self.follow_session = session
        link = self.leader_link
        if link is not None:
            self._close(link)
            self.leader_link = None
        self.tasks.spawn(self._dial(leader, address, env))

    async def _dial(self, leader: int, address: tuple[str, int], env: Envelope) -> None:
        session = env.session
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        host, port = address
        logged: str | None = None
        while True:
            try:
                tls = self.tls_client
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls is not None else None), 5.0)
                break
            except (OSError, asyncio.TimeoutError) as exc:
                why = dial_failure(exc)
                if why is not None and why != logged:
                    logged = why
                    log.warning("quorum connection to leader %d at %s:%d refused: TLS handshake failed (%s)",
                                leader, host, port, why)
                if self.follow_session != session or not self.running:
                    return
                if loop.time() > deadline:
                    self.cb.link_down(leader)
                    return
                await asyncio.sleep(0.2)
        if self.follow_session != session or not self.running:
            writer.close()  # a newer attempt started meanwhile
            return
        link = _Link(writer, leader, session)
        self.leader_link = link
        self.send_to_leader(env)
        await self._learner_read(link, reader)

    def send_to_leader(self, env: Envelope) -> None:
        link = self.leader_link
        if link is None or link.session != env.session:
            return
        msg = env.msg
        if isinstance(msg, Ack):
            if link.newleader_core is not None and msg.zxid == link.newleader_core:
                link.newleader_core = None
                link.send(qw.encode_bare(_ACK, link.epoch << 32))
            else:
                link.send(qw.encode_bare(_ACK, msg.zxid))
        elif isinstance(msg, FollowerInfo):
            if link.info_sent:
                return
            link.info_sent = True
            li = qw.LearnerInfo(self.my_sid, qw.PROTOCOL_VERSION, self.cb.config_version())
            ptype = T.OBSERVERINFO if msg.observer else T.FOLLOWERINFO
            link.write(QuorumPacket(ptype, msg.accepted_epoch << 32, qw.encode_learner_info(li), None))
        elif isinstance(msg, AckEpoch):
            link.write(QuorumPacket(T.ACKEPOCH, msg.last_zxid, qw.encode_int(msg.current_epoch), None))
        # Ping: Apache learners only answer the leader's pings (see _learner_packet)

    def revalidate(self, session: int, timeout: int,
                   answer: Callable[[bool | None], None] | None = None) -> bool:
        """Tell the leader that a client's session reconnected here (Apache's leader then takes this
        learner as the session's owner, and refuses writes for it forwarded by any other). With
        ``answer``, the leader's reply is handed to it: True or False as the leader says, None when
        the connection closes first. Without, it is not waited for: it comes before any write of
        that session this learner forwards next, on the same connection. False when there is no
        connection (``answer`` is then never called)."""
        link = self.leader_link
        if link is None or link.closed:
            return False
        if answer is not None:
            link.revalidating.setdefault(session, []).append(answer)
        link.write(QuorumPacket(T.REVALIDATE, -1, qw.encode_revalidate(session, timeout), None))
        return True

    def forward(self, req: qw.ForwardedRequest, auth: tuple[tuple[str, str], ...]) -> bool:
        """A client's write or sync for the leader; False when there is no connection."""
        link = self.leader_link
        if link is None or link.closed:
            return False
        link.write(QuorumPacket(_REQUEST, -1, qw.encode_request(req), tuple(auth)))
        return True

    async def _learner_read(self, link: _Link, reader: asyncio.StreamReader) -> None:
        peer = link.writer.get_extra_info("peername")
        framer = _Framer(reader)
        try:
            while True:
                p = framer.take()
                if p is None:
                    p = await framer.packet(tried=True)
                snapshot = None
                if p.type == _SNAP:
                    snapshot = qw.snapshot_file_of_stream(await framer.run(qw.read_snap_stream()))
                self._learner_packet(link, p, snapshot, framer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (qw.QuorumWireError, struct.error) as exc:
            self.refused += 1
            log.warning("closing the connection to leader %d (%s): %s", link.sid, peer, exc)
        finally:
            link.close()
            waiting, link.revalidating = link.revalidating, {}
            for answers in waiting.values():
                for answer in answers:
                    answer(None)
            if self.leader_link is link:
                self.leader_link = None
                self.cb.link_down(link.sid)

    def _learner_packet(self, link: _Link, p: QuorumPacket, snapshot: bytes | None,
                        framer: _Framer | None = None) -> None:
        t = p.type
        msg: Any = None
        if t == _PROPOSAL:
            msg = Proposal(p.zxid, p.data or b"")
        elif t == _COMMIT:
            link.committed = max(link.committed, p.zxid)
            if framer is not None:
                after = qw.peek_bare(framer.buf, framer.pos)
                if after is not None and after[0] == _COMMIT and after[1] > p.zxid:
                    return  # the COMMIT right behind it commits this one too (the core commits through)
            msg = Commit(p.zxid)
        elif t == _PING:
            if link.uptodate:  # during the sync Apache's leader expects the NEWLEADER ACK, nothing else
                link.write(QuorumPacket(T.PING, p.zxid, qw.encode_sessions(self.cb.touched()), p.authinfo))
            msg = Ping(p.zxid)
        elif t == _LEADERINFO:
            link.epoch = p.zxid >> 32
            msg = LeaderInfo(link.epoch)
        elif t in (_DIFF, _TRUNC):
            link.committed = p.zxid
            msg = SyncStart(SyncMode.DIFF if t == _DIFF else SyncMode.TRUNC, p.zxid)
        elif t == _SNAP:
            link.committed = p.zxid
            msg = SyncStart(SyncMode.SNAP, p.zxid, snapshot)
        elif t == _COMMITANDACTIVATE:
            link.committed = max(link.committed, p.zxid)
            msg = Commit(p.zxid)
        elif t == _INFORM:
            link.committed = max(link.committed, p.zxid)
            msg = Inform(p.zxid, p.data or b"")
        elif t == _INFORMANDACTIVATE:
            link.committed = max(link.committed, p.zxid)
            _, payload = qw.split_activate(p.data)
            msg = Inform(p.zxid, payload)
        elif t == _NEWLEADER:
            link.epoch = p.zxid >> 32
            link.newleader_core = self.cb.history_last()
            msg = NewLeader(link.epoch, link.newleader_core)
        elif t == _UPTODATE:
            link.uptodate = True
            msg = UpToDate(link.committed)
        elif t == _SYNC:
            self.cb.synced()
            return
        elif t == _REVALIDATE:
            session, valid = qw.decode_revalidate_reply(p.data)
            for answer in link.revalidating.pop(session, ()):
                answer(valid)
            return
        else:
            raise qw.QuorumWireError(f"unexpected {T(t).name} from the leader")
        self.cb.deliver(link.sid, Envelope(link.session, msg))

    # ------------------------------------------------------------ leader side
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        link: _Link | None = None
        framer = _Framer(reader)
        try:
            first = await asyncio.wait_for(framer.packet(), self.connect_timeout)
            if first.type not in (T.FOLLOWERINFO, T.OBSERVERINFO):
                raise qw.QuorumWireError(f"first packet is {T(first.type).name}, not FOLLOWERINFO/OBSERVERINFO")
            info = qw.decode_learner_info(first.data)
            if info.sid == self.my_sid or info.sid < 0:
                raise qw.QuorumWireError(f"learner claims sid {info.sid}")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.connect_timeout
            while not self.cb.is_leading():
                # the learner may hear the outcome of the election before we act on it
                if loop.time() > deadline or not self.running:
                    log.info("server %d wants to follow us, but we do not lead; closing", info.sid)
                    writer.close()
                    return
                await asyncio.sleep(0.02)
            old = self.learners.get(info.sid)
            if old is not None and not old.closed and self.cb.learner_alive(info.sid):
                # a learner that restarts or gives up closes its connection first: a second one
                # for a server we hear from is someone else's, and must not cut the real one off
                raise qw.QuorumWireError(f"server {info.sid} is already following us and alive")
            link = _Link(writer, info.sid, next(self.conn_ids), observer=first.type == T.OBSERVERINFO)
            if old is not None:
                self._close(old)
            self.learners[info.sid] = link
            self.cb.deliver(info.sid, Envelope(link.session, FollowerInfo(first.zxid >> 32, 0, link.observer)))
            while True:
                p = framer.take()  # the packets one read brought, without an await each
                self._leader_packet(link, p if p is not None else await framer.packet(tried=True), framer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.TimeoutError):
            pass
        except (qw.QuorumWireError, struct.error) as exc:
            self.refused += 1
            who = f"server {link.sid}" if link is not None else "a learner"
            log.warning("closing the quorum connection of %s (%s): %s", who, peer, exc)
        finally:
            if link is not None:
                link.close()
            writer.close()
            if link is not None and self.learners.get(link.sid) is link:
                del self.learners[link.sid]
                self.cb.link_down(link.sid)

    def _leader_packet(self, link: _Link, p: QuorumPacket, framer: _Framer | None = None) -> None:
        t = p.type
        msg: Any = None
        fill = -2 if framer is None else framer.fills
        if t == _ACK:
            zxid = p.zxid
            if zxid & _COUNTER == 0:
                if link.newleader_core is None or zxid != link.epoch << 32:
                    return  # Apache learners ack NEWLEADER's zxid once more after UPTODATE
                msg = Ack(link.newleader_core)
                link.newleader_core = None
            else:
                if framer is not None:
                    after = qw.peek_bare(framer.buf, framer.pos)
                    if after is not None and after[0] == _ACK and after[1] > zxid and after[1] & _COUNTER:
                        return  # the ACK right behind it covers this one (ZAB counts an ACK for all before it)
                msg = Ack(zxid)
        elif t == _REQUEST:
            self.cb.request(link.sid, qw.decode_request(p.data), p.authinfo or ())
            if link.heard == fill:
                return  # the core heard from this learner in this read already (the same tick)
            msg = Ping(0)  # any packet shows the learner alive
        elif t == _PING:
            self.cb.pinged(link.sid, qw.decode_sessions(p.data))
            msg = Ping(p.zxid)
        elif t == _ACKEPOCH:
            msg = AckEpoch(qw.decode_int(p.data), p.zxid)
        elif t == _REVALIDATE:
            session, timeout = qw.decode_revalidate(p.data)
            valid = self.cb.revalidate(session, timeout)
            link.write(QuorumPacket(T.REVALIDATE, p.zxid, qw.encode_revalidate_reply(session, valid), None))
            msg = Ping(0)
        else:
            raise qw.QuorumWireError(f"unexpected {T(t).name} from learner {link.sid}")
        link.heard = fill
        self.cb.deliver(link.sid, Envelope(link.session, msg))

    def send_to_learner(self, sid: int, env: Envelope) -> None:
        link = self.learners.get(sid)
        if link is None or link.session != env.session:
            return
        msg = env.msg
        # the broadcast phase's messages first, encoded in one step each (the same bytes)
        if isinstance(msg, Proposal):
            link.pending.add(msg.zxid)
            last = self._sent
            if last[0] is not msg:
                last = self._sent = (msg, qw.encode_with_data(_PROPOSAL, msg.zxid, msg.payload))
            link.send(last[1])
        elif isinstance(msg, Commit):
            zxid = msg.zxid
            link.pending.discard(zxid)
            last = self._sent
            if last[0] is msg:
                link.send(last[1])
                return
            designated = self.cb.activate_leader(zxid)
            if designated is None:
                data = qw.encode_bare(_COMMIT, zxid)
                self._sent = (msg, data)
                link.send(data)
            else:
                link.write(QuorumPacket(T.COMMITANDACTIVATE, msg.zxid, qw.encode_long(designated), None))
        elif isinstance(msg, Ping):
            link.send(qw.encode_bare(_PING, msg.committed))
        elif isinstance(msg, LeaderInfo):
            link.epoch = msg.epoch
            link.write(QuorumPacket(T.LEADERINFO, msg.epoch << 32, qw.encode_int(qw.PROTOCOL_VERSION), None))
        elif isinstance(msg, SyncStart):
            if msg.mode == SyncMode.SNAP:
                stream = qw.stream_of_snapshot_file(msg.snapshot or b"")
                link.write(QuorumPacket(T.SNAP, msg.zxid, None, None), extra=stream)
            else:
                link.write(QuorumPacket(T.DIFF if msg.mode == SyncMode.DIFF else T.TRUNC, msg.zxid, None, None))
        elif isinstance(msg, Inform):
            designated = self.cb.activate_leader(msg.zxid)
            if designated is None:
                link.write(QuorumPacket(T.INFORM, msg.zxid, msg.payload, None))
            else:
                link.write(QuorumPacket(T.INFORMANDACTIVATE, msg.zxid, qw.encode_long(designated) + msg.payload,
                                        None))
        elif isinstance(msg, NewLeader):
            link.epoch = msg.epoch
            link.newleader_core = msg.zxid
            link.write(QuorumPacket(T.NEWLEADER, msg.epoch << 32, self.cb.last_seen_config(), None))
        elif isinstance(msg, UpToDate):
            # Apache learners apply only what a COMMIT names: commit the sync's proposals first
            done = sorted(z for z in link.pending if z <= msg.committed)
            link.pending.difference_update(done)
            link.write(*(QuorumPacket(T.COMMIT, z, None, None) for z in done),
                       QuorumPacket(T.UPTODATE, -1, None, None))

    def send_sync(self, sid: int) -> None:
        link = self.learners.get(sid)
        if link is not None:
            link.write(QuorumPacket(T.SYNC, 0, None, None))


class _Framer:
    """Packets from one quorum connection: every packet the stream holds is cut from a local
    buffer in one call (``quorumwire.take_packet``); the stream is awaited only when the buffer
    holds no whole packet. (Before, each packet took three awaited reads, one per field.)"""

    __slots__ = ("reader", "buf", "pos", "fills")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buf = b""
        self.pos = 0
        self.fills = 0  # reads from the stream so far: packets of one fill arrived in one loop turn

    async def _more(self, need: int = 1) -> None:
        """At least ``need`` more bytes than the buffer holds past pos; EOF raises."""
        rest = self.buf[self.pos:] if self.pos < len(self.buf) else b""
        if need > _READ_CHUNK:
            chunk = await self.reader.readexactly(need)  # a large piece (a snapshot's node data)
        else:
            chunk = await self.reader.read(_READ_CHUNK)
            if not chunk:
                raise asyncio.IncompleteReadError(rest, None)
        self.buf = rest + chunk if rest else chunk
        self.pos = 0
        self.fills += 1

    def take(self) -> QuorumPacket | None:
        """The next packet when the buffer holds all of it, else None (then await ``packet``)."""
        p, self.pos = qw.take_packet(self.buf, self.pos)
        return p

    async def packet(self, tried: bool = False) -> QuorumPacket:
        """The next packet, awaiting the stream for it when needed (``tried``: ``take`` just
        found no whole packet in the buffer)."""
        while True:
            if not tried:
                p, self.pos = qw.take_packet(self.buf, self.pos)
                if p is not None:
                    return p
            tried = False
            have = len(self.buf) - self.pos
            need = 1
            if have >= 16:  # the header says how much is missing: a large packet in one read
                (n,) = _DATA_LEN.unpack_from(self.buf, self.pos + 12)
                need = max(1, 20 + max(n, 0) - have)
            await self._more(need)

    async def run(self, parser: Any) -> Any:
        """Drive a quorumwire reader (a SNAP stream) over the buffer, then the stream."""
        try:
            n = next(parser)
            while True:
                have = len(self.buf) - self.pos
                while have < n:
                    await self._more(n - have)
                    have = len(self.buf) - self.pos
                chunk = self.buf[self.pos:self.pos + n]
                self.pos += n
                n = parser.send(chunk)
        except StopIteration as stop:
            return stop.value


_READ_CHUNK = 1 << 16
_DATA_LEN = struct.Struct(">i")
