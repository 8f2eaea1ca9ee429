"""The transaction log, in Apache ZooKeeper 3.8's file format, so its tools read ours.

Layout of ``<dataLogDir>/version-2/log.<first zxid, lowercase hex>``::

    FileHeader   int magic 'ZKLG', int version 2, long dbid 0
    per txn      long Adler32(txn bytes), int length, txn bytes, byte 0x42 ('B')
    then zeros   the file is preallocated in blocks; a zero length ends the log

The txn bytes inside a frame -- TxnHeader, body, and the TxnDigest 3.8 appends -- are
:mod:`zkops.server.txncodec`'s to write and read; this module only frames, checksums,
segments and scans them (it reads nothing of a txn but the zxid in its header).

Group commit: :meth:`TxnLog.append` only buffers (cheap, callable from the event
loop); :meth:`TxnLog.sync` writes everything buffered and makes it durable once, on
whatever thread calls it. Two locks keep that safe: one guards the buffer, one serializes
file I/O, so appends go on while a sync waits for the disk.

With ``forceSync`` on, the files are opened ``O_DSYNC`` where the platform has it: a
batch's one ``pwrite`` returns only once its bytes (and the metadata needed to read them
back) are on disk, as a ``pwrite`` followed by ``fdatasync`` would, in one system call
instead of two. That matters for a Python writer thread: each blocking call gives up the
GIL, and getting it back between the write and the flush could wait for whatever the
event loop was running (docs/performance.md, "Writes at one session").

Recovery: the log ends at the first record that does not verify (checksum, length,
end byte). If nothing verifiable follows it, it is a write cut short by a crash (never
acknowledged), so it is dropped and the file truncated there when the log is opened.
If a valid record follows it, history would be lost silently, so reading stops with
:class:`CorruptLogError` naming the file and the byte offset.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from .records import FileHeader
from .txncodec import TXN_HEADER_SIZE, ZXID_OFFSET, TxnEntry, decode_txn_entry, txn_zxid
from .txnlogerror import CorruptLogError

log = logging.getLogger("zkops.server.txnlog")

LOG_MAGIC = 0x5A4B4C47  # "ZKLG"
VERSION = 2
DBID = 0
HEADER = FileHeader(LOG_MAGIC, VERSION, DBID).to_bytes()
HEADER_SIZE = len(HEADER)  # 16
EOR = 0x42  # 'B', ZooKeeper's end-of-record marker
DEFAULT_PREALLOC = 64 * 1024 * 1024  # ZooKeeper's zookeeper.preAllocSize default
_PREFIX = struct.Struct(">qi")  # checksum, length
PREFIX_SIZE = _PREFIX.size
_ZXID = struct.Struct(">q")
_SLACK = 4096  # like ZooKeeper: grow the file before a write comes this close to its end
# opened with this flag a file's writes are synchronous (fdatasync's guarantee); 0 where the
# platform lacks it, and then each batch is followed by an fdatasync
SYNC_WRITE_FLAG: int = getattr(os, "O_DSYNC", 0)


# ---------------------------------------------------------------- file format
def log_name(zxid: int) -> str:
    """ZooKeeper's name for a log file whose first txn is ``zxid``."""
    return f"log.{zxid:x}"


def log_files(directory: Path) -> list[tuple[int, Path]]:
    """(first zxid, path) of every ``log.<hex>`` file in ``directory``, oldest first."""
    out = []
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.startswith("log.") and p.is_file():
                try:
                    out.append((int(p.name[4:], 16), p))
                except ValueError:
                    continue
    return sorted(out)


def _adler(data: bytes | memoryview) -> int:
    return zlib.adler32(data) & 0xFFFFFFFF


def frame(txn: bytes) -> bytes:
    """One txn as it sits in the file: checksum, length, bytes, 'B'."""
    return _PREFIX.pack(_adler(txn), len(txn)) + txn + b"B"


def _record_at(mv: memoryview, off: int, limit: int) -> tuple[int, int] | None:
    """(zxid, index of the 'B') of a record that verifies at ``off``, else None.

    ``limit`` bounds the non-zero part of the file: a record's 'B' lies before it.
    """
    if off + PREFIX_SIZE + TXN_HEADER_SIZE >= limit:
        return None
    crc, length = _PREFIX.unpack_from(mv, off)
    if length < TXN_HEADER_SIZE:
        return None
    body = off + PREFIX_SIZE
    end = body + length
    if end >= limit or mv[end] != EOR or _adler(mv[body:end]) != crc:
        return None
    return _ZXID.unpack_from(mv, body + ZXID_OFFSET)[0], end


