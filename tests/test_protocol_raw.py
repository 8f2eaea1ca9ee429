"""Raw client-port behaviour, run against both Apache ZooKeeper 3.8 and zkops.

These cover requests kazoo 2.11 does not send (addWatch, getEphemerals,
getAllChildrenNumber, whoAmI, checkWatches) and bad input: whatever a client sends,
only its own connection is closed and everyone else is served on.
"""

from __future__ import annotations

import socket
import struct
import uuid

import pytest

from tests.support.ourzk import InProcessServer
from tests.support.rawclient import RawClient, four_letter
from zkops.server.codes import CreateFlag, Err, EventType, Op, WatcherType
from zkops.server.records import (
    ACL,
    AddWatchRequest,
    CountResponse,
    CreateRequest,
    GetChildrenResponse,
    Id,
    PathOnly,
    PathRequest,
    SetDataRequest,
    WatchesRequest,
    WhoAmIResponse,
)

OPEN = [ACL(31, Id("world", "anyone"))]


@pytest.fixture(scope="module")
def zkops_server():
    with InProcessServer() as s:
        yield s


@pytest.fixture(params=["apache", "zkops"])
def address(request):
    if request.param == "apache":
        request.applymarker(pytest.mark.reference)
        return request.getfixturevalue("reference_zk").address
    return request.getfixturevalue("zkops_server").address


def _create(c: RawClient, path: str, flags: int = 0) -> int:
    hdr, _ = c.request(Op.create, CreateRequest(path, b"", OPEN, flags))
    return hdr.err


def test_persistent_recursive_watch_sees_descendants_but_no_child_events(address):
    c = RawClient(address)
    base = "/pw-" + uuid.uuid4().hex[:6]
    assert _create(c, base) == 0
    hdr, _ = c.request(Op.addWatch, AddWatchRequest(base, 1))
    assert hdr.err == 0
    assert _create(c, base + "/a") == 0
    assert _create(c, base + "/a/b") == 0
    c.request(Op.setData, SetDataRequest(base + "/a/b", b"x", -1))
    events = [(e.type, e.path) for e in c.events]
    assert events == [(EventType.NodeCreated, base + "/a"), (EventType.NodeCreated, base + "/a/b"),
                      (EventType.NodeDataChanged, base + "/a/b")]
    c.close()


def test_persistent_watch_fires_repeatedly_with_child_events(address):
    c = RawClient(address)
    base = "/pp-" + uuid.uuid4().hex[:6]
    assert _create(c, base) == 0
    c.request(Op.addWatch, AddWatchRequest(base, 0))
    c.request(Op.setData, SetDataRequest(base, b"1", -1))
    c.request(Op.setData, SetDataRequest(base, b"2", -1))
    assert _create(c, base + "/k") == 0
    assert _create(c, base + "/k/deeper") == 0
    events = [(e.type, e.path) for e in c.events]
    assert events == [(EventType.NodeDataChanged, base), (EventType.NodeDataChanged, base),
                      (EventType.NodeChildrenChanged, base)]
    hdr, _ = c.request(Op.checkWatches, WatchesRequest(base, WatcherType.ANY))
    assert hdr.err == 0
    hdr, _ = c.request(Op.removeWatches, WatchesRequest(base, WatcherType.ANY))
    assert hdr.err == 0
    hdr, _ = c.request(Op.checkWatches, WatchesRequest(base, WatcherType.ANY))
    assert hdr.err == Err.NOWATCHER
    c.close()


def test_remove_watches_without_watch_is_nowatcher(address):
    c = RawClient(address)
    hdr, _ = c.request(Op.removeWatches, WatchesRequest("/zookeeper", WatcherType.DATA))
    assert hdr.err == Err.NOWATCHER
    hdr, _ = c.request(Op.getData, PathRequest("/zookeeper", True))
    assert hdr.err == 0
    hdr, _ = c.request(Op.checkWatches, WatchesRequest("/zookeeper", WatcherType.CHILDREN))
    assert hdr.err == Err.NOWATCHER
    hdr, _ = c.request(Op.removeWatches, WatchesRequest("/zookeeper", WatcherType.DATA))
    assert hdr.err == 0
    c.close()


