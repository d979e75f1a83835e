"""Which plasticity metrics a run records, and how: the settings alone, so that a run config can hold them
without importing the code that measures them (plasticity_metrics.py, training/metrics_hook.py)."""
from __future__ import annotations

import dataclasses

from ..core.config import Config, ranged, versioned

# Every metric column a run records, with the definition it follows (the field's definitions of "dormant" and of
# "stable rank" disagree; each column names its own). Computed by training/metrics_hook.py, defined in
# measures/plasticity_metrics.py.
METRIC_DEFINITIONS = {
    "dormant_redo": "share of tau-dormant units (score <= tau), every post-ReLU layer but the output: ReDo "
                    "(Sokar et al. 2023)",
    "dormant_dohare": "share of units active on < 1 % of inputs, the 17 layers of Dohare et al. 2024",
    "dormant_redo_units": "ReDo's tau-dormant share over the units ReDo and continual backprop reset (each block's "
                          "first conv)",
    "effective_rank": "effective rank of the penultimate features (Roy & Vetterli 2007)",
    "srank": "smallest k whose singular values reach 1 - delta of their sum (Kumar et al. 2021), not "
             "||A||_F^2 / ||A||_2^2",
    "weight_norm": "||theta|| over every parameter",
    "init_distance": "||theta - theta_0||",
    "active_units": "share of non-zero penultimate feature entries (Plasticine)",
    "feature_norm": "mean per-input L2 norm of the penultimate features (Plasticine)",
    "feature_variance": "mean per-input variance across the penultimate features (Plasticine)",
    "zero_grad_share": "share of parameter entries whose probe-batch gradient is exactly 0",
    "churn": "share of the probe batch whose predicted class changed since the previous measurement",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricSettings(Config):
    """Plasticity metrics recorded into the history at every test-set evaluation, on a fixed probe batch of
    the training subset, in train mode (the function the optimiser trains; BatchNorm statistics untouched),
    and at each phase's start the gradient norms on the pretraining half and on the other half.

    Which units each dormant fraction counts (nets/units.py): `dormant_redo` every post-ReLU activation but the
    output, as ReDo's logs (dopamine labs/redo weight_recyclers.py:261-301); `dormant_dohare` Dohare et al.'s 17
    layers of a ResNet-18 (post_run_analysis.py:105-131); `dormant_redo_units` only the units ReDo and
    continual backprop reset (each block's first conv), the set both fractions counted before version 2.

    On the penultimate features (the head's input) of the probe batch: `effective_rank` (Roy & Vetterli) and
    `srank` (Kumar et al.'s sum-of-singular-values definition, not ||A||_F^2/||A||_2^2); `active_units`,
    `feature_norm` and `feature_variance` as Plasticine defines them (pooled share of non-zero entries; mean per-input
    L2 norm; mean per-input variance across features). `zero_grad_share`: the share of parameter entries whose
    cross-entropy gradient on the probe batch is exactly 0. `churn`: the share of the probe batch whose predicted
    class changed since the run's previous measurement (NaN at its first). `weight_norm`, `init_distance`:
    ||theta||, ||theta - theta_0||. Definitions: measures/plasticity_metrics.py."""

    examples: int = ranged(256, gt=0)  # class-balanced examples of the training subset (the same for every evaluation)
    # ReDo dormancy threshold: the paper's tau (their code's default is 0.0; its gin files set none)
    tau: float = ranged(0.1, ge=0)
    active_share: float = ranged(0.01, gt=0, lt=1)  # Dohare's dormancy: active on fewer than this share of inputs
    # srank: singular values reaching 1 - delta of their sum (Kumar et al. 2021)
    srank_delta: float = ranged(0.01, gt=0, lt=1)
    # 3: adds active_units, feature_norm, feature_variance, zero_grad_share and churn (2026-12-01; runs without
    # them are retrained, never compared against NaN); 2: dormant fractions over the layers the papers count;
    # 1 (no field) counted block conv1s only
    version: int = versioned(3)