def _verifiable_after(data: bytes | bytearray, mv: memoryview, bad: int, limit: int, after_zxid: int) -> int | None:
    """Offset of the first record past ``bad`` that verifies and continues the zxids.

    A record starts with its checksum as a long, and an Adler32 fits in 32 bits, so
    only offsets holding four zero bytes need a closer look.
    """
    off = bad + 1
    stop = limit - PREFIX_SIZE - TXN_HEADER_SIZE
    while True:
        off = data.find(b"\0\0\0\0", off, stop + 4)
        if off < 0 or off >= stop:
            return None
        found = _record_at(mv, off, limit)
        if found is not None and found[0] > after_zxid:
            return off
        off += 1


def _claimed_zxid(mv: memoryview, off: int, limit: int) -> str:
    """The zxid a damaged record's header claims, for the error message, if it has one."""
    at = off + PREFIX_SIZE + ZXID_OFFSET
    return f" (its header says zxid 0x{_ZXID.unpack_from(mv, at)[0]:x})" if at + 8 <= limit else ""


def scan(data: bytes | bytearray, name: str = "log") -> tuple[list[tuple[int, int, int]], int, str | None]:
    """Parse one log file: ([(zxid, txn start, index of its 'B')], end of the good part, problem).

    ``problem`` is None when the log ends cleanly (zeros or end of file) and "torn"
    when unverifiable bytes follow the good part; damage followed by a valid record
    raises :class:`CorruptLogError`. A file cut inside its header is "torn" at 0. A
    verified record whose zxid is not above the one before it is a repeat and is skipped.
    """
    limit = len(data.rstrip(b"\0"))
    if limit == 0:
        return [], 0, None
    # trailing zeros may have been trimmed (see read_used), and the header ends in zeros
    hdr = FileHeader.from_bytes(bytes(data[:HEADER_SIZE]).ljust(HEADER_SIZE, b"\0"))
    if hdr.magic != LOG_MAGIC or hdr.version != VERSION:
        if data[:4] == b"\0\0\0\0" or (limit < HEADER_SIZE and HEADER.startswith(bytes(data[:limit]))):
            # a header cut short, or never on disk though later pages were
            return [], 0, "torn"
        if hdr.magic != LOG_MAGIC:
            raise CorruptLogError(name, 0, f"not a txn log (magic 0x{hdr.magic & 0xFFFFFFFF:08x})")
        raise CorruptLogError(name, 4, f"unsupported txn log version {hdr.version}")
    mv = memoryview(data)
    recs: list[tuple[int, int, int]] = []
    off = HEADER_SIZE
    last = -1
    while off < limit:
        found = _record_at(mv, off, limit)
        if found is not None and found[0] <= last:
            # a record that verifies but repeats a zxid: Apache 3.8.0 can log a run of txns a
            # second time when it rejoins by DIFF under writes, and reads such a log back
            # applying each zxid once; so do we (the first copy is the one kept)
            off = found[1] + 1
            continue
        if found is None:
            later = _verifiable_after(data, mv, off, limit, last)
            if later is not None:
                raise CorruptLogError(name, off, f"a record that does not verify{_claimed_zxid(mv, off, limit)}, "
                                                 f"with valid records after it (the next at offset {later})")
            return recs, off, "torn"
        zxid, end = found
        recs.append((zxid, off + PREFIX_SIZE, end))
        last = zxid
        off = end + 1
    return recs, off, None


def read_used(path: Path) -> bytes:
    """A log file's bytes up to its last non-zero byte.

    Preallocated space is a hole in a sparse file (ZooKeeper's too), so the data
    extents (SEEK_DATA/SEEK_HOLE) tell where the writes ended without reading megabytes
    of zeros; where the file system cannot say, the whole file is read.
    """
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        extents: list[tuple[int, int]] = []
        try:
            pos = 0
            while pos < size:
                start = os.lseek(fd, pos, os.SEEK_DATA)
                pos = os.lseek(fd, start, os.SEEK_HOLE)
                extents.append((start, pos))
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no data after pos
                extents = [(0, size)]
        except AttributeError:  # pragma: no cover - no SEEK_DATA on this platform
            extents = [(0, size)]
        for start, end in reversed(extents):
            chunk = os.pread(fd, end - start, start)
            used = len(chunk.rstrip(b"\0"))
            if used:
                if start == 0:
                    return chunk[:used]
                return os.pread(fd, start + used, 0)
        return b""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _datasync(fd: int) -> None:
    # ZooKeeper forces the channel without metadata; preallocation keeps the size stable
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS and Windows
        os.fsync(fd)


