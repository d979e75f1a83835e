"""What produced a result: versions, hardware, code revision, timing (stored with every run)."""
from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone

import torch

from ..core.cpu import cpu_identity
from ..core.paths import PACKAGE_DIR
from ..core.version import __version__


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_identity()['model']} ({torch.get_num_threads()} threads)"


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the checkout holding this package, with '+dirty' when it has uncommitted changes."""
    root = PACKAGE_DIR
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def whereabouts() -> dict:
    """Where this process runs: its host and process id, and under Ray its node (nodes simulated on one machine
    share a host name)."""
    place = {"host": socket.gethostname(), "pid": os.getpid()}
    ray = sys.modules.get("ray")  # imported only by the Ray executor, and in its workers
    if ray is not None and ray.is_initialized():
        place["ray_node"] = ray.get_runtime_context().get_node_id()
    return place


def collect(device: torch.device, wall_seconds: float, data_source: str) -> dict:
    return {
        "package_version": __version__,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "cpu": cpu_identity(),
        "host": socket.gethostname(),
        "git_commit": git_commit(),
        "data_source": data_source,
        "wall_seconds": round(wall_seconds, 3),
        "finished_at": now(),
    }
