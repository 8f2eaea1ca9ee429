"""SASL DIGEST-MD5 with users from a JAAS file, through kazoo (pure-sasl), as kazoo's suite uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl

from tests.support.ourzk import ZkopsProcess
from zkops.server.sasl import DigestMd5Server, SaslError, load_users

pytestmark = pytest.mark.integration

JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="nobody" password="x";
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    jaas = tmp_path_factory.mktemp("jaas") / "jaas.conf"
    jaas.write_text(JAAS)
    proc = ZkopsProcess(extra_cfg={"java.security.auth.login.config": str(jaas)})
    proc.start()
    yield proc
    proc.cleanup()


def sasl_client(server: ZkopsProcess, user: str, password: str) -> KazooClient:
    return KazooClient(server.address, timeout=5, connection_retry={"max_tries": 1},
                       sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password})


def test_users_come_from_the_server_section(tmp_path: Path):
    f = tmp_path / "jaas.conf"
    f.write_text(JAAS)
    assert load_users(f) == {"super": "super_secret", "jaasuser": "jaas_password"}
    assert load_users(f, "Client") == {}


def test_sasl_user_owns_its_nodes(server):
    owner = sasl_client(server, "jaasuser", "jaas_password")
    owner.start(timeout=15)
    other = KazooClient(server.address)
    other.start()
    try:
        owner.create("/sasl-owned", b"mine", acl=(make_acl("sasl", credential="jaasuser", all=True),))
        assert owner.get("/sasl-owned")[0] == b"mine"
        with pytest.raises(NoAuthError):
            other.get("/sasl-owned")
        owner.create("/sasl-auth", acl=(make_acl("auth", credential="", all=True),))
        assert owner.get_acls("/sasl-auth")[0][0].id.id == "jaasuser"
    finally:
        owner.stop()
        other.stop()


@pytest.mark.parametrize("user, password", [("jaasuser", "wrong"), ("baduser", "badpassword")])
def test_wrong_credentials_are_auth_failed(server, user, password):
    client = sasl_client(server, user, password)
    with pytest.raises(AuthFailedError):  # kazoo says CONNECTED before SASL; the first request fails
        client.start(timeout=15)
        client.exists("/")
    client.stop()
    healthy = KazooClient(server.address)
    healthy.start()
    assert healthy.exists("/") is not None, "the server serves on"
    healthy.stop()


def test_garbage_tokens_are_refused():
    s = DigestMd5Server({"u": "p"})
    s.step(b"")
    with pytest.raises(SaslError):
        s.step(b"\xff\xfe not a digest response")
