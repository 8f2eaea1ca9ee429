"""A very small HTTP/1.1 server on the event loop, for the AdminServer and the metrics port.

Only GET (and HEAD) of a path with an optional query string; one request per connection
(``Connection: close``). It is enough for curl, browsers and Prometheus, and it keeps the
server free of anything but the standard library. A handler with a ``request`` attribute
(see :class:`Request`) also sees the headers, the peer and a POST body of up to its
``max_body`` bytes, and may answer with extra response headers (the AdminServer's
snapshot and restore commands need all of that).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .listening import listen_on

log = logging.getLogger("zkops.server.http")

# (status, content type, body) for a path and its query
Handler = Callable[[str, dict[str, list[str]]], tuple[int, str, bytes]]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 429: "Too Many Requests", 500: "Server Error", 503: "Service Unavailable"}
MAX_HEAD = 16 * 1024


@dataclass
class Request:
    """One request, for handlers that want more than the path and query."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    peer: str
    body: bytes = b""


@dataclass
class Response:
    status: int
    ctype: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    extra: dict[str, str] = {}
    full = getattr(handler, "request", None)
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        status, ctype, body = 400, "text/plain", b"bad request\n"
        method = "GET"
    else:
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD") and not (method == "POST" and full is not None):
            status, ctype, body = 405, "text/plain", b"only GET\n"
        else:
            url = urlsplit(target)
            try:
                if full is None:
                    status, ctype, body = handler(url.path, parse_qs(url.query))
                else:
                    headers = {k.strip().lower(): v.strip() for k, _, v in
                               (line.partition(":") for line in lines[1:] if ":" in line)}
                    status, ctype, body, extra = await _full(reader, writer, full, method, url, headers,
                                                             getattr(handler, "max_body", 0))
            except Exception:  # a broken command must not take the server down
                log.exception("HTTP handler failed for %s", target)
                status, ctype, body = 500, "text/plain", b"internal error\n"
    more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
    header = (f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n{more}"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        writer.write(header + (b"" if method == "HEAD" else body))
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _full(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, full: Callable[[Request], Response],
                method: str, url: object, headers: dict[str, str],
                max_body: int) -> tuple[int, str, bytes, dict[str, str]]:
    body = b""
    if method == "POST":
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return 400, "text/plain", b"bad Content-Length\n", {}
        if length < 0 or length > max_body:
            return 413, "text/plain", f"at most {max_body} bytes\n".encode(), {}
        try:
            body = await asyncio.wait_for(reader.readexactly(length), timeout=300)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            return 400, "text/plain", b"the body ended early\n", {}
    peer = writer.get_extra_info("peername")
    req = Request(method, url.path, parse_qs(url.query), headers,  # type: ignore[attr-defined]
                  peer[0] if peer else "", body)
    r = full(req)
    return r.status, r.ctype, r.body, r.headers


async def start_http(host: str, port: int, handler: Handler, what: str) -> asyncio.base_events.Server | None:
    """Listen on host:port; None (with a warning, as Apache logs it) when the port is taken."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(reader, writer, handler)

    try:
        server = await asyncio.start_server(accept, **listen_on(host, port), limit=MAX_HEAD)
    except OSError as exc:
        log.warning("%s not started on %s:%d: %s", what, host, port, exc.strerror or exc)
        return None
    log.info("%s listening on %s:%d", what, host, port)
    return server
