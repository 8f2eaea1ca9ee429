"""The version string every report shows (srvr, mntr, envi, the AdminServer, ``version``)."""

from __future__ import annotations

from .. import __version__ as ZKOPS_VERSION

# Clients (kazoo among them) parse the leading x.y.z; the suffix says what we are.
VERSION_STRING = f"3.8.0-zkops-{ZKOPS_VERSION}, built on 2026-11-24 00:00 UTC"
