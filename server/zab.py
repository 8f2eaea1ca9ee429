"""ZAB, the replication protocol, as a pure state machine for one server.

Roles: leader, follower, observer. Inputs: peer messages, ticks, "persisted up to
zxid" from the log, and ``propose(payload)`` on the leader. Outputs (``ZabOutput``):
messages to peers, and effects the shell performs *in order*:

- ``SaveEpochs(accepted, current)``: write both epoch files durably before anything else;
- ``Truncate(zxid)``: drop the log after zxid (an uncommitted tail) and reload;
- ``InstallSnapshot(zxid, data)``: replace the state with the leader's snapshot;
- ``Append(zxid, payload)``: add to the log; call ``persisted(zxid)`` once it is synced;
- ``Commit(zxid, payload)``: apply to the tree (always in zxid order);
- ``Established(role)``: serve clients; ``Abandon(reason)``: stop and go back to election.

Phases (as in the ZAB paper): discovery (FOLLOWERINFO -> LEADERINFO(new epoch) ->
ACKEPOCH), synchronisation (DIFF / TRUNC / SNAP, the missing proposals, NEWLEADER ->
ACK, UPTODATE) and broadcast (PROPOSAL -> ACK from a quorum -> COMMIT; INFORM to
observers). A leader commits nothing that a quorum of voters has not persisted.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from .strenum import StrEnum

EPOCH_SHIFT = 32


class Role(StrEnum):
    """The role ZAB runs on this server (None while it runs none)."""

    LEADER = "leader"
    FOLLOWER = "follower"
    OBSERVER = "observer"


class LearnerPhase(StrEnum):
    """Where a learner is in the leader's eyes: discovery, then synchronisation, then broadcast."""

    INFO = "info"  # its FOLLOWERINFO arrived
    EPOCH = "epoch"  # LEADERINFO(new epoch) sent
    ACKED = "acked"  # its ACKEPOCH arrived
    SYNC = "sync"  # DIFF / TRUNC / SNAP and NEWLEADER sent
    SYNCED = "synced"  # it acked NEWLEADER: it takes proposals


class SyncMode(StrEnum):
    """How the leader brings a learner up to date (the packet that opens synchronisation)."""

    DIFF = "DIFF"  # the proposals it misses
    TRUNC = "TRUNC"  # drop an uncommitted tail first, then the proposals after it
    SNAP = "SNAP"  # the leader's whole state, then the proposals after it


class LearnerSync(StrEnum):
    """Where this server is in its own synchronisation with a leader (learner side)."""

    WAITING = "waiting"  # no DIFF / TRUNC / SNAP yet in this attempt
    DIFF = "DIFF"  # synchronising, as the leader's SyncStart said
    TRUNC = "TRUNC"
    SNAP = "SNAP"
    NEWLEADER = "newleader"  # NEWLEADER arrived: the history is the leader's; proposals get ACKs


# The members the hot paths compare with, read once: an enum member's attribute lookup costs
# about 0.1 us each time on CPython 3.11, and a write passes through dozens of such checks.
_LEADER = Role.LEADER
_FOLLOWER = Role.FOLLOWER
_OBSERVER = Role.OBSERVER
_SYNC = LearnerPhase.SYNC
_SYNCED = LearnerPhase.SYNCED
_SYNCING = (LearnerPhase.SYNC, LearnerPhase.SYNCED)
_NEWLEADER = LearnerSync.NEWLEADER
_LEARNING = (Role.FOLLOWER, Role.OBSERVER)


def epoch_of(zxid: int) -> int:
    return zxid >> EPOCH_SHIFT


def make_zxid(epoch: int, counter: int) -> int:
    return (epoch << EPOCH_SHIFT) | counter


# ---------------------------------------------------------------- messages
class _Record:
    """A message or an effect: an immutable record whose fields are its ``__slots__``, in order.

    Equal and hashed by its fields and shown as ``@dataclass(frozen=True)`` shows itself (what
    these classes were), but made in about a third of the time: a frozen dataclass sets each
    field through ``object.__setattr__``, and a write builds some thirty of these across the
    three servers of an ensemble. Nothing assigns to a field after ``__init__``.
    """

    __slots__: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({shown})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # copy and pickle rebuild through __init__: what they do by default (a bare __new__,
        # then the slots) a class compiled with mypyc refuses
        return type(self), self._values()


class FollowerInfo(_Record):
    __slots__ = ("accepted_epoch", "last_zxid", "observer")

    def __init__(self, accepted_epoch: int, last_zxid: int, observer: bool) -> None:
        self.accepted_epoch = accepted_epoch
        self.last_zxid = last_zxid
        self.observer = observer


