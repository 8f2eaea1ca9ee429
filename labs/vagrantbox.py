"""``zkops lab vagrant box``: a small Debian box for Vagrant's libvirt provider, built here.

Classrooms are often offline or behind slow links, where ``vagrant up`` stalls downloading a
box. This builds one from the Debian mirror apt already uses (or a local one), with nothing
from a box catalogue: ``debootstrap`` into an ext4 partition of a raw disk image (Debian's
cloud kernel, systemd, ifupdown with DHCP on eth0, openssh-server, python3 and python3-venv,
iptables and iproute2 for the lab's faults), EXTLINUX as the boot loader, a ``vagrant`` user
with passwordless sudo and Vagrant's well-known insecure public key (Vagrant replaces it with
a key of its own at the first ``vagrant up``). SSH host keys are made at each VM's first boot,
so VMs from one box do not share them. The image is converted to qcow2 and packed as a
libvirt box (``metadata.json``, ``Vagrantfile``, ``box.img``).

The result is cached by a hash of its inputs (suite, packages, the recipe's version, the
insecure key), so a second run only adds it. Building needs root (loop devices, mount,
chroot), debootstrap, extlinux/syslinux, qemu-img and sfdisk.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .model import LabError

BOX_NAME = "zkops/bookworm"
SUITE = "bookworm"
RECIPE = 3  # bump when the steps below change what ends up in the image
PACKAGES = ("linux-image-cloud-amd64", "initramfs-tools", "systemd-sysv", "dbus", "udev", "kmod",
            "ifupdown", "isc-dhcp-client", "netbase", "openssh-server", "sudo", "python3", "python3-venv",
            "iproute2", "iptables", "procps", "e2fsprogs")
DISK_GIB = 8
PART_OFFSET = 1024 * 1024  # the one partition starts at 1 MiB
TOOLS = {"debootstrap": "debootstrap", "extlinux": "extlinux", "qemu-img": "qemu-utils", "sfdisk": "fdisk",
         "losetup": "mount", "mkfs.ext4": "e2fsprogs", "chroot": "coreutils"}

Log = Callable[[str], None]


def cache_dir() -> Path:
    """``$ZKOPS_BOX_CACHE``, else the user's cache directory."""
    env = os.environ.get("ZKOPS_BOX_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zkops" / "boxes"


def vagrant_home() -> Path:
    return Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")


def insecure_public_key() -> str:
    """Vagrant's well-known insecure public key, read from the installed Vagrant."""
    for pattern in ("/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
                    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub",
                    "/opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub"):
        for path in sorted(glob.glob(pattern)):
            text = Path(path).read_text().strip()
            if text:
                return text.splitlines()[0]
    private = vagrant_home() / "insecure_private_key"
    if private.is_file():
        done = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip() + " vagrant insecure public key"
    raise LabError("cannot find Vagrant's insecure public key (keys/vagrant.pub of the vagrant gem); "
                   "is Vagrant installed? (Debian: apt install vagrant vagrant-libvirt)")


def mirror() -> str:
    """``$ZKOPS_DEBIAN_MIRROR``, else the Debian mirror apt already uses."""
    env = os.environ.get("ZKOPS_DEBIAN_MIRROR")
    if env:
        return env
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file():
            texts.append(p.read_text(errors="replace"))
    text = "\n".join(texts)
    m = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\w+", text, re.M)
    if not m:
        raise LabError("no Debian mirror in apt's sources; set ZKOPS_DEBIAN_MIRROR (a local mirror works offline)")
    return m.group(1)


def input_hash(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES, pubkey: str = "") -> str:
    """What the box is made of; the mirror is left out (any mirror gives the same suite)."""
    text = json.dumps({"recipe": RECIPE, "suite": suite, "packages": sorted(packages), "pubkey": pubkey,
                       "disk_gib": DISK_GIB}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def box_file(digest: str, suite: str = SUITE) -> Path:
    return cache_dir() / f"zkops-{suite}-libvirt-{digest}.box"


def _box_dir(name: str) -> Path:
    return vagrant_home() / "boxes" / name.replace("/", "-VAGRANTSLASH-")


def installed_hash(name: str = BOX_NAME) -> str | None:
    """The input hash of the libvirt box ``name`` that Vagrant has, if it is one of ours."""
    for marker in sorted(_box_dir(name).glob("*/libvirt/zkops-box-hash")):
        return marker.read_text().strip()
    return None


def box_installed(name: str) -> bool:
    """Vagrant has a box ``name`` (any version, any provider)."""
    d = _box_dir(name)
    return d.is_dir() and any(p.is_dir() for p in d.glob("*/*"))


# ------------------------------------------------------------------ building
def _run(cmd: list[str], log: Log, **kw: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()[-1500:]}")
    return done.stdout


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("building the box needs root (loop devices, mount, chroot); run it with sudo")
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"building the box needs {', '.join(missing)}: apt install {' '.join(missing)}")
    if not _mbr().is_file():
        raise LabError("no syslinux MBR (mbr.bin): apt install syslinux-common extlinux")


def _mbr() -> Path:
    for p in ("/usr/lib/syslinux/mbr/mbr.bin", "/usr/lib/EXTLINUX/mbr.bin", "/usr/share/syslinux/mbr.bin"):
        if Path(p).is_file():
            return Path(p)
    return Path("/usr/lib/syslinux/mbr/mbr.bin")


@contextlib.contextmanager
def _mounted_partition(image: Path, mountpoint: Path, log: Log) -> Iterator[str]:
    """The image's partition on a loop device (by offset, no partition scan needed), mounted."""
    size = image.stat().st_size - PART_OFFSET
    loop = _run(["losetup", "--find", "--show", "--offset", str(PART_OFFSET), "--sizelimit", str(size),
                 str(image)], log).strip()
    try:
        _run(["mkfs.ext4", "-q", "-F", "-L", "zkops-root", "-O", "^64bit,^metadata_csum", loop], log)
        uuid = _run(["blkid", "-s", "UUID", "-o", "value", loop], log).strip()
        _run(["mount", loop, str(mountpoint)], log)
        try:
            yield uuid
        finally:
            _unmount_below(mountpoint)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def _unmount_below(root: Path) -> None:
    prefix = str(root.resolve())
    targets = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in reversed(targets):
        if target == prefix or target.startswith(prefix + "/"):
            subprocess.run(["umount", "-l", target], check=False)


def _configure(root: Path, uuid: str, pubkey: str, log: Log) -> None:
    def write(rel: str, text: str, mode: int = 0o644) -> None:
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    def chroot(*cmd: str) -> None:
        _run(["chroot", str(root), *cmd], log, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})

    write("/etc/hostname", "zkops\n")
    write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tzkops\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    write("/etc/fstab", f"UUID={uuid}\t/\text4\terrors=remount-ro\t0\t1\n")
    write("/etc/network/interfaces", "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
                                     "auto eth0\niface eth0 inet dhcp\n")
    # Vagrant's key goes in now; Vagrant swaps it for a VM's own key at the first `vagrant up`.
    chroot("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "vagrant")
    chroot("passwd", "--lock", "root")
    write("/etc/sudoers.d/vagrant", "vagrant ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    ssh_dir = root / "home/vagrant/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    chroot("chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh")
    # Vagrant's insecure key is RSA; accept its SHA-1 signature too, and never wait on DNS.
    write("/etc/ssh/sshd_config.d/zkops-vagrant.conf",
          "UseDNS no\nPubkeyAcceptedAlgorithms +ssh-rsa\n"
          "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write("/etc/systemd/system/zkops-ssh-hostkeys.service",
          "[Unit]\nDescription=SSH host keys of this VM, made at its first boot\nBefore=ssh.service\n"
          "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n[Service]\nType=oneshot\n"
          # no RSA host key: making one takes ~20 s under TCG, and clients take these two
          "ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N '' -f /etc/ssh/ssh_host_ecdsa_key\n"
          "ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key\n"
          "\n[Install]\nWantedBy=ssh.service\n")
    chroot("systemctl", "enable", "zkops-ssh-hostkeys.service")
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
                 "fstrim.timer"):
        chroot("systemctl", "mask", unit)
    write("/etc/systemd/journald.conf.d/zkops.conf", "[Journal]\nSystemMaxUse=64M\n")
    (root / "etc/machine-id").write_text("")  # each VM makes its own at first boot
    for stale in ("var/lib/dbus/machine-id",):
        with contextlib.suppress(FileNotFoundError):
            (root / stale).unlink()
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LabError("debootstrap installed no kernel or initramfs in /boot")
    write("/boot/extlinux/extlinux.conf", extlinux_conf(kernels[-1].name, initrds[-1].name, uuid))
    chroot("apt-get", "clean")


def extlinux_conf(kernel: str, initrd: str, root_uuid: str) -> str:
    """The boot loader's entry: the box's kernel, on the serial console too.

    ``no_timer_check``: under QEMU's TCG on a busy host the kernel's early check that the
    IO-APIC timer ticks can miss its window, and the kernel then panics ("IO-APIC + timer
    doesn't work!") before init; the emulated timer does work, so the check is skipped, as
    cloud images do for virtual machines.
    """
    return (f"DEFAULT debian\nPROMPT 0\nTIMEOUT 0\n\nLABEL debian\n  LINUX /boot/{kernel}\n"
            f"  INITRD /boot/{initrd}\n"
            f"  APPEND root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0 "
            "no_timer_check quiet\n")


def build(suite: str = SUITE, log: Log = print, force: bool = False) -> Path:
    """The box file for ``suite``, from the cache or built now (a few minutes)."""
    pubkey = insecure_public_key()
    digest = input_hash(suite, PACKAGES, pubkey)
    out = box_file(digest, suite)
    if out.is_file() and not force:
        log(f"box cached: {out}")
        return out
    _check_tools()
    source = mirror()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zkops-box-", dir=out.parent) as tmp:
        work = Path(tmp)
        image = work / "disk.raw"
        with open(image, "wb") as f:
            f.truncate(DISK_GIB * 1024**3)
        _run(["sfdisk", "--quiet", str(image)], log, input=f"start={PART_OFFSET // 512}, type=83, bootable\n")
        mnt = work / "root"
        mnt.mkdir()
        with _mounted_partition(image, mnt, log) as uuid:
            log(f"debootstrap {suite} from {source} (a few minutes)")
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(mnt), source],
                 log)
            _unmount_below(mnt / "proc")
            _unmount_below(mnt / "sys")
            log("configuring: vagrant user, sshd, network, boot loader")
            _configure(mnt, uuid, pubkey, log)
            _run(["extlinux", "--install", str(mnt / "boot/extlinux")], log)
        mbr = _mbr().read_bytes()[:440]
        with open(image, "r+b") as f:
            f.write(mbr)
        log("converting to qcow2")
        _run(["qemu-img", "convert", "-O", "qcow2", str(image), str(work / "box.img")], log)
        image.unlink()
        (work / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                                         "virtual_size": DISK_GIB}))
        (work / "Vagrantfile").write_text(
            'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |lv|\n'
            '    lv.disk_bus = "virtio"\n  end\nend\n')
        (work / "zkops-box-hash").write_text(digest + "\n")
        partial = work / "box.partial"
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            for name in ("metadata.json", "Vagrantfile", "zkops-box-hash", "box.img"):
                tar.add(work / name, arcname=name)
        partial.replace(out)
    for old in out.parent.glob(f"zkops-{suite}-libvirt-*.box"):
        if old != out:
            old.unlink()
    log(f"box built: {out} ({out.stat().st_size // 2**20} MiB)")
    return out


