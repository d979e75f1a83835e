"""Shared by the benchmark scripts: the machine they ran on, printed with every result, and the CPU time of
the processes they waited for (which a busy machine does not inflate, unlike wall time)."""
import platform
import resource

import torch

from plasticity_nb.core.cpu import cpu_identity
from plasticity_nb.execution.provenance import device_name, git_commit


def describe_machine(device: torch.device) -> str:
    """The machine a result was measured on; on a CPU with the instruction-set extensions that select kernels."""
    flags = cpu_identity()["flags"]
    cpu = f" [{' '.join(flags) if flags is not None else 'flags unknown'}]" if device.type == "cpu" else ""
    return (f"{device_name(device)}{cpu}; torch {torch.__version__}; python {platform.python_version()}; "
            f"commit {git_commit()}")


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process this one has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
