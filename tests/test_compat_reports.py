"""What monitoring tools read from an ensemble member, side by side with Apache ZooKeeper 3.8:
srvr/stat/conf/wchc/wchp/wchs and the AdminServer's stats, watches and connections, on a
3-node all-Apache ensemble and a 3-node all-zkops ensemble, leader and follower.

Read once right after the election (no write yet: the zxid srvr shows is the epoch's first),
then after the same requests on both leaders: a one-shot watch, persistent watches (addWatch),
and a persistent watch on a null path.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.support import refzk
from tests.support.ensemble import Ensemble, four_letter, mode
from tests.support.rawclient import RawClient
from zkops.server.codes import Op
from zkops.server.records import ACL, AddWatchRequest, CreateRequest, Id, PathRequest

pytestmark = [pytest.mark.integration, pytest.mark.reference]

OPEN = [ACL(31, Id("world", "anyone"))]
WORDS = ("srvr", "stat", "conf", "cons", "wchs", "wchc", "wchp", "dump")
COMMANDS = ("server_stats", "stats", "watches", "watches_by_path", "watch_summary", "connections", "voting_view",
            "dump", "zabstate")


def _raw(port: int, command: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/{command}", timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _wait(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _read(ports: dict[int, int], admins: dict[int, int]) -> dict[str, dict[str, object]]:
    """role -> the words' texts and the commands' (status, body) of one leader and one follower."""
    out: dict[str, dict[str, object]] = {}
    for i, port in sorted(ports.items()):
        role = mode(port)
        if role is None or role in out:
            continue
        side: dict[str, object] = {w: four_letter(port, w, 10.0) for w in WORDS}
        side.update({"/" + c: _raw(admins[i], c) for c in COMMANDS})  # the AdminServer's
        out[role] = side
    return out


def _requests(port: int) -> list[RawClient]:
    """The same watches on both leaders: a one-shot data watch on a missing node, persistent
    watches on / and a new node; a second session sets a persistent watch on a null path."""
    c = RawClient(f"127.0.0.1:{port}")
    c.request(Op.create, CreateRequest("/p", b"x", OPEN, 0))
    c.request(Op.exists, PathRequest("/q", True))
    c.request(Op.addWatch, AddWatchRequest("/", 0))
    c.request(Op.addWatch, AddWatchRequest("/p", 1))
    return [c]


def _null_watch(port: int) -> RawClient:
    c = RawClient(f"127.0.0.1:{port}")
    hdr, _ = c.request(Op.addWatch, AddWatchRequest(None, 0))
    assert hdr.err == 0
    return c


def _in_step(ports: dict[int, int]) -> bool:
    """Every member has applied the same writes (srvr's Zxid is one value)."""
    zxids = {_lines(four_letter(p, "srvr", 10.0)).get("Zxid") for p in ports.values()}
    return len(zxids) == 1 and None not in zxids


@pytest.fixture(scope="module")
def pair():
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    apache = refzk.RefEnsemble(voters=3, observers=0)
    admin = {i: refzk.free_port() for i in (1, 2, 3)}
    ours = Ensemble(voters=3, tick_ms=500, extra={"admin.serverAddress": "127.0.0.1"},
                    per_node={i: {"admin.serverPort": str(p)} for i, p in admin.items()})
    clients: list[RawClient] = []
    try:
        apache.start(180)
        ours.start()
        sides = {"apache": ({i: apache.client_port(i) for i in apache.ids}, {i: apache.admin_port(i) for i in apache.ids}),
                 "zkops": ({i: ours.client_port(i) for i in ours.ids}, admin)}
        roles = ["follower", "follower", "leader"]
        for name, (ports, _) in sides.items():
            try:
                _wait(lambda ports=ports: sorted(mode(p) or "" for p in ports.values()) == roles, f"{name}'s roles", 180)
            except AssertionError as exc:
                logs = "\n".join((apache.workdir / f"a{i}" / "server.log").read_text(errors="replace")[-1500:]
                                 for i in apache.ids)
                raise AssertionError(f"{exc}\n--- Apache\n{logs}\n--- zkops\n{ours.log_tail()}") from None
        out: dict[str, dict[str, object]] = {}
        for name, (ports, admins) in sides.items():
            # every learner in broadcast, so the follower's numbers are final
            _wait(lambda ports=ports: all("broadcast" in four_letter(p, "mntr", 10.0) for p in ports.values()),
                  f"{name} in broadcast")
            fresh = _read(ports, admins)
            leader = next(p for p in ports.values() if mode(p) == "leader")
            clients += _requests(leader)
            _wait(lambda ports=ports: _in_step(ports), f"{name}'s members at one zxid")
            watched = _read(ports, admins)
            clients.append(_null_watch(leader))
            _wait(lambda ports=ports: _in_step(ports), f"{name}'s members at one zxid")
            null = _read(ports, admins)
            out[name] = {"fresh": fresh, "watched": watched, "null": null}
        yield out["apache"], out["zkops"]
    finally:
        for c in clients:
            c.close()
        apache.cleanup()
        ours.cleanup()


def _lines(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def _json(reply: object) -> dict:
    status, body = reply  # type: ignore[misc]
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_srvr_and_stat_after_the_election_show_apaches_zxid_and_lines(pair, role):
    theirs, ours = pair
    a, z = theirs["fresh"][role], ours["fresh"][role]
    for word in ("srvr", "stat"):
        ta, tz = _lines(a[word]), _lines(z[word])
        assert list(ta) == list(tz), word  # the same lines: a leader's "Proposal sizes" too
        if role == "leader":  # the epoch's first zxid, no write yet
            assert tz["Zxid"] == ta["Zxid"] == "0x100000000", word
        else:  # an Apache learner's depends on how it synced (DIFF: its own; SNAP: the leader's)
            assert tz["Zxid"] == "0x0" and ta["Zxid"] in ("0x0", "0x100000000"), word
        assert tz["Latency min/avg/max"] == ta["Latency min/avg/max"] == "0/0.0/0"
        if role == "leader":
            assert tz["Proposal sizes last/min/max"] == ta["Proposal sizes last/min/max"] == "-1/-1/-1"
    for command in ("/server_stats", "/stats"):
        ja, jz = _json(a[command]), _json(z[command])
        assert list(ja) == list(jz), command
        assert set(ja["server_stats"]) == set(jz["server_stats"]), command  # Apache's order varies
        if role == "leader":
            assert jz["server_stats"]["last_processed_zxid"] == ja["server_stats"]["last_processed_zxid"] == 1 << 32
            assert jz["proposal_stats"] == ja["proposal_stats"]


def test_the_zxid_moves_on_with_writes(pair):
    theirs, ours = pair
    for side in (theirs, ours):
        zxid = int(_lines(side["watched"]["leader"]["srvr"])["Zxid"], 16)
        assert zxid >> 32 == 1 and zxid & 0xFFFFFFFF > 0


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_conf_of_an_ensemble_member_has_apaches_quorum_lines(pair, role):
    theirs, ours = pair
    a, z = str(theirs["fresh"][role]["conf"]), str(ours["fresh"][role]["conf"])

    def keys(text: str) -> list[str]:
        return [re.sub(r"^server\.\d+", "server.N", line.split("=", 1)[0]) for line in text.split("\n")]

    assert keys(z) == keys(a)
    assert not z.endswith("\n") and z.rsplit("\n", 1)[1] == "version=0"
    servers = [line for line in z.split("\n") if line.startswith("server.")]
    assert all(re.fullmatch(r"server\.\d=127\.0\.0\.1:\d+:\d+:participant", s) for s in servers), servers
    values = dict(line.split("=", 1) for line in z.split("\n") if "=" in line and not line.startswith("server."))
    assert values["peerType"] == "0" and values["electionAlg"] == "3"
    assert values["initLimit"] == "10" and values["syncLimit"] == "5"


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_voting_view_has_apaches_shape(pair, role):
    theirs, ours = pair
    a = _json(theirs["fresh"][role]["/voting_view"])["current_config"]
    z = _json(ours["fresh"][role]["/voting_view"])["current_config"]
    assert sorted(a) == sorted(z) == ["1", "2", "3"]
    for sid in z:
        assert list(z[sid]) == list(a[sid])
        assert z[sid]["learner_type"] == "participant" and len(z[sid]["server_addresses"]) == 1
    # Apache knows the client address of the server itself only (no ;client on the server lines)
    assert sorted(bool(v["client_address"]) for v in a.values()) == sorted(bool(v["client_address"]) for v in z.values())


def _sessions(text: str) -> list[str]:
    """A watch word's text with session ids left out, its blocks in order: Apache lists the
    watchers (wchc) in the order of its connection objects' identity hashes."""
    text = re.sub(r"0x[0-9a-f]{9,}", "<sid>", text)
    return sorted(re.split(r"\n(?=\S)", text.strip("\n")))


def test_watch_words_and_commands_with_persistent_watches(pair):
    theirs, ours = pair
    a, z = theirs["watched"]["leader"], ours["watched"]["leader"]
    for word in ("wchs", "wchc", "wchp"):
        assert _sessions(str(z[word])) == _sessions(str(a[word])), (word, z[word], a[word])
    assert _json(z["/watch_summary"]) == _json(a["/watch_summary"])
    for command in ("/watches", "/watches_by_path"):
        ja, jz = _json(a[command]), _json(z[command])
        key = next(iter(ja))  # session ids differ: compare the paths, in order
        if command == "/watches":
            assert list(jz[key].values()) == list(ja[key].values())
        else:
            assert list(jz[key]) == list(ja[key])


def test_watch_reports_with_a_null_path_watch(pair):
    theirs, ours = pair
    a, z = theirs["null"]["leader"], ours["null"]["leader"]
    for word in ("wchs", "wchc", "wchp"):
        assert _sessions(str(z[word])) == _sessions(str(a[word])), (word, z[word], a[word])
    assert _json(z["/watch_summary"]) == _json(a["/watch_summary"])
    ja, jz = _json(a["/watches"]), _json(z["/watches"])
    assert sorted(map(str, ja["session_id_to_watched_paths"].values())) == \
        sorted(map(str, jz["session_id_to_watched_paths"].values()))
    # Apache's JSON writer stops at the null key (its body ends there: not JSON); zkops answers,
    # with the key "null"
    assert a["/watches_by_path"][1].rstrip().endswith('"path_to_session_ids" : {')
    by_path = _json(z["/watches_by_path"])["path_to_session_ids"]
    assert list(by_path) == ["null", "/p", "/q", "/"]


def test_connections_have_apaches_json_types(pair):
    theirs, ours = pair
    a = _json(theirs["null"]["leader"]["/connections"])["connections"]
    z = _json(ours["null"]["leader"]["/connections"])["connections"]
    assert len(a) == len(z) == 2

    def types(conn: dict) -> dict[str, str]:
        return {k: type(v).__name__ for k, v in conn.items()}

    assert [types(c) for c in z] == [types(c) for c in a]
    watching = {int(x, 16) for x in re.findall(r"^0x([0-9a-f]+)$", str(ours["null"]["leader"]["wchc"]), re.M)}
    assert {c["session_id"] for c in z} == watching


def test_a_followers_dump_lists_the_global_sessions_as_apaches_learner_does(pair):
    theirs, ours = pair

    def sessions_part(text: object) -> list[str]:
        head = str(text).split("Connections dump:", 1)[0]
        return re.sub(r"0x[0-9a-f]+\t", "<sid>\t", head).splitlines()

    a, z = sessions_part(theirs["null"]["follower"]["dump"]), sessions_part(ours["null"]["follower"]["dump"])
    assert z == a and a[1] == "Global Sessions(2):" and a[2] == "<sid>\t10000ms"
    ja, jz = _json(theirs["null"]["follower"]["/dump"]), _json(ours["null"]["follower"]["/dump"])
    assert ja["expiry_time_to_session_ids"] == jz["expiry_time_to_session_ids"] == {}


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_zabstate_of_an_ensemble_member_has_apaches_keys(pair, role):
    theirs, ours = pair
    a, z = _json(theirs["watched"][role]["/zabstate"]), _json(ours["watched"][role]["/zabstate"])
    assert list(z) == list(a)
    for key in ("quorum_address", "election_address"):
        assert list(z[key]) == list(a[key])
        assert z[key]["all_ports"] == [int(z[key]["one"].rsplit(":", 1)[1])]
    assert z["is_leader"] == a["is_leader"] == (role == "leader") and z["voting"] == a["voting"] is True
    assert z["zabstate"] == a["zabstate"] == "broadcast"
    for side in (a, z):  # the last zxid, and its epoch and counter
        assert int(side["last_zxid"], 16) == side["zab_epoch"] << 32 | side["zab_counter"] and side["zab_epoch"] == 1


def _counts(port: int) -> tuple[int, int]:
    f = _lines(four_letter(port, "srvr", 10.0))
    return int(f["Received"]), int(f["Sent"])


def _packets_run(address: str, port: int) -> dict[str, object]:
    """srvr's packet counts around a session that comes and goes, and after crst and srst."""
    out: dict[str, object] = {}
    before = _counts(port)
    c = RawClient(address)
    for _ in range(3):
        c.request(Op.exists, PathRequest("/zookeeper", False))
    c.close()
    polls = 0  # each poll is a word: one packet received and one sent

    def gone() -> bool:
        nonlocal polls
        polls += 1
        return four_letter(port, "cons", 10.0).count("\n") == 2

    _wait(gone, "the session's connection to go")
    after = _counts(port)
    out["delta"] = (after[0] - before[0] - polls, after[1] - before[1] - polls)
    out["cons"] = four_letter(port, "cons", 10.0)  # the word's own connection: recved=1, sent=0
    four_letter(port, "crst", 10.0)
    out["after_crst"] = _counts(port)[0] - after[0]
    four_letter(port, "srst", 10.0)
    out["after_srst"] = _counts(port)
    return out


def test_packet_counts_keep_closed_connections_and_count_four_letter_words():
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    from tests.support.ourzk import ZkopsProcess

    runs = {}
    for name, server in (("apache", refzk.RefZooKeeper()), ("zkops", ZkopsProcess())):
        with server:
            runs[name] = _packets_run(server.address, server.port)
    a, z = runs["apache"], runs["zkops"]
    # received: the connect request, three exists and the second srvr (the polls taken out)
    assert z["delta"][0] == a["delta"][0] == 5, runs  # type: ignore[index]
    # sent: the first srvr's answer, three replies, and (Apache; zkops does not count it yet)
    # the connect response
    assert a["delta"][1] - 1 <= z["delta"][1] <= a["delta"][1], runs  # type: ignore[index]
    assert re.sub(r":\d+\[", ":P[", str(z["cons"])) == re.sub(r":\d+\[", ":P[", str(a["cons"])) \
        == " /127.0.0.1:P[0](queued=0,recved=1,sent=0)\n\n"
    assert z["after_crst"] == a["after_crst"] == 3  # cons, crst and srvr: the server's counts go on
    assert z["after_srst"] == a["after_srst"] == (1, 1)  # this srvr, and srst's answer
