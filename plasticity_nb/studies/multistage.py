"""05 · Multi-stage pretraining (Berariu et al. Fig. 4, App. A.3). Claims C5a, C5b.

n pretraining stages on nested sets D_1 c ... c D_n built from n+1 class groups and a uniform fraction
r of the data (see `sampling.multistage_split`); each stage trains until `stage_target_acc` train
accuracy or `stage_epochs` epochs, with a new optimiser; then the final stage tunes on the whole subset.
Smaller r means a larger class shift between stages; r = 1 gives class-balanced stages.
"""
from __future__ import annotations

import dataclasses

from ..claims import ClaimResult
from ..config import ConfigError, check_positive
from ..data import NUM_CLASSES
from ..protocols import (
    ARMS,
    QUICK_SWEEP,
    Plan,
    StudyConfig,
    StudyResult,
    check_sweep,
    gap_difference,
    presets,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    stages: tuple[int, ...]  # numbers of pretraining stages n (1..9: n+1 class groups of CIFAR-10's 10 classes)
    ratios: tuple[float, ...]  # uniform fractions r in [0, 1]
    stage_epochs: int  # epoch cap of every pretraining stage
    stage_target_acc: float  # a pretraining stage ends early once an epoch's train accuracy reaches this

    CONDITIONS = ("stages", "ratio")
    PRESETS = presets(
        smoke=dict(stages=[1, 2], ratios=[0.0, 1.0], stage_epochs=1, stage_target_acc=0.99),
        quick=dict(**QUICK_SWEEP, stages=[1, 4], ratios=[0.0, 1.0], stage_epochs=10, stage_target_acc=0.99),
        paper=dict(stages=[1, 2, 4, 9], ratios=[0.0, 0.25, 0.5, 0.75, 1.0], stage_epochs=350, stage_target_acc=0.999),
    )

    def check_sweep(self) -> None:
        check_sweep("stages", self.stages, lambda n: 1 <= n < NUM_CLASSES,
                    f"stages must be >= 1 (and <= {NUM_CLASSES - 1}: one class group per stage plus the last)")
        check_sweep("ratios", self.ratios, lambda r: 0 <= r <= 1, "r must lie in [0, 1]")
        check_positive("stage_epochs", self.stage_epochs)
        if not 0 < self.stage_target_acc <= 1:
            raise ConfigError(f"stage_target_acc is a fraction in (0, 1], got {self.stage_target_acc}")

    def multistage(self, seed: int, n: int, r: float, data_id: str = ""):
        pretraining = tuple(self.tune(pool="stage", stage=i, epochs=self.stage_epochs,
                                      target_train_acc=self.stage_target_acc) for i in range(1, n + 1))
        return self.run_config(seed, (*pretraining, self.tune()), data_id, stages=n, uniform_ratio=r)

    def plan(self, data_id: str = "") -> Plan:
        return [(dict(stages=n, ratio=r, seed=s, arm=arm),
                 self.multistage(s, n, r, data_id) if arm == "warm" else self.scratch(s, data_id))
                for n in self.stages for r in self.ratios for s in self.seeds for arm in ARMS]


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C5a needs two stage counts, C5b two ratios; a claim the sweep cannot test is left out."""
    found = []
    if len(config.stages) > 1:
        found.append(ClaimResult.from_estimate(
            "C5a", gap_difference(result.gaps, "stages", max(config.stages), min(config.stages))))
    if len(config.ratios) > 1:
        found.append(ClaimResult.from_estimate(
            "C5b", gap_difference(result.gaps, "ratio", min(config.ratios), max(config.ratios))))
    return found
