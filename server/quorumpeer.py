"""One ensemble member's decisions: election and ZAB joined, still without any I/O.

The election decides a role; ZAB runs it; when ZAB gives up (leader lost, quorum
lost) the election starts again. Drivers — the asyncio shell and the deterministic
simulation — feed messages and ticks in and carry out what comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .election import Election, ElectionEvent, Notification, ServerState
from .zab import Abandon, Established, History, MembershipChanged, Role, ZabOutput, ZabPeer

# read once: an enum member's lookup costs about 0.1 us on CPython 3.11, and every ZAB message
# and every write's proposal asks
_LOOKING = ServerState.LOOKING
_LEADING = ServerState.LEADING
_LEADER = Role.LEADER
_PEER_EFFECTS = frozenset((MembershipChanged, Established, Abandon))  # the effects that concern the peer too


@dataclass(frozen=True)
class ConfigAdopted:
    """Effect: the election heard of a newer membership (version, text); the shell links to it."""

    version: int
    config: bytes


class PeerOutput:
    """What one input gives the shell: election notifications, ZAB messages (to, Envelope),
    effects and election events, each in order."""

    __slots__ = ("election", "zab", "effects", "events")

    def __init__(self, election: list[tuple[int, Notification]] | None = None,
                 zab: list[tuple[int, Any]] | None = None, effects: list[Any] | None = None,
                 events: list[ElectionEvent] | None = None) -> None:
        self.election: list[tuple[int, Notification]] = [] if election is None else election
        self.zab: list[tuple[int, Any]] = [] if zab is None else zab
        self.effects: list[Any] = [] if effects is None else effects
        self.events: list[ElectionEvent] = [] if events is None else events

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._fields() == other._fields()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _fields(self) -> tuple[Any, ...]:
        return self.election, self.zab, self.effects, self.events

    def __repr__(self) -> str:
        return (f"PeerOutput(election={self.election!r}, zab={self.zab!r}, effects={self.effects!r}, "
                f"events={self.events!r})")

    def add_zab(self, z: ZabOutput) -> None:
        self.zab.extend(z.messages)
        self.effects.extend(z.effects)

    def extend(self, other: PeerOutput) -> None:
        self.election.extend(other.election)
        self.zab.extend(other.zab)
        self.effects.extend(other.effects)
        self.events.extend(other.events)


class QuorumPeer:
    def __init__(self, my_id: int, voters: set[int], observers: set[int], *, accepted_epoch: int,
                 current_epoch: int, history: History, committed: int,
                 snapshot: Callable[[], tuple[int, bytes]], sync_limit: int = 5, init_limit: int = 10,
                 finalize_ticks: int = 1, config: tuple[int, bytes] = (0, b""),
                 config_of: Callable[[bytes], bytes | None] | None = None,
                 members_of: Callable[[bytes], tuple[set[int], set[int]]] | None = None) -> None:
        """``config`` is this server's membership as (version, text); ``config_of`` finds the
        membership a reconfig txn installs and ``members_of`` reads its voters and observers
        (both opaque to ZAB and the election, as payloads are)."""
        self.my_id = my_id
        self.election = Election(my_id, voters, observers, finalize_ticks=finalize_ticks)
        self.election.config_version, self.election.config = config
        self.zab = ZabPeer(my_id, voters, observers, accepted_epoch=accepted_epoch, current_epoch=current_epoch,
                           history=history, committed=committed, snapshot=snapshot,
                           sync_limit=sync_limit, init_limit=init_limit, config_of=config_of, members_of=members_of)
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
        self._proposed_membership()
        e = self.election.start(self.zab.current_epoch, self.zab.history.last)
        out.election.extend(e.messages)
        out.events.extend(e.events)

    def _proposed_membership(self) -> None:
        """Tell the election of the newest reconfig in our log past the commit point (Apache's
        last seen verifier): until it commits, a leader needs a quorum of its voters too."""
        proposed: tuple[int, bytes] | None = None
        for zxid, payload in self.zab.history.between(self.zab.committed, self.zab.history.last):
            config = self.zab.config_of(payload)
            if config is not None:
                proposed = (zxid, config)
        if proposed is None:
            self.election.set_proposed(None)
            return
        try:
            voters, observers = self.zab.members_of(proposed[1])
        except Exception:  # the parser is the owner's; a text it refuses proposes nothing
            self.election.set_proposed(None)
            return
        self.election.set_proposed(voters or None, observers, proposed[0])

    def _election(self, out: PeerOutput, e: Any) -> None:
        out.election.extend(e.messages)
        out.events.extend(e.events)
        if e.adopt is not None:
            self._adopt(out, *e.adopt)
            return
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
        self._react(out, z.effects)

    def _of_zab(self, z: ZabOutput) -> PeerOutput:
        """The output of one ZAB input alone: its lists taken as they are (nothing else holds them)."""
        out = PeerOutput(None, z.messages, z.effects)
        self._react(out, z.effects)
        return out

    def _react(self, out: PeerOutput, effects: list[Any]) -> None:
        """What ZAB's effects change for the election and this object."""
        for eff in effects:
            if eff.__class__ not in _PEER_EFFECTS:
                continue  # Append and CommitTxn, a write's two, are the shell's alone
            if isinstance(eff, MembershipChanged):
                self.election.set_members(set(eff.voters), set(eff.observers), eff.zxid, eff.config)
            elif isinstance(eff, Established):
                self.established = True
                self.election.established(eff.epoch)
            elif isinstance(eff, Abandon):
                self._look(out)
                return

    # ------------------------------------------------------------ inputs
    def tick(self) -> PeerOutput:
        """One tick of both the election and ZAB (the shell may tick them apart, below)."""
        out = self.tick_election()
        out.extend(self.tick_zab())
        return out

    def tick_election(self) -> PeerOutput:
        """One tick of the election (finalize wait, resends), on its own fast clock."""
        out = PeerOutput()
        self._election(out, self.election.tick())
        return out

    def tick_zab(self) -> PeerOutput:
        """One ZAB tick (tickTime: pings, sync and init limits); nothing while looking."""
        out = PeerOutput()
        if self.state != _LOOKING:
            self._zab(out, self.zab.tick())
        return out

    def next_zxid(self) -> int:
        """Leader: the zxid the next propose() gives."""
        return self.zab.next_zxid()

    def reloaded(self, committed: int) -> None:
        """The shell rebuilt its state from disk (after TRUNC or SNAP): it holds and has
        applied everything up to ``committed``."""
        self.zab.committed = committed

    def set_reachable(self, peers: set[int] | None) -> None:
        """The peers the owner has an election connection to, before it feeds a notification or
        an election tick (see Election.set_reachable); None when it cannot tell."""
        self.election.set_reachable(peers)

    def receive_election(self, n: Notification) -> PeerOutput:
        out = PeerOutput()
        self._election(out, self.election.receive(n))
        return out

    def receive_zab(self, sid: int, msg: Any) -> PeerOutput:
        if self.state == _LOOKING:
            return PeerOutput()
        return self._of_zab(self.zab.receive(sid, msg))

    def zab_link_down(self, sid: int) -> PeerOutput:
        out = PeerOutput()
        if self.state != _LOOKING:
            self._zab(out, self.zab.link_down(sid))
        return out

    def _adopt(self, out: PeerOutput, version: int, config: bytes) -> None:
        """Take a newer membership a serving server told us of, then look again under it. Text
        that does not read as a membership with voters is ignored: a forged or garbled
        notification must never change who is in the ensemble."""
        try:
            voters, observers = self.zab.members_of(config)
        except Exception:  # the parser is the owner's; whatever it refuses changes nothing
            return
        if not voters or not (voters & self.election.voters):
            return
        self.election.set_members(voters, observers, version, config)
        out.effects.append(ConfigAdopted(version, config))
        self._zab(out, self.zab.reconfigure(voters, observers))
        if self.state == ServerState.LOOKING:
            self._look(out)

    def reconfigure(self, voters: set[int], observers: set[int], version: int, config: bytes) -> PeerOutput:
        """Take a membership that came in a leader's snapshot or was left after a TRUNC (commits
        carry their own, see ZabPeer._committed)."""
        out = PeerOutput()
        self.election.set_members(voters, observers, version, config)
        self._zab(out, self.zab.reconfigure(voters, observers))
        return out

    def persisted(self, zxid: int) -> PeerOutput:
        return self._of_zab(self.zab.persisted(zxid))

    def propose(self, payload: bytes, next_voters: set[int] | None = None) -> tuple[int, PeerOutput]:
        zxid, z = self.zab.propose(payload, next_voters)
        return zxid, self._of_zab(z)

    @property
    def can_propose(self) -> bool:
        return self.state == _LEADING and self.established and self.zab.role == _LEADER