class _Segment:
    """Buffered records bound for one file; ``new_file`` starts log.<first_zxid>. (Not a
    dataclass: a compiled build would run a dataclass's generated ``__init__`` as Python code
    at every segment.)"""

    __slots__ = ("first_zxid", "new_file", "buf")

    def __init__(self, first_zxid: int, new_file: bool, buf: bytearray) -> None:
        self.first_zxid = first_zxid
        self.new_file = new_file
        self.buf = buf


class TxnLog:
    """Appends to and reads the ``log.*`` files of one ``dataLogDir``.

    Not for two processes at once (ZooKeeper has the same rule); within a process,
    ``append`` and ``sync`` may run on different threads.
    """

    def __init__(self, log_dir: Path, *, force_sync: bool = True, prealloc_bytes: int = DEFAULT_PREALLOC) -> None:
        self.dir = Path(log_dir) / "version-2"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.force_sync = force_sync
        # forceSync: every write is durable when it returns (O_DSYNC), or an fdatasync follows
        self._open_flags = os.O_RDWR | (SYNC_WRITE_FLAG if force_sync else 0)
        self._write_syncs = force_sync and SYNC_WRITE_FLAG != 0
        self.prealloc = prealloc_bytes if prealloc_bytes > 0 else 0
        self._lock = threading.Lock()  # the buffer, _last_zxid, _roll_next
        self._io = threading.RLock()  # the open file, its offsets; all writes
        self._segments: list[_Segment] = []
        self._roll_next = False
        self._last_zxid = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._pos = 0
        self._size = 0
        self._failed: BaseException | None = None
        self._closed = False
        with self._io:
            self._recover()

    def __enter__(self) -> TxnLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def current(self) -> Path | None:
        """The file appends go to now (None before the first append or right after a roll)."""
        return self._path

    # ------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Find the last txn, drop a torn tail, and reopen the newest file for appends."""
        self._last_zxid = 0
        files = log_files(self.dir)
        while files:
            _, path = files.pop()
            data = read_used(path)
            recs, end, problem = scan(data, str(path))
            if not recs:
                # no txn ever became durable in it (cut in or right after its header)
                log.warning("%s: removing a txn log with no complete record", path)
                path.unlink()
                _fsync_dir(self.dir)
                continue
            fd = os.open(path, self._open_flags)
            if problem == "torn":
                log.warning("%s: dropping a torn record at byte offset %d (a write cut short)", path, end)
                os.ftruncate(fd, end)
                os.fsync(fd)
            self._fd, self._path, self._pos = fd, path, end
            self._size = os.fstat(fd).st_size
            self._last_zxid = recs[-1][0]
            return

    # ------------------------------------------------------------ writing
    def append(self, zxid: int, txn_bytes: bytes) -> None:
        """Buffer one txn (header + body, serialized); ``sync`` makes it durable."""
        if txn_zxid(txn_bytes) != zxid:
            raise ValueError(f"txn bytes carry zxid 0x{txn_zxid(txn_bytes):x}, not 0x{zxid:x}")
        # the frame goes straight into the segment's buffer (frame() would copy the txn twice)
        prefix = _PREFIX.pack(_adler(txn_bytes), len(txn_bytes))
        with self._lock:
            if self._closed:
                raise ValueError("txn log is closed")
            if zxid <= self._last_zxid:
                raise ValueError(f"zxid 0x{zxid:x} does not follow 0x{self._last_zxid:x}")
            if self._roll_next or not self._segments:
                self._segments.append(_Segment(zxid, self._roll_next, bytearray()))
                self._roll_next = False
            buf = self._segments[-1].buf
            buf += prefix
            buf += txn_bytes
            buf += b"B"
            self._last_zxid = zxid

    def roll(self) -> None:
        """Make the next append start a new file (the server rolls after each snapshot)."""
        with self._lock:
            self._roll_next = True

    def sync(self) -> int | None:
        """Write every buffered txn and make it durable: one disk flush for the whole batch
        (one synchronous write per file it touches, or writes and one fdatasync).

        Returns the zxid of the last txn it made durable, None when nothing was buffered."""
        with self._io:
            if self._failed is not None:
                raise RuntimeError(f"txn log failed earlier: {self._failed}") from self._failed
            with self._lock:
                segments, self._segments = self._segments, []
                upto = self._last_zxid
            if not segments:
                return None
            try:
                new_entry = False
                dirty = False
                for seg in segments:
                    if seg.new_file or self._fd is None:
                        if dirty:
                            self._flush()
                        self._close_fd()
                        self._open_new(seg.first_zxid)
                        new_entry = True
                    self._write(seg.buf)
                    dirty = True
                self._flush()
                if new_entry and self.force_sync:
                    _fsync_dir(self.dir)
            except BaseException as exc:
                # what reached the file is unknown now; refuse to write past it
                self._failed = exc
                raise
            return upto

    def _flush(self) -> None:
        if self.force_sync and not self._write_syncs and self._fd is not None:
            _datasync(self._fd)

    def _open_new(self, zxid: int) -> None:
        path = self.dir / log_name(zxid)
        fd = os.open(path, self._open_flags | os.O_CREAT | os.O_EXCL, 0o644)
        # the header goes straight to the kernel: a header kept in a userspace buffer
        # would be lost on kill -9 while later records survive (and with O_DSYNC to disk)
        os.pwrite(fd, HEADER, 0)
        self._fd, self._path, self._pos, self._size = fd, path, HEADER_SIZE, HEADER_SIZE

    def _write(self, buf: bytearray) -> None:
        assert self._fd is not None
        end = self._pos + len(buf)
        slack = min(_SLACK, self.prealloc // 4)
        if self.prealloc and end + slack > self._size:
            # zero-filled blocks ahead of the writes, as ZooKeeper's FilePadding does, so
            # a reader meets a zero length at the end and most fsyncs leave the size alone
            self._size = ((end + slack) // self.prealloc + 1) * self.prealloc
            os.ftruncate(self._fd, self._size)
        view = memoryview(buf)
        written = 0
        while written < len(buf):
            written += os.pwrite(self._fd, view[written:], self._pos + written)
        self._pos = end
        self._size = max(self._size, end)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._path = None

    # ------------------------------------------------------------ reading
    def last_zxid(self) -> int:
        """The zxid of the last txn appended (buffered or written), 0 for an empty log."""
        with self._lock:
            return self._last_zxid

    def read_from(self, zxid: int) -> Iterator[tuple[int, bytes]]:
        """Yield (zxid, txn bytes) of every written txn with zxid >= ``zxid``, in order.

        Buffered txns are not seen until ``sync`` writes them. Damage before the end
        of the newest file raises :class:`CorruptLogError`; a torn tail of an older
        file (ZooKeeper leaves those after a crash, and starts a new file) is skipped.
        A zxid Apache logged twice (within a file or across two) is read once.
        """
        with self._io:
            files = log_files(self.dir)
            current, current_end = self._path, self._pos
        start = 0
        for i, (first, _) in enumerate(files):
            if first <= zxid:
                start = i
        chosen = files[start:]
        last = -1
        for i, (_, path) in enumerate(chosen):
            data = read_used(path)
            if path == current:
                data = data[:current_end]
            recs, end, problem = scan(data, str(path))
            if problem == "torn" and i < len(chosen) - 1:
                if not recs:
                    raise CorruptLogError(path, end, "no readable txn, and later log files exist")
                log.warning("%s: ignoring a torn record at byte offset %d before the next log file", path, end)
            for z, s, e in recs:
                if z >= zxid and z > last:  # a file may repeat the tail of the one before it
                    last = z
                    yield z, data[s:e]

    def truncate(self, zxid: int) -> None:
        """Drop every txn after ``zxid`` (ZAB's TRUNC of a follower's uncommitted tail)."""
        self.sync()
        with self._io, self._lock:
            self._close_fd()
            self._segments = []
            self._roll_next = False
            for first, path in log_files(self.dir):
                if first > zxid:
                    path.unlink()
            files = log_files(self.dir)
            if files:
                path = files[-1][1]
                data = read_used(path)
                recs, end, _ = scan(data, str(path))
                keep = HEADER_SIZE
                for z, _, e in recs:
                    if z <= zxid:
                        keep = e + 1
                if keep < path.stat().st_size:
                    with open(path, "r+b") as f:
                        f.truncate(keep)
                        os.fsync(f.fileno())
            _fsync_dir(self.dir)
            self._recover()

    def close(self) -> None:
        """Write what is buffered and close the file; closing twice is harmless."""
        with self._io:
            try:
                if self._failed is None and not self._closed:
                    self.sync()
            finally:
                with self._lock:
                    self._closed = True
                self._close_fd()


def read_log_file(path: Path) -> Iterator[TxnEntry]:
    """Decode every txn of one log file (a reader for tools and tests)."""
    data = read_used(Path(path))
    recs, _, _ = scan(data, str(path))
    for _, s, e in recs:
        yield decode_txn_entry(data[s:e])


__all__ = [
    "CorruptLogError", "DEFAULT_PREALLOC", "HEADER", "HEADER_SIZE", "LOG_MAGIC", "SYNC_WRITE_FLAG", "TxnLog", "frame",
    "log_files", "log_name", "read_log_file", "read_used", "scan",
]
