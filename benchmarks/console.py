"""How fast the lab console shows what happens: python3 -m benchmarks.console [--runs 5]

Per run, on the local backend, with Debian's headless chromium through Playwright:
  * up_to_leader_drawn: the console and the page are open on an empty lab directory; from
    starting `zkops lab up` (a new process) until the page draws a leader;
  * click_to_new_leader: from the click on kill (the leader selected) until the page draws
    another server as leader;
  * up_to_new_leader: the two together plus the selecting, i.e. from `zkops lab up` to a new
    leader drawn after a click on kill (the issue's measure).
Prints each run and min / median / max. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import browser
from zkops.labs.console.server import ConsoleServer
from zkops.labs.lab import Lab


def one_run(chromium: object, work: Path) -> dict[str, float]:
    lab_dir = work / "lab"
    server = ConsoleServer(lab_dir, "127.0.0.1", 0, journal_dir=work / "journals").start()
    context = chromium.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server.url)
        page.wait_for_selector("#link-state.live")
        t_up = time.monotonic()
        up = subprocess.Popen([sys.executable, "-m", "zkops.cli", "lab", "--dir", str(lab_dir), "up", "--tick-ms", "200"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page.wait_for_selector('.node[data-role="LEADING"]')
        t_drawn = time.monotonic()
        up.wait(60)
        old = page.get_attribute('.node[data-role="LEADING"]', "data-id")
        page.click(f'.node[data-id="{old}"] circle')
        t_click = time.monotonic()
        page.click('#node-actions button[data-action="kill"]')
        page.wait_for_selector(f'.node[data-role="LEADING"]:not([data-id="{old}"])')
        t_new = time.monotonic()
        return {"up_to_leader_drawn": t_drawn - t_up, "click_to_new_leader": t_new - t_click,
                "up_to_new_leader": t_new - t_up}
    finally:
        context.close()
        server.close()
        if (lab_dir / "lab.json").exists():
            Lab.load(lab_dir).down()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    missing = browser.available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    results: list[dict[str, float]] = []
    with browser.chromium() as chromium, tempfile.TemporaryDirectory(prefix="zkops-console-bench-") as tmp:
        for i in range(args.runs):
            r = one_run(chromium, Path(tmp) / f"run{i}")
            results.append(r)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in r.items()), flush=True)
    for key in results[0]:
        vals = [r[key] for r in results]
        print(f"{key}: min {min(vals):.3f} s, median {statistics.median(vals):.3f} s, max {max(vals):.3f} s "
              f"({len(vals)} runs, {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
