"""A tiny blocking jute client for protocol tests kazoo cannot express (raw frames, new opcodes)."""

from __future__ import annotations

import socket
import struct
from typing import Any

from zkops.server import fourletterclient
from zkops.server.codes import Xid
from zkops.server.records import (
    ConnectRequest,
    ConnectResponse,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
)


class RawClient:
    def __init__(self, address: str, timeout_ms: int = 10000, session_id: int = 0,
                 passwd: bytes = b"\0" * 16, read_only: bool | None = False) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.xid = 0
        self.events: list[WatcherEvent] = []
        req = ConnectRequest(0, 0, timeout_ms, session_id, passwd).to_bytes()
        if read_only is not None:
            req += b"\x01" if read_only else b"\x00"
        self.send_frame(req)
        body = self.read_frame()
        self.connect_response, off = ConnectResponse.read(body, 0)
        self.read_only = len(body) > off and body[off] != 0

    @property
    def session_id(self) -> int:
        return self.connect_response.sessionId

    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("server closed the connection")
            out += chunk
        return out

    def read_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self.read_exact(4))
        return self.read_exact(n)

    def request(self, op: int, record: Any = None, raw: bytes | None = None) -> tuple[ReplyHeader, bytes]:
        """Send one request; return its reply header and body, keeping watch events aside."""
        self.xid += 1
        payload = RequestHeader(self.xid, op).to_bytes()
        if record is not None:
            payload += record.to_bytes()
        if raw is not None:
            payload += raw
        self.send_frame(payload)
        return self.reply(self.xid)

    def reply(self, xid: int) -> tuple[ReplyHeader, bytes]:
        while True:
            frame = self.read_frame()
            hdr, off = ReplyHeader.read(frame, 0)
            if hdr.xid == Xid.NOTIFICATION:
                self.events.append(WatcherEvent.read(frame, off)[0])
                continue
            if hdr.xid != xid:
                raise AssertionError(f"reply for xid {hdr.xid}, expected {xid}")
            return hdr, frame[off:]

    def wait_event(self) -> WatcherEvent:
        if self.events:
            return self.events.pop(0)
        frame = self.read_frame()
        hdr, off = ReplyHeader.read(frame, 0)
        assert hdr.xid == Xid.NOTIFICATION, hdr
        return WatcherEvent.read(frame, off)[0]

    def close(self) -> None:
        self.sock.close()


def four_letter(address: str, word: str) -> str:
    """A word to "host:port"; raises when the server cannot be asked."""
    host, port = address.rsplit(":", 1)
    return fourletterclient.four_letter(host, int(port), word, 5.0)
