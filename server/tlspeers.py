"""The listening side of the peer ports (election 3888, quorum 2888), with Apache's options.

``sslQuorum=true``
    both ports speak mutual TLS only (the contexts come from ``tls.quorum_contexts``); a
    connection whose handshake fails is refused with a log line naming the peer and why.
``portUnification=true``
    a port accepts TLS and plain connections alike, told apart by the first byte (a TLS
    record starts with 0x16, a peer's first frame with a sign byte of 0x00 or 0xff), as
    Apache's UnifiedServerSocket does; this is how an ensemble moves to sslQuorum one
    server at a time. Dialling follows ``sslQuorum``.
``quorumListenOnAllIPs=true``
    both ports listen on every address of the host instead of the one on the server line.
``ssl.quorum.hostnameVerification`` (default true)
    besides the dialled server's certificate naming the address dialled, a dialler's
    certificate must name the address it connects from (an IP entry, or a DNS entry matching
    its reverse lookup), as Apache checks both sides.
``electionPortBindRetry=N``
    a taken election port is tried N times, a second apart (0: until it is free), before
    the server gives up with an error, as Apache's Listener does (default 3).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .taskset import TaskSet
from .tls import TlsConfigError, quorum_contexts

TLS_RECORD = 0x16  # a TLS handshake record: the first byte of a ClientHello
HANDSHAKE_TIMEOUT = 5.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class PeerPorts:
    """How this server's peer ports listen and dial."""

    tls_server: Any = None  # ssl.SSLContext accepting TLS (sslQuorum or portUnification), or None
    tls_client: Any = None  # ssl.SSLContext dialling with TLS (sslQuorum), or None
    unified: bool = False  # portUnification: plain and TLS on the same port
    listen_all: bool = False  # quorumListenOnAllIPs
    bind_retry: int = 3  # electionPortBindRetry (0: forever)
    verify_host: bool = False  # ssl.quorum.hostnameVerification: a dialler's certificate names its address

    @classmethod
    def of(cls, value: PeerPorts | tuple[Any, Any] | None) -> PeerPorts:
        """Also the (server, client) pair of ``tls.quorum_contexts`` (or None: plain)."""
        if isinstance(value, PeerPorts):
            return value
        if value is None:
            return cls()
        return cls(tls_server=value[0], tls_client=value[1])


def _flag(raw: dict[str, str], key: str) -> bool:
    return raw.get(key, raw.get(f"zookeeper.{key}", "false")).strip().lower() == "true"


def peer_ports(raw: dict[str, str]) -> PeerPorts:
    """The peer-port options of a zoo.cfg (its raw keys); raises ``TlsConfigError`` naming the key."""
    unified = _flag(raw, "portUnification")
    contexts = quorum_contexts(raw)
    if contexts is None and unified:
        # not dialling with TLS yet, but accepting it: the key store must be there
        contexts = quorum_contexts({**raw, "sslQuorum": "true"})
        contexts = (contexts[0], None) if contexts is not None else None
    retry_text = raw.get("electionPortBindRetry", raw.get("zookeeper.electionPortBindRetry", "3")).strip()
    try:
        retry = int(retry_text)
    except ValueError:
        raise TlsConfigError(f"electionPortBindRetry={retry_text}: not a number; write a count, 0 for no limit")
    if retry < 0:
        raise TlsConfigError(f"electionPortBindRetry={retry_text}: write a count >= 0 (0: no limit)")
    server, client = contexts if contexts is not None else (None, None)
    verify = raw.get("ssl.quorum.hostnameVerification", "true").strip().lower() != "false"
    return PeerPorts(server, client, unified, _flag(raw, "quorumListenOnAllIPs"), retry,
                     verify_host=server is not None and verify)


def _bind_host(host: str, listen_all: bool) -> str:
    if not listen_all:
        return host
    return "::" if socket.has_ipv6 and ":" in host else "0.0.0.0"


