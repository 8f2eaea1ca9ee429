"""Headless Chromium for the console's browser tests: Debian's package, driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (installed by
``scripts/install-test-deps``). Screenshots go to ``build/test-artifacts/console/`` (or
``$ZKOPS_TEST_ARTIFACTS/console``), where the docs' pictures come from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("ZKOPS_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent.parent


def artifacts() -> Path:
    base = Path(os.environ["ZKOPS_TEST_ARTIFACTS"]) if os.environ.get("ZKOPS_TEST_ARTIFACTS") else ROOT / "build" / "test-artifacts"
    out = base / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


def available() -> str | None:
    """None when the browser tests can run, else what is missing."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no {CHROMIUM}: run scripts/install-test-deps (Debian's chromium package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: pip install -e '.[test]'"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """What a page said and asked for: console messages, page errors, requests and their sizes."""

    def __init__(self, page: Any) -> None:
        self.messages: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: self.messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))

    def problems(self) -> list[str]:
        return self.errors + [f"{kind}: {text}" for kind, text in self.messages if kind in ("error", "warning")]
