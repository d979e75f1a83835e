"""Files that several processes share: written atomically, rewritten under a lock, a full disk named as such.

Readers of a file written here see the old version or the new one, never part of one, and a write that fails
(a full disk, a kill) leaves no temporary file behind except after SIGKILL, whose leftovers are hidden
(dot-names) and never read. A file that processes read, change and write back (claims.csv) is changed under
`locked`, so concurrent batches on one output folder do not lose each other's updates.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .paths import cache_dir

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # no space left, disk quota exceeded


def is_full_disk(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in FULL_DISK


def temporary_name(path: Path) -> Path:
    """A hidden sibling of `path`, unique to this writer (process and call)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of `path` that killed writers left. Only while holding the lock that every
    writer of `path` holds while it writes (then no temporary file there is in use)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Replace `path` by `data` in one step."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_atomic(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy `source` over `target` in one step (with its modification time)."""
    target = Path(target)
    tmp = temporary_name(target)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cached(table: str, key: str, compute: Callable[[], Any], once: bool = False) -> Any:
    """`compute()` once per `key` on this machine, kept in the JSON file `<cache_dir>/<table>.json` (the value must
    be JSON). A key names everything the value depends on. A cache that cannot be read or written only costs the
    computation again; two processes adding keys at once may drop one of them, which is computed again later.
    `once`: a value that must never change once used (a choice made by timing): it is computed under the table's
    lock, so that every process gets the first one."""
    path = cache_dir() / f"{table}.json"
    found = _read_table(path)
    if key in found:
        return found[key]
    if not once:
        return _compute_and_keep(path, key, compute)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(f"{table}.lock")):
        found = _read_table(path)
        return found[key] if key in found else _compute_and_keep(path, key, compute)


def _compute_and_keep(path: Path, key: str, compute: Callable[[], Any]) -> Any:
    value = compute()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({**_read_table(path), key: value}, indent=0, sort_keys=True))
    return value


def cached_array(name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()` once per `name` on this machine, kept as `<cache_dir>/arrays/<name>.npy` and read back memory-mapped
    (read-only). The name must say everything the array depends on. A missing, truncated or unreadable copy is
    computed again; one that cannot be written only costs the computation next time."""
    path = cache_dir() / "arrays" / f"{name}.npy"
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        pass
    value = compute()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_name(path)
        try:
            with open(tmp, "wb") as handle:
                np.save(handle, value, allow_pickle=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return value


def _read_table(path: Path) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the lock file `path` (created if missing), against other processes and other
    threads of this one. A POSIX record lock (it works on the network filesystems a cluster shares): the kernel
    releases it when its holder dies, so a killed process never leaves a stale lock. Such locks belong to a
    process, and closing any of its handles on the file releases them, so the file is opened once per process
    (a thread lock in front; a thread that holds it may take it again). Locks are taken in one order: a run's,
    then the store's; the execution cache's, then claims.csv's."""
    path = Path(path).absolute()
    with _thread_lock(path):
        if _DEPTH.get(path):
            _DEPTH[path] += 1
            try:
                yield
            finally:
                _DEPTH[path] -= 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            wait_for_lock(handle)
            _DEPTH[path] = 1
            try:
                yield
            finally:
                _DEPTH[path] = 0
                fcntl.lockf(handle, fcntl.LOCK_UN)


_DEPTH: dict[Path, int] = {}  # lock files this process holds, and how many times over
_THREAD_LOCKS: dict[Path, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(path, threading.RLock())


def _forget_locks() -> None:
    """A forked child holds none of its parent's locks (POSIX record locks are not inherited)."""
    global _THREAD_LOCKS_GUARD
    _DEPTH.clear()
    _THREAD_LOCKS.clear()
    _THREAD_LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks)


def wait_for_lock(handle) -> None:
    """Block until the lock is ours. The kernel's deadlock check sees processes, not threads: a batch whose
    training thread holds a run's lock while its notebook thread holds the cache's looks to it like a cycle with
    a second batch waiting for both, and it refuses (EDEADLK) a wait that would end. With the single order above
    no real cycle exists, so wait a moment and ask again."""
    while True:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX)
            return
        except OSError as err:
            if err.errno != errno.EDEADLK:
                raise
            time.sleep(random.uniform(0.01, 0.1))


def is_locked(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock file `path` now (a finished batch must leave none held)."""
    path = Path(path).absolute()
    with _thread_lock(path):
        if _DEPTH.get(path):
            return False  # this process holds it; opening the file again would release it
        try:
            with open(path, "a+") as handle:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(handle, fcntl.LOCK_UN)
                return False
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise
