"""10 · Remedies and plasticity metrics, side by side on the warm-start gap. Claims C11-C14 (C12b added after
seeing C12's result: DASH beat scratch, which an equivalence test calls "not equivalent"; declared below); the
remedies of 2024 and C15 over every remedy: notebook 11 (newer_remedies.py), on this protocol.

Each condition `remedy` pairs, per seed, a warm-started run with a scratch run:
- "none": the plain warm start of notebook 01 against plain scratch;
- shrink_perturb, dash: applied once, at the start of tuning, to the warm run (Ash & Adams 2020; Shin et al.
  2024); compared with plain scratch ("does it recover from-scratch accuracy?");
- l2_init, redo, cbp: the trainability remedies, on in both phases of the warm run (they are meant to keep the
  network trainable while it learns, Kumar et al. 2023, Sokar et al. 2023, Dohare et al. 2024); compared with
  plain scratch;
- augment, weight_decay: standard regularisation changes the training setup, so both arms get it: warm with it
  against scratch with it.
Every run records the plasticity metrics (measures/metric_settings.py) at each evaluation, and at the start
of each phase the gradient norms on the pretraining half and on the new half (Ash & Adams' imbalance).

Hyperparameters are the sources' own where they give them; ReDo's period and continual backprop's rate and
maturity are scaled to the quick budget (~1,200 steps), fixed before any result (study-protocols.md §12).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pandas as pd

from ..analysis.claims import ASH_ADAMS, LEE, RESCIENCE, SHIN, Claim, ClaimResult
from ..analysis.estimates import Share, improvement_share, share_over_conditions, share_test
from ..analysis.stats import Test, bound_test, difference_test
from ..core.config import ConfigError, range_of, ranged
from ..measures.metric_settings import METRIC_DEFINITIONS, MetricSettings
from ..remedies.cbp import ContinualBackpropSettings
from ..remedies.dash import Dash
from ..remedies.l2_init import L2Init
from ..remedies.redo import ReDo
from ..remedies.shrink_perturb import ShrinkPerturb
from ..run.remedy import REGISTRY, Budget, remedy_type
from . import resets
from .study_config import Plan, WarmStartConfig, check_sweep, presets
from .study_result import CLOSED_THREAT, StudyResult

NONE = "none"
REGULARISERS = ("augment", "weight_decay")  # not remedies of the registry: both arms train with them
# The built-in remedies (their PLACEMENT: shrink-and-perturb and DASH once before tuning, the trainability
# remedies in both phases), then the regularisers: every condition of the presets. A remedy registered later
# (run/remedy.py) is a condition too, named in `remedies`, with its class's default settings.
BUILTIN_CONDITIONS = ("shrink_perturb", "dash", "l2_init", "redo", "cbp", *REGULARISERS)
# The sources' own values, at every preset; weight decay 5e-4 is the usual ResNet/CIFAR value.
SOURCE_VALUES = dict(sp_shrink=0.6, sp_perturb=0.01, dash_alpha=0.3, dash_shrink_floor=0.3, l2_init_coefficient=1e-2,
                     redo_tau=0.1, regulariser_weight_decay=5e-4)
METRICS = tuple(METRIC_DEFINITIONS)
# What the runs record at the start of tuning: the gradient imbalance, then every metric before the first step
# (C15's candidates, notebook 11).
START_METRICS = ("grad_ratio", *(f"start_{m}" for m in METRICS))


def trainability_claim(claim: str, name: str) -> Claim:
    """Lee et al.'s statement about one remedy that keeps a network trainable (C13a-c)."""
    return Claim(claim, "10_remedies", f"{name} does little for the warm-start gap",
                 f"Methods that keep a network trainable ({name} among them) do little for generalisation after a "
                 "warm start (Lee et al. 2024).",
                 f"reduction = gap(none) - gap({name} in both phases); bound: below the preset's smallest effect of "
                 "interest (`smallest_effect`)", source=LEE)


