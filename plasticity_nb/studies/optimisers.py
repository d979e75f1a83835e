"""03 · The gap under other optimisers (Berariu et al. App. A.1). Claim C3.

The Fig. 1 protocol under each optimiser, each at its own constant learning rate, used in both phases
and for scratch. The paper does not give its learning rates; ours are common defaults for short budgets.
"""
from __future__ import annotations

import dataclasses

from ..claims import ClaimResult
from ..config import ConfigError
from ..protocols import (
    QUICK_SWEEP,
    Plan,
    StudyResult,
    WarmStartConfig,
    check_sweep,
    presets,
)
from ..train import OPTIMIZERS

LRS = dict(optimizers=["adam", "rmsprop", "sgd", "sgd_momentum"], optimizer_lrs=[1e-3, 1e-3, 0.1, 0.01])


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    optimizers: tuple[str, ...]  # optimisers compared (the base `optimizer` and `lr` are replaced by these)
    optimizer_lrs: tuple[float, ...]  # one constant learning rate per optimiser, in the same order

    CONDITIONS = ("optimizer",)
    PRESETS = presets(smoke=dict(pretrain_epochs=2, optimizers=["adam", "sgd"], optimizer_lrs=[1e-3, 0.1]),
                      quick=dict(**QUICK_SWEEP, pretrain_epochs=10, **LRS), paper=dict(pretrain_epochs=350, **LRS))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("optimizers", self.optimizers, lambda o: o in OPTIMIZERS, f"choose from {', '.join(OPTIMIZERS)}")
        if len(self.optimizer_lrs) != len(self.optimizers):
            raise ConfigError(f"optimizer_lrs has {len(self.optimizer_lrs)} values for {len(self.optimizers)} optimizers")
        if any(lr <= 0 for lr in self.optimizer_lrs):
            raise ConfigError(f"optimizer_lrs must all be > 0, got {list(self.optimizer_lrs)}")

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for optimizer, lr in zip(self.optimizers, self.optimizer_lrs):
            phase = dict(optimizer=optimizer, lr=lr)
            for s in self.seeds:
                plan.append((dict(optimizer=optimizer, seed=s, arm="warm"), self.warm(s, data_id, pretrain=phase, tune=phase)))
                plan.append((dict(optimizer=optimizer, seed=s, arm="scratch"), self.scratch(s, data_id, tune=phase)))
        return plan


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    return [ClaimResult.every_condition("C3", [result.gap_estimate(optimizer=o) for o in config.optimizers])]
