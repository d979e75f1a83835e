"""Test-session setup shared by the unit tests and nbval's notebook runs.

Notebook kernels inherit this process's environment, so pointing PLASTICITY_OUT at a temporary folder
here keeps every test (nbval included) out of the user's outputs/. Under pytest-xdist (`make test` runs two
workers) each worker has its own PLASTICITY_OUT and one torch thread; the folder PLASTICITY_TEST_SHARED, made
once by the controlling process, holds what the workers share (the session's smoke store, tests/smoke_store.py).
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # one core each, in every process a test starts (batches, kernels, JupyterLab): no oversubscription
        os.environ["OMP_NUM_THREADS"] = "1"
    else:  # the controlling process (or a run without xdist) makes the folder its workers share
        os.environ["PLASTICITY_TEST_SHARED"] = tempfile.mkdtemp(prefix="plasticity-test-shared-")
        # This session's cache (digests, decompressed images, calibrations): shared by its processes, not the user's.
        os.environ["PLASTICITY_CACHE"] = os.path.join(os.environ["PLASTICITY_TEST_SHARED"], "cache")
    os.environ["PLASTICITY_OUT"] = tempfile.mkdtemp(prefix=f"plasticity-test-out-{worker or 'main'}-")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # The compile setting travels in ExecutionSettings (eager by default in every test, kernel and worker: the histories
    # tests compare bitwise were recorded eagerly). A PLASTICITY_COMPILE left in the developer's shell from before
    # would be refused by name (execution/settings.py): the tests do not inherit it.
    os.environ.pop("PLASTICITY_COMPILE", None)


def pytest_unconfigure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("PLASTICITY_TEST_SHARED"):
        from tests.smoke_store import stop_building

        stop_building()
        shutil.rmtree(os.environ.pop("PLASTICITY_TEST_SHARED"), ignore_errors=True)


def pytest_collection_modifyitems(items):
    """The longest modules first, by their `slow(seconds=...)` mark, so that the workers end together (xdist hands
    out whole modules: a long one handed out last runs alone at the end). Otherwise collection order, which leaves
    nbval's notebooks last."""
    seconds = {}
    for item in items:
        mark = item.get_closest_marker("slow")
        seconds[item.path] = max(seconds.get(item.path, 0), mark.kwargs.get("seconds", 0) if mark else 0)
    items.sort(key=lambda item: -seconds[item.path])
    if any(reads_smoke_store(item) for item in items):
        from tests.smoke_store import start_building

        start_building()  # in the background, while the workers test what does not need it


def reads_smoke_store(item) -> bool:
    """nbval's notebook cells, and tests marked `smoke_store`, read the session's smoke store."""
    return item.path.suffix == ".ipynb" or item.get_closest_marker("smoke_store") is not None


_notebook_runs_copied = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before nbval's first notebook cell in this process: the smoke runs are in the kernels' PLASTICITY_OUT, so the
    notebooks execute against stored runs (they load them; the store was trained by the batch). All but notebook
    01's: its kernel trains them itself, the path a user's first notebook takes (a few seconds at smoke)."""
    global _notebook_runs_copied
    if item.path.suffix == ".ipynb" and not _notebook_runs_copied:
        from plasticity_nb.data.cifar10 import load_cifar10
        from plasticity_nb.studies import warm_start_gap
        from tests.smoke_store import copy_runs, plan_keys

        first = plan_keys(warm_start_gap.Config.from_preset("smoke"), load_cifar10().data_id)
        copy_runs(Path(os.environ["PLASTICITY_OUT"]), leave_out=first)
        _notebook_runs_copied = True


def pytest_report_header(config):
    """Which comparison the loop-compatibility test runs on this machine (tests/test_loop_compat.py)."""
    from plasticity_nb.core.cpu import identity_name, machine_identity
    from tests.loop_compat import recording_for

    identity = machine_identity()
    found = recording_for(identity)
    flags = ", ".join(identity["flags"]) if identity["flags"] is not None else "flags unknown"
    machine = f"{identity['model']} ({flags}; torch {identity['torch']}, ATen {identity['aten_cpu_capability']})"
    if found:
        return f"loop compat: bitwise against recording {found[0]}, made on this machine: {machine}"
    return (f"loop compat: structural only (no recording for this machine, {identity_name(identity)}: {machine}); "
            "`python -m tests.loop_compat` adds one")


@pytest.fixture(scope="session")
def cifar():
    """The real CIFAR-10 (PLASTICITY_DATA or data/); the suite needs it, as CI provides it."""
    from plasticity_nb import load_cifar10

    return load_cifar10()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids oversubscribing a busy machine (8 s per tiny ResNet step, not 0.05 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
