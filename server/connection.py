"""One client TCP connection: framing, the handshake, and per-session request order.

Bytes in, records to the server; replies and watch events out through one ordered
buffer, so an event is always written before the reply to any later request. Reads
that arrive behind a session's own outstanding write wait for it (ZooKeeper's
per-session ordering); writes pipeline freely.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .codes import Err, KeeperState, Op, Xid, name_of
from .fourletterwords import WIRE_WORDS
from .jute import JuteError
from .records import (
    ConnectRequest,
    ConnectResponse,
    Id,
    WatcherEvent,
)
from .wire import REQUEST_TYPES, decode_multi

if TYPE_CHECKING:
    from .zkserver import ZooKeeperServer

log = logging.getLogger("zkops.server.cnxn")

_LEN = struct.Struct(">i")
_HDR = struct.Struct(">ii")
_REPLY = struct.Struct(">iiqi")  # frame length, xid, zxid, err
_PATH_REPLY = struct.Struct(">iiqii")  # ... and a string's length
# ... and a Stat (czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner,
# dataLength, numChildren, pzxid): a StatResponse, the reply to a setData
_STAT_REPLY = struct.Struct(">iiqiqqqqiiiqiiq")
_STAT_REPLY_LEN = _STAT_REPLY.size - 4
WRITE_OPS = frozenset({Op.create, Op.create2, Op.createContainer, Op.createTTL, Op.delete,
                       Op.setData, Op.setACL, Op.check, Op.multi, Op.reconfig, Op.closeSession,
                       Op.deleteContainer})


MALFORMED = object()  # the record of a request whose body did not decode
UNKNOWN = object()  # the record of a request whose opcode Apache 3.8 does not know


def _op_name(op: int) -> str:
    return name_of(Op, op) or f"op {op}"


class Request:
    __slots__ = ("xid", "op", "record", "received", "write")

    def __init__(self, xid: int, op: int, record: Any, received: float, write: bool) -> None:
        self.xid = xid
        self.op = op
        self.record = record
        self.received = received
        self.write = write


class ClientConnection(asyncio.Protocol):
    """The client side of the server: one per accepted socket."""

    def __init__(self, server: ZooKeeperServer, secure: bool = False) -> None:
        self.server = server
        self.secure = secure
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out = bytearray()
        self.flush_scheduled = False
        self.session_id = 0
        self.timeout = 0
        self.auth: list[Id] = []
        self.queue: deque[Request] = deque()
        # requests that came behind the ConnectRequest wait until its session is committed
        self.held = False
        self.outstanding_writes = 0
        self.connected = False  # handshake done
        self.closing = False
        self.peer = ("?", 0)
        self.readonly_requested = False
        self.read_only_session = False  # established while the server was in read-only mode
        self.sasl: Any = None  # the DIGEST-MD5 exchange in progress, if any
        self.established = time.time()
        self.packets_received = 0
        self.packets_sent = 0
        self.last_cxid = 0
        self.last_zxid = 0
        self.last_op = "NA"
        self.last_latency = 0
        self.min_latency = -1
        self.max_latency = 0
        self.total_latency = 0
        self.latency_count = 0
        self.paused = False
        self.touched = False

    # ------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not a subclass of asyncio.Transport, only alike)
        self.transport = stream = cast("asyncio.Transport", transport)
        peer = stream.get_extra_info("peername")
        if peer:
            self.peer = (peer[0], peer[1])
        self.auth = [Id("ip", self.peer[0])]
        if self.secure:
            self._x509_auth(stream)
        if not self.server.accept_connection(self):
            self.closing = True
            stream.abort()

    def _x509_auth(self, transport: asyncio.Transport) -> None:
        """A verified client certificate authenticates the session as x509:<subject DN>."""
        cert = transport.get_extra_info("peercert")
        if not cert:
            return
        from .tls import subject_dn

        dn = subject_dn(cert)
        self.auth.append(Id("x509", dn))
        if dn == self.server.x509_super_user():
            self.auth.append(Id("super", ""))
        log.info("TLS client %s authenticated as x509 %s", self.peer[0], dn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        # the client reads slower than we answer: stop reading its requests until it catches up
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.paused:
            self.paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        buf = self.buf
        buf += data
        off = 0
        n = len(buf)
        maxbuf = self.server.jute_maxbuffer
        try:
            while n - off >= 4:
                if not self.connected and off == 0 and self.packets_received == 0 and bytes(buf[:4]) in WIRE_WORDS:
                    self.server.four_letter(self, bytes(buf[:4]).decode())
                    del buf[:]
                    return
                (length,) = _LEN.unpack_from(buf, off)
                if length < 0 or length > maxbuf:
                    self._bad_input(f"Len error {length}" if length >= 0 else f"negative length {length}",
                                    buf[off:off + 16])
                    return
                if n - off - 4 < length:
                    break
                frame = memoryview(buf)[off + 4:off + 4 + length]
                off += 4 + length
                try:
                    self._frame(frame)
                finally:
                    frame.release()
                if self.closing:
                    return
        except (JuteError, IndexError, struct.error, UnicodeDecodeError) as exc:
            self._bad_input(f"malformed request: {exc}", b"")
            return
        if off:
            del buf[:off]
        if self.touched:
            # one session touch per chunk of requests, not per request
            self.touched = False
            self.server.touch(self)
        self.flush()

    def _bad_input(self, why: str, sample: bytes | bytearray) -> None:
        log.warning("closing connection from %s:%d (session 0x%x): %s %r", self.peer[0], self.peer[1],
                    self.session_id, why, bytes(sample[:16]))
        self.close()

    # ------------------------------------------------------------ frames
    def _frame(self, frame: memoryview) -> None:
        self.packets_received += 1
        if not self.connected:
            self._handshake(frame)
            return
        xid, op = _HDR.unpack_from(frame, 0)
        self.touched = True
        try:
            if op == Op.multi or op == Op.multiRead:
                record: Any = decode_multi(frame, 8, op == Op.multiRead)
            else:
                cls = REQUEST_TYPES.get(op, False)
                if isinstance(cls, bool):  # False: an op we do not know
                    self.queue_request(Request(xid, op, UNKNOWN, time.monotonic(), False))
                    return
                record = cls.read(frame, 8)[0] if cls is not None else None
        except (JuteError, struct.error, IndexError, UnicodeDecodeError) as exc:
            # as Apache ZooKeeper: the request fails with MarshallingError, the connection lives
            log.info("malformed %s request from session 0x%x: %s", _op_name(op), self.session_id, exc)
            record = MALFORMED
        req = Request(xid, op, record, time.monotonic(), op in WRITE_OPS)
        if req.write and not self.queue and not self.held:  # as queue_request and _dispatch
            self.outstanding_writes += 1
            self.server.handle(self, req)
            return
        self.queue_request(req)

    def _handshake(self, frame: memoryview) -> None:
        req, off = ConnectRequest.read(frame, 0)
        if len(frame) > off:
            self.readonly_requested = frame[off] != 0
        self.server.connect(self, req)

    # ------------------------------------------------------------ ordering
    def queue_request(self, req: Request) -> None:
        q = self.queue
        if not q and not self.held and (req.write or self.outstanding_writes == 0):
            self._dispatch(req)
            return
        q.append(req)
        self.drain()

    def drain(self) -> None:
        q = self.queue
        while q and not self.closing and not self.held:
            req = q[0]
            if not req.write and self.outstanding_writes:
                return
            q.popleft()
            self._dispatch(req)

    def _dispatch(self, req: Request) -> None:
        if req.write:
            self.outstanding_writes += 1
        self.server.handle(self, req)

    def write_done(self) -> None:
        self.outstanding_writes -= 1
        if self.queue:
            self.drain()

    # ------------------------------------------------------------ output
    def send_reply(self, xid: int, zxid: int, err: int, body: Any = None) -> None:
        out = self.out
        start = len(out)
        out += _REPLY.pack(16, xid, zxid, err)  # the frame's length is right unless a body follows
        if body is not None and err == 0:
            body.write(out)
            _LEN.pack_into(out, start, len(out) - start - 4)
        self.packets_sent += 1
        if not self.flush_scheduled:
            self._schedule_flush()

    def send_path_reply(self, xid: int, zxid: int, path: str) -> None:
        """A reply whose body is one string (a create's path), without a record for it."""
        data = path.encode("utf-8")
        self.out += _PATH_REPLY.pack(20 + len(data), xid, zxid, 0, len(data))
        self.out += data
        self.packets_sent += 1
        if not self.flush_scheduled:
            self._schedule_flush()

    def send_stat_reply(self, xid: int, zxid: int, s: Any) -> None:
        """A reply whose body is one Stat (a StatResponse), packed at once with its header."""
        self.out += _STAT_REPLY.pack(_STAT_REPLY_LEN, xid, zxid, 0, s.czxid, s.mzxid, s.ctime, s.mtime, s.version,
                                     s.cversion, s.aversion, s.ephemeralOwner, s.dataLength, s.numChildren, s.pzxid)
        self.packets_sent += 1
        if not self.flush_scheduled:
            self._schedule_flush()

    def send_raw_reply(self, xid: int, zxid: int, err: int, payload: bytes | bytearray) -> None:
        out = self.out
        out += _REPLY.pack(16 + len(payload), xid, zxid, err)
        out += payload
        self.packets_sent += 1
        self._schedule_flush()

    def send_event(self, event_type: int, path: str) -> None:
        out = self.out
        start = len(out)
        out += _REPLY.pack(0, Xid.NOTIFICATION, -1, 0)
        WatcherEvent(event_type, KeeperState.SyncConnected, path).write(out)
        _LEN.pack_into(out, start, len(out) - start - 4)
        self.packets_sent += 1
        self._schedule_flush()

    def send_connect_response(self, resp: ConnectResponse, readonly: bool) -> None:
        body = bytearray()
        resp.write(body)
        body.append(1 if readonly else 0)
        self.out += _LEN.pack(len(body))
        self.out += body
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            batch = self.server.out_batch
            if batch is None:
                self.server.loop.call_soon(self.flush)
            else:  # the server flushes every connection of the batch it is applying at its end
                batch.append(self)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self.out))
        self.out.clear()

    def close(self) -> None:
        """Flush what is queued, then close the socket."""
        if self.transport is None:
            return
        self.flush()
        self.closing = True
        self.transport.close()

    def record_latency(self, req: Request, zxid: int) -> None:
        ms = int((time.monotonic() - req.received) * 1000)
        self.last_latency = ms
        self.total_latency += ms
        self.latency_count += 1
        if self.min_latency < 0 or ms < self.min_latency:
            self.min_latency = ms
        if ms > self.max_latency:
            self.max_latency = ms
        self.last_cxid = req.xid
        self.last_zxid = zxid
        self.server.counters.record(ms, req.write)

    def reset_stats(self) -> None:
        self.packets_received = self.packets_sent = 0
        self.min_latency = -1
        self.max_latency = self.total_latency = self.latency_count = 0

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


__all__ = ["ClientConnection", "Request", "WRITE_OPS", "Err", "MALFORMED", "UNKNOWN"]
