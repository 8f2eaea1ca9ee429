"""Logging for the server: a rotating file like zookeeper.log, and stderr in the foreground."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

FORMAT = "%(asctime)s [%(levelname)s] [%(threadName)s] %(name)s: %(message)s"
LOG_NAME = "zkops-server.log"


def log_dir(default: Path) -> Path:
    return Path(os.environ.get("ZOO_LOG_DIR") or default)


def setup(directory: Path, foreground: bool, level: str | None = None) -> Path:
    """Log to ``directory``/zkops-server.log (10 MiB x 10) and, in the foreground, to stderr."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_NAME
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(getattr(logging, (level or os.environ.get("ZOO_LOG_LEVEL", "INFO")).upper(), logging.INFO))
    fmt = logging.Formatter(FORMAT)
    fh = logging.handlers.RotatingFileHandler(path, maxBytes=10 * 1024 * 1024, backupCount=10)
    fh.setFormatter(fmt)
    root.addHandler(fh)
    if foreground:
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        root.addHandler(sh)
    return path
