"""The lab's faults as one table, so the CLI and the console do exactly the same thing."""

from __future__ import annotations

from typing import Any

from .lab import Lab, LabError

NODE_ACTIONS = {"kill": "SIGKILL a server (a crash)", "start": "start a stopped server",
                "pause": "SIGSTOP a server (a long GC pause)", "resume": "SIGCONT a paused server",
                "isolate": "cut a server off from all its peers"}
NETWORK_ACTIONS = ("partition", "oneway", "slow", "heal")


def _int(args: dict[str, Any], name: str) -> int:
    try:
        return int(args[name])
    except (KeyError, TypeError, ValueError):
        raise LabError(f"{name} must be a number")


def perform(lab: Lab, action: str, **args: Any) -> str:
    """Do ``action`` on ``lab`` (``node=``, ``groups=``, ``src=/dst=``, ``a=/b=/ms=``); say what was done."""
    if action in NODE_ACTIONS:
        node = _int(args, "node")
        if action == "start" and args.get("program"):
            lab.start(node, program=str(args["program"]))
            return f"node {node}: started as {args['program']}"
        getattr(lab, action)(node)
        return f"node {node}: {action} done"
    if action == "partition":
        groups = lab.partition(str(args.get("groups", "")))
        return "partitioned: " + " | ".join(",".join(map(str, g)) for g in groups)
    if action == "oneway":
        src, dst = _int(args, "src"), _int(args, "dst")
        lab.oneway(src, dst)
        return f"dropping everything {src} sends to {dst}"
    if action == "slow":
        a, b, ms = _int(args, "a"), _int(args, "b"), _int(args, "ms")
        lab.slow(a, b, ms)
        return f"link {a}-{b}: {ms} ms each way"
    if action == "heal":
        lab.heal()
        return "network healed"
    raise LabError(f"unknown action {action!r}; the lab has: {', '.join([*NODE_ACTIONS, *NETWORK_ACTIONS])}")
