"""The txn log's error (:mod:`zkops.server.txnlog` raises it and names it in its ``__all__``).

A module of its own because txnlog is compiled in the compiled build (server/compiled.py), and
mypyc compiles no subclass of ``RuntimeError``: here the class stays a plain Python one, the
same in every build.
"""

from __future__ import annotations

import os


class CorruptLogError(RuntimeError):
    """The log is damaged before its end: starting would silently lose history."""

    def __init__(self, path: str | os.PathLike[str], offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt txn log at byte offset {offset}: {reason}")
        self.path = str(path)
        self.offset = offset
        self.reason = reason


__all__ = ["CorruptLogError"]
