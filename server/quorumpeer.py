"""One ensemble member's decisions: election and ZAB joined, still without any I/O.

The election decides a role; ZAB runs it; when ZAB gives up (leader lost, quorum
lost) the election starts again. Drivers — the asyncio shell and the deterministic
simulation — feed messages and ticks in and carry out what comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .election import Election, ElectionEvent, Notification, ServerState
from .zab import Abandon, Established, History, ZabOutput, ZabPeer


@dataclass
class PeerOutput:
    election: list[tuple[int, Notification]] = field(default_factory=list)
    zab: list[tuple[int, Any]] = field(default_factory=list)
    effects: list[Any] = field(default_factory=list)
    events: list[ElectionEvent] = field(default_factory=list)

    def add_zab(self, z: ZabOutput) -> None:
        self.zab.extend(z.messages)
        self.effects.extend(z.effects)


class QuorumPeer:
    def __init__(self, my_id: int, voters: set[int], observers: set[int], *, accepted_epoch: int,
                 current_epoch: int, history: History, committed: int,
                 snapshot: Callable[[], tuple[int, bytes]], sync_limit: int = 5, init_limit: int = 10,
                 finalize_ticks: int = 1) -> None:
        self.my_id = my_id
        self.election = Election(my_id, voters, observers, finalize_ticks=finalize_ticks)
        self.zab = ZabPeer(my_id, voters, observers, accepted_epoch=accepted_epoch, current_epoch=current_epoch,
                           history=history, committed=committed, snapshot=snapshot,
                           sync_limit=sync_limit, init_limit=init_limit)
        self.state = ServerState.LOOKING
        self.leader: int | None = None
        self.established = False

    @property
    def is_observer(self) -> bool:
        return self.election.is_observer

    def start(self) -> PeerOutput:
        out = PeerOutput()
        self._look(out)
        return out

    def _look(self, out: PeerOutput) -> None:
        self.zab.stop()
        self.state = ServerState.LOOKING
        self.leader = None
        self.established = False
        e = self.election.start(self.zab.current_epoch, self.zab.history.last)
        out.election.extend(e.messages)
        out.events.extend(e.events)

    def _election(self, out: PeerOutput, e: Any) -> None:
        out.election.extend(e.messages)
        out.events.extend(e.events)
        if e.decided is None:
            return
        state, leader = e.decided
        self.state = state
        self.leader = leader
        self.election.settled(state, leader, self.zab.current_epoch, self.zab.history.last)
        if state == ServerState.LEADING:
            self._zab(out, self.zab.lead())
        else:
            self._zab(out, self.zab.follow(leader, observer=state == ServerState.OBSERVING))

    def _zab(self, out: PeerOutput, z: ZabOutput) -> None:
        out.add_zab(z)
        for eff in z.effects:
            if isinstance(eff, Established):
                self.established = True
            elif isinstance(eff, Abandon):
                self._look(out)
                return

    # ------------------------------------------------------------ inputs
    def tick(self) -> PeerOutput:
        out = PeerOutput()
        self._election(out, self.election.tick())
        if self.state != ServerState.LOOKING:
            self._zab(out, self.zab.tick())
        return out

    def receive_election(self, n: Notification) -> PeerOutput:
        out = PeerOutput()
        self._election(out, self.election.receive(n))
        return out

    def receive_zab(self, sid: int, msg: Any) -> PeerOutput:
        out = PeerOutput()
        if self.state != ServerState.LOOKING:
            self._zab(out, self.zab.receive(sid, msg))
        return out

    def zab_link_down(self, sid: int) -> PeerOutput:
        out = PeerOutput()
        if self.state != ServerState.LOOKING:
            self._zab(out, self.zab.link_down(sid))
        return out

    def persisted(self, zxid: int) -> PeerOutput:
        out = PeerOutput()
        self._zab(out, self.zab.persisted(zxid))
        return out

    def propose(self, payload: bytes) -> tuple[int, PeerOutput]:
        out = PeerOutput()
        zxid, z = self.zab.propose(payload)
        self._zab(out, z)
        return zxid, out

    @property
    def can_propose(self) -> bool:
        return self.state == ServerState.LEADING and self.established and self.zab.role == "leader"
