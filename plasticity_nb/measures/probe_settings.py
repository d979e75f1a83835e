"""How a run's curvature and noise probes measure: the settings alone, so that a run config can hold them
without importing the probes themselves (probes.py and the data and noise code it brings), nor torch.
"""
from __future__ import annotations

import dataclasses

from ..core.config import Config, ranged

# The curvature and noise measures of a probe row (probes.py `measure`), besides their details and the probe-set loss.
PROBE_METRICS = ("lambda_max", "trace", "noise_trace", "noise_scale", "grad_norm", "weight_norm")
BN_MODES = ("eval", "train")  # BatchNorm during curvature probes (curvature.py checks it too)
STATISTICS_SOURCES = ("running", "probe")  # the model's own BatchNorm statistics, or re-estimated on the probe set


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeSettings(Config):
    examples: int = ranged(256, gt=0)  # probe set size: class-balanced examples of the run's training subset
    batch_size: int = ranged(128, gt=0)  # examples per Hessian-vector-product batch (memory only)
    # BatchNorm during curvature probes: eval (running stats) or train (batch stats)
    bn_mode: str = ranged("eval", choices=BN_MODES)
    eigen_iterations: int = ranged(20, gt=0)  # power-iteration cap for the top eigenvalue
    eigen_tol: float = ranged(1e-3, gt=0)  # relative change that counts as converged
    trace_samples: int = ranged(20, gt=0)  # Rademacher probes of the Hutchinson trace
    # running: the model's own; probe: re-estimated on the probe set before measuring
    bn_statistics: str = ranged("running", choices=STATISTICS_SOURCES)
