"""A private Docker engine for the tests, and a Debian base image built without a registry.

The engine runs from Debian's docker.io with its own data root, exec root, pidfile and
unix socket under a temporary directory, so it never touches a Docker the machine may
already run, and is stopped by its pid. Nothing can be pulled here, so the base image is
``debootstrap --variant=minbase`` (python3, venv, sshd, iproute2, iptables) imported with
``docker import``; the root file system is cached as a tarball under /var/tmp between runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

INCLUDE = ("python3", "python3-venv", "openssh-server", "iproute2", "iptables", "procps", "sudo")
# a host as production has it: systemd as PID 1, and Debian's own ZooKeeper package (with its JVM)
SYSTEMD_INCLUDE = (*INCLUDE, "systemd", "systemd-sysv", "dbus", "zookeeper")
# a host that runs Apache ZooKeeper as Debian ships it, to migrate off: the JVM and zookeeperd's
# service (an init script systemd runs as zookeeper.service) on top of the systemd host
JAVA_INCLUDE = (*SYSTEMD_INCLUDE, "default-jre-headless", "zookeeperd")
CACHE = Path("/var/tmp/zkops-test-images")
BASE_TAG = "zkops-test-base:bookworm"
SYSTEMD_TAG = "zkops-test-systemd:bookworm"
JAVA_TAG = "zkops-test-java:bookworm"


class DockerUnavailable(RuntimeError):
    pass


def _mirror() -> str:
    """The Debian mirror apt already uses (read from its sources, never hard-coded)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file():
            texts.append(p.read_text(errors="replace"))
    text = "\n".join(texts)
    m = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm", text, re.M)
    if not m:
        raise DockerUnavailable("no Debian mirror in apt's sources for debootstrap")
    return m.group(1)


def rootfs_tarball(include: tuple[str, ...] = INCLUDE) -> Path:
    """The cached debootstrap root file system as a tar (built once, about a minute; a few with a JVM)."""
    key = hashlib.sha256(",".join(include).encode()).hexdigest()[:12]
    tar = CACHE / f"bookworm-minbase-{key}.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    if shutil.which("debootstrap") is None:
        raise DockerUnavailable("debootstrap is not installed (scripts/install-test-deps installs it)")
    with tempfile.TemporaryDirectory(prefix="zkops-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(include)}", "bookworm",
                        str(root), _mirror()], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.replace(tar)
    return tar


class Engine:
    """One dockerd of our own; ``client`` is a docker-py client bound to its socket."""

    def __init__(self) -> None:
        if shutil.which("dockerd") is None:
            raise DockerUnavailable("dockerd is not installed (scripts/install-test-deps installs docker.io)")
        self.dir = Path(tempfile.mkdtemp(prefix="zkops-dockerd-", dir="/var/tmp"))
        self.socket = self.dir / "docker.sock"
        self.url = f"unix://{self.socket}"
        log = open(self.dir / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "--pidfile", str(self.dir / "docker.pid"), "--host", self.url, "--bridge", "none",
             "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        import docker

        deadline = time.monotonic() + 60
        while True:
            try:
                self.client = docker.DockerClient(base_url=self.url, timeout=120)
                self.client.ping()
                break
            except Exception as exc:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.dir / "dockerd.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise DockerUnavailable(f"dockerd did not start: {exc}\n{tail}") from None
                time.sleep(0.2)

    def base_image(self) -> str:
        try:
            self.client.images.get(BASE_TAG)
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
            repo, tag = BASE_TAG.split(":")
            self.client.api.import_image_from_file(str(rootfs_tarball()), repository=repo, tag=tag)
        return BASE_TAG

    def systemd_image(self) -> str:
        """The base image plus systemd as PID 1 and Debian's zookeeper package."""
        try:
            self.client.images.get(SYSTEMD_TAG)
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
            repo, tag = SYSTEMD_TAG.split(":")
            self.client.api.import_image_from_file(str(rootfs_tarball(SYSTEMD_INCLUDE)), repository=repo, tag=tag)
        return SYSTEMD_TAG

    def java_image(self) -> str:
        """The systemd image plus the JVM and zookeeperd (Apache ZooKeeper as a Debian service)."""
        try:
            self.client.images.get(JAVA_TAG)
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
            repo, tag = JAVA_TAG.split(":")
            self.client.api.import_image_from_file(str(rootfs_tarball(JAVA_INCLUDE)), repository=repo, tag=tag)
        return JAVA_TAG

    def stop(self) -> None:
        """Stop our dockerd (its containers die with it) and remove its directories."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            target = mount.split()[1]
            if target.startswith(str(self.dir)):
                subprocess.run(["umount", "-l", target], check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def available() -> bool:
    return shutil.which("dockerd") is not None and os.geteuid() == 0
