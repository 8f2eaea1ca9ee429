"""Lab 10: the classic recipes with kazoo: registry, lock, leader election, config, queue."""

from __future__ import annotations

import threading
import time

from .engine import Check, Context, Lesson, Step, wait_for


def _registry(ctx: Context) -> None:
    watcher = ctx.client()
    if watcher.exists("/lab10"):
        watcher.delete("/lab10", recursive=True)
    watcher.ensure_path("/servers")
    for child in watcher.get_children("/servers"):
        watcher.delete(f"/servers/{child}")
    seen: list[list[str]] = []
    watcher.ChildrenWatch("/servers")(lambda children: seen.append(sorted(children)))
    members = [ctx.client() for _ in range(3)]
    names = [m.create("/servers/server-", f"10.0.0.{i}:8080".encode(), ephemeral=True, sequence=True)
             for i, m in enumerate(members, 1)]
    wait_for(lambda: seen and len(seen[-1]) == 3, 10, "three registered servers")
    members[1].stop()  # a server dies: its session ends, its ephemeral goes
    members[1].close()
    wait_for(lambda: len(seen[-1]) == 2, 10, "the registry to shrink")
    ctx.note("registered", [n.rsplit("/", 1)[1] for n in names])
    ctx.note("registry_after_crash", seen[-1])


def _lock(ctx: Context) -> None:
    from kazoo.exceptions import LockTimeout

    a, b = ctx.client(), ctx.client()
    la, lb = a.Lock("/lab10/lock", "a"), b.Lock("/lab10/lock", "b")
    la.acquire()
    try:
        lb.acquire(timeout=1)
        ctx.note("second_holder_blocked", False)
    except LockTimeout:
        ctx.note("second_holder_blocked", True)
    la.release()
    ctx.note("second_acquires_after_release", lb.acquire(timeout=10))
    lb.release()


def _election(ctx: Context) -> None:
    leaders: list[str] = []
    clients = {name: ctx.client() for name in ("alpha", "beta")}
    stop = threading.Event()

    def candidate(name: str) -> None:
        def lead() -> None:
            leaders.append(name)
            while not stop.is_set() and clients[name].connected:
                time.sleep(0.05)

        try:
            clients[name].Election("/lab10/election", name).run(lead)
        except Exception:  # noqa: BLE001 - the client was closed under the candidate
            pass

    threads = [threading.Thread(target=candidate, args=(n,), daemon=True) for n in clients]
    threads[0].start()
    wait_for(lambda: leaders, 10, "a first leader")
    threads[1].start()
    time.sleep(0.5)
    first = leaders[0]
    clients[first].stop()  # the master's process dies
    clients[first].close()
    wait_for(lambda: len(leaders) >= 2, 20, "the standby to take over")
    stop.set()
    ctx.note("masters_in_order", leaders)


def _config(ctx: Context) -> None:
    pub, sub = ctx.client(), ctx.client()
    pub.ensure_path("/lab10/config")
    seen: list[str] = []
    sub.DataWatch("/lab10/config")(lambda data, stat: seen.append((data or b"").decode()))
    for version in ("v1", "v2", "v3"):
        pub.set("/lab10/config", version.encode())
        time.sleep(0.2)
    wait_for(lambda: seen and seen[-1] == "v3", 10, "the subscriber to see v3")
    ctx.note("subscriber_saw", seen)


def _queue(ctx: Context) -> None:
    producer, consumer = ctx.client(), ctx.client()
    q_in = producer.Queue("/lab10/queue")
    for item in (b"first", b"second", b"third"):
        q_in.put(item)
    q_out = consumer.Queue("/lab10/queue")
    ctx.note("consumed", [q_out.get().decode() for _ in range(3)])


LESSON = Lesson(
    number=10, slug="recipes", title="Recipes with kazoo", minutes=40,
    prerequisites=("zkops installed", "Python with kazoo (`pip install kazoo`)", "labs 2 and 3"),
    goal="Build a service registry, a lock, leader election, configuration publishing and a queue from "
         "znodes and watches, with kazoo's recipes.",
    background=(
        "ZooKeeper has no lock or queue operation; recipes build them from ephemeral and sequential\n"
        "znodes and watches. A registry is a parent with one ephemeral child per live server, watched\n"
        "for child changes. A lock is the lowest sequential ephemeral child of a lock node; each waiter\n"
        "watches only the child just before its own (no herd). Leader election is the same: the lowest\n"
        "candidate leads, and when its session dies its node goes and the next one takes over.\n"
        "Configuration is a znode with a data watch; a queue is sequential children taken in order."),
    steps=[
        Step("Service registry", "Three servers register under /servers with ephemeral sequential nodes; a\n"
             "client watches the children. One server dies.",
             ("create -e -s /servers/server- 10.0.0.1:8080", "ls -w /servers"), _registry),
        Step("Distributed lock", "Two clients want the same lock; the second waits until the first releases.",
             ("python3: client.Lock('/lab10/lock', 'a').acquire()",), _lock),
        Step("Master election", "Two candidates; the master dies; the standby takes over.",
             ("python3: client.Election('/lab10/election', 'alpha').run(lead)",), _election),
        Step("Configuration publish/subscribe", "A subscriber keeps a data watch on /lab10/config while a "
             "publisher sets v1, v2, v3.", ("python3: client.DataWatch('/lab10/config')(on_change)",), _config),
        Step("Queue", "A producer puts three items; a consumer takes them in order.",
             ("python3: client.Queue('/lab10/queue').put(b'first')",), _queue),
    ],
    questions=[
        ("Why ephemeral nodes in the registry?", "A crashed server's session expires and its entry goes by "
         "itself; no one has to clean up."),
        ("Why does each lock waiter watch only its predecessor?", "So a release wakes one waiter, not all of "
         "them (the herd effect)."),
        ("Can a data watch miss an intermediate value?", "Yes: it re-reads after each event and gets the "
         "latest; it may skip values, never see them out of order."),
    ],
    checks=[
        Check("the registry lost exactly the dead server", lambda j: None if len(j["registry_after_crash"]) == 2
              and j["registered"][1] not in j["registry_after_crash"] else f"{j['registry_after_crash']}"),
        Check("the lock excluded the second client until released", lambda j: None if j[
            "second_holder_blocked"] and j["second_acquires_after_release"] else "the lock did not exclude"),
        Check("the standby took over from the dead master", lambda j: None if j["masters_in_order"] in (
            ["alpha", "beta"], ["beta", "alpha"]) else f"{j['masters_in_order']}"),
        Check("the subscriber ended on v3, values in order", lambda j: None if j["subscriber_saw"][-1] == "v3" and [
            v for v in j["subscriber_saw"] if v] == sorted(v for v in j["subscriber_saw"] if v) else "out of order"),
        Check("the queue is first in, first out", lambda j: None if j["consumed"] == ["first", "second", "third"]
              else f"{j['consumed']}"),
    ],
    mistakes=["Using a persistent node for a lock: a crashed holder never releases it.",
              "Acting as master after a SUSPENDED connection state without re-checking: the session may "
              "have expired and someone else may lead."],
    timing="40 minutes (8 per recipe).",
)
