"""plasticity_nb: loss of plasticity (warm-starting) studies, Jupyter-first.

Notebooks set parameters, call these functions and plot; all logic lives in this package.
"""
from .analysis.claims import CLAIMS, ClaimResult, read_claims, record_claims
from .analysis.stats import Estimate, paired_estimate
from .analysis.study_config import WarmStartConfig
from .analysis.study_result import StudyResult
from .analysis.study_runs import run_study, warm_start_gap
from .core.config import ConfigError
from .core.paths import default_out_dir, resolve_out_dir
from .core.version import __version__ as __version__
from .data.cifar10 import load_cifar10
from .data.datasets import DATASETS, DataError
from .data.images import load_dataset
from .execution.runner import run, run_many
from .execution.store import RunRecord, RunStore
from .remedies import builtin as _builtin_remedies  # noqa: F401 (registers the built-in remedies)
from .run.run_config import Phase, RunConfig

__all__ = [
    "CLAIMS", "DATASETS", "ClaimResult", "ConfigError", "DataError", "Estimate", "Phase", "RunConfig", "RunRecord",
    "RunStore", "StudyResult", "WarmStartConfig", "default_out_dir", "load_cifar10", "load_dataset", "paired_estimate",
    "read_claims",
    "record_claims", "resolve_out_dir", "run", "run_many", "run_study", "warm_start_gap",
]
