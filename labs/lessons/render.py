"""The Markdown guides in docs/labs/, rendered from the lessons themselves.

``python -m zkops.labs.lessons.render docs/labs`` rewrites them; a test fails when the
committed guides differ from what the lessons say.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import all_lessons
from .engine import Lesson

PROGRAM_NAMES = {"apache": "Apache ZooKeeper 3.8"}


def guide(lesson: Lesson) -> str:
    """A student guide followed by the instructor section."""
    shape = f"{lesson.nodes} servers" + (f" and {lesson.observers} observer(s)" if lesson.observers else "")
    if lesson.program != "zkops":
        shape += f", {PROGRAM_NAMES.get(lesson.program, lesson.program)} at the start (local backend)"
    out = [f"# Lab {lesson.number}: {lesson.title}", "",
           f"*About {lesson.minutes} minutes. Ensemble: {shape}.*", "",
           "## Goal", "", lesson.goal, "",
           "## Prerequisites", "", *[f"- {p}" for p in lesson.prerequisites], "",
           "## Background", "", " ".join(lesson.background.split("\n")), "",
           "## Steps", "",
           f"Play the whole lab with `zkops lab run {lesson.name}` (it narrates each step and waits for",
           f"Enter; `--auto` runs straight through), then `zkops lab check {lesson.name}`.", ""]
    for n, step in enumerate(lesson.steps, 1):
        out += [f"{n}. **{step.title}.** " + " ".join(step.text.split("\n"))]
        if step.commands:
            out += ["", "   ```sh", *[f"   {c}" for c in step.commands], "   ```"]
        out.append("")
    out += ["## What to observe", "", *[f"- {c.observation}" for c in lesson.checks], "",
            "## Questions", "", *[f"{i}. {q}" for i, (q, _) in enumerate(lesson.questions, 1)], "",
            "---", "", "## Instructor notes", "",
            f"**Timing.** {lesson.timing or f'{lesson.minutes} minutes.'}", "",
            "**Answers.**", "", *[f"{i}. {a}" for i, (_, a) in enumerate(lesson.questions, 1)], "",
            "**Common mistakes.**", "", *[f"- {m}" for m in lesson.mistakes], "",
            f"**Grading.** `zkops lab check {lesson.name}` reads the journal `zkops lab run` wrote and prints",
            "each observation as seen or not, with what was seen instead; it exits non-zero when one is",
            "missing.", ""]
    return "\n".join(out)


def index(lessons: list[Lesson]) -> str:
    rows = [f"| [{lesson.number}](./{lesson.name}.md) | {lesson.title} | {lesson.minutes} min | "
            f"{lesson.nodes}{f' + {lesson.observers} obs.' if lesson.observers else ''}"
            f"{f' ({PROGRAM_NAMES.get(lesson.program, lesson.program)})' if lesson.program != 'zkops' else ''} | "
            f"{'; '.join(lesson.prerequisites)} |" for lesson in lessons]
    return "\n".join([
        "# Classroom labs: the teacher's page", "",
        "Each lab is a lesson a student can follow alone and a teacher can grade, on any lab backend",
        "(`--backend local|netns|docker|vagrant`; local processes need no root). Every guide has the",
        "student part (goal, background, steps with the commands, what to observe, questions) and,",
        "after a rule, the instructor notes (timing, answers, common mistakes).", "",
        "```sh", "zkops lab list                 # the labs", "zkops lab run 06-kill-leader   # play one, step by step",
        "zkops lab run 06 --auto        # straight through (what CI does)",
        "zkops lab check 06             # grade: were the observations made?", "```", "",
        "| Lab | Title | Duration | Servers | Prerequisites |", "|---|---|---|---|---|", *rows, "",
        "On VMs (`--backend vagrant`), each lab also needs Vagrant with libvirt (or VirtualBox) and a box:",
        "build one once, without a box download, with `sudo zkops lab vagrant box`, and count about five",
        "minutes per `lab up` without KVM (QEMU's TCG) before the lab starts; see `docs/lab-platform.md`.", "",
        "Lab 12 starts from Apache ZooKeeper 3.8 servers (Java and Debian's `zookeeper` package; `zkops lab up",
        "--apache`) and moves them to zkops with `zkops migrate`: it runs on the local backend only.", "",
        "These pages are generated from the lessons in `labs/lessons/` "
        "(`python -m zkops.labs.lessons.render docs/labs`), so guide and script cannot disagree.", ""])


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    lessons = all_lessons()
    written = []
    for lesson in lessons:
        p = directory / f"{lesson.name}.md"
        p.write_text(guide(lesson))
        written.append(p)
    (directory / "README.md").write_text(index(lessons))
    return [*written, directory / "README.md"]


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/labs")):
        print(path)
