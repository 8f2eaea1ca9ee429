"""``zkops verify``: a pytest-testinfra suite, shipped in the package, run against every SSH host.

What a healthy node looks like from the inside: the release installed, the service running
(and enabled where there is systemd), its ports listening, zoo.cfg and myid as rendered,
the firewall open for its ports, its directories owned by the service user with tight modes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..requires import need
from .inventory import Inventory
from .remote import CONF_DIR, INSTALL_ROOT, USER, Options, firewall_ports

SUITE = Path(__file__).with_name("verify_suite.py")


def expectations(inv: Inventory) -> dict[str, dict]:
    """What the suite checks on each host, keyed by SSH ``host:port`` (Vagrant's NAT forwards share
    one address)."""
    from .deploy import render

    out = {}
    for h in inv.hosts:
        if h.connection != "ssh":
            continue
        files = render(inv, h)
        fw = {**inv.vars, **h.vars}.get("firewall", True)
        out[f"{h.ssh_host or h.address}:{h.ssh_port}"] = {"name": h.name, "zoo_cfg": files["zoo.cfg"], "myid": files["myid"],
                          "ports": [h.client_port, h.quorum_port, h.election_port],
                          "firewall_ports": [p for p, _ in firewall_ports(inv, h)] if fw else [],
                          "data_dir": str(h.data_dir), "conf_dir": CONF_DIR, "install_root": INSTALL_ROOT,
                          "user": USER}
    return out


def verify(inv: Inventory, opts: Options) -> int:
    hosts = [h for h in inv.hosts if h.connection == "ssh" and (opts.limit is None or h.name in opts.limit)]
    if not hosts:
        opts.log("verify checks SSH hosts; this inventory has none")
        return 2
    need("pytest", "zkops verify")
    need("testinfra", "zkops verify")
    need("paramiko", "zkops verify over SSH")
    specs = []
    for h in hosts:
        spec = f"paramiko://{h.ssh_user or 'root'}@{h.ssh_host or h.address}:{h.ssh_port}"
        query = [f"ssh_identity_file={Path(h.ssh_key).expanduser()}"] if h.ssh_key else []
        if h.become:
            query.append("sudo=true")
        if query:
            spec += "?" + "&".join(query)
        specs.append(spec)
    env = dict(os.environ, ZKOPS_VERIFY=json.dumps(expectations(inv)))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(SUITE.parent),
           "-c", os.devnull, f"--hosts={','.join(specs)}", str(SUITE)]
    if opts.verbose:
        cmd.append("-v")
    return subprocess.run(cmd, env=env).returncode