class LeaderInfo(_Record):
    __slots__ = ("epoch",)

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


class AckEpoch(_Record):
    __slots__ = ("current_epoch", "last_zxid")

    def __init__(self, current_epoch: int, last_zxid: int) -> None:
        self.current_epoch = current_epoch
        self.last_zxid = last_zxid


class SyncStart(_Record):
    __slots__ = ("mode", "zxid", "snapshot")

    def __init__(self, mode: SyncMode, zxid: int, snapshot: bytes | None = None) -> None:
        self.mode = mode
        self.zxid = zxid  # TRUNC target or the snapshot's zxid
        self.snapshot = snapshot


class Proposal(_Record):
    __slots__ = ("zxid", "payload")

    def __init__(self, zxid: int, payload: bytes) -> None:
        self.zxid = zxid
        self.payload = payload


class Commit(_Record):
    __slots__ = ("zxid",)

    def __init__(self, zxid: int) -> None:
        self.zxid = zxid


class Inform(_Record):
    __slots__ = ("zxid", "payload")

    def __init__(self, zxid: int, payload: bytes) -> None:
        self.zxid = zxid
        self.payload = payload


class NewLeader(_Record):
    __slots__ = ("epoch", "zxid")

    def __init__(self, epoch: int, zxid: int) -> None:
        self.epoch = epoch
        self.zxid = zxid  # the last zxid sent in the sync


class Ack(_Record):
    __slots__ = ("zxid",)

    def __init__(self, zxid: int) -> None:
        self.zxid = zxid


class UpToDate(_Record):
    __slots__ = ("committed",)

    def __init__(self, committed: int) -> None:
        self.committed = committed


class Ping(_Record):
    __slots__ = ("committed",)

    def __init__(self, committed: int) -> None:
        self.committed = committed


class Envelope(_Record):
    """Every ZAB message travels in one: ``session`` names the learner's current attempt
    to follow, so messages from an earlier attempt (still in flight on a link that
    did not break in both directions) are recognised and dropped."""

    __slots__ = ("session", "msg")

    def __init__(self, session: int, msg: Any) -> None:
        self.session = session
        self.msg = msg


MESSAGES = (Envelope, FollowerInfo, LeaderInfo, AckEpoch, SyncStart, Proposal, Commit, Inform, NewLeader, Ack,
            UpToDate, Ping)


# ---------------------------------------------------------------- effects
class SaveEpochs(_Record):
    __slots__ = ("accepted", "current")

    def __init__(self, accepted: int, current: int) -> None:
        self.accepted = accepted
        self.current = current


class Truncate(_Record):
    __slots__ = ("zxid",)

    def __init__(self, zxid: int) -> None:
        self.zxid = zxid


class InstallSnapshot(_Record):
    __slots__ = ("zxid", "data")

    def __init__(self, zxid: int, data: bytes) -> None:
        self.zxid = zxid
        self.data = data


class Append(_Record):
    __slots__ = ("zxid", "payload")

    def __init__(self, zxid: int, payload: bytes) -> None:
        self.zxid = zxid
        self.payload = payload


class CommitTxn(_Record):
    __slots__ = ("zxid", "payload")

    def __init__(self, zxid: int, payload: bytes) -> None:
        self.zxid = zxid
        self.payload = payload


class Established(_Record):
    __slots__ = ("role", "epoch")

    def __init__(self, role: Role, epoch: int) -> None:
        self.role = role
        self.epoch = epoch


class Abandon(_Record):
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class MembershipChanged(_Record):
    """A committed reconfig took effect here (it follows that txn's CommitTxn)."""

    __slots__ = ("zxid", "voters", "observers", "config")

    def __init__(self, zxid: int, voters: frozenset[int], observers: frozenset[int], config: bytes) -> None:
        self.zxid = zxid
        self.voters = voters
        self.observers = observers
        self.config = config


class ZabOutput:
    """What one input gives: messages (to, Envelope) and effects, each in order."""

    __slots__ = ("messages", "effects")

    def __init__(self, messages: list[tuple[int, Any]] | None = None, effects: list[Any] | None = None) -> None:
        self.messages: list[tuple[int, Any]] = [] if messages is None else messages
        self.effects: list[Any] = [] if effects is None else effects

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return (self.messages, self.effects) == (other.messages, other.effects)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ZabOutput(messages={self.messages!r}, effects={self.effects!r})"

    def extend(self, other: ZabOutput) -> None:
        self.messages.extend(other.messages)
        self.effects.extend(other.effects)


