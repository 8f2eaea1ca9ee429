"""``zkops lab ...``: bring up an ensemble, break it, watch it, and play the classroom labs."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from .actions import NODE_ACTIONS as NODE_COMMANDS
from .actions import perform
from .backends import REGISTRY
from .lab import Lab, LabError, NodeStatus, default_lab_dir
from .model import Program
from .timeline import elections, timeline

console = Console(highlight=False)


def add_parser(sub: Any) -> None:
    """Register ``lab`` and its subcommands on the ``zkops`` parser."""
    lab = sub.add_parser("lab", help="ensembles to break on purpose, and the classroom labs")
    lab.add_argument("--dir", type=Path, help=f"lab directory (default {default_lab_dir()}, or $ZKOPS_LAB_DIR)")
    cmds = lab.add_subparsers(dest="lab_command", required=True)
    up = cmds.add_parser("up", help="bring up an ensemble")
    up.add_argument("--backend", default="local", choices=tuple(REGISTRY))
    _backend_options(up)
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--observers", type=int, default=0)
    up.add_argument("--tick-ms", type=int, default=500, help="tickTime of the lab's servers (default 500)")
    up.add_argument("--no-start", action="store_true", help="lay the servers out but start none of them")
    up.add_argument("--apache", action="store_true",
                    help="run the nodes as Apache ZooKeeper 3.8 (Debian's zookeeper package and Java; local backend "
                         "only) and write migrate.yaml, their `zkops migrate` inventory, in the lab directory")
    st = cmds.add_parser("status", help="node, mode, epoch, zxid, connections, sessions")
    st.add_argument("--follow", "-f", action="store_true", help="refresh every second until Ctrl-C")
    cmds.add_parser("down", help="stop everything the lab started and remove it")
    for name, text in NODE_COMMANDS.items():
        node_cmd = cmds.add_parser(name, help=text)
        node_cmd.add_argument("node", type=int)
        if name == "start":
            node_cmd.add_argument("--as", dest="program", choices=[p.value for p in Program],
                                  help="start the node as this program, on the same zoo.cfg and dataDir (local backend)")
    p = cmds.add_parser("partition", help="cut the peers into groups, e.g. 1,2/3")
    p.add_argument("groups")
    ow = cmds.add_parser("oneway", help="drop what A sends to B (B still reaches A), e.g. '1->2'")
    ow.add_argument("link", nargs="+")
    sl = cmds.add_parser("slow", help="delay a link both ways, e.g. slow 1-2 200")
    sl.add_argument("link")
    sl.add_argument("ms", type=int)
    cmds.add_parser("heal", help="remove every network fault")
    el = cmds.add_parser("elections", help="the vote-by-vote timeline of the elections")
    el.add_argument("--last", type=int, default=0, help="only the last N elections")
    el.add_argument("--decisions", action="store_true", help="leave out individual votes")
    w = cmds.add_parser("watch", help="print watch events and connection states on PATH")
    w.add_argument("path")
    w.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    cmds.add_parser("list", help="the classroom labs")
    r = cmds.add_parser("run", help="play a classroom lab step by step")
    r.add_argument("name")
    r.add_argument("--auto", action="store_true", help="do not wait for Enter between steps")
    r.add_argument("--keep", action="store_true", help="leave the ensemble up afterwards")
    r.add_argument("--backend", default="local", choices=tuple(REGISTRY))
    _backend_options(r)
    c = cmds.add_parser("check", help="grade a played lab: were the observations made?")
    c.add_argument("name")
    ui = cmds.add_parser("ui", help="the lab console: a web page to watch and break the lab, replay elections")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a class)")
    ui.add_argument("--port", type=int, default=8480, help="port (default 8480; 0 for any free port)")
    ui.add_argument("--allow-faults-from", metavar="NETWORKS",
                    help="let these machines press the fault buttons too, e.g. 10.1.2.0/24,10.1.3.7 or any "
                         "(default: localhost only; everyone else watches read-only)")
    ui.add_argument("--poll-ms", type=int, help="how often to read the lab (default 100 ms local/netns, 1000 ms others)")
    vg = cmds.add_parser("vagrant", help="the Vagrant lab's files and its own box")
    vg_cmds = vg.add_subparsers(dest="vagrant_command", required=True)
    vinit = vg_cmds.add_parser("init", help="write zkops' Vagrantfile into DIR (the vagrant backend finds it there)")
    vinit.add_argument("target", nargs="?", default=Path("."), type=Path, metavar="DIR")
    vinit.add_argument("--force", action="store_true", help="overwrite a different Vagrantfile")
    inv = cmds.add_parser("inventory", help="print a deploy inventory for the Vagrant VMs that are up")
    inv.add_argument("--vagrant-dir", help="directory of the Vagrantfile (default: $ZKOPS_VAGRANT_DIR, the current "
                     "directory, a checkout's)")
    inv.add_argument("--nodes", type=int, default=3)
    inv.add_argument("--observers", type=int, default=0)
    inv.add_argument("--tick-ms", type=int, default=2000)
    box = vg_cmds.add_parser("box", help="build a Debian box for libvirt here (no box download) and add it")
    box.add_argument("--name", default="zkops/bookworm", help="the box's name in Vagrant (default zkops/bookworm)")
    box.add_argument("--suite", default="bookworm", help="the Debian suite (default bookworm)")
    box.add_argument("--rebuild", action="store_true", help="build it again even if a cached one matches")
    box.add_argument("--no-add", action="store_true", help="only build the .box file, do not `vagrant box add` it")


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inventory", help="ssh backend: the hosts, as a deploy inventory")
    p.add_argument("--vagrant-dir", help="vagrant backend: directory of the Vagrantfile (default: $ZKOPS_VAGRANT_DIR, the current "
                     "directory, a checkout's)")
    p.add_argument("--wheel", help="ssh/vagrant backends: install this zkops wheel instead of building one")


def _backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"inventory": args.inventory, "vagrant_dir": args.vagrant_dir, "wheel": args.wheel}


def _link(text: str) -> tuple[int, int]:
    for sep in ("->", "-", ">", ","):
        if sep in text:
            a, b = text.split(sep, 1)
            try:
                return int(a), int(b)
            except ValueError:
                break
    raise LabError(f"cannot read link {text!r}; write it as 1->2 (oneway) or 1-2 (slow)")


def status_table(rows: list[NodeStatus]) -> Table:
    table = Table(title="lab status")
    for col in ("node", "role", "process", "server", "mode", "epoch", "zxid", "connections", "sessions"):
        table.add_column(col)
    colours = {"leader": "bold green", "follower": "green", "observer": "cyan", "looking": "yellow"}
    for s in rows:
        mode = s.mode or "-"
        table.add_row(str(s.id), s.role, s.state, "-" if s.program is None else s.program.value,
                      f"[{colours.get(mode, 'red')}]{mode}[/]",
                      "-" if s.epoch is None else str(s.epoch), "-" if s.zxid is None else hex(s.zxid),
                      "-" if s.connections is None else str(s.connections),
                      "-" if s.sessions is None else str(s.sessions))
    return table


def _watch(lab: Lab, path: str, seconds: float) -> int:
    from .console.clients import Watcher

    watcher = Watcher(lab.connect_string(), path, lambda line: console.print(
        f"[yellow]{escape(line)}[/]" if line.startswith("connection state") else escape(line)))
    watcher.start(timeout=30)
    deadline = time.monotonic() + seconds if seconds else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    return 0


def _ui(args: argparse.Namespace) -> int:
    from .console.access import Access, parse_networks
    from .console.server import ConsoleServer

    try:
        networks = parse_networks(args.allow_faults_from)
    except ValueError as exc:
        raise LabError(f"--allow-faults-from: {exc}")
    lab_dir = args.dir or default_lab_dir()
    try:
        server = ConsoleServer(lab_dir, args.host, args.port, access=Access(networks, names={args.host}),
                               journal_dir=_journal_dir(args),
                               poll_s=None if args.poll_ms is None else args.poll_ms / 1000)
    except OSError as exc:
        raise LabError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    who = "localhost" + (f" and {args.allow_faults_from}" if networks else "")
    print(f"lab console: {server.url}  (faults from {who}; everyone else read-only; Ctrl-C to stop)", flush=True)
    server.run()
    return 0


def _journal_dir(args: argparse.Namespace) -> Path:
    lab_dir = args.dir or default_lab_dir()
    return lab_dir.parent / f"{lab_dir.name}-journals"  # survives `lab down`, which removes lab_dir


def _lessons(args: argparse.Namespace) -> int:
    from .lessons import all_lessons, find
    from .lessons.engine import check, play

    if args.lab_command == "list":
        table = Table(title="classroom labs")
        for col in ("lab", "title", "minutes", "servers"):
            table.add_column(col)
        for lesson in all_lessons():
            table.add_row(lesson.name, lesson.title, str(lesson.minutes),
                          f"{lesson.nodes}" + (f" + {lesson.observers} observer" if lesson.observers else ""))
        console.print(table)
        return 0
    try:
        lesson = find(args.name)
    except KeyError as exc:
        console.print(f"[red]{escape(str(exc.args[0]))}[/]")
        return 2
    if args.lab_command == "check":
        results = check(lesson, _journal_dir(args))
        for what, problem in results:
            mark = "[green]seen[/]    " if problem is None else "[red]not seen[/]"
            console.print(f"{mark} {escape(what)}" + ("" if problem is None else f": {escape(problem)}"))
        return 0 if all(p is None for _, p in results) else 1
    lab_dir = args.dir or default_lab_dir()

    def make_cluster(nodes: int, observers: int, start: bool, program: str = Program.ZKOPS.value) -> Lab:
        return Lab.up(lab_dir, backend=args.backend, nodes=nodes, observers=observers, start=start,
                      program=program, **_backend_kwargs(args))

    def say(text: str = "", *, style: str | None = None) -> None:
        console.print(escape(text), style=style)

    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # the lab narrates connection losses itself
    journal = play(lesson, make_cluster, auto=args.auto, state_dir=_journal_dir(args), say=say,
                   pause=lambda prompt: input(prompt), keep=args.keep)
    console.print(f"\njournal written; grade it with `zkops lab check {lesson.name}`")
    return 0 if journal.get("completed") else 1


def _vagrant_box(args: argparse.Namespace) -> int:
    from . import vagrantbox

    def log(text: str) -> None:
        console.print(escape(text))

    path = vagrantbox.build(args.suite, log=log, force=args.rebuild)
    if args.no_add:
        console.print(f"add it with: vagrant box add --name {args.name} {path}")
    else:
        vagrantbox.add(path, args.name, log=log)
        console.print(f"`vagrant up` (libvirt) and `zkops lab up --backend vagrant` now boot {args.name}")
    console.print(escape(vagrantbox.VIRTUALBOX_HINT))
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except LabError as exc:
        console.print(f"[red]lab:[/] {escape(str(exc))}")
        return 2


def _main(args: argparse.Namespace) -> int:
    cmd = args.lab_command
    if cmd in ("list", "run", "check"):
        return _lessons(args)
    if cmd == "ui":
        return _ui(args)
    if cmd == "vagrant" and args.vagrant_command == "box":
        return _vagrant_box(args)
    if cmd == "vagrant":
        from .vagrant import write_vagrantfile

        target = write_vagrantfile(args.target, force=args.force)
        console.print(f"wrote {target}; bring the VMs up with: "
                      f"zkops lab up --backend vagrant --vagrant-dir {args.target}")
        return 0
    if cmd == "inventory":
        from .vagrant import inventory_yaml

        print(inventory_yaml(args.vagrant_dir, args.nodes, args.observers, args.tick_ms), end="")
        return 0
    if cmd == "up":
        lab = Lab.up(args.dir, backend=args.backend, nodes=args.nodes, observers=args.observers,
                     start=not args.no_start, tick_ms=args.tick_ms,
                     program=Program.APACHE.value if args.apache else Program.ZKOPS.value, **_backend_kwargs(args))
        if not args.no_start:
            try:
                leader = lab.wait_leader(timeout=60)
                console.print(f"leader: node {leader}")
            except LabError as exc:
                console.print(f"[yellow]{escape(str(exc))}[/]")
        console.print(status_table(lab.status()))
        console.print(f"clients: {lab.connect_string()}")
        if (lab.dir / "migrate.yaml").exists():
            console.print(f"zkops migrate inventory: {lab.dir / 'migrate.yaml'}")
        return 0
    lab = Lab.load(args.dir)
    if cmd == "status":
        if not args.follow:
            console.print(status_table(lab.status()))
            return 0
        with Live(status_table(lab.status()), console=console, refresh_per_second=2) as live:
            try:
                while True:
                    time.sleep(1)
                    live.update(status_table(lab.status()))
            except KeyboardInterrupt:
                return 0
    if cmd == "down":
        lab.down()
        console.print("lab down: every process it started is stopped and its directory removed")
        return 0
    if cmd in NODE_COMMANDS:
        console.print(perform(lab, cmd, node=args.node, program=getattr(args, "program", None)))
        return 0
    if cmd == "partition":
        console.print(perform(lab, "partition", groups=args.groups))
        return 0
    if cmd == "oneway":
        a, b = _link("".join(args.link))
        console.print(perform(lab, "oneway", src=a, dst=b))
        return 0
    if cmd == "slow":
        a, b = _link(args.link)
        console.print(perform(lab, "slow", a=a, b=b, ms=args.ms))
        return 0
    if cmd == "heal":
        console.print(perform(lab, "heal"))
        return 0
    if cmd == "elections":
        events = lab.election_events()
        found = elections(events)
        since = found[-args.last]["ts"] - 10 if args.last and found else None
        for line in timeline(events, since=since, votes=not args.decisions):
            console.print(escape(line))
        for e in found[-args.last:] if args.last else found:
            took = e["election_ms"]
            console.print(f"[bold]leader {e['leader']}[/] elected by servers {sorted(set(e['servers']))}"
                          + (f" in {took:.0f} ms" if isinstance(took, (int, float)) else ""))
        return 0
    if cmd == "watch":
        return _watch(lab, args.path, args.seconds)
    raise LabError(f"unknown lab command {cmd}")


def standalone(argv: list[str] | None = None) -> int:
    """``python -m zkops.labs.cli ...`` without the rest of the zkops command."""
    ap = argparse.ArgumentParser(prog="zkops")
    add_parser(ap.add_subparsers(dest="command", required=True))
    return main(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(standalone())
