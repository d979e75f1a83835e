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
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

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


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the lock file `path` (created if missing). A POSIX record lock: the kernel
    releases it when its holder dies, so a killed process never leaves a stale lock. Locks are per process:
    a process must not take the same lock file twice (closing either releases both)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)


def is_locked(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock file `path` now (tests: no lock outlives its holder)."""
    try:
        with open(path, "a+") as handle:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(handle, fcntl.LOCK_UN)
            return False
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
