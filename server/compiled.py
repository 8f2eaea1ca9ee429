"""Whether this server's request path runs compiled: a ``ZKOPS_COMPILE=1`` build (setup.py,
docs/performance.md "The compiled build") ships these modules compiled with mypyc as extension
modules next to their ``.py`` sources, which Python then imports instead. Every other install
runs the ``.py`` sources (the same code, standard library only); so does this one for any
module whose extension is missing.
"""

from __future__ import annotations

import importlib.util

# compiled by a ZKOPS_COMPILE=1 build (setup.py reads this list): the modules a client request
# passes through, from bytes in to the reply out (datatree's znodes stay pure: znode.py), then
# those a write in an ensemble passes through: ZAB, the peer's core and the quorum port's shell
# and codec (txncodec is not: its records subclass the jute codec's Record, whose __slots__ a
# compiled subclass loses; nor is txnlog, whose error class subclasses RuntimeError, and whose
# share of a write is small)
MODULES = ("connection", "zkserver", "core", "prep", "wire", "multicodec", "watches", "sessions", "acl",
           "datatree", "zab", "quorumpeer", "quorum", "quorumnet", "quorumwire")


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
    """For the start-up log: ``compiled (mypyc: 14 of 14 modules)`` or ``pure Python``."""
    done = compiled_modules()
    if not done:
        return "pure Python"
    return f"compiled (mypyc: {len(done)} of {len(MODULES)} modules)"
