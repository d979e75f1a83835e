"""07 · Re-initialising module groups after pretraining (Berariu et al. Fig. 6 and Fig. 11). Claims C7a-c.

After pretraining, groups k..6 are re-drawn from the initial distribution (groups: 1 stem conv, 2-5 the
four stages, 6 the classifier; BatchNorm of reset groups back to defaults, kept groups keep theirs), a
new optimiser tunes on the whole subset, and the result is compared with scratch. k = 7 is the plain
warm start (nothing reset). C7a: resetting the top 4-5 groups is equivalent to scratch (TOST); C7b:
resetting only the top 1-2 leaves a gap; C7c (Fig. 11): once the top 4-5 are reset, keeping the bottom
groups does not speed up tuning, measured as tuning epochs until the train accuracy first reaches
`speed_target_acc` (a run that never does counts as the budget + 1 epochs).
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from ..analysis.claims import Claim, ClaimResult
from ..analysis.premises import Premise
from ..analysis.stats import bound_test, difference_test, equivalence_test
from ..core.config import range_of, ranged
from ..run.run_config import Phase
from .study_config import Plan, WarmStartConfig, check_sweep, presets
from .study_result import CLOSED_THREAT, GAP_THREAT, StudyResult

# The claims this notebook tests (the registry: studies.claim_registry).
TOP_RESET_RECOVERS = Claim(
    "C7a", "07_resets", "re-initialising the top 4-5 groups recovers from-scratch accuracy",
    "Resetting the top 4 or 5 module groups recovers from-scratch generalisation (Fig. 6).",
    "remaining gap = scratch - reset test accuracy at k = 3 and at k = 2; equivalence (TOST) within +/- the "
    "preset's margin at each depth")
PARTIAL_RESET_FALLS_SHORT = Claim(
    "C7b", "07_resets", "re-initialising only the top 1-2 groups leaves a gap",
    "Resetting only a few (top) groups is not enough (Fig. 6).",
    "remaining gap after resetting the top 1-2 groups, at k = 6 and at k = 5; difference test at each depth")
NO_SPEED_LEFT = Claim(
    "C7c", "07_resets", "once the top 4-5 groups are reset, keeping the bottom ones does not speed up training",
    "Once enough is reset to fix generalisation, warm-starting's speed advantage is gone (Fig. 11).",
    "speed-up = scratch's tuning epochs to `speed_target_acc` train accuracy minus the reset run's, at k = 3 "
    "and at k = 2; a run that never reaches it counts as budget + 1; bound: below `speed_margin` epochs at each "
    "depth",
    unit="epochs")
CLAIMS = (TOP_RESET_RECOVERS, PARTIAL_RESET_FALLS_SHORT, NO_SPEED_LEFT)

NO_RESET = 7  # "reset from group 7": nothing is reset
TOP_4_5 = (2, 3)  # k = 3 resets the top 4 groups (3-6), k = 2 the top 5 (2-6)
TOP_1_2 = (5, 6)  # k = 6 resets the classifier only, k = 5 the top 2 groups (5-6)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    # k in 1..6: groups k..6 are re-initialised (k = 1 resets everything)
    reset_from_groups: tuple[int, ...] = range_of(Phase, "reset_groups")
    speed_target_acc: float = ranged(gt=0, le=100)  # Fig. 11: tuning epochs until train accuracy (%) reaches this
    speed_margin: float = ranged(gt=0)  # C7c: a speed-up below this many tuning epochs counts as none

    CONDITIONS = ("reset_from_group",)
    PRESETS = presets(smoke=dict(pretrain_epochs=2, reset_from_groups=[2, 3, 5, 6], speed_target_acc=20.0,
                                 speed_margin=1.0),
                      quick=dict(pretrain_epochs=10, reset_from_groups=[1, 2, 3, 4, 5, 6],
                                 speed_target_acc=90.0, speed_margin=1.0),
                      paper=dict(pretrain_epochs=350, reset_from_groups=[1, 2, 3, 4, 5, 6], speed_target_acc=99.0,
                                 speed_margin=10.0))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("reset_from_groups", self.reset_from_groups)

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for k in (*self.reset_from_groups, NO_RESET):
            tune = dict(reset_groups=tuple(range(k, 7)))
            plan += self.pairs(dict(reset_from_group=k), lambda s: self.warm(s, data_id, tune=tune),
                               lambda s: self.scratch(s, data_id))
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


def epochs_to_target(result: StudyResult, target_acc: float, budget: int) -> pd.DataFrame:
    """Per run (labels) the first tuning epoch whose train accuracy reaches `target_acc` (%); budget + 1
    for a run that never does (it needs at least one more epoch than it had)."""
    tuned = result.history[result.history.tune_epoch >= 1]
    reached = tuned[tuned.train_acc >= target_acc].groupby(["reset_from_group", "seed", "arm"]).tune_epoch.min()
    runs = tuned.groupby(["reset_from_group", "seed", "arm"]).size().index
    return reached.reindex(runs).fillna(budget + 1).rename("epochs").reset_index()


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C7a and C7c need k = 2 and 3 in the sweep, C7b k = 5 and 6; a claim the sweep cannot test is left out.
    Each holds only if it holds at every depth it names (a mean over depths would let +2 and -2 pass)."""
    found, rule, swept = [], config.premise_rule(), set(config.reset_from_groups)

    def premise(groups: tuple[int, ...], threat: tuple[str, str] | None = GAP_THREAT) -> Premise:
        return Premise.all_of([result.premise(rule, threat=threat, reset_from_group=k) for k in groups])

    def left(k: int) -> str:
        return f"gap left after {condition_name(k)}"

    if set(TOP_4_5) <= swept:
        close = [equivalence_test(result.gap_series(reset_from_group=k), config.equivalence_margin, left(k))
                 for k in TOP_4_5]
        found.append(ClaimResult.every_condition(TOP_RESET_RECOVERS, close, premise(TOP_4_5, CLOSED_THREAT)))
        epochs = epochs_to_target(result, config.speed_target_acc, config.tune_epochs)
        per_run = epochs.pivot_table(index="seed", columns=["arm", "reset_from_group"], values="epochs")
        speed = [bound_test(per_run["scratch"][k] - per_run["warm"][k], config.speed_margin,
                            f"epochs to {config.speed_target_acc:g} % train accuracy saved with {condition_name(k)}")
                 for k in TOP_4_5]
        found.append(ClaimResult.every_condition(NO_SPEED_LEFT, speed, premise(TOP_4_5, None)))
    if set(TOP_1_2) <= swept:
        remains = [difference_test(result.gap_series(reset_from_group=k), left(k)) for k in TOP_1_2]
        found.append(ClaimResult.every_condition(PARTIAL_RESET_FALLS_SHORT, remains, premise(TOP_1_2)))
    return found
