"""Lab 3: one-shot watches, event types, re-registering, watches on missing nodes and children."""

from __future__ import annotations

import queue
from typing import Any

from .engine import Check, Context, Lesson, Step


def _recorder(ctx: Context, key: str) -> tuple[queue.Queue, Any]:
    events: queue.Queue = queue.Queue()

    def watch(event: Any) -> None:
        events.put({"type": event.type, "path": event.path, "state": event.state})
        ctx.say(f"WATCHER::\n\nWatchedEvent state:SyncConnected type:{_java_type(event.type)} path:{event.path}",
                style="magenta")

    return events, watch


def _java_type(kazoo_type: str) -> str:
    return {"CREATED": "NodeCreated", "DELETED": "NodeDeleted", "CHANGED": "NodeDataChanged",
            "CHILD": "NodeChildrenChanged"}.get(kazoo_type, kazoo_type)


def _drain(events: queue.Queue, settle: float = 1.0) -> list[dict]:
    out = []
    try:
        out.append(events.get(timeout=settle))
        while True:
            out.append(events.get(timeout=settle))
    except queue.Empty:
        return out


def _walkthrough(ctx: Context) -> None:
    a, b = ctx.client(), ctx.client()
    if a.exists("/zkbook"):
        a.delete("/zkbook", recursive=True)
    a.create("/zkbook", b"123")
    ctx.note("ls_root_has_zkbook", "zkbook" in a.get_children("/"))
    events, watch = _recorder(ctx, "data")
    data, _ = a.get("/zkbook", watch=watch)
    ctx.note("get", data.decode())
    b.set("/zkbook", b"456")
    first = _drain(events)
    ctx.note("events_after_first_set", first)
    b.set("/zkbook", b"789")
    ctx.note("events_after_second_set", _drain(events))
    a.get("/zkbook", watch=watch)  # re-register, as a client must after each event
    b.delete("/zkbook")
    ctx.note("events_after_delete", _drain(events))


def _missing_and_children(ctx: Context) -> None:
    a, b = ctx.client(), ctx.client()
    if a.exists("/lab3"):
        a.delete("/lab3", recursive=True)
    events, watch = _recorder(ctx, "exists")
    ctx.note("exists_before", a.exists("/lab3", watch=watch) is not None)
    b.create("/lab3", b"")
    ctx.note("events_exists", _drain(events))
    child_events, child_watch = _recorder(ctx, "children")
    a.get_children("/lab3", watch=child_watch)
    b.create("/lab3/a", b"")
    b.set("/lab3/a", b"x")  # data of a child is not a change of the child list
    ctx.note("events_children", _drain(child_events))


def _types(evs: list[dict]) -> list[str]:
    return [(e["type"], e["path"]) for e in evs]  # type: ignore[misc]


LESSON = Lesson(
    number=3, slug="watches", title="Watches", minutes=25,
    goal="See that a watch fires once, learn the event types, and watch nodes that do not exist yet.",
    background=(
        "A client can leave a watch with a read: getData and exists watch the node's data (and its\n"
        "creation or deletion), getChildren watches its child list. When the watched thing changes,\n"
        "the server sends one event and forgets the watch: a standard watch is one-shot, so a\n"
        "client that wants to keep watching reads again and sets a new watch (and sees the new\n"
        "state in that read). Events carry the type and the path, never the new data. ZooKeeper\n"
        "3.6 added persistent (and recursive) watches with addWatch that stay until removed."),
    steps=[
        Step("The get -w walkthrough",
             "In a first shell create /zkbook with data 123, list / and read /zkbook with a watch. From a\n"
             "second shell change it: the first shell prints a WATCHER event. Change it again: nothing,\n"
             "the watch is used up. Read with -w again, then delete /zkbook from the second shell.",
             ("zkcli -server 127.0.0.1:<port>", "create /zkbook 123", "ls /", "get -w /zkbook",
              "(second shell) set /zkbook 456", "(second shell) set /zkbook 789", "get -w /zkbook",
              "(second shell) delete /zkbook"), _walkthrough),
        Step("Watch a node that does not exist, and a child list",
             "`stat -w` on a missing node leaves a watch that fires when it is created. `ls -w` fires\n"
             "when a child is added or removed, not when a child's data changes.",
             ("stat -w /lab3", "(second shell) create /lab3", "ls -w /lab3", "(second shell) create /lab3/a",
              "(second shell) set /lab3/a x"), _missing_and_children),
        Step("Persistent recursive watches (ZooKeeper 3.6+)",
             "`addWatch -m PERSISTENT_RECURSIVE /lab3` stays after it fires and covers the whole\n"
             "subtree: create, change and delete nodes under /lab3 and count the events.",
             ("addWatch -m PERSISTENT_RECURSIVE /lab3", "(second shell) create /lab3/b",
              "(second shell) set /lab3/b 1", "(second shell) delete /lab3/b")),
    ],
    questions=[
        ("How many events did the first shell see for two `set`s? Why?",
         "One: a standard watch fires once and is then removed; the second set happened with no watch set."),
        ("The event said NodeDataChanged but not the new value. How does the client learn it?",
         "It reads the node again (and sets a new watch in the same read)."),
        ("Can you watch a node that does not exist?", "Yes, with exists (stat -w): it fires NodeCreated."),
        ("Did changing /lab3/a's data fire the child watch on /lab3?",
         "No: child watches fire on creation or deletion of children only."),
    ],
    checks=[
        Check("get -w read 123", lambda j: None if j["get"] == "123" else f"read {j['get']}"),
        Check("one NodeDataChanged for the first set", lambda j: None if _types(j["events_after_first_set"]) == [
            ("CHANGED", "/zkbook")] else f"saw {j['events_after_first_set']}"),
        Check("no event for the second set (one-shot)",
              lambda j: None if j["events_after_second_set"] == [] else f"saw {j['events_after_second_set']}"),
        Check("NodeDeleted after re-registering and deleting", lambda j: None if _types(
            j["events_after_delete"]) == [("DELETED", "/zkbook")] else f"saw {j['events_after_delete']}"),
        Check("exists -w on a missing node fires NodeCreated", lambda j: None if not j["exists_before"] and _types(
            j["events_exists"]) == [("CREATED", "/lab3")] else f"saw {j['events_exists']}"),
        Check("one NodeChildrenChanged, nothing for the child's data", lambda j: None if _types(
            j["events_children"]) == [("CHILD", "/lab3")] else f"saw {j['events_children']}"),
    ],
    mistakes=[
        "Expecting every change to be reported: between an event and the re-read, more changes may "
        "happen; the client sees the latest state, not every intermediate one.",
        "Watching the parent with getData and expecting child events (use getChildren/ls -w).",
    ],
    timing="15 minutes for the walkthrough, 10 for missing nodes and children.",
)
