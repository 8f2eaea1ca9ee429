"""Jepsen-style safety harness: workloads and nemeses (histories and the linearizability checker live in zkops.labs).

Run with ``python -m tests.safety.run``; see ``docs/safety.md``.
"""
