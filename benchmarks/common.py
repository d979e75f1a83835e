"""Shared by the benchmark scripts: the machine they ran on, printed with every result."""
import platform

import torch

from plasticity_nb.provenance import device_name, git_commit


def describe_machine(device: torch.device) -> str:
    return (f"{device_name(device)}; torch {torch.__version__}; python {platform.python_version()}; "
            f"commit {git_commit()}")