class PeerListener:
    """One listening peer port: accepts, settles TLS or plain, then hands streams to ``handler``."""

    def __init__(self, what: str, ports: PeerPorts, handler: Handler, log: logging.Logger) -> None:
        self.what = what  # "election" or "quorum", for log lines
        self.ports = ports
        self.handler = handler
        self.log = log
        self.sock: socket.socket | None = None
        self.task: asyncio.Task[None] | None = None
        self.conns = TaskSet()
        self.refused = 0

    async def start(self, host: str, port: int, retries: int = 1) -> None:
        """Bind (``retries`` attempts a second apart, 0: forever) and start accepting."""
        bind = _bind_host(host, self.ports.listen_all)
        attempt = 0
        while True:
            attempt += 1
            try:
                self.sock = _listen(bind, port)
                break
            except OSError as exc:
                if retries and attempt >= retries:
                    raise OSError(exc.errno, f"cannot listen on the {self.what} port {bind}:{port} "
                                             f"after {attempt} attempt(s): {exc.strerror}") from exc
                self.log.warning("cannot listen on the %s port %s:%d (%s); trying again in 1 s (attempt %d%s)",
                                 self.what, bind, port, exc.strerror, attempt, f" of {retries}" if retries else "")
                await asyncio.sleep(1.0)
        self.task = asyncio.get_running_loop().create_task(self._accept_loop())

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.conns.cancel_all()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.sock is not None
        while True:
            try:
                conn, addr = await loop.sock_accept(self.sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # EMFILE and the like: let the moment pass
                self.log.warning("accepting on the %s port: %s", self.what, exc)
                await asyncio.sleep(0.1)
                continue
            self.conns.spawn(self._settle(conn, addr))

    async def _settle(self, conn: socket.socket, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        ctx = self.ports.tls_server
        try:
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None and self.ports.unified:
                first = await asyncio.wait_for(_peek(loop, conn), HANDSHAKE_TIMEOUT)
                if first is None:
                    conn.close()
                    return
                if first != TLS_RECORD:
                    ctx = None  # a plain peer on a unified port
            reader = asyncio.StreamReader(limit=2 ** 20)
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=ctx, ssl_handshake_timeout=HANDSHAKE_TIMEOUT if ctx else None)
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            conn.close()
            if ctx is not None:
                self.refused += 1
                self.log.warning("%s connection from %s refused: TLS handshake failed (%s)",
                                 self.what, peer, _reason(exc))
            return
        if ctx is not None and self.ports.verify_host:
            why = await host_mismatch(transport.get_extra_info("peercert"), str(addr[0]))
            if why is not None:
                self.refused += 1
                self.log.warning("%s connection from %s refused: %s", self.what, peer, why)
                transport.close()
                return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self.handler(reader, writer)


def _listen(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(100)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> int | None:
    """The first byte the peer sent, left in the socket; None when it closed first."""
    while True:
        try:
            data = conn.recv(1, socket.MSG_PEEK)
            return data[0] if data else None
        except (BlockingIOError, InterruptedError):
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _settle_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(conn.fileno())


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


async def host_mismatch(cert: dict[str, Any] | None, ip: str) -> str | None:
    """Why a dialler's verified certificate does not name the address it connects from, or
    None when it does: an IP address entry equal to it, else a DNS entry (the common name when
    there are no entries) matching its reverse lookup, as Apache's quorum TLS checks clients."""
    import ipaddress

    if not cert:
        return "no certificate to check against the peer's address"
    names = cert.get("subjectAltName", ())
    try:
        peer = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        peer = None
    for kind, value in names:
        if kind == "IP Address" and peer is not None:
            try:
                if ipaddress.ip_address(value.strip()) == peer:
                    return None
            except ValueError:
                continue
    dns = [v for k, v in names if k == "DNS"]
    if not names:
        dns = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    if dns:
        loop = asyncio.get_running_loop()
        try:
            host, aliases, _ = await asyncio.wait_for(loop.run_in_executor(None, socket.gethostbyaddr, ip), 5.0)
            hosts = [host, *aliases]
        except (OSError, asyncio.TimeoutError):
            hosts = []
        if any(_dns_match(d, h) for d in dns for h in hosts):
            return None
    named = ", ".join(f"{k} {v}" for k, v in names) or "no subject alternative names"
    return f"its certificate does not name {ip} ({named}; ssl.quorum.hostnameVerification=true)"


def _settle_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no handshake in time"
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return str(text)


def dial_failure(exc: BaseException) -> str | None:
    """Why a TLS dial failed, when it was the handshake (not a refused or unreachable port)."""
    import ssl

    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return _reason(exc)
    return None
