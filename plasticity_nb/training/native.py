"""This package's C kernels (narrow_norm.c, narrow_conv.c), compiled for this CPU (`-march=native`) the first
time one is used, into the cache folder, and loaded through ctypes. A library's name holds a hash of its source
and of this machine's identity (core/cpu.machine_identity), so that an edited source or another CPU sharing the
cache folder builds its own. Where none can be built (not Linux, no C compiler, a compiler that fails), `library`
says None and the kernels' execution settings are never offered.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..core.cpu import identity_name, machine_identity
from ..core.files import temporary_name
from ..core.paths import cache_dir


@functools.lru_cache(maxsize=None)
def library(source: Path) -> ctypes.CDLL | None:
    """`source` compiled for this CPU (built into the cache folder the first time) and loaded, or None where it
    cannot be built."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if not sys.platform.startswith("linux") or compiler is None:
        return None
    built = _library_path(source)
    if not built.exists() and not _compile(compiler, source, built):
        return None
    return ctypes.CDLL(str(built))


def _library_path(source: Path) -> Path:
    digest = hashlib.sha256(source.read_bytes() + identity_name(machine_identity()).encode()).hexdigest()[:16]
    return cache_dir() / "kernels" / f"{source.stem}-{digest}.so"


def _compile(compiler: str, source: Path, built: Path) -> bool:
    built.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(built)
    try:
        done = subprocess.run([compiler, "-O3", "-march=native", "-shared", "-fPIC", "-o", str(tmp), str(source)],
                              capture_output=True, timeout=120).returncode == 0
        if done:
            os.replace(tmp, built)  # atomic: a process that loads it never sees half a library
        return done
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        tmp.unlink(missing_ok=True)
