"""The benchmarks' own tools: a quick run of each keeps them from rotting (numbers are not
asserted here; they belong in docs/performance.md)."""

from __future__ import annotations

from benchmarks import failover


def test_percentiles_and_histogram():
    xs = [0.05, 0.2, 0.3, 0.7, 3.0]
    s = failover.summary(xs)
    assert (s["p50"], s["max"], s["trials"]) == (0.3, 3.0, 5)
    assert failover.percentile(list(range(101)), 99) == 99
    assert failover.histogram(xs) == "<0.1s:1 <0.25s:1 <0.5s:1 <1s:1 <5s:1"


def test_failover_tail_runs_against_a_zkops_ensemble():
    results = failover.run(trials=1, sizes=[3], events=["kill-leader", "stop-member"], servers=["zkops"],
                           tick_ms=200, seed=3)
    runs = results["runs"]
    assert set(runs) == {"zkops/3/kill-leader", "zkops/3/stop-member"}
    for r in runs.values():
        assert r["trials"] == 1 and 0 < r["max"] < 120
    assert "| 3 voters | kill-leader | zkops |" in failover.report(results, ["zkops"])


def test_pipelined_generator_reports_throughput_and_tail():
    from benchmarks.run import Standalone, _prepare, log_syncs, measure

    s = Standalone("zkops")
    s.start()
    try:
        _prepare(s.address)
        for op in ("get", "set", "create"):
            before = log_syncs(s.address)
            m = measure([s.address], op, sessions=4, duration=0.5, depth=4)
            assert m.ops_per_s > 0 and 0 < m.p50_ms <= m.p99_ms
            after = log_syncs(s.address)
            assert before is not None and after is not None
            # reads leave the log to the sessions' own txns (4 opened, 4 closed); writes reach it,
            # one sync for several at most
            if op == "get":
                assert 0 < after - before <= 8
            else:
                assert 0 < after - before <= m.ops_per_s * 0.5 + 8
    finally:
        s.cleanup()
    assert log_syncs(s.address) is None  # a server that is gone says nothing


def test_mixed_ensemble_benchmark_runs_one_arrangement_against_the_baseline():
    from benchmarks import mixed

    results = mixed.run(["AAA", "ZAA"], duration=0.5, reps=1, depth=2, failover_trials=1, tick_ms=200)
    assert set(results["runs"]) == {"AAA", "ZAA"}
    for r in results["runs"].values():
        assert r["samples"]["set"]["ops_per_s"][0] > 0 and r["samples"]["get"]["ops_per_s"][0] > 0
        assert 0 < r["failover"]["max"] < 120
    table = mixed.report(results)
    assert "| ZAA (leader " in table and "| AAA (leader " in table


def test_memory_benchmark_fills_and_recovers_a_small_tree(tmp_path):
    import json

    from benchmarks import memory

    out = tmp_path / "mem.json"
    assert memory.main(["--fill", "300", "--recover", "2000", "--runs", "1", "--servers", "zkops",
                        "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    fill = results["fill"]["zkops"]
    assert fill["filled_kb"][0] > 0 and fill["idle_kb"][0] > 0
    rec = results["recover"]["zkops"]
    assert rec["znodes"] == 2000 and rec["seconds"][0] > 0 and rec["rss_mib"][0] > 0


def test_a_variant_runs_its_own_ensemble_paired_against_apache(monkeypatch, capsys):
    """``--variant`` reaches the 3-node figures: the variant's own ensemble (started with its
    environment) is measured in the same run as zkops's and Apache's, and reported against
    Apache with the paired repetitions' spread, as the standalone figures are."""
    import pytest

    from benchmarks import run
    from tests.support import refzk

    if not refzk.available():
        pytest.skip("Apache ZooKeeper is not installed")
    monkeypatch.setattr(run, "ENSEMBLE_WARM_UP_S", 0.3)
    monkeypatch.setitem(run.Standalone.variants, "alt", {"ZKOPS_EVENT_LOOP": "asyncio"})
    results: dict = {"standalone": {}, "ensemble": {}, "paired_ratios": {}}
    run.ensemble_figures(["zkops", "apache", "alt"], duration=0.5, depth=2, reps=2, results=results)
    assert set(results["ensemble"]) == {"zkops", "apache", "alt"}
    for kind in ("zkops", "alt"):
        prefix = "" if kind == "zkops" else "alt/"
        for op in ("set", "get"):
            assert len(results["paired_ratios"][f"{prefix}3node_{op}_16"]) == 2
            assert len(results["paired_ratios"][f"{prefix}3node_{op}_16_cpu_us"]) == 2
        assert results["ensemble"][kind]["set_16"] > 0 and 0 < results["ensemble"][kind]["failover_s"] < 120
    table = run.report(results, "alt")
    assert "| ensemble set_16 (higher is better) |" in table and "| ensemble get_16_cpu_us (lower is better) |" in table
    out = capsys.readouterr().out
    # its members ran with its environment (the first member's start-up line)
    assert "alt     3-node members' event loop: asyncio, request path: pure Python" in out, out