def test_get_ephemerals_lists_only_this_sessions_nodes(address):
    c = RawClient(address)
    other = RawClient(address)
    base = "/eph-" + uuid.uuid4().hex[:6]
    assert _create(c, base) == 0
    assert _create(c, base + "/mine", CreateFlag.EPHEMERAL) == 0
    assert _create(c, base + "/seq-", CreateFlag.EPHEMERAL_SEQUENTIAL) == 0
    assert _create(other, base + "/theirs", CreateFlag.EPHEMERAL) == 0
    hdr, body = c.request(Op.getEphemerals, PathOnly(base))
    assert hdr.err == 0
    assert sorted(GetChildrenResponse.from_bytes(body).children) == [base + "/mine", base + "/seq-0000000001"]
    hdr, body = c.request(Op.getEphemerals, PathOnly(base + "/nothing"))
    assert GetChildrenResponse.from_bytes(body).children == []
    c.close()
    other.close()


def test_get_all_children_number_counts_descendants(address):
    c = RawClient(address)
    base = "/cnt-" + uuid.uuid4().hex[:6]
    for p in (base, base + "/a", base + "/a/b", base + "/c"):
        assert _create(c, p) == 0
    hdr, body = c.request(Op.getAllChildrenNumber, PathOnly(base))
    assert hdr.err == 0 and CountResponse.from_bytes(body).totalNumber == 3
    hdr, _ = c.request(Op.getAllChildrenNumber, PathOnly(base + "/missing"))
    assert hdr.err == Err.NONODE
    c.close()


def test_who_am_i_reports_ip_then_digest_user(address):
    from zkops.server.records import AuthPacket

    c = RawClient(address)
    hdr, body = c.request(Op.whoAmI)
    assert hdr.err == 0
    assert [(i.authScheme, i.user) for i in WhoAmIResponse.from_bytes(body).clientInfo] == [("ip", "127.0.0.1")]
    c.xid += 1
    c.send_frame(struct.pack(">ii", -4, Op.auth) + AuthPacket(0, "digest", b"bob:pw").to_bytes())
    hdr, _ = c.reply(-4)
    assert hdr.err == 0
    hdr, body = c.request(Op.whoAmI)
    infos = {(i.authScheme, i.user) for i in WhoAmIResponse.from_bytes(body).clientInfo}
    assert infos == {("ip", "127.0.0.1"), ("digest", "bob")}
    c.close()


def test_unknown_opcode_gets_an_error_and_the_connection_lives(address, request):
    c = RawClient(address)
    c.xid += 1
    c.send_frame(struct.pack(">ii", c.xid, 999))
    try:
        hdr, _ = c.reply(c.xid)
        got = hdr.err
    except (ConnectionError, OSError):
        got = "closed"
    if "zkops" in request.node.callspec.id:
        assert got == Err.UNIMPLEMENTED
        hdr, _ = c.request(Op.exists, PathRequest("/", False))
        assert hdr.err == 0
    c.close()


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    struct.pack(">i", -5) + b"abcd",
    struct.pack(">i", 0x7FFFFFF0) + b"abcd",
    struct.pack(">i", 0x100000 + 1) + b"\0" * 64,
    struct.pack(">i", 12) + b"\xff" * 12,
])
def test_bad_input_closes_only_that_connection(address, garbage):
    bystander = RawClient(address)
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(garbage)
    assert _closed(s)
    s.close()
    hdr, _ = bystander.request(Op.exists, PathRequest("/", False))
    assert hdr.err == 0
    bystander.close()