# The claims this notebook tests (the registry: studies.claim_registry); C15 over every remedy is notebook 11's.
SHRINK_PERTURB_CLOSES = Claim(
    "C11", "10_remedies", "shrink-and-perturb before tuning closes the warm-start gap",
    "Shrink-and-perturb (lambda 0.6, sigma 0.01 at its sweet spot) recovers from-scratch generalisation while "
    "keeping most of warm-starting's speed (Ash & Adams 2020, Fig. 8; their Table 1 gap: 78.0 scratch vs 74.4 "
    "warm, ResNet-18 + Adam, CIFAR-10 at full scale).",
    "remaining gap = scratch - warm with shrink-and-perturb at the start of tuning; equivalence (TOST) within "
    "+/- the preset's margin", source=ASH_ADAMS)
DASH_CLOSES = Claim(
    "C12", "10_remedies", "DASH before tuning closes the warm-start gap",
    "DASH beats warm start, shrink-and-perturb and cold start in test accuracy (Shin et al. 2024, Table 1; "
    "numbers not quoted: we cannot read them in our sources).",
    "remaining gap = scratch - warm with DASH at the start of tuning; equivalence (TOST) within +/- the margin",
    source=SHIN)
DASH_BEATS_SCRATCH = Claim(
    "C12b", "10_remedies", "DASH before tuning generalises better than training from scratch",
    "DASH beats warm start, shrink-and-perturb and cold start in test accuracy (Shin et al. 2024, Table 1). "
    "Added after seeing C12's result (DASH above scratch, so 'not equivalent'): this is their own statement.",
    "warm with DASH - scratch test accuracy (the negative remaining gap); difference test", source=SHIN,
    fixed="2026-11-26")
# Lee et al.'s statements, one per trainability remedy
TRAINABILITY_CLAIMS = {remedy: trainability_claim(claim, name) for remedy, claim, name in (
    ("l2_init", "C13a", "L2 Init"), ("redo", "C13b", "ReDo"), ("cbp", "C13c", "continual backprop"))}
AUGMENTATION_SHRINKS = Claim(
    "C14a", "10_remedies", "data augmentation shrinks the warm-start gap",
    "With standard augmentation the warm-start gap shrinks (ReScience reproduction of Ash & Adams, Kireev "
    "2021); re-initialisation helps little once augmentation is used (Zaidi et al. 2022).",
    "gap(no augmentation) - gap(augmentation, both arms augmented); difference test", source=RESCIENCE)
WEIGHT_DECAY_FALLS_SHORT = Claim(
    "C14b", "10_remedies", "weight decay does not close the warm-start gap",
    "No ordinary knob, L2 regularisation included, closes the gap (Ash & Adams 2020).",
    "gap with weight decay in both arms; difference test", source=ASH_ADAMS)
