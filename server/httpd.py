"""A very small HTTP/1.1 server on the event loop, for the AdminServer and the metrics port.

Only GET (and HEAD) of a path with an optional query string; one request per connection
(``Connection: close``). It is enough for curl, browsers and Prometheus, and it keeps the
server free of anything but the standard library.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("zkops.server.http")

# (status, content type, body) for a path and its query
Handler = Callable[[str, dict[str, list[str]]], tuple[int, str, bytes]]
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Server Error"}
MAX_HEAD = 16 * 1024


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
        writer.close()
        return
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        status, ctype, body = 400, "text/plain", b"bad request\n"
        method = "GET"
    else:
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            status, ctype, body = 405, "text/plain", b"only GET\n"
        else:
            url = urlsplit(target)
            try:
                status, ctype, body = handler(url.path, parse_qs(url.query))
            except Exception:  # a broken command must not take the server down
                log.exception("HTTP handler failed for %s", target)
                status, ctype, body = 500, "text/plain", b"internal error\n"
    header = (f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        writer.write(header + (b"" if method == "HEAD" else body))
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def start_http(host: str, port: int, handler: Handler, what: str) -> asyncio.base_events.Server | None:
    """Listen on host:port; None (with a warning, as Apache logs it) when the port is taken."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(reader, writer, handler)

    try:
        server = await asyncio.start_server(accept, host, port, reuse_address=True, limit=MAX_HEAD)
    except OSError as exc:
        log.warning("%s not started on %s:%d: %s", what, host, port, exc.strerror or exc)
        return None
    log.info("%s listening on %s:%d", what, host, port)
    return server
