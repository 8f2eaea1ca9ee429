"""Listening sockets for the server's TCP ports (the client port, its TLS twin, the AdminServer).

A port on a numeric address (0.0.0.0, 127.0.0.1, ::, ...) is bound here as the event loop's
``create_server`` would bind it: a socket of the literal's family, SO_REUSEADDR, an IPv6 socket
v6-only. The loop is handed that socket and resolves nothing: uvloop encodes an address it is
given as text with the IDNA codec first, which imports encodings.idna, stringprep and
unicodedata (about 360 KiB of a server's memory) for an address that needs no resolving. A host
name, or an IPv6 address with a scope, is left to the loop, which resolves it as before.
"""

from __future__ import annotations

import socket
from typing import Any


def numeric_listener(host: str, port: int) -> socket.socket | None:
    """A non-blocking socket bound to ``host``:``port`` when ``host`` is an IPv4 or IPv6 literal
    (not listening yet: the loop's create_server does that with its backlog); None for a name.
    OSError, worded as the loop's own, when the address cannot be bound."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"error while attempting to bind on address {(host, port)!r}: "
                                     f"{(exc.strerror or str(exc)).lower()}") from None
        sock.setblocking(False)
        return sock
    return None


def listen_on(host: str, port: int) -> dict[str, Any]:
    """The address arguments of ``loop.create_server`` or ``asyncio.start_server`` for a port:
    a socket bound here (``numeric_listener``), or the host and port for the loop to resolve."""
    sock = numeric_listener(host, port)
    if sock is not None:
        return {"sock": sock}
    return {"host": host, "port": port, "reuse_address": True}
