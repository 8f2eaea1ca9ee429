"""The task model every zkops play runs on, whatever the connection.

A :class:`Task` has a name and a ``run(target) -> Result``; a :class:`Result` says ``ok``,
``changed``, ``failed`` or ``skipped``, with a message and, for a file, the unified diff of the
change. A :class:`Target` is one host as the play sees it: read and write its files, ask whether
its service runs, start and stop it (``deploy.LocalNode`` for ``connection: local``,
``remote.Node`` for ``connection: ssh``). A :class:`Play` runs each target's task list in order
(a failed task ends that host's list; the others go on), records every result in its
:class:`Recap` (the PLAY RECAP), prints diffs under ``--diff``, and then brings the services to
where the tasks left them: :meth:`Play.converge` starts what is not running and hands what
changed to :meth:`Play.rolling_restart`, the one restart routine of both connections (followers
first, the leader last, each back in the quorum before the next).
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ..server.fourletterclient import four_letter_or_empty
from ..server.servermode import ServerMode
from ..server.strenum import StrEnum
from .inventory import Host, Inventory
from .status import EnsembleStatus


class TaskStatus(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"


class TaskFailed(Exception):
    """A task could not do its job; the message names what and why (never a secret)."""


@dataclass(frozen=True)
class Result:
    """What one task did on one host."""

    status: TaskStatus
    message: str = ""
    diff: str = ""  # a unified diff of the file the task changed (or would change, under --check)


def ok(message: str = "") -> Result:
    return Result(TaskStatus.OK, message)


def changed(message: str = "", diff: str = "") -> Result:
    return Result(TaskStatus.CHANGED, message, diff)


def skipped(message: str = "") -> Result:
    return Result(TaskStatus.SKIPPED, message)


@dataclass
class Options:
    """How a play runs: the command line's switches."""

    check: bool = False
    diff: bool = False
    limit: set[str] | None = None
    verbose: bool = False
    accept_new_host_keys: bool = False
    known_hosts: Path | None = None
    wheel: Path | None = None
    rollback: bool = False
    join_timeout: float = 60.0
    log: Callable[[str], None] = print


