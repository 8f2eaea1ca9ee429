"""The zkops wheel that ``zkops deploy`` and the docker lab ship, from a checkout or an installed copy.

From a source checkout (``pyproject.toml`` next to the package folders) the wheel is built with
``pip wheel`` as a developer would. From an installed copy (``pip install zkops``) it is put
back together from the installed files that the distribution's RECORD lists: the package files
and the ``.dist-info`` metadata, leaving out what pip adds at install time (RECORD's hashes are
recomputed; INSTALLER, REQUESTED, direct_url.json, byte code and console scripts are pip's).

Two wheels of the same release differ in their zip timestamps; what identifies a release is
:func:`content_digest`, the sha256 over every member's name and bytes except RECORD. A wheel
built from a checkout and one rebuilt from that wheel's installation have the same digest, so
a host deployed from either gets the same release directory.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

DIST = "zkops"
PIP_ADDED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


class WheelError(Exception):
    """The wheel could not be built; the message says why."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str  # the content digest (see content_digest), not the zip file's hash

    @property
    def version(self) -> str:
        return self.path.name.split("-")[1]

    @property
    def release(self) -> str:
        return f"{self.version}-{self.sha256[:8]}"


def content_digest(path: Path) -> str:
    """sha256 over the wheel's members (name and bytes, sorted by name), RECORD left out."""
    h = hashlib.sha256()
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".dist-info/RECORD") or name.endswith("/"):
                continue
            h.update(name.encode() + b"\0")
            h.update(hashlib.sha256(z.read(name)).digest())
    return h.hexdigest()


def from_file(path: Path) -> Wheel:
    return Wheel(path, content_digest(path))


def checkout_root() -> Path | None:
    """The source checkout this code runs from, or None for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and (root / "server").is_dir() and 'name = "zkops"' in pyproject.read_text():
        return root
    return None


def build(dest: Path) -> Wheel:
    """The wheel of the zkops that runs this code, written into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    root = checkout_root()
    if root is not None:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "-w", str(dest), str(root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise WheelError(f"building the zkops wheel from {root} failed: {done.stderr.strip()[-400:]}")
        return from_file(next(dest.glob("zkops-*.whl")))
    return from_file(rebuild_installed(dest))


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rebuild_installed(dest: Path) -> Path:
    """Put the installed distribution back into a wheel file in ``dest``."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise WheelError("zkops is neither a source checkout nor an installed distribution here") from None
    files = dist.files or []
    members: dict[str, bytes] = {}
    info_dir = ""
    for f in files:
        name = str(f).replace("\\", "/")
        if name.startswith("..") or "__pycache__" in name or name.endswith(".pyc"):
            continue
        parts = name.split("/")
        if parts[0].endswith(".dist-info"):
            info_dir = parts[0]
            if parts[-1] in PIP_ADDED:
                continue
        located = Path(f.locate())
        if not located.is_file():
            raise WheelError(f"the installed zkops is incomplete: {located} is missing (reinstall it)")
        members[name] = located.read_bytes()
    if not info_dir or f"{info_dir}/WHEEL" not in members:
        raise WheelError("the installed zkops has no wheel metadata (was it installed from a wheel?)")
    tags = [line.split(":", 1)[1].strip() for line in members[f"{info_dir}/WHEEL"].decode().splitlines()
            if line.startswith("Tag:")]
    out = dest / f"{DIST}-{dist.version}-{tags[0] if tags else 'py3-none-any'}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        # the wheel spec wants the .dist-info last
        for name in sorted(members, key=lambda n: (n.startswith(info_dir + "/"), n)):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, members[name])
            writer.writerow([name, _record_hash(members[name]), len(members[name])])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        info = zipfile.ZipInfo(f"{info_dir}/RECORD", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, record.getvalue())
    return out
