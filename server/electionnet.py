"""The election port as Apache ZooKeeper 3.8's QuorumCnxManager runs it.

One TCP connection per pair of servers, used both ways. The dialling side sends its
initial message (see ``electionwire``); the connection survives only when the dialler has
the larger sid, so a server dials a larger sid only to announce itself (it sends the
message and closes) and the larger one dials back. Frames are int32 length + notification.
A server keeps the last notification for each peer and sends it again when a connection
comes up (Apache's ``lastMessageSent``). Bad bytes close that connection with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from . import electionwire as ew
from .election import Notification
from .taskset import TaskSet
from .tlspeers import PeerListener, PeerPorts, dial_failure

log = logging.getLogger("zkops.server.election")

_LEN = struct.Struct(">i")
HANDSHAKE_TIMEOUT = 5.0


def _write(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write unless the connection is gone (False then). asyncio's own loop drops bytes for a
    closed transport; uvloop's raises RuntimeError, which must not end the task that wrote."""
    if writer.is_closing():
        return False
    try:
        writer.write(data)
    except (RuntimeError, OSError):
        return False
    return True


class ElectionNetwork:
    """All election connections of one server."""

    def __init__(self, my_sid: int, bind: tuple[str, int], peers: dict[int, tuple[str, int]],
                 on_message: Callable[[int, Notification], None], is_observer: Callable[[int], bool],
                 tls: PeerPorts | tuple[Any, Any] | None = None, max_backoff: float = 1.0) -> None:
        self.my_sid = my_sid
        self.bind = bind
        self.peers = {s: a for s, a in peers.items() if s != my_sid}
        self.on_message = on_message
        self.is_observer = is_observer
        self.ports = PeerPorts.of(tls)
        self.tls_server: Any = self.ports.tls_server
        self.tls_client: Any = self.ports.tls_client
        self.tls_failed: dict[int, str] = {}  # the last TLS failure logged per peer (logged once)
        self.max_backoff = max_backoff
        self.running = False
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.last_sent: dict[int, bytes] = {}
        self.dialing: set[int] = set()
        # peers known to be down: seen alive since we started, then our connection closed or a
        # dial failed, and nothing since has shown them alive. A peer never seen is not known
        # to be down: at a start its election port may not be bound yet
        self.seen: set[int] = set()
        self.down: set[int] = set()
        self.learned: dict[int, tuple[str, int]] = {}  # servers outside our membership that dialled us
        self.server: PeerListener | None = None
        self.tasks = TaskSet()
        self.next_dial: dict[int, float] = {}
        self.backoff: dict[int, float] = {}
        self.sent = 0
        self.received = 0
        self.refused = 0

    @property
    def address(self) -> str:
        host, port = self.bind
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def start(self) -> None:
        self.running = True
        self.server = PeerListener("election", self.ports, self._accept, log)
        await self.server.start(self.bind[0], self.bind[1], retries=self.ports.bind_retry)

    async def stop(self) -> None:
        self.running = False
        if self.server is not None:
            self.server.close()
        for w in list(self.writers.values()):
            w.close()
        self.tasks.cancel_all()

    # ------------------------------------------------------------ sending
    def send(self, sid: int, n: Notification) -> bool:
        payload = ew.encode_notification(ew.from_core(n))
        frame = _LEN.pack(len(payload)) + payload
        self.last_sent[sid] = frame
        w = self.writers.get(sid)
        if w is not None and _write(w, frame):
            self.sent += 1
            return True
        self._dial(sid)
        return False

    def kick(self) -> None:
        """Retry every peer without a connection now."""
        for sid in list(self.peers):
            if not self.connected(sid):
                self.next_dial.pop(sid, None)
                self._dial(sid)

    def set_peers(self, peers: dict[int, tuple[str, int]]) -> None:
        self.peers = {s: a for s, a in peers.items() if s != self.my_sid}
        for sid in list(self.writers):
            if sid not in self.peers and sid not in self.learned:
                self.writers.pop(sid).close()

    def connected(self, sid: int) -> bool:
        """A connection to ``sid`` is up (one that is closing does not count: its reader has not
        yet let it go, and until then we may dial again)."""
        w = self.writers.get(sid)
        return w is not None and not w.is_closing()

    def reachable(self, sid: int) -> bool:
        """``sid`` is not known to be down (``down``): connected, not yet reached since we
        started, or being dialled (and dialled back). What the election's finalize wait may
        stop waiting for is only a peer known to be down: a server that starts beside the
        others is not yet connected to all of them, and deciding without them elected a leader
        the others did not (kazoo's suite, a cluster restarted at once: one member followed a
        server that itself followed another, and served no client for 8 s)."""
        return self.connected(sid) or sid not in self.down

    def _dial(self, sid: int) -> None:
        if not self.running or sid in self.dialing or self.connected(sid):
            return
        addr = self.peers.get(sid) or self.learned.get(sid)
        if addr is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.next_dial.get(sid, 0.0):
            return
        self.dialing.add(sid)
        self.tasks.spawn(self._connect(sid, addr))

    async def _connect(self, sid: int, addr: tuple[str, int]) -> None:
        try:
            conn = await self._open(sid, addr)
        finally:
            # whatever ended the attempt, the next send or announcement may dial again: a sid
            # left in ``dialing`` would never be dialled again
            self.dialing.discard(sid)
        if conn is None:
            return
        reader, writer = conn
        log.debug("election: connected to server %d", sid)
        self._adopt(sid, writer)
        await self._read(sid, reader, writer)

    async def _open(self, sid: int, addr: tuple[str, int]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Dial ``sid`` and send our initial message: the connection to keep, or None when the
        dial failed (then the next try waits out a backoff) or only announced us."""
        loop = asyncio.get_running_loop()
        try:
            host, port = addr
            tls = self.tls_client
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls is not None else None), 5.0)
        except (OSError, asyncio.TimeoutError) as exc:
            why = dial_failure(exc)
            if why is not None and self.tls_failed.get(sid) != why:
                self.tls_failed[sid] = why
                log.warning("election connection to server %d at %s:%d refused: TLS handshake failed (%s)",
                            sid, addr[0], addr[1], why)
            self._back_off(sid, str(exc))
            return None
        if not _write(writer, ew.encode_initial(ew.InitialMessage(self.my_sid, (self.address,)))):
            # the peer went away between its accept and our first byte (a server killed as we
            # dialled): a failed dial like any other
            writer.close()
            self._back_off(sid, "the connection closed before our initial message")
            return None
        self.backoff[sid] = 0.05
        self.tls_failed.pop(sid, None)
        self._alive(sid)  # it accepted
        if sid > self.my_sid:
            # the larger sid keeps the connection it dials: announce ourselves and let it dial back
            log.debug("election: announced ourselves to server %d", sid)
            try:
                await writer.drain()
            except OSError:
                pass
            writer.close()
            self.next_dial[sid] = loop.time() + 0.5
            return None
        return reader, writer

    def _back_off(self, sid: int, why: str) -> None:
        back = min(self.backoff.get(sid, 0.05) * 2, self.max_backoff)
        log.debug("election: dialling server %d failed (%s); next try in %.2f s", sid, why, back)
        self.backoff[sid] = back
        self.next_dial[sid] = asyncio.get_running_loop().time() + back
        if sid in self.seen:
            self.down.add(sid)

    def _alive(self, sid: int) -> None:
        self.seen.add(sid)
        self.down.discard(sid)

    def _adopt(self, sid: int, writer: asyncio.StreamWriter) -> None:
        old = self.writers.get(sid)
        if old is not None and old is not writer:
            old.close()
        self.writers[sid] = writer
        self._alive(sid)
        frame = self.last_sent.get(sid)
        if frame is not None:
            _write(writer, frame)  # a dead connection: its reader sees it and lets it go

    # ------------------------------------------------------------ receiving
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            msg = await asyncio.wait_for(self._read_initial(reader), HANDSHAKE_TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.TimeoutError):
            writer.close()
            return
        except ew.ElectionWireError as exc:
            self.refused += 1
            log.warning("election connection from %s refused: %s", peer, exc)
            writer.close()
            return
        sid = msg.sid
        if sid == self.my_sid:
            log.warning("election connection from %s claims our own sid %d; closing", peer, sid)
            writer.close()
            return
        if sid not in self.peers:
            if not msg.addresses:
                log.warning("election connection from unknown server %d at %s without an address; closing",
                            sid, peer)
                writer.close()
                return
            self.learned[sid] = ew.split_address(msg.addresses[0])
        if sid < self.my_sid:
            # the larger sid keeps the connection: close this one and dial back
            writer.close()
            self._alive(sid)  # it dialled us
            self.next_dial.pop(sid, None)
            live = self.connected(sid)
            log.debug("election: server %d announced itself; %s", sid,
                      "we hold a connection to it already" if live else "dialling back")
            if not live:
                self._dial(sid)
            return
        log.debug("election: server %d connected", sid)
        self._adopt(sid, writer)
        await self._read(sid, reader, writer)

    async def _read_initial(self, reader: asyncio.StreamReader) -> ew.InitialMessage:
        head = await reader.readexactly(8)
        if ew.initial_head(head) >= 0:
            return ew.decode_initial(head)
        rest = await reader.readexactly(12)
        (n,) = _LEN.unpack_from(rest, 8)
        if n <= 0 or n > ew.MAX_ADDRESS:
            raise ew.ElectionWireError(f"address length {n} out of range")
        return ew.decode_initial(head + rest + await reader.readexactly(n))

    async def _read(self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                (n,) = _LEN.unpack(await reader.readexactly(4))
                if n <= 0 or n > ew.MAX_FRAME:
                    raise ew.ElectionWireError(f"frame of {n} bytes")
                wire = ew.decode_notification(await reader.readexactly(n))
                self.received += 1
                try:
                    self.on_message(sid, ew.to_core(sid, wire, self.is_observer(sid)))
                except Exception:  # a bug of ours must not look like the peer's fault
                    log.exception("handling a notification from server %d", sid)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except ew.ElectionWireError as exc:
            self.refused += 1
            log.warning("closing the election connection of server %d (%s): %s", sid, peer, exc)
        finally:
            log.debug("election: the connection with server %d closed", sid)
            if self.writers.get(sid) is writer:
                del self.writers[sid]
                self.down.add(sid)
            writer.close()
