"""The client side of ZooKeeper's four-letter words: send the word, read until the server
closes. The one copy of it: the zkServer-like CLI, the labs and their lessons, deploy and
the tests all ask servers through here (``echo srvr | nc host port`` in Python).
"""

from __future__ import annotations

import socket

# a server bound to every address is asked on loopback
_WILDCARD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def four_letter(host: str, port: int, word: str, timeout: float = 3.0, *, use_ssl: bool = False) -> str:
    """Send ``word`` to host:port and return the whole reply; OSError when it cannot be asked.

    ``use_ssl`` speaks TLS to a secureClientPort, without checking the server's certificate
    (a health probe, not a client that sends data)."""
    host = _WILDCARD.get(host, host)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if use_ssl:
            import ssl  # only a TLS port needs it: the CLI's start-up stays lean

            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def four_letter_or_empty(host: str, port: int, word: str, timeout: float = 2.0, *, use_ssl: bool = False) -> str:
    """As four_letter, but '' when the server cannot be reached or the connection breaks
    (for probes that poll until a server answers)."""
    try:
        return four_letter(host, port, word, timeout, use_ssl=use_ssl)
    except OSError:
        return ""
