"""zkops deploy over SSH: the play for ``connection: ssh`` hosts, with Fabric/paramiko.

The play is the one of ``connection: local`` (:mod:`.play`): every step is a task that reports
ok / changed / failed / skipped for its host, a host whose task fails skips the rest of its list
(the others go on), the services are started or restarted by the same routine, and the ensemble
checks run at the end. :class:`Node` is the SSH target; :func:`ssh_tasks` its list. What a node gets:

- the project wheel, built once on the control machine (from a checkout, or rebuilt from the
  installed copy: provision/wheel.py), in ``/opt/zkops/<release>`` (a venv made with a Python
  the service user can run, ``pip install --no-deps --no-index``: no internet, no JVM) with
  ``/opt/zkops/current``;
- the ``zkops`` system user, and directories of zkops' own (``/etc/zkops``, ``/var/log/zkops``,
  ``/var/lib/zkops``: never ``/etc/zookeeper`` or ``/var/log/zookeeper``, which Debian's and other
  ZooKeeper packages own) owned by it with tight modes;
- a manifest (``/var/lib/zkops/manifest.json``) of every path the play created on the host, which
  ``zkops destroy`` follows: it removes exactly those, and nothing it did not create;
- ``zoo.cfg``, ``myid``, an environment file and (with systemd) a unit, rendered from
  ``templates/``; without systemd the service is ``zkserver start`` with its pidfile;
- firewall rules for its ports with ufw, firewalld or iptables (``firewall: false`` opts out,
  ``firewall_peers_only: true`` opens 2888/3888 to the peers only);
- a start, or a rolling restart when its files or its release changed: followers first, the
  leader last, each back in the quorum before the next.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import secrets
import shlex
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__
from ..requires import install_hint, need
from .deploy import TLS_DIR, render, template_env, tls_settings
from .inventory import Host, Inventory
from .play import (
    Options,
    Play,
    Recap,
    Result,
    Task,
    TaskFailed,
    changed,
    file_task,
    ok,
    skipped,
    start_unless_running,
    stop_task,
)
from .status import check_ensemble
from .wheel import Wheel, WheelError
from .wheel import build as build_wheel_file
from .wheel import from_file as wheel_from_file

INSTALL_ROOT = "/opt/zkops"
CONF_DIR = "/etc/zkops"
LOG_DIR = "/var/log/zkops"
STATE_DIR = "/var/lib/zkops"
MANIFEST = f"{STATE_DIR}/manifest.json"
ENV_FILE = "/etc/default/zkops"
UNIT = "/etc/systemd/system/zkops.service"
USER = "zkops"
MIN_PYTHON = (3, 10)


def build_wheel(dest: Path) -> Wheel:
    """The project wheel, built on the control machine from this checkout or installed copy."""
    try:
        return build_wheel_file(dest)
    except WheelError as exc:
        raise TaskFailed(str(exc)) from None


# ---------------------------------------------------------------- one host over SSH


class Node:
    """One SSH host: a Fabric connection plus small idempotent primitives; the play's
    :class:`~.play.Target` for ``connection: ssh``."""

    def __init__(self, host: Host, opts: Options) -> None:
        self.host = host
        self.opts = opts
        self.conn: Any = None
        self.facts: dict[str, str] = {}
        self.created: list[dict[str, Any]] | None = None  # the manifest, once read

    # ---- the manifest of what zkops created on this host
    def manifest(self) -> list[dict[str, Any]]:
        if self.created is None:
            text = self.read(MANIFEST)
            try:
                self.created = list(json.loads(text)["created"]) if text else []
            except (ValueError, KeyError, TypeError):
                raise TaskFailed(f"{MANIFEST} is not zkops' manifest: refusing to guess what is ours") from None
        return self.created

    def record(self, path: str, kind: str, data: bool = False) -> None:
        """Note that the play created ``path`` (call before creating it; it must not exist yet)."""
        entries = self.manifest()
        if any(e["path"] == path or (e["kind"] == "dir" and path.startswith(e["path"].rstrip("/") + "/"))
               for e in entries):
            return  # recorded already, or inside a directory the play created (removed with it)
        entries.append({"path": path, "kind": kind, "data": data})
        self.save_manifest()

    def save_manifest(self) -> None:
        self.run(f"[ -d {STATE_DIR} ] || install -d -m 0755 {STATE_DIR}")  # may also be the base dir (0750)
        body = json.dumps({"created": self.manifest()}, indent=1) + "\n"
        tmp = f"/tmp/.zkops-manifest-{secrets.token_hex(4)}"
        self.conn.put(io.BytesIO(body.encode()), tmp)
        self.run(f"install -m 0644 -o root -g root {tmp} {MANIFEST} && rm -f {tmp}")

    def exists(self, path: str) -> bool:
        return self.run(f"test -e {shlex.quote(path)} || test -L {shlex.quote(path)}", check=False)[0] == 0

    def connect(self) -> None:
        paramiko = need("paramiko", "zkops over SSH")
        Connection = need("fabric", "zkops over SSH").Connection

        kwargs: dict[str, Any] = {"timeout": 10, "allow_agent": True, "look_for_keys": self.host.ssh_key is None}
        if self.host.ssh_key:
            kwargs["pkey"] = self._load_key(Path(self.host.ssh_key).expanduser())
        conn = Connection(self.host.ssh_host or self.host.address, user=self.host.ssh_user or "root", port=self.host.ssh_port,
                          connect_kwargs=kwargs)
        client = conn.client
        known = self.opts.known_hosts or Path.home() / ".ssh" / "known_hosts"
        if known.exists():
            client.load_host_keys(str(known))
        if self.opts.accept_new_host_keys:
            known.parent.mkdir(parents=True, exist_ok=True)
            known.touch(exist_ok=True)
            client.load_host_keys(str(known))  # new keys are saved there, as ssh's accept-new does
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = f"{self.host.ssh_host or self.host.address}:{self.host.ssh_port}"
        try:
            conn.open()
        except paramiko.BadHostKeyException:
            raise TaskFailed(f"the host key of {where} differs from {known}: refusing (possible impostor)") from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                raise TaskFailed(f"{where} is not in {known}; check its key, or pass --accept-new-host-keys") from None
            if "Authentication failed" in text or "No authentication methods" in text:
                raise TaskFailed(f"{where} refused our key for user {self.host.ssh_user or 'root'}") from None
            raise TaskFailed(f"SSH to {where} failed: {text}") from None
        except OSError as exc:
            raise TaskFailed(f"cannot reach {where}: {exc.strerror or exc}") from None
        if self.opts.accept_new_host_keys:
            client.save_host_keys(str(known))
        self.conn = conn

    def _load_key(self, path: Path) -> Any:
        """Load the private key here, so a refused key reads as refused (paramiko, given a file name,
        reports the last key type it failed to parse instead) and a bad file names itself."""
        paramiko = need("paramiko", "zkops over SSH")
        try:
            return paramiko.PKey.from_path(path)
        except FileNotFoundError:
            raise TaskFailed(f"the SSH key {path} does not exist (ssh_key of {self.host.name})") from None
        except PermissionError:
            raise TaskFailed(f"cannot read the SSH key {path}: permission denied") from None
        except paramiko.PasswordRequiredException:
            raise TaskFailed(f"the SSH key {path} is encrypted: load it into ssh-agent and drop ssh_key") from None
        except (paramiko.SSHException, ValueError) as exc:
            raise TaskFailed(f"{path} is not a private key paramiko can read ({type(exc).__name__})") from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _as_root(self, command: str) -> str:
        return f"sudo -n sh -c {shlex.quote(command)}" if self.host.become else command

    def run(self, command: str, check: bool = True) -> tuple[int, str]:
        if self.opts.verbose:
            self.opts.log(f"[{self.host.name}] $ {command}")
        result = self.conn.run(self._as_root(command), hide=True, warn=True, in_stream=False)
        if self.host.become and result.exited != 0 and "sudo: a password is required" in result.stderr:
            raise TaskFailed(f"{self.host.ssh_user} needs passwordless sudo on {self.host.name} (become: true)")
        out = (result.stdout + result.stderr).strip()
        if check and result.exited != 0:
            raise TaskFailed(f"`{command.split(' ', 1)[0]} ...` exited {result.exited}: {out[-300:]}")
        return result.exited, out

    def read(self, path: str) -> str | None:
        code, out = self.run(f"cat {shlex.quote(path)} 2>/dev/null", check=False)
        if code != 0:
            return None
        return self.conn.run(self._as_root(f"cat {shlex.quote(path)}"), hide=True, warn=True, in_stream=False).stdout

    def put_text(self, path: str, content: str, mode: str, owner: str = "root") -> None:
        if not self.exists(path):
            self.record(path, "file", data=path.startswith(str(self.host.data_dir) + "/"))
        tmp = f"/tmp/.zkops-{hashlib.sha1(path.encode()).hexdigest()[:10]}-{secrets.token_hex(4)}"
        self.conn.put(io.BytesIO(content.encode()), tmp)
        self.run(f"install -D -m {mode} -o {owner} -g {owner} {tmp} {shlex.quote(path)} && rm -f {tmp}")

    # ---- the play's Target
    def write(self, path: str, content: str, mode: str) -> None:
        """A rendered file: the service user owns its configuration and data files, root the rest."""
        self.put_text(path, content, mode, owner=USER if path.startswith((CONF_DIR, str(self.host.data_dir)))
                      else "root")

    def running(self) -> bool:
        return running(self)

    def start(self) -> None:
        start(self)

    def stop(self) -> None:
        stop(self)

    def log_tail(self, lines: int = 5) -> str:
        return self.run(f"tail -n {lines} {LOG_DIR}/zkops-server.log", check=False)[1]

    def roll_back(self) -> str | None:
        previous = self.run(f"readlink {INSTALL_ROOT}/previous", check=False)[1].strip()
        if not previous:
            return None
        self.run(f"ln -sfn {previous} {INSTALL_ROOT}/current")
        return previous


# ---------------------------------------------------------------- the tasks


# Each candidate interpreter: its version, whether it has venv and ensurepip, and whether an
# unprivileged user (nobody; the service user may not exist yet) can run it: a Python under a
# private home (pyenv in /root, mode 0700) runs for root and for nobody else.
PYTHON_PROBE = r"""
for py in "$@"; do
  real=$(command -v "$py" 2>/dev/null) || { echo "py=$py|missing"; continue; }
  ver=$("$real" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || { echo "py=$real|broken"; continue; }
  "$real" -c 'import venv, ensurepip' >/dev/null 2>&1 && venv=yes || venv=no
  if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null 2>&1; then
    runuser -u nobody -- "$real" -c 'pass' >/dev/null 2>&1 && others=yes || others=no
  else
    others=yes
  fi
  echo "py=$real|$ver|$venv|$others"
done
"""
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3.13", "/usr/bin/python3.12",
                  "/usr/bin/python3.11", "/usr/bin/python3.10")


def choose_python(lines: list[str], explicit: str | None) -> tuple[str, str]:
    """(path, version) of the first usable interpreter in the probe's ``py=`` lines, or TaskFailed
    naming every path tried and why it was refused."""
    refused = []
    for line in lines:
        path, *rest = line[3:].split("|")
        if rest == ["missing"]:
            refused.append(f"{path}: not found")
            continue
        if rest == ["broken"]:
            refused.append(f"{path}: does not run")
            continue
        ver, venv, others = rest
        if tuple(int(x) for x in ver.split(".")) < MIN_PYTHON:
            refused.append(f"{path}: Python {ver} is too old (zkops needs 3.10 or newer)")
        elif others != "yes":
            refused.append(f"{path}: Python {ver} cannot be run by the service user (a private install?)")
        elif venv != "yes":
            refused.append(f"{path}: Python {ver} has no venv module (install python3-venv)")
        else:
            return path, ver
    if explicit:
        raise TaskFailed(f"the inventory's python ({explicit}) cannot serve: " + "; ".join(refused))
    raise TaskFailed("no Python 3.10 or newer the service can run (install python3 and python3-venv); tried: "
                     + "; ".join(refused))


def gather_facts(node: Node) -> str:
    """OS, Python for the service, systemd, firewall tool and free disk into ``node.facts``; a summary."""
    script = r"""
. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"
[ -d /run/systemd/system ] && echo systemd=yes || echo systemd=no
fw=none
if command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q 'Status: active'; then fw=ufw
elif command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then fw=firewalld
elif command -v iptables >/dev/null 2>&1; then fw=iptables
elif command -v nft >/dev/null 2>&1; then fw=nftables; fi
echo "firewall=$fw"
echo "disk_kb=$(df -Pk / | awk 'NR==2 {print $4}')"
"""
    _, out = node.run(f"sh -c {shlex.quote(script)}")
    node.facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    explicit = node.host.python
    # the login user's python3 first (what the host's owner uses), then the system's
    login = node.conn.run("command -v python3", hide=True, warn=True, in_stream=False).stdout.strip()
    candidates = [explicit] if explicit else list(dict.fromkeys([p for p in (login,) if p] + list(SYSTEM_PYTHONS)))
    _, probed = node.run(f"sh -c {shlex.quote(PYTHON_PROBE)} probe " + " ".join(shlex.quote(c) for c in candidates))
    lines = [line for line in probed.splitlines() if line.startswith("py=")]
    path, py = choose_python(lines, explicit)
    node.facts["python"], node.facts["python_path"] = py, path
    if int(node.facts.get("disk_kb", "0") or 0) < 200_000:
        raise TaskFailed(f"only {int(node.facts.get('disk_kb', '0')) // 1024} MiB free on /: need 200 MiB")
    return f"{node.facts['os']}, Python {py} ({path}), systemd {node.facts['systemd']}, firewall {node.facts['firewall']}"


def install(node: Node, wheel: Wheel, check: bool) -> Result:
    """The wheel's release in its own venv under /opt/zkops, ``current`` pointing at it."""
    venv = f"{INSTALL_ROOT}/{wheel.release}"
    stamp = node.read(f"{venv}/.zkops-wheel-sha256")
    current = node.run(f"readlink {INSTALL_ROOT}/current", check=False)[1]
    if stamp is not None and stamp.strip() == wheel.sha256 and current == venv:
        return ok(venv)
    if check:
        return changed(f"would install {wheel.release}")
    if stamp is None or stamp.strip() != wheel.sha256:
        if not node.exists(INSTALL_ROOT):
            node.record(INSTALL_ROOT, "dir")
        remote = f"{INSTALL_ROOT}/wheels/{wheel.path.name}"
        upload = f"/tmp/.zkops-upload-{wheel.sha256[:12]}.whl"  # writable by any login; moved as root
        node.conn.put(str(wheel.path), upload)
        python = shlex.quote(node.facts.get("python_path") or "python3")
        node.run(f"mkdir -p {INSTALL_ROOT}/wheels && chmod 0755 {INSTALL_ROOT} && mv -f {upload} {remote}")
        node.run(f"rm -rf {venv} && {python} -m venv {venv} && {venv}/bin/pip install -q --no-deps --no-index "
                 f"--disable-pip-version-check {remote}")
        node.put_text(f"{venv}/.zkops-wheel-sha256", wheel.sha256 + "\n", "0644")
    if current and current != venv:
        node.run(f"ln -sfn {current} {INSTALL_ROOT}/previous")
    node.run(f"ln -sfn {venv} {INSTALL_ROOT}/current")
    return changed(venv)


def user_and_dirs(node: Node, check: bool) -> Result:
    """The ``zkops`` system user and its directories, with their modes."""
    h = node.host
    dirs = [(str(h.base_dir), "0750"), (str(h.data_dir), "0750"), (CONF_DIR, "0750"), (LOG_DIR, "0750")]
    if h.data_log_dir:
        dirs.append((str(h.data_log_dir), "0750"))
    probe = " ; ".join(f"stat -c '%n %a %U' {shlex.quote(d)} 2>/dev/null || echo '{d} missing'" for d, _ in dirs)
    have_user = node.run(f"id -u {USER}", check=False)[0] == 0
    _, out = node.run(f"sh -c {shlex.quote(probe)}")
    wrong = [d for (d, mode), line in zip(dirs, out.splitlines(), strict=False)
             if line.split()[1:] != [mode.lstrip("0"), USER]]
    if have_user and not wrong:
        return ok(f"user {USER}, {len(dirs)} directories")
    if check:
        return changed("would create " + ", ".join(([] if have_user else [f"user {USER}"]) + wrong))
    if not have_user:
        node.record(f"user:{USER}", "user")
        node.run(f"useradd --system --home-dir {h.base_dir} --no-create-home --shell /usr/sbin/nologin {USER}")
    for d, mode in dirs:
        if not node.exists(d):
            is_data = d != CONF_DIR and d != LOG_DIR
            node.record(d, "dir", data=is_data)
        node.run(f"install -d -m {mode} -o {USER} -g {USER} {shlex.quote(d)}")
    return changed(", ".join(([] if have_user else [f"user {USER}"]) + wrong))


def remote_files(inv: Inventory, node: Node, release: str) -> list[tuple[str, str, str, str]]:
    """(task, path, content, mode) for every file the host gets."""
    h = node.host
    files = render(inv, h)
    env = template_env()
    ctx = {"host": h, "user": USER, "install_root": INSTALL_ROOT, "conf_dir": CONF_DIR, "log_dir": LOG_DIR,
           "env_file": ENV_FILE, "release": release, "version": __version__}
    out = [("render zoo.cfg", f"{CONF_DIR}/zoo.cfg", files["zoo.cfg"], "0640"),
           ("write myid", f"{h.data_dir}/myid", files["myid"], "0640"),
           ("render environment file", ENV_FILE, env.get_template("zkops.env.j2").render(**ctx), "0644")]
    if node.facts.get("systemd") == "yes":
        out.append(("render systemd unit", UNIT, env.get_template("zkops.service.j2").render(**ctx), "0644"))
    if tls_settings({**inv.vars, **h.vars}, h):
        pki = _pki(inv)
        out.append(("tls: CA certificate", f"{TLS_DIR}/ca.pem", pki.ca_pem, "0644"))
        out.append(("tls: node certificate", f"{TLS_DIR}/node.pem", pki.node(h.name, h.address), "0640"))
    return out


_PKIS: dict[str, Any] = {}


def _pki(inv: Inventory) -> Any:
    """The inventory's CA on this machine (made on first use; see provision/pki.py)."""
    from .pki import Pki, default_dir

    where = default_dir(inv.source)
    if str(where) not in _PKIS:
        try:
            _PKIS[str(where)] = Pki(where)
        except ImportError:
            raise TaskFailed("tls: true needs the Python package cryptography, which is not installed: "
                             + install_hint("cryptography")) from None
        _PKIS[str(where)].client("admin")
    return _PKIS[str(where)]


def firewall_ports(inv: Inventory, h: Host) -> list[tuple[int, list[str] | None]]:
    merged = {**inv.vars, **h.vars}
    peers_only = bool(merged.get("firewall_peers_only", False))
    peers = [p.address for p in inv.hosts if p is not h]
    ports: list[tuple[int, list[str] | None]] = [(h.client_port, None), (h.quorum_port, peers if peers_only else None),
                                                 (h.election_port, peers if peers_only else None)]
    tls = tls_settings(merged, h)
    if tls:
        ports.append((int(tls["secureClientPort"]), None))  # type: ignore[call-overload]
    return ports


def firewall(inv: Inventory, node: Node, check: bool) -> Result:
    """Open the node's ports with the firewall tool in use (see :func:`firewall_ports`)."""
    if not {**inv.vars, **node.host.vars}.get("firewall", True):
        return skipped("firewall: false")
    tool = node.facts.get("firewall", "none")
    if tool == "none":
        return skipped("no firewall tool on the host")
    missing = []
    ruleset = node.run("nft list chain inet filter input", check=False)[1] if tool == "nftables" else ""
    for port, sources in firewall_ports(inv, node.host):
        any_source: list[str | None] = [None]  # no list: one rule open to every source
        for src in sources or any_source:
            if tool == "iptables":
                rule = f"INPUT -p tcp --dport {port}" + (f" -s {src}" if src else "") + " -j ACCEPT"
                if node.run(f"iptables -C {rule}", check=False)[0] != 0:
                    missing.append((f"iptables -I {rule}", f"{port}" + (f" from {src}" if src else "")))
            elif tool == "ufw":
                if src:
                    missing.append((f"ufw allow proto tcp from {src} to any port {port}", f"{port} from {src}"))
                else:
                    missing.append((f"ufw allow {port}/tcp", str(port)))
            elif tool == "firewalld":
                if node.run(f"firewall-cmd --query-port={port}/tcp", check=False)[0] != 0:
                    missing.append((f"firewall-cmd --permanent --add-port={port}/tcp && firewall-cmd --reload", str(port)))
            elif tool == "nftables":
                match = (f"ip saddr {src} " if src else "") + f"tcp dport {port} accept"
                if match not in ruleset:
                    missing.append((f"nft add rule inet filter input {match}", f"{port}" + (f" from {src}" if src else "")))
    if tool == "ufw":  # ufw answers "Skipping adding existing rule" itself: idempotent, check its output
        status = node.run("ufw status", check=False)[1]
        missing = [(cmd, what) for cmd, what in missing if what.split()[0] + "/tcp" not in status]
    if not missing:
        return ok(f"{tool}: ports open")
    if not check:
        for cmd, _ in missing:
            node.run(cmd)
    return changed(f"{tool}: opened " + ", ".join(what for _, what in missing))


def _pidfile(h: Host) -> str:
    return f"{h.data_dir}/zookeeper_server.pid"


def running(node: Node) -> bool:
    if node.facts.get("systemd") == "yes":
        return node.run("systemctl is-active --quiet zkops", check=False)[0] == 0
    return node.run(f"kill -0 $(cat {_pidfile(node.host)} 2>/dev/null) 2>/dev/null", check=False)[0] == 0


def start(node: Node) -> None:
    h = node.host
    if node.facts.get("systemd") == "yes":
        node.run("systemctl daemon-reload && systemctl enable --now zkops")
        return
    port_busy = node.run(f"ss -Hltn 'sport = :{h.client_port}' | grep -q LISTEN", check=False)[0] == 0
    if port_busy:
        raise TaskFailed(f"port {h.client_port} is already taken on {h.address} by another program")
    node.run(f"cd {h.base_dir} && runuser -u {USER} -- env ZOO_LOG_DIR={LOG_DIR} "
             f"{INSTALL_ROOT}/current/bin/zkserver start {CONF_DIR}/zoo.cfg")


def stop(node: Node) -> None:
    if node.facts.get("systemd") == "yes":
        node.run("systemctl stop zkops")
        return
    node.run(f"runuser -u {USER} -- env ZOO_LOG_DIR={LOG_DIR} {INSTALL_ROOT}/current/bin/zkserver stop "
             f"{CONF_DIR}/zoo.cfg", check=False)


# ---------------------------------------------------------------- plays


def ssh_tasks(inv: Inventory, node: Node, wheel: Wheel, opts: Options) -> list[Task]:
    """A host's deploy over SSH, in order; a change of release or of a file restarts its node."""
    files = [file_task(name, path, content, mode, opts.check) for name, path, content, mode
             in remote_files(inv, node, wheel.release)]
    return [Task("install zkops " + wheel.release, partial(install, wheel=wheel, check=opts.check), restarts=True),
            Task("user and directories", partial(user_and_dirs, check=opts.check)),
            *files,
            Task("firewall", partial(firewall, inv, check=opts.check))]


def _connect(node: Node) -> Result:
    node.connect()
    return ok(gather_facts(node))


@contextlib.contextmanager
def connected(play: Play) -> Iterator[list[Node]]:
    """The play's SSH hosts (within ``--limit``), connected with their facts gathered: the ones
    that answered (the others have a failed ``gather facts``); every connection closed after."""
    need("paramiko", "zkops over SSH")  # before any host: one clear message, not one failure per host
    need("fabric", "zkops over SSH")
    nodes = [Node(h, play.opts) for h in play.hosts("ssh")]
    try:
        yield play.run_tasks(nodes, lambda node: [Task("gather facts", _connect)])
    finally:
        for n in nodes:
            n.close()


def deploy_remote(inv: Inventory, opts: Options) -> Recap:
    """The deploy play for the SSH hosts: install, files, firewall, services, health."""
    play = Play(inv, opts)
    with connected(play) as nodes:
        if not nodes:
            return play.recap
        with tempfile.TemporaryDirectory(prefix="zkops-wheel-") as tmp:
            try:
                wheel = wheel_from_file(opts.wheel) if opts.wheel else build_wheel(Path(tmp))
            except (TaskFailed, OSError, ValueError) as exc:
                for n in nodes:
                    play.recap.add(n.host.name, "build wheel", "failed", str(exc))
                return play.recap
            ready = play.run_tasks(nodes, lambda node: ssh_tasks(inv, node, wheel, opts))
            if not opts.check:
                play.converge(ready)
    if not opts.check:
        play.recap.status = check_ensemble([h for h in inv.hosts if h.connection == "ssh"], wait=opts.join_timeout)
    return play.recap


def rolling_restart(play: Play, nodes: list[Node], reason: str) -> None:
    """The play's one rolling restart (:meth:`.play.Play.rolling_restart`) on these SSH nodes."""
    play.rolling_restart(nodes, reason)


def service_remote(inv: Inventory, opts: Options, action: str, purge_data: bool = False) -> Recap:
    """stop | start | restart (rolling) | destroy for the SSH hosts."""
    play = Play(inv, opts)
    with connected(play) as nodes:
        if action == "restart":
            play.rolling_restart([n for n in nodes if n.running()], reason="requested")
        task = {"stop": Task("stop service", stop_task), "start": Task("start service", start_unless_running),
                "destroy": Task("destroy", partial(destroy, purge_data=purge_data))}.get(action)
        if task is not None:
            for node in nodes:
                play.run(node, task)
    return play.recap


def destroy(node: Node, purge_data: bool) -> Result:
    """Stop the service and remove what the manifest says the play created: everything but the
    data (unless ``purge_data``), newest first; nothing that is not in the manifest."""
    entries = node.manifest()
    if not entries:
        return ok(f"nothing to remove: {MANIFEST} lists nothing zkops created here")
    if running(node):
        stop(node)
    if node.facts.get("systemd") == "yes" and any(e["path"] == UNIT for e in entries):
        node.run("systemctl disable zkops 2>/dev/null; true")
    removed, kept = 0, []
    for entry in reversed(list(entries)):
        path, kind = entry["path"], entry["kind"]
        if entry.get("data") and not purge_data:
            kept.append(entry)
            continue
        if kind == "user":
            if any(e.get("data") for e in kept):
                kept.append(entry)  # its files stay: keep the owner too
                continue
            node.run(f"userdel {shlex.quote(path.split(':', 1)[1])}", check=False)
        elif kind == "dir":
            node.run(f"rm -rf {shlex.quote(path)}")
        else:
            node.run(f"rm -f {shlex.quote(path)}")
        removed += 1
    if any(e["path"] == UNIT for e in entries) and node.facts.get("systemd") == "yes":
        node.run("systemctl daemon-reload")
    kept.reverse()
    node.created = kept
    if kept:
        node.save_manifest()
        where = ", ".join(e["path"] for e in kept if e["kind"] == "dir") or "place"
        return changed(f"removed {removed} paths zkops created; data kept in {where}")
    node.run(f"rm -f {MANIFEST}; rmdir {STATE_DIR} 2>/dev/null; true")
    return changed(f"removed {removed} paths zkops created, data purged")
