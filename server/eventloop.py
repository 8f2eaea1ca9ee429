"""Which asyncio event loop a server process runs: uvloop when it is installed, else asyncio's own.

uvloop is an optional extra (``pip install 'zkops[fast]'``); the server never needs it and runs
the same from the standard library alone. $ZKOPS_EVENT_LOOP chooses: ``auto`` (the default:
uvloop when importable, else asyncio's loop), ``asyncio`` (never uvloop), ``uvloop`` (uvloop,
with a warning when it is missing). The choice is made once, before the server's loop is
created, by setting the event loop policy, so every ``asyncio.run`` of the process (standalone
and quorum member) gets it.

What uvloop changes (docs/performance.md, 2026-12-06): less server CPU per request (a getData at
16 sessions about 15 us against 20), and at start-up about 8 ms more CPU, 7 MiB more RSS and
OpenSSL loaded (uvloop imports ssl), which a server without a TLS port otherwise never loads.
"""
from __future__ import annotations

import asyncio
import logging
import os
import warnings

ENV = "ZKOPS_EVENT_LOOP"
CHOICES = ("auto", "asyncio", "uvloop")
DEFAULT = "auto"

log = logging.getLogger("zkops.server")


def choose(value: str | None = None) -> str:
    """Install the loop that ``value`` (else $ZKOPS_EVENT_LOOP, else ``auto``) asks for;
    returns a description of it for the log (``uvloop 0.x`` or ``asyncio``)."""
    value = (value if value is not None else os.environ.get(ENV, DEFAULT)).strip().lower() or DEFAULT
    if value not in CHOICES:
        log.warning("%s=%s is not one of %s: using %s", ENV, value, ", ".join(CHOICES), DEFAULT)
        value = DEFAULT
    if value == "asyncio":
        return "asyncio"
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        if value == "uvloop":
            log.warning("%s=uvloop but uvloop is not installed: using asyncio's loop", ENV)
        return "asyncio"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the policy API is deprecated in 3.14+
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return f"uvloop {getattr(uvloop, '__version__', '')}".strip()


def running() -> str:
    """The running loop's kind, for the log: ``uvloop`` or ``asyncio``."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
