"""The ssh backend: a lab on real hosts, installed by ``zkops deploy`` and broken over SSH.

The hosts come from an inventory (the vagrant backend generates one from ``vagrant
ssh-config``). ``up`` runs the same deploy play an operator would, so the lab proves the
deploy path too. Faults are commands on the hosts: a crash is SIGKILL to the server (and,
under systemd, a stop so that ``Restart=on-failure`` does not undo it), a pause is SIGSTOP,
a cut link ``a -> b`` is an iptables DROP on a for b's address, a slow link is a tc netem
band for b's address on a's interface. ``down`` removes the faults and everything deploy
installed, data included: a lab leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
from pathlib import Path
from typing import Any

import yaml

from .faultproxy import Faults
from .model import LabError, LabState, Node

CHAIN = "ZKOPS-LAB"


def _provision() -> Any:
    try:
        from zkops.provision import inventory, remote
    except ImportError as exc:  # fabric is an extra
        raise LabError(f"the ssh and vagrant backends need the deploy extra: pip install 'zkops[deploy]' ({exc})")
    return inventory, remote


class SshBackend:
    """Nodes on SSH hosts; one SSH connection per host per command, opened on first use."""

    name = "ssh"

    def __init__(self, lab_dir: Path, state: LabState) -> None:
        self.dir = lab_dir
        self.state = state
        inventory, remote = _provision()
        self.inv = inventory.load(lab_dir / "inventory.yaml")
        self.opts = remote.Options(accept_new_host_keys=True, known_hosts=lab_dir / "known_hosts",
                                   wheel=Path(state.extra["wheel"]) if state.extra.get("wheel") else None,
                                   log=lambda text: None)
        self._nodes: dict[int, Any] = {}

    # ------------------------------------------------------------ layout
    @classmethod
    def create(cls, lab_dir: Path, nodes: int, observers: int, tick_ms: int, inventory: str | None = None,
               wheel: str | None = None) -> LabState:
        if inventory is None:
            raise LabError("the ssh backend needs --inventory FILE (hosts reachable over SSH)")
        try:
            data = yaml.safe_load(Path(inventory).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LabError(f"cannot read the inventory {inventory}: {exc}")
        return cls.from_inventory(lab_dir, data, wheel)

    @classmethod
    def from_inventory(cls, lab_dir: Path, data: Any, wheel: str | None = None) -> LabState:
        inventory, _ = _provision()
        try:
            inv = inventory.parse(data, "lab inventory")
        except inventory.InventoryError as exc:
            raise LabError(str(exc))
        if any(h.connection != "ssh" for h in inv.hosts):
            raise LabError("the ssh backend takes hosts with connection: ssh; for local ones use --backend local")
        (lab_dir / "inventory.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        members = [Node(h.myid, h.role, h.address, h.client_port, h.quorum_port, h.election_port, handle=h.name)
                   for h in inv.hosts]
        tick = int(inv.vars.get("tickTime", 2000))
        return LabState(cls.name, members, tick, extra={"wheel": wheel} if wheel else {})

    def _host(self, n: Node) -> Any:
        for h in self.inv.hosts:
            if h.name == n.handle:
                return h
        raise LabError(f"node {n.id} ({n.handle}) is not in {self.dir / 'inventory.yaml'}")

    def _node(self, n: Node) -> Any:
        _, remote = _provision()
        if n.id not in self._nodes:
            node = remote.Node(self._host(n), self.opts)
            try:
                node.connect()
                remote.gather_facts(node)
            except remote.TaskFailed as exc:
                raise LabError(f"node {n.id} ({n.handle}): {exc}")
            self._nodes[n.id] = node
        return self._nodes[n.id]

    def _run(self, n: Node, command: str, check: bool = True) -> tuple[int, str]:
        _, remote = _provision()
        try:
            return self._node(n).run(command, check=check)
        except remote.TaskFailed as exc:
            raise LabError(f"node {n.id} ({n.handle}): {exc}")

    # ------------------------------------------------------------ life cycle
    def prepare(self) -> None:
        """Deploy: install, configure, start and check, exactly as ``zkops deploy`` does."""
        _, remote = _provision()
        recap = remote.deploy_remote(self.inv, self.opts)
        failed = [f"{r.host}: {r.task}: {r.message}" for r in recap.results if r.status == "failed"]
        if failed:
            raise LabError("deploy failed:\n  " + "\n  ".join(failed))

    def destroy(self) -> None:
        _, remote = _provision()
        for n in self.state.nodes:
            with contextlib.suppress(LabError):
                self._clear_faults(n)
        remote.service_remote(self.inv, self.opts, "destroy", purge_data=True)
        for node in self._nodes.values():
            node.close()
        self._nodes.clear()

    # ------------------------------------------------------------ processes
    def _pid(self, n: Node) -> int | None:
        if self._node(n).facts.get("systemd") == "yes":
            _, out = self._run(n, "systemctl show -p MainPID --value zkops", check=False)
        else:
            _, out = self._run(n, f"cat {self._host(n).data_dir}/zookeeper_server.pid 2>/dev/null", check=False)
        pid = out.strip()
        if not pid.isdigit() or pid == "0":
            return None
        code, _ = self._run(n, f"kill -0 {pid}", check=False)
        return int(pid) if code == 0 else None

    def running(self, n: Node) -> bool:
        return self._pid(n) is not None

    def process_state(self, n: Node) -> str:
        pid = self._pid(n)
        if pid is None:
            return "stopped"
        _, out = self._run(n, f"ps -o stat= -p {pid}", check=False)
        return "paused" if out.strip().startswith("T") else "running"

    def start(self, n: Node) -> None:
        _, remote = _provision()
        try:
            remote.start(self._node(n))
        except remote.TaskFailed as exc:
            raise LabError(f"node {n.id} ({n.handle}): {exc}")

    def stop(self, n: Node) -> None:
        """A clean stop (SIGTERM through the service manager or ``zkserver stop``)."""
        _, remote = _provision()
        remote.stop(self._node(n))

    def kill(self, n: Node) -> None:
        pid = self._pid(n)
        if pid is not None:
            self._run(n, f"kill -9 {pid}", check=False)
        if self._node(n).facts.get("systemd") == "yes":  # no Restart=on-failure for a lab crash
            self._run(n, "systemctl stop zkops", check=False)

    def signal(self, n: Node, sig: int) -> None:
        pid = self._pid(n)
        if pid is None:
            raise LabError(f"node {n.id} is not running")
        self._run(n, f"kill -{signal.Signals(sig).name[3:]} {pid}")

    # ------------------------------------------------------------ network faults
    def _clear_faults(self, n: Node) -> None:
        self._run(n, f"iptables -D OUTPUT -j {CHAIN} 2>/dev/null; iptables -F {CHAIN} 2>/dev/null; "
                     f"iptables -X {CHAIN} 2>/dev/null; true", check=False)
        dev = self._state_dev(n)
        if dev:
            self._run(n, f"tc qdisc del dev {dev} root 2>/dev/null; true", check=False)

    def _state_dev(self, n: Node) -> str | None:
        return self.state.extra.get("tc_dev", {}).get(str(n.id))

    def apply_faults(self, faults: Faults) -> None:
        by_id = {n.id: n for n in self.state.nodes}
        for n in self.state.nodes:
            drops = [by_id[b].host for a, b in sorted(faults.cut) if a == n.id]
            script = [f"iptables -N {CHAIN} 2>/dev/null; iptables -C OUTPUT -j {CHAIN} 2>/dev/null "
                      f"|| iptables -I OUTPUT -j {CHAIN}", f"iptables -F {CHAIN}"]
            script += [f"iptables -A {CHAIN} -d {shlex.quote(addr)} -j DROP" for addr in drops]
            self._run(n, " && ".join(script))
            self._apply_delays(n, {by_id[b].host: ms for (a, b), ms in faults.delay_ms.items() if a == n.id and ms})

    def _apply_delays(self, n: Node, delays: dict[str, int]) -> None:
        dev = self._state_dev(n)
        if dev:
            self._run(n, f"tc qdisc del dev {dev} root 2>/dev/null; true", check=False)
            self.state.extra.setdefault("tc_dev", {}).pop(str(n.id), None)
        if not delays:
            return
        first = next(iter(delays))
        _, route = self._run(n, f"ip -o route get {shlex.quote(first)}")
        words = route.split()
        if "dev" not in words:
            raise LabError(f"node {n.id}: no route to {first}")
        dev = words[words.index("dev") + 1]
        bands = 3 + len(delays)
        script = [f"tc qdisc add dev {dev} root handle 1: prio bands {bands} "
                  "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"]
        for k, (addr, ms) in enumerate(sorted(delays.items()), start=4):
            script.append(f"tc qdisc add dev {dev} parent 1:{k} handle {k}0: netem delay {int(ms)}ms")
            script.append(f"tc filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip dst "
                          f"{shlex.quote(addr)}/32 flowid 1:{k}")
        code, out = self._run(n, " && ".join(script), check=False)
        if code != 0:
            self._run(n, f"tc qdisc del dev {dev} root 2>/dev/null; true", check=False)
            raise LabError(f"node {n.id}: tc netem failed on {dev} ({out.strip()[-200:]}); "
                           "the host's kernel needs sch_netem")
        self.state.extra.setdefault("tc_dev", {})[str(n.id)] = dev

    # ------------------------------------------------------------ observing
    def election_events(self, n: Node) -> list[dict[str, Any]]:
        h = self._host(n)
        _, out = self._run(n, f"cat {h.data_log_dir or h.data_dir}/election-events.jsonl 2>/dev/null", check=False)
        events = []
        for line in out.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events
