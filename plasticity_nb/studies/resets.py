"""07 · Re-initialising module groups after pretraining (Berariu et al. Fig. 6 and Fig. 11). Claim C7.

After pretraining, groups k..6 are re-drawn from the initial distribution (groups: 1 stem conv, 2-5 the
four stages, 6 the classifier; BatchNorm of reset groups back to defaults, kept groups keep theirs), a
new optimiser tunes on the whole subset, and the result is compared with scratch. k = 7 is the plain
warm start (nothing reset). Fig. 11's question, whether keeping the bottom groups at least speeds up
tuning, is answered by the tuning epochs needed to reach `speed_target_acc` train accuracy.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from ..claims import ClaimResult
from ..config import check_positive
from ..protocols import (
    QUICK_SWEEP,
    Plan,
    StudyResult,
    WarmStartConfig,
    check_sweep,
    presets,
)
from ..stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, paired_estimate

NO_RESET = 7  # "reset from group 7": nothing is reset
TOP_4_5 = (2, 3)  # k = 3 resets the top 4 groups (3-6), k = 2 the top 5 (2-6)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    reset_from_groups: tuple[int, ...]  # k in 1..6: groups k..6 are re-initialised (k = 1 resets everything)
    speed_target_acc: float  # Fig. 11: tuning epochs until train accuracy (%) reaches this

    CONDITIONS = ("reset_from_group",)
    PRESETS = presets(smoke=dict(pretrain_epochs=2, reset_from_groups=[2, 3], speed_target_acc=20.0),
                      quick=dict(**QUICK_SWEEP, pretrain_epochs=10, reset_from_groups=[1, 2, 3, 4, 5, 6], speed_target_acc=90.0),
                      paper=dict(pretrain_epochs=350, reset_from_groups=[1, 2, 3, 4, 5, 6], speed_target_acc=99.0))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("reset_from_groups", self.reset_from_groups, lambda k: 1 <= k <= 6,
                    "module groups are 1 (stem conv) .. 6 (classifier)")
        check_positive("speed_target_acc", self.speed_target_acc)

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for k in (*self.reset_from_groups, NO_RESET):
            tune = dict(reset_groups=tuple(range(k, 7)))
            for s in self.seeds:
                plan.append((dict(reset_from_group=k, seed=s, arm="warm"), self.warm(s, data_id, tune=tune)))
                plan.append((dict(reset_from_group=k, seed=s, arm="scratch"), self.scratch(s, data_id)))
        return plan


def condition_name(k: int) -> str:
    return "no reset" if k == NO_RESET else f"reset {k}-6"


def tuning_speed(result: StudyResult, target_acc: float) -> pd.DataFrame:
    """Tuning epochs until train accuracy first reaches `target_acc` (%): mean over the seeds that reach
    it within the budget, and how many do. Scratch counts from its first epoch like every tuning run."""
    tuned = result.history[result.history.tune_epoch >= 1]
    run = tuned.reset_from_group.map(condition_name).where(tuned.arm == "warm", "scratch")
    tuned = tuned.assign(run=run).drop_duplicates(["run", "seed", "tune_epoch"])  # scratch repeats per k
    first = tuned[tuned.train_acc >= target_acc].groupby(["run", "seed"]).tune_epoch.min()
    table = first.groupby("run").agg(epochs_to_target="mean", seeds_reaching="count")
    table["seeds"] = tuned.groupby("run").seed.nunique()
    order = [condition_name(k) for k in sorted(result.gaps.reset_from_group.unique())] + ["scratch"]
    return table.reindex(order).fillna({"seeds_reaching": 0}).reset_index()


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C7 needs k = 2 and k = 3 in the sweep; without them it is left out."""
    if not set(TOP_4_5) <= set(config.reset_from_groups):
        return []
    per_seed = result.gaps.pivot(index="seed", columns="reset_from_group", values="gap_pp")
    remaining = per_seed[list(TOP_4_5)].mean(axis=1)
    removed = paired_estimate(per_seed[NO_RESET] - remaining)
    left = paired_estimate(remaining)
    if removed.ci_low > 0 and left.ci_low <= 0:
        verdict = SUPPORTED  # the reset removes the gap and what is left is not distinguishable from 0
    elif removed.ci_high < 0 or left.ci_low > 0:
        verdict = NOT_SUPPORTED  # the reset does not help, or a significant gap remains
    else:
        verdict = INCONCLUSIVE
    return [ClaimResult("C7", removed, verdict)]
