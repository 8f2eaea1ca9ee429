"""Bare Debian hosts with sshd and python3, as containers of the tests' own Docker engine.

``add_systemd_host`` adds one as production hosts are: systemd as PID 1 (the container gets
SYS_ADMIN, its own cgroup namespace and tmpfs on /run; never --privileged), sshd started by
systemd, and Debian's own ``zookeeper`` package (with its JVM) installed.
"""

from __future__ import annotations

import io
import random
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from tests.support.dockerd import Engine

# root logs in with the key; so does ``vagrant``, a user with passwordless sudo as on a Vagrant box
SSHD = ("mkdir -p /run/sshd /root/.ssh && ssh-keygen -A >/dev/null && "
        "printf '%s\\n' \"$AUTHORIZED_KEY\" > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && "
        "useradd -m -s /bin/sh vagrant && mkdir -p /home/vagrant/.ssh && "
        "cp /root/.ssh/authorized_keys /home/vagrant/.ssh/ && chown -R vagrant: /home/vagrant/.ssh && "
        "echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/vagrant && "
        "exec /usr/sbin/sshd -D -e")


def _routes() -> str:
    """The host's IPv4 routes as `ip -4 route` prints them ('' without iproute2)."""
    import subprocess

    try:
        return subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass
class SshHost:
    name: str
    address: str
    container: Any


class SshHosts:
    """N hosts on a private network, reachable from here over the bridge; ``key`` logs in as root."""

    def __init__(self, engine: Engine, workdir: Path, count: int, prefix: str = "zkops-ssh") -> None:
        from docker.types import IPAMConfig, IPAMPool

        self.engine = engine
        self.key_path = workdir / "id_rsa"
        key = paramiko.RSAKey.generate(2048)
        key.write_private_key_file(str(self.key_path))
        public = f"{key.get_name()} {key.get_base64()} zkops-tests"
        self.public = public
        self.prefix = prefix
        # a generator of its own (what other code did to the module's state never decides the
        # subnet), and never a subnet the host already routes: a bridge an earlier engine left
        # behind would take the traffic meant for ours, and sshd would look down
        rng = random.SystemRandom()
        routed = _routes()
        for _ in range(50):
            self.third = rng.randrange(1, 255)
            if f"172.28.{self.third}." in routed:
                continue
            try:
                self.network = engine.client.networks.create(
                    f"{prefix}-{self.third}", driver="bridge", labels={"zkops.test": "ssh"},
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=f"172.28.{self.third}.0/24")]))
                break
            except Exception:  # noqa: BLE001 - subnet in use: try another
                continue
        api = engine.client.api
        image = engine.base_image()
        self.hosts: list[SshHost] = []
        for i in range(1, count + 1):
            address = f"172.28.{self.third}.{10 + i}"
            created = api.create_container(
                image, ["sh", "-c", SSHD], name=f"{prefix}-{self.third}-{i}", hostname=f"zk{i}",
                environment={"AUTHORIZED_KEY": public}, labels={"zkops.test": "ssh"},
                host_config=api.create_host_config(cap_add=["NET_ADMIN"]),
                networking_config=api.create_networking_config(
                    {self.network.name: api.create_endpoint_config(ipv4_address=address)}))
            api.start(created["Id"])
            self.hosts.append(SshHost(f"zk{i}", address, engine.client.containers.get(created["Id"])))
        for h in self.hosts:
            self.wait_ssh(h)

    def add_systemd_host(self, name: str, index: int, image: str | None = None,
                         cap_add: tuple[str, ...] = ()) -> SshHost:
        """A host whose PID 1 is systemd, with Debian's zookeeper package; address .10+index.
        ``image``: another image of that kind (``Engine.java_image()``: with zookeeperd too);
        ``cap_add``: more capabilities (SYS_PTRACE lets root's start-stop-daemon read another
        user's /proc/PID/exe, as on a real host: zookeeperd's stop needs it)."""
        api = self.engine.client.api
        address = f"172.28.{self.third}.{10 + index}"
        host_config = api.create_host_config(
            cap_add=["SYS_ADMIN", "NET_ADMIN", *cap_add], cgroupns="private",
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            tmpfs={"/run": "", "/run/lock": "", "/tmp": ""})
        created = api.create_container(
            image or self.engine.systemd_image(), ["/sbin/init"], name=f"{self.prefix}-{self.third}-{index}", hostname=name,
            environment={"container": "docker"}, labels={"zkops.test": "ssh"}, stop_signal="SIGRTMIN+3",
            host_config=host_config,
            networking_config=api.create_networking_config(
                {self.network.name: api.create_endpoint_config(ipv4_address=address)}))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            d = tarfile.TarInfo(".ssh")
            d.type, d.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(d)
            body = (self.public + "\n").encode()
            f = tarfile.TarInfo(".ssh/authorized_keys")
            f.size, f.mode = len(body), 0o600
            tar.addfile(f, io.BytesIO(body))
        api.put_archive(created["Id"], "/root", buf.getvalue())
        api.start(created["Id"])
        host = SshHost(name, address, self.engine.client.containers.get(created["Id"]))
        self.hosts.append(host)
        deadline = time.monotonic() + 60
        while True:
            state = self.exec(host, "systemctl is-system-running 2>/dev/null")[1].strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"systemd in {name} did not finish booting: {state!r}")
            time.sleep(0.5)
        self.wait_ssh(host)
        return host

    def wait_ssh(self, h: SshHost, timeout: float = 60.0) -> None:
        import socket
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((h.address, 22), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH"):
                        return
            except OSError:
                time.sleep(0.2)
        try:
            h.container.reload()
            state = f"container {h.container.status}; its log: {h.container.logs(tail=20)!r}"
        except Exception as exc:  # noqa: BLE001 - only for the message
            state = f"container state unknown ({exc})"
        raise TimeoutError(f"sshd on {h.address} did not come up ({state}; host routes: {_routes()!r})")

    def exec(self, h: SshHost, command: str) -> tuple[int, str]:
        code, out = h.container.exec_run(["sh", "-c", command])
        return code, out.decode(errors="replace")

    def cleanup(self) -> None:
        for h in self.hosts:
            try:
                h.container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        try:
            self.network.remove()
        except Exception:  # noqa: BLE001
            pass