def test_malformed_request_body_fails_with_marshalling_error(address):
    c = RawClient(address)
    # a create and a getData whose path length runs past the frame
    c.xid = 1
    c.send_frame(struct.pack(">ii", 1, Op.create) + struct.pack(">i", 1000) + b"/x")
    hdr, _ = c.reply(1)
    assert hdr.err == Err.MARSHALLINGERROR
    c.xid = 2
    c.send_frame(struct.pack(">ii", 2, Op.getData) + struct.pack(">i", 1000) + b"/x")
    hdr, _ = c.reply(2)
    assert hdr.err == Err.MARSHALLINGERROR
    hdr, _ = c.request(Op.exists, PathRequest("/", False))
    assert hdr.err == 0
    c.close()


def test_four_letter_words(address):
    assert four_letter(address, "ruok") == "imok"
    srvr = four_letter(address, "srvr")
    assert srvr.startswith("Zookeeper version: 3.8.0-")
    assert "Mode: standalone" in srvr and "Node count: " in srvr
    mntr = dict(line.split("\t", 1) for line in four_letter(address, "mntr").splitlines())
    assert mntr["zk_server_state"] == "standalone"
    assert int(mntr["zk_znode_count"]) >= 4
    assert four_letter(address, "isro") == "rw"
    assert four_letter(address, "envi").startswith("Environment:\nzookeeper.version=3.8.0-")
    assert "Total watches:" in four_letter(address, "wchs")
    assert four_letter(address, "dirs").startswith("datadir_size: ")


def test_four_letter_whitelist_refuses_other_words():
    with InProcessServer(four_letter_words=frozenset({"srvr"})) as s:
        assert four_letter(s.address, "ruok") == "ruok is not executed because it is not in the whitelist.\n"
        assert "Mode: standalone" in four_letter(s.address, "srvr")


def test_session_reattach_keeps_ephemerals_and_bad_password_is_refused(address):
    c = RawClient(address, timeout_ms=10000)
    base = "/re-" + uuid.uuid4().hex[:6]
    assert _create(c, base, CreateFlag.EPHEMERAL) == 0
    sid, pw = c.session_id, c.connect_response.passwd
    c.sock.close()
    again = RawClient(address, session_id=sid, passwd=pw)
    assert again.session_id == sid and again.connect_response.timeOut > 0
    hdr, _ = again.request(Op.exists, PathRequest(base, False))
    assert hdr.err == 0
    bad = RawClient(address, session_id=sid, passwd=b"\x01" * 16)
    assert bad.connect_response.timeOut == 0 and bad.session_id == 0
    assert _closed(bad.sock)
    again.close()


def test_negotiated_timeout_is_clamped_to_the_tick_limits(address):
    low = RawClient(address, timeout_ms=100)
    high = RawClient(address, timeout_ms=10_000_000)
    assert low.connect_response.timeOut == 4000
    assert high.connect_response.timeOut == 40000
    low.close()
    high.close()


def test_close_session_deletes_its_ephemerals(address):
    c = RawClient(address)
    watcher = RawClient(address)
    base = "/cl-" + uuid.uuid4().hex[:6]
    assert _create(c, base, CreateFlag.EPHEMERAL) == 0
    hdr, _ = watcher.request(Op.exists, PathRequest(base, True))
    assert hdr.err == 0
    hdr, _ = c.request(Op.closeSession)
    assert hdr.err == 0
    ev = watcher.wait_event()
    assert (ev.type, ev.path) == (EventType.NodeDeleted, base)
    watcher.close()