def _stale_volumes(name: str) -> list[str]:
    """libvirt's copies of an older box of this name (vagrant-libvirt uploads a box once per version)."""
    if shutil.which("virsh") is None:
        return []
    done = subprocess.run(["virsh", "-c", "qemu:///system", "vol-list", "default", "--name"],
                          capture_output=True, text=True, timeout=60)
    prefix = name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_"
    return [v.strip() for v in done.stdout.splitlines() if v.strip().startswith(prefix)] if done.returncode == 0 else []


def add(path: Path, name: str = BOX_NAME, log: Log = print) -> None:
    """``vagrant box add`` unless Vagrant already has this very box; drops libvirt's stale copy."""
    digest = (path.name.rsplit("-", 1)[-1]).removesuffix(".box")
    if installed_hash(name) == digest:
        log(f"vagrant already has {name} ({digest})")
        return
    if shutil.which("vagrant") is None:
        raise LabError("vagrant is not installed (Debian: apt install vagrant vagrant-libvirt)")
    for vol in _stale_volumes(name):
        subprocess.run(["virsh", "-c", "qemu:///system", "vol-delete", "--pool", "default", vol],
                       capture_output=True, timeout=60)
    _run(["vagrant", "box", "add", "--force", "--name", name, str(path)], log, timeout=1800)
    log(f"vagrant box added: {name} (libvirt)")


VIRTUALBOX_HINT = (
    "VirtualBox: this box is for libvirt. On a machine with internet, `vagrant box add debian/bookworm64 "
    "--provider virtualbox` once, then `vagrant box repackage` or copy ~/.vagrant.d/boxes to the "
    "classroom machines; or convert this image (qemu-img convert -O vdi) and package it with "
    "VBoxManage where VirtualBox is installed.")
