"""The Vagrantfile validates offline and writes an inventory zkops deploy accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from zkops.provision.inventory import parse

ROOT = Path(__file__).resolve().parents[1]


def _validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed: run scripts/install-test-deps")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "Vagrantfile", work / "Vagrantfile")
    return subprocess.run(["vagrant", "validate"], cwd=work, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"), **env))


@pytest.mark.parametrize("nodes", ["3", "5"])
def test_vagrantfile_validates_and_writes_the_inventory(tmp_path, nodes):
    out = _validate(tmp_path, ZKOPS_NODES=nodes)
    assert out.returncode == 0, out.stdout + out.stderr
    import yaml

    inv = parse(yaml.safe_load((tmp_path / "lab" / ".vagrant" / "zkops-inventory.yaml").read_text()))
    assert [h.myid for h in inv.hosts] == list(range(1, int(nodes) + 1))
    assert all(h.connection == "ssh" and h.address.startswith("192.168.56.") for h in inv.hosts)


def test_bad_node_count_is_refused(tmp_path):
    out = _validate(tmp_path, ZKOPS_NODES="0")
    assert out.returncode != 0 and "ZKOPS_NODES must be between 1 and 9" in out.stdout + out.stderr
