"""plasticity_nb: loss of plasticity (warm-starting) studies, Jupyter-first.

Notebooks set parameters, call these functions and plot; all logic lives in this package.
"""
from .claims import CLAIMS, ClaimResult, read_claims, record_claims
from .config import ConfigError
from .data import DataError, load_cifar10
from .paths import default_out_dir, resolve_out_dir
from .protocols import StudyResult, WarmStartConfig, run_study, warm_start_gap
from .runconfig import Phase, RunConfig
from .runner import run, run_many
from .stats import Estimate, paired_estimate
from .store import RunRecord, RunStore
from .version import __version__ as __version__

__all__ = [
    "CLAIMS", "ClaimResult", "ConfigError", "DataError", "Estimate", "Phase", "RunConfig", "RunRecord", "RunStore",
    "StudyResult", "WarmStartConfig", "default_out_dir", "load_cifar10", "paired_estimate", "read_claims",
    "record_claims", "resolve_out_dir", "run", "run_many", "run_study", "warm_start_gap",
]