@dataclass(frozen=True)
class LearnerState:
    """One learner as the leader sees it (ZabPeer.learner_states)."""

    sid: int
    observer: bool
    phase: LearnerPhase
    voting: bool  # in the current voting view (a follower; observers never are)

    @property
    def synced(self) -> bool:
        return self.phase == _SYNCED


@dataclass
class _Learner:
    sid: int
    observer: bool
    accepted_epoch: int = -1
    phase: LearnerPhase = LearnerPhase.INFO  # INFO -> EPOCH -> ACKED -> SYNC -> SYNCED
    last_heard: int = 0
    # the tick up to which it counts towards the established leader's quorum (Apache's
    # tickOfNextAckDeadline): initLimit + syncLimit ticks after its hello, then syncLimit
    # ticks after each message once it is past NEWLEADER
    ack_deadline: int = 0
    newleader_zxid: int = 0
    their_last: int = 0
    session: int = 0


def _first_after(entries: list[tuple[int, bytes]], zxid: int) -> int:
    """Index of the first entry whose zxid is greater than ``zxid``."""
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if entries[mid][0] <= zxid:
            lo = mid + 1
        else:
            hi = mid
    return lo


class History:
    """The recent log: (zxid, payload) in order, plus the zxid just before it."""

    def __init__(self, entries: list[tuple[int, bytes]] | None = None, start: int = 0, limit: int = 100_000) -> None:
        self.entries: list[tuple[int, bytes]] = list(entries or [])
        self.index: dict[int, int] = {z: i for i, (z, _) in enumerate(self.entries)}
        self.start = start
        self.limit = limit
        self.floor = start  # the owner's commit point: only entries at or below it may be dropped

    @property
    def last(self) -> int:
        return self.entries[-1][0] if self.entries else self.start

    def append(self, zxid: int, payload: bytes) -> None:
        self.index[zxid] = len(self.entries)
        self.entries.append((zxid, payload))
        if len(self.entries) > self.limit * 2:
            # keep the window, and every entry not yet committed (a learner applies those later)
            drop = min(len(self.entries) - self.limit, _first_after(self.entries, self.floor))
            if drop <= 0:
                return
            self.start = self.entries[drop - 1][0]
            self.entries = self.entries[drop:]
            self.index = {z: i for i, (z, _) in enumerate(self.entries)}

    def after(self, zxid: int) -> list[tuple[int, bytes]]:
        if zxid == self.start:
            return list(self.entries)
        i = self.index.get(zxid)
        return [] if i is None else self.entries[i + 1:]

    def between(self, after: int, upto: int) -> list[tuple[int, bytes]]:
        """Entries with after < zxid <= upto."""
        entries = self.entries
        i = self.index.get(after)  # a learner's commit point is in its window: no search
        lo = _first_after(entries, after) if i is None else i + 1
        out = []
        for z, p in entries[lo:]:
            if z > upto:
                break
            out.append((z, p))
        return out

    def contains(self, zxid: int) -> bool:
        return zxid == self.start or zxid in self.index

    def payload_of(self, zxid: int) -> bytes | None:
        """The payload logged at ``zxid``, None when the window does not hold it."""
        i = self.index.get(zxid)
        return None if i is None else self.entries[i][1]

    def truncate(self, zxid: int) -> None:
        keep = [(z, p) for z, p in self.entries if z <= zxid]
        self.entries = keep
        self.index = {z: i for i, (z, _) in enumerate(keep)}

    def reset(self, start: int) -> None:
        self.entries = []
        self.index = {}
        self.start = start


