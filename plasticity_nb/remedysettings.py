"""What a remedy for lost plasticity does, and which plasticity metrics a run records: the settings alone, so
that a run config can hold them without importing the remedies (remedies/, remedy_hooks.py).

Every field that a remedy's source fixes cites it; values the sources leave open are ours, chosen before
any result (docs: study-protocols.md section 12). A phase holds at most one of each remedy; a field left at
None is off, so runs without remedies keep their store keys.
"""
from __future__ import annotations

import dataclasses

from .config import Config, ConfigError, check_choice, check_positive

BN_STATISTICS = ("reset", "keep")  # shrink-and-perturb: BatchNorm running statistics back to defaults, or kept


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShrinkPerturb(Config):
    """Ash & Adams (NeurIPS 2020): theta <- shrink * theta + perturb * theta_fresh at the phase start."""

    shrink: float = 0.6  # lambda: their Fig. 8 trade-off sweet spot (their code's default is 0.4)
    perturb: float = 0.01  # sigma: scale of the fresh initialisation added (Fig. 8: ~0.01; code: 0.1)
    bn_statistics: str = "reset"  # reset: as their code (it rebuilds the network); keep: as estimated before

    def check(self) -> None:
        check_positive("shrink", self.shrink, allow_zero=True)
        check_positive("perturb", self.perturb, allow_zero=True)
        check_choice("bn_statistics", self.bn_statistics, BN_STATISTICS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Dash(Config):
    """Shin et al. (NeurIPS 2024): direction-aware shrinking at the phase start, over all data seen before it."""

    alpha: float = 0.3  # weight of each batch's negative gradient in the moving average (their default)
    shrink_floor: float = 0.3  # lambda: the smallest shrink factor clamp(cos, lambda, 1) (their default)

    def check(self) -> None:
        for name in ("alpha", "shrink_floor"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"dash {name} must lie in (0, 1], got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class L2Init(Config):
    """Kumar et al. (2023): loss + coefficient * sum ||theta - theta_0||^2, theta_0 the run's initial weights."""

    coefficient: float = 1e-2  # their best in most settings, of {1e-2, 1e-3, 1e-4, 1e-5}

    def check(self) -> None:
        check_positive("coefficient", self.coefficient)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReDo(Config):
    """Sokar et al. (ICML 2023): every `every` steps, re-initialise the tau-dormant units."""

    tau: float = 0.1  # dormancy threshold on the unit's normalised score (their performance runs)
    every: int = 1000  # steps between resets (their F; "~1000" is uncertain: presets choose their own)
    examples: int = 256  # training examples of the phase's pool (drawn anew at each reset) that score the units

    def check(self) -> None:
        check_positive("tau", self.tau, allow_zero=True)
        check_positive("every", self.every)
        check_positive("examples", self.examples)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContinualBackpropSettings(Config):
    """Dohare et al. (Nature 2024): each step, replace the mature units with the lowest utility."""

    replacement_rate: float = 1e-5  # rho: units replaced per mature unit and step (incremental CIFAR-100)
    maturity_threshold: int = 1000  # m: steps a unit is protected after (re)initialisation (incremental CIFAR-100)
    decay: float = 0.99  # eta: the utility's running-average decay (their default)

    def check(self) -> None:
        if not 0 <= self.replacement_rate <= 1:
            raise ConfigError(f"replacement_rate must lie in [0, 1], got {self.replacement_rate!r}")
        check_positive("maturity_threshold", self.maturity_threshold, allow_zero=True)
        if not 0 <= self.decay < 1:
            raise ConfigError(f"decay must lie in [0, 1), got {self.decay!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricSettings(Config):
    """Plasticity metrics recorded into the history at every test-set evaluation, on a fixed probe batch of
    the training subset, in train mode (the function the optimiser trains; BatchNorm statistics untouched),
    and at each phase's start the gradient norms on the pretraining half and on the other half."""

    examples: int = 256  # class-balanced examples of the training subset (the same for every evaluation)
    tau: float = 0.1  # ReDo dormancy threshold (Sokar et al.)
    active_share: float = 0.01  # Dohare's dormancy: active on fewer than this share of inputs
    srank_delta: float = 0.01  # srank: singular values reaching 1 - delta of their sum (Kumar et al. 2021)

    def check(self) -> None:
        check_positive("examples", self.examples)
        check_positive("tau", self.tau, allow_zero=True)
        for name in ("active_share", "srank_delta"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"metrics {name} must lie in (0, 1), got {getattr(self, name)!r}")
