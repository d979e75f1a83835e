"""A study's runs compared: each condition's gap (scratch - warm, in percentage points, positive = warm-starting
hurts) paired by seed and summarised by its mean and 95% t CI beside each arm's fit and the premise. The metric
is the mean test accuracy over the last `last_k` epochs of a run.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis.estimates import gap_at_equal_fit
from ..analysis.premises import TARGET_PROTOCOL, Premise, PremiseRule, RunFitRule
from ..analysis.stats import ESTIMATE, Estimate, Test, difference_test, equivalence_test, paired_estimate
from ..run.run_config import Phase
from .study_config import ARMS

if TYPE_CHECKING:
    from ..execution.store import RunRecord  # the runs it compares; read by attribute only

GAP_THREAT = ("scratch", "warm")  # scratch fitting more than warm could fake a gap (premises.py)
CLOSED_THREAT = ("warm", "scratch")  # the warm-side arm fitting more could fake a closed gap, or warm beating scratch


@dataclasses.dataclass
class StudyResult:
    """Tidy tables of a study, as pandas DataFrames; accuracies in percent."""

    history: pd.DataFrame  # one row per run and epoch: labels, phase, epoch, tune_epoch, accuracies...
    probes: pd.DataFrame  # one row per run and curvature/noise probe (empty unless the study probes)
    summary: pd.DataFrame  # one row per run: labels, status, test accuracy and train accuracy over the window, key
    gaps: pd.DataFrame  # one row per condition and seed: scratch, warm, gap_pp
    estimates: pd.DataFrame  # one row per condition: mean gap, 95% CI, n_seeds, verdict, each arm's fit, premise
    conditions: tuple[str, ...]  # the condition columns
    last_k: int

    def gap_series(self, **condition: Any) -> pd.Series:
        """Per seed: the gap (scratch - warm, points) of one condition (all rows when the study has none)."""
        return select(self.gaps, condition).set_index("seed").gap_pp

    def gap_estimate(self, **condition: Any) -> Estimate:
        """The paired gap estimate of one condition (all rows when the study has none)."""
        return paired_estimate(self.gap_series(**condition))

    def gap_test(self, **condition: Any) -> Test:
        """Is the condition's gap above 0? (the difference test, labelled with the condition)"""
        return difference_test(self.gap_series(**condition), describe(condition))

    def gap_equivalence(self, margin: float, **condition: Any) -> Test:
        """Is the condition's gap within +/- margin points of 0? (paired TOST)"""
        return equivalence_test(self.gap_series(**condition), margin, describe(condition))

    def gap_change(self, column: str, larger: Any, smaller: Any, **fixed: Any) -> pd.Series:
        """Per seed: gap(column=larger) - gap(column=smaller), other conditions held at `fixed`."""
        return self.gap_series(**{column: larger, **fixed}) - self.gap_series(**{column: smaller, **fixed})

    def arm_series(self, arm: str, metric: str = "final_test_acc", **condition: Any) -> pd.Series:
        """Per seed: one arm's `metric` under one condition."""
        rows = select(self.summary, condition)
        return rows[rows.arm == arm].set_index("seed")[metric]

    def fit(self, arm: str, **condition: Any) -> float:
        """One arm's train accuracy (%) over the metric window, mean over seeds (NaN if any run diverged)."""
        return float(self.fits(arm, **condition).mean(skipna=False))

    def fits(self, arm: str, **condition: Any) -> pd.Series:
        """One arm's train accuracy (%) over the metric window, per seed (NaN where a run diverged)."""
        return self.arm_series(arm, "window_train_acc", **condition)

    def capped(self, arm: str, **condition: Any) -> pd.Series:
        """Per seed: whether one arm's run hit its cap below its target (False under a fixed budget)."""
        return self.arm_series(arm, "capped", **condition)

    def premise(self, rule: PremiseRule | RunFitRule, *, threat: tuple[str, str] | None = GAP_THREAT,
                **condition: Any) -> Premise:
        """Do warm and scratch both fit under `condition` (every condition when none is given)? Under a per-run
        rule, `threat` names the arm whose fitting more than the other could fake the claim (premises.py)."""
        if condition or not self.conditions:
            return self.arms_premise(rule, {arm: (arm, condition) for arm in ARMS}, describe(condition), threat)
        keys = self.gaps[list(self.conditions)].drop_duplicates().to_dict("records")
        return Premise.all_of([self.premise(rule, threat=threat, **key) for key in keys])

    def reduction_premise(self, rule: PremiseRule | RunFitRule, column: str, base: Any, changed: Any,
                          fewer: bool = False) -> Premise:
        """The premise of a reduction of the gap, gap(column=base) - gap(column=changed): each condition's runs
        (their caps), and under a per-run rule the changed warm arm fitting more than the base one, which could fake
        it (`fewer`: fitting less, for a bound that it does little); under a fixed budget, each condition's own."""
        if not isinstance(rule, RunFitRule):
            return Premise.all_of([self.premise(rule, **{column: v}) for v in (base, changed)])
        own = Premise.all_of([self.premise(rule, threat=None, **{column: v}) for v in (base, changed)])
        arms = {f"warm {column}={v}": ("warm", {column: v}) for v in (changed, base)}
        names = tuple(arms)
        threat = names[::-1] if fewer else names
        return Premise.all_of([own, self.arms_premise(rule, arms, f"{column}={changed} against {base}", threat)])

    def arms_premise(self, rule: PremiseRule | RunFitRule, arms: dict[str, tuple[str, dict[str, Any]]], where: str,
                     threat: tuple[str, str] | None = None) -> Premise:
        """The premise over arms of different conditions, each named: name -> (arm, condition)."""
        fits = {name: self.fits(arm, **condition) for name, (arm, condition) in arms.items()}
        capped = {name: self.capped(arm, **condition) for name, (arm, condition) in arms.items()}
        return rule.check(fits, where, capped, threat)

    def fit_tests(self, premise: Premise, **condition: Any) -> tuple[Test, ...]:
        """Beside a gap claim whose runs trained to a target (intention-to-treat, every pair, is its primary): the
        gap over the seeds its premise did not flag (per protocol), and the gap at equal fit (each seed's gap
        regressed on its arms' fit difference, scratch minus warm). None under a fixed budget."""
        if premise.protocol != TARGET_PROTOCOL:
            return ()
        gaps = self.gap_series(**condition)
        kept = gaps.drop([s for s in premise.flagged if s in gaps.index])
        equal_fit = gap_at_equal_fit(gaps, self.fits("scratch", **condition) - self.fits("warm", **condition))
        tests = [Test("estimate", equal_fit, ESTIMATE, float("nan"), label="gap at equal fit")]
        if len(kept) >= 2:
            flagged = len(gaps) - len(kept)
            tests.insert(0, difference_test(kept, f"per protocol ({flagged} flagged seed(s) left out)"))
        return tuple(tests)

    def where(self, column: str, values: list[Any]) -> StudyResult:
        """The result of only the runs whose `column` is one of `values` (e.g. some of a sweep's conditions)."""
        def keep(table: pd.DataFrame) -> pd.DataFrame:
            return table[table[column].isin(values)] if column in table else table  # probes may be empty

        return dataclasses.replace(self, **{name: keep(getattr(self, name))
                                            for name in ("history", "probes", "summary", "gaps", "estimates")})

    @property
    def estimate(self) -> Estimate:
        if self.conditions:
            raise AttributeError("this study has conditions: use gap_estimate(**condition) or estimates")
        return self.gap_estimate()


def select(table: pd.DataFrame, condition: dict[str, Any]) -> pd.DataFrame:
    for column, value in condition.items():
        table = table[table[column] == value]
    return table


def describe(condition: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in condition.items()) or "all runs"


def compare(records: list[RunRecord], labels: list[dict[str, Any]], last_k: int,
            conditions: tuple[str, ...] = (), rule: PremiseRule | RunFitRule | None = None,
            summary: str = "mean") -> StudyResult:
    """Tidy tables of the runs, and one row per condition: the gap's estimate beside each arm's accuracies
    and (given the preset's `rule`) whether the premise holds, so a gap between an under-trained and a
    fitted arm is never read alone."""
    runs = list(zip(records, labels))
    history = pd.concat([tidy_history(record, label) for record, label in runs], ignore_index=True)
    probes = pd.concat([tidy(record, record.probes, label) for record, label in runs], ignore_index=True)
    per_run = pd.DataFrame([{**label, **final_metrics(record, last_k, summary)} for record, label in runs])
    result = StudyResult(history, probes, per_run, paired_gaps(per_run, conditions), pd.DataFrame(), conditions,
                         last_k)
    rows = []
    for key in (result.gaps[list(conditions)].drop_duplicates().to_dict("records") if conditions else [{}]):
        estimate = result.gap_estimate(**key)
        arms = {f"{arm}_{what}": float(result.arm_series(arm, metric, **key).mean())
                for arm in ARMS for what, metric in (("test_acc", "final_test_acc"), ("train_acc", "window_train_acc"))}
        premise = {"premise": result.premise(rule, **key).state} if rule else {}
        rows.append({**key, "effect_pp": estimate.mean, "ci_low_pp": estimate.ci_low, "ci_high_pp": estimate.ci_high,
                     "n_seeds": estimate.n, "n_missing": estimate.missing, "verdict": estimate.verdict,
                     **arms, "capped_runs": int(select(per_run, key).capped.sum()), **premise})
    result.estimates = pd.DataFrame(rows)
    return result


