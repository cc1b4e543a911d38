"""A cache of validated runbooks, so that a short command (`migrate status`, `rollback`) does not parse YAML
and convert and validate every check again on each run.

An entry is found by a digest of what the result depends on: the file's bytes, the path as given and the
working folder, the time scale, and the installed code (package version and the size and mtime of every
module of the model, the loader, the check kinds and the flag backends). The environment is the other input:
an entry records the names of the variables the runbook read and an HMAC of their values (keyed by a random
salt kept beside the entries), and is used only while they are unchanged.

No value read from the environment is written to disk: every string of the runbook that contains one is
stored as a template (`postgresql://u:${0}@db/app`) and rebuilt from the environment on load, and an entry
whose bytes would still contain a value is not written at all. Entries and the salt are private to the user
(0600, in a 0700 folder). Nothing here ever fails a command: an unreadable, corrupt, stale or unwritable
entry is a miss, and the runbook is loaded from the file.

`RUNBOOK_SPEC_CACHE` names the folder (default `$XDG_CACHE_HOME/runbook/specs`); `off` disables the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runbook.spec.pickling import dumps, loads

SPEC_CACHE_ENV = "RUNBOOK_SPEC_CACHE"
FORMAT = 1
MAX_ENTRIES = 64
"""Entries kept; the oldest are removed when a new one is written."""
_CODE_DIRS = ("", "spec", "checks", "stages")
"""Folders of the runbook package whose modules shape a loaded runbook."""
_code_digest: bytes | None = None


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name looked up, found or not (a later value changes the result)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.read: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str:
        value = self._env.get(name)
        self.read[name] = value
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def folder(env: Mapping[str, str]) -> Path | None:
    """The cache folder, or None when the cache is off."""
    setting = env.get(SPEC_CACHE_ENV) or os.environ.get(SPEC_CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runbook" / "specs"


def entry_key(data: bytes, source: str, time_scale: float) -> str:
    """The entry's file name for this file content, path and time scale under the installed code."""
    h = hashlib.sha256()
    for part in (_code(), source.encode("utf-8", "surrogateescape"), os.getcwd().encode("utf-8", "replace")):
        h.update(len(part).to_bytes(8, "big") + part)
    h.update(repr(time_scale).encode() + b"\0" + data)
    return h.hexdigest()[:40]


def load(base: Path, key: str, env: Mapping[str, str]) -> Any | None:
    """The cached runbook for `key` if its environment inputs are unchanged, else None."""
    try:
        if not _private(base):
            return None
        blob = (base / f"{key}.pickle").read_bytes()
        fmt, names, digest, body = pickle.loads(blob)
        if fmt != FORMAT or not hmac.compare_digest(digest, _env_digest(base, names, env, create=False)):
            return None
        return loads(body, env)
    except Exception:  # missing, corrupt, from other code, salt gone: load the file instead
        return None


def store(base: Path, key: str, runbook: Any, read: Mapping[str, str | None], env: Mapping[str, str]) -> bool:
    """Write an entry; False (and nothing written) when it cannot be done without a value on disk."""
    values = sorted({v for v in read.values() if v}, key=len, reverse=True)
    try:
        body = dumps(runbook, [(v, _name_of(read, v)) for v in values])
        if any(v.encode("utf-8", "surrogateescape") in body for v in values if len(v) >= 4):
            return False  # a value inside something other than a string: do not keep it
        names = tuple(sorted(read))
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(base):
            return False
        entry = pickle.dumps((FORMAT, names, _env_digest(base, names, env, create=True), body), protocol=5)
        _write_private(base / f"{key}.pickle", entry)
        _prune(base)
        return True
    except Exception:
        return False


def _private(base: Path) -> bool:
    """Whether the folder is the user's own and nobody else may write it: entries are pickles, and a pickle
    written by someone else could run their code (a shared RUNBOOK_SPEC_CACHE is not used)."""
    st = base.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _name_of(read: Mapping[str, str | None], value: str) -> str:
    return next(name for name, v in read.items() if v == value)


def _env_digest(base: Path, names: tuple[str, ...], env: Mapping[str, str], *, create: bool) -> bytes:
    msg = b"".join(
        n.encode() + (b"\1" + env[n].encode("utf-8", "surrogateescape") if n in env else b"\2") + b"\0"
        for n in names
    )
    return hmac.new(_salt(base, create=create), msg, hashlib.sha256).digest()


def _salt(base: Path, *, create: bool) -> bytes:
    path = base / "salt"
    try:
        salt = path.read_bytes()
        if len(salt) == 32:
            return salt
    except FileNotFoundError:
        pass
    if not create:
        raise LookupError("no salt")
    salt = os.urandom(32)
    _write_private(path, salt)
    return path.read_bytes()  # another process may have written its own first: use the one that is there


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(base: Path) -> None:
    entries = sorted(base.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _code() -> bytes:
    """A digest of the installed code that shapes a runbook (computed once per process)."""
    global _code_digest
    if _code_digest is None:
        import runbook

        root = Path(runbook.__file__).parent
        h = hashlib.sha256(runbook.__version__.encode())
        for sub in _CODE_DIRS:
            with contextlib.suppress(OSError), os.scandir(root / sub) as it:
                for e in sorted(it, key=lambda e: e.name):
                    if e.name.endswith(".py"):
                        st = e.stat()
                        h.update(f"{sub}/{e.name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
        _code_digest = h.digest()
    return _code_digest