CLAIMS = (SHRINK_PERTURB_CLOSES, DASH_CLOSES, DASH_BEATS_SCRATCH, *TRAINABILITY_CLAIMS.values(), AUGMENTATION_SHRINKS,
          WEIGHT_DECAY_FALLS_SHORT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    # Every remedy's hyperparameters are checked (against their settings' ranges) whether or not it is swept.
    # conditions besides "none": registered remedies (run/remedy.py) and the regularisers
    remedies: tuple[str, ...] = ranged()
    sp_shrink: float = range_of(ShrinkPerturb, "shrink")  # shrink-and-perturb lambda (Ash & Adams Fig. 8: 0.6)
    sp_perturb: float = range_of(ShrinkPerturb, "perturb")  # shrink-and-perturb sigma (Fig. 8: 0.01)
    dash_alpha: float = range_of(Dash, "alpha")  # DASH moving-average weight (Shin et al.: 0.3)
    dash_shrink_floor: float = range_of(Dash, "shrink_floor")  # DASH lambda, the smallest shrink (Shin et al.: 0.3)
    l2_init_coefficient: float = range_of(L2Init, "coefficient")  # L2 Init lambda (Kumar et al.: 1e-2 best)
    redo_tau: float = range_of(ReDo, "tau")  # ReDo dormancy threshold (Sokar et al.: 0.1)
    redo_every: int = range_of(ReDo, "every")  # steps between ReDo resets
    # continual backprop rho: units replaced per mature unit and step
    cbp_replacement_rate: float = range_of(ContinualBackpropSettings, "replacement_rate")
    # continual backprop m: steps before a unit may be replaced
    cbp_maturity: int = range_of(ContinualBackpropSettings, "maturity_threshold")
    # the weight_decay condition's L2 coefficient (both arms; 0 would repeat the plain warm start)
    regulariser_weight_decay: float = ranged(gt=0)
    # train accuracy (%) whose first tuning step is reported per arm
    speed_target_acc: float = range_of(resets.Config, "speed_target_acc")

    CONDITIONS = ("remedy",)
    PRESETS = presets(
        # smoke: one remedy of each kind (the test suite runs it; tests/test_remedy_runs.py covers every remedy)
        smoke=dict(pretrain_epochs=2, remedies=["shrink_perturb", "l2_init", "augment"], **SOURCE_VALUES,
                   redo_every=5, cbp_replacement_rate=1e-3, cbp_maturity=5, speed_target_acc=20.0),
        # quick: ~195 pretraining + 975 tuning steps; ReDo every 200 steps (~5 tuning epochs), continual backprop
        # at rho 1e-4, m 100 (the sources' ranges: rho 1e-6..1e-4, m 100..10k).
        quick=dict(pretrain_epochs=10, remedies=list(BUILTIN_CONDITIONS), **SOURCE_VALUES, redo_every=200,
                   cbp_replacement_rate=1e-4, cbp_maturity=100, speed_target_acc=90.0),
        paper=dict(pretrain_epochs=350, remedies=list(BUILTIN_CONDITIONS), **SOURCE_VALUES, redo_every=1000,
                   cbp_replacement_rate=1e-5, cbp_maturity=1000, speed_target_acc=99.0))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("remedies", self.remedies)
        unknown = [r for r in self.remedies if r not in REGISTRY and r not in REGULARISERS]
        if unknown:
            raise ConfigError(f"remedies has {unknown[0]!r}, which is neither a registered remedy "
                              f"({', '.join(REGISTRY)}) nor a regulariser ({', '.join(REGULARISERS)}); register "
                              "your own with plasticity_nb.run.remedy.register")

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for remedy in (NONE, *self.remedies):
            warm, scratch = self.arms(remedy)
            plan += self.pairs(dict(remedy=remedy), lambda s: self.warm(s, data_id, **warm),
                               lambda s: self.scratch(s, data_id, **scratch))
        return plan

    def arms(self, remedy: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes `remedy` makes to the warm and to the scratch run (`warm()`/`scratch()` keywords)."""
        run = dict(metrics=MetricSettings())
        settings = self.settings(remedy)
        if remedy in REGISTRY and settings.PLACEMENT == "tuning start":
            return dict(tune={"remedies": (settings,)}, **run), run
        if remedy in REGISTRY:
            return dict(pretrain={"remedies": (settings,)}, tune={"remedies": (settings,)}, **run), run
        if remedy in REGULARISERS:
            run = {**run, **settings}
        return run, run

    def settings(self, remedy: str) -> Any:
        """The remedy's settings from this config's hyperparameters (a registered remedy of no hyperparameter
        here: its class's settings for this budget, `for_budget`; a run-field dict for the regularisers)."""
        own = {
            "shrink_perturb": lambda: ShrinkPerturb(shrink=self.sp_shrink, perturb=self.sp_perturb),
            "dash": lambda: Dash(alpha=self.dash_alpha, shrink_floor=self.dash_shrink_floor),
            "l2_init": lambda: L2Init(coefficient=self.l2_init_coefficient),
            "redo": lambda: ReDo(tau=self.redo_tau, every=self.redo_every),
            "cbp": lambda: ContinualBackpropSettings(replacement_rate=self.cbp_replacement_rate,
                                                     maturity_threshold=self.cbp_maturity),
            "augment": lambda: dict(augment=True),
            "weight_decay": lambda: dict(weight_decay=self.regulariser_weight_decay),
            NONE: lambda: {},
        }
        return own[remedy]() if remedy in own else remedy_type(remedy).for_budget(self.tuning_budget())

    def tuning_budget(self) -> Budget:
        """The tuning phase's size, for a remedy's own scaling rule (`Remedy.for_budget`)."""
        steps_per_epoch = self.train_subset // self.batch_size
        return Budget(steps_per_epoch=steps_per_epoch, task_steps=self.tune_epochs * steps_per_epoch)


def tuned(result: StudyResult) -> pd.DataFrame:
    """History rows of the tuning phase, with `tune_step`: steps since tuning began (scratch: since step 0)."""
    keys = ["remedy", "seed", "arm"]
    h = result.history
    began = h[h.tune_epoch <= 0].groupby(keys).step.max().rename("tuning_from").reset_index()
    rows = h[h.tune_epoch >= 1].merge(began, on=keys, how="left").fillna({"tuning_from": 0})
    return rows.assign(tune_step=rows.step - rows.tuning_from)


def remedy_table(result: StudyResult, config: Config) -> pd.DataFrame:
    """Per condition: the gap to scratch with its CI and its equivalence verdict, each arm's fit, the warm run's
    median tuning-epoch wall time relative to the plain warm start's (`overhead_pct`), and tuning steps until the
    train accuracy first reaches the target."""
    rows = tuned(result)
    # The median epoch is robust to a process's warm-up and to other work on the machine; it leaves out the
    # one-off cost at the phase start (shrink-and-perturb, DASH's pass over the half) and evaluation epochs.
    seconds = rows.groupby(["remedy", "arm", "seed"]).seconds.median().groupby(["remedy", "arm"]).mean()
    reached = rows[rows.train_acc >= config.speed_target_acc].groupby(["remedy", "arm", "seed"]).tune_step.min()
    table = []
    for remedy in (NONE, *config.remedies):
        gap = result.gap_test(remedy=remedy)
        same = result.gap_equivalence(config.equivalence_margin, remedy=remedy)
        steps = reached.get(remedy, pd.Series(dtype=float))
        table.append(dict(remedy=remedy, gap_pp=gap.estimate.mean, ci_low=gap.estimate.ci_low,
                          ci_high=gap.estimate.ci_high, equivalence=same.verdict,
                          warm_train_acc=result.fit("warm", remedy=remedy),
                          scratch_train_acc=result.fit("scratch", remedy=remedy),
                          premise=result.premise(config.premise_rule(), remedy=remedy).state,
                          overhead_pct=100 * (seconds[(remedy, "warm")] / seconds[(NONE, "warm")] - 1),
                          warm_steps_to_target=steps.get("warm", pd.Series(dtype=float)).mean(),
                          seeds_reaching=int(steps.get("warm", pd.Series(dtype=float)).count())))
    return pd.DataFrame(table)


def improvement(result: StudyResult, remedy: str) -> Test:
    """The share of seeds whose gap `remedy` reduces (gap(none) - gap(remedy) > 0), with its exact interval: an
    estimate reported beside the remedy's claim."""
    return share_test(improvement_share(result.gap_change("remedy", NONE, remedy)),
                      f"share of seeds with gap(none) - gap({remedy}) > 0")


IMPROVEMENT_COLUMNS = ["remedy", "improved", "trials", "ties", "missing", "repeated", "share", "ci_low", "ci_high",
                       "ci_level", "notebooks", "method"]


def improvement_table(results: Mapping[str, StudyResult]) -> pd.DataFrame:
    """Per remedy, over every remedy study in `results` (notebook stem -> its StudyResult; a study without a
    `remedy` condition is left out): the (condition, seed) trials whose gap it reduced (`improved`), of `trials`,
    with the exact interval of the share (estimates.share_over_conditions: approximate, since the conditions of a
    study share seeds). `ties`: trials at exactly 0, not improved; `missing`: reductions that are not finite, not
    trials; `repeated`: trials another notebook of `results` already counted (the same four runs: the remedy's
    and the plain warm start's, warm and scratch), counted once."""
    shares: dict[str, list[Share]] = {}
    notebooks: dict[str, list[str]] = {}
    repeated: dict[str, int] = {}
    seen: set[tuple[str, ...]] = set()
    for stem, result in results.items():
        if "remedy" not in result.conditions:
            continue
        for remedy in dict.fromkeys(r for r in result.gaps.remedy if r != NONE):
            runs, reductions = trial_runs(result, remedy), result.gap_change("remedy", NONE, remedy)
            fresh = [seed for seed in reductions.index if runs.get(seed) not in seen]
            seen |= set(runs.values())
            repeated[remedy] = repeated.get(remedy, 0) + len(reductions) - len(fresh)
            if fresh:
                shares.setdefault(remedy, []).append(improvement_share(reductions.loc[fresh]))
                notebooks.setdefault(remedy, []).append(f"{stem} ({len(fresh)} seeds)")
    rows = []
    for remedy, parts in shares.items():
        share = share_over_conditions(parts)
        rows.append(dict(remedy=remedy, improved=share.successes, trials=share.trials, ties=share.ties,
                         missing=share.missing, repeated=repeated[remedy], share=share.share, ci_low=share.ci_low,
                         ci_high=share.ci_high, ci_level=share.confidence, notebooks="; ".join(notebooks[remedy]),
                         method=share.method))
    return pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS)


def trial_runs(result: StudyResult, remedy: str) -> dict[int, tuple[str, ...]]:
    """Per seed: what one trial of `remedy` compares, the keys of its runs and the plain warm start's pair."""
    rows = result.summary[result.summary.remedy.isin([NONE, remedy])]
    return {int(seed): (remedy, *sorted(keys)) for seed, keys in rows.groupby("seed").key}


def metric_curves(result: StudyResult) -> pd.DataFrame:
    """Long table of the plasticity metrics at each evaluation: remedy, arm, seed, tune_epoch, metric, value."""
    h = result.history.dropna(subset=["effective_rank"])
    return h.melt(id_vars=["remedy", "arm", "seed", "tune_epoch"], value_vars=list(METRICS), var_name="metric")


def start_of_tuning(result: StudyResult) -> pd.DataFrame:
    """Per warm-started run: the start-of-tuning metrics and the run's gap to its scratch pair (pp)."""
    h = result.history
    first = h[(h.arm == "warm") & (h.tune_epoch == 1)].set_index(["remedy", "seed"])[list(START_METRICS)]
    gaps = result.gaps.set_index(["remedy", "seed"]).gap_pp
    return first.join(gaps).reset_index()


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C11-C14 for each remedy in the sweep (C15, over every remedy, is notebook 11's); beside each, the share of
    seeds whose gap the remedy reduces (`improvement`)."""
    rule, found = config.premise_rule(), []
    margin = config.equivalence_margin
    for remedy, claim in (("shrink_perturb", SHRINK_PERTURB_CLOSES), ("dash", DASH_CLOSES)):
        if remedy in config.remedies:
            closes = result.gap_equivalence(margin, remedy=remedy)
            closed = result.premise(rule, threat=CLOSED_THREAT, remedy=remedy)
            found.append(ClaimResult(claim, (closes,), closed,
                                     (result.gap_test(remedy=remedy), improvement(result, remedy))))
    if "dash" in config.remedies:  # C12b: Shin et al.'s own statement, added after C12's result (declared above)
        beats = difference_test(-result.gap_series(remedy="dash"), "warm with DASH - scratch")
        beats_premise = result.premise(rule, threat=CLOSED_THREAT, remedy="dash")
        found.append(ClaimResult(DASH_BEATS_SCRATCH, (beats,), beats_premise, (improvement(result, "dash"),)))
    for remedy, claim in TRAINABILITY_CLAIMS.items():
        if remedy in config.remedies:  # "does little": the gap it removes is below the smallest effect that matters
            little = bound_test(result.gap_change("remedy", NONE, remedy), config.smallest_effect,
                                f"gap(none) - gap({remedy})")
            premise = result.reduction_premise(rule, "remedy", NONE, remedy, fewer=True)
            found.append(ClaimResult(claim, (little,), premise,
                                     (result.gap_test(remedy=remedy), result.gap_equivalence(margin, remedy=remedy),
                                      improvement(result, remedy))))
    if "augment" in config.remedies:
        shrinks = difference_test(result.gap_change("remedy", NONE, "augment"), "gap(none) - gap(augment)")
        found.append(ClaimResult(AUGMENTATION_SHRINKS, (shrinks,),
                                 result.reduction_premise(rule, "remedy", NONE, "augment"),
                                 (result.gap_equivalence(margin, remedy="augment"), improvement(result, "augment"))))
    if "weight_decay" in config.remedies:
        found.append(ClaimResult(WEIGHT_DECAY_FALLS_SHORT, (result.gap_test(remedy="weight_decay"),),
                                 result.premise(rule, remedy="weight_decay"), (improvement(result, "weight_decay"),)))
    return found
