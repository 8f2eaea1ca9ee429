"""TLS on secureClientPort with PEM files, and client certificates as the x509 ACL scheme."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

from tests.support.ourzk import ZkopsProcess
from tests.support.pki import Pki
from tests.support.refzk import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.issue("server", "zk1.example", server=True)
    p.issue("alice", "alice")
    p.issue("bob", "bob")
    p.issue("admin", "admin")
    return p


@pytest.fixture(scope="module")
def tls_server(pki: Pki):
    port = free_port()
    proc = ZkopsProcess(extra_cfg={
        "secureClientPort": str(port), "secureClientPortAddress": "127.0.0.1",
        "ssl.keyStore.location": str(pki.dir / "server.pem"), "ssl.trustStore.location": str(pki.ca),
        "ssl.clientAuth": "want",
        "zookeeper.X509AuthenticationProvider.superUser": "CN=admin,O=zkops tests"})
    proc.secure_port = port  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.cleanup()


def tls_client(server: ZkopsProcess, pki: Pki, who: str | None) -> KazooClient:
    kw = {"certfile": str(pki.dir / f"{who}.crt"), "keyfile": str(pki.dir / f"{who}.key")} if who else {}
    zk = KazooClient(hosts=f"127.0.0.1:{server.secure_port}", use_ssl=True, verify_certs=True,  # type: ignore[attr-defined]
                     ca=str(pki.ca), timeout=5, **kw)
    zk.start(timeout=15)
    return zk


def test_kazoo_over_tls_and_x509_acls(tls_server: ZkopsProcess, pki: Pki):
    alice = tls_client(tls_server, pki, "alice")
    try:
        alice.create("/alice-only", b"secret", acl=[ACL(Permissions.ALL, Id("x509", "CN=alice,O=zkops tests"))])
        assert alice.get("/alice-only")[0] == b"secret"
        alice.create("/via-auth", b"s2", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        assert alice.get_acls("/via-auth")[0] == [ACL(Permissions.ALL, Id("x509", "CN=alice,O=zkops tests"))]
    finally:
        alice.stop()
    bob = tls_client(tls_server, pki, "bob")
    anonymous = tls_client(tls_server, pki, None)  # clientAuth=want: no certificate, no x509 id
    plain = KazooClient(hosts=tls_server.address, timeout=5)
    plain.start(timeout=15)
    try:
        for other in (bob, anonymous, plain):
            with pytest.raises(NoAuthError):
                other.get("/alice-only")
            with pytest.raises(NoAuthError):
                other.get("/via-auth")
    finally:
        for c in (bob, anonymous, plain):
            c.stop()
    admin = tls_client(tls_server, pki, "admin")
    try:
        assert admin.get("/alice-only")[0] == b"secret", "the superUser DN passes every ACL"
    finally:
        admin.stop()


def test_a_plain_client_on_the_tls_port_gets_a_clean_close(tls_server: ZkopsProcess, pki: Pki):
    connect = struct.pack(">iqiq16s", 0, 0, 30000, 0, b"\0" * 16)
    with socket.create_connection(("127.0.0.1", tls_server.secure_port), timeout=10) as s:  # type: ignore[attr-defined]
        s.sendall(struct.pack(">i", len(connect)) + connect)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        assert data in (b"",) or data[:1] == b"\x15", "no jute reply on the TLS port (a TLS alert at most)"
    with socket.create_connection(("127.0.0.1", tls_server.secure_port), timeout=10) as s:  # type: ignore[attr-defined]
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            s.recv(4096)
        except ConnectionResetError:
            pass
    zk = tls_client(tls_server, pki, "alice")  # and the server serves on
    assert zk.exists("/zookeeper") is not None
    zk.stop()


def test_client_auth_need_refuses_a_client_without_certificate(pki: Pki, tmp_path: Path):
    port = free_port()
    proc = ZkopsProcess(extra_cfg={"secureClientPort": str(port), "secureClientPortAddress": "127.0.0.1",
                                   "ssl.keyStore.location": str(pki.dir / "server.pem"),
                                   "ssl.trustStore.location": str(pki.ca)})  # clientAuth defaults to need
    proc.start()
    try:
        proc.secure_port = port  # type: ignore[attr-defined]
        zk = KazooClient(hosts=f"127.0.0.1:{port}", use_ssl=True, ca=str(pki.ca), timeout=3,
                         connection_retry={"max_tries": 1})
        with pytest.raises(Exception):  # noqa: B017 - kazoo gives up: handshake refused
            zk.start(timeout=5)
        zk.stop()
        ok = tls_client(proc, pki, "bob")
        assert ok.exists("/") is not None
        ok.stop()
    finally:
        proc.kill()


@pytest.mark.parametrize("extra, words", [
    ({}, ["ssl.keyStore.location is not"]),
    ({"ssl.keyStore.location": "/nonexistent.pem"}, ["ssl.keyStore.location=/nonexistent.pem", "cannot load"]),
    ({"ssl.keyStore.location": "{server}", "ssl.keyStore.type": "JKS"}, ["is not a JKS key store"]),
    ({"ssl.keyStore.location": "{server}", "ssl.keyStore.type": "PKCS12"}, ["zkops reads PEM files and JKS"]),
    ({"ssl.keyStore.location": "{server}", "ssl.clientAuth": "need"}, ["needs ssl.trustStore.location"]),
])
def test_bad_tls_settings_stop_start_up_with_the_key_named(pki: Pki, tmp_path: Path, extra, words):
    cfg = tmp_path / "zoo.cfg"
    (tmp_path / "data").mkdir()
    lines = {"tickTime": "2000", "dataDir": str(tmp_path / "data"), "secureClientPort": str(free_port())}
    lines.update({k: v.format(server=pki.dir / "server.pem") for k, v in extra.items()})
    cfg.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    done = subprocess.run([sys.executable, "-m", "zkops.server", "start-foreground", str(cfg)], capture_output=True,
                          text=True, timeout=60, env={"ZOO_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    for w in words:
        assert w in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _quorum_tls(pki: Pki, cert: str) -> dict[str, str]:
    return {"sslQuorum": "true", "ssl.quorum.keyStore.location": str(pki.dir / f"{cert}.pem"),
            "ssl.quorum.trustStore.location": str(pki.ca)}


def test_ssl_quorum_elects_and_replicates_and_keeps_out_strangers(pki: Pki, tmp_path: Path):
    from tests.support.ensemble import Ensemble

    pki.issue("peer", "zk-peer", server=True)  # SAN 127.0.0.1: hostname verification passes
    stranger_ca = Pki(tmp_path / "other", "another CA")
    stranger_ca.issue("peer", "zk-peer", server=True)
    per_node = {1: _quorum_tls(pki, "peer"), 2: _quorum_tls(pki, "peer"),
                3: {**_quorum_tls(stranger_ca, "peer")}}  # node 3's certificate is signed by another CA
    with Ensemble(3, per_node=per_node) as ens:
        leader = ens.wait_ready(60, ids=[1, 2])
        zk = KazooClient(ens.address(leader))
        zk.start()
        zk.create("/over-tls", b"yes")
        zk.stop()
        follower = 1 if leader == 2 else 2
        other = KazooClient(ens.address(follower))
        other.start()
        other.sync("/")
        assert other.get("/over-tls")[0] == b"yes"
        other.stop()
        from zkops.server.fourletterclient import four_letter

        deadline = time.monotonic() + 60  # node 3 may still be starting on a loaded machine
        while True:
            try:
                srvr = four_letter("127.0.0.1", ens.client_port(3), "srvr")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "not currently serving" in srvr, "a server whose certificate the others do not trust never joins"
        for port in (ens.ports[leader][1], ens.ports[leader][2]):  # quorum and election ports speak TLS only
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"\x00\x00\x00\x10ZKOP" + b"\x00" * 12)
                try:
                    reply = s.recv(100)
                except ConnectionResetError:
                    reply = b""
                assert not reply.startswith(b"\x00"), "no peer frame answers a plain connection"


def _jks(pki: Pki, tmp_path: Path) -> tuple[Path, Path]:
    """The server key and the CA as Java key stores, as Apache ZooKeeper's configs name them."""
    import jks
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = (pki.dir / "server.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    key = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    keystore, truststore = tmp_path / "keystore.jks", tmp_path / "truststore.jks"
    jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new("server", [cert], key, "pkcs8")]).save(str(keystore), "apassword")
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes()).public_bytes(serialization.Encoding.DER)
    jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("ca", ca)]).save(str(truststore), "apassword")
    return keystore, truststore


