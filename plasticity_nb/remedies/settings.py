"""What a remedy for lost plasticity does, and which plasticity metrics a run records: the settings alone, so
that a run config can hold them without importing the remedies (their maths, and training/remedy_hooks.py).

Every field that a remedy's source fixes cites it; values the sources leave open are ours, chosen before
any result (docs: study-protocols.md section 12). A phase holds at most one of each remedy; a field left at
None is off, so runs without remedies keep their store keys.
"""
from __future__ import annotations

import dataclasses

from ..core.config import Config, ranged, versioned
from .l2_init import CONVENTIONS, PARAMETER_SETS
from .unit_reset import FRESH_INITS

BN_STATISTICS = ("reset", "keep")  # shrink-and-perturb: BatchNorm running statistics back to defaults, or kept


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShrinkPerturb(Config):
    """Ash & Adams (NeurIPS 2020): theta <- shrink * theta + perturb * theta_fresh at the phase start."""

    shrink: float = ranged(0.6, ge=0)  # lambda: their Fig. 8 trade-off sweet spot (their code's default is 0.4)
    perturb: float = ranged(0.01, ge=0)  # sigma: scale of the fresh initialisation added (Fig. 8: ~0.01; code: 0.1)
    # reset: as their code (it rebuilds the network); keep: as estimated before
    bn_statistics: str = ranged("reset", choices=BN_STATISTICS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Dash(Config):
    """Shin et al. (NeurIPS 2024): direction-aware shrinking at the phase start, as their code calls it
    (baekrok/DASH-Direction-Aware-SHrinking main.py:54, 68-69): over every phase's new data so far, the new phase's
    included and last, one batch per chunk, BatchNorm in eval mode."""

    # weight of each chunk's negative gradient in the moving average (their default)
    alpha: float = ranged(0.3, gt=0, le=1)
    # lambda: the smallest shrink factor clamp(cos, lambda, 1) (their default)
    shrink_floor: float = ranged(0.3, gt=0, le=1)
    # eval: BatchNorm's running statistics, as their model is left by its evaluation (metric_utils.py:161);
    # train: batch statistics (a deviation, kept as an option)
    bn_mode: str = ranged("eval", choices=("eval", "train"))
    # 2: their data and mode (2026-12-01); 1 (no field) took only the earlier phases' data, in random batches of
    # the run's batch size, in train mode
    version: int = versioned(2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class L2Init(Config):
    """Kumar et al. (2023), as their code (skumar9876/L2_Init, agents/agents.py:282-297): loss +
    0.5 * coefficient * sum ||theta - theta_0||^2 over the conv and linear weights and biases."""

    coefficient: float = ranged(1e-2, gt=0)  # lambda: their best in most settings, of {1e-2, 1e-3, 1e-4, 1e-5}
    # authors: 0.5 * lambda (their code, the convention of their sweeps); paper: lambda (their paper's text)
    convention: str = ranged("authors", choices=tuple(CONVENTIONS))
    # conv_linear: what their (BatchNorm-free) nets hold; all: BatchNorm's gamma and beta too
    parameters: str = ranged("conv_linear", choices=PARAMETER_SETS)
    # 2: the authors' convention and parameter set (2026-12-01); 1 (no field) was the paper's over every parameter
    version: int = versioned(2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReDo(Config):
    """Sokar et al. (ICML 2023): every `every` steps, re-initialise the tau-dormant units."""

    tau: float = ranged(0.1, ge=0)  # dormancy threshold on the unit's normalised score (their performance runs)
    every: int = ranged(1000, gt=0)  # steps between resets (their F; "~1000" is uncertain: presets choose their own)
    # training examples of the phase's pool (drawn anew at each reset) that score the units
    examples: int = ranged(256, gt=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContinualBackpropSettings(Config):
    """Dohare et al. (Nature 2024): each step, replace the mature units with the lowest utility."""

    # rho: units replaced per mature unit and step (incremental CIFAR-100)
    replacement_rate: float = ranged(1e-5, ge=0, le=1)
    # m: steps a unit is protected after (re)initialisation (incremental CIFAR-100)
    maturity_threshold: int = ranged(1000, ge=0)
    decay: float = ranged(0.99, ge=0, lt=1)  # eta: the utility's running-average decay (their default)
    # kaiming: fresh incoming weights as gnt.py draws them (std sqrt(2/fan_in)); default: the layer's own init
    fresh_init: str = ranged("kaiming", choices=FRESH_INITS)
    # 2: gnt.py's fresh weights (2026-12-01); 1 (no field) drew them from the layer's default init
    version: int = versioned(2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricSettings(Config):
    """Plasticity metrics recorded into the history at every test-set evaluation, on a fixed probe batch of
    the training subset, in train mode (the function the optimiser trains; BatchNorm statistics untouched),
    and at each phase's start the gradient norms on the pretraining half and on the other half.

    Which units each dormant fraction counts (nets/units.py): `dormant_redo` every post-ReLU activation but the
    output, as ReDo's logs (dopamine labs/redo weight_recyclers.py:261-301); `dormant_dohare` Dohare et al.'s 17
    layers of a ResNet-18 (post_run_analysis.py:105-131); `dormant_redo_units` only the units ReDo and
    continual backprop reset (each block's first conv), the set both fractions counted before version 2."""

    examples: int = ranged(256, gt=0)  # class-balanced examples of the training subset (the same for every evaluation)
    # ReDo dormancy threshold: the paper's tau (their code's default is 0.0; its gin files set none)
    tau: float = ranged(0.1, ge=0)
    active_share: float = ranged(0.01, gt=0, lt=1)  # Dohare's dormancy: active on fewer than this share of inputs
    # srank: singular values reaching 1 - delta of their sum (Kumar et al. 2021)
    srank_delta: float = ranged(0.01, gt=0, lt=1)
    # 2: dormant fractions over the layers the papers count (2026-12-01); 1 (no field) counted block conv1s only
    version: int = versioned(2)