def _extended_types_observations(address: str) -> list:
    from zkops.server.records import Create2Response, CreateTTLRequest, StatResponse

    c = RawClient(address)
    base = "/ext-" + uuid.uuid4().hex[:6]
    assert _create(c, base) == 0
    out = []

    def create2(op: int, req) -> tuple:
        hdr, body = c.request(op, req)
        if hdr.err:
            return ("err", hdr.err)
        r = Create2Response.from_bytes(body)
        return (r.path[len(base):], bool(r.stat.ephemeralOwner), r.stat.version, r.stat.numChildren)

    out.append(create2(Op.createContainer, CreateRequest(base + "/ctr", b"", OPEN, CreateFlag.CONTAINER)))
    out.append(create2(Op.createContainer, CreateRequest(base + "/ctr2", b"", OPEN, 0)))
    out.append(create2(Op.create2, CreateRequest(base + "/ctr3", b"", OPEN, CreateFlag.CONTAINER)))
    out.append(create2(Op.createTTL, CreateTTLRequest(base + "/ttl", b"", OPEN, CreateFlag.PERSISTENT_WITH_TTL, 60000)))
    out.append(create2(Op.createTTL, CreateTTLRequest(base + "/ttls-", b"", OPEN,
                                                      CreateFlag.PERSISTENT_SEQUENTIAL_WITH_TTL, 5)))
    out.append(create2(Op.createTTL, CreateTTLRequest(base + "/ttl0", b"", OPEN, CreateFlag.PERSISTENT_WITH_TTL, 0)))
    out.append(create2(Op.createTTL, CreateTTLRequest(base + "/ttlp", b"", OPEN, 0, 100)))
    out.append(create2(Op.createTTL, CreateTTLRequest(base + "/ttlhuge", b"", OPEN,
                                                      CreateFlag.PERSISTENT_WITH_TTL, 1 << 41)))
    out.append(create2(Op.create2, CreateRequest(base + "/ttl-as-create", b"", OPEN, CreateFlag.PERSISTENT_WITH_TTL)))
    out.append(create2(Op.create2, CreateRequest(base + "/badflags", b"", OPEN, 42)))
    out.append(create2(Op.create2, CreateRequest(base + "/ctr/kid", b"", OPEN, CreateFlag.EPHEMERAL)))
    hdr, body = c.request(Op.exists, PathRequest(base + "/ctr", False))
    out.append(StatResponse.from_bytes(body).stat.numChildren)
    c.close()
    return out


@pytest.mark.reference
def test_containers_and_ttl_nodes_match_apache(reference_zk, zkops_server):
    assert _extended_types_observations(zkops_server.address) == _extended_types_observations(reference_zk.address)


def test_set_watches_replays_what_happened_while_away(address):
    from zkops.server.records import SetWatches

    c = RawClient(address)
    writer = RawClient(address)
    base = "/sw-" + uuid.uuid4().hex[:6]
    for p in (base, base + "/changed", base + "/deleted", base + "/same"):
        assert _create(c, p) == 0
    hdr, _ = c.request(Op.exists, PathRequest(base, False))
    seen = hdr.zxid
    writer.request(Op.setData, SetDataRequest(base + "/changed", b"new", -1))
    from zkops.server.records import DeleteRequest

    writer.request(Op.delete, DeleteRequest(base + "/deleted", -1))
    assert _create(writer, base + "/born") == 0
    c.xid += 1
    c.send_frame(struct.pack(">ii", -8, Op.setWatches) + SetWatches(
        seen, [base + "/changed", base + "/deleted", base + "/same"], [base + "/born", base + "/unborn"],
        [base]).to_bytes())
    hdr, _ = c.reply(-8)
    assert hdr.err == 0
    got = sorted((e.type, e.path) for e in c.events)
    assert got == sorted([(EventType.NodeDataChanged, base + "/changed"), (EventType.NodeDeleted, base + "/deleted"),
                          (EventType.NodeCreated, base + "/born"), (EventType.NodeChildrenChanged, base)])
    c.events.clear()
    # the watches that had nothing to report are registered now
    writer.request(Op.setData, SetDataRequest(base + "/same", b"x", -1))
    ev = c.wait_event()
    assert (ev.type, ev.path) == (EventType.NodeDataChanged, base + "/same")
    c.close()
    writer.close()


