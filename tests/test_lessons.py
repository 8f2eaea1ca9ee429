"""Classroom lessons: the guides match the lessons, and checks grade what a run recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zkops.labs.lessons import all_lessons, find
from zkops.labs.lessons.engine import (
    Check,
    Lesson,
    LessonFailed,
    Step,
    check,
    journal_path,
    play,
    predicted_leader,
)
from zkops.labs.lessons.render import guide, index

DOCS = Path(__file__).resolve().parent.parent / "docs" / "labs"


def test_committed_guides_are_what_the_lessons_render():
    lessons = all_lessons()
    assert [lesson.number for lesson in lessons] == list(range(1, 13))
    for lesson in lessons:
        path = DOCS / f"{lesson.name}.md"
        assert path.read_text() == guide(lesson), f"{path} is stale: python -m zkops.labs.lessons.render docs/labs"
    assert (DOCS / "README.md").read_text() == index(lessons)


def test_every_lesson_has_the_parts_a_teacher_needs():
    for lesson in all_lessons():
        assert lesson.goal and lesson.background and lesson.mistakes and lesson.timing, lesson.name
        assert lesson.steps and all(s.run is not None or s.commands for s in lesson.steps), lesson.name
        assert len(lesson.questions) >= 2 and all(q and a for q, a in lesson.questions), lesson.name
        assert lesson.checks, lesson.name


@pytest.mark.parametrize("name, number", [("5", 5), ("05", 5), ("startup-election", 5),
                                          ("07-partition", 7)])
def test_find_by_number_slug_or_name(name: str, number: int):
    assert find(name).number == number


def test_find_unknown_lists_the_labs():
    with pytest.raises(KeyError, match="01-first-ensemble"):
        find("nope")


def test_predicted_leader_is_highest_zxid_then_myid():
    assert predicted_leader({1: 5, 2: 7, 3: 7}) == 3
    assert predicted_leader({1: 9, 2: 7, 3: 7}) == 1
    assert predicted_leader({1: None, 2: 0, 3: None}) == 2


class _FakeCluster:
    def __init__(self) -> None:
        self.downs = 0

    def down(self) -> None:
        self.downs += 1


def _lesson(run, verify) -> Lesson:  # noqa: ANN001
    return Lesson(number=99, slug="fake", title="Fake", minutes=1, goal="g", background="b",
                  steps=[Step("only", "do it", ("cmd",), run)], questions=[("q", "a")],
                  checks=[Check("x is 1", verify)], mistakes=["m"], start_all=False)


def test_play_writes_a_journal_that_check_grades(tmp_path: Path):
    cluster = _FakeCluster()
    lesson = _lesson(lambda ctx: ctx.note("x", 1), lambda j: None if j["x"] == 1 else f"x was {j['x']}")
    play(lesson, lambda n, o, s: cluster, auto=True, state_dir=tmp_path, say=lambda *a, **k: None)
    assert cluster.downs == 1, "the ensemble is torn down after the lab"
    assert check(lesson, tmp_path) == [("every step completed", None), ("x is 1", None)]
    journal_path(tmp_path, lesson).write_text(json.dumps({"completed": True, "x": 2}))
    assert check(lesson, tmp_path)[1] == ("x is 1", "x was 2")


def test_a_step_that_fails_is_reported_and_missing_observations_are_named(tmp_path: Path):
    def run(ctx):  # noqa: ANN001, ANN202
        raise LessonFailed("waited 30 s for one leader")

    lesson = _lesson(run, lambda j: None if j["x"] == 1 else "no")
    play(lesson, lambda n, o, s: _FakeCluster(), auto=True, state_dir=tmp_path, say=lambda *a, **k: None)
    results = dict(check(lesson, tmp_path))
    assert results["every step completed"] == "waited 30 s for one leader"
    assert "not observed" in results["x is 1"]


def test_check_before_run_says_what_to_do(tmp_path: Path):
    lesson = _lesson(None, lambda j: None)
    [(what, problem)] = check(lesson, tmp_path)
    assert "zkops lab run 99-fake" in problem


@pytest.mark.integration
@pytest.mark.parametrize("lesson", [lesson for lesson in all_lessons() if lesson.program == "zkops"],
                         ids=lambda lesson: lesson.name)
def test_every_lab_plays_and_its_observations_happen_on_the_local_backend(lesson: Lesson, tmp_path: Path):
    """What CI runs for each lab: `zkops lab run NAME --auto`, then `zkops lab check NAME` (lab 12, which
    starts from Apache ZooKeeper, has its own test in tests/test_lesson_migrate.py)."""
    from zkops.labs.lab import Lab

    def make_cluster(nodes: int, observers: int, start: bool) -> Lab:
        return Lab.up(tmp_path / "lab", nodes=nodes, observers=observers, start=start, tick_ms=200)

    lines: list[str] = []
    play(lesson, make_cluster, auto=True, state_dir=tmp_path / "journals",
         say=lambda text="", style=None: lines.append(text))
    assert not (tmp_path / "lab").exists(), "the lab's ensemble is torn down after playing"
    problems = [(what, p) for what, p in check(lesson, tmp_path / "journals") if p is not None]
    assert not problems, "\n".join(lines[-30:])


def test_lesson_6_finds_the_votes_after_the_kill_whatever_the_servers_clocks_say():
    """The election after the kill is what each server wrote after the events it had before
    the kill: a VM's clock seconds behind the host's must not hide its votes (seen in CI)."""
    from zkops.labs.lessons.l06_kill_leader import first_own_votes

    def vote(server: int, ts: float, leader: int, zxid: int) -> dict:
        return {"ts": ts, "server": server, "kind": "vote_sent", "round": 2,
                "vote": {"leader": leader, "zxid": hex(zxid)}}

    # server 2's clock is 40 s behind the host's (the kill happened at host time 100), server 3's is right
    old = [vote(2, 50.0, 2, 0x0), vote(3, 91.0, 3, 0x0), vote(2, 52.0, 3, 0x0)]
    after = [vote(2, 60.0, 3, 0x100000004),  # relays another's vote first: not its own
             vote(2, 60.5, 2, 0x100000005), vote(3, 120.0, 3, 0x100000004), vote(3, 121.0, 2, 0x100000005)]
    before = {2: 2, 3: 1}
    events = sorted(old + after, key=lambda e: e["ts"])  # as Lab.election_events gives them
    assert first_own_votes(events, before) == {2: 0x100000005, 3: 0x100000004}
    assert first_own_votes(old, before) == {}
