"""Write a flags file so that no update is ever lost and nothing is left behind.

- `locked(path)`: the read-modify-write of a file is serialised across processes by a lock file next to it
  (`.NAME.lock`, with `filelock`; in the temporary folder when the file's folder cannot hold it), so a
  second writer reads the file only after the first one has replaced it;
- `replace(path, data)`: a temporary file in the same folder, fsync'd, given the old file's mode and owner,
  renamed over the file. Not when the file has other hard links or is a mount point (a single-file bind
  mount, as containers use), nor when its folder may not be written: a rename would cut the link (or fail
  with EBUSY or EACCES), so the file is rewritten in place, in one write padded with newlines to the old
  length, then truncated, so that it reads as a valid file at every moment;
- `clean_leftovers(path)`: temporary files of an earlier writer that was killed (only ever removed under
  the lock, when no live writer can own one).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from runbook.faultpoints import pause

__all__ = ["Timeout", "clean_leftovers", "in_place", "locked", "replace"]


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold the cross-process lock of `path` (raises `Timeout` after `timeout` seconds of waiting)."""
    lock_path = path.parent / f".{path.name}.lock"
    try:
        lock = FileLock(lock_path, timeout=timeout)
        lock.acquire()
    except OSError:  # a folder we may not create files in (read-only): a lock every writer of `path` finds
        digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        lock = FileLock(Path(tempfile.gettempdir()) / f"runbook-flags-{digest}.lock", timeout=timeout)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def clean_leftovers(path: Path) -> list[Path]:
    """Remove temporary files a killed writer of `path` left (call under `locked`); the ones removed."""
    removed = []
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f"{_glob_escape(_temp_prefix(path))}*.tmp"):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                leftover.unlink()
                removed.append(leftover)
    return removed


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def in_place(path: Path) -> bool:
    """Whether `path` must be rewritten in place: other hard links, or a mount point."""
    try:
        st, folder = path.stat(), path.parent.stat()
    except FileNotFoundError:
        return False
    return st.st_nlink > 1 or st.st_dev != folder.st_dev or os.path.ismount(path)


def replace(path: Path, data: bytes) -> None:
    """Replace the content of `path` by `data` (call under `locked`): rename-over, or in place."""
    if in_place(path):
        _write_in_place(path, data)
        return
    try:
        _rename_over(path, data)
    except OSError as exc:
        if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM):
            raise  # not a bind mount `ismount` cannot see, nor a folder we may not write (but the file)
        _write_in_place(path, data)


def _rename_over(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, old mode and owner kept, rename, fsync the folder."""
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(old.st_mode) if old else 0o644)
        if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(PermissionError):  # not allowed: it keeps our ownership and the mode
                os.chown(tmp, old.st_uid, old.st_gid)
        pause("dotenv:temp-written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _write_in_place(path: Path, data: bytes) -> None:
    """Overwrite the file's own inode: one write of `data` padded with newlines to the old length (a valid
    file whenever a reader or a crash looks), truncate, fsync."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        padded = data + b"\n" * max(0, size - len(data))
        written = 0
        while written < len(padded):
            written += os.pwrite(fd, padded[written:], written)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