def test_auth_with_unknown_scheme_fails_and_closes(address):
    from zkops.server.records import AuthPacket

    c = RawClient(address)
    c.send_frame(struct.pack(">ii", -4, Op.auth) + AuthPacket(0, "nosuchscheme", b"x").to_bytes())
    hdr, _ = c.reply(-4)
    assert hdr.err == Err.AUTHFAILED
    assert _closed(c.sock)


def test_super_digest_passes_every_acl():
    from zkops.server.acl import digest
    from zkops.server.records import AuthPacket

    with InProcessServer(super_digest=digest("super:adminpw")) as s:
        owner = RawClient(s.address)
        hdr, _ = owner.request(Op.create, CreateRequest("/locked", b"s", [ACL(31, Id("digest", digest("a:b")))], 0))
        assert hdr.err == 0
        admin = RawClient(s.address)
        hdr, _ = admin.request(Op.getData, PathRequest("/locked", False))
        assert hdr.err == Err.NOAUTH
        admin.send_frame(struct.pack(">ii", -4, Op.auth) + AuthPacket(0, "digest", b"super:adminpw").to_bytes())
        assert admin.reply(-4)[0].err == 0
        hdr, _ = admin.request(Op.getData, PathRequest("/locked", False))
        assert hdr.err == 0


def test_max_client_connections_per_address():
    with InProcessServer(max_client_cnxns=2) as s:
        a, b = RawClient(s.address), RawClient(s.address)
        host, port = s.address.rsplit(":", 1)
        third = socket.create_connection((host, int(port)))
        assert _closed(third)
        a.close()
        import time

        time.sleep(0.2)
        c = RawClient(s.address)
        assert c.session_id
        b.close()
        c.close()


def test_client_that_saw_a_newer_zxid_is_refused():
    from zkops.server.records import ConnectRequest

    with InProcessServer() as s:
        host, port = s.address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        req = ConnectRequest(0, 1 << 40, 10000, 0, b"\0" * 16).to_bytes() + b"\0"
        sock.sendall(struct.pack(">i", len(req)) + req)
        assert _closed(sock)


def test_watch_event_comes_before_the_reply_that_caused_it(address):
    c = RawClient(address)
    base = "/ord-" + uuid.uuid4().hex[:6]
    assert _create(c, base) == 0
    hdr, _ = c.request(Op.getData, PathRequest(base, True))
    assert hdr.err == 0
    # send the write and read raw frames: the notification must precede the write's reply
    c.xid += 1
    from zkops.server.records import ReplyHeader, RequestHeader

    c.send_frame(RequestHeader(c.xid, Op.setData).to_bytes() + SetDataRequest(base, b"x", -1).to_bytes())
    first = ReplyHeader.read(c.read_frame(), 0)[0]
    second = ReplyHeader.read(c.read_frame(), 0)[0]
    assert (first.xid, second.xid) == (-1, c.xid)
    c.close()


def test_requests_sent_behind_the_connect_request_are_served_after_it(address):
    """A client may pipeline requests behind its ConnectRequest, before the reply: Apache
    answers the connect first, then serves them in order on the new session."""
    from zkops.server.records import ConnectRequest, RequestHeader

    host, port = address.rsplit(":", 1)
    path = "/pipelined-" + uuid.uuid4().hex[:6]
    connect = ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"
    create = RequestHeader(1, Op.create).to_bytes() + CreateRequest(path, b"x", OPEN, 0).to_bytes()
    read = RequestHeader(2, Op.exists).to_bytes() + PathRequest(path, False).to_bytes()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"".join(struct.pack(">i", len(f)) + f for f in (connect, create, read)))

        def frame() -> bytes:
            (n,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
            return s.recv(n, socket.MSG_WAITALL)

        _, timeout, session = struct.unpack_from(">iiq", frame())
        assert timeout > 0 and session != 0
        replies = [struct.unpack_from(">iqi", frame()) for _ in range(2)]
    assert [(xid, err) for xid, _, err in replies] == [(1, 0), (2, 0)]
