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
    from benchmarks.run import Standalone, _prepare, measure

    s = Standalone("zkops")
    s.start()
    try:
        _prepare(s.address)
        for op in ("get", "set", "create"):
            m = measure([s.address], op, sessions=4, duration=0.5, depth=4)
            assert m.ops_per_s > 0 and 0 < m.p50_ms <= m.p99_ms
    finally:
        s.cleanup()


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
