"""Apache's quorum options in ensembles of zkops and Debian's Apache ZooKeeper 3.8.0, on loopback.

sslQuorum (the same zoo.cfg keys and Java key stores for both kinds), a server whose
certificate the others do not trust, portUnification, dynamic reconfig from a client,
quorumListenOnAllIPs, electionPortBindRetry and multiAddress. Every server of a test is a real
process; each test stops its own. The default run keeps one representative of sslQuorum.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NewConfigNoQuorumError, ReconfigInProcessError, ZookeeperError

from tests.support import refzk
from tests.support.ensemble import four_letter
from tests.support.mixed import MixedEnsemble
from tests.support.pki import Pki
from tests.test_mixed_ensemble import (
    DEADLINE,
    _client,
    _retried,
    _same_everywhere,
    _start_led_by,
    _until,
    _writes_everywhere,
)

pytestmark = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")

PASSWORD = "quorumpass"
REFUSED = re.compile(r"(election|quorum) connection (from|to) .* refused: TLS handshake failed")


def _java_stores(pki: Pki, name: str) -> tuple[Path, Path]:
    """``<name>.pem`` and the CA as Java key stores (JKS), as Apache's quorum TLS reads them."""
    import jks
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = (pki.dir / f"{name}.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    key = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    keystore, truststore = pki.dir / f"{name}-keystore.jks", pki.dir / "truststore.jks"
    jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new(name, [cert], key, "pkcs8")]).save(str(keystore), PASSWORD)
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes()).public_bytes(serialization.Encoding.DER)
    jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("ca", ca)]).save(str(truststore), PASSWORD)
    return keystore, truststore


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """zoo.cfg keys for quorum TLS: ``good`` (the ensemble's CA) and ``stranger`` (another CA)."""
    out = {}
    for which, ca in (("good", "zkops quorum CA"), ("stranger", "a CA nobody trusts")):
        pki = Pki(tmp_path_factory.mktemp(f"quorum-{which}"), ca)
        pki.issue("peer", "zk-peer", server=True)  # SAN 127.0.0.1: both kinds verify the address
        keystore, truststore = _java_stores(pki, "peer")
        out[which] = {
            "ssl.quorum.keyStore.location": str(keystore), "ssl.quorum.keyStore.password": PASSWORD,
            "ssl.quorum.trustStore.location": str(truststore), "ssl.quorum.trustStore.password": PASSWORD,
            "ssl.quorum.hostnameVerification": "true",
        }
        out[which + "-pem"] = {"ca": str(pki.ca), "peer": str(pki.dir / "peer.pem")}
    return out


def _log(ens: MixedEnsemble, i: int) -> str:
    name = "zkops-server.log" if ens.kinds[i] == "zkops" else "stdout.log"
    p = ens.workdir / f"n{i}" / name
    return p.read_text(errors="replace") if p.exists() else ""


def _serving(ens: MixedEnsemble, i: int) -> bool:
    try:
        return "Mode:" in four_letter(ens.client_port(i), "srvr")
    except OSError:
        return False


