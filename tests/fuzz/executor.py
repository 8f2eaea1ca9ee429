"""Run one fuzz sequence against one server and record, normalised, everything that came back.

Per step the record holds the frames the step's connection received (watch events and the
reply, in arrival order), then, after a ping barrier on every other open connection, the
frames those received (events, or the server closing them). Stat times become relations,
session ids become S0, S1... in order of first appearance; zxids stay as they are (both
servers start empty, so the same history gives the same zxids).
"""

from __future__ import annotations

import re
import socket
import struct
import time
from typing import Any

from zkops.server.codes import Op
from zkops.server.jute import JuteError
from zkops.server.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CountResponse,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    MultiHeader,
    PathOnly,
    ReplyHeader,
    Stat,
    StatResponse,
    WatcherEvent,
    WhoAmIResponse,
)

# Request.isValid in Apache 3.8, plus auth and sasl, which never reach it
APACHE_OPS = frozenset({-11, -10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                        100, 101, 102, 103, 104, 105, 106, 107})
REPLY_TIMEOUT = 5.0
CHECK_TIMEOUT = 2.0
CLOSE_TIMEOUT = 15.0
USERS = (b"u1:p1", b"u2:p2")

Obs = Any


class Closed(Exception):
    pass


class Conn:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=REPLY_TIMEOUT)
        self.buf = b""
        self.xid = 0
        self.local_port = self.sock.getsockname()[1]
        self.sid = 0
        self.passwd = b""

    def send(self, payload: bytes) -> None:
        try:
            self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        except OSError:
            raise Closed() from None

    def frame(self, timeout: float = REPLY_TIMEOUT) -> bytes:
        """The next frame; Closed on EOF, TimeoutError when nothing comes."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack_from(">i", self.buf)
                if len(self.buf) >= 4 + n:
                    out, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError() from None
            except OSError:
                raise Closed() from None
            if not chunk:
                raise Closed()
            self.buf += chunk

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def four_letter(address: tuple[str, int], word: str, timeout: float = REPLY_TIMEOUT) -> str:
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not d:
                break
            out += d
    return out.decode(errors="replace")


class Executor:
    """One server, one sequence: connections by slot, and the normalising of what it says."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.address = (host, int(port))
        self.conns: dict[int, Conn] = {}
        self.sessions: dict[int, tuple[int, bytes]] = {}  # slot -> (session id, password) last known
        self.names: dict[int, str] = {}

    # ---------------------------------------------------------------- normalising
    def sid(self, sid: int) -> str:
        if sid == 0:
            return "0"
        if sid not in self.names:
            self.names[sid] = f"S{len(self.names)}"
        return self.names[sid]

    def stat(self, s: Stat) -> tuple:
        ctime = "T" if s.ctime > 10**12 else s.ctime
        mtime = "=c" if s.mtime == s.ctime else ("T" if s.mtime > 10**12 else s.mtime)
        owner = s.ephemeralOwner
        owner_n: Any = self.names[owner] if owner in self.names else (hex(owner) if owner else 0)
        return (s.czxid, s.mzxid, ctime, mtime, s.version, s.cversion, s.aversion, owner_n, s.dataLength,
                s.numChildren, s.pzxid)

    def acl(self, acl: list[ACL] | None) -> Any:
        return None if acl is None else [(a.perms, a.id.scheme, a.id.id) for a in acl]

    def body(self, op: int, body: bytes) -> Any:
        """The reply body as comparable values (hex when it does not decode as expected)."""
        try:
            value, off = self._decode(op, body)
        except (JuteError, struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
            return ("undecodable", body.hex(), type(exc).__name__)
        if off != len(body):
            return ("trailing", value, body[off:].hex())
        return value

    def _decode(self, op: int, body: bytes) -> tuple[Any, int]:
        if op == Op.create:
            r, off = CreateResponse.read(body, 0)
            return ("path", r.path), off
        if op in (Op.create2, Op.createContainer, Op.createTTL):
            r, off = Create2Response.read(body, 0)
            return ("path", r.path, self.stat(r.stat)), off
        if op in (Op.exists, Op.setData, Op.setACL):
            r, off = StatResponse.read(body, 0)
            return ("stat", self.stat(r.stat)), off
        if op in (Op.getData, Op.reconfig):
            r, off = GetDataResponse.read(body, 0)
            return ("data", r.data, self.stat(r.stat)), off
        if op == Op.getACL:
            r, off = GetACLResponse.read(body, 0)
            return ("acl", self.acl(r.acl), self.stat(r.stat)), off
        if op in (Op.getChildren, Op.getEphemerals):
            r, off = GetChildrenResponse.read(body, 0)
            return ("children", r.children), off
        if op == Op.getChildren2:
            r, off = GetChildren2Response.read(body, 0)
            return ("children", r.children, self.stat(r.stat)), off
        if op == Op.sync:
            r, off = PathOnly.read(body, 0)
            return ("path", r.path), off
        if op == Op.getAllChildrenNumber:
            r, off = CountResponse.read(body, 0)
            return ("count", r.totalNumber), off
        if op == Op.whoAmI:
            r, off = WhoAmIResponse.read(body, 0)
            return ("whoami", [(c.authScheme, c.user) for c in r.clientInfo]), off
        if op in (Op.multi, Op.multiRead):
            return self._multi(body)
        return ("raw", body.hex()), len(body)

    def _multi(self, body: bytes) -> tuple[Any, int]:
        out: list[Any] = []
        off = 0
        while True:
            mh, off = MultiHeader.read(body, off)
            if mh.done:
                return ("multi", out), off
            if mh.type == Op.error:
                e, off = ErrorResponse.read(body, off)
                out.append(("error", mh.err, e.err))
            elif mh.type in (Op.delete, Op.check):
                out.append((mh.type, mh.err))
            else:
                v, n = self._decode(mh.type, body[off:])
                off += n
                out.append((mh.type, mh.err, v))

    def frame(self, data: bytes, op: int) -> Obs:
        hdr, off = ReplyHeader.read(data, 0)
        if hdr.xid == -1:
            ev, _ = WatcherEvent.read(data, off)
            return ("event", hdr.zxid, ev.type, ev.state, ev.path)
        body = data[off:]
        value = self.body(op, body) if hdr.err == 0 and body else (("raw", body.hex()) if body else None)
        return ("reply", hdr.xid, hdr.zxid, hdr.err, value)

    # ---------------------------------------------------------------- steps
    def run(self, steps: list[dict[str, Any]]) -> list[Obs]:
        trace = []
        for st in steps:
            trace.append(self.step(st))
        trace.append(("final", self.final_tree()))
        return trace

    def step(self, st: dict[str, Any]) -> Obs:
        k = st["k"]
        if k == "4lw":
            return ("4lw", st["w"], self.words(st["w"]))
        if k == "unknown":
            return ("unknown", self.unknown(st))
        slot = st["c"]
        if k == "connect" or k == "attach":
            old = self.conns.pop(slot, None)
            if old is not None:
                self._drop(old)
            if k == "connect":
                sid, pw = 0, b"\0" * 16
            else:
                src = self.conns.get(st["from"])
                if src is None or not src.sid:
                    return ("skip",)
                sid, pw = src.sid, src.passwd
                if st["pw"] == "wrong":
                    pw = bytes(b ^ 0x5A for b in pw)
            main = self.connect(slot, sid, pw)
        elif k == "drop":
            c = self.conns.pop(slot, None)
            if c is None:
                return ("skip",)
            self._drop(c)
            main = ["dropped"]
        else:
            c = self.conns.get(slot)
            if c is None:
                return ("skip",)
            main = self.request(slot, c, st)
        seen = self.barrier()
        # Where zkops differs on purpose and the difference would run on through every later
        # step, the client ends the same way on both servers (see KNOWN in differential.py)
        if k == "req" and st["op"] not in APACHE_OPS and slot in self.conns:
            self._drop(self.conns.pop(slot))  # Apache closes the connection of an unknown opcode
        if k == "req" and st["op"] == Op.check and slot in self.conns:
            self._drop(self.conns.pop(slot))  # Apache never answers it: that client gives up
        if k == "attach" and st["pw"] == "wrong" and st["from"] in self.conns:
            self._drop(self.conns.pop(st["from"]))  # Apache closes the session's open connection
        return (k, main, seen)

    def connect(self, slot: int, sid: int, pw: bytes) -> list[Obs]:
        try:
            c = Conn(self.address)
        except OSError as exc:
            return [("refused", type(exc).__name__)]
        c.send(ConnectRequest(0, 0, 30000, sid, pw).to_bytes() + b"\x00")
        try:
            data = c.frame()
        except Closed:
            c.close()
            return ["closed"]
        except TimeoutError:
            c.close()
            return ["stalled"]
        resp, off = ConnectResponse.read(data, 0)
        ro = data[off:].hex()
        obs = ("connected", resp.timeOut, self.sid(resp.sessionId), len(resp.passwd or b""),
               resp.passwd == pw if sid else None, ro)
        if resp.sessionId == 0:
            # refused (bad password / unknown session): the server closes after this answer
            try:
                c.frame(REPLY_TIMEOUT)
                tail = "open"
            except Closed:
                tail = "closed"
            except TimeoutError:
                tail = "open"
            c.close()
            return [obs, tail]
        c.sid, c.passwd = resp.sessionId, resp.passwd
        self.conns[slot] = c
        return [obs]

    def unknown(self, st: dict[str, Any]) -> list[Obs]:
        """An unknown opcode on a new session's own connection: its reply, then the client
        closes (Apache closes too, at a moment of its own choosing)."""
        got = self.connect(-1, 0, b"\0" * 16)
        c = self.conns.pop(-1, None)
        if c is None:
            return got
        got += self.request(-1, c, dict(st, xid=None))
        self._drop(c)
        return got

    def request(self, slot: int, c: Conn, st: dict[str, Any]) -> list[Obs]:
        op = st["op"]
        xid = st.get("xid")
        if xid is None:
            c.xid += 1
            xid = c.xid
        out: list[Obs] = []
        try:
            c.send(struct.pack(">ii", xid, op) + bytes.fromhex(st["body"]))
            while True:
                # Apache never answers a check outside a multi (KNOWN): no need to wait long
                data = c.frame(CHECK_TIMEOUT if op == Op.check else REPLY_TIMEOUT)
                f = self.frame(data, op)
                out.append(f)
                if f[0] == "reply" and f[1] == xid:
                    break
        except Closed:
            out.append("closed")
            self.conns.pop(slot, None)
            self._wait_gone(c)
            c.close()
        except TimeoutError:
            out.append("stalled")
            self.conns.pop(slot, None)
            self._drop(c)
        return out

    def barrier(self) -> dict[int, list[Obs]]:
        """Ping every open connection; what arrived before each pong (events, closes)."""
        seen: dict[int, list[Obs]] = {}
        for slot in sorted(self.conns):
            c = self.conns[slot]
            got: list[Obs] = []
            try:
                c.send(struct.pack(">ii", -2, Op.ping))
                while True:
                    f = self.frame(c.frame(), Op.ping)
                    if f[0] == "reply" and f[1] == -2:
                        break
                    got.append(f)
            except Closed:
                got.append("closed")
                del self.conns[slot]
                self._wait_gone(c)
                c.close()
            except TimeoutError:
                got.append("stalled")
                del self.conns[slot]
                self._drop(c)
            if got:
                seen[slot] = got
        return seen

    def _drop(self, c: Conn) -> None:
        c.close()
        self._wait_gone(c)

    def _wait_gone(self, c: Conn) -> None:
        """Until the server no longer lists the connection, nor (when no other connection of
        its session is open) its session among the watchers: Apache drops a closed
        connection's watches a moment after the connection, and a busy machine can make that
        moment long enough for the next wchc to see them."""
        deadline = time.monotonic() + CLOSE_TIMEOUT
        self._poll(deadline, "cons", f":{c.local_port}[")
        if c.sid and not any(o.sid == c.sid for o in self.conns.values()):
            self._poll(deadline, "wchc", f"0x{c.sid:x}\n")

    def _poll(self, deadline: float, word: str, needle: str) -> None:
        while time.monotonic() < deadline:
            try:
                if needle not in four_letter(self.address, word):
                    return
            except OSError:
                return
            time.sleep(0.02)

    def words(self, word: str) -> Any:
        try:
            text = four_letter(self.address, word)
        except OSError as exc:
            return ("error", type(exc).__name__)
        return self.parse_words(word, text)

    def parse_words(self, word: str, text: str) -> Any:
        def name(m: re.Match[str]) -> str:
            sid = int(m.group(1), 16)
            return self.names.get(sid, "S?")

        if word == "wchs":
            return text
        groups: dict[str, list[str]] = {}
        key = None
        for line in text.splitlines():
            if not line.startswith("\t") and not line.strip():
                key = ""  # the empty path's heading (a watch set through setWatches), or the last line
                groups.setdefault(key, [])
                continue
            if line.startswith("\t"):
                if key is None:
                    return ("unparsed", text)
                groups[key].append(re.sub(r"0x([0-9a-f]+)", name, line.strip()))
            else:
                key = re.sub(r"0x([0-9a-f]+)", name, line.strip())
                groups.setdefault(key, [])
        return sorted((k, sorted(v)) for k, v in groups.items() if k or v)

    # ---------------------------------------------------------------- the end
    def final_tree(self) -> Any:
        for slot in list(self.conns):
            self.conns.pop(slot).close()
        try:
            c = Conn(self.address)
            c.send(ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\x00")
            c.frame()
            for u in USERS:
                c.send(struct.pack(">ii", -4, Op.auth) + struct.pack(">i", 0) + _s(b"digest") + _s(u))
                c.frame()
            nodes = []
            stack = ["/"]
            while stack:
                p = stack.pop()
                got = self._call(c, Op.getData, _s(p.encode()) + b"\0")
                acl = self._call(c, Op.getACL, _s(p.encode()))
                kids = self._call(c, Op.getChildren, _s(p.encode()) + b"\0")
                nodes.append((p, got, acl, kids))
                if kids[0] == 0:
                    stack.extend(sorted((p.rstrip("/") + "/" + k for k in kids[1][1]), reverse=True))
            c.close()
            return nodes
        except (Closed, TimeoutError, OSError) as exc:
            return ("unreachable", type(exc).__name__)

    def _call(self, c: Conn, op: int, body: bytes) -> tuple[int, Any]:
        c.xid += 1
        c.send(struct.pack(">ii", c.xid, op) + body)
        while True:
            f = self.frame(c.frame(), op)
            if f[0] == "reply" and f[1] == c.xid:
                return f[3], f[4]


def _s(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b
