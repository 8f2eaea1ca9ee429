"""Elections as steps to replay: every vote sent and received, with why a server changed its vote.

The servers record their elections as events (``election-events.jsonl``: vote_sent,
vote_received, vote_changed, state_changed, leader_elected). This module cuts the merged events
into elections and turns each event into a step the page can draw: a message between two
servers, a vote that changed and the rule that made it change, a decision and the quorum
behind it, and after each step what every server is and whom it votes for.
"""

from __future__ import annotations

from typing import Any

from ..timeline import describe

GAP_S = 5.0  # leader_elected events for the same leader this close together are one election


def _key(vote: dict[str, Any]) -> tuple[int, int, int]:
    return int(vote.get("epoch") or 0), int(str(vote.get("zxid") or "0"), 16), int(vote.get("leader") or 0)


def _show(vote: dict[str, Any] | None) -> str:
    if not vote:
        return "?"
    return f"{vote.get('leader')} (epoch {vote.get('epoch')}, zxid {vote.get('zxid')})"


def _looking(e: dict[str, Any]) -> bool:
    return str(e.get("state", "")).upper() == "LOOKING"


def why_better(new: dict[str, Any], old: dict[str, Any] | None) -> str:
    """Which part of (epoch, zxid, myid) makes ``new`` beat ``old``."""
    if not old:
        return "it is the first vote it has"
    (ne, nz, nl), (oe, oz, ol) = _key(new), _key(old)
    if ne != oe:
        return f"a higher epoch ({ne} > {oe})"
    if nz != oz:
        return f"a newer last zxid ({hex(nz)} > {hex(oz)}) at the same epoch"
    return f"the same epoch and zxid, and a higher myid ({nl} > {ol})"


