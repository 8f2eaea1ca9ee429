"""Server logging: a rotating file like ZooKeeper's zookeeper.log, plus stderr in the foreground.

Why its own module: the CLI sets logging up once per process, before the server exists,
and every record should say which server (myid), thread and asyncio task wrote it, so
that the logs of an ensemble's members can be read side by side.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

LOG_NAME = "zkops-server.log"
MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 10
FORMAT = ("%(asctime)s [myid:%(myid)s] - %(levelname)-5s "
          "[%(threadName)s/%(task)s:%(module)s@%(lineno)d] - %(message)s")

_installed: list[logging.Handler] = []


class ContextFilter(logging.Filter):
    """Adds ``myid`` and ``task`` (the running asyncio task's name, else "-") to each record."""

    def __init__(self, myid: int | None = None) -> None:
        super().__init__()
        self.myid = "" if myid is None else str(myid)

    def filter(self, record: logging.LogRecord) -> bool:
        record.myid = self.myid
        task = None
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop in this thread
            pass
        record.task = task.get_name() if task is not None else "-"
        return True


class RollingFileHandler(logging.FileHandler):
    """Appends to ``path``; a record that would take it to ``maxBytes`` first renames it to
    ``path.1`` (``.1`` to ``.2``, and so on up to ``backupCount``), as zookeeper.log rolls.

    What ``logging.handlers.RotatingFileHandler`` does, kept here because importing
    ``logging.handlers`` (with the pickle and queue modules it needs for its other handlers)
    was a few milliseconds of every server's start-up.
    """

    def __init__(self, path: Path, maxBytes: int, backupCount: int, encoding: str = "utf-8") -> None:  # noqa: N803
        super().__init__(path, mode="a", encoding=encoding)
        self.maxBytes = maxBytes
        self.backupCount = backupCount

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._full(record):
                self._roll()
            super().emit(record)
        except Exception:
            self.handleError(record)

    def _full(self, record: logging.LogRecord) -> bool:
        if self.maxBytes <= 0:
            return False
        if os.path.exists(self.baseFilename) and not os.path.isfile(self.baseFilename):
            return False  # /dev/null and the like never roll
        if self.stream is None:
            self.stream = self._open()
        return self.stream.tell() + len(self.format(record)) + 1 >= self.maxBytes

    def _roll(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self.backupCount > 0:
            for i in range(self.backupCount - 1, 0, -1):
                older = f"{self.baseFilename}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{self.baseFilename}.{i + 1}")
            if os.path.exists(self.baseFilename):
                os.replace(self.baseFilename, f"{self.baseFilename}.1")
        self.stream = self._open()


def log_dir(default: Path) -> Path:
    """$ZOO_LOG_DIR when set (as zkServer.sh), else ``default`` (the data log dir)."""
    return Path(os.environ.get("ZOO_LOG_DIR") or default)


def level_from_env() -> int:
    """$ZOO_LOG_LEVEL, else the level in $ZOO_LOG4J_PROP ("INFO,ROLLINGFILE"), else INFO."""
    name = os.environ.get("ZOO_LOG_LEVEL") or os.environ.get("ZOO_LOG4J_PROP", "").split(",")[0]
    name = name.strip().upper()
    name = {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG", "ALL": "DEBUG"}.get(name, name)
    level = logging.getLevelName(name) if name else logging.INFO
    return level if isinstance(level, int) else logging.INFO


def setup(directory: Path, foreground: bool, level: int | str | None = None, myid: int | None = None) -> Path:
    """Log to ``directory``/zkops-server.log (10 MiB x 10 files) and, in the foreground, to stderr.

    Calling it again replaces only the handlers it installed before. Returns the log file's path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_NAME
    teardown()
    root = logging.getLogger()
    if level is None:
        level = level_from_env()
    root.setLevel(level)
    fmt = logging.Formatter(FORMAT)
    context = ContextFilter(myid)
    handlers: list[logging.Handler] = [
        RollingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT)]
    if foreground:
        handlers.append(logging.StreamHandler())
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(context)
        root.addHandler(h)
        _installed.append(h)
    return path


def teardown() -> None:
    """Remove and close the handlers ``setup`` installed (for embedding and tests)."""
    root = logging.getLogger()
    for h in _installed:
        root.removeHandler(h)
        h.close()
    _installed.clear()