class Target(Protocol):
    """One host as a play drives it."""

    host: Host

    def read(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        ...

    def write(self, path: str, content: str, mode: str) -> None:
        """Write the file whole (atomically where the host allows), with its mode."""
        ...

    def running(self) -> bool: ...

    def start(self) -> None:
        """Start the service; TaskFailed when it cannot."""
        ...

    def stop(self) -> None: ...

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's log, for a failure message."""
        ...

    def roll_back(self) -> str | None:
        """Point the host at its previous release; that release, or None when there is none."""
        ...


T_contra = TypeVar("T_contra", bound=Target, contravariant=True)


@dataclass(frozen=True)
class Task(Generic[T_contra]):
    """A named step of a host's play, for targets of type ``T_contra``. ``restarts``: a change made
    by this task takes effect only when the service restarts (files it reads, the release it runs)."""

    name: str
    run: Callable[[T_contra], Result]
    restarts: bool = False


def file_task(name: str, path: str, content: str, mode: str, check: bool, restarts: bool = True) -> Task[Target]:
    """Make ``path`` hold ``content``: ok when it does, else changed with the unified diff (and,
    unless ``check``, the file written)."""

    def run(target: Target) -> Result:
        old = target.read(path)
        if old == content:
            return ok(path)
        where = f"{target.host.name}:{path}"
        diff = "".join(difflib.unified_diff((old or "").splitlines(True), content.splitlines(True),
                                            f"{where} (before)", where))
        if check:
            return changed(path + " (check mode)", diff)
        target.write(path, content, mode)
        return changed(path, diff)

    return Task(name, run, restarts)


@dataclass
class TaskResult:
    """One line of the play's output: a task's result on a host."""

    host: str
    task: str
    status: str  # a TaskStatus
    message: str = ""
    diff: str = ""


@dataclass
class Recap:
    results: list[TaskResult] = field(default_factory=list)
    status: EnsembleStatus | None = None

    def add(self, host: str, task: str, status: str, message: str = "", diff: str = "") -> TaskResult:
        r = TaskResult(host, task, TaskStatus(status), message, diff)
        self.results.append(r)
        return r

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            c = out.setdefault(r.host, {s.value: 0 for s in TaskStatus})
            c[r.status] += 1
        return out

    @property
    def failed(self) -> bool:
        return (any(r.status == TaskStatus.FAILED for r in self.results)
                or (self.status is not None and not self.status.healthy))


# ---------------------------------------------------------------- the ensemble as the play sees it


def mode(h: Host) -> str | None:
    """The node's ``Mode:`` as ``srvr`` says it, or None when it does not serve."""
    for line in four_letter_or_empty(h.address, h.client_port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


SERVING = (ServerMode.LEADER, ServerMode.FOLLOWER, ServerMode.OBSERVER, ServerMode.STANDALONE)


def wait_joined(target: Target, timeout: float) -> None:
    """Until the node serves (it is synced with the leader, or alone); TaskFailed with its log's
    last lines when it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mode(target.host) in SERVING:
            return
        time.sleep(0.3)
    raise TaskFailed(f"did not join the ensemble within {timeout:.0f} s; last log lines:\n{target.log_tail()}")


def quorum_ok_without(inv: Inventory, name: str) -> bool:
    """Would the voters still have a quorum while ``name`` is down?"""
    voters = [h for h in inv.hosts if h.role == "participant"]
    serving = [h for h in voters if h.name != name
               and mode(h) in (ServerMode.LEADER, ServerMode.FOLLOWER, ServerMode.STANDALONE)]
    return len(voters) == 1 or len(serving) > len(voters) // 2


# ---------------------------------------------------------------- the service tasks


def start_task(target: Target) -> Result:
    target.start()
    return changed("started")


def start_unless_running(target: Target) -> Result:
    return ok("running") if target.running() else start_task(target)


def stop_task(target: Target) -> Result:
    if not target.running():
        return ok("not running")
    target.stop()
    return changed("stopped")


def join_task(timeout: float) -> Callable[[Target], Result]:
    def run(target: Target) -> Result:
        wait_joined(target, timeout)
        return ok(f"serving as {mode(target.host)}")

    return run


# ---------------------------------------------------------------- the play


T = TypeVar("T", bound=Target)


@dataclass
class Play:
    """Runs tasks on targets and records every result; one per command run."""

    inv: Inventory
    opts: Options
    recap: Recap = field(default_factory=Recap)
    to_restart: set[str] = field(default_factory=set)  # hosts where a ``restarts`` task changed something

    def hosts(self, connection: str) -> list[Host]:
        """The inventory's hosts of that connection, within ``--limit``."""
        return [h for h in self.inv.hosts if h.connection == connection
                and (self.opts.limit is None or h.name in self.opts.limit)]

    def record(self, target: Target, name: str, result: Result) -> None:
        self.recap.add(target.host.name, name, result.status, result.message, result.diff)
        if self.opts.diff and result.diff:
            self.opts.log(result.diff)

    def run(self, target: T, task: Task[T]) -> bool:
        """Run one task on one host and record it; False when it failed (the host's play stops)."""
        try:
            result = task.run(target)
        except TaskFailed as exc:
            result = Result(TaskStatus.FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - a network or OS error mid-task is that task's failure
            result = Result(TaskStatus.FAILED, f"{type(exc).__name__}: {exc}")
        self.record(target, task.name, result)
        if result.status == TaskStatus.CHANGED and task.restarts:
            self.to_restart.add(target.host.name)
        return result.status != TaskStatus.FAILED

    def run_tasks(self, targets: Iterable[T], tasks: Callable[[T], list[Task[T]]]) -> list[T]:
        """Each target's task list in order, a host at a time; the targets none of whose tasks failed."""
        done = []
        for target in targets:
            try:
                todo = tasks(target)
            except Exception as exc:  # noqa: BLE001 - rendering a host's files failed: its play stops
                self.record(target, "render files", Result(TaskStatus.FAILED, str(exc)))
                continue
            if all(self.run(target, task) for task in todo):
                done.append(target)
        return done

    def converge(self, targets: list[T]) -> None:
        """Services where the tasks left them: start what is not running (all of them first, then
        each must join: a lone node cannot), restart, rolling, what runs on changed files."""
        to_start, to_restart = [], []
        for t in targets:
            if not t.running():
                to_start.append(t)
            elif t.host.name in self.to_restart:
                to_restart.append(t)
            else:
                self.record(t, "service", ok("running, nothing changed"))
        started = [t for t in to_start if self.run(t, Task[T]("start service", start_task))]
        for t in started:
            self.run(t, Task("join the ensemble", join_task(self.opts.join_timeout)))
        self.rolling_restart(to_restart, reason="files changed")

    def rolling_restart(self, targets: list[T], reason: str) -> None:
        """One at a time, followers first and the leader last, each back in the quorum before the
        next; refuse a restart that would leave the voters without a quorum (after waiting ``join_timeout``
        for one), and stop at the first
        node that does not come back (with ``rollback``, after putting that node, and the ones not
        restarted, back on their previous release)."""
        name = f"restart ({reason})"
        failed = False
        for t in sorted(targets, key=lambda t: mode(t.host) == ServerMode.LEADER):
            if failed:
                note = "an earlier node did not come back; not restarted"
                previous = t.roll_back() if self.opts.rollback else None
                if previous:
                    note += f", current release put back to {previous}"
                self.record(t, name, skipped(note))
                continue
            if not self._quorum_without(t.host.name):
                self.record(t, name, Result(TaskStatus.FAILED, "refused: the others are not a quorum without this node"))
                failed = True
                continue
            if not self.run(t, Task(name, self._restart)):
                failed = True

    def _quorum_without(self, name: str) -> bool:
        """Whether the others are a quorum without ``name``, waiting up to ``join_timeout`` for one
        (an ensemble settling after the previous restart, a follower catching up)."""
        deadline = time.monotonic() + self.opts.join_timeout
        while not quorum_ok_without(self.inv, name):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        return True

    def _restart(self, target: Target) -> Result:
        target.stop()
        try:
            target.start()
            wait_joined(target, self.opts.join_timeout)
        except TaskFailed as exc:
            previous = target.roll_back() if self.opts.rollback else None
            if not previous:
                raise
            target.stop()
            target.start()
            wait_joined(target, self.opts.join_timeout)
            first_line = str(exc).splitlines()[0]
            raise TaskFailed(f"the new release did not come up ({first_line}); rolled back to {previous}") from None
        return changed(f"restarted, back as {mode(target.host)}")


__all__ = ["Options", "Play", "Recap", "Result", "Target", "Task", "TaskFailed", "TaskResult", "TaskStatus",
           "changed", "file_task", "join_task", "mode", "ok", "quorum_ok_without", "skipped", "start_task",
           "start_unless_running", "stop_task", "wait_joined"]