def test_java_key_stores_from_an_apache_config_work_unchanged(pki: Pki, tmp_path: Path):
    keystore, truststore = _jks(pki, tmp_path)
    port = free_port()
    proc = ZkopsProcess(extra_cfg={"secureClientPort": str(port), "secureClientPortAddress": "127.0.0.1",
                                   "ssl.keyStore.location": str(keystore), "ssl.keyStore.password": "apassword",
                                   "ssl.trustStore.location": str(truststore), "ssl.trustStore.password": "apassword"})
    proc.start()
    try:
        proc.secure_port = port  # type: ignore[attr-defined]
        zk = tls_client(proc, pki, "alice")
        assert zk.exists("/zookeeper") is not None
        zk.stop()
    finally:
        proc.cleanup()
    cfg = tmp_path / "zoo.cfg"
    (tmp_path / "data").mkdir()
    cfg.write_text(f"tickTime=2000\ndataDir={tmp_path / 'data'}\nsecureClientPort={free_port()}\n"
                   f"ssl.keyStore.location={keystore}\nssl.keyStore.password=wrong\n")
    done = subprocess.run([sys.executable, "-m", "zkops.server", "start-foreground", str(cfg)], capture_output=True,
                          text=True, timeout=60, env={"ZOO_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "wrong key store password" in done.stdout + done.stderr


def test_a_tls_server_on_uvloop_serves_tls(pki: Pki, monkeypatch: pytest.MonkeyPatch):
    """A config with a TLS port loads ssl before the loop is chosen: uvloop gets the real
    module (a server without TLS gives it a stand-in, server/eventloop.py)."""
    pytest.importorskip("uvloop")
    monkeypatch.setenv("ZKOPS_EVENT_LOOP", "uvloop")
    port = free_port()
    proc = ZkopsProcess(extra_cfg={
        "secureClientPort": str(port), "secureClientPortAddress": "127.0.0.1",
        "ssl.keyStore.location": str(pki.dir / "server.pem"), "ssl.trustStore.location": str(pki.ca),
        "ssl.clientAuth": "want"})
    proc.secure_port = port  # type: ignore[attr-defined]
    proc.start()
    try:
        alice = tls_client(proc, pki, "alice")
        try:
            alice.create("/over-uvloop", b"tls")
            assert alice.get("/over-uvloop")[0] == b"tls"
        finally:
            alice.stop()
            alice.close()
        assert "event loop: uvloop" in proc.log_tail(1_000_000)
    finally:
        proc.cleanup()
