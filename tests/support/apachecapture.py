"""Capture what a real Apache ZooKeeper 3.8 ensemble sends on its election and quorum ports.

Two Apache servers (sids 1, 2) run with a three-server configuration whose third member is
this script: it accepts their election connections, dials them back, answers as a LOOKING
server, then follows the elected leader on its quorum port (FOLLOWERINFO, ACKEPOCH, ACK of
NEWLEADER, PING replies) while a client writes, so every packet kind of a sync and of the
broadcast phase arrives. The leader runs with ``zookeeper.forceSnapshotSync`` so the sync is
a SNAP. ``python -m tests.support.apachecapture OUT.json`` writes the frames as hex.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.refzk import classpath, free_port, wait_ruok
from zkops.server import electionwire as ew
from zkops.server import quorumwire as qw


class _Recorder:
    """A socket whose reads are kept, so a reader generator's bytes can be cut into frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.taken = bytearray()

    def exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        self.taken += out
        return bytes(out)

    def run(self, reader: Any) -> tuple[Any, bytes]:
        start = len(self.taken)
        try:
            n = next(reader)
            while True:
                n = reader.send(self.exactly(n))
        except StopIteration as stop:
            return stop.value, bytes(self.taken[start:])


def capture(leader_snap: bool = True, seconds: float = 6.0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="apache-capture-"))
    ports = {i: (free_port(), free_port(), free_port()) for i in (1, 2, 3)}  # client, quorum, election
    lines = "".join(f"server.{i}=127.0.0.1:{q}:{e}\n" for i, (_, q, e) in ports.items())
    procs = []
    out: dict[str, Any] = {"initial": [], "notifications": [], "packets": [], "snap_stream": None}
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", ports[3][2]))
    lsock.listen(8)
    stop = threading.Event()

    try:
        for i in (1, 2):
            d = work / f"n{i}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            cfg = (f"tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={d / 'data'}\nclientPort={ports[i][0]}\n"
                   "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nadmin.enableServer=false\n" + lines)
            (d / "zoo.cfg").write_text(cfg)
            cmd = ["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
                   "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
            if leader_snap:
                cmd.append("-Dzookeeper.forceSnapshotSync=true")
            cmd += ["-cp", classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")]
            log = open(d / "server.log", "wb")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d))
            log.close()
        # the initial messages they send us (they close: our sid is larger)
        raw_initial: list[bytes] = []

        def accept_raw() -> None:
            lsock.settimeout(0.2)
            while not stop.is_set():
                try:
                    s, _ = lsock.accept()
                except OSError:
                    continue
                s.settimeout(5)
                buf = b""
                try:
                    while chunk := s.recv(65536):
                        buf += chunk
                except OSError:
                    pass
                raw_initial.append(buf)
                s.close()

        t = threading.Thread(target=accept_raw, daemon=True)
        t.start()
        for i in (1, 2):
            wait_ruok(ports[i][0], 60)
        # dial both with our initial message and a LOOKING notification; record what comes back
        me = ew.InitialMessage(3, (f"127.0.0.1:{ports[3][2]}",))
        notes: list[bytes] = []
        socks = []
        for i in (1, 2):
            s = socket.create_connection(("127.0.0.1", ports[i][2]), timeout=5)
            s.sendall(ew.encode_initial(me))
            n = ew.encode_notification(ew.WireNotification(0, 3, 0, 1, 0, 2, b""))
            s.sendall(struct.pack(">i", len(n)) + n)
            socks.append(s)
        deadline = time.monotonic() + 3
        for s in socks:
            s.settimeout(0.5)
            while time.monotonic() < deadline:
                try:
                    (n,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
                    notes.append(s.recv(n, socket.MSG_WAITALL))
                except (OSError, struct.error):
                    break
        out["initial"] = [b.hex() for b in raw_initial if b]
        out["notifications"] = [b.hex() for b in notes]
        leader = next(i for i in (1, 2) if "leader" in _mode(ports[i][0]))
        out["leader"] = leader
        # follow the leader on its quorum port
        q = socket.create_connection(("127.0.0.1", ports[leader][1]), timeout=10)
        rec = _Recorder(q)

        def send(p: qw.QuorumPacket) -> None:
            q.sendall(qw.encode_packet(p))

        def recv() -> qw.QuorumPacket:
            p, raw = rec.run(qw.read_packet())
            out["packets"].append([qw.PacketType(p.type).name, raw.hex()])
            return p

        send(qw.QuorumPacket(qw.PacketType.FOLLOWERINFO, 0, qw.encode_learner_info(qw.LearnerInfo(3)), None))
        info = recv()
        send(qw.QuorumPacket(qw.PacketType.ACKEPOCH, 0, qw.encode_int(0), None))
        newleader = None
        while True:
            p = recv()
            if p.type == qw.PacketType.SNAP:
                body, raw = rec.run(qw.read_snap_stream())
                out["snap_stream"] = raw.hex()
            elif p.type == qw.PacketType.NEWLEADER:
                newleader = p
                send(qw.QuorumPacket(qw.PacketType.ACK, p.zxid, None, None))
            elif p.type == qw.PacketType.UPTODATE:
                break
        assert newleader is not None and info.zxid == newleader.zxid
        from kazoo.client import KazooClient

        k = KazooClient(hosts=f"127.0.0.1:{ports[leader][0]}")
        k.start(30)
        done = threading.Event()

        def writes() -> None:
            k.create("/captured", b"x")
            k.set("/captured", b"y")
            k.create("/captured/e", b"", ephemeral=True, sequence=True)
            k.delete("/captured/e0000000000")
            done.set()

        threading.Thread(target=writes, daemon=True).start()
        end = time.monotonic() + seconds
        q.settimeout(1)
        while time.monotonic() < end:
            try:
                p = recv()
            except (TimeoutError, OSError):
                continue
            if p.type == qw.PacketType.PROPOSAL:
                send(qw.QuorumPacket(qw.PacketType.ACK, p.zxid, None, None))
            elif p.type == qw.PacketType.PING:
                send(qw.QuorumPacket(qw.PacketType.PING, p.zxid, qw.encode_sessions([]), p.authinfo))
        k.stop()
        k.close()
        q.close()
        for s in socks:
            s.close()
        return out
    finally:
        stop.set()
        lsock.close()
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def _mode(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"srvr")
            return s.recv(4096).decode(errors="replace")
    except OSError:
        return ""


def capture_both() -> dict[str, Any]:
    """A SNAP sync and the broadcast after it; repeated PINGs kept to a few."""
    snap = capture(leader_snap=True)
    for key in ("packets",):
        pings = 0
        kept = []
        for name, raw in snap[key]:
            pings += name == "PING"
            if name != "PING" or pings <= 3:
                kept.append([name, raw])
        snap[key] = kept
    return snap


if __name__ == "__main__":
    result = capture_both()
    Path(sys.argv[1] if len(sys.argv) > 1 else "capture.json").write_text(json.dumps(result, indent=1) + "\n")
    print({k: (len(v) if isinstance(v, list) else bool(v)) for k, v in result.items()}, file=sys.stderr)
    os._exit(0)
