"""The docker backend: one container per server on a private network, faults through the engine.

The image is built from the ``Dockerfile`` shipped in the package (``labs/files/``, the same
file as the checkout's top-level one; the official zookeeper image's ZOO_* variables) with the
wheel of the running zkops (a checkout's, or rebuilt from the installed copy: provision/wheel.py); ``ZKOPS_LAB_DOCKER_BASE`` picks the base image
(default ``python:3.11-slim-bookworm``). Each node gets a fixed address on the lab's network
and the name ``zkN``, so faults can name peers even while they are stopped: a cut link
``a -> b`` is an iptables DROP in a's container for b's address; kill is SIGKILL from the
engine and pause is the engine's freezer.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import random
import signal
import struct
import tarfile
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from .faultproxy import Faults
from .model import LabError, LabState, Node

CHAIN = "ZKOPS-LAB"
IMAGE = "zkops-lab"

LAB_RANGE = ipaddress.IPv4Network("172.30.0.0/16")  # the lab's networks are /24s of this range


def parse_proc_net_route(text: str) -> list[ipaddress.IPv4Network]:
    """The networks of the kernel's IPv4 route table as /proc/net/route prints it, default route left out.

    Each address there is the network-order bytes printed as a native integer in hex.
    """
    nets: list[ipaddress.IPv4Network] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, mask = (ipaddress.IPv4Address(struct.pack("=I", int(x, 16))) for x in (fields[1], fields[7]))
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen:
            nets.append(net)
    return nets


def host_routes() -> list[ipaddress.IPv4Network]:
    """The networks this host routes (none where the table cannot be read)."""
    try:
        return parse_proc_net_route(Path("/proc/net/route").read_text())
    except OSError:
        return []


def lab_subnets(routed: list[ipaddress.IPv4Network], rng: random.Random) -> list[ipaddress.IPv4Network]:
    """The /24s of the lab range that no route of the host covers or overlaps, in the generator's order.

    The lab reaches its containers by their addresses from this host: a subnet the host already
    routes (a bridge another engine left behind, a VPN) would take the lab's traffic.
    """
    free = [net for net in LAB_RANGE.subnets(new_prefix=24)
            if net.network_address.packed[2] not in (0, 255) and not any(net.overlaps(r) for r in routed)]
    if not free:
        raise LabError(f"no free subnet for the lab's network: this host routes all of {LAB_RANGE}")
    rng.shuffle(free)
    return free


def _client(docker_host: str | None) -> Any:
    from ..requires import MissingPackage, need

    try:
        docker = need("docker", "the docker lab backend")
    except MissingPackage as exc:
        raise LabError(str(exc)) from None
    try:
        c = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        c.ping()
        return c
    except Exception as exc:  # noqa: BLE001 - docker.errors.DockerException and socket errors
        raise LabError(f"cannot reach a Docker engine ({exc}); is dockerd running, is DOCKER_HOST right?") from None


def packaged(*parts: str) -> bytes:
    """A file shipped in the zkops.labs package (``labs/files/Dockerfile``, ...)."""
    return resources.files("zkops.labs").joinpath(*parts).read_bytes()


def build_image(client: Any, tag: str, base: str | None = None) -> str:
    """Build ``tag`` from the packaged Dockerfile with the wheel of the running zkops."""
    from ..provision.wheel import WheelError
    from ..provision.wheel import build as build_wheel

    with tempfile.TemporaryDirectory(prefix="zkops-image-") as tmp:
        ctx = Path(tmp)
        try:
            wheel = build_wheel(ctx / "dist").path
        except WheelError as exc:
            raise LabError(f"could not build the zkops wheel: {exc}") from None
        (ctx / "Dockerfile").write_bytes(packaged("files", "Dockerfile"))
        (ctx / "labs" / "docker").mkdir(parents=True)
        (ctx / "labs" / "docker" / "docker-entrypoint.sh").write_bytes(packaged("docker", "docker-entrypoint.sh"))
        args = {"WHEEL": f"dist/{wheel.name}"}
        if base:
            args["BASE"] = base
        try:
            client.images.build(path=str(ctx), tag=tag, buildargs=args, rm=True, forcerm=True)
        except Exception as exc:  # noqa: BLE001 - BuildError, APIError
            raise LabError(f"docker build failed: {exc}") from None
    return tag


class DockerBackend:
    def __init__(self, lab_dir: Path, state: LabState) -> None:
        self.dir = lab_dir
        self.state = state
        self.client = _client(state.extra.get("docker_host"))

    @staticmethod
    def create(lab_dir: Path, nodes: int, observers: int, tick_ms: int) -> LabState:
        members = [Node(i, "observer" if i > nodes else "participant", "", 2181, 2888, 3888)
                   for i in range(1, nodes + observers + 1)]
        return LabState("docker", members, tick_ms, extra={"docker_host": os.environ.get("DOCKER_HOST")})

    # ------------------------------------------------------------ set-up and tear-down
    def prepare(self) -> None:
        from docker.types import IPAMConfig, IPAMPool

        tag = os.environ.get("ZKOPS_LAB_DOCKER_IMAGE") or f"{IMAGE}:latest"
        try:
            self.client.images.get(tag)
        except Exception:  # noqa: BLE001 - ImageNotFound
            build_image(self.client, tag, os.environ.get("ZKOPS_LAB_DOCKER_BASE"))
        name = f"zkops-lab-{random.randrange(16**6):06x}"
        self.state.extra["name"] = name
        # a generator of its own: what other code did to the module's state never decides the subnet
        for subnet in lab_subnets(host_routes(), random.SystemRandom())[:20]:
            try:
                net = self.client.networks.create(name, driver="bridge", labels={"zkops.lab": name},
                                                  ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]))
                break
            except Exception:  # noqa: BLE001 - the subnet overlaps one the engine uses: try another
                continue
        else:
            raise LabError("could not create a private Docker network (no free 172.30.x.0/24)")
        third = subnet.network_address.packed[2]
        self.state.extra["network"] = net.id
        servers = " ".join(f"server.{n.id}=zk{n.id}:2888:3888{':observer' if n.role == 'observer' else ''};2181"
                           for n in self.state.nodes)
        api = self.client.api
        for n in self.state.nodes:
            n.host = f"172.30.{third}.{10 + n.id}"
            env = {"ZOO_MY_ID": str(n.id), "ZOO_SERVERS": servers, "ZOO_TICK_TIME": str(self.state.tick_ms),
                   "ZOO_INIT_LIMIT": "10", "ZOO_SYNC_LIMIT": "5", "ZOO_4LW_COMMANDS_WHITELIST": "*",
                   "ZOO_MAX_CLIENT_CNXNS": "0", "ZOO_ADMINSERVER_ENABLED": "false",
                   "ZOO_AUTOPURGE_PURGEINTERVAL": "1",
                   "ZOO_CFG_EXTRA": "peerType=observer" if n.role == "observer" else ""}
            host_config = api.create_host_config(cap_add=["NET_ADMIN"])
            networking = api.create_networking_config(
                {name: api.create_endpoint_config(ipv4_address=n.host, aliases=[f"zk{n.id}"])})
            created = api.create_container(tag, name=f"{name}-zk{n.id}", hostname=f"zk{n.id}", environment=env,
                                           host_config=host_config, networking_config=networking,
                                           labels={"zkops.lab": name})
            n.handle = created["Id"]

    def destroy(self) -> None:
        for n in self.state.nodes:
            if n.handle:
                try:
                    self.client.containers.get(n.handle).remove(force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        net = self.state.extra.pop("network", None)
        if net:
            try:
                self.client.networks.get(net).remove()
            except Exception:  # noqa: BLE001
                pass

    # ------------------------------------------------------------ processes
    def _container(self, n: Node) -> Any:
        try:
            return self.client.containers.get(n.handle)
        except Exception:  # noqa: BLE001
            raise LabError(f"node {n.id}'s container {n.handle[:12]} is gone") from None

    def start(self, n: Node) -> None:
        self._container(n).start()
        self.apply_faults(self._faults())  # a fresh container has no rules yet

    def running(self, n: Node) -> bool:
        if not n.handle:
            return False
        try:
            return self._container(n).status in ("running", "paused")
        except LabError:
            return False

    def process_state(self, n: Node) -> str:
        try:
            status = self._container(n).status
        except LabError:
            return "stopped"
        return {"running": "running", "paused": "paused"}.get(status, "stopped")

    def kill(self, n: Node) -> None:
        c = self._container(n)
        if c.status == "paused":
            c.unpause()
        if c.status in ("running", "paused"):
            c.kill()
            c.wait(timeout=30)

    def stop(self, n: Node) -> None:
        """A clean stop: docker stop (SIGTERM, SIGKILL after 30 s)."""
        c = self._container(n)
        if c.status == "paused":
            c.unpause()
        if c.status in ("running", "paused"):
            c.stop(timeout=30)

    def signal(self, n: Node, sig: int) -> None:
        c = self._container(n)
        if sig == signal.SIGSTOP:
            c.pause()
        elif sig == signal.SIGCONT:
            c.unpause()
        else:
            c.kill(signal=sig)

    # ------------------------------------------------------------ faults
    def _faults(self) -> Faults:
        raw = self.state.faults
        return Faults({(a, b) for a, b in raw.get("cut", [])}, {})

    def apply_faults(self, faults: Faults) -> None:
        if faults.delay_ms:
            raise LabError("`slow` needs tc netem, which this kernel lacks for containers; use the local backend")
        by_id = {n.id: n for n in self.state.nodes}
        for n in self.state.nodes:
            if self.process_state(n) != "running":
                continue
            drops = [f"iptables -A {CHAIN} -d {by_id[b].host} -j DROP" for a, b in sorted(faults.cut) if a == n.id]
            script = "; ".join([f"iptables -N {CHAIN} 2>/dev/null || true", f"iptables -F {CHAIN}",
                                f"iptables -C OUTPUT -j {CHAIN} 2>/dev/null || iptables -I OUTPUT -j {CHAIN}",
                                *drops])
            code, out = self._container(n).exec_run(["sh", "-c", script])
            if code != 0:
                raise LabError(f"iptables failed in node {n.id}: {out.decode(errors='replace').strip()}")

    # ------------------------------------------------------------ observing
    def election_events(self, n: Node) -> list[dict[str, Any]]:
        try:
            stream, _ = self._container(n).get_archive("/datalog/election-events.jsonl")
        except Exception:  # noqa: BLE001 - not written yet, or no container
            return []
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member is not None else None
            text = f.read().decode(errors="replace") if f is not None else ""
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out
