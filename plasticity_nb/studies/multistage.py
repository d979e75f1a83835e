"""05 · Multi-stage pretraining (Berariu et al. Fig. 4, App. A.3). Claims C5a, C5b.

n pretraining stages on nested sets D_1 c ... c D_n built from n+1 class groups and a uniform fraction
r of the data (see `sampling.multistage_split`); each stage trains until `stage_target_acc` train
accuracy or `stage_epochs` epochs, with a new optimiser; then the final stage tunes on the whole subset.
Smaller r means a larger class shift between stages; r = 1 gives class-balanced stages.
"""
from __future__ import annotations

import dataclasses

from ..analysis.claims import Claim, ClaimResult
from ..analysis.premises import Premise
from ..analysis.stats import difference_test
from ..core.config import ConfigError, check_within, range_of
from ..data.datasets import dataset_spec
from ..run.run_config import Phase, RunConfig, dataset_ranges
from .study_config import Plan, StudyConfig, check_sweep, presets
from .study_result import StudyResult

# The claims this notebook tests (the registry: studies.claim_registry).
MORE_STAGES = Claim(
    "C5a", "05_multistage", "the gap grows with the number of stages (no class shift)",
    "Final test accuracy falls steadily as the number of pretraining stages grows (Fig. 4, left).",
    "gap(most stages) - gap(fewest stages) at r = 1 (class-balanced stages: stage count alone); difference test")
CLASS_SHIFT = Claim(
    "C5b", "05_multistage", "the gap grows with the class shift between stages",
    "A larger difference between stages (smaller uniform fraction r) gives a larger gap (Fig. 4).",
    "gap(smallest r) - gap(largest r) at a fixed stage count (`shift_stages`); difference test")
CLAIMS = (MORE_STAGES, CLASS_SHIFT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    # numbers of pretraining stages n (n+1 class groups of the dataset's classes: 1..9 on CIFAR-10)
    stages: tuple[int, ...] = range_of(RunConfig, "stages")
    ratios: tuple[float, ...] = range_of(RunConfig, "uniform_ratio")  # uniform fractions r in [0, 1]
    stage_epochs: int = range_of(Phase, "epochs")  # epoch cap of every pretraining stage
    # a pretraining stage ends early once an epoch's train accuracy (a fraction) reaches this
    stage_target_acc: float = range_of(Phase, "target_train_acc")
    shift_stages: int  # C5b compares the ratios at this stage count (one of `stages`)

    CONDITIONS = ("stages", "ratio")
    PRESETS = presets(
        smoke=dict(stages=[1, 2], ratios=[0.0, 1.0], stage_epochs=1, stage_target_acc=0.99, shift_stages=2),
        quick=dict(stages=[1, 4], ratios=[0.0, 1.0], stage_epochs=10, stage_target_acc=0.99,
                   shift_stages=4),
        paper=dict(stages=[1, 2, 4, 9], ratios=[0.0, 0.25, 0.5, 0.75, 1.0], stage_epochs=350, stage_target_acc=0.999,
                   shift_stages=4),
    )

    def check_sweep(self) -> None:
        check_sweep("stages", self.stages)
        declared, why = dataset_ranges(dataset_spec(self.dataset))["stages"]
        check_within("stages", self.stages, declared, f" ({why})")
        check_sweep("ratios", self.ratios)
        if self.shift_stages not in self.stages:
            raise ConfigError(f"shift_stages {self.shift_stages} must be one of stages {list(self.stages)}")

    def multistage(self, seed: int, n: int, r: float, data_id: str = ""):
        pretraining = tuple(self.tune(pool="stage", stage=i, epochs=self.stage_epochs,
                                      target_train_acc=self.stage_target_acc) for i in range(1, n + 1))
        return self.run_config(seed, (*pretraining, self.tune()), data_id, stages=n, uniform_ratio=r)

    def plan(self, data_id: str = "") -> Plan:
        return [run for n in self.stages for r in self.ratios
                for run in self.pairs(dict(stages=n, ratio=r), lambda s: self.multistage(s, n, r, data_id),
                                      lambda s: self.scratch(s, data_id))]


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C5a (stage count alone) needs two stage counts and r = 1 in the sweep; C5b (class shift at a fixed
    stage count) two ratios. A claim the sweep cannot test is left out. Beside each, its definition before
    a5df8a4 (averaged over the other axis; claim_history), primary on the seeds that had been seen."""
    found, rule = [], config.premise_rule()
    if len(config.stages) > 1 and 1.0 in config.ratios:
        most, fewest = max(config.stages), min(config.stages)
        growth = difference_test(result.gap_change("stages", most, fewest, ratio=1.0),
                                 f"ratio=1.0, {most} vs {fewest} stages")
        premise = Premise.all_of([result.premise(rule, stages=n, ratio=1.0) for n in (most, fewest)])
        averaged = difference_test(sum(result.gap_change("stages", most, fewest, ratio=r) for r in config.ratios)
                                   / len(config.ratios), f"{most} vs {fewest} stages, averaged over r")
        earlier = ClaimResult(MORE_STAGES, (averaged,), result.premise(rule))
        found.append(ClaimResult(MORE_STAGES, (growth,), premise, earlier=earlier))
    if len(config.ratios) > 1:
        n, low, high = config.shift_stages, min(config.ratios), max(config.ratios)
        growth = difference_test(result.gap_change("ratio", low, high, stages=n), f"stages={n}, r={low} vs r={high}")
        premise = Premise.all_of([result.premise(rule, stages=n, ratio=r) for r in (low, high)])
        averaged = difference_test(sum(result.gap_change("ratio", low, high, stages=k) for k in config.stages)
                                   / len(config.stages), f"r={low} vs r={high}, averaged over stage counts")
        earlier = ClaimResult(CLASS_SHIFT, (averaged,), result.premise(rule))
        found.append(ClaimResult(CLASS_SHIFT, (growth,), premise, earlier=earlier))
    return found
