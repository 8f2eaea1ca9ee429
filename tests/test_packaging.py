"""zkops as users install it: the sdist and wheel, the version everywhere, the wheel rebuilt from an
installed copy, the packaged lab files, missing libraries named with their pip command, and the
interpreter gather facts chooses."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import zkops
from zkops.provision.remote import TaskFailed, choose_python
from zkops.provision.wheel import content_digest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` (an sdist, and the wheel built from it) plus a wheel built straight from the tree."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "-o", str(out / "from-sdist"), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "-o", str(out / "from-tree"), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    return {"sdist": next((out / "from-sdist").glob("zkops-*.tar.gz")),
            "wheel": next((out / "from-sdist").glob("zkops-*.whl")),
            "tree_wheel": next((out / "from-tree").glob("zkops-*.whl"))}


def test_build_makes_an_sdist_and_wheel_twine_accepts_and_the_sdist_builds_the_same_wheel(built):
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(built["sdist"]), str(built["wheel"])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert content_digest(built["wheel"]) == content_digest(built["tree_wheel"]), "the sdist builds the same wheel"
    assert built["wheel"].name == f"zkops-{zkops.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(built["wheel"]) as z:
        meta = z.read(f"zkops-{zkops.__version__}.dist-info/METADATA").decode()
        assert z.read("zkops/labs/files/Dockerfile") == (ROOT / "Dockerfile").read_bytes()
        assert z.read("zkops/labs/files/Vagrantfile") == (ROOT / "Vagrantfile").read_bytes()
        assert "zkops/labs/docker/docker-entrypoint.sh" in z.namelist()
    requires = [line.split(":", 1)[1].strip().split(";")[0] for line in meta.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    for package in ("fabric", "paramiko", "pytest-testinfra", "docker", "Jinja2", "kazoo", "PyYAML", "rich"):
        assert any(r.startswith(package) for r in requires), f"{package} is not a dependency: {requires}"


def test_a_wheel_rebuilt_from_an_installed_copy_has_the_checkouts_content(built, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # what a node gets: the wheel alone, no dependencies (the server is standard library only)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(built["wheel"])], check=True, capture_output=True, timeout=300)
    script = ("import sys, pathlib, zkops.provision.wheel as w; assert w.checkout_root() is None, 'not installed'; "
              "assert not any('/work/' in p and 'site-packages' not in p for p in map(str, sys.path[1:])), sys.path; "
              "print(w.build(pathlib.Path(sys.argv[1])).path)")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script, str(tmp_path / "out")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    rebuilt = Path(done.stdout.strip())
    assert rebuilt.name == built["wheel"].name
    assert content_digest(rebuilt) == content_digest(built["wheel"]), "same release as the checkout's wheel"
    # pip accepts it (RECORD hashes right) and installs the same files
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(again)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(again / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(rebuilt)], check=True, capture_output=True, timeout=300)
    ver = subprocess.run([str(again / "bin" / "zkserver"), "--version"], capture_output=True, text=True, timeout=60)
    assert ver.stdout.strip() == f"zkserver (zkops {zkops.__version__})"


def test_one_version_everywhere(tmp_path: Path):
    from zkops.provision.deploy import render
    from zkops.provision.inventory import parse
    from zkops.server.fourletter import VERSION_STRING

    v = zkops.__version__
    assert metadata.version("zkops") == v
    for cmd in (["zkops", "--version"], ["zkops", "deploy", "--version"], ["zkops", "lab", "up", "--version"],
                ["zkserver", "--version"], ["zkcli", "--version"]):
        done = subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and f"zkops {v}" in done.stdout, (cmd, done.stdout, done.stderr)
    done = subprocess.run([str(Path(sys.executable).parent / "zkserver"), "version"], capture_output=True, text=True,
                          timeout=60)
    assert f"3.8.0-zkops-{v}," in done.stdout and VERSION_STRING.startswith(f"3.8.0-zkops-{v},")  # srvr's line
    inv = parse({"all": {"hosts": {"a": {"address": "10.0.0.1"}}}})
    assert render(inv, inv.hosts[0])["zoo.cfg"].startswith(f"# Rendered by zkops {v} deploy for a")


def test_a_missing_library_is_named_with_its_pip_command(tmp_path: Path):
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    zk1: {address: 192.0.2.1, ssh_user: root}\n")
    blocked = ("import sys; sys.modules['paramiko'] = None; sys.modules['fabric'] = None; "
               "sys.modules['docker'] = None; from zkops.cli import main; sys.exit(main(sys.argv[1:]))")
    for args, package in ((["deploy", str(inv)], "paramiko"), (["verify", str(inv)], "paramiko"),
                          (["lab", "--dir", str(tmp_path / "lab"), "up", "--backend", "docker"], "docker")):
        done = subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True, timeout=120,
                              env={"COLUMNS": "250", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        text = done.stdout + done.stderr
        assert done.returncode == 2, text
        assert f"needs the Python package {package}" in text and f"pip install '{package}'" in text, text
        assert "Traceback" not in text and "ModuleNotFoundError" not in text, text


def test_lab_vagrant_init_writes_the_packaged_vagrantfile_where_the_backend_finds_it(tmp_path: Path, monkeypatch):
    from zkops.labs.lab import LabError
    from zkops.labs.vagrant import find_vagrant_dir

    zk = str(Path(sys.executable).parent / "zkops")
    done = subprocess.run([zk, "lab", "vagrant", "init", str(tmp_path / "vms")], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "vms" / "Vagrantfile").read_bytes() == (ROOT / "Vagrantfile").read_bytes()
    assert find_vagrant_dir(str(tmp_path / "vms")) == tmp_path / "vms"
    monkeypatch.delenv("ZKOPS_VAGRANT_DIR", raising=False)
    monkeypatch.chdir(tmp_path / "vms")
    assert find_vagrant_dir(None) == Path.cwd()
    with pytest.raises(LabError, match="zkops lab vagrant init"):
        find_vagrant_dir(str(tmp_path))
    (tmp_path / "vms" / "Vagrantfile").write_text("# mine\n")
    refused = subprocess.run([zk, "lab", "vagrant", "init", str(tmp_path / "vms")], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "--force" in refused.stdout
    assert (tmp_path / "vms" / "Vagrantfile").read_text() == "# mine\n", "a user's own Vagrantfile is kept"


def test_gather_facts_takes_a_python_the_service_user_can_run():
    private = "py=/root/.pyenv/shims/python3|3.12|yes|no"
    system = "py=/usr/bin/python3|3.11|yes|yes"
    assert choose_python([private, system], None) == ("/usr/bin/python3", "3.11")
    with pytest.raises(TaskFailed) as exc:
        choose_python([private, "py=/usr/bin/python3|3.9|yes|yes", "py=/usr/bin/python3.11|missing",
                       "py=/usr/local/bin/python3|3.12|no|yes"], None)
    text = str(exc.value)
    assert "/root/.pyenv/shims/python3: Python 3.12 cannot be run by the service user" in text
    assert "/usr/bin/python3: Python 3.9 is too old" in text and "/usr/bin/python3.11: not found" in text
    assert "/usr/local/bin/python3: Python 3.12 has no venv module (install python3-venv)" in text
    with pytest.raises(TaskFailed, match=r"the inventory's python \(/opt/py/bin/python3\) cannot serve"):
        choose_python(["py=/opt/py/bin/python3|3.12|yes|no"], "/opt/py/bin/python3")


class _FakeNode:
    """Just enough of provision.remote.Node for destroy(): records the commands it is given."""

    def __init__(self, created: list[dict]) -> None:
        from zkops.provision.inventory import parse

        self.host = parse({"all": {"hosts": {"a": {"address": "10.0.0.1"}}}}).hosts[0]
        self.facts = {"systemd": "yes"}
        self.created = created
        self.commands: list[str] = []
        self.saved: list[list[dict]] = []

    def manifest(self) -> list[dict]:
        return self.created

    def save_manifest(self) -> None:
        self.saved.append(list(self.created))

    def run(self, command: str, check: bool = True) -> tuple[int, str]:
        self.commands.append(command)
        return (3 if command.startswith("systemctl is-active") else 0), ""


def test_destroy_removes_exactly_what_the_manifest_lists():
    from zkops.provision.remote import destroy

    created = [{"path": "/opt/zkops", "kind": "dir", "data": False},
               {"path": "user:zkops", "kind": "user", "data": False},
               {"path": "/var/lib/zkops/data", "kind": "dir", "data": True},
               {"path": "/etc/zkops", "kind": "dir", "data": False},
               {"path": "/var/log/zkops", "kind": "dir", "data": False},
               {"path": "/etc/default/zkops", "kind": "file", "data": False},
               {"path": "/etc/systemd/system/zkops.service", "kind": "file", "data": False}]
    keep = _FakeNode([dict(e) for e in created])
    message = destroy(keep, purge_data=False).message  # type: ignore[arg-type]
    removed = [c for c in keep.commands if c.startswith(("rm ", "userdel"))]
    assert removed == ["rm -f /etc/systemd/system/zkops.service", "rm -f /etc/default/zkops",
                       "rm -rf /var/log/zkops", "rm -rf /etc/zkops", "rm -rf /opt/zkops"], removed
    assert "data kept in /var/lib/zkops/data" in message
    assert [e["path"] for e in keep.saved[-1]] == ["user:zkops", "/var/lib/zkops/data"], "data and its owner stay"
    assert not any("zookeeper" in c for c in keep.commands)

    purge = _FakeNode(keep.saved[-1])
    destroy(purge, purge_data=True)  # type: ignore[arg-type]
    assert [c for c in purge.commands if c.startswith(("rm ", "userdel"))][:2] == [
        "rm -rf /var/lib/zkops/data", "userdel zkops"]
    assert purge.commands[-1].startswith("rm -f /var/lib/zkops/manifest.json")

    nothing = _FakeNode([])
    assert destroy(nothing, purge_data=True).status == "ok" and nothing.commands == []  # type: ignore[arg-type]
