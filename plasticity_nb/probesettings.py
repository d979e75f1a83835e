"""How a run's curvature and noise probes measure: the settings alone, so that a run config can hold them
without importing the probes themselves (probes.py and the data and noise code it brings). The BatchNorm
modes are read from curvature.py, which checks them too (one copy of the list; that module needs only torch).
"""
from __future__ import annotations

import dataclasses

from .config import Config, check_choice, check_positive
from .curvature import BN_MODES

BN_STATISTICS = ("running", "probe")  # the model's own BatchNorm statistics, or re-estimated on the probe set


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeSettings(Config):
    examples: int = 256  # probe set size: class-balanced examples of the run's training subset
    batch_size: int = 128  # examples per Hessian-vector-product batch (memory only)
    bn_mode: str = "eval"  # BatchNorm during curvature probes: eval (running stats) or train (batch stats)
    eigen_iterations: int = 20  # power-iteration cap for the top eigenvalue
    eigen_tol: float = 1e-3  # relative change that counts as converged
    trace_samples: int = 20  # Rademacher probes of the Hutchinson trace
    bn_statistics: str = "running"  # running: the model's own; probe: re-estimated on the probe set before measuring

    def check(self) -> None:
        check_choice("bn_mode", self.bn_mode, BN_MODES)
        check_choice("bn_statistics", self.bn_statistics, BN_STATISTICS)
        for name in ("examples", "batch_size", "eigen_iterations", "eigen_tol", "trace_samples"):
            check_positive(name, getattr(self, name))
