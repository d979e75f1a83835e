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
