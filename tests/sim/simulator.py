"""A seeded, deterministic simulation of whole ensembles driving the pure cores.

One seed, one exact run: the network (per-link FIFO queues with random delays,
connection breaks that lose what is in flight, partitions), disks (appends become
durable only when "synced"), crashes (volatile state lost, synced log and epochs
kept), restarts and client writes are all drawn from ``random.Random(seed)``.
Invariants are checked after every step; a violation raises ``InvariantError``
naming the seed so ``python -m tests.sim.run --seed N`` replays it.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from zkops.server.election import ServerState
from zkops.server.quorumpeer import PeerOutput, QuorumPeer
from zkops.server.zab import (
    Abandon,
    Append,
    CommitTxn,
    Established,
    History,
    InstallSnapshot,
    SaveEpochs,
    Truncate,
    epoch_of,
)


class InvariantError(AssertionError):
    pass


def reconfig_payload(voters: set[int], observers: set[int], n: int) -> bytes:
    return b"r" + repr((sorted(voters), sorted(observers), n)).encode()


def reconfig_config(payload: bytes) -> bytes | None:
    """The simulation's stand-in for reading a reconfig txn (ZabPeer's config_of): the
    payload itself is the membership."""
    return payload if payload.startswith(b"r") else None


def members_of(config: bytes) -> tuple[set[int], set[int]]:
    voters, observers, _ = eval(config[1:].decode())  # noqa: S307 - our own repr
    return set(voters), set(observers)


@dataclass
class Disk:
    """What survives a crash."""

    log: list[tuple[int, bytes]] = field(default_factory=list)
    accepted: int = 0
    current: int = 0
    snap: tuple[int, list[tuple[int, bytes]]] = (0, [])  # (zxid, applied txns) from a SNAP


@dataclass
class Node:
    sid: int
    disk: Disk
    peer: QuorumPeer | None = None
    unsynced: list[tuple[int, bytes]] = field(default_factory=list)
    applied: list[tuple[int, bytes]] = field(default_factory=list)
    alive: bool = True


class Simulation:
    def __init__(self, seed: int, voters: int = 3, observers: int = 0, *, steps: int = 3000,
                 fault_rate: float = 0.01, write_rate: float = 0.3, spares: int = 0,
                 reconfig_rate: float = 0.0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.voter_ids = set(range(1, voters + 1))
        self.observer_ids = set(range(voters + 1, voters + observers + 1))
        # spares run from the start but are not members: each believes in the initial voters plus
        # itself, as a server started to join by reconfig does; reconfigs move servers in and out
        self.spare_ids = set(range(voters + observers + 1, voters + observers + spares + 1))
        self.reconfig_rate = reconfig_rate
        self.reconfigs = 0
        self.all_ids = sorted(self.voter_ids | self.observer_ids | self.spare_ids)
        self.steps = steps
        self.fault_rate = fault_rate
        self.write_rate = write_rate
        self.now = 0
        self.nodes = {sid: Node(sid, Disk()) for sid in self.all_ids}
        # (src, dst, kind) -> deque of (deliver_at, msg)
        self.links: dict[tuple[int, int, str], deque[tuple[int, Any]]] = {}
        self.cut: set[frozenset[int]] = set()
        self.acked: dict[int, bytes] = {}  # zxid -> payload acknowledged to a client
        self.leaders_by_epoch: dict[int, int] = {}
        self.zxid_payload: dict[int, bytes] = {}
        self.writes = 0
        self.trace: list[str] = []
        for sid in self.all_ids:
            self._boot(sid)

    # ------------------------------------------------------------ nodes
    def _boot(self, sid: int) -> None:
        node = self.nodes[sid]
        disk = node.disk
        snap_zxid, snap_txns = disk.snap
        applied = list(snap_txns) + [(z, p) for z, p in disk.log if z > snap_zxid]
        node.applied = applied
        node.unsynced = []
        last = applied[-1][0] if applied else 0
        history = History([(z, p) for z, p in disk.log if z > snap_zxid], start=snap_zxid)
        voters, observers, version, config = self.membership_in(applied, sid)
        node.peer = QuorumPeer(sid, voters, observers, accepted_epoch=disk.accepted,
                               current_epoch=disk.current, history=history, committed=last,
                               snapshot=lambda n=node: self._snapshot(n), sync_limit=5, init_limit=10,
                               config=(version, config), config_of=reconfig_config, members_of=members_of)
        node.alive = True
        self._apply_output(node, node.peer.start())

    def membership_in(self, applied: list[tuple[int, bytes]], sid: int) -> tuple[set[int], set[int], int, bytes]:
        """What a server starts from: the last reconfig it holds, else its configured membership."""
        for z, p in reversed(applied):
            config = reconfig_config(p)
            if config is not None:
                return (*members_of(config), z, config)
        if sid in self.spare_ids:
            return self.voter_ids | {sid}, set(self.observer_ids), 0, b""
        return set(self.voter_ids), set(self.observer_ids), 0, b""

    def _propose_reconfig(self, node: Node) -> None:
        """A random new membership, proposed only when the leader's rules allow it (no reconfig
        in flight, a synced quorum of the new voters), as Ensemble.prepare_reconfig checks."""
        zab = node.peer.zab
        if zab.next_voters is not None:
            return
        # one server changes at a time (joins, leaves, or switches role), as operators change
        # ensembles: old and new majorities then always overlap
        voters, observers = set(zab.voters), set(zab.observers)
        sid = self.rng.choice(self.all_ids)
        voters.discard(sid)
        observers.discard(sid)
        now = self.rng.choice(["voter", "observer", "gone"])
        if now == "voter":
            voters.add(sid)
        elif now == "observer":
            observers.add(sid)
        if len(voters) < 2 or (voters, observers) == (zab.voters, zab.observers):
            return
        synced = {node.sid} | {s for s, lr in zab.learners.items() if lr.phase == "synced" and not lr.observer}
        if len(voters & synced) <= len(voters) // 2:
            return
        self.reconfigs += 1
        _, out = node.peer.propose(reconfig_payload(voters, observers, self.reconfigs), next_voters=voters)
        self.trace.append(f"{self.now}: {node.sid} proposes voters {sorted(voters)} observers {sorted(observers)}")
        self._apply_output(node, out)

    def members(self) -> set[int]:
        """The members of the newest committed membership any server applied."""
        best: tuple[int, set[int]] = (0, self.voter_ids | self.observer_ids)
        for node in self.nodes.values():
            for z, p in node.applied:
                config = reconfig_config(p)
                if config is not None and z > best[0] and node.peer is not None and z <= node.peer.zab.committed:
                    voters, observers = members_of(config)
                    best = (z, voters | observers)
        return best[1]

    def _snapshot(self, node: Node) -> tuple[int, bytes]:
        committed = node.peer.zab.committed if node.peer else 0
        txns = [(z, p) for z, p in node.applied if z <= committed]
        data = repr(txns).encode()
        return committed, data

    def crash(self, sid: int) -> None:
        node = self.nodes[sid]
        node.alive = False
        node.peer = None
        node.unsynced = []
        for key in list(self.links):
            if sid in key[:2]:
                self._break(key)
        self.trace.append(f"{self.now}: crash {sid}")

    def restart(self, sid: int) -> None:
        self.trace.append(f"{self.now}: restart {sid}")
        self._boot(sid)

    # ------------------------------------------------------------ network
    def _connected(self, a: int, b: int) -> bool:
        return (self.nodes[a].alive and self.nodes[b].alive and frozenset((a, b)) not in self.cut)

    def send(self, src: int, dst: int, kind: str, msg: Any) -> None:
        if not self._connected(src, dst):
            return
        key = (src, dst, kind)
        q = self.links.setdefault(key, deque())
        last = q[-1][0] if q else self.now
        q.append((max(last, self.now + self.rng.randint(0, 3)), msg))

    def _break(self, key: tuple[int, int, str]) -> None:
        """A TCP connection dies: what is in flight is lost; both ends notice (ZAB)."""
        q = self.links.pop(key, None)
        src, dst, kind = key
        if kind == "Z":
            for a, b in ((src, dst), (dst, src)):
                node = self.nodes[a]
                if node.alive and node.peer is not None:
                    self._apply_output(node, node.peer.zab_link_down(b))
        del q

    def partition(self, side: set[int]) -> None:
        other = set(self.all_ids) - side
        for a in side:
            for b in other:
                self.cut.add(frozenset((a, b)))
        for key in list(self.links):
            if frozenset(key[:2]) in self.cut:
                self._break(key)
        self.trace.append(f"{self.now}: partition {sorted(side)} | {sorted(other)}")

    def heal(self) -> None:
        self.cut.clear()
        self.trace.append(f"{self.now}: heal")

    def _deliver(self) -> None:
        for key in sorted(self.links):
            q = self.links.get(key)
            while q and q[0][0] <= self.now:
                _, msg = q.popleft()
                src, dst, kind = key
                node = self.nodes[dst]
                if not node.alive or node.peer is None:
                    continue
                if kind == "E":
                    self._tell_reachable(node)
                    self._apply_output(node, node.peer.receive_election(msg))
                else:
                    self._apply_output(node, node.peer.receive_zab(src, msg))
                q = self.links.get(key)

    def _tell_reachable(self, node: Node) -> None:
        """As the shell does from its election connections: who this node can reach now."""
        assert node.peer is not None
        node.peer.set_reachable({s for s in self.all_ids if s != node.sid and self._connected(node.sid, s)})

    # ------------------------------------------------------------ effects
    def _apply_output(self, node: Node, out: PeerOutput) -> None:
        for dst, msg in out.election:
            self.send(node.sid, dst, "E", msg)
        for dst, msg in out.zab:
            self.send(node.sid, dst, "Z", msg)
        for eff in out.effects:
            self._effect(node, eff)

    def _effect(self, node: Node, eff: Any) -> None:
        disk = node.disk
        if isinstance(eff, SaveEpochs):
            disk.accepted, disk.current = eff.accepted, eff.current
        elif isinstance(eff, Append):
            self._check_zxid(eff.zxid, eff.payload)
            node.unsynced.append((eff.zxid, eff.payload))
        elif isinstance(eff, Truncate):
            self._sync(node, report=False)
            disk.log = [(z, p) for z, p in disk.log if z <= eff.zxid]
            node.applied = [(z, p) for z, p in node.applied if z <= eff.zxid]
            self._adopt_membership(node)
        elif isinstance(eff, InstallSnapshot):
            txns = eval(eff.data.decode()) if eff.data else []  # noqa: S307 - our own repr of tuples
            disk.snap = (eff.zxid, txns)
            disk.log = []
            node.unsynced = []
            node.applied = list(txns)
            self._adopt_membership(node)
        elif isinstance(eff, CommitTxn):
            if node.applied and eff.zxid <= node.applied[-1][0]:
                if dict(node.applied).get(eff.zxid) != eff.payload:
                    raise InvariantError(f"seed {self.seed}: node {node.sid} commits 0x{eff.zxid:x} with "
                                         "a different payload than it applied")
            else:
                node.applied.append((eff.zxid, eff.payload))
            if node.peer is not None and node.peer.state == ServerState.LEADING and eff.payload.startswith(b"w"):
                self.acked[eff.zxid] = eff.payload
        elif isinstance(eff, Established):
            if eff.role == "leader":
                prev = self.leaders_by_epoch.get(eff.epoch)
                if prev is not None and prev != node.sid:
                    raise InvariantError(f"seed {self.seed}: two leaders in epoch {eff.epoch}: {prev} and {node.sid}")
                self.leaders_by_epoch[eff.epoch] = node.sid
                self.trace.append(f"{self.now}: {node.sid} leads epoch {eff.epoch}")
        elif isinstance(eff, Abandon):
            self.trace.append(f"{self.now}: {node.sid} abandons: {eff.reason}")

    def _adopt_membership(self, node: Node) -> None:
        """After TRUNC or SNAP the server's state jumped: take the membership it now holds."""
        voters, observers, version, config = self.membership_in(node.applied, node.sid)
        peer = node.peer
        if peer is not None and (voters, observers) != (peer.zab.voters, peer.zab.observers):
            self._apply_output(node, peer.reconfigure(voters, observers, version, config))

    def _sync(self, node: Node, report: bool = True) -> None:
        if not node.unsynced:
            return
        node.disk.log.extend(node.unsynced)
        last = node.unsynced[-1][0]
        node.unsynced = []
        if report and node.peer is not None:
            self._apply_output(node, node.peer.persisted(last))

    def _check_zxid(self, zxid: int, payload: bytes) -> None:
        seen = self.zxid_payload.get(zxid)
        if seen is None:
            self.zxid_payload[zxid] = payload
        elif seen != payload:
            raise InvariantError(f"seed {self.seed}: zxid 0x{zxid:x} proposed with two payloads")

    # ------------------------------------------------------------ invariants
    def check(self) -> None:
        for node in self.nodes.values():
            zx = [z for z, _ in node.applied]
            if zx != sorted(set(zx)):
                raise InvariantError(f"seed {self.seed}: node {node.sid} applied out of order")
            for z, p in node.applied:
                if self.zxid_payload.get(z, p) != p:
                    raise InvariantError(f"seed {self.seed}: node {node.sid} holds 0x{z:x} with a foreign payload")
        # every acknowledged write is in the history of every established leader of a later epoch
        for node in self.nodes.values():
            peer = node.peer
            if node.alive and peer is not None and peer.can_propose:
                have = dict(node.applied)
                epoch = peer.zab.epoch
                for z, p in self.acked.items():
                    if epoch_of(z) < epoch and have.get(z) != p:
                        raise InvariantError(f"seed {self.seed}: leader {node.sid} of epoch {epoch} lost acknowledged "
                                             f"write 0x{z:x}\n" + "\n".join(self.trace[-30:]))

    # ------------------------------------------------------------ the run
    def step(self, faults: bool = True) -> None:
        self.now += 1
        self._deliver()
        for node in self.nodes.values():
            if node.alive and node.unsynced and self.rng.random() < 0.5:
                self._sync(node)
        if self.now % 4 == 0:
            for node in self.nodes.values():
                if node.alive and node.peer is not None:
                    self._tell_reachable(node)
                    self._apply_output(node, node.peer.tick())
        if self.rng.random() < self.write_rate:
            leaders = [n for n in self.nodes.values() if n.alive and n.peer is not None and n.peer.can_propose]
            if leaders:
                node = self.rng.choice(leaders)
                if self.reconfig_rate and self.rng.random() < self.reconfig_rate:
                    self._propose_reconfig(node)
                else:
                    self.writes += 1
                    _, out = node.peer.propose(b"w%d" % self.writes)
                    self._apply_output(node, out)
        if faults and self.rng.random() < self.fault_rate:
            self._fault()
        self.check()

    def _fault(self) -> None:
        r = self.rng.random()
        alive = [s for s in self.all_ids if self.nodes[s].alive]
        dead = [s for s in self.all_ids if not self.nodes[s].alive]
        if r < 0.3 and len(alive) > 1:
            self.crash(self.rng.choice(alive))
        elif r < 0.55 and dead:
            self.restart(self.rng.choice(dead))
        elif r < 0.75:
            k = self.rng.randint(1, max(1, len(self.all_ids) // 2))
            self.partition(set(self.rng.sample(self.all_ids, k)))
        elif r < 0.9:
            self.heal()
        else:
            keys = [k for k in self.links if k[2] == "Z"]
            if keys:
                self._break(self.rng.choice(sorted(keys)))

    def settle(self, max_steps: int = 3000) -> int:
        """Heal everything, restart the dead, and wait for one leader followed by all."""
        self.heal()
        for sid in self.all_ids:
            if not self.nodes[sid].alive:
                self.restart(sid)
        for i in range(max_steps):
            self.step(faults=False)
            if self.stable():
                return i
        raise InvariantError(f"seed {self.seed}: no stable leader {max_steps} steps after healing\n"
                             + "\n".join(self.trace[-40:]))

    def stable(self) -> bool:
        peers = [n.peer for n in self.nodes.values()]
        if any(p is None for p in peers):
            return False
        leaders = [p for p in peers if p.can_propose]
        if len(leaders) != 1:
            return False
        lid = leaders[0].my_id
        members = self.members()  # a server a reconfig removed never takes a role again
        return all(p.established and p.leader == lid for p in peers if p.my_id in members)

    def run(self) -> Simulation:
        for _ in range(self.steps):
            self.step()
        self.reconfig_rate = 0.0  # a reconfig may move leadership; the end checks want one leader
        self.settle()
        # after settling, a last write goes through and reaches everyone
        for _ in range(200):
            self.step(faults=False)
        leader = next(n for n in self.nodes.values() if n.peer.can_propose)
        have = dict(leader.applied)
        for z, p in self.acked.items():
            if have.get(z) != p:
                raise InvariantError(f"seed {self.seed}: acknowledged write 0x{z:x} lost at the end")
        return self
