"""Whether this server's request path runs compiled: a ``ZKOPS_COMPILE=1`` build (setup.py,
docs/performance.md "The compiled build") ships these modules compiled with mypyc as extension
modules next to their ``.py`` sources, which Python then imports instead. Every other install
runs the ``.py`` sources (the same code, standard library only); so does this one for any
module whose extension is missing.
"""

from __future__ import annotations

import importlib.util

# compiled by a ZKOPS_COMPILE=1 build (setup.py reads these lists): the modules a client request
# passes through, from bytes in to the reply out (datatree's znodes stay pure: znode.py), with
# what a write also runs (the digest predictor, the txn codec, the txn log, the per-namespace byte
# counts, the request counters, the path rules and the quotas) and the snapshot's node records (a
# forked child encodes every znode at each snapshot), then those a write in an ensemble
# passes through: ZAB, the peer's core and the quorum port's shell and codec. What stays pure for
# mypyc's sake: every jute record (its class is built at import) lives in records.py, txncodec's
# TxnDigest and CreateTxnV0 too; txnlog's CorruptLogError subclasses RuntimeError, which mypyc
# does not compile, and lives in txnlogerror.py. tests/test_compiled.py checks that a standalone
# request runs no other module's Python code but znode's.
#
# Each group is one shared library (GROUPS: its name, its modules): a standalone server imports
# none of ENSEMBLE, so it maps none of their code (docs/performance.md, "Memory").
STANDALONE = ("connection", "zkserver", "core", "prep", "wire", "multicodec", "watches", "sessions", "acl",
              "datatree", "digest", "txncodec", "txnlog", "metrics", "stats", "paths", "quota", "snaprows")
ENSEMBLE = ("zab", "quorumpeer", "quorum", "quorumnet", "quorumwire")
MODULES = STANDALONE + ENSEMBLE
GROUPS = (("fast", STANDALONE), ("fast_ensemble", ENSEMBLE))


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` that an import here loads from an extension module (found
    without importing them)."""
    out = []
    for name in MODULES:
        spec = importlib.util.find_spec(f"{__package__}.{name}")
        origin = (spec.origin or "") if spec is not None else ""
        if origin and not origin.endswith(".py"):
            out.append(name)
    return out


def describe() -> str:
    """For the start-up log: ``compiled (mypyc: 22 of 22 modules)`` or ``pure Python``."""
    done = compiled_modules()
    if not done:
        return "pure Python"
    return f"compiled (mypyc: {len(done)} of {len(MODULES)} modules)"
