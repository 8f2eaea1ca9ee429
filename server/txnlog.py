"""The transaction log, in Apache ZooKeeper's file format (so its tools read ours).

``<dataLogDir>/version-2/log.<first zxid in hex>``: a FileHeader ('ZKLG', version 2,
dbid 0), then per txn: Adler32 of the txn bytes (long), their length (int), the bytes
(TxnHeader + body), and the end-of-record byte 'B'. Files are preallocated with zeros
in blocks, so a reader stops at a zero length.

Group commit: ``append`` only buffers; ``sync`` writes everything buffered and fsyncs
once. Recovery on open: a torn last record (a write cut short by a crash, which was
never acknowledged) is dropped and the file truncated there; a damaged record that is
followed by good ones is corruption, and opening fails naming the file and offset.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from .records import FileHeader

log = logging.getLogger("zkops.server.txnlog")

LOG_MAGIC = 0x5A4B4C47  # "ZKLG"
VERSION = 2
HEADER = FileHeader(LOG_MAGIC, VERSION, 0).to_bytes()
_REC = struct.Struct(">qi")  # checksum, length
_ZXID_AT = 12  # TxnHeader: clientId (8) + cxid (4), then zxid
EOR = 0x42


class CorruptLogError(RuntimeError):
    """The log is damaged before its end; start-up must stop rather than lose history."""


def log_name(zxid: int) -> str:
    return f"log.{zxid:x}"


def log_files(directory: Path) -> list[tuple[int, Path]]:
    """(start zxid, path) of every log file, oldest first."""
    out = []
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.startswith("log."):
                try:
                    out.append((int(p.name[4:], 16), p))
                except ValueError:
                    continue
    return sorted(out)


def _adler(data: bytes | memoryview) -> int:
    v = zlib.adler32(data) & 0xFFFFFFFF
    return v


def scan(data: bytes, name: str = "log") -> tuple[list[tuple[int, int, int]], int, str | None]:
    """Parse a log file's bytes: ([(zxid, start, end)], end of the last good record, problem).

    ``problem`` is None for a clean end (zeros or end of file), "torn" for a damaged
    tail, or a message for damage followed by good records.
    """
    if len(data) < len(HEADER):
        return [], 0, "torn" if data else None
    hdr = FileHeader.from_bytes(data[:len(HEADER)])
    if hdr.magic != LOG_MAGIC:
        raise CorruptLogError(f"{name}: not a transaction log (bad magic 0x{hdr.magic:x} at offset 0)")
    off = len(HEADER)
    recs: list[tuple[int, int, int]] = []
    n = len(data)
    while off + _REC.size <= n:
        crc, length = _REC.unpack_from(data, off)
        if length == 0 and crc == 0:
            return recs, off, None
        body_start = off + _REC.size
        end = body_start + length
        if length <= 0 or end + 1 > n or data[end] != EOR or (_adler(data[body_start:end]) != (crc & 0xFFFFFFFF)):
            if _good_record_after(data, off):
                raise CorruptLogError(f"{name}: damaged record at offset {off} with valid records after it")
            return recs, off, "torn"
        zxid = struct.unpack_from(">q", data, body_start + _ZXID_AT)[0] if length >= _ZXID_AT + 8 else 0
        recs.append((zxid, body_start, end))
        off = end + 1
    return recs, off, ("torn" if any(data[off:]) else None)


def _good_record_after(data: bytes, bad_off: int) -> bool:
    """Is there an intact record after a damaged one? (a bit flip, not a torn write)"""
    crc, length = _REC.unpack_from(data, bad_off)
    candidates = []
    if 0 < length < len(data):
        candidates.append(bad_off + _REC.size + length + 1)
    for off in candidates:
        if off + _REC.size > len(data):
            continue
        c2, l2 = _REC.unpack_from(data, off)
        s, e = off + _REC.size, off + _REC.size + l2
        if l2 > 0 and e < len(data) and data[e] == EOR and _adler(data[s:e]) == (c2 & 0xFFFFFFFF):
            return True
    return False


class TxnLog:
    """Appends to and reads from the log files of one directory."""

    def __init__(self, log_dir: Path, *, force_sync: bool = True, prealloc_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = Path(log_dir) / "version-2"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.force_sync = force_sync
        self.prealloc = max(4096, prealloc_bytes)
        self.buffer = bytearray()
        self.buffer_first_zxid: int | None = None
        self.file = None  # type: ignore[var-annotated]
        self.file_pos = 0
        self.file_size = 0
        self.current: Path | None = None
        self._last_zxid = 0
        self._recover()

    # ------------------------------------------------------------ recovery
    def _recover(self) -> None:
        files = log_files(self.dir)
        for i, (_, path) in enumerate(files):
            data = path.read_bytes()
            recs, end, problem = scan(data, str(path))
            last = i == len(files) - 1
            if problem == "torn" and not last:
                raise CorruptLogError(f"{path}: damaged record at offset {end} and later log files exist")
            if recs:
                self._last_zxid = recs[-1][0]
            if last:
                if problem == "torn":
                    log.warning("%s: dropping a torn record at offset %d (a write cut short)", path, end)
                    with open(path, "r+b") as f:
                        f.truncate(end)
                        os.fsync(f.fileno())
                if recs or end > len(HEADER):
                    self.current = path
                    self.file = open(path, "r+b", buffering=0)  # noqa: SIM115 - kept open for appends
                    self.file_pos = end
                    self.file_size = os.fstat(self.file.fileno()).st_size
                elif not recs:
                    # an empty file: start the next append afresh
                    path.unlink()

    # ------------------------------------------------------------ writing
    def append(self, zxid: int, txn: bytes) -> None:
        if zxid <= self._last_zxid:
            raise ValueError(f"zxid 0x{zxid:x} does not follow 0x{self._last_zxid:x}")
        if self.file is None and self.buffer_first_zxid is None:
            self.buffer_first_zxid = zxid
        self.buffer += _REC.pack(_adler(txn), len(txn))
        self.buffer += txn
        self.buffer.append(EOR)
        self._last_zxid = zxid

    def _open_new(self, zxid: int) -> None:
        path = self.dir / log_name(zxid)
        self.file = open(path, "w+b", buffering=0)  # noqa: SIM115
        # unbuffered and synced: records go in with pwrite, and a header left in a
        # userspace buffer would be lost on kill -9 while the records survive
        os.pwrite(self.file.fileno(), HEADER, 0)
        self.current = path
        self.file_pos = len(HEADER)
        self.file_size = len(HEADER)
        self._fsync_dir()

    def sync(self) -> None:
        """Write every buffered record and make it durable with one fsync."""
        if not self.buffer:
            return
        if self.file is None:
            assert self.buffer_first_zxid is not None
            self._open_new(self.buffer_first_zxid)
            self.buffer_first_zxid = None
        f = self.file
        end = self.file_pos + len(self.buffer)
        if end + 16 > self.file_size:
            # preallocate so the common fsync does not also update the file size
            new_size = ((end + 16) // self.prealloc + 1) * self.prealloc
            os.ftruncate(f.fileno(), new_size)
            self.file_size = new_size
        os.pwrite(f.fileno(), self.buffer, self.file_pos)
        self.file_pos = end
        self.buffer.clear()
        if self.force_sync:
            os.fdatasync(f.fileno()) if hasattr(os, "fdatasync") else os.fsync(f.fileno())

    def roll(self) -> None:
        """Start a new file at the next append (after a snapshot)."""
        self.sync()
        if self.file is not None:
            self.file.close()
        self.file = None
        self.current = None

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ reading
    def last_zxid(self) -> int:
        return self._last_zxid

    def read_from(self, zxid: int) -> Iterator[tuple[int, bytes]]:
        """Every logged txn with zxid >= ``zxid``, in order, as (zxid, txn bytes)."""
        files = log_files(self.dir)
        start = 0
        for i, (first, _) in enumerate(files):
            if first <= zxid:
                start = i
        for _, path in files[start:]:
            data = path.read_bytes()
            recs, _, _ = scan(data, str(path))
            for z, s, e in recs:
                if z >= zxid:
                    yield z, data[s:e]

    def truncate(self, zxid: int) -> None:
        """Drop every txn after ``zxid`` (ZAB's TRUNC of an uncommitted tail)."""
        self.sync()
        if self.file is not None:
            self.file.close()
            self.file = None
        for first, path in log_files(self.dir):
            if first > zxid:
                path.unlink()
                continue
            data = path.read_bytes()
            recs, end, _ = scan(data, str(path))
            keep = len(HEADER)
            for z, _, e in recs:
                if z <= zxid:
                    keep = e + 1
            if keep < end:
                with open(path, "r+b") as f:
                    f.truncate(keep)
                    os.fsync(f.fileno())
        self._last_zxid = 0
        self.current = None
        self._recover()
        self._last_zxid = min(self._last_zxid, zxid) if self._last_zxid else 0

    def close(self) -> None:
        try:
            self.sync()
        finally:
            if self.file is not None:
                self.file.close()
                self.file = None
