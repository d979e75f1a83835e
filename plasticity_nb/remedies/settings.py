"""What a remedy for lost plasticity does, and which plasticity metrics a run records: the settings alone, so
that a run config can hold them without importing the remedies (their maths, and training/remedy_hooks.py).

Every field that a remedy's source fixes cites it; values the sources leave open are ours, chosen before
any result (docs: study-protocols.md section 12). A phase holds at most one of each remedy; a field left at
None is off, so runs without remedies keep their store keys.
"""
from __future__ import annotations

import dataclasses

from ..core.config import Config, ranged

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
    """Shin et al. (NeurIPS 2024): direction-aware shrinking at the phase start, over all data seen before it."""

    # weight of each batch's negative gradient in the moving average (their default)
    alpha: float = ranged(0.3, gt=0, le=1)
    # lambda: the smallest shrink factor clamp(cos, lambda, 1) (their default)
    shrink_floor: float = ranged(0.3, gt=0, le=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class L2Init(Config):
    """Kumar et al. (2023): loss + coefficient * sum ||theta - theta_0||^2, theta_0 the run's initial weights."""

    coefficient: float = ranged(1e-2, gt=0)  # their best in most settings, of {1e-2, 1e-3, 1e-4, 1e-5}


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricSettings(Config):
    """Plasticity metrics recorded into the history at every test-set evaluation, on a fixed probe batch of
    the training subset, in train mode (the function the optimiser trains; BatchNorm statistics untouched),
    and at each phase's start the gradient norms on the pretraining half and on the other half."""

    examples: int = ranged(256, gt=0)  # class-balanced examples of the training subset (the same for every evaluation)
    tau: float = ranged(0.1, ge=0)  # ReDo dormancy threshold (Sokar et al.)
    active_share: float = ranged(0.01, gt=0, lt=1)  # Dohare's dormancy: active on fewer than this share of inputs
    # srank: singular values reaching 1 - delta of their sum (Kumar et al. 2021)
    srank_delta: float = ranged(0.01, gt=0, lt=1)