def cut(events: list[dict[str, Any]]) -> list[tuple[int, int, dict[str, Any]]]:
    """Index ranges ``[start, end)`` of ``events`` (sorted by ts), one per election, with a summary."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    prev_end = 0
    i = 0
    while i < len(events):
        e = events[i]
        if e.get("kind") != "leader_elected":
            i += 1
            continue
        leader, first_ts = e.get("peer"), e.get("ts", 0)
        servers, took = [e.get("server")], [e.get("election_ms")]
        j = i + 1
        last = i
        while j < len(events) and events[j].get("ts", 0) - first_ts < GAP_S:
            f = events[j]
            if f.get("kind") == "leader_elected":
                if f.get("peer") != leader:
                    break
                servers.append(f.get("server"))
                took.append(f.get("election_ms"))
                last = j
            elif f.get("kind") == "state_changed" and _looking(f):
                break  # a new election has begun
            j += 1
        start = next((k for k in range(prev_end, i) if events[k].get("kind") == "state_changed"
                      and _looking(events[k])), prev_end)
        end = last + 1
        # the decided servers' last broadcast (telling the others) belongs to this election too
        while end < len(events) and events[end].get("kind") == "vote_sent" and \
                events[end].get("ts", 0) - events[last].get("ts", 0) < 0.05:
            end += 1
        ms = [t for t in took if isinstance(t, (int, float))]
        out.append((start, end, {"leader": leader, "servers": sorted({s for s in servers if s is not None}),
                                 "ts": first_ts, "election_ms": max(ms) if ms else None}))
        prev_end = end
        i = end
    return out


def steps(events: list[dict[str, Any]], servers: list[int]) -> list[dict[str, Any]]:
    """One step per event, each with the state of every server after it."""
    votes: dict[int, dict[str, Any] | None] = {s: None for s in servers}
    states: dict[int, str] = {s: "?" for s in servers}
    rounds: dict[int, int] = {s: 0 for s in servers}
    heard: dict[int, dict[int, tuple[dict[str, Any], int, str]]] = {s: {} for s in servers}  # peer -> (vote, round, state)
    t0 = events[0].get("ts", 0) if events else 0
    out = []
    for e in events:
        s: int = e["server"]  # every event names its server (a None key would break sorted(votes) below)
        kind = e.get("kind")
        if s not in votes:
            votes[s], states[s], rounds[s], heard[s] = None, "?", 0, {}
        vote = e.get("vote")
        step: dict[str, Any] = {"t": round(e.get("ts", 0) - t0, 4), "server": s, "kind": kind, "vote": vote,
                                "round": e.get("round"), "text": f"server {s} {describe(e)}", "reason": ""}
        if kind == "vote_sent":
            step["message"] = {"from": s, "to": [p for p in servers if p != s]}
            votes[s] = vote
            step["reason"] = f"it tells every other voter its vote for {_show(vote)} in round {e.get('round')}"
        elif kind == "vote_received":
            peer: int = e["peer"]  # a received vote always names its sender
            step["message"] = {"from": peer, "to": [s]}
            heard[s][peer] = (vote or {}, int(e.get("round") or 0), str(e.get("state", "")).upper())
            own = votes.get(s)
            if e.get("state") and not _looking(e):
                step["reason"] = (f"server {peer} is already {str(e.get('state')).upper()}: "
                                  f"it answers with the leader it follows")
            elif vote and own and _key(vote) > _key(own):
                step["reason"] = f"this vote is better than its own ({why_better(vote, own)}): it will switch"
            elif vote and own:
                step["reason"] = f"not better than its own vote for {_show(own)}: it keeps its vote"
        elif kind == "vote_changed":
            sources = [p for p, (v, _, _) in sorted(heard[s].items()) if vote and _key(v) == _key(vote)]
            settled = [p for p in sources if heard[s][p][2] not in ("", "LOOKING")]
            source = sources[0] if sources else None
            newer_round = int(e.get("round") or 0) > rounds[s] and rounds[s] > 0
            if settled:
                step["reason"] = (f"server {settled[0]} is already {heard[s][settled[0]][2]} with leader "
                                  f"{(vote or {}).get('leader')}, and a quorum backs that leader: server {s} "
                                  f"takes that vote and follows it")
            elif source is not None and heard[s][source][1] > rounds[s] and newer_round:
                step["reason"] = (f"server {source} is in a newer round ({heard[s][source][1]}): server {s} "
                                  f"joins it and takes the best vote it knows, {_show(vote)}")
            elif source is not None:
                step["reason"] = (f"server {source}'s vote for {_show(vote)} beats its own vote for "
                                  f"{_show(votes[s])}: {why_better(vote or {}, votes[s])}")
            else:
                step["reason"] = f"it adopts {_show(vote)}, better than {_show(votes[s])}"
            votes[s] = vote
        elif kind == "state_changed":
            states[s] = str(e.get("state", "?")).upper()
            if _looking(e):
                heard[s] = {}
                step["reason"] = "it has no leader: it starts an election and votes for itself first"
        elif kind == "leader_elected":
            leader = e.get("peer")
            agree = sorted({s} | {p for p, (v, _, _) in heard[s].items() if v.get("leader") == leader})
            step["reason"] = (f"servers {', '.join(map(str, agree))} vote for {leader}: "
                              f"{len(agree)} of {len(servers)} servers, a quorum")
            states[s] = str(e.get("state", "?")).upper()
            votes[s] = vote
        rounds[s] = max(rounds[s], int(e.get("round") or 0))
        step["after"] = {str(k): {"state": states[k], "vote": votes[k]} for k in sorted(votes)}
        out.append(step)
    return out


def elections(events: list[dict[str, Any]], servers: list[int], last: int = 20) -> list[dict[str, Any]]:
    """The last ``last`` elections, oldest first, each with its replay steps (every server's state
    carried over from what happened before, so a server that stayed out still shows its role)."""
    events = sorted(events, key=lambda e: e.get("ts", 0))
    found = cut(events)
    if not found:
        return []
    all_steps = steps(events, servers)
    out = []
    for n, (start, end, summary) in enumerate(found, 1):
        if n <= len(found) - last:
            continue
        chosen = all_steps[start:end]
        t0 = chosen[0]["t"] if chosen else 0
        taking_part = {str(st["server"]) for st in chosen}
        chosen = [dict(st, t=round(st["t"] - t0, 4),
                       after={k: (v if k in taking_part else {"state": "SILENT", "vote": None})
                              for k, v in st["after"].items()}) for st in chosen]
        out.append(dict(summary, number=n, steps=chosen))
    return out
