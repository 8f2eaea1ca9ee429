"""Session tracking with ZooKeeper's tick-bucket expiry (ExpiryQueue), as a pure object.

Time comes in as milliseconds from the caller. A session's expiry time is rounded up
to the next multiple of the tick, so all sessions due in one tick expire together and
the tracker only looks at one bucket per tick.
"""

from __future__ import annotations

import time as _time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import Id

# ZooKeeper derives a session's password from its id and a fixed secret: 16 bytes of
# java.util.Random seeded with id ^ 0xB3415C00. Any server of an ensemble (and a restarted
# one), of either kind, must compute the same bytes for a session to move between them.
_SECRET = 0xB3415C00
_MULT = 0x5DEECE66D
_MASK = (1 << 48) - 1


def session_password(session_id: int) -> bytes:
    """Apache's password for ``session_id`` (``Random(id ^ secret).nextBytes(new byte[16])``)."""
    seed = ((session_id ^ _SECRET) ^ _MULT) & _MASK
    out = bytearray()
    while len(out) < 16:
        seed = (seed * _MULT + 0xB) & _MASK
        word = seed >> 16  # nextInt(): the top 32 of 48 bits, used low byte first
        for _ in range(min(4, 16 - len(out))):
            out.append(word & 0xFF)
            word >>= 8
    return bytes(out)


def initial_session_id(server_id: int, now_ms: int | None = None) -> int:
    """First session id of a server: its id in the top byte, the clock below (as ZooKeeper)."""
    if now_ms is None:
        now_ms = int(_time.time() * 1000)
    base = ((now_ms << 24) & 0xFFFFFFFFFFFFFFFF) >> 8
    sid = base | ((server_id & 0xFF) << 56)
    if sid >= 1 << 63:
        sid -= 1 << 64
    return sid


class Session:
    """One live session (a plain class: it is made per connect, and a dataclass would cost
    start-up time to build)."""

    __slots__ = ("session_id", "timeout", "expires_at", "closing", "local", "owner", "auth")

    def __init__(self, session_id: int, timeout: int, expires_at: int = 0, closing: bool = False,
                 local: bool = False, owner: object | None = None, auth: list[Id] | None = None) -> None:
        self.session_id = session_id
        self.timeout = timeout
        self.expires_at = expires_at
        self.closing = closing
        self.local = local
        self.owner = owner  # which server/connection currently holds it
        self.auth = [] if auth is None else auth

    def __repr__(self) -> str:
        return f"Session(0x{self.session_id:x}, timeout={self.timeout}, expires_at={self.expires_at})"


class SessionTracker:
    """Which sessions live, and which are due to expire at a given time."""

    def __init__(self, tick_ms: int, server_id: int = 1, now_ms: int = 0) -> None:
        self.tick = tick_ms
        self.sessions: dict[int, Session] = {}
        self.buckets: dict[int, set[int]] = {}
        self.next_expiry = self._round(now_ms)
        self._next_id = initial_session_id(server_id)

    def _round(self, t: int) -> int:
        return (t // self.tick + 1) * self.tick

    def new_session_id(self) -> int:
        sid = self._next_id
        self._next_id += 1
        while sid in self.sessions or sid == 0:
            sid = self._next_id
            self._next_id += 1
        return sid

    def add(self, session_id: int, timeout: int, now_ms: int) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            s = Session(session_id, timeout)
            self.sessions[session_id] = s
        else:
            s.timeout = timeout
        self.touch(session_id, now_ms)
        return s

    def touch(self, session_id: int, now_ms: int, timeout: int | None = None) -> bool:
        """Push the session's expiry out; False when it is unknown or closing."""
        s = self.sessions.get(session_id)
        if s is None or s.closing:
            return False
        new = self._round(now_ms + (timeout if timeout is not None else s.timeout))
        if new == s.expires_at:
            return True
        old = self.buckets.get(s.expires_at)
        if old is not None:
            old.discard(session_id)
            if not old:
                del self.buckets[s.expires_at]
        s.expires_at = new
        self.buckets.setdefault(new, set()).add(session_id)
        return True

    def set_closing(self, session_id: int) -> None:
        s = self.sessions.get(session_id)
        if s is not None:
            s.closing = True

    def remove(self, session_id: int) -> Session | None:
        s = self.sessions.pop(session_id, None)
        if s is not None:
            bucket = self.buckets.get(s.expires_at)
            if bucket is not None:
                bucket.discard(session_id)
                if not bucket:
                    del self.buckets[s.expires_at]
        return s

    def expired(self, now_ms: int) -> list[Session]:
        """Sessions whose bucket time has passed; they are marked closing, not removed."""
        out: list[Session] = []
        while self.next_expiry <= now_ms:
            for sid in sorted(self.buckets.pop(self.next_expiry, ())):
                s = self.sessions.get(sid)
                if s is not None and not s.closing:
                    s.closing = True
                    out.append(s)
            self.next_expiry += self.tick
        return out

    def ms_to_next_check(self, now_ms: int) -> int:
        return max(0, self.next_expiry - now_ms)

    def __contains__(self, session_id: int) -> bool:
        return session_id in self.sessions

    def __len__(self) -> int:
        return len(self.sessions)
