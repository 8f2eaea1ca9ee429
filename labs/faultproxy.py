"""A TCP relay on every server-to-server link of a local lab, which can drop or delay it.

Each zkops server sends to a peer over its own outgoing connection (one per peer and
port kind), so a directed link ``a -> b`` is one listening port here that relays to b's
real quorum or election port, and node a's zoo.cfg names that port as b's address.
Cutting ``a -> b`` holds its bytes, as an iptables DROP rule would (TCP keeps
retransmitting into the partition): connections stay open and go silent, new ones are
accepted and not answered, and when the link heals the streams resume intact. A delay
holds every chunk for that long before passing it on.

Run as ``python -m zkops.labs.faultproxy LAB_DIR``: it reads ``links.json``
(``[{"src": 1, "dst": 2, "kind": "quorum", "listen": port, "target": port}]``) and
re-reads ``faults.json`` (``{"cut": [[1, 2]], "delay_ms": {"1-2": 200}}``) on SIGHUP.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

CHUNK = 65536


class Faults:
    """The current rules: which directed links are cut, which are slowed."""

    def __init__(self, cut: set[tuple[int, int]] | None = None, delay_ms: dict[tuple[int, int], int] | None = None):
        self.cut = cut or set()
        self.delay_ms = delay_ms or {}

    @classmethod
    def load(cls, path: Path) -> Faults:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text() or "{}")
        cut = {(int(a), int(b)) for a, b in raw.get("cut", [])}
        delay = {tuple(int(x) for x in k.split("-")): int(v) for k, v in raw.get("delay_ms", {}).items()}
        return cls(cut, delay)  # type: ignore[arg-type]

    def dump(self) -> dict[str, Any]:
        return {"cut": sorted([a, b] for a, b in self.cut),
                "delay_ms": {f"{a}-{b}": ms for (a, b), ms in sorted(self.delay_ms.items())}}


class Relay:
    """Every link of one lab, relayed through this process."""

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir
        self.links: list[dict[str, Any]] = json.loads((lab_dir / "links.json").read_text())
        self.faults = Faults.load(lab_dir / "faults.json")
        self.servers: list[asyncio.base_events.Server] = []

    def reload(self) -> None:
        self.faults = Faults.load(self.lab_dir / "faults.json")

    async def start(self) -> None:
        for link in self.links:
            src, dst, target = link["src"], link["dst"], link["target"]

            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             src: int = src, dst: int = dst, target: int = target) -> None:
                await self._relay(src, dst, target, reader, writer)

            self.servers.append(await asyncio.start_server(accept, "127.0.0.1", link["listen"], reuse_address=True))

    async def _relay(self, src: int, dst: int, target: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        up_w: asyncio.StreamWriter | None = None
        try:
            await self._while_cut((src, dst))  # a SYN into a partition: nothing until it heals
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                return  # the peer is down: the connector sees the connection close and retries
            await asyncio.gather(self._pipe((src, dst), reader, up_w), self._pipe((dst, src), up_r, writer))
        finally:
            for w in (writer, up_w):
                if w is not None:
                    w.close()

    async def _while_cut(self, link: tuple[int, int]) -> None:
        while link in self.faults.cut:
            await asyncio.sleep(0.05)

    async def _pipe(self, link: tuple[int, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy bytes along ``link``. While it is cut the bytes wait here (and the sender's
        buffers fill), as TCP segments would be retransmitted into a partition: the stream
        stays intact and resumes when the link heals."""
        try:
            while data := await reader.read(CHUNK):
                await self._while_cut(link)
                delay = self.faults.delay_ms.get(link, 0)
                if delay:
                    await asyncio.sleep(delay / 1000)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def _main(lab_dir: Path) -> None:
    relay = Relay(lab_dir)
    await relay.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, relay.reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    (lab_dir / "faultproxy.ready").write_text("ready\n")
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1])))
