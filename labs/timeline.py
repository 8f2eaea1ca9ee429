"""The vote-by-vote story of elections, merged from every server's election events."""

from __future__ import annotations

from typing import Any


def _vote(v: dict[str, Any] | None) -> str:
    if not v:
        return "?"
    return f"{v.get('leader')} (epoch {v.get('epoch')}, zxid {v.get('zxid')})"


def describe(event: dict[str, Any]) -> str:
    """One event as a sentence a student can follow."""
    kind = event.get("kind")
    if kind == "state_changed":
        return f"is {str(event.get('state', '?')).upper()} (round {event.get('round')})"
    if kind == "vote_sent":
        return f"votes for {_vote(event.get('vote'))}"
    if kind == "vote_changed":
        return f"changes its vote to {_vote(event.get('vote'))}: it is better than its own"
    if kind == "vote_received":
        return (f"hears from {event.get('peer')} ({str(event.get('state', '?')).lower()}): "
                f"votes for {_vote(event.get('vote'))}")
    if kind == "leader_elected":
        took = event.get("election_ms")
        return (f"decides: leader is {event.get('peer')}, so it is {str(event.get('state', '?')).upper()}"
                + (f" (election took {took:.0f} ms)" if isinstance(took, (int, float)) else ""))
    return f"{kind}: {event}"


def timeline(events: list[dict[str, Any]], since: float | None = None, votes: bool = True) -> list[str]:
    """Lines ``+seconds  server N  sentence``, oldest first; ``votes=False`` keeps only decisions."""
    chosen = [e for e in events if since is None or e.get("ts", 0) >= since]
    if not votes:
        chosen = [e for e in chosen if e.get("kind") in ("leader_elected", "state_changed")]
    if not chosen:
        return []
    t0 = chosen[0].get("ts", 0)
    return [f"+{e.get('ts', 0) - t0:8.3f}s  server {e.get('server')}  {describe(e)}" for e in chosen]


def elections(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each completed election: when, who was elected, by whom, and how long it took."""
    out: list[dict[str, Any]] = []
    for e in events:
        if e.get("kind") != "leader_elected":
            continue
        last = out[-1] if out else None
        if last and last["leader"] == e.get("peer") and e.get("ts", 0) - last["ts"] < 5:
            last["servers"].append(e.get("server"))
            continue
        out.append({"ts": e.get("ts", 0), "leader": e.get("peer"), "servers": [e.get("server")],
                    "election_ms": e.get("election_ms")})
    return out
