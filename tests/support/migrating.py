"""What a migration test watches: a writer that remembers every acknowledged create, a poller of
the servers' four-letter words, and clients whose sessions must survive. Addresses are
``host:port`` strings, so the same helpers serve loopback ensembles and containers."""

from __future__ import annotations

import socket
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


class Writer(threading.Thread):
    """Creates /w/n-<k> one after another; remembers which creates were acknowledged and when."""

    def __init__(self, hosts: str) -> None:
        super().__init__(daemon=True)
        self.k = KazooClient(hosts=hosts, timeout=30, connection_retry={"max_tries": -1, "max_delay": 0.5},
                             command_retry={"max_tries": -1, "max_delay": 0.5})
        self.k.start(timeout=60)
        self.k.ensure_path("/w")
        self.acked: list[str] = []
        self.ack_times: list[float] = []
        self.errors: list[tuple[float, str]] = []  # (when, what) of every failed create, for the notes
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            path = f"/w/n-{n:06d}"
            try:
                self.k.create(path, b"x")
            except NodeExistsError:
                pass  # a retried create that had succeeded
            except KazooException as exc:
                self.errors.append((time.monotonic(), type(exc).__name__))
                time.sleep(0.05)
                continue
            self.acked.append(path)
            self.ack_times.append(time.monotonic())
            n += 1
            time.sleep(0.01)

    def longest_pause(self, since: float, until: float) -> float:
        return self.longest_gap(since, until)[1]

    def longest_gap(self, since: float, until: float) -> tuple[float, float]:
        """(start, length) of the longest time between acknowledged writes in [since, until]."""
        ts = [since, *[t for t in self.ack_times if since <= t <= until], until]
        return max(((a, b - a) for a, b in zip(ts, ts[1:], strict=False)), key=lambda g: g[1])

    def wait_more(self, count: int, timeout: float = 90.0) -> bool:
        """Until ``count`` more writes were acknowledged."""
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(self.acked) >= target

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
        self.k.stop()
        self.k.close()


def srvr(address: str, timeout: float = 5.0) -> str | None:
    """The server's ``srvr`` answer; None when its port refuses connections (the server is down);
    '' when it accepted but did not answer in time (a busy machine: not counted as down)."""
    host, port = _split(address)
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return None
    except OSError:
        return ""
    try:
        with s:
            s.sendall(b"srvr")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return ""


def mode_of(text: str | None) -> str | None:
    for line in (text or "").splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


class QuorumWatch(threading.Thread):
    """Polls ``srvr`` on every server every 100 ms: the most servers down at once (port refused),
    and the longest time without a leader (an election: informative, not asserted)."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(daemon=True)
        self.addresses = addresses
        self.most_down = 0
        self.longest_leaderless = 0.0
        self.polls = 0
        self.timeline: list[tuple[float, tuple[str | None, ...]]] = []  # (when, modes) at every change
        self.stopping = threading.Event()

    def run(self) -> None:
        leaderless_since: float | None = None
        while not self.stopping.is_set():
            answers = [srvr(a) for a in self.addresses]
            now = time.monotonic()
            modes = tuple("down" if t is None else mode_of(t) for t in answers)
            if not self.timeline or self.timeline[-1][1] != modes:
                self.timeline.append((now, modes))
            self.most_down = max(self.most_down, sum(1 for t in answers if t is None))
            if any(mode_of(t) == "leader" for t in answers):
                leaderless_since = None
            elif all(t != "" for t in answers):  # a poll that timed out says nothing either way
                leaderless_since = leaderless_since or now
                self.longest_leaderless = max(self.longest_leaderless, now - leaderless_since)
            self.polls += 1
            time.sleep(0.1)

    def around(self, start: float, end: float, origin: float) -> str:
        """The mode changes from just before ``start`` to ``end``, in seconds from ``origin``."""
        before = [e for e in self.timeline if e[0] <= start][-1:]
        during = [e for e in self.timeline if start < e[0] <= end]
        return "; ".join(f"{t - origin:.1f} s {','.join(str(m) for m in modes)}" for t, modes in before + during)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


def session_clients(addresses: list[str]) -> list[tuple[KazooClient, list[str], int]]:
    """One client per server (that server first in its list), each with an ephemeral /eph-<i>."""
    out = []
    for i, first in enumerate(addresses):
        hosts = ",".join([first] + [a for a in addresses if a != first])
        k = KazooClient(hosts=hosts, timeout=30, randomize_hosts=False,
                        connection_retry={"max_tries": -1, "max_delay": 0.5})
        states: list[str] = []
        k.add_listener(lambda s, states=states: states.append(s))
        k.start(timeout=60)
        k.create(f"/eph-{i}", b"", ephemeral=True)
        out.append((k, states, k.client_id[0]))
    return out


def missing_on(address: str, acked: list[str]) -> list[str]:
    """The acknowledged creates that this server does not have (after a sync)."""
    k = KazooClient(hosts=address, timeout=30, connection_retry={"max_tries": 20, "max_delay": 1})
    k.start(timeout=60)
    try:
        k.sync("/w")
        have = set(k.get_children("/w"))
        return [p for p in acked if p.rsplit("/", 1)[1] not in have]
    finally:
        k.stop()
        k.close()
