"""Classroom lessons: each module holds one lab's guide, script and checks."""

from __future__ import annotations

import importlib

from .engine import Lesson

_MODULES = (
    "l01_first_ensemble", "l02_znodes", "l03_watches", "l04_sessions", "l05_startup_election",
    "l06_kill_leader", "l07_partition", "l08_quorum_arithmetic", "l09_observers", "l10_recipes",
    "l11_two_phase_commit", "l12_migrate_from_java",
)


def all_lessons() -> list[Lesson]:
    return [importlib.import_module(f"{__name__}.{m}").LESSON for m in _MODULES]


def find(name: str) -> Lesson:
    """By number (``5``), slug (``startup-election``) or full name (``05-startup-election``)."""
    for lesson in all_lessons():
        if name in (str(lesson.number), f"{lesson.number:02d}", lesson.slug, lesson.name):
            return lesson
    known = ", ".join(lesson.name for lesson in all_lessons())
    raise KeyError(f"no lab called {name!r}; the labs are: {known}")
