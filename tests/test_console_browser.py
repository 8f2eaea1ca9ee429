"""The lab console in a real browser: headless Chromium (Debian's) over a running local lab.

Each test opens the page against its own lab, does what a teacher would do (kill the leader,
partition by dragging, replay the election, look at a graded history) and keeps a screenshot
in build/test-artifacts/console/ (the docs' pictures come from there).
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import browser
from tests.support.console_lab import NOT_LINEARIZABLE, console_over_lab, leader, poll, write_journal
from zkops.labs.console.access import Access

pytestmark = [pytest.mark.browser, pytest.mark.integration]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def chromium():
    missing = browser.available()
    if missing:
        pytest.fail(missing)
    with browser.chromium() as b:
        yield b


@pytest.fixture
def page(chromium: Any):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    try:
        yield p
    finally:
        context.close()


def _open(page: Any, url: str) -> browser.PageLog:
    log = browser.PageLog(page)
    page.goto(url)
    page.wait_for_selector("#link-state.live")
    page.wait_for_selector('.node[data-role="LEADING"]')
    return log


def test_the_page_renders_without_errors_weighs_little_and_asks_only_the_console(tmp_path: Path, page: Any):
    with console_over_lab(tmp_path) as (lab, console):
        log = _open(page, console.url)
        page.wait_for_selector("#step-log li")
        assert page.locator(".node").count() == 3 and page.locator(".link").count() == 3
        assert page.inner_text("#access") == "faults allowed"
        page.screenshot(path=str(browser.artifacts() / "console-ensemble.png"))
        assert log.problems() == [] and log.failed == []
        assert log.requests and all(u.startswith(console.url) for u in log.requests), log.requests
        weight = 0
        for u in set(log.requests):
            if u.endswith("/api/events"):
                continue
            with urllib.request.urlopen(u, timeout=30) as r:
                weight += len(r.read())
        assert weight < 300_000, weight


def test_kill_the_leader_from_the_page_and_see_the_new_one_drawn(tmp_path: Path, page: Any):
    with console_over_lab(tmp_path) as (lab, console):
        log = _open(page, console.url)
        old = int(page.get_attribute('.node[data-role="LEADING"]', "data-id"))
        page.click(f'.node[data-id="{old}"] circle')
        page.click('#node-actions button[data-action="kill"]')
        t0 = time.monotonic()
        page.wait_for_selector(f'.node[data-role="LEADING"]:not([data-id="{old}"])')
        took = time.monotonic() - t0
        page.wait_for_selector(f'.node[data-id="{old}"][data-role="STOPPED"]')
        new = int(page.get_attribute('.node[data-role="LEADING"]', "data-id"))
        assert new != old and leader(console.url) == new
        print(f"click on kill -> new leader drawn: {took:.3f} s")
        page.screenshot(path=str(browser.artifacts() / "console-after-kill.png"))
        page.click('#node-actions button[data-action="start"]')
        page.wait_for_selector(f'.node[data-id="{old}"][data-role="FOLLOWING"]')
        assert log.problems() == []


def test_partition_by_dragging_servers_into_groups(tmp_path: Path, page: Any):
    with console_over_lab(tmp_path) as (lab, console):
        log = _open(page, console.url)
        lead = int(page.get_attribute('.node[data-role="LEADING"]', "data-id"))
        page.locator(f'.chip[data-id="{lead}"]').drag_to(page.locator('.zone[data-group="1"]'))
        assert page.locator('.zone[data-group="1"] .chip').count() == 1
        page.click("#apply-partition")
        poll(lambda: page.locator('.link[data-state="cut"]').count() == 2, 60, "two cut links drawn")
        cut = [(int(g.get_attribute("data-a")), int(g.get_attribute("data-b")))
               for g in page.locator('.link[data-state="cut"]').all()]
        assert all(lead in pair for pair in cut)
        lab.reload()  # the console wrote the faults into lab.json
        assert {tuple(c) for c in lab.faults().cut} == {(lead, o) for o in (1, 2, 3) if o != lead} | \
            {(o, lead) for o in (1, 2, 3) if o != lead}
        page.wait_for_selector(f'.node[data-role="LEADING"]:not([data-id="{lead}"])')  # the majority elects
        page.screenshot(path=str(browser.artifacts() / "console-partition.png"))
        page.click("#heal")
        poll(lambda: page.locator('.link[data-state="cut"]').count() == 0, 60, "healed links drawn")
        assert log.problems() == []


def test_replay_the_last_election_step_by_step(tmp_path: Path, page: Any):
    with console_over_lab(tmp_path) as (lab, console):
        log = _open(page, console.url)
        page.wait_for_selector("#step-log li")
        page.click("#replay-first")
        assert page.inner_text("#step-index").startswith("step 1 / ")
        total = int(page.inner_text("#step-index").split("/ ")[1])
        kinds = []
        for i in range(total):
            kinds.append(page.get_attribute("#step-text", "data-kind"))
            if kinds[-1] == "vote_changed":
                reason = page.inner_text("#step-reason")
                assert any(why in reason for why in ("beats its own", "newer round", "is already", "adopts")), reason
                page.screenshot(path=str(browser.artifacts() / "console-replay.png"))
            if kinds[-1] == "leader_elected":
                assert "a quorum" in page.inner_text("#step-reason")
                break
            page.click("#replay-step")
            page.locator("#step-index", has_text=f"step {i + 2} / ").wait_for()  # (the page's CSP allows no eval)
        assert "vote_sent" in kinds and "leader_elected" in kinds
        assert page.locator("#replay .replay-node").count() == 3
        page.click("#replay-back")
        page.click("#replay-play")
        page.locator('body[data-replay="playing"]').wait_for(state="attached")
        page.locator('body[data-replay="paused"]').wait_for(state="attached")  # played to the end
        at, of = page.inner_text("#step-index").removeprefix("step ").split(" / ")
        assert at == of  # (late events of the same election may have added steps meanwhile)
        assert log.problems() == []


def test_a_graded_history_marks_the_violation(tmp_path: Path, page: Any):
    write_journal(tmp_path / "journals", "07-partition", NOT_LINEARIZABLE)
    with console_over_lab(tmp_path, access=Access(local=())) as (lab, console):
        log = _open(page, console.url)
        assert page.inner_text("#access") == "read-only"
        assert not page.locator('#node-actions button[data-action="kill"]').is_visible()
        page.click('.tab[data-tab="histories"]')
        page.wait_for_selector(".op.violation")
        assert "NOT linearizable" in page.inner_text("#history-verdict")
        assert page.locator(".op.violation").count() == 1 and page.locator(".op").count() == 3
        page.screenshot(path=str(browser.artifacts() / "console-violation.png"))
        assert log.problems() == []
