"""zkops: deploy an ensemble from an inventory and show its health.

``zkops deploy [inventory.yaml]`` (no inventory: the embedded local three-node
default), ``zkops status [inventory.yaml]``, ``zkops down [inventory.yaml]``.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zkops.provision.deploy import Recap, deploy, down
from zkops.provision.inventory import Inventory, InventoryError, default_local, load
from zkops.provision.status import EnsembleStatus, check_ensemble

console = Console()
STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan"}


def _inventory(path: str | None) -> Inventory:
    inv = default_local() if path is None else load(path)
    for w in inv.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    return inv


def print_recap(recap: Recap) -> None:
    for r in recap.results:
        line = f"[{STYLE[r.status]}]{r.status}[/]: " + escape(f"[{r.host}] {r.task}")
        console.print(line + (" - " + escape(r.message) if r.message else ""))
    table = Table(title="PLAY RECAP")
    for col in ("host", "ok", "changed", "failed", "skipped"):
        table.add_column(col)
    for host, c in recap.counts().items():
        table.add_row(host, *(f"[{STYLE[k]}]{c[k]}[/]" if c[k] else "0" for k in ("ok", "changed", "failed", "skipped")))
    console.print(table)


def print_status(status: EnsembleStatus) -> None:
    table = Table(title="ensemble status")
    for col in ("node", "myid", "address", "ruok", "mode", "zxid", "connections"):
        table.add_column(col)
    for n in status.nodes:
        table.add_row(n.name, str(n.myid), n.address, "imok" if n.ruok else "[red]down[/]", n.mode or "-",
                      n.zxid or "-", "-" if n.connections is None else str(n.connections))
    console.print(table)
    if status.healthy:
        console.print("[green]healthy[/]: one leader, every node serving, a write read back on every node")
    else:
        for p in status.problems:
            console.print(f"[red]problem:[/] {p}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="zkops", description="Java-free ZooKeeper: deploy and check ensembles.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in (("deploy", "install and start the ensemble, then check it"),
                       ("status", "show every node's mode and the ensemble's health"),
                       ("down", "stop the local nodes of an inventory")):
        p = sub.add_parser(name, help=text)
        p.add_argument("inventory", nargs="?", help="inventory YAML (default: three local nodes)")
        if name == "deploy":
            p.add_argument("--check", action="store_true", help="show what would change, change nothing")
    from zkops.labs import cli as lab_cli

    lab_cli.add_parser(sub)
    args = ap.parse_args(argv)
    if args.command == "lab":
        return lab_cli.main(args)
    try:
        inv = _inventory(args.inventory)
    except InventoryError as exc:
        console.print(f"[red]inventory error:[/] {exc}")
        return 2
    if args.command == "deploy":
        recap = deploy(inv, check_only=args.check)
        print_recap(recap)
        if recap.status is not None:
            print_status(recap.status)
        return 1 if recap.failed else 0
    if args.command == "status":
        status = check_ensemble([h for h in inv.hosts if h.connection == "local"] or inv.hosts, wait=5)
        print_status(status)
        return 0 if status.healthy else 1
    recap = down(inv)
    print_recap(recap)
    return 1 if recap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
