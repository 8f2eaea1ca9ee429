"""zkops: deploy an ensemble from an inventory and show its health.

``zkops deploy [inventory.yaml]`` (no inventory: the embedded local three-node
default), ``zkops status [inventory.yaml]``, ``zkops down [inventory.yaml]``; backups and
logical copies are in :mod:`zkops.backup_cli` (``backup``, ``restore``, ``export``, ``import``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.prompt import Confirm
from rich.table import Table

from zkops import __version__
from zkops.provision.deploy import Recap, deploy, down, service_local
from zkops.provision.inventory import Inventory, InventoryError, default_local, load
from zkops.provision.remote import Options, deploy_remote, service_remote
from zkops.provision.status import EnsembleStatus, check_ensemble
from zkops.provision.verify import verify
from zkops.requires import MissingPackage

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


REMOTE_COMMANDS = {
    "deploy": "install and start the ensemble, then check it",
    "status": "show every node's mode and the ensemble's health",
    "down": "stop the local nodes of an inventory",
    "stop": "stop the service on every host",
    "start": "start the service on every host",
    "restart": "restart every node, one at a time (--rolling), keeping a quorum",
    "upgrade": "install a new release, rolling, with rollback to the previous one on failure",
    "destroy": "remove zkops from the hosts (asks first; keeps data unless --purge-data)",
    "verify": "check the hosts with a pytest-testinfra suite",
}


class _Parser(argparse.ArgumentParser):
    """A parser with ``--version``. Subcommands' parsers are of their parent's class (argparse's
    add_subparsers default), so ``--version`` works after any of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"zkops {__version__}")


def _options(args: argparse.Namespace) -> Options:
    return Options(check=getattr(args, "check", False), diff=getattr(args, "diff", False),
                   limit=set(args.limit.split(",")) if getattr(args, "limit", None) else None,
                   verbose=args.verbose, accept_new_host_keys=args.accept_new_host_keys,
                   known_hosts=Path(args.known_hosts) if args.known_hosts else None,
                   wheel=Path(args.wheel) if getattr(args, "wheel", None) else None,
                   rollback=args.command == "upgrade", log=lambda text: console.print(escape(text)))


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="zkops", description="Java-free ZooKeeper: deploy and check ensembles.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in REMOTE_COMMANDS.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("inventory", nargs="?", help="inventory YAML (default: three local nodes)")
        p.add_argument("-v", "--verbose", action="store_true", help="show the commands run on the hosts")
        p.add_argument("--limit", help="only these hosts (comma-separated names)")
        p.add_argument("--accept-new-host-keys", action="store_true",
                       help="trust and remember hosts not yet in known_hosts (ssh's accept-new)")
        p.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
        if name in ("deploy", "upgrade"):
            p.add_argument("--check", action="store_true", help="show what would change, change nothing")
            p.add_argument("--diff", action="store_true", help="show the changes to rendered files")
            p.add_argument("--wheel", help="install this zkops wheel instead of building one from here")
        if name == "restart":
            p.add_argument("--rolling", action="store_true", help="one node at a time (the only way zkops restarts)")
        if name == "destroy":
            p.add_argument("--purge-data", action="store_true", help="also delete the data directories")
            p.add_argument("--yes", action="store_true", help="do not ask")
    mp = sub.add_parser("migrate", help="replace a running Apache ZooKeeper ensemble by zkops, one host at a time")
    mp.add_argument("inventory", help="inventory YAML with each host's java: settings (docs/migrate.md)")
    mp.add_argument("--check", action="store_true", help="say what would change, change nothing")
    mp.add_argument("--rollback", action="store_true", help="put Java back on the hosts that run zkops")
    mp.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a healthy ensemble (default 60)")
    mp.add_argument("-v", "--verbose", action="store_true", help="show the commands run on SSH hosts")
    mp.add_argument("--accept-new-host-keys", action="store_true",
                    help="trust and remember hosts not yet in known_hosts (ssh's accept-new)")
    mp.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
    mp.add_argument("--wheel", help="install this zkops wheel on SSH hosts instead of building one from here")
    from zkops import backup_cli
    from zkops.labs import cli as lab_cli

    lab_cli.add_parser(sub)
    backup_cli.add_parsers(sub)
    args = ap.parse_args(argv)
    if args.command == "lab":
        return lab_cli.main(args)
    if args.command in backup_cli.COMMANDS:
        return backup_cli.run(args)
    try:
        inv = _inventory(args.inventory)
    except InventoryError as exc:
        console.print(f"[red]inventory error:[/] {escape(str(exc))}")
        return 2
    if args.command == "migrate":
        from zkops.provision.migrate import migrate

        try:
            if any(h.connection == "ssh" for h in inv.hosts):
                from zkops.provision.migrate_ssh import migrate_ssh

                recap = migrate_ssh(inv, _options(args), check=args.check, rollback=args.rollback, wait=args.wait)
            else:
                recap = migrate(inv, check=args.check, rollback=args.rollback, wait=args.wait)
        except InventoryError as exc:
            console.print(f"[red]inventory error:[/] {escape(str(exc))}")
            return 2
        except MissingPackage as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            return 2
        print_recap(recap)
        if recap.status is not None:
            print_status(recap.status)
        return 1 if recap.failed else 0
    try:
        return _run(args, inv)
    except MissingPackage as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2


def _run(args: argparse.Namespace, inv: Inventory) -> int:
    remote = any(h.connection == "ssh" for h in inv.hosts)
    if args.command == "status":
        hosts = [h for h in inv.hosts if h.connection == "local"] or inv.hosts
        status = check_ensemble([h for h in hosts if not args.limit or h.name in args.limit.split(",")], wait=5)
        print_status(status)
        return 0 if status.healthy else 1
    if args.command == "verify":
        return verify(inv, _options(args))
    if not remote:
        if args.command in ("deploy", "upgrade"):
            recap = deploy(inv, _options(args))
        elif args.command in ("down", "stop", "destroy"):
            recap = down(inv)
        elif args.command in ("start", "restart"):
            recap = service_local(inv, _options(args), args.command)
        else:
            console.print(f"[red]{args.command}[/] is for SSH hosts")
            return 2
    else:
        opts = _options(args)
        if args.command in ("deploy", "upgrade"):
            recap = deploy_remote(inv, opts)
        elif args.command == "destroy":
            if not args.yes and not Confirm.ask(f"remove zkops from {len(inv.hosts)} hosts"
                                                + (" and DELETE THEIR DATA" if args.purge_data else "") + "?"):
                return 1
            recap = service_remote(inv, opts, "destroy", purge_data=args.purge_data)
        else:
            recap = service_remote(inv, opts, {"down": "stop"}.get(args.command, args.command))
    print_recap(recap)
    if recap.status is not None:
        print_status(recap.status)
    return 1 if recap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
