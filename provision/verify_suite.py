"""The testinfra suite behind ``zkops verify`` (run by provision/verify.py, one host at a time)."""

from __future__ import annotations

import json
import os

import pytest

EXPECTED = json.loads(os.environ.get("ZKOPS_VERIFY", "{}"))


@pytest.fixture
def want(host):  # noqa: ANN001, ANN201 - testinfra's host fixture
    address = f"{host.backend.hostname}:{host.backend.host.port or 22}"
    if address not in EXPECTED:
        pytest.fail(f"no expectations for {address}")
    return EXPECTED[address]


def test_release_installed(host, want):  # noqa: ANN001
    zkserver = host.file(f"{want['install_root']}/current/bin/zkserver")
    assert zkserver.exists and zkserver.mode & 0o111, "the zkops release is installed with its zkserver"
    assert host.file(f"{want['install_root']}/current").is_symlink


def test_service_running_and_enabled(host, want):  # noqa: ANN001
    if host.file("/run/systemd/system").is_directory:
        svc = host.service("zkops")
        assert svc.is_running and svc.is_enabled
    else:
        pid = host.file(f"{want['data_dir']}/zookeeper_server.pid").content_string.strip()
        assert host.run(f"kill -0 {pid}").rc == 0, "the server in the pidfile is alive"


def test_ports_listening(host, want):  # noqa: ANN001
    listening = host.run("ss -Hltn").stdout
    for port in want["ports"]:
        assert f":{port} " in listening, f"nothing listens on {port}"


def test_config_and_myid_as_rendered(host, want):  # noqa: ANN001
    assert host.file(f"{want['conf_dir']}/zoo.cfg").content_string == want["zoo_cfg"]
    assert host.file(f"{want['data_dir']}/myid").content_string == want["myid"]


def test_firewall_open(host, want):  # noqa: ANN001
    if not want["firewall_ports"] or host.run("command -v iptables").rc != 0:
        pytest.skip("firewall management is off or the host has no iptables")
    rules = host.run("iptables -S INPUT").stdout
    for port in want["firewall_ports"]:
        assert f"--dport {port} " in rules + " ", f"no ACCEPT rule for port {port}"


def test_ownership_and_modes(host, want):  # noqa: ANN001
    for path in (want["data_dir"], want["conf_dir"]):
        f = host.file(path)
        assert f.user == want["user"] and f.mode == 0o750, f"{path}: {f.user} {oct(f.mode)}"
    assert host.file(f"{want['conf_dir']}/zoo.cfg").mode == 0o640
