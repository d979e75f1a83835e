"""03 · The gap under other optimisers (Berariu et al. App. A.1). Claim C3.

The Fig. 1 protocol under each optimiser, each at its own constant learning rate and its own tuning
epoch budget (the same for its warm and scratch arms), used in both phases and for scratch; and, as in
App. A.1, Fig. 2 repeated per optimiser: the pretraining length swept. The paper does not give its
learning rates; ours are common defaults for short budgets. Each optimiser's budget is set so that its
scratch arm fits the training subset (the premise): plain SGD needs more epochs than Adam.
"""
from __future__ import annotations

import dataclasses

from ..analysis.claims import Claim, ClaimResult
from ..analysis.premises import Premise
from ..core.config import ConfigError, range_of
from ..run.run_config import Phase
from .study_config import QUICK_CAP, Plan, WarmStartConfig, check_sweep, presets
from .study_result import StudyResult

# The claims this notebook tests (the registry: studies.claim_registry).
EVERY_OPTIMISER = Claim(
    "C3", "03_optimisers", "the gap appears under every optimiser",
    "The gap appears with Adam, RMSprop, SGD and SGD with momentum (App. A.1).",
    "gap per optimiser at `pretrain_epochs`, each optimiser with its own lr and epoch budget; one difference "
    "test per optimiser, reported: the one with the weakest evidence")
CLAIMS = (EVERY_OPTIMISER,)

OPTIMISERS = ["adam", "rmsprop", "sgd", "sgd_momentum"]
LRS = [1e-3, 1e-3, 0.1, 0.01]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    # optimisers compared (the base `optimizer` and `lr` are replaced by these)
    optimizers: tuple[str, ...] = range_of(Phase, "optimizer")
    optimizer_lrs: tuple[float, ...] = range_of(Phase, "lr")  # one constant learning rate per optimiser, in order
    # one tuning (= scratch) epoch budget per optimiser (replaces tune_epochs)
    optimizer_tune_epochs: tuple[int, ...] = range_of(Phase, "epochs")
    # pretraining lengths per optimiser (App. A.1); must hold pretrain_epochs
    pretrain_epochs_sweep: tuple[int, ...] = range_of(Phase, "epochs")

    CONDITIONS = ("optimizer", "pretrain_epochs")
    PRESETS = presets(
        smoke=dict(pretrain_epochs=2, optimizers=["adam", "sgd"], optimizer_lrs=[1e-3, 0.1],
                   optimizer_tune_epochs=[2, 2], pretrain_epochs_sweep=[1, 2]),
        # quick caps: the larger of each optimiser's fixed budget before 2026-12-06 (the epochs its scratch arm
        # needed to fit 5,000 images, benchmarks/premise_pilot.py: 25 for each) and notebook 01's cap
        # (benchmarks/fit_pilot.py's rule); pretraining swept at 3 and 10 epochs.
        quick=dict(pretrain_epochs=10, optimizers=OPTIMISERS, optimizer_lrs=LRS,
                   optimizer_tune_epochs=[max(25, QUICK_CAP)] * 4, pretrain_epochs_sweep=[3, 10]),
        paper=dict(pretrain_epochs=350, optimizers=OPTIMISERS, optimizer_lrs=LRS, optimizer_tune_epochs=[500] * 4,
                   pretrain_epochs_sweep=[1, 2, 5, 10, 20, 50, 100, 200, 350]),
    )

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("optimizers", self.optimizers)
        for name in ("optimizer_lrs", "optimizer_tune_epochs"):
            values = getattr(self, name)
            if len(values) != len(self.optimizers):
                raise ConfigError(f"{name} has {len(values)} values for {len(self.optimizers)} optimizers")
        if min(self.optimizer_tune_epochs) < self.last_k:
            raise ConfigError(f"optimizer_tune_epochs {list(self.optimizer_tune_epochs)} must each be >= last_k "
                              f"({self.last_k})")
        check_sweep("pretrain_epochs_sweep", self.pretrain_epochs_sweep)
        if self.pretrain_epochs not in self.pretrain_epochs_sweep:
            raise ConfigError(f"pretrain_epochs {self.pretrain_epochs} (where C3 is read) must be one of "
                              f"pretrain_epochs_sweep {list(self.pretrain_epochs_sweep)}")

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for optimizer, lr, epochs in zip(self.optimizers, self.optimizer_lrs, self.optimizer_tune_epochs):
            phase = dict(optimizer=optimizer, lr=lr)
            tune = dict(**phase, epochs=epochs)
            for e in self.pretrain_epochs_sweep:
                plan += self.pairs(dict(optimizer=optimizer, pretrain_epochs=e),
                                   lambda s: self.warm(s, data_id, pretrain_epochs=e, pretrain=phase, tune=tune),
                                   lambda s: self.scratch(s, data_id, tune=tune))
        return plan


def history_at_claim(result: StudyResult, config: Config):
    """The learning curves C3 is read from: every optimiser at `pretrain_epochs`."""
    return result.history[result.history.pretrain_epochs == config.pretrain_epochs]


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C3 at `pretrain_epochs`: one difference test per optimiser, each condition's premise checked."""
    conditions = [dict(optimizer=o, pretrain_epochs=config.pretrain_epochs) for o in config.optimizers]
    premise = Premise.all_of([result.premise(config.premise_rule(), **c) for c in conditions])
    return [ClaimResult.every_condition(EVERY_OPTIMISER, [result.gap_test(**c) for c in conditions], premise)]
