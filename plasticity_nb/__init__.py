"""plasticity_nb: loss of plasticity (warm-starting) studies, Jupyter-first.

Notebooks set parameters, call these functions and plot; all logic lives in this package.
Each name below is imported on first use, so that the statistics and the claims (analysis/) import without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from .core.version import __version__ as __version__

# Public name -> the module that defines it.
_PUBLIC = {
    "CLAIMS": "analysis.claims", "ClaimResult": "analysis.claims", "read_claims": "analysis.claims",
    "record_claims": "analysis.claims", "Estimate": "analysis.stats", "paired_estimate": "analysis.stats",
    "ConfigError": "core.config", "default_out_dir": "core.paths", "resolve_out_dir": "core.paths",
    "load_cifar10": "data.cifar10", "DATASETS": "data.datasets", "DataError": "data.datasets",
    "load_dataset": "data.images", "run_many": "execution.runner",
    "ExecutionSettings": "execution.settings",
    "RunRecord": "execution.store", "RunStore": "execution.store", "Phase": "run.run_config",
    "RunConfig": "run.run_config", "WarmStartConfig": "studies.study_config", "StudyResult": "studies.study_result",
    "run_study": "studies.study_runs", "warm_start_gap": "studies.study_runs",
}
__all__ = sorted([*_PUBLIC, "run"])

# The run/ layer shares its name with the function `run`. Importing one of its modules binds the package's `run`
# attribute to the layer the first time only, so the layer is imported here (it needs no torch) and the name then
# given to the function.
importlib.import_module(f"{__name__}.run")


def run(*args: Any, **kwargs: Any) -> Any:
    """`plasticity_nb.execution.runner.run`: the stored result of a run config, trained first if needed (the
    runner, and torch, are imported on the first call)."""
    from .execution.runner import run as run_config

    return run_config(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'plasticity_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
