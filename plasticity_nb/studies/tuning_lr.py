"""08 · A larger tuning learning rate (Berariu et al. Fig. 7). Claim C8.

Fig. 1 with the tuning learning rate multiplied (pretraining unchanged); scratch is trained at the same
multiplied rate, since a larger rate can simply be better for the budget (see study-protocols §9).
"""
from __future__ import annotations

import dataclasses

from ..claims import ClaimResult
from ..protocols import (
    QUICK_SWEEP,
    Plan,
    StudyResult,
    WarmStartConfig,
    check_sweep,
    gap_difference,
    presets,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    lr_multipliers: tuple[float, ...]  # tuning (and scratch) lr = lr x multiplier, each > 0

    CONDITIONS = ("lr_multiplier",)
    PRESETS = presets(smoke=dict(pretrain_epochs=2, lr_multipliers=[1, 10]),
                      quick=dict(**QUICK_SWEEP, pretrain_epochs=10, lr_multipliers=[1, 3, 10]),
                      paper=dict(pretrain_epochs=350, lr_multipliers=[1, 3, 10]))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("lr_multipliers", self.lr_multipliers, lambda m: m > 0, "multipliers must be > 0")

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for m in self.lr_multipliers:
            tune = dict(lr=self.lr * m)
            for s in self.seeds:
                plan.append((dict(lr_multiplier=m, seed=s, arm="warm"), self.warm(s, data_id, tune=tune)))
                plan.append((dict(lr_multiplier=m, seed=s, arm="scratch"), self.scratch(s, data_id, tune=tune)))
        return plan


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C8: gap at the smallest multiplier minus gap at the largest (needs two multipliers)."""
    if len(config.lr_multipliers) < 2:
        return []
    low, high = min(config.lr_multipliers), max(config.lr_multipliers)
    return [ClaimResult.from_estimate("C8", gap_difference(result.gaps, "lr_multiplier", low, high))]
