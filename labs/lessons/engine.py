"""How a classroom lesson is written, played and checked.

A lesson is data (goal, background, steps, questions, instructor notes) plus small
functions: each step's ``run`` does what the step tells the student to do, against a
live ensemble, and writes what happened into a journal; each check reads the journal
and says what the student should have seen and did not. The same lesson object
renders the Markdown guide in ``docs/labs/``, so the guide and the script cannot drift.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Cluster(Protocol):
    """What a lesson needs from a lab backend (local processes, netns, Docker, VMs)."""

    def node_ids(self) -> list[int]: ...
    def observer_ids(self) -> list[int]: ...
    def connect_string(self, ids: list[int] | None = None) -> str: ...
    def address(self, node: int) -> tuple[str, int]: ...
    def start(self, node: int) -> None: ...
    def kill(self, node: int) -> None: ...
    def isolate(self, node: int) -> None: ...
    def heal(self) -> None: ...
    def modes(self) -> dict[int, str | None]: ...
    def zxids(self) -> dict[int, int | None]: ...
    def election_events(self) -> list[dict[str, Any]]: ...


ClusterFactory = Callable[..., Cluster]
"""Bring up ``nodes`` voters and ``observers`` observers; start them when the flag is true. A lesson
whose servers are not zkops (``Lesson.program``) passes ``program=`` too (lab 12: ``apache``)."""


class LessonFailed(Exception):
    """A step could not do what it teaches (the ensemble did not behave as the lesson says)."""


@dataclass
class Step:
    title: str
    text: str
    commands: tuple[str, ...] = ()
    run: Callable[[Context], None] | None = None


@dataclass
class Check:
    """One observation the student should have made; ``verify`` returns a problem or None."""

    observation: str
    verify: Callable[[dict[str, Any]], str | None]


@dataclass
class Lesson:
    number: int
    slug: str
    title: str
    minutes: int
    goal: str
    background: str
    steps: list[Step]
    questions: list[tuple[str, str]]  # (question, answer for the instructor)
    checks: list[Check]
    mistakes: list[str]
    prerequisites: tuple[str, ...] = ("zkops installed (`pip install zkops` or a clone with `scripts/run`)",)
    nodes: int = 3
    observers: int = 0
    start_all: bool = True
    timing: str = ""
    program: str = "zkops"  # what the lab's servers run at the start (lab 12: apache)

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.slug}"


class Printer(Protocol):
    def __call__(self, text: str = "", *, style: str | None = None) -> None: ...


def _plain_print(text: str = "", *, style: str | None = None) -> None:
    print(text, flush=True)


@dataclass
class Context:
    """What a step's ``run`` gets: the cluster, clients it can open, and the journal."""

    cluster: Cluster
    make_cluster: ClusterFactory
    say: Printer = _plain_print
    journal: dict[str, Any] = field(default_factory=dict)
    _clients: list[Any] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def note(self, key: str, value: Any) -> Any:
        """Record an observation for ``check`` (and show it to the student)."""
        self.journal[key] = value
        self.say(f"  observed {key}: {value}", style="cyan")
        return value

    def client(self, ids: list[int] | None = None, timeout: float = 10.0, **kwargs: Any) -> Any:
        """A started kazoo client on the given nodes (all by default), closed after the lesson."""
        from kazoo.client import KazooClient

        options: dict[str, Any] = {"connection_retry": {"max_tries": -1, "delay": 0.1, "max_delay": 1},
                                   "command_retry": {"max_tries": -1, "delay": 0.1, "max_delay": 1}}
        options.update(kwargs)
        c = KazooClient(hosts=self.cluster.connect_string(ids), timeout=timeout, **options)
        c.start(timeout=30)
        self._clients.append(c)
        return c

    def on_close(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` (a writer's, a watcher's) when the lesson ends, even when a step failed."""
        self._cleanups.append(stop)

    def close_clients(self) -> None:
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception:  # noqa: BLE001 - a thread stopping against a dead ensemble
                pass
        for c in self._clients:
            try:
                c.stop()
                c.close()
            except Exception:  # noqa: BLE001 - a client of a dead ensemble may fail to close
                pass
        self._clients.clear()

    def recreate(self, nodes: int, observers: int = 0, start: bool = True) -> Cluster:
        """Replace the lesson's ensemble with one of another shape (quorum arithmetic)."""
        self.close_clients()
        down = getattr(self.cluster, "down", None)
        if down is not None:
            down()
        self.cluster = self.make_cluster(nodes, observers, start)
        return self.cluster

    def leader(self, timeout: float = 30.0, among: list[int] | None = None) -> int:
        """Wait until exactly one leader is serving (among ``among``) and return its id."""

        def one_leader() -> int | None:
            modes = self.cluster.modes()
            ids = among or list(modes)
            leaders = [i for i in ids if modes.get(i) == "leader"]
            if len(leaders) != 1:
                return None
            voters = [i for i in ids if i not in self.cluster.observer_ids()]
            quorum = len(self.cluster.node_ids()) - len(self.cluster.observer_ids())
            if sum(1 for i in voters if modes.get(i) in ("leader", "follower")) <= quorum // 2:
                return None
            return leaders[0]

        return wait_for(one_leader, timeout, "one leader with a quorum of followers")

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        self.note(key, round(time.monotonic() - t0, 3))


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise LessonFailed(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


def predicted_leader(zxids: Mapping[int, int | None]) -> int:
    """Fast leader election's choice among live voters: highest zxid, then highest myid."""
    live = {i: z for i, z in zxids.items() if z is not None}
    return max(live, key=lambda i: (live[i], i))


# ---------------------------------------------------------------- playing and checking


def journal_path(state_dir: Path, lesson: Lesson) -> Path:
    return state_dir / f"journal-{lesson.name}.json"


def play(lesson: Lesson, make_cluster: ClusterFactory, *, auto: bool, state_dir: Path,
         say: Printer = _plain_print, pause: Callable[[str], object] | None = None,
         keep: bool = False) -> dict[str, Any]:
    """Bring up the lesson's ensemble, run each step (waiting for the student unless
    ``auto``), save the journal and return it. The ensemble is torn down unless ``keep``."""
    say(f"Lab {lesson.number}: {lesson.title}", style="bold")
    say(lesson.goal)
    extra = {"program": lesson.program} if lesson.program != "zkops" else {}
    cluster = make_cluster(lesson.nodes, lesson.observers, lesson.start_all, **extra)
    ctx = Context(cluster=cluster, make_cluster=make_cluster, say=say)
    ctx.journal["lesson"] = lesson.name
    ctx.journal["started"] = time.time()
    try:
        if lesson.start_all:
            ctx.leader(timeout=60)
        for n, step in enumerate(lesson.steps, 1):
            say()
            say(f"Step {n}. {step.title}", style="bold")
            say(step.text)
            for cmd in step.commands:
                say(f"  $ {cmd}", style="green")
            if not auto and pause is not None:
                pause("press Enter to do this step ")
            if step.run is not None:
                step.run(ctx)
        ctx.journal["completed"] = True
    except LessonFailed as exc:
        ctx.journal["completed"] = False
        ctx.journal["failure"] = str(exc)
        say(f"the ensemble did not do what this step teaches: {exc}", style="red")
    finally:
        ctx.close_clients()
        state_dir.mkdir(parents=True, exist_ok=True)
        journal_path(state_dir, lesson).write_text(json.dumps(ctx.journal, indent=2, default=str))
        if not keep:
            down = getattr(ctx.cluster, "down", None)
            if down is not None:
                down()
    return ctx.journal


def check(lesson: Lesson, state_dir: Path) -> list[tuple[str, str | None]]:
    """Each observation with the problem found (None when it was seen as it should be)."""
    path = journal_path(state_dir, lesson)
    if not path.exists():
        return [("the lab was played", f"no journal at {path}: run `zkops lab run {lesson.name}` first")]
    journal = json.loads(path.read_text())
    results: list[tuple[str, str | None]] = [
        ("every step completed", None if journal.get("completed") else journal.get("failure", "not finished"))]
    for c in lesson.checks:
        try:
            problem = c.verify(journal)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"not observed ({type(exc).__name__}: {exc})"
        results.append((c.observation, problem))
    return results
