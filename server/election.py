"""Fast leader election, as a pure state machine (ZooKeeper's FastLeaderElection).

Input: notifications from peers and ticks. Output: notifications to send, events for
the labs' election timeline, and at the end a decision (LEADING, FOLLOWING or
OBSERVING a leader). Votes are (epoch, zxid, sid) and compare in that order.

Rules kept from ZooKeeper:
- a LOOKING server proposes itself, adopts any better vote it hears in its round, and
  moves to a newer round (election epoch) when it hears one;
- a LOOKING server that hears a worse vote in its round answers that sender with its own at
  once (the sender has not heard it), where Apache's waits for its next resend;
- a vote is decided when a quorum of voters' latest votes in this round agree and no
  better vote arrives during the finalize wait; the wait ends early once every voter the
  owner can still reach (``set_reachable``) has voted for it in this round, since no better
  vote can then come (the wait is for liveness only: a quorum agreeing is what ZAB needs);
- servers already FOLLOWING/LEADING answer a LOOKING server with their vote and
  state; a newcomer follows the leader a quorum reports (and that reports LEADING
  itself) without forcing a new election;
- observers never vote: they only learn the leader the same way;
- a server that logged a reconfig it has not seen committed (a proposed membership newer than
  its committed one) needs a quorum of each: a vote counts towards the memberships that hold
  its sender, and it hears and tells the voters of both (Apache's getVoteTracker adds the last
  seen verifier; validVoter takes the current and next voters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ServerState(str, Enum):
    LOOKING = "LOOKING"
    FOLLOWING = "FOLLOWING"
    LEADING = "LEADING"
    OBSERVING = "OBSERVING"


@dataclass(frozen=True, order=True)
class Vote:
    """A candidate and the history it claims; compares (epoch, zxid, leader)."""

    epoch: int
    zxid: int
    leader: int


@dataclass(frozen=True)
class Notification:
    """What servers exchange on the election port."""

    sender: int
    state: str
    vote: Vote
    round: int
    observer: bool = False
    # the sender's membership (its version, the zxid of the reconfig that made it, and its text),
    # so a server that missed a reconfig learns it from one that took part, as Apache's do
    config_version: int = 0
    config: bytes = b""


@dataclass(frozen=True)
class ElectionEvent:
    """One observable step, for the JSON-lines timeline and the `elections` 4lw."""

    kind: str  # vote_sent | vote_received | vote_changed | state_changed | leader_elected
    round: int
    vote: Vote | None = None
    peer: int | None = None
    state: str | None = None
    ticks: int | None = None


@dataclass
class ElectionOutput:
    messages: list[tuple[int, Notification]] = field(default_factory=list)
    events: list[ElectionEvent] = field(default_factory=list)
    decided: tuple[ServerState, int] | None = None  # (new state, leader sid)
    adopt: tuple[int, bytes] | None = None  # a newer membership heard from a serving server


class Election:
    """The election of one server; feed it notifications and ticks."""

    def __init__(self, my_id: int, voters: set[int], observers: set[int] | None = None,
                 finalize_ticks: int = 2, resend_ticks: int = 5) -> None:
        self.my_id = my_id
        self.voters = set(voters)
        self.observers = set(observers or ())
        self.is_observer = my_id in self.observers
        self.config_version = 0
        self.config = b""
        # the voters of a proposed membership newer than the committed one (a reconfig this
        # server logged and has not seen committed), None without one
        self.next_voters: set[int] | None = None
        self.next_version = 0
        self.finalize_ticks = finalize_ticks
        self.resend_ticks = resend_ticks
        self.round = 0
        self.state = ServerState.LOOKING
        self.vote = Vote(0, 0, my_id)
        self.initial = self.vote
        self.recv: dict[int, Vote] = {}
        self.outside: dict[int, tuple[str, Vote, int]] = {}  # sid -> (state, vote, round)
        self.finalize_at: int | None = None
        # the peers whose election connection is up, as the owner last said; None: unknown
        # (the finalize wait then always runs to its end)
        self.reachable: set[int] | None = None
        self.now = 0
        self.started_at = 0
        self.last_send = 0

    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def _peers(self) -> list[int]:
        return sorted((self.voters | self.observers | (self.next_voters or set())) - {self.my_id})

    def _valid_voter(self, sid: int) -> bool:
        """A voter of the committed or of the proposed membership (Apache's validVoter)."""
        return sid in self.voters or (self.next_voters is not None and sid in self.next_voters)

    def _has_quorums(self, backers: set[int]) -> bool:
        """A majority of the committed voters and, with a proposed membership, of its voters."""
        for voters in (self.voters, self.next_voters):
            if voters is not None and len(backers & voters) <= len(voters) // 2:
                return False
        return True

    # ------------------------------------------------------------ inputs
    def start(self, epoch: int, zxid: int) -> ElectionOutput:
        """Begin looking: a new round, voting for ourselves (observers vote for nobody)."""
        out = ElectionOutput()
        self.round += 1
        self.state = ServerState.LOOKING
        self.initial = Vote(epoch, zxid, self.my_id)
        # only a voter of our own membership proposes itself (observers and servers a reconfig
        # removed vote for nobody, as Apache's FastLeaderElection), so no one elects a non-voter
        self.vote = self.initial if self.is_voter else Vote(-1, -1, -1)
        self.recv = {}
        self.outside = {}
        self.finalize_at = None
        self.started_at = self.now
        out.events.append(ElectionEvent("state_changed", self.round, state=ServerState.LOOKING.value))
        if self.is_voter:
            self.recv[self.my_id] = self.vote
        self._broadcast(out)
        return out

    def settled(self, state: ServerState, leader: int, epoch: int, zxid: int) -> None:
        """Record the outcome the owner acted on, so we answer LOOKING peers correctly."""
        self.state = state
        self.vote = Vote(epoch, zxid, leader)

    def established(self, epoch: int) -> None:
        """The epoch we follow or lead in is established: newcomers hear it as our vote's epoch, as
        Apache's updateElectionVote (ZOOKEEPER-1732), so every server outside the election tells a
        joining Apache server the same (leader, peerEpoch) and it finds a quorum of them."""
        if self.state != ServerState.LOOKING:
            self.vote = Vote(epoch, self.vote.zxid, self.vote.leader)

    def set_reachable(self, peers: set[int] | None) -> None:
        """The peers the owner has an election connection to (None: it does not know)."""
        self.reachable = None if peers is None else set(peers)

    def tick(self) -> ElectionOutput:
        self.now += 1
        out = ElectionOutput()
        if self.state != ServerState.LOOKING:
            return out
        if self.finalize_at is not None and (self.now >= self.finalize_at or self._all_reachable_agree()):
            self._decide(out)
            return out
        if self.now - self.last_send >= self.resend_ticks:
            self._broadcast(out)
        return out

    def receive(self, n: Notification) -> ElectionOutput:
        out = ElectionOutput()
        if n.sender == self.my_id:
            return out
        out.events.append(ElectionEvent("vote_received", n.round, n.vote, n.sender, n.state))
        if (n.state != ServerState.LOOKING.value and n.config and n.config_version > self.config_version
                and n.sender in self.voters | self.observers):
            # only a member we know may tell us of a newer membership (the owner still checks
            # that the text reads as one that keeps the sender): anyone can reach the port
            # a server that serves knows a membership we missed (committed while we were away)
            out.adopt = (n.config_version, n.config)
            return out
        if self.state != ServerState.LOOKING:
            if n.state == ServerState.LOOKING.value:
                # tell the newcomer who leads
                self._send(out, n.sender)
            return out
        if n.observer or not self._valid_voter(n.sender):
            # an observer looking too: answer only if we know something
            return out
        if n.state == ServerState.LOOKING.value:
            if n.round > self.round:
                self.round = n.round
                self.recv = {}
                self.finalize_at = None
                best = max(self.initial, n.vote) if self.is_voter else n.vote
                self._change(out, best)
                if not self.is_observer:
                    self.recv[self.my_id] = self.vote
                self._broadcast(out)
            elif n.round < self.round:
                self._send(out, n.sender)
                return out
            elif not self.is_observer and n.vote > self.vote:
                self._change(out, n.vote)
                self.recv[self.my_id] = self.vote
                self._broadcast(out)
            elif not self.is_observer and n.vote < self.vote:
                # the sender has not heard our better vote: it reached the sender before it
                # was looking (a follower that had not yet noticed its leader's death answers
                # and forgets it) or was lost; tell it now rather than at our next resend
                self._send(out, n.sender)
            self.recv[n.sender] = n.vote
            self._check_quorum(out)
        else:
            # a server that already follows or leads
            self.outside[n.sender] = (n.state, n.vote, n.round)
            self._check_established(out, n)
        return out

    # ------------------------------------------------------------ rules
    def _check_quorum(self, out: ElectionOutput) -> None:
        if self.is_observer or not self.member:
            return
        agree = self._agreeing()
        if self._has_quorums(agree):
            if self.finalize_at is None:
                self.finalize_at = self.now + self.finalize_ticks
            if self.finalize_ticks == 0 or self._all_reachable_agree():
                self._decide(out)
        else:
            self.finalize_at = None

    def _agreeing(self) -> set[int]:
        return {sid for sid, v in self.recv.items() if v == self.vote}

    def _all_reachable_agree(self) -> bool:
        """Every voter we can still reach (ourselves included) voted for our vote in this round:
        no better vote can arrive, so the finalize wait has nothing left to wait for."""
        if self.reachable is None:
            return False
        voters = self.voters | (self.next_voters or set())
        return (voters & (self.reachable | {self.my_id})) <= self._agreeing()

    def set_members(self, voters: set[int], observers: set[int], version: int | None = None,
                    config: bytes | None = None) -> None:
        """A committed (or adopted) reconfig changed who votes and who observes."""
        self.voters = set(voters)
        self.observers = set(observers)
        self.is_observer = self.my_id in self.observers
        if version is not None and config is not None:
            self.config_version, self.config = version, config
        if self.next_voters is not None and self.next_version <= self.config_version:
            self.next_voters = None

    def set_proposed(self, voters: set[int] | None, observers: set[int] | None = None,
                     version: int = 0) -> None:
        """The newest membership this server logged and has not seen committed (None: none);
        it counts only while its version is above the committed one's."""
        if voters is None or version <= self.config_version:
            self.next_voters, self.next_version = None, 0
        else:
            self.next_voters, self.next_version = set(voters), version

    @property
    def is_voter(self) -> bool:
        return self.my_id in self.voters

    @property
    def member(self) -> bool:
        """A server its own membership leaves out (removed by a reconfig) never takes a role."""
        return self.my_id in self.voters or self.my_id in self.observers

    def _check_established(self, out: ElectionOutput, n: Notification) -> None:
        if not self.member:
            return
        leader = n.vote.leader
        if leader == self.my_id:
            # never lead on the word of followers from an earlier round: they may not yet
            # have noticed that we gave up leading (as ZooKeeper's checkLeader)
            backers = [sid for sid, (state, v, rnd) in self.outside.items()
                       if v.leader == leader and rnd == self.round]
        else:
            backers = [sid for sid, (state, v, _) in self.outside.items() if v.leader == leader]
        if self.vote.leader == leader and not self.is_observer:
            backers.append(self.my_id)
        leader_says = self.outside.get(leader)
        leader_leads = leader == self.my_id or (leader_says is not None and
                                                leader_says[0] == ServerState.LEADING.value)
        if self._has_quorums(set(backers)) and leader_leads:
            self.round = max(self.round, n.round)
            self._change(out, n.vote)
            self._decide(out)

    def _decide(self, out: ElectionOutput) -> None:
        leader = self.vote.leader
        if self.is_observer:
            state = ServerState.OBSERVING
        elif leader == self.my_id:
            state = ServerState.LEADING
        else:
            state = ServerState.FOLLOWING
        self.state = state
        self.finalize_at = None
        out.decided = (state, leader)
        out.events.append(ElectionEvent("leader_elected", self.round, self.vote, leader, state.value,
                                        ticks=self.now - self.started_at))
        out.events.append(ElectionEvent("state_changed", self.round, state=state.value))
        # let everyone still looking learn the outcome
        self._broadcast(out)

    def _change(self, out: ElectionOutput, vote: Vote) -> None:
        if vote != self.vote:
            self.vote = vote
            out.events.append(ElectionEvent("vote_changed", self.round, vote))

    def _notification(self) -> Notification:
        return Notification(self.my_id, self.state.value, self.vote, self.round, self.is_observer,
                            self.config_version, self.config)

    def _send(self, out: ElectionOutput, to: int) -> None:
        out.messages.append((to, self._notification()))

    def _broadcast(self, out: ElectionOutput) -> None:
        self.last_send = self.now
        n = self._notification()
        targets = (sorted((self.voters | (self.next_voters or set())) - {self.my_id})
                   if self.state == ServerState.LOOKING else self._peers())
        for sid in targets:
            out.messages.append((sid, n))
        out.events.append(ElectionEvent("vote_sent", self.round, self.vote))