def _tls_probe(port: int, pem: dict[str, str]) -> str:
    """Dial ``port`` with TLS and the given certificate; what happened."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(pem["peer"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as s:
            s.settimeout(10)
            s.sendall(b"\x00" * 8)
            data = s.recv(1)  # a server that refused our certificate closes here
            return "open" if data else "closed"
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}"


def _writes_through(ens: MixedEnsemble, tag: str, ids: list[int]) -> None:
    for i in ids:
        k = _client(ens.address(i))
        try:
            _retried(k.create, f"/{tag}-{i}", ens.kinds[i].encode(), makepath=True)
            _retried(k.set, f"/{tag}-{i}", b"again")
        finally:
            k.stop()
            k.close()


# ---------------------------------------------------------------- sslQuorum
TLS_ARRANGEMENTS = [
    pytest.param({1: "apache", 2: "zkops", 3: "zkops"}, id="1apache-2zkops-zkops-leads"),
    pytest.param({1: "zkops", 2: "apache", 3: "apache"}, id="2apache-1zkops-apache-leads"),
    pytest.param({1: "zkops", 2: "zkops", 3: "apache"}, id="1apache-2zkops-apache-leads", marks=pytest.mark.slow),
    pytest.param({1: "apache", 2: "apache", 3: "zkops"}, id="2apache-1zkops-zkops-leads", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("kinds", TLS_ARRANGEMENTS)
def test_ssl_quorum_mixed_and_an_untrusted_server_refused(kinds: dict[int, str],
                                                          stores: dict[str, dict[str, str]]) -> None:
    """sslQuorum=true with the same zoo.cfg keys and JKS stores on both kinds: sid 3 leads,
    writes through every server, the same tree everywhere. Then sid 1 comes back with a
    certificate from a CA the others do not trust: it is refused on the election port (its own
    dials and theirs) and on the quorum port (a probe with its certificate), with a log line on
    the zkops side, while the other two keep serving writes; with its own certificate back it
    rejoins and syncs."""
    tls = {"sslQuorum": "true", **stores["good"]}
    ens = _start_led_by(kinds, leader=3, extra=tls)
    try:
        _writes_everywhere(ens, "tls")
        _same_everywhere(ens)
        # sid 1 with a stranger's certificate
        ens.kill(1)
        ens.per_node[1] = {**stores["stranger"]}
        ens.write_config(1)
        ens.start(1)
        zkops_refusers = [i for i in (2, 3) if ens.kinds[i] == "zkops"]

        def refused() -> bool:
            if ens.kinds[1] == "zkops" and not REFUSED.search(_log(ens, 1)):
                return False
            return all(REFUSED.search(_log(ens, i)) for i in zkops_refusers)

        _until(refused, what="the untrusted server refused with a log line")
        for port in (ens.ports[3][1], ens.ports[3][2]):  # the leader's quorum and election ports
            got = _tls_probe(port, stores["stranger-pem"])
            assert got != "open", f"port {port} took an untrusted certificate"
        if ens.kinds[3] == "zkops":
            _until(lambda: "quorum connection from" in _log(ens, 3) and REFUSED.search(_log(ens, 3)),
                   what="the leader's quorum port logged the refusal")
        _writes_through(ens, "while-refused", [2, 3])
        assert not _serving(ens, 1), "a server nobody trusts never joins"
        _same_everywhere(ens, [2, 3])
        # trusted again: it rejoins
        ens.kill(1)
        ens.per_node[1] = {}
        ens.write_config(1)
        ens.start(1)
        ens.wait_ready(DEADLINE)
        _same_everywhere(ens)
    finally:
        ens.cleanup()


# ---------------------------------------------------------------- dynamic reconfig
def _dynamic_file(ens: MixedEnsemble, i: int) -> tuple[str, list[str]]:
    """(file name, sorted server lines) of the dynamic config file ``i``'s zoo.cfg points at now
    (the version is in the name, not in the file, as Apache writes it)."""
    cfg = (ens.workdir / f"n{i}" / "zoo.cfg").read_text()
    found = re.search(r"^dynamicConfigFile=(.*)$", cfg, re.M)
    assert found, cfg
    path = Path(found.group(1).strip())
    if not path.is_absolute():
        path = ens.workdir / f"n{i}" / path
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert all(line.startswith("server.") for line in lines), lines
    return path.name, sorted(lines)


def _config_node(ens: MixedEnsemble, i: int) -> bytes:
    k = _client(ens.address(i))
    try:
        k.sync("/zookeeper/config")
        return k.get("/zookeeper/config")[0]
    finally:
        k.stop()
        k.close()


def _agree(ens: MixedEnsemble, ids: list[int], want: bytes) -> None:
    _until(lambda: all(_config_node(ens, i) == want for i in ids), what=f"/zookeeper/config on {ids}")
    want_lines = sorted(line for line in want.decode().splitlines() if line.startswith("server."))
    version = int(re.search(r"version=([0-9a-f]+)", want.decode()).group(1), 16)

    def files_agree() -> bool:
        files = [_dynamic_file(ens, i) for i in ids]
        return all(f == (f"zoo.cfg.dynamic.{version:x}", want_lines) for f in files)

    _until(files_agree, what=f"the dynamic config file on {ids}")


def _reconfig(admin: KazooClient, done: Any, joining: str | None = None, leaving: str | None = None) -> bytes:
    """One incremental reconfig; after a lost connection it may have happened already, which
    /zookeeper/config then shows (a repeat would be refused as nothing to change)."""
    def attempt() -> bytes:
        try:
            return admin.reconfig(joining=joining, leaving=leaving, new_members=None)[0]
        except ZookeeperError:
            admin.sync("/zookeeper/config")
            data = admin.get("/zookeeper/config")[0]
            if done(data.decode()):
                return data
            raise

    # a server being added must be connected and synced (as a non-voting follower) first: until
    # it is, the leader answers NewConfigNoQuorum (a moment on a loaded machine); so is a
    # reconfig while another is still being activated (ReconfigInProgress)
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return _retried(attempt)
        except (NewConfigNoQuorumError, ReconfigInProcessError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


RECONFIG = [
    pytest.param({1: "zkops", 2: "apache", 3: "zkops"}, 2, id="zkops-leads-apache-follower-out-and-in"),
    pytest.param({1: "zkops", 2: "apache", 3: "apache"}, 1, id="apache-leads-zkops-follower-out-and-in"),
]


@pytest.mark.parametrize(("kinds", "victim"), RECONFIG)
def test_reconfig_removes_and_adds_back_a_follower(kinds: dict[int, str], victim: int) -> None:
    """reconfigEnabled=true, the membership in a dynamic config file: a client removes a follower
    of the other kind than the leader and adds it back (incremental reconfig); every server ends
    with the same /zookeeper/config and the same zoo.cfg.dynamic.<version>, and writes work."""
    from zkops.server.acl import digest

    extra = {"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": digest("super:test")}
    ens = _start_led_by(kinds, leader=3, extra=extra, dynamic=True)
    admin = KazooClient(hosts=ens.address(3), timeout=20, auth_data=[("digest", "super:test")],
                        connection_retry={"max_tries": -1, "max_delay": 1},
                        command_retry={"max_tries": -1, "max_delay": 1})
    try:
        admin.start(timeout=60)
        _writes_everywhere(ens, "before")
        before = _config_node(ens, 3)
        line = next(x for x in before.decode().splitlines() if x.startswith(f"server.{victim}="))
        removed = _reconfig(admin, lambda text: f"server.{victim}=" not in text, leaving=str(victim))
        assert f"server.{victim}=" not in removed.decode()
        rest = [i for i in ens.ids if i != victim]
        _agree(ens, rest, removed)
        _writes_through(ens, "without", rest)
        added = _reconfig(admin, lambda text: line in text, joining=line)
        assert line in added.decode()
        ens.wait_ready(DEADLINE)
        _agree(ens, ens.ids, added)
        _writes_everywhere(ens, "after")
        _same_everywhere(ens)
    finally:
        admin.stop()
        admin.close()
        ens.cleanup()


# ---------------------------------------------------------------- portUnification
UNIFIED = [
    pytest.param({1: "zkops", 2: "apache", 3: "zkops"}, id="zkops-leads"),
    pytest.param({1: "zkops", 2: "zkops", 3: "apache"}, id="apache-leads", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("kinds", UNIFIED)
def test_port_unification_moves_a_running_mixed_ensemble_to_ssl_quorum(
        kinds: dict[int, str], stores: dict[str, dict[str, str]]) -> None:
    """Apache's rolling move to quorum TLS: every server with the key stores and
    portUnification=true, then sslQuorum=true one server at a time (plain and TLS dialers meet
    on the same ports), then portUnification off one at a time; writes through every server at
    each step and the same tree at the end."""
    base = {"portUnification": "true", "sslQuorum": "false", **stores["good"]}
    ens = _start_led_by(kinds, leader=3, extra=base)
    try:
        _writes_everywhere(ens, "plain")
        for step, keys in (("tls", {"sslQuorum": "true"}), ("strict", {"sslQuorum": "true", "portUnification": "false"})):
            for i in ens.ids:
                ens.kill(i, signal.SIGTERM)
                ens.per_node[i] = keys
                ens.write_config(i)
                ens.start(i)
                ens.wait_ready(DEADLINE)
                _writes_everywhere(ens, f"{step}-{i}")
        _same_everywhere(ens)
        for i in ens.ids:
            if ens.kinds[i] == "zkops":
                assert "TLS handshake failed" not in _log(ens, i), _log(ens, i)[-3000:]
    finally:
        ens.cleanup()


# ---------------------------------------------------------------- listening options
def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def test_quorum_listen_on_all_ips_mixed() -> None:
    """quorumListenOnAllIPs=true: each server's election port, and the leader's quorum port,
    answer on another loopback address than the one on its server line, on both kinds."""
    ens = _start_led_by({1: "apache", 2: "zkops", 3: "zkops"}, leader=3, extra={"quorumListenOnAllIPs": "true"})
    try:
        _writes_everywhere(ens, "all-ips")
        _same_everywhere(ens)
        for i in ens.ids:
            assert _reachable("127.0.0.2", ens.ports[i][2]), f"election port of {ens.kinds[i]} server {i}"
        assert _reachable("127.0.0.2", ens.ports[3][1]), "the leader's quorum port"
    finally:
        ens.cleanup()


def _hold(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def test_election_port_bind_retry_mixed() -> None:
    """electionPortBindRetry: with no limit (0) a zkops server whose election port is taken keeps
    trying, a second apart, and joins the Apache servers once the port is free; with a limit
    both kinds give up after it with a log line naming the port (Apache exits with 14, zkops 1)."""
    ens = MixedEnsemble({1: "apache", 2: "zkops", 3: "apache"}, per_node={2: {"electionPortBindRetry": "0"}})
    held = _hold(ens.ports[2][2])
    try:
        ens.start()
        _until(lambda: _log(ens, 2).count("cannot listen on the election port") >= 2,
               what="zkops retrying the taken election port")
        ens.wait_ready(DEADLINE, ids=[1, 3])
        held.close()
        ens.wait_ready(DEADLINE)
        _writes_everywhere(ens, "bound")
        _same_everywhere(ens)
    finally:
        held.close()
        ens.cleanup()
    ens = MixedEnsemble({1: "apache", 2: "zkops"}, extra={"electionPortBindRetry": "2"})
    held = [_hold(ens.ports[i][2]) for i in ens.ids]
    try:
        ens.start()
        codes = {i: ens.procs[i].wait(DEADLINE) for i in ens.ids}
        assert codes == {1: 14, 2: 1}, (codes, ens.log_tail())
        assert "after 2 errors" in _log(ens, 1)
        assert f"cannot listen on the election port 127.0.0.1:{ens.ports[2][2]} after 2 attempt(s)" in _log(ens, 2)
    finally:
        for s in held:
            s.close()
        ens.cleanup()


# ---------------------------------------------------------------- multiAddress
# Apache reads zoo.cfg's keys in hash order, so multiAddress.enabled there may come after the
# server lines it governs: the JVM gets it as a system property as well
MULTI = ["-Dzookeeper.multiAddress.enabled=true"]

def test_multi_address_enabled_with_one_address_each_mixed() -> None:
    """multiAddress.enabled=true makes Apache open election connections with the multi-address
    protocol version (-65535); with one address per server zkops takes them and the ensemble
    works with either kind leading."""
    ens = _start_led_by({1: "zkops", 2: "apache", 3: "apache"}, leader=3, extra={"multiAddress.enabled": "true"},
                        java_props=MULTI)
    try:
        _writes_everywhere(ens, "multi")
        _same_everywhere(ens)
        ens.kill(3)
        ens.wait_ready(DEADLINE, ids=[1, 2])
        ens.start(3)
        ens.wait_ready(DEADLINE)
        _writes_everywhere(ens, "multi-again")
        _same_everywhere(ens)
    finally:
        ens.cleanup()


def test_several_addresses_per_server_stop_zkops_at_start_up() -> None:
    """``server.N=127.0.0.1:q:e|127.0.0.2:q:e``: two Apache servers form their ensemble over
    both addresses; zkops, which dials and listens on one address only, refuses the line at
    start-up with an error naming it instead of half-joining."""
    ens = MixedEnsemble({1: "apache", 2: "apache", 3: "zkops"}, extra={"multiAddress.enabled": "true"},
                        java_props=MULTI)
    ens.server_lines = {i: "|".join(f"127.0.0.{n}:{q}:{e}" for n in (1, 2)) for i, (_, q, e) in ens.ports.items()}
    for i in ens.ids:
        ens.write_config(i)
    try:
        ens.start()
        code = ens.procs[3].wait(DEADLINE)
        out = (ens.workdir / "n3" / "stdout.log").read_text(errors="replace") + _log(ens, 3)
        assert code != 0 and "multiAddress" in out and "server.1" in out, out
        assert "Traceback" not in out, out
        ens.wait_ready(DEADLINE, ids=[1, 2])
        _writes_through(ens, "two-addresses", [1, 2])
        _same_everywhere(ens, [1, 2])
    finally:
        ens.cleanup()


# ---------------------------------------------------------------- options zkops refuses
@pytest.mark.parametrize("key", ["sslQuorumReloadCertFiles", "quorum.auth.enableSasl",
                                 "quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl"])
def test_quorum_options_zkops_does_not_implement_stop_start_up(key: str, tmp_path: Path) -> None:
    """Turned on, these would leave a zkops server beside Apache ones not doing what the
    ensemble relies on: it refuses to start, naming the key; turned off they are accepted."""
    from zkops.server.config import ConfigError, parse_config

    base = f"tickTime=2000\ndataDir={tmp_path}\nclientPort=2181\n"
    with pytest.raises(ConfigError, match=re.escape(f"{key}=true is not supported by zkops")):
        parse_config(base + f"{key}=true\n", "zoo.cfg")
    assert parse_config(base + f"{key}=false\nmultiAddress.enabled=true\n", "zoo.cfg").warnings == []


# ---------------------------------------------------------------- hostname verification
def _issue_elsewhere(pki: Pki, name: str) -> Path:
    """A certificate from the ensemble's CA that names another address (10.9.9.9) only."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere")]))
            .issuer_name(pki.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("elsewhere.invalid"),
                                                        x509.IPAddress(ipaddress.ip_address("10.9.9.9"))]),
                           critical=False)
            .sign(pki.key, hashes.SHA256()))
    path = pki.dir / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def test_ssl_quorum_hostname_verification_refuses_a_dialler_named_elsewhere(tmp_path: Path) -> None:
    """A trusted certificate that names another address: Apache refuses such a server on both
    ends of a connection, and so does zkops, also when it is the one dialled (sid 3 dials the
    smaller sids, and its connections are the ones that survive). The two others serve."""
    pki = Pki(tmp_path / "pki", "zkops quorum CA")
    pki.issue("peer", "zk-peer", server=True)
    _issue_elsewhere(pki, "elsewhere")
    good_ks, trust = _java_stores(pki, "peer")
    bad_ks, _ = _java_stores(pki, "elsewhere")
    keys = {"sslQuorum": "true", "ssl.quorum.keyStore.password": PASSWORD,
            "ssl.quorum.trustStore.location": str(trust), "ssl.quorum.trustStore.password": PASSWORD}
    ens = MixedEnsemble({1: "apache", 2: "zkops", 3: "apache"}, extra=keys,
                        per_node={1: {"ssl.quorum.keyStore.location": str(good_ks)},
                                  2: {"ssl.quorum.keyStore.location": str(good_ks)},
                                  3: {"ssl.quorum.keyStore.location": str(bad_ks)}})
    try:
        ens.start()
        ens.wait_ready(DEADLINE, ids=[1, 2])
        _until(lambda: re.search(r"election connection from .* refused: its certificate does not name 127\.0\.0\.1",
                                 _log(ens, 2)), what="zkops refusing the dialler named elsewhere")
        _writes_through(ens, "named", [1, 2])
        _same_everywhere(ens, [1, 2])
        assert not _serving(ens, 3)
    finally:
        ens.cleanup()
