"""``python -m zkops.server`` keeps the cyclic collector off while a server's modules are
imported (server/__main__.py); every way on from there turns it back on."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from tests.support.refzk import free_port
from zkops.server import app, cli
from zkops.server.config import load_config

_seen: dict[str, bool] = {}


def _record_gc(cfg: object) -> int:
    _seen["enabled"] = gc.isenabled()
    return 0


@pytest.fixture
def collector_off():
    threshold = gc.get_threshold()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()  # app.serve froze what it had loaded
        gc.set_threshold(*threshold)


def _cfg(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "zoo.cfg"
    path.write_text(f"tickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort={free_port()}\n"
                    "clientPortAddress=127.0.0.1\nadmin.enableServer=false\nautopurge.purgeInterval=0\n")
    return path


def test_serve_turns_the_collector_back_on(tmp_path, collector_off):
    cfg = load_config(_cfg(tmp_path))

    async def main() -> bool:
        started, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(app.serve(cfg, started=started, stop=stop))
        try:
            await asyncio.wait_for(started.wait(), 60)
            return gc.isenabled()
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    assert asyncio.run(main())


def test_an_embedded_app_runs_with_the_collector_on(tmp_path, collector_off, monkeypatch, capsys):
    monkeypatch.setenv("ZKOPS_SERVER_APP", "tests.test_startup_gc:_record_gc")
    monkeypatch.setenv("ZOO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("ZOOPIDFILE", raising=False)
    _seen.clear()
    assert cli.main(["start-foreground", str(_cfg(tmp_path))]) == 0
    assert _seen == {"enabled": True}


def test_the_other_commands_turn_it_on(collector_off, capsys):
    assert cli.main(["version"]) == 0
    assert gc.isenabled()


def test_the_database_loads_with_the_collector_off_and_is_frozen_after(tmp_path, monkeypatch):
    # a million znodes took a sixth longer to recover with the collector walking the growing tree
    cfg = load_config(_cfg(tmp_path))
    seen: list[bool] = []
    real_open = app.Database.open

    def open_(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(app.Database, "open", open_)
    threshold = gc.get_threshold()
    gc.enable()  # as an embedding program would have it: serve turns it off for the load itself

    async def main() -> tuple[bool, int]:
        started, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(app.serve(cfg, started=started, stop=stop))
        try:
            await asyncio.wait_for(started.wait(), 60)
            return gc.isenabled(), gc.get_freeze_count()
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    try:
        enabled, frozen = asyncio.run(main())
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert seen == [False]
    assert enabled and frozen > 0
