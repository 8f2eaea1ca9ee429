"""Safety: the linearizability checker itself, a short Jepsen-style run on the netns lab, and fuzzed
bytes on the client, election and quorum ports.

The checker is tested first because a checker that accepts everything proves nothing: known bad
histories must be rejected, and histories of a simulated atomic register must always pass.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient

from zkops.labs.history import Event, History, pair
from zkops.labs.linearizability import check_history, check_operations

# ---------------------------------------------------------------- checker: hand-written histories


def hist(*ops: tuple[Any, ...]) -> list[Event]:
    """Build a history from ``(process, f, value, kind, invoke_t, complete_t)``; ``complete_t`` None
    leaves the op open (info). For reads, ``value`` is what was read."""
    points = []
    for p, f, value, kind, t0, t1 in ops:
        points.append((t0, 0, p, "invoke", f, None if f == "read" else value))
        if t1 is not None:
            points.append((t1, 1, p, kind, f, value))
    points.sort(key=lambda x: (x[0], x[1]))
    return [Event(i, p, kind, f, "x", value, t) for i, (t, _o, p, kind, f, value) in enumerate(points)]


def valid(events: list[Event], initial: Any = 0) -> bool | None:
    return check_history(events, initial)["x"].valid if events else True


def test_sequential_write_then_read_is_linearizable():
    assert valid(hist((1, "write", 1, "ok", 0, 1), (2, "read", 1, "ok", 2, 3)))


def test_stale_read_after_acknowledged_write_is_not():
    r = check_history(hist((1, "write", 1, "ok", 0, 1), (2, "read", 0, "ok", 2, 3)), 0)["x"]
    assert r.valid is False
    assert r.counterexample and r.counterexample["failing_op"]["f"] == "read"
    assert "cannot be placed" in r.describe()


def test_read_concurrent_with_write_may_see_either_value():
    for seen in (0, 1):
        assert valid(hist((1, "write", 1, "ok", 0, 10), (2, "read", seen, "ok", 1, 2)))


def test_reads_cannot_go_back_in_time():
    # a write overlaps two reads that do not overlap each other: new then old is impossible
    assert not valid(hist((1, "write", 1, "ok", 0, 10), (2, "read", 1, "ok", 1, 2),
                          (3, "read", 0, "ok", 3, 4)))
    assert valid(hist((1, "write", 1, "ok", 0, 10), (2, "read", 0, "ok", 1, 2), (3, "read", 1, "ok", 3, 4)))


def test_value_never_written_is_rejected():
    assert not valid(hist((1, "write", 1, "ok", 0, 1), (2, "read", 7, "ok", 2, 3)))


def test_info_write_may_take_effect_late_or_never():
    # outcome unknown: later reads may see it, however late ...
    assert valid(hist((1, "write", 1, "info", 0, 1), (2, "read", 0, "ok", 2, 3),
                      (2, "read", 1, "ok", 50, 51)))
    # ... or never
    assert valid(hist((1, "write", 1, "info", 0, None), (2, "read", 0, "ok", 2, 3),
                      (2, "read", 0, "ok", 5, 6)))
    # but once seen it stays (no other write could bring 0 back)
    assert not valid(hist((1, "write", 1, "info", 0, None), (2, "read", 1, "ok", 2, 3),
                          (3, "read", 0, "ok", 5, 6)))
    # and it cannot be seen before it was invoked
    assert not valid(hist((2, "read", 1, "ok", 0, 1), (1, "write", 1, "info", 2, None)))


def test_failed_write_did_not_happen():
    assert not valid(hist((1, "write", 1, "fail", 0, 1), (2, "read", 1, "ok", 2, 3)))
    assert valid(hist((1, "write", 1, "fail", 0, 1), (2, "read", 0, "ok", 2, 3)))


def test_concurrent_cas_only_one_can_win():
    both = hist((1, "cas", [0, 1], "ok", 0, 5), (2, "cas", [0, 2], "ok", 1, 6))
    assert not valid(both)
    one = hist((1, "cas", [0, 1], "ok", 0, 5), (2, "cas", [0, 2], "fail", 1, 6), (3, "read", 1, "ok", 7, 8))
    assert valid(one)
    # a chain: 0 -> 1 -> 2 in either overlap order, ending at 2
    chain = hist((1, "cas", [1, 2], "ok", 0, 10), (2, "cas", [0, 1], "ok", 1, 9),
                 (3, "read", 2, "ok", 11, 12))
    assert valid(chain)
    # a CAS that succeeded from a value nobody could have written is impossible
    assert not valid(hist((1, "cas", [5, 6], "ok", 0, 1)))


def test_info_cas_may_explain_a_read():
    assert valid(hist((1, "cas", [0, 3], "info", 0, 1), (2, "read", 3, "ok", 4, 5)))
    assert not valid(hist((1, "cas", [9, 3], "info", 0, 1), (2, "read", 3, "ok", 4, 5)))


def test_history_pairs_and_round_trips_json(tmp_path: Path):
    h = History()
    a = h.invoke(1, "write", "k", 5)
    b = h.invoke(2, "read", "k")
    h.complete(b, "ok", 5)
    h.complete(a, "ok")
    h.invoke(3, "cas", "k", [5, 6])  # never completes: info
    path = tmp_path / "h.json"
    h.dump(path)
    ops = pair(History.load(path).events)
    assert [(o.process, o.f, o.kind, o.value) for o in ops] == [(1, "write", "ok", 5), (2, "read", "ok", 5),
                                                                  (3, "cas", "info", [5, 6])]
    assert check_history(h.snapshot(), 0)["k"].valid


# ---------------------------------------------------------------- checker: a simulated atomic register

op_spec = st.tuples(
    st.integers(0, 4),  # process
    st.sampled_from(["read", "write", "cas"]),
    st.integers(0, 5),  # idle time before the invoke
    st.integers(0, 6),  # invoke -> linearization point
    st.integers(0, 6),  # linearization point -> completion
    st.sampled_from(["ok", "ok", "ok", "ok", "info", "lost"]),  # lost: info that never took effect
    st.booleans(),  # for cas: expect the current value (succeeds) or a stale one
)


def simulate(specs: list[tuple[Any, ...]]) -> tuple[list[Event], list[tuple[int, float, float]]]:
    """An atomic register: each op takes effect at one instant between invoke and completion.
    Returns the history and, per ok read, (event index of its completion, invoke, complete)."""
    clock = {p: 0.0 for p in range(5)}
    planned = []
    for n, (p, f, idle, a, b, fate, fresh) in enumerate(specs):
        t0 = clock[p] + idle + 0.001 * n  # distinct times
        lin = t0 + a + 0.0001
        t1 = lin + b + 0.0001
        clock[p] = t1
        planned.append((lin, n, p, f, t0, t1, fate if f != "read" else "ok", fresh))
    state, serial = 0, 0
    done: list[tuple[float, int, int, str, str, Any, float, float]] = []
    for lin, n, p, f, t0, t1, fate, fresh in sorted(planned):
        serial += 1
        if f == "read":
            done.append((t0, n, p, f, "ok", state, t1, lin))
            continue
        v = 1000 + serial
        if f == "write":
            if fate != "lost":
                state = v
            done.append((t0, n, p, f, "info" if fate == "lost" else fate, v, t1, lin))
            continue
        expected = state if fresh else -5
        won = fate != "lost" and expected == state
        if won:
            state = v
        kind = fate if fate != "ok" else ("ok" if won else "fail")
        if fate == "lost":
            kind = "info"
        done.append((t0, n, p, f, kind, [expected, v], t1, lin))
    points = []
    for t0, n, _p, f, kind, value, t1, _lin in done:
        proc = n  # every op its own logical process: info ops never block later ones
        points.append((t0, proc, "invoke", f, None if f == "read" else value))
        points.append((t1 if kind != "info" else t1 + 1e6, proc, kind, f, value))
    points.sort(key=lambda x: x[0])
    events = [Event(i, proc, kind, f, "x", value, t) for i, (t, proc, kind, f, value) in enumerate(points)]
    reads = [(e.index, next(x.time for x in events if x.process == e.process and x.kind == "invoke"), e.time)
             for e in events if e.f == "read" and e.kind == "ok"]
    return events, reads


@settings(max_examples=300)
@given(st.lists(op_spec, min_size=1, max_size=40))
def test_atomic_register_histories_are_always_accepted(specs):
    events, _ = simulate(specs)
    r = check_history(events, 0)["x"]
    assert r.valid is True, r.describe()


@settings(max_examples=200)
@given(st.lists(op_spec, min_size=1, max_size=40), st.integers(0, 10_000), st.booleans())
def test_a_mutated_read_is_rejected(specs, which, future):
    events, reads = simulate(specs)
    if not reads:
        return
    idx, r_invoke, r_done = reads[which % len(reads)]
    bad = -1  # a value nobody wrote
    if future:  # or a value whose write began only after the read had returned
        later = [e.value for e in events if e.kind == "invoke" and e.f == "write" and e.time > r_done]
        if later:
            bad = later[0]
    events[idx] = Event(idx, events[idx].process, "ok", "read", "x", bad, events[idx].time)
    assert check_history(events, 0)["x"].valid is False


def test_checker_is_fast_enough_for_thousands_of_ops():
    import random

    rng = random.Random(3)
    specs = [(rng.randrange(5), rng.choice(["read", "write", "cas"]), rng.randrange(3), rng.randrange(4),
              rng.randrange(4), rng.choice(["ok"] * 20 + ["info"]), rng.random() < 0.7) for _ in range(3000)]
    events, _ = simulate(specs)
    t0 = time.monotonic()
    r = check_operations(pair(events), "x", 0)
    assert r.valid is True
    assert time.monotonic() - t0 < 20


# ---------------------------------------------------------------- a short real run under faults


@pytest.mark.netns
@pytest.mark.integration
def test_short_run_under_faults_passes_every_check(tmp_path: Path):
    from tests.safety.run import run

    if os.geteuid() != 0:
        pytest.fail("the netns backend needs root")
    report = run(seed=20261202, seconds=45, nodes=3, out=tmp_path / "out", say=lambda text: None)
    assert report.counts.get("read-ok", 0) > 100 and report.counts.get("write-ok", 0) > 100, report.text()
    assert not report.problems, report.text()


# ---------------------------------------------------------------- fuzzed bytes on the client port

CONNECT = struct.pack(">iqiqi", 0, 0, 4000, 0, 16) + b"\0" * 16 + b"\0"  # 45-byte ConnectRequest
OPCODES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 100, 101, 102, 103, 104,
           105, 106, 107, -11, -10, -8, -2, -1, 0, 999]


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def blast(host: str, port: int, payload: bytes, linger: float = 0.2) -> None:
    """Send, read whatever comes back for a moment, close. The server may answer or hang up."""
    with socket.create_connection((host, port), timeout=2) as s:
        try:
            s.sendall(payload)
            s.settimeout(linger)
            while s.recv(65536):
                pass
        except OSError:
            pass


def ruok(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(3)
        s.sendall(b"ruok")
        return s.recv(16).decode(errors="replace")


def served_by_kazoo(address: str, path: str) -> None:
    zk = KazooClient(hosts=address, timeout=10)
    zk.start(timeout=15)
    try:
        zk.ensure_path("/fuzz")
        zk.create(path, b"after-fuzz")
        assert zk.get(path)[0] == b"after-fuzz"
    finally:
        zk.stop()
        zk.close()


client_payloads = st.one_of(
    st.binary(min_size=0, max_size=400),  # random bytes
    st.lists(st.binary(max_size=120), min_size=1, max_size=5).map(lambda bs: b"".join(frame(b) for b in bs)),
    st.integers(0, len(CONNECT) + 3).map(lambda k: frame(CONNECT)[:k]),  # a connect request cut short
    st.tuples(st.integers(0, len(CONNECT) - 1), st.binary(max_size=8)).map(  # length says more than comes
        lambda t: struct.pack(">i", len(CONNECT)) + CONNECT[:t[0]] + t[1]),
    st.lists(st.tuples(st.integers(-5, 1 << 20), st.sampled_from(OPCODES), st.binary(max_size=80)),
             min_size=1, max_size=6).map(  # a good handshake, then requests with garbage bodies
        lambda reqs: frame(CONNECT) + b"".join(frame(struct.pack(">ii", x, op) + b) for x, op, b in reqs)),
)


def test_fuzzed_client_port_never_crashes_or_hangs_the_server():
    from tests.support.ourzk import InProcessServer

    with InProcessServer() as s:
        host, port = s.address.split(":")

        @settings(max_examples=250)
        @given(client_payloads)
        def one(payload: bytes) -> None:
            blast(host, int(port), payload)
            assert ruok(host, int(port)) == "imok"
            assert s.thread.is_alive()

        one()
        served_by_kazoo(s.address, "/fuzz/client-port")


# ---------------------------------------------------------------- fuzzed bytes on the peer ports

INITIAL = struct.Struct(">qqi")  # Apache's election handshake: protocol version, sid, address length


def _framed(frames: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(b)) + b for b in frames)


def _notification(state: int, leader: int, zxid: int, rnd: int, epoch: int, config: bytes) -> bytes:
    return struct.pack(">iqqqqii", state, leader, zxid, rnd, epoch, 2, len(config)) + config


_sids = st.sampled_from([1, 2, 3, 42, -1, 0, (1 << 63) - 1])
_addresses = st.sampled_from([b"127.0.0.1:1", b"nonsense", b"", b"h:0", b"[::1]:9", b"x" * 3000])
_configs = st.sampled_from([b"", b"version=ffffffffff", b"\xff\xfe", b"server.1=127.0.0.1:1:2:participant\nversion=fff",
                            b"server.9=10.0.0.9:1:2:observer\nversion=7fffffffffff"])
election_payloads = st.one_of(
    st.binary(max_size=300),
    # a well-formed handshake claiming a member (or a stranger), then notifications that may be
    # forged (any state, a membership nobody agreed to) or not notifications at all
    st.tuples(st.sampled_from([-65536, -65535, -65534, 7]), _sids, _addresses,
              st.lists(st.one_of(
                  st.builds(_notification, st.integers(-1, 5), _sids, st.integers(-1, 1 << 40),
                            st.integers(0, 1 << 40), st.integers(-1, 1 << 20), _configs),
                  st.binary(max_size=80)), max_size=4)).map(
        lambda t: INITIAL.pack(t[0], t[1], len(t[2])) + t[2] + _framed(t[3])),
    # a handshake, then a frame length out of range
    st.tuples(_sids, st.sampled_from([0, -5, 1 << 20, 0x7FFFFFFF])).map(
        lambda t: INITIAL.pack(-65536, t[0], 11) + b"127.0.0.1:1" + struct.pack(">i", t[1])),
)


def _packet(ptype: int, zxid: int, data: bytes | None, auth: int) -> bytes:
    body = struct.pack(">iqi", ptype, zxid, -1 if data is None else len(data)) + (data or b"")
    return body + struct.pack(">i", auth)


quorum_payloads = st.one_of(
    st.binary(max_size=300),
    # FOLLOWERINFO/OBSERVERINFO with a LearnerInfo that claims a member or a stranger, then
    # packets of any type, bodies that do not parse, or lengths out of range
    st.tuples(st.sampled_from([11, 16, 3, 99]), _sids, st.lists(st.tuples(
        st.integers(-1, 25), st.integers(-1, 1 << 40), st.none() | st.binary(max_size=40),
        st.sampled_from([-1, 0, 1 << 20])), max_size=4)).map(
        lambda t: _packet(t[0], 1 << 32, struct.pack(">qiq", t[1], 0x10000, 0), -1)
        + b"".join(_packet(*p) for p in t[2])),
    st.integers(-(1 << 31), (1 << 31) - 1).map(lambda n: struct.pack(">iqi", 2, 0, n)),
)


def _config_of(address: str) -> bytes:
    zk = KazooClient(hosts=address, timeout=10)
    zk.start(15)
    try:
        return zk.get("/zookeeper/config")[0]
    finally:
        zk.stop()
        zk.close()


@pytest.mark.integration
def test_fuzzed_election_and_quorum_ports_keep_one_leader_serving_writes():
    from tests.support.ensemble import Ensemble

    with Ensemble(3) as ens:
        before = ens.wait_ready()

        configs = {i: _config_of(ens.address(i)) for i in ens.ids}

        @settings(max_examples=60, deadline=None)
        @given(st.sampled_from(ens.ids), election_payloads)
        def election(node: int, payload: bytes) -> None:
            blast("127.0.0.1", ens.ports[node][2], payload, linger=0.05)

        @settings(max_examples=60, deadline=None)
        @given(st.sampled_from(ens.ids), quorum_payloads)
        def quorum(node: int, payload: bytes) -> None:
            blast("127.0.0.1", ens.ports[node][1], payload, linger=0.05)

        election()
        quorum()
        assert all(p.poll() is None for p in ens.procs.values()), ens.log_tail()
        after = ens.wait_ready(timeout=60)
        modes = ens.modes()
        assert list(modes.values()).count("leader") == 1, modes
        served_by_kazoo(ens.connect_string, "/fuzz/peer-ports")
        assert after == before, "garbage on the peer ports should not cost the leader its role"
        # no forged notification changed anyone's membership
        assert {i: _config_of(ens.address(i)) for i in ens.ids} == configs


# ---------------------------------------------------------------- the bug the harness found (fixed)


@pytest.mark.integration
def test_a_write_from_an_expired_session_leaves_no_orphan_ephemeral():
    """Found by tests/safety (docs/safety.md, Findings): the leader applied a create forwarded late
    from a session that had expired meanwhile, leaving an ephemeral nothing would delete."""
    from tests.support.ensemble import Ensemble

    with Ensemble(3) as ens:
        leader = ens.wait_ready()
        follower = next(i for i in ens.ids if i != leader)
        zk = KazooClient(hosts=ens.address(follower), timeout=2.0, command_retry=None)
        zk.start(15)
        admin = KazooClient(hosts=ens.address(leader), timeout=10)
        admin.start(15)
        try:
            sid = zk.client_id[0]
            zk.ensure_path("/orphan")
            ens.pause(follower)  # the create waits in the follower's socket buffer ...
            pending = zk.create_async("/orphan/eph", b"", ephemeral=True)
            time.sleep(6)  # ... while the leader expires the session (timeout 2 s)
            ens.resume(follower)
            try:
                pending.get(timeout=10)
            except Exception:  # noqa: BLE001 - ConnectionLoss / SessionExpired: the client was told nothing
                pass
            time.sleep(3 * 2.0)
            if zk.client_id is not None and zk.client_id[0] == sid:
                raise RuntimeError("the session did not expire: this test proves nothing")
            admin.sync("/orphan")
            stat = admin.exists("/orphan/eph")
            owner = None if stat is None else stat.ephemeralOwner
            assert stat is None, f"ephemeral of dead session {sid:#x} exists (owner {owner:#x})"
        finally:
            zk.stop()
            zk.close()
            admin.stop()
            admin.close()
