"""Who may press the console's buttons, and which requests are the console's own.

Everyone who can reach the page may watch. Faults (and the writer and watch panel, which act
on the lab) are allowed from loopback only, unless ``--allow-faults-from`` names networks of
students' machines. Two checks keep other web pages out: the ``Host`` header must be an address,
``localhost`` or this machine's name (a DNS-rebinding page has its own name there), and a
request that acts must come from the console's own page: same ``Origin`` and a header that a
cross-site form cannot send.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
ACTION_HEADER = "X-Zkops-Console"


def parse_networks(spec: str | None) -> tuple[Network, ...]:
    """``"10.0.0.0/24, 192.168.1.7"`` -> networks; ``"any"`` -> every address. Raises ValueError."""
    if not spec:
        return ()
    out: list[Network] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        if part == "any":
            out += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
            continue
        out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _host_name(host_header: str) -> str:
    """``"[::1]:8480"`` -> ``"::1"``, ``"example:8480"`` -> ``"example"``."""
    h = host_header.strip()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h[1:]
    if h.count(":") == 1:
        return h.split(":", 1)[0]
    return h


@dataclass
class Access:
    """The console's rules; ``local`` are the networks that may always act (loopback)."""

    allow_faults_from: tuple[Network, ...] = ()
    local: tuple[Network, ...] = LOOPBACK
    names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = {n.lower() for n in self.names} | {"localhost"}
        try:
            self.names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        except OSError:
            pass

    def may_act(self, client: str) -> bool:
        addr = _address(client)
        if addr is None:
            return False
        return any(addr in net for net in self.local + self.allow_faults_from if addr.version == net.version)

    def host_ok(self, host_header: str | None) -> bool:
        """An address, localhost, or this machine's name: never a name someone else's DNS gave."""
        if not host_header:
            return False
        name = _host_name(host_header).lower().rstrip(".")
        return _address(name) is not None or name in self.names

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """A request that acts must come from a page of this console (same scheme, host and port)."""
        if origin is None:
            return True  # not a browser's cross-site request (curl, tests): the header check still applies
        return origin == f"http://{host_header}"