class ZabPeer:
    """ZAB for one server. The shell owns I/O; this object owns the decisions."""

    def __init__(self, my_id: int, voters: set[int], observers: set[int], *, accepted_epoch: int,
                 current_epoch: int, history: History, committed: int,
                 snapshot: Callable[[], tuple[int, bytes]], sync_limit: int = 5, init_limit: int = 10,
                 config_of: Callable[[bytes], bytes | None] | None = None,
                 members_of: Callable[[bytes], tuple[set[int], set[int]]] | None = None) -> None:
        self.my_id = my_id
        # how to read the opaque payloads: the membership a reconfig txn installs (None for other
        # txns), and the voters and observers of a membership
        self.config_of = config_of or (lambda payload: None)
        self.members_of = members_of or (lambda config: (set(voters), set(observers)))
        self.voters = set(voters)
        self.observers = set(observers)
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.history = history
        self._commit_point = committed  # applied to the tree
        history.floor = committed
        self.snapshot = snapshot
        self.sync_limit = sync_limit
        self.init_limit = init_limit
        self.follower_info: FollowerInfo | None = None  # this attempt's hello to the leader
        self.heard_from_leader = False
        self.role: Role | None = None
        self.leader: int | None = None
        self.established = False
        self.now = 0
        self.started = 0
        self.persisted_zxid = history.last
        # leader state
        self.epoch = 0
        self.learners: dict[int, _Learner] = {}
        self.epoch_decided = False
        self.epoch_acks: set[int] = set()
        self.newleader_acks: set[int] = set()
        # zxid -> (payload, ackers, voters of a reconfig in flight that must also ack, or None)
        self.outstanding: OrderedDict[int, tuple[bytes, set[int], frozenset[int] | None]] = OrderedDict()
        self.counter = 0
        # the voters of a proposed, not yet committed reconfig: until it commits, every
        # proposal needs a quorum of them as well as of the current voters (joint consensus)
        self.next_voters: frozenset[int] | None = None
        # learner state
        self.last_from_leader = 0
        self.sync_mode = LearnerSync.WAITING
        self.pending_sync: list[tuple[int, bytes]] = []
        self.uptodate = False
        self.pending_commit = 0
        self.awaiting_ack_newleader: int | None = None
        self.newleader_epoch = 0  # the epoch NEWLEADER named, taken once its history is on disk
        # proposals received after NEWLEADER that still owe the leader an ACK: one ACK per
        # zxid, in order (Apache's leader tracks them one by one)
        self.unacked: deque[int] = deque()
        self.session = 0  # our current attempt to follow (learner side)

    @property
    def committed(self) -> int:
        return self._commit_point

    @committed.setter
    def committed(self, zxid: int) -> None:
        self._commit_point = zxid
        self.history.floor = zxid

    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    # ---------------------------------------------------------------- role changes
    def lead(self) -> ZabOutput:
        self._reset(_LEADER, self.my_id)
        self.learners = {}
        self.epoch_acks = {self.my_id}
        self.newleader_acks = set()
        self.outstanding = OrderedDict()
        self.next_voters = None
        self.epoch_decided = False
        out = ZabOutput()
        self._maybe_decide_epoch(out)
        return out

    def follow(self, leader: int, observer: bool = False) -> ZabOutput:
        self._reset(_OBSERVER if observer else _FOLLOWER, leader)
        self.session += 1
        out = ZabOutput()
        self.follower_info = FollowerInfo(self.accepted_epoch, self.history.last, observer)
        out.messages.append((leader, self.follower_info))
        return self._seal(out)

    def stop(self) -> None:
        self.role = None
        self.established = False

    def _reset(self, role: Role, leader: int) -> None:
        self.role = role
        self.leader = leader
        self.established = False
        self.started = self.now
        self.last_from_leader = self.now
        self.heard_from_leader = False
        self.sync_mode = LearnerSync.WAITING
        self.pending_sync = []
        self.uptodate = False
        self.pending_commit = 0
        self.awaiting_ack_newleader = None
        self.newleader_epoch = 0
        self.unacked.clear()

    @property
    def _leader_sid(self) -> int:
        """The leader a learner talks to (set by lead()/follow() before any learner message)."""
        assert self.leader is not None
        return self.leader

    def _abandon(self, out: ZabOutput, reason: str) -> None:
        self.role = None
        self.established = False
        out.effects.append(Abandon(reason))

    # ---------------------------------------------------------------- inputs
    def tick(self) -> ZabOutput:
        self.now += 1
        out = ZabOutput()
        if self.role == _LEADER:
            lost = self._quorum_lost()
            if lost is not None:
                self._abandon(out, lost)
                return out
            for sid, lr in self.learners.items():
                if lr.phase == _SYNCED:
                    out.messages.append((sid, Ping(self.committed)))
        elif self.role in _LEARNING:
            limit = self.sync_limit if self.uptodate else self.init_limit
            if self.now - self.last_from_leader > limit:
                self._abandon(out, f"leader {self.leader} silent for {limit} ticks")
                return out
            if self.uptodate:
                out.messages.append((self._leader_sid, Ping(self.committed)))
            elif not self.heard_from_leader and self.follower_info is not None:
                # the first FollowerInfo may have reached a server still finishing its election,
                # or gone nowhere while the link connected: say it again (the leader ignores
                # repeats of one attempt)
                out.messages.append((self._leader_sid, self.follower_info))
        return self._seal(out)

    def _quorum_lost(self) -> str | None:
        """Leader, at each tick: why it must stop leading, None while it may go on.

        Established, it needs a quorum (of the current voters and of a reconfig's next voters
        while one is in flight) among itself and the learners it still has a connection to
        whose ack deadline has not passed, at every check, with no start-up allowance (Apache's
        Leader.lead loop over LearnerHandler.synced). Before that, it gives its followers
        initLimit ticks from the start of its leadership to connect and sync.
        """
        if self.established:
            synced = {self.my_id} | {s for s, lr in self.learners.items()
                                     if not lr.observer and self.now <= lr.ack_deadline}
            for voters in (self.voters, self.next_voters):
                if voters is not None and len(synced & voters) <= len(voters) // 2:
                    return f"lost the quorum: synced only with {sorted(synced & voters)} of {sorted(voters)}"
            return None
        alive = {self.my_id} | {s for s, lr in self.learners.items() if s in self.voters and not lr.observer
                                and self.now - lr.last_heard <= self.init_limit}
        if self.now - self.started > self.init_limit and len(alive) < self.quorum:
            return f"no quorum within initLimit: hearing only {sorted(alive)}"
        return None

    def link_down(self, sid: int) -> ZabOutput:
        out = ZabOutput()
        if self.role in _LEARNING and sid == self.leader:
            self._abandon(out, f"lost the connection to leader {sid}")
        elif self.role == _LEADER and sid in self.learners:
            del self.learners[sid]
        return out

    def receive(self, sid: int, env: Any) -> ZabOutput:
        if not isinstance(env, Envelope):
            return ZabOutput()
        msg = env.msg
        if self.role == _LEADER:
            lr = self.learners.get(sid)
            if isinstance(msg, FollowerInfo):
                if lr is not None and env.session <= lr.session:
                    return ZabOutput()
            elif lr is None or env.session != lr.session:
                return ZabOutput()  # from an earlier attempt of that learner
            out = self._leader_receive(sid, msg)
            if isinstance(msg, FollowerInfo) and sid in self.learners:
                self.learners[sid].session = env.session
            return self._seal(out)
        if self.role in _LEARNING and sid == self.leader and env.session == self.session:
            self.last_from_leader = self.now
            self.heard_from_leader = True
            return self._seal(self._learner_receive(msg))
        return ZabOutput()

    def _seal(self, out: ZabOutput) -> ZabOutput:
        """Put every outgoing message in an envelope for the session it belongs to."""
        messages = out.messages
        if not messages:
            return out
        sealed = []
        if self.role == _LEADER:
            learners = self.learners
            for sid, msg in messages:
                if isinstance(msg, Envelope):
                    sealed.append((sid, msg))
                else:
                    lr = learners.get(sid)
                    if lr is not None:
                        sealed.append((sid, Envelope(lr.session, msg)))
        else:
            session = self.session
            for sid, msg in messages:
                sealed.append((sid, msg if isinstance(msg, Envelope) else Envelope(session, msg)))
        out.messages = sealed
        return out

    def persisted(self, zxid: int) -> ZabOutput:
        """The shell synced the log up to ``zxid``."""
        out = ZabOutput()
        if zxid <= self.persisted_zxid:
            return out
        self.persisted_zxid = zxid
        if self.role == _LEADER:
            for z, (_, ackers, _) in self.outstanding.items():
                if z <= zxid:
                    ackers.add(self.my_id)
            self._try_commit(out)
        elif self.role == _FOLLOWER:
            if self.awaiting_ack_newleader is not None and zxid >= self.awaiting_ack_newleader:
                self._take_epoch(out, self.newleader_epoch)
                out.messages.append((self._leader_sid, Ack(self.awaiting_ack_newleader)))
                self.awaiting_ack_newleader = None
                self._ack_through(out, zxid)
            elif self.awaiting_ack_newleader is None and (self.uptodate or self.sync_mode == _NEWLEADER):
                self._ack_through(out, zxid)
        return self._seal(out)

    def _ack_through(self, out: ZabOutput, zxid: int) -> None:
        unacked = self.unacked
        while unacked and unacked[0] <= zxid:
            out.messages.append((self._leader_sid, Ack(unacked.popleft())))

    # ---------------------------------------------------------------- what the shell reads
    def next_zxid(self) -> int:
        """Leader: the zxid the next propose() gives (the shell prepares the txn with it)."""
        return make_zxid(self.epoch, self.counter + 1)

    def last_outstanding(self) -> int | None:
        """Leader: the newest zxid proposed and not yet committed, None when all are."""
        return next(reversed(self.outstanding)) if self.outstanding else None

    def learner_states(self) -> list[LearnerState]:
        """Leader: every learner it has a handler for, as it sees them now."""
        return [LearnerState(lr.sid, lr.observer, lr.phase, lr.sid in self.voters)
                for lr in self.learners.values()]

    def synced_followers(self) -> set[int]:
        """Leader: the followers (not observers) past NEWLEADER."""
        return {sid for sid, lr in self.learners.items() if lr.phase == _SYNCED and not lr.observer}

    def learner_alive(self, sid: int, within_ticks: int = 2) -> bool:
        """Leader: ``sid`` is synced and was heard from in the last ``within_ticks`` ticks."""
        lr = self.learners.get(sid)
        return lr is not None and lr.phase == _SYNCED and self.now - lr.last_heard <= within_ticks

    def propose(self, payload: bytes, next_voters: set[int] | None = None) -> tuple[int, ZabOutput]:
        """Leader: give ``payload`` the next zxid and send it to the learners. ``next_voters``
        marks a reconfig: from here until it commits, proposals need their quorum too."""
        if self.role != _LEADER or not self.established:
            raise RuntimeError("not an established leader")
        if next_voters is not None:
            self.next_voters = frozenset(next_voters)
        self.counter += 1
        zxid = make_zxid(self.epoch, self.counter)
        self.history.append(zxid, payload)
        self.outstanding[zxid] = (payload, set(), self.next_voters)
        # sealed here, as _seal would seal them (an established leader's learners, as they are
        # now): one Proposal for all of them
        proposal = Proposal(zxid, payload)
        messages = [(sid, Envelope(lr.session, proposal)) for sid, lr in self.learners.items()
                    if lr.phase in _SYNCING and not lr.observer]
        return zxid, ZabOutput(messages, [Append(zxid, payload)])

    def _committed(self, out: ZabOutput, zxid: int, payload: bytes) -> None:
        """Emit one commit; a reconfig takes effect right there, before anything after it."""
        self._commit_point = self.history.floor = zxid  # the committed setter's two, inline
        out.effects.append(CommitTxn(zxid, payload))
        config = self.config_of(payload)
        if config is not None:
            voters, observers = self.members_of(config)
            out.effects.append(MembershipChanged(zxid, frozenset(voters), frozenset(observers), config))
            self._reconfigured(out, voters, observers)

    def reconfigure(self, voters: set[int], observers: set[int]) -> ZabOutput:
        """Take a membership that arrived other than by a commit (a snapshot from the leader)."""
        out = ZabOutput()
        self._reconfigured(out, voters, observers)
        return self._seal(out)

    def _reconfigured(self, out: ZabOutput, voters: set[int], observers: set[int]) -> None:
        """A reconfig committed: take the new membership. A server whose role changed or that
        was removed gives up its role (it rejoins, or not, through a new election); a leader
        drops the learners that must come back in another role."""
        was_observer = self.my_id in self.observers
        self.voters = set(voters)
        self.observers = set(observers)
        self.next_voters = None
        if self.role is None:
            return
        member = self.my_id in self.voters or self.my_id in self.observers
        if not member:
            self._abandon(out, "removed from the ensemble by a reconfig")
        elif self.role == _LEADER:
            if self.my_id not in self.voters:
                self._abandon(out, "a reconfig made the leader an observer")
            else:
                for sid, lr in list(self.learners.items()):
                    if lr.observer != (sid in self.observers):
                        del self.learners[sid]  # it follows in its old role: it must come back
        elif was_observer != (self.my_id in self.observers):
            self._abandon(out, f"a reconfig made this server {'an observer' if not was_observer else 'a participant'}")

    # ---------------------------------------------------------------- leader
    def _maybe_decide_epoch(self, out: ZabOutput) -> None:
        if self.epoch_decided:
            return
        voters_in = {s for s, lr in self.learners.items() if s in self.voters and not lr.observer} | {self.my_id}
        if len(voters_in) < self.quorum:
            return
        epochs = [lr.accepted_epoch for lr in self.learners.values()] + [self.accepted_epoch]
        self.epoch = max(epochs) + 1
        self.accepted_epoch = self.epoch
        self.epoch_decided = True
        out.effects.append(SaveEpochs(self.accepted_epoch, self.current_epoch))
        for sid, lr in self.learners.items():
            out.messages.append((sid, LeaderInfo(self.epoch)))
            lr.phase = LearnerPhase.EPOCH

    def _leader_receive(self, sid: int, msg: Any) -> ZabOutput:
        out = ZabOutput()
        lr = self.learners.get(sid)
        if lr is not None:
            lr.last_heard = self.now
            if lr.phase == _SYNCED:
                lr.ack_deadline = self.now + self.sync_limit
        if isinstance(msg, FollowerInfo):
            # taken in the role the learner claims, even where our membership says otherwise: one
            # that missed a reconfig learns it by syncing, then comes back in its new role (until
            # then its acks count only where our membership lets them)
            lr = _Learner(sid, msg.observer, msg.accepted_epoch, last_heard=self.now,
                          ack_deadline=self.now + self.init_limit + self.sync_limit)
            self.learners[sid] = lr
            if self.epoch_decided:
                lr.phase = LearnerPhase.EPOCH
                out.messages.append((sid, LeaderInfo(self.epoch)))
            else:
                self._maybe_decide_epoch(out)
            return out
        if lr is None:
            return out
        if isinstance(msg, Ack):
            if lr.phase == _SYNC and msg.zxid == lr.newleader_zxid:
                lr.phase = _SYNCED
                lr.ack_deadline = self.now + self.sync_limit
                if not lr.observer:
                    self.newleader_acks.add(sid)
                    for z, (_, ackers, _) in self.outstanding.items():
                        if z <= msg.zxid:
                            ackers.add(sid)
                if self.established:
                    out.messages.append((sid, UpToDate(self.committed)))
                    self._try_commit(out)
                else:
                    self._maybe_establish(out)
                return out
            if lr.phase == _SYNCED and not lr.observer:
                # one ACK covers every proposal up to it (followers ack a synced batch)
                for z, (_, ackers, _) in self.outstanding.items():
                    if z > msg.zxid:
                        break
                    ackers.add(sid)
                self._try_commit(out)
            return out
        if isinstance(msg, AckEpoch) and lr.phase == LearnerPhase.EPOCH:
            mine = (self.current_epoch, self.history.last)
            if (msg.current_epoch, msg.last_zxid) > mine and not self.established:
                self._abandon(out, f"server {sid} has a newer history {msg} than ours {mine}")
                return out
            if not lr.observer:  # one that calls itself an observer never votes, whatever we think
                self.epoch_acks.add(sid)
            lr.phase = LearnerPhase.ACKED
            lr.their_last = msg.last_zxid
            if self.current_epoch != self.epoch and \
                    len([s for s in self.epoch_acks if s in self.voters]) >= self.quorum:
                # a quorum has accepted the new epoch: only now do we sync anyone into it
                self.current_epoch = self.epoch
                out.effects.append(SaveEpochs(self.accepted_epoch, self.current_epoch))
            if self.current_epoch == self.epoch:
                for other in list(self.learners.values()):
                    if other.phase == LearnerPhase.ACKED:
                        self._sync_learner(out, other, other.their_last)
            return out
        return out

    def _sync_learner(self, out: ZabOutput, lr: _Learner, their_last: int) -> None:
        h = self.history
        sid = lr.sid
        if their_last == h.last or h.contains(their_last) and their_last <= h.last:
            out.messages.append((sid, SyncStart(SyncMode.DIFF, their_last)))
            send = h.after(their_last)
        elif their_last > h.start and not h.contains(their_last):
            target = max((z for z, _ in h.entries if z < their_last), default=h.start)
            out.messages.append((sid, SyncStart(SyncMode.TRUNC, target)))
            send = h.after(target)
        else:
            zxid, data = self.snapshot()
            out.messages.append((sid, SyncStart(SyncMode.SNAP, zxid, data)))
            send = [(z, p) for z, p in h.entries if z > zxid]
        for z, p in send:
            out.messages.append((sid, Proposal(z, p)))
            if z <= self.committed:
                out.messages.append((sid, Commit(z)))
        lr.newleader_zxid = h.last
        lr.phase = _SYNC
        out.messages.append((sid, NewLeader(self.epoch, h.last)))

    def _maybe_establish(self, out: ZabOutput) -> None:
        acks = {s for s in self.newleader_acks if s in self.voters}
        if self.persisted_zxid >= self.history.last:
            acks.add(self.my_id)
        if len(acks) < self.quorum or self.current_epoch != self.epoch:
            return
        self.established = True
        # everything in our history is now held by a quorum: it is committed
        for z, p in self.history.entries:
            if z > self.committed:
                self._committed(out, z, p)
                if self.role != _LEADER:
                    return  # a reconfig in the history removed us: no epoch to establish
        self.outstanding.clear()
        self.counter = 0
        out.effects.append(Established(_LEADER, self.epoch))
        for sid, lr in self.learners.items():
            if lr.phase == _SYNCED:
                out.messages.append((sid, UpToDate(self.committed)))

    def _try_commit(self, out: ZabOutput) -> None:
        outstanding = self.outstanding
        messages = out.messages
        while outstanding:
            zxid, (payload, ackers, joint) = next(iter(outstanding.items()))
            voters = self.voters  # read each time: a reconfig committed below changes them
            if len(ackers & voters) <= len(voters) // 2:
                break
            if joint is not None and len(ackers & joint) <= len(joint) // 2:
                break
            outstanding.popitem(last=False)
            commit: Commit | None = None
            for sid, lr in self.learners.items():
                if lr.phase not in _SYNCING:
                    continue
                if lr.observer:
                    messages.append((sid, Inform(zxid, payload)))
                else:
                    if commit is None:
                        commit = Commit(zxid)  # one for every follower (a message is never changed)
                    messages.append((sid, commit))
            self._committed(out, zxid, payload)
            if self.role != _LEADER:
                return

    # ---------------------------------------------------------------- learner
    def _learner_receive(self, msg: Any) -> ZabOutput:
        out = ZabOutput()
        # the broadcast phase's two messages first: every write brings both
        if isinstance(msg, Proposal):
            if msg.zxid <= self.history.last:
                return out  # already have it (a DIFF overlapping what we logged)
            self.history.append(msg.zxid, msg.payload)
            out.effects.append(Append(msg.zxid, msg.payload))
            if self.role == _FOLLOWER and (self.uptodate or self.sync_mode == _NEWLEADER):
                self.unacked.append(msg.zxid)
            return out
        if isinstance(msg, Commit):
            self._commit_through(out, msg.zxid)
            return out
        if isinstance(msg, LeaderInfo):
            if msg.epoch < self.accepted_epoch:
                self._abandon(out, f"leader proposed epoch {msg.epoch} below our accepted {self.accepted_epoch}")
                return out
            if msg.epoch > self.accepted_epoch:
                self.accepted_epoch = msg.epoch
                out.effects.append(SaveEpochs(self.accepted_epoch, self.current_epoch))
            out.messages.append((self._leader_sid, AckEpoch(self.current_epoch, self.history.last)))
            return out
        if isinstance(msg, SyncStart):
            self.sync_mode = LearnerSync(msg.mode.value)
            self.pending_sync = []
            if msg.mode == SyncMode.TRUNC:
                out.effects.append(Truncate(msg.zxid))
                self.history.truncate(msg.zxid)
                self.persisted_zxid = min(self.persisted_zxid, msg.zxid)
                self.committed = min(self.committed, msg.zxid)
            elif msg.mode == SyncMode.SNAP:
                out.effects.append(InstallSnapshot(msg.zxid, msg.snapshot or b""))
                self.history.reset(msg.zxid)
                self.persisted_zxid = msg.zxid
                self.committed = msg.zxid
            return out
        if isinstance(msg, Inform):
            if msg.zxid > self.history.last:
                self.history.append(msg.zxid, msg.payload)
                out.effects.append(Append(msg.zxid, msg.payload))
            self._commit_through(out, msg.zxid)
            return out
        if isinstance(msg, NewLeader):
            # the new epoch is saved only with the ACK, once the history NEWLEADER covers is on
            # disk: saved before, a crash in between leaves a vote claiming the new epoch over an
            # old log, which can win an election and truncate committed txns (ZOOKEEPER-4643)
            self.sync_mode = _NEWLEADER
            if self.persisted_zxid >= msg.zxid or self.role == _OBSERVER:
                self._take_epoch(out, msg.epoch)
                out.messages.append((self._leader_sid, Ack(msg.zxid)))
            else:
                self.awaiting_ack_newleader = msg.zxid
                self.newleader_epoch = msg.epoch
            return out
        if isinstance(msg, UpToDate):
            self.uptodate = True
            self._commit_through(out, msg.committed)
            if self.role is None:
                return out
            out.effects.append(Established(self.role or _FOLLOWER, self.current_epoch))
            return out
        return out

    def _take_epoch(self, out: ZabOutput, epoch: int) -> None:
        if self.current_epoch != epoch:
            self.current_epoch = epoch
            out.effects.append(SaveEpochs(self.accepted_epoch, self.current_epoch))

    def _commit_through(self, out: ZabOutput, zxid: int) -> None:
        if not self.uptodate and self.sync_mode != _NEWLEADER:
            # before NEWLEADER, remember the point and apply once synced
            self.pending_commit = max(self.pending_commit, zxid)
        target = max(zxid, self.pending_commit) if (self.uptodate or self.sync_mode == _NEWLEADER) else None
        if target is None:
            return
        for z, p in self.history.between(self.committed, target):
            self._committed(out, z, p)
            if self.role is None:
                return  # a reconfig removed us or changed our role
