"""One smoke store per test session: every notebook's runs at the smoke preset, trained once and copied by the tests
that only read runs (nbval's notebooks, the papermill batches, the explorer's stores).

The store is trained by the batch itself (`run --preset smoke --train-only`) into the folder conftest.py makes for
the whole session (PLASTICITY_TEST_SHARED), which every pytest-xdist worker sees. It starts in the background as soon
as a worker has collected a test marked `smoke_store` (the first to get the file lock starts it; `start_building`),
so the workers keep testing while it trains; a test that needs it before it is done waits for it. Copies hold run
folders only (no event log, claims, notebooks or execution cache): a test sees runs that are stored, not a batch
that already ran.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock

# One process of one thread (its env): it trains beside the tests. The runs are those nbval's notebooks read.
BUILD = ["run", "--preset", "smoke", "--train-only", "--param", "workers=1"]
WAIT_S = 1800  # a generous bound on the build (about 2 CPU-minutes on the 2-core CI machine)


def shared_folder() -> Path:
    """The session's shared folder (conftest.py makes it before any worker starts)."""
    return Path(os.environ["PLASTICITY_TEST_SHARED"])


def _paths() -> dict[str, Path]:
    shared = shared_folder()
    return {name: shared / f"smoke-store{suffix}" for name, suffix in
            (("store", ""), ("lock", ".lock"), ("started", ".started"), ("done", ".done"), ("log", ".log"))}


def start_building() -> None:
    """Start training the store in the background, unless a process of this session already has."""
    paths = _paths()
    with FileLock(paths["lock"]):
        if paths["started"].exists():
            return
        with open(paths["log"], "w") as log:
            # The done marker is written only by a build that succeeded, so a waiting test never copies half a store.
            command = [sys.executable, "-c", _BUILD_AND_MARK, str(paths["store"]), str(paths["done"]), *BUILD]
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        paths["started"].write_text(str(process.pid))


def stop_building() -> None:
    """End the build if it still runs (the session is over: conftest.py calls this from the controlling process)."""
    paths = _paths()
    if paths["started"].exists() and not _build_ended(paths):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(paths["started"].read_text()), signal.SIGKILL)


_BUILD_AND_MARK = """
import subprocess, sys
store, done, *args = sys.argv[1:]
code = subprocess.run([sys.executable, "-m", "plasticity_nb", *args, "--out", store]).returncode
if code == 0:
    open(done, "w").close()
sys.exit(code)
"""


def smoke_store() -> Path:
    """The output folder holding every smoke run, once it is trained (started here if no one has)."""
    start_building()
    paths = _paths()
    deadline = time.monotonic() + WAIT_S
    while not paths["done"].exists():
        if _build_ended(paths) and not paths["done"].exists():
            raise RuntimeError(f"the session's smoke store failed to train:\n{paths['log'].read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the session's smoke store was not trained within {WAIT_S} s ({paths['log']})")
        time.sleep(0.2)
    return paths["store"]


def _build_ended(paths: dict[str, Path]) -> bool:
    """Whether the build's process has ended: its pid is gone, or is a zombie (a finished child of the worker that
    started it, which never waits for it)."""
    pid = int(paths["started"].read_text())
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def copy_runs(into: Path, keys: Iterable[str] | None = None, leave_out: Iterable[str] = ()) -> Path:
    """Copy the smoke store's run folders (those named in `keys`, or all but those in `leave_out`) into the output
    folder `into`, leaving the runs it already holds as they are."""
    source = smoke_store() / "runs"
    folders = {p.name: p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")}
    wanted = set(folders) - set(leave_out) if keys is None else set(keys)
    missing = wanted - set(folders)
    if missing:
        raise KeyError(f"the smoke store has no run {sorted(missing)[0]} ({len(missing)} missing)")
    for name in sorted(wanted):
        if not (into / "runs" / name).exists():
            shutil.copytree(folders[name], into / "runs" / name)
    return into


def plan_keys(config, data_id: str) -> list[str]:
    """The run keys a study config's plan on the data `data_id` stores: its runs and their pretraining prefixes."""
    keys = {}
    for _, run in config.plan(data_id):
        for phases in range(len(run.phases), 0, -1):
            keys[run.truncated(phases).key()] = None
    return list(keys)
