"""``zkcli``: zkCli.sh's habits without a JVM.

``zkcli -server host:port[,host:port...][/chroot] [-timeout ms] [-r] [cmd args...]``: with a
command, run it and exit with its status (0, 1 on an error, 127 for an unknown command);
without one, an interactive shell with zkCli's prompt ``[zk: host:port(CONNECTED) N]``,
line editing and history (readline, kept in ``~/.zkcli_history``) and tab completion of
commands and of znode paths. When stdin is not a terminal the lines are read without a
prompt, so ``zkcli < script`` works as zkCli.sh does.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from .commands import SPECS, CliError, Commands, Quit, split_line

HISTORY = Path(os.environ.get("ZKCLI_HISTORY", Path.home() / ".zkcli_history"))


def parse_argv(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """zkCli's options (``-server``, ``-timeout``, ``-r``, ``-waitforconnection``, ``-client-configuration``)
    up to the first word that is not one; the rest is the command."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("-server", "-timeout", "-client-configuration"):
            if i + 1 >= len(argv):
                raise CliError(f"{word} needs a value")
            opts[word[1:]] = argv[i + 1]
            i += 2
        elif word in ("-r", "-waitforconnection"):
            opts[word[1:]] = "true"
            i += 1
        else:
            break
    return opts, argv[i:]


class Completer:
    """readline completion: command names first, znode paths after."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.matches: list[str] = []

    def __call__(self, text: str, state: int) -> str | None:
        if state == 0:
            import readline

            line = readline.get_line_buffer()[: readline.get_begidx()]
            self.matches = self._paths(text) if line.strip() else [c + " " for c in sorted(SPECS) + ["help"]
                                                                   if c.startswith(text)]
        return self.matches[state] if state < len(self.matches) else None

    def _paths(self, text: str) -> list[str]:
        zk = self.commands.zk
        if not text.startswith("/") or zk is None or self.commands.state() != "CONNECTED":
            return []
        parent, _, prefix = text.rpartition("/")
        try:
            kids = zk.get_children(parent or "/")
        except Exception:  # noqa: BLE001 - completion never raises into the prompt
            return []
        return sorted(f"{parent}/{k}" for k in kids if k.startswith(prefix))


def interactive(commands: Commands, stdin: TextIO) -> int:
    tty = stdin.isatty()
    if tty:
        try:
            import readline

            readline.set_completer(Completer(commands))
            readline.set_completer_delims(" \t\n")
            readline.parse_and_bind("tab: complete")
            readline.set_history_length(1000)
            try:
                readline.read_history_file(HISTORY)
            except OSError:
                pass
        except ImportError:  # a Python without readline still has a shell
            pass
    code = 0
    try:
        while True:
            prompt = f"[zk: {commands.hosts}({commands.state()}) {len(commands.history)}] " if tty else ""
            try:
                line = input(prompt) if tty else stdin.readline()
            except EOFError:
                break
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                continue
            if not tty and line == "":
                break
            words = split_line(line)
            if not words:
                continue
            try:
                code = commands.execute(words)
            except Quit:
                code = 0
                break
    finally:
        if tty:
            try:
                import readline

                HISTORY.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(HISTORY)
            except (ImportError, OSError):
                pass
        commands.close(announce=False)
    return code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.CRITICAL)  # kazoo's reconnect chatter is shown as WATCHER events
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--version"], ["-version"]):
        from zkops import __version__

        sys.stdout.write(f"zkcli (zkops {__version__})\n")
        return 0
    try:
        opts, command = parse_argv(argv)
        timeout = int(opts.get("timeout", "30000"))
    except (CliError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    commands = Commands(opts.get("server", "localhost:2181"), timeout, sys.stdout, sys.stderr,
                        read_only="r" in opts)
    if command:
        if not commands.connect(wait=min(timeout / 1000.0, 30.0)):
            sys.stderr.write(f"Unable to connect to {commands.hosts}: no server answered within "
                             f"{min(timeout / 1000.0, 30.0):.0f} s\n")
            commands.close(announce=False)
            return 1
        try:
            return commands.execute(command)
        except Quit:
            return 0
        finally:
            commands.close(announce=False)
    commands.connect(wait=min(timeout / 1000.0, 10.0) if "waitforconnection" not in opts else timeout / 1000.0)
    if sys.stdin.isatty():
        sys.stdout.write("Welcome to ZooKeeper!\n")
    return interactive(commands, sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
