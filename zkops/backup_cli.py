"""The ``zkops backup``, ``backup verify``, ``restore``, ``export`` and ``import`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape

COMMANDS = ("backup", "restore", "export", "import")
console = Console(stderr=True)


def _ssh_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="show the commands run on the hosts")
    p.add_argument("--limit", help="only these hosts (comma-separated names)")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="trust and remember hosts not yet in known_hosts (ssh's accept-new)")
    p.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")


class SubParsers(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as this module uses it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_parsers(sub: SubParsers) -> None:
    p = sub.add_parser("backup", help="back up an ensemble's snapshot and txn logs (or: backup verify DIR)",
                       description="zkops backup INVENTORY --to DIR [--keep N] | zkops backup verify DIR")
    p.add_argument("target", nargs="+", metavar="INVENTORY | verify DIR")
    p.add_argument("--to", help="backup directory (created, or extended by a later run)")
    p.add_argument("--keep", type=int, help="keep only the N newest snapshots and the logs they need")
    p.add_argument("--quick", action="store_true", help="verify: check snapshots' seals only, not every node")
    _ssh_options(p)
    p = sub.add_parser("restore", help="restore an ensemble from a backup, to a zxid or a time")
    p.add_argument("inventory")
    p.add_argument("--from", dest="source", required=True, help="backup directory")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--to-zxid", help="the last zxid to keep (hex with 0x, or decimal)")
    which.add_argument("--to-time", help="the last txn at or before this time (ISO 8601, or epoch seconds)")
    p.add_argument("--check", action="store_true", help="only say what would be restored")
    p.add_argument("--force", action="store_true", help="stop a running ensemble first")
    _ssh_options(p)
    p = sub.add_parser("export", help="write a tree (data, ACLs, Stat) as JSON to stdout")
    p.add_argument("path", nargs="?", default="/")
    p.add_argument("--server", required=True, help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--ephemerals", action="store_true", help="include ephemeral nodes (for the record)")
    p.add_argument("--system", action="store_true", help="include /zookeeper")
    p.add_argument("--auth", action="append", help="scheme:credentials, e.g. digest:user:password")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    p = sub.add_parser("import", help="create the nodes of an exported tree")
    p.add_argument("file", help="a file `zkops export` wrote (- for stdin)")
    p.add_argument("--server", required=True, help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--prefix", default="", help="put the tree under this path")
    p.add_argument("--overwrite", action="store_true", help="give existing nodes the file's data and ACL")
    p.add_argument("--auth", action="append", help="scheme:credentials, e.g. digest:user:password")


def _options(args: argparse.Namespace):  # noqa: ANN202 - provision.remote.Options
    from zkops.provision.remote import Options

    return Options(limit=set(args.limit.split(",")) if args.limit else None, verbose=args.verbose,
                   accept_new_host_keys=args.accept_new_host_keys,
                   known_hosts=Path(args.known_hosts) if args.known_hosts else None,
                   log=lambda text: console.print(escape(text)))


def _inventory(path: str):  # noqa: ANN202 - provision.inventory.Inventory
    from zkops.provision.inventory import load

    inv = load(path)
    for w in inv.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    return inv


def run(args: argparse.Namespace) -> int:
    from zkops.provision.backupset import BackupError
    from zkops.provision.inventory import InventoryError
    from zkops.provision.remote import TaskFailed

    try:
        return _run(args)
    except (BackupError, InventoryError, TaskFailed) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2


def _say(text: str) -> None:
    print(text, flush=True)


def _run(args: argparse.Namespace) -> int:
    from zkops.provision import backupset

    if args.command == "backup":
        if args.target[0] == "verify":
            if len(args.target) != 2:
                console.print("usage: zkops backup verify DIR")
                return 2
            rep = backupset.verify(Path(args.target[1]), full=not args.quick)
            for line in rep.lines():
                _say(line)
            return 0 if rep.ok else 1
        if len(args.target) != 1 or not args.to:
            console.print("usage: zkops backup INVENTORY --to DIR [--keep N]")
            return 2
        from zkops.provision.backup import backup

        res = backup(_inventory(args.target[0]), Path(args.to), _options(args), keep=args.keep, log=_say)
        _say(f"backup of {res.host} in {args.to}: snapshot {res.snapshot}, up to zxid 0x{res.last_zxid:x}; "
             f"{len(res.fetched)} files copied, {res.unchanged} unchanged"
             + (f", {len(res.pruned)} pruned" if res.pruned else "") + f" ({res.seconds:.1f} s)")
        return 0
    if args.command == "restore":
        from zkops.provision.restore import restore

        to_zxid = backupset.parse_zxid(args.to_zxid) if args.to_zxid else None
        to_time = backupset.parse_time(args.to_time) if args.to_time else None
        done = restore(_inventory(args.inventory), Path(args.source), _options(args), to_zxid, to_time,
                       check=args.check, force=args.force, log=_say)
        _say(f"{'would restore' if args.check else 'restored'} zxid 0x{done.zxid:x}: {done.znodes} znodes "
             f"(snapshot {done.snapshot} + {done.txns} txns; {done.sessions_dropped} sessions and "
             f"{done.ephemerals_dropped} ephemerals dropped)")
        return 0
    if args.command == "export":
        from zkops.treecopy import export_tree

        out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115
        try:
            r = export_tree(args.server, out, args.path, ephemerals=args.ephemerals, include_system=args.system,
                            auth=args.auth)
        finally:
            if args.output:
                out.close()
        console.print(f"exported {r.nodes} znodes" + (f", {r.ephemerals_skipped} ephemerals skipped"
                                                      if r.ephemerals_skipped else "")
                      + (f", {len(r.unreadable)} unreadable (NoAuth)" if r.unreadable else ""))
        return 0
    if args.command == "import":
        from zkops.treecopy import TreeFileError, import_tree

        src = sys.stdin if args.file == "-" else open(args.file)  # noqa: SIM115
        try:
            imp = import_tree(args.server, src, args.prefix, overwrite=args.overwrite, auth=args.auth,
                              log=lambda t: console.print(escape(t)))
        except TreeFileError as exc:
            console.print(f"[red]error:[/] {escape(args.file)}: {escape(str(exc))}")
            return 2
        finally:
            if src is not sys.stdin:
                src.close()
        console.print(f"imported: {imp.created} created, {imp.updated} updated, {imp.skipped} left as they were"
                      + (f", {imp.ephemerals_skipped} ephemerals skipped" if imp.ephemerals_skipped else "")
                      + (f", {len(imp.failed)} failed" if imp.failed else ""))
        return 1 if imp.failed else 0
    raise AssertionError(args.command)


__all__ = ["COMMANDS", "add_parsers", "run"]
