"""The lab console (`zkops lab ui`): its pure parts, then its HTTP API over a real local lab."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.console_lab import (
    NOT_LINEARIZABLE,
    console_over_lab,
    ensemble,
    get,
    leader,
    poll,
    post,
    write_journal,
)
from zkops.labs import registers
from zkops.labs.actions import perform
from zkops.labs.console import histories, replay, view
from zkops.labs.console.access import Access, parse_networks
from zkops.labs.console.server import STATIC, _static
from zkops.labs.faultproxy import Faults
from zkops.labs.lab import LabError, NodeStatus

# ---------------------------------------------------------------- who may act


def test_faults_only_from_loopback_unless_allowed():
    a = Access()
    assert a.may_act("127.0.0.1") and a.may_act("::1") and a.may_act("::ffff:127.0.0.1")
    assert not a.may_act("10.1.2.3") and not a.may_act("not an address")
    b = Access(parse_networks("10.1.2.0/24, 192.168.7.7"))
    assert b.may_act("10.1.2.200") and b.may_act("192.168.7.7") and not b.may_act("10.1.3.1")
    assert Access(parse_networks("any")).may_act("203.0.113.9")
    assert not Access(local=()).may_act("127.0.0.1")  # how the tests play a student's machine
    with pytest.raises(ValueError):
        parse_networks("10.1.2.0/99")


def test_host_and_origin_checks_keep_other_sites_out():
    a = Access(names={"teacher-laptop"})
    for ok in ("127.0.0.1:8480", "localhost:8480", "[::1]:8480", "10.0.0.5", "TEACHER-LAPTOP:8480"):
        assert a.host_ok(ok), ok
    for bad in (None, "", "evil.example:8480", "rebind.attacker.test"):
        assert not a.host_ok(bad), bad
    assert a.origin_ok("http://127.0.0.1:8480", "127.0.0.1:8480")
    assert a.origin_ok(None, "127.0.0.1:8480")
    assert not a.origin_ok("http://evil.example", "127.0.0.1:8480")
    assert not a.origin_ok("null", "127.0.0.1:8480")


# ---------------------------------------------------------------- what the page draws


def test_the_view_draws_roles_and_faulty_links():
    status = [NodeStatus(1, "participant", "h:1", "running", "leader", 0x100000003, 2, 1),
              NodeStatus(2, "participant", "h:2", "running", "looking", None, None, None),
              NodeStatus(3, "participant", "h:3", "stopped", None, None, None, None),
              NodeStatus(4, "observer", "h:4", "paused", None, None, None, None)]
    v = view.ensemble(status, Faults({(1, 2), (2, 1), (1, 3)}, {(2, 3): 200, (3, 2): 200}))
    assert [n["role"] for n in v["nodes"]] == ["LEADING", "LOOKING", "STOPPED", "PAUSED"]
    assert v["nodes"][0]["epoch"] == 1 and v["nodes"][0]["zxid"] == "0x100000003"
    links = {(lk["a"], lk["b"]): lk for lk in v["links"]}
    assert links[(1, 2)]["cut_ab"] and links[(1, 2)]["cut_ba"]
    assert links[(1, 3)]["cut_ab"] and not links[(1, 3)]["cut_ba"]
    assert links[(2, 3)]["delay_ab"] == 200 and v["leader"] == 1


def _ev(ts: float, server: int, kind: str, **kw: object) -> dict:
    return {"ts": ts, "server": server, "kind": kind, "round": kw.pop("round", 1), **kw}


def _vote(leader: int, zxid: str = "0x0", epoch: int = 0) -> dict:
    return {"leader": leader, "zxid": zxid, "epoch": epoch}


def test_replay_explains_each_vote_change_and_the_decision():
    events = [
        _ev(10.00, 1, "state_changed", state="LOOKING"),
        _ev(10.01, 1, "vote_sent", vote=_vote(1, "0x100000005", 1)),
        _ev(10.00, 2, "state_changed", state="LOOKING"),
        _ev(10.01, 2, "vote_sent", vote=_vote(2, "0x100000004", 1)),
        _ev(10.02, 2, "vote_received", peer=1, state="LOOKING", vote=_vote(1, "0x100000005", 1)),
        _ev(10.03, 2, "vote_changed", vote=_vote(1, "0x100000005", 1)),
        _ev(10.04, 2, "vote_sent", vote=_vote(1, "0x100000005", 1)),
        _ev(10.05, 1, "vote_received", peer=2, state="LOOKING", vote=_vote(1, "0x100000005", 1)),
        _ev(10.40, 1, "leader_elected", peer=1, state="LEADING", vote=_vote(1, "0x100000005", 1), election_ms=400.0),
        _ev(10.40, 1, "state_changed", state="LEADING"),
        _ev(10.41, 2, "leader_elected", peer=1, state="FOLLOWING", vote=_vote(1, "0x100000005", 1),
            election_ms=410.0),
        # a later election: server 2 alone after 1 died, a myid tie-break with server 3
        _ev(30.00, 2, "state_changed", state="LOOKING", round=2),
        _ev(30.01, 2, "vote_sent", vote=_vote(2, "0x200000001", 2), round=2),
        _ev(30.02, 2, "vote_received", peer=3, state="LOOKING", vote=_vote(3, "0x200000001", 2), round=2),
        _ev(30.03, 2, "vote_changed", vote=_vote(3, "0x200000001", 2), round=2),
        _ev(30.30, 2, "leader_elected", peer=3, state="FOLLOWING", vote=_vote(3, "0x200000001", 2), round=2,
            election_ms=300.0),
    ]
    found = replay.elections(events, [1, 2, 3])
    assert [(e["number"], e["leader"], e["servers"]) for e in found] == [(1, 1, [1, 2]), (2, 3, [2])]
    first = found[0]["steps"]
    assert first[0]["t"] == 0 and first[0]["kind"] == "state_changed"
    changed = next(s for s in first if s["kind"] == "vote_changed")
    assert "server 1's vote" in changed["reason"] and "newer last zxid (0x100000005 > 0x100000004)" in changed["reason"]
    heard = next(s for s in first if s["kind"] == "vote_received" and s["server"] == 2)
    assert heard["message"] == {"from": 1, "to": [2]} and "better than its own" in heard["reason"]
    decided = next(s for s in first if s["kind"] == "leader_elected")
    assert "servers 1, 2 vote for 1" in decided["reason"] and "quorum" in decided["reason"]
    assert decided["after"]["1"]["state"] == "LEADING"
    assert first[-1]["after"]["3"]["state"] == "SILENT"  # server 3 took no part in this one
    second = found[1]["steps"]
    tie = next(s for s in second if s["kind"] == "vote_changed")
    assert "higher myid (3 > 2)" in tie["reason"]
    assert replay.elections(events, [1, 2, 3], last=1)[0]["number"] == 2


def test_replay_says_a_server_joins_an_established_leader_even_with_a_lower_myid():
    events = [
        _ev(50.0, 3, "state_changed", state="LOOKING", round=1),
        _ev(50.01, 3, "vote_sent", vote=_vote(3, "0x100000002", 1)),
        _ev(50.02, 3, "vote_received", peer=1, state="FOLLOWING", vote=_vote(2, "0x100000002", 1), round=4),
        _ev(50.03, 3, "vote_changed", vote=_vote(2, "0x100000002", 1), round=4),
        _ev(50.04, 3, "leader_elected", peer=2, state="FOLLOWING", vote=_vote(2, "0x100000002", 1), round=4),
    ]
    [election] = replay.elections(events, [1, 2, 3])
    changed = next(s for s in election["steps"] if s["kind"] == "vote_changed")
    assert "server 1 is already FOLLOWING with leader 2" in changed["reason"] and "higher myid" not in changed["reason"]


# ---------------------------------------------------------------- graded histories


def test_a_linearizable_history_passes_and_a_stale_read_is_marked():
    ok = [dict(e) for e in NOT_LINEARIZABLE]
    ok[3]["value"] = 1
    assert registers.problem({"register_history": ok, "register_initial": 0}) is None
    problem = registers.problem({"register_history": NOT_LINEARIZABLE, "register_initial": 0})
    assert problem is not None and "NOT linearizable" in problem
    assert registers.problem({}) == "no client operations were recorded"
    graded = histories.grade(NOT_LINEARIZABLE, 0)
    assert graded["valid"] is False
    assert [o["id"] for o in graded["ops"] if o["violation"]] == [2]  # the read of 0 after the write of 1


def test_histories_lists_the_journals_with_a_history(tmp_path: Path):
    write_journal(tmp_path, "06-kill-leader", NOT_LINEARIZABLE)
    (tmp_path / "journal-01-first-ensemble.json").write_text('{"lesson": "01-first-ensemble"}')
    (tmp_path / "journal-broken.json").write_text("{not json")
    found = histories.load(tmp_path)
    assert [h["lesson"] for h in found] == ["06-kill-leader"] and found[0]["valid"] is False
    assert histories.load(tmp_path / "missing") == []


def test_an_unknown_action_names_the_ones_there_are():
    with pytest.raises(LabError, match="kill, start, pause, resume, isolate, partition, oneway, slow, heal"):
        perform(None, "explode")  # type: ignore[arg-type]
    with pytest.raises(LabError, match="node must be a number"):
        perform(None, "kill", node="two")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the page's weight and origin


def test_the_page_is_small_and_asks_nothing_of_other_sites():
    total = 0
    for name, _ in STATIC.values():
        body = _static(name).decode()
        total += len(body.encode())
        urls = re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>)]*", body)
        assert [u for u in urls if not u.startswith("http://www.w3.org/2000/svg")] == [], name
        assert "@import" not in body and "cdn" not in body.lower()
    assert total < 300_000


# ---------------------------------------------------------------- over a real local lab


@pytest.mark.integration
def test_kill_partition_and_heal_through_the_api(tmp_path: Path):
    with console_over_lab(tmp_path) as (lab, console):
        url = console.url
        status, page = get(url)
        assert status == 200 and "zkops lab console" in page
        with urllib.request.urlopen(url, timeout=30) as r:
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        old = poll(lambda: leader(url), 60, "the console to draw a leader")
        assert get(url + "api/state")[1]["can_act"] is True
        status, reply = post(url + "api/action", {"action": "kill", "node": old})
        assert status == 200 and reply["message"] == f"node {old}: kill done"
        new = poll(lambda: (lead := leader(url)) not in (None, old) and lead, 60, "a new leader drawn")
        assert next(n for n in ensemble(url)["nodes"] if n["id"] == old)["role"] == "STOPPED"
        assert lab.faults().cut == set()
        status, reply = post(url + "api/action", {"action": "partition", "groups": f"{new}"})
        assert status == 200, reply
        cut = poll(lambda: [lk for lk in ensemble(url)["links"] if lk["cut_ab"] and lk["cut_ba"]], 30, "cut links")
        assert all(new in (lk["a"], lk["b"]) for lk in cut) and len(cut) == 2
        assert post(url + "api/action", {"action": "slow", "a": 1, "b": 2, "ms": 150})[0] == 200
        assert post(url + "api/action", {"action": "heal"})[0] == 200
        poll(lambda: not any(lk["cut_ab"] or lk["cut_ba"] or lk["delay_ab"] for lk in ensemble(url)["links"]),
             30, "healed links")
        status, reply = post(url + "api/action", {"action": "start", "node": old})
        assert status == 200, reply
        poll(lambda: next(n for n in ensemble(url)["nodes"] if n["id"] == old)["role"] == "FOLLOWING", 60,
             "the old leader back as a follower")
        status, reply = post(url + "api/action", {"action": "kill", "node": 99})
        assert status == 409 and "no node 99" in reply["error"]
        elections = poll(lambda: get(url + "api/elections")[1]["elections"], 30, "elections to replay")
        assert elections[-1]["steps"] and all("after" in s for s in elections[-1]["steps"])


@pytest.mark.integration
def test_requests_from_elsewhere_are_refused(tmp_path: Path):
    with console_over_lab(tmp_path, access=Access(local=())) as (lab, console):
        url = console.url
        assert get(url + "api/state", {"Host": "evil.example:8480"})[0] == 403
        assert get(url + "no/such/file")[0] == 404
        assert get(url + "../lab/lab.json")[0] == 404
        state = get(url + "api/state")[1]
        assert state["can_act"] is False
        status, reply = post(url + "api/action", {"action": "kill", "node": 1})
        assert status == 403 and "read-only" in reply["error"]
        assert all(lab.backend.running(n) for n in lab.state.nodes)
    with console_over_lab(tmp_path / "second") as (lab, console):
        url = console.url
        status, reply = post(url + "api/action", {"action": "kill", "node": 1}, {"Origin": "http://evil.example"})
        assert status == 403 and "Origin" in reply["error"]
        status, reply = post(url + "api/action", {"action": "kill", "node": 1}, {"X-Zkops-Console": ""})
        assert status == 403
        assert all(lab.backend.running(n) for n in lab.state.nodes)


@pytest.mark.integration
def test_events_stream_and_client_panel(tmp_path: Path):
    with console_over_lab(tmp_path) as (lab, console):
        url = console.url
        poll(lambda: leader(url), 60, "a leader")
        with urllib.request.urlopen(url + "api/events", timeout=30) as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = [stream.readline().decode() for _ in range(6)]
        assert first[0] == "event: hello\n" and "event: state\n" in first
        assert post(url + "api/writer", {"run": True})[0] == 200
        poll(lambda: (get(url + "api/state")[1]["clients"]["writer"] or {}).get("acked", 0) >= 5, 60, "acked writes")
        assert post(url + "api/watch", {"path": "/console"})[0] == 200  # it exists now: children are watched too
        lines = poll(lambda: [ln for ln in get(url + "api/state")[1]["clients"]["watch"]["lines"]
                              if "WatchedEvent type:CHILD" in ln], 60, "a child watch event")
        assert lines
        assert post(url + "api/writer", {"run": False})[0] == 200
        assert get(url + "api/state")[1]["clients"]["writer"] is None
        assert post(url + "api/watch", {"path": "relative"})[0] == 409


@pytest.mark.integration
def test_lab_ui_prints_its_url_and_serves_the_lab(tmp_path: Path):
    from zkops.labs.lab import Lab

    lab = Lab.up(tmp_path / "lab", nodes=1, tick_ms=200)
    proc = subprocess.Popen([sys.executable, "-m", "zkops.cli", "lab", "--dir", str(tmp_path / "lab"), "ui",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert m, line
        url = m.group(0)
        poll(lambda: [n["role"] for n in ensemble(url)["nodes"]] == ["STANDALONE"], 60, "the lab drawn")
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        lab.down()


def test_lab_ui_refuses_a_bad_network(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "zkops.cli", "lab", "--dir", str(tmp_path), "ui",
                           "--allow-faults-from", "10.0.0.0/99"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--allow-faults-from" in done.stdout


@pytest.mark.netns
@pytest.mark.integration
def test_the_console_over_a_netns_lab(tmp_path: Path):
    """The same API over namespaces and iptables: the console uses only the Lab API."""
    with console_over_lab(tmp_path, backend="netns") as (lab, console):
        url = console.url
        old = poll(lambda: leader(url), 60, "a leader drawn")
        assert ensemble(url)["lab"]["clients"].startswith("172.31.")
        assert post(url + "api/action", {"action": "kill", "node": old})[0] == 200
        new = poll(lambda: (lead := leader(url)) not in (None, old) and lead, 60, "a new leader drawn")
        assert post(url + "api/action", {"action": "isolate", "node": new})[0] == 200
        poll(lambda: sum(1 for lk in ensemble(url)["links"] if lk["cut_ab"] and lk["cut_ba"]) == 2, 30, "cut links")
        status, reply = post(url + "api/action", {"action": "slow", "a": 1, "b": 2, "ms": 100})
        assert status == 409 and "netem" in reply["error"]  # as `zkops lab slow` says on this backend
        assert post(url + "api/action", {"action": "heal"})[0] == 200
        assert post(url + "api/action", {"action": "start", "node": old})[0] == 200
        poll(lambda: all(n["role"] in ("LEADING", "FOLLOWING") for n in ensemble(url)["nodes"]), 60,
             "every server back in the ensemble")
