"""Which asyncio event loop a server process runs: asyncio's own, or uvloop when asked for.

uvloop is an optional extra (``pip install 'zkops[fast]'``); the server never needs it and runs
the same from the standard library alone. $ZKOPS_EVENT_LOOP chooses: ``asyncio`` (the default),
``auto`` (uvloop when importable, else asyncio's), ``uvloop`` (the same, with a warning when it
is missing). The choice is made once, before the server's loop is created, by setting the
event loop policy, so every ``asyncio.run`` of the process (standalone and quorum member) gets it.

Why not uvloop by default where it is installed: measured side by side with Apache (see
docs/performance.md, 2026-12-06), it did not make requests faster here (the server's time is
its Python code, not the loop), while importing it costs every start-up about 8 ms of CPU and
loads OpenSSL, which a server without a TLS port otherwise never does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings

ENV = "ZKOPS_EVENT_LOOP"
CHOICES = ("asyncio", "auto", "uvloop")
DEFAULT = "asyncio"

log = logging.getLogger("zkops.server")


def choose(value: str | None = None) -> str:
    """Install the loop that ``value`` (else $ZKOPS_EVENT_LOOP, else ``asyncio``) asks for;
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