def tidy_history(record: RunRecord, labels: dict[str, Any]) -> pd.DataFrame:
    h = tidy(record, record.history, labels)
    for column in ("train_acc", "test_acc"):
        h[column] = 100 * h[column]
    return h


def tidy(record: RunRecord, table: pd.DataFrame, labels: dict[str, Any]) -> pd.DataFrame:
    """`table` (history or probes) with the run's labels and status, and `tune_epoch`: epochs into the
    run's last phase (1 = its first epoch, 0 = just before it, pretraining <= 0)."""
    if table.empty:
        return pd.DataFrame()
    h = record.history
    before = h.loc[h.phase < h.phase.max(), "epoch"]
    out = table.assign(tune_epoch=table.epoch - (before.max() if len(before) else 0), status=record.status, **labels)
    return out[[*labels, "status", *table.columns, "tune_epoch"]]


def final_metrics(record: RunRecord, last_k: int, summary: str = "mean") -> dict[str, Any]:
    """The paper's metric, mean test accuracy (%) over the last `last_k` epochs of the final phase; and the
    premise's, mean train accuracy (%) over the same window (`summary` "median": both the window's median, robust to
    one of Adam's spike epochs); the last epoch's train accuracy beside them; and whether a phase with a target hit
    its cap below it (`Phase.reached_at`)."""
    h = record.history
    tuned = h[h.phase == h.phase.max()]
    window = tuned.tail(last_k)
    finished = record.status == "finished"
    return {
        "status": record.status,
        "capped": capped(record.config.phases[-1], tuned) if record.config else False,
        "final_test_acc": 100 * window.test_acc.agg(summary) if finished else float("nan"),
        "window_train_acc": 100 * window.train_acc.agg(summary) if finished else float("nan"),
        "final_train_acc": 100 * h.train_acc.iloc[-1] if finished else float("nan"),
        "key": record.key,
    }


def capped(phase: Phase, tuned: pd.DataFrame) -> bool:
    """Whether a phase with a target hit its cap below it (a fixed budget never does)."""
    return phase.target_train_acc is not None and phase.reached_at(list(tuned.train_acc)) is None


def paired_gaps(summary: pd.DataFrame, conditions: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per condition and seed: scratch and warm final test accuracy and their gap (pp)."""
    wide = summary.pivot_table(index=[*conditions, "seed"], columns="arm", values="final_test_acc",
                               dropna=False, sort=False)
    present = set(summary[[*conditions, "seed"]].itertuples(index=False, name=None))
    # dropna=False also makes combinations no run has (in a grid that is not a product of its conditions)
    wide = wide[[(k if isinstance(k, tuple) else (k,)) in present for k in wide.index]]
    wide = wide.reindex(columns=list(ARMS)).reset_index()
    wide.columns.name = None
    wide["gap_pp"] = wide.scratch - wide.warm
    return wide
