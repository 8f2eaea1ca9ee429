"""Jepsen-style safety harness: histories, a linearizability checker, workloads and nemeses.

Run with ``python -m tests.safety.run``; see ``docs/safety.md``.
"""
