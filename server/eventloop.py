"""Which asyncio event loop a server process runs: uvloop when it is installed, else asyncio's own.

uvloop is an optional extra (``pip install 'zkops[fast]'``); the server never needs it and runs
the same from the standard library alone. $ZKOPS_EVENT_LOOP chooses: ``auto`` (the default:
uvloop when importable, else asyncio's loop), ``asyncio`` (never uvloop), ``uvloop`` (uvloop,
with a warning when it is missing). The choice is made once, before the server's loop is
created, by setting the event loop policy, so every ``asyncio.run`` of the process (standalone
and quorum member) gets it.

What uvloop changes (docs/performance.md, 2026-12-06): less server CPU per request (a getData at
16 sessions about 15 us against 20), and at start-up about 8 ms more CPU and 7 MiB more RSS, 4.4
MiB of it OpenSSL (uvloop imports ssl). A server process without TLS (``without_ssl``: its config
named no TLS port, so ssl was not loaded, and asyncio was imported without it) gives uvloop a
stand-in for ssl instead (``_ssl_stand_in``): uvloop reads ten names of ssl when it is imported,
and uses them only for TLS transports, which such a process never asks for; its uvloop would
refuse one (a TypeError naming ssl.SSLContext), as its asyncio would.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import types
import warnings

ENV = "ZKOPS_EVENT_LOOP"
CHOICES = ("auto", "asyncio", "uvloop")
DEFAULT = "auto"

log = logging.getLogger("zkops.server")


def _ssl_stand_in() -> types.ModuleType:
    """A module with the names of ssl uvloop reads when it is imported (its includes/stdlib.pxi):
    classes no real TLS object is an instance of, and the three error codes."""
    m = types.ModuleType("ssl", "zkops: a stand-in for ssl while uvloop is imported without TLS")

    class SSLError(OSError):
        pass

    def create_default_context(*args: object, **kwargs: object) -> None:
        raise RuntimeError("this server process was started without TLS: ssl is not loaded")

    names: dict[str, object] = {
        "SSLError": SSLError,
        "SSLWantReadError": type("SSLWantReadError", (SSLError,), {}),
        "SSLSyscallError": type("SSLSyscallError", (SSLError,), {}),
        "SSLZeroReturnError": type("SSLZeroReturnError", (SSLError,), {}),
        "CertificateError": type("CertificateError", (ValueError,), {}),
        "SSLContext": type("SSLContext", (), {}),
        "MemoryBIO": type("MemoryBIO", (), {}),
        "create_default_context": create_default_context,
        "SSL_ERROR_WANT_READ": 2, "SSL_ERROR_WANT_WRITE": 3, "SSL_ERROR_SYSCALL": 5,
    }
    m.__dict__.update(names)
    return m


def _import_uvloop(without_ssl: bool) -> types.ModuleType:
    """``import uvloop``; ``without_ssl`` (and ssl not loaded yet): with the stand-in in ssl's
    place while it is imported, so OpenSSL is not loaded (any later ``import ssl`` gets the real
    module). Should uvloop need more of ssl than the stand-in has, it is imported as usual."""
    if without_ssl and "ssl" not in sys.modules and "uvloop" not in sys.modules:
        before = set(sys.modules)
        stand_in = sys.modules["ssl"] = _ssl_stand_in()
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]

            mod: types.ModuleType = uvloop
            return mod
        except (AttributeError, ImportError):  # not installed, or it reads more of ssl: forget its half-import
            for name in set(sys.modules) - before:
                if name == "uvloop" or name.startswith("uvloop."):
                    del sys.modules[name]
        finally:
            if sys.modules.get("ssl") is stand_in:
                del sys.modules["ssl"]
    import uvloop  # type: ignore[import-not-found, unused-ignore]

    mod = uvloop
    return mod


def choose(value: str | None = None, without_ssl: bool = False) -> str:
    """Install the loop that ``value`` (else $ZKOPS_EVENT_LOOP, else ``auto``) asks for;
    returns a description of it for the log (``uvloop 0.x`` or ``asyncio``). ``without_ssl``:
    this process serves no TLS (see the module's doc)."""
    value = (value if value is not None else os.environ.get(ENV, DEFAULT)).strip().lower() or DEFAULT
    if value not in CHOICES:
        log.warning("%s=%s is not one of %s: using %s", ENV, value, ", ".join(CHOICES), DEFAULT)
        value = DEFAULT
    if value == "asyncio":
        return "asyncio"
    try:
        uvloop = _import_uvloop(without_ssl)
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
