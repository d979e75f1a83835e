"""Which plasticity metrics a run records, and how: the settings alone, so that a run config can hold them
without importing the code that measures them (plasticity_metrics.py, training/metrics_hook.py)."""
from __future__ import annotations

import dataclasses

from ..core.config import Config, ranged, versioned


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
