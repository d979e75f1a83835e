"""Test-session setup shared by the unit tests and nbval's notebook runs.

Notebook kernels inherit this process's environment, so pointing PLASTICITY_OUT at a temporary folder
here keeps every test (nbval included) out of the user's outputs/.
"""
import os
import tempfile

import pytest


def pytest_configure(config):
    os.environ.setdefault("PLASTICITY_OUT", tempfile.mkdtemp(prefix="plasticity-test-out-"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Eager in every test, kernel and worker even when the developer's shell exports PLASTICITY_COMPILE: the
    # histories tests compare bitwise were recorded eagerly (compiled steps round differently), and compiling tiny
    # runs only costs time. Tests of the setting set it themselves.
    os.environ["PLASTICITY_COMPILE"] = "off"


def pytest_report_header(config):
    """Which comparison the loop-compatibility test runs on this machine (tests/test_loop_compat.py)."""
    from plasticity_nb.execution.provenance import identity_name, machine_identity
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
