"""The premise of every warm-vs-scratch comparison: both arms fit their training data, equally well.

Berariu et al. compare arms that both reach 100 % train accuracy; a gap between a fitted and an unfitted
arm is a budget artefact, not plasticity. Fit is measured as an arm's train accuracy over the run's
metric window (the last `last_k` epochs of its final phase; the running accuracy of each training epoch,
so no extra pass), per seed: a window, not the last epoch, because Adam with BatchNorm has short loss
spikes. Each preset states its rule (`StudyConfig.premise_rule`).

The rule states its own uncertainty: from a few seeds the mean fit is an estimate, so an arm *fits* when the
one-sided 95 % lower t bound of its mean train accuracy reaches the floor, *does not fit* when the upper bound
is below it, and the premise is *uncertain* in between (a claim's verdict is then "premise uncertain": not
resolved, never a verdict on a threshold crossed by chance). The arms' difference is judged the same way, on
the per-seed difference of their fits against +/- the bound. Seeds whose fits all tie give a point interval:
train accuracy varies only across seeds, so there is no other uncertainty to state.

Under train-to-target (`StudyConfig.budget` "target", registered 2026-12-06) every tuning phase trains until its
train accuracy reaches the target, so fit holds by construction, run by run, and the premise is `RunFitRule`:
a per-run check of what could fake the claim, in the direction that could. Each seed is *flagged* when one of
its runs hit the cap below the target or diverged, or when its threatening arm fits more than `bound` points
more than the other; the claim is void (premise not met) when more than `MAX_FLAGGED_SHARE` of its seeds are
flagged. Which arm threatens which claim:
- a gap above 0 (C1-C4, C6, C7b, C8's remaining gaps, C14b): scratch fitting more than warm inflates the gap;
- a gap closed or equivalent within a margin (C7a, C11, C12) and a warm-side arm beating scratch (C12b): the
  warm-side arm fitting more than scratch shrinks the gap toward 0 or past it;
- a remedy's or a knob's reduction of the gap (C8a/b's reduction, C14a, C16a-e): the remedied warm arm fitting
  more than the plain warm arm; a bound on the reduction (C13a-c: "does little"): the remedied arm fitting less;
- a growth of the gap across conditions (C5a/b, C17a/b as estimates): each condition's own gap premise (scratch
  over warm), since either end's warm arm fitting less inflates its gap;
- a speed bound (C7c) and the measurements of notebook 09 (C9, C10): the cap and divergence flags only.
No interval on a mean fit enters, so tied fits give no false certainty: a tie is simply not a flag. The
intention-to-treat estimate (all pairs) is primary; the per-protocol one (unflagged seeds) and the gap at equal
fit are reported beside it (study_result.py).

Planning (fixed before the confirmation runs of `run --settle`). A claim's premise needs every arm it checks to
pass, so its chance of passing falls with the number of arms: `pass_chance` is that chance for arms that truly
fit by `PLANNING_MARGIN_SD` per-seed SDs above the floor (the floor's one-sided t test is a noncentral t: exact,
not simulated). A claim's planned last look should give at least `WANTED_PASS`; `seeds_to_pass` says where that
is. Arms are counted per condition (`Premise.arms`), so a scratch arm shared by several conditions is counted
each time: the chance stated is a lower bound.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit
from scipy.stats import nct

MET, NOT_MET, UNCERTAIN = "met", "not met", "uncertain"
LEVEL = 0.05  # each one-sided bound's level
PLANNING_MARGIN_SD = 1.0  # an arm that truly fits, for planning: its mean fit this many per-seed SDs above the floor
WANTED_PASS = 0.9  # the chance a claim's truly fitting arms should have of passing at its planned last look
# train-to-target: a claim is void when more than this share of its seeds are flagged (one of 3-5 seeds, two of
# 6-8, five of 15-17). At the fit pilot's flag rate (2 of 13 seeds, Adam's dips after the fit) a third voids a claim
# with no true fit problem 3-11 % of the time at 3-16 seeds (claims registry, 2026-12-06)
MAX_FLAGGED_SHARE = 1 / 3
TARGET_PROTOCOL = "train to target"  # a premise's `protocol` when its runs trained to a target (RunFitRule)


@dataclasses.dataclass(frozen=True)
class Premise:
    """Whether a comparison's premise holds, and why: otherwise it names the condition, arm and accuracy."""

    met: bool
    detail: str
    uncertain: bool = False  # neither met nor clearly failed (then `met` is False)
    arms: int = 0  # arms whose floor was checked, summed over conditions (0: a premise on something else)
    flagged: tuple[int, ...] = ()  # train-to-target: the seeds a per-run check flagged (per-protocol leaves them out)
    # how the runs were trained: "" a fixed budget, TARGET_PROTOCOL to a target (the registry's changes apply by it)
    protocol: str = ""

    @property
    def state(self) -> str:
        return MET if self.met else UNCERTAIN if self.uncertain else NOT_MET

    @classmethod
    def all_of(cls, premises: Sequence["Premise"]) -> "Premise":
        flagged = tuple(sorted({s for p in premises for s in p.flagged}))
        common = dict(arms=sum(p.arms for p in premises), flagged=flagged,
                      protocol=max((p.protocol for p in premises), default=""))
        failed = [p.detail for p in premises if p.state == NOT_MET]
        if failed:
            return cls(False, "; ".join(failed), **common)
        unsure = [p.detail for p in premises if p.state == UNCERTAIN]
        if unsure:
            return cls(False, "; ".join(unsure), uncertain=True, **common)
        return cls(True, "; ".join(dict.fromkeys(p.detail for p in premises)), **common)


def bounds(values: np.ndarray, lowest: float, highest: float) -> tuple[float, float, float]:
    """Mean and its one-sided 95 % lower and upper t bounds (the mean itself with one value or no spread), kept
    within the quantity's own range (an accuracy lies in 0-100 %), so that an open gate stays open."""
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stdtrit(len(values) - 1, 1 - LEVEL)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, max(lowest, mean - half), min(highest, mean + half)


@dataclasses.dataclass(frozen=True)
class PremiseRule:
    min_train_acc: float  # each arm's mean train accuracy (%) over the metric window must reach this
    max_difference: float  # and the arms' accuracies may differ by at most this many points

    def check(self, fits: Mapping[str, Sequence[float]], where: str, capped: Mapping[str, pd.Series] | None = None,
              threat: tuple[str, str] | None = None) -> Premise:
        """`fits`: arm -> its train accuracy (%) over the metric window, per seed (a pandas Series indexed by
        seed pairs the arms); `where` names the condition. A fixed budget has no cap and judges the arms'
        difference both ways, so `capped` and `threat` (RunFitRule's) change nothing here."""
        arms = {arm: np.asarray(values, dtype=float) for arm, values in fits.items()}
        diverged = [f"{where}: {arm} arm diverged in a seed (no train accuracy)"
                    for arm, acc in arms.items() if not np.isfinite(acc).all() or not len(acc)]
        if diverged:
            return Premise(False, "; ".join(diverged), arms=len(arms))
        floor = {arm: self.floor(arm, acc, where) for arm, acc in arms.items()}
        return dataclasses.replace(Premise.all_of([*floor.values(), self.spread(fits, where)]), arms=len(arms))

    def floor(self, arm: str, acc: np.ndarray, where: str) -> Premise:
        mean, low, high = bounds(acc, 0.0, 100.0)
        said = f"{arm} arm fits {mean:.1f} % of its training pool (one-sided 95 % bounds {low:.1f} to {high:.1f}, " \
               f"floor {self.min_train_acc:g} %, {len(acc)} seeds)"
        if low >= self.min_train_acc:
            return Premise(True, f"every arm's train accuracy >= {self.min_train_acc:g} % (lower 95 % bound), "
                                 f"arms within {self.max_difference:g} pp")
        if high < self.min_train_acc:
            return Premise(False, f"{where}: {arm} arm fits only {mean:.1f} % of its training pool (upper 95 % "
                                  f"bound {high:.1f}, floor {self.min_train_acc:g} %)")
        return Premise(False, f"{where}: uncertain whether the {said}", uncertain=True)

    def spread(self, fits: Mapping[str, Sequence[float]], where: str) -> Premise:
        """The arms' per-seed difference in fit (largest minus smallest arm by mean) within +/- the bound?"""
        means = {arm: float(np.mean(np.asarray(v, dtype=float))) for arm, v in fits.items()}
        high_arm, low_arm = max(means, key=means.get), min(means, key=means.get)
        difference = pd.Series(fits[high_arm], dtype=float) - pd.Series(fits[low_arm], dtype=float)  # paired by seed
        mean, low, high = bounds(difference.to_numpy(), -100.0, 100.0)
        arms = ", ".join(f"{arm} {acc:.1f} %" for arm, acc in means.items())
        said = f"({arms}: {mean:.1f} pp apart, one-sided 95 % bounds {low:.1f} to {high:.1f}, bound " \
               f"{self.max_difference:g} pp)"
        if high <= self.max_difference:
            return Premise(True, f"every arm's train accuracy >= {self.min_train_acc:g} % (lower 95 % bound), "
                                 f"arms within {self.max_difference:g} pp")
        if low > self.max_difference:
            return Premise(False, f"{where}: the arms fit unequally {said}")
        return Premise(False, f"{where}: uncertain whether the arms fit equally {said}", uncertain=True)


@dataclasses.dataclass(frozen=True)
class RunFitRule:
    """The premise under train-to-target: per-run flags with a consequence fixed before the data (module doc)."""

    target: float  # train accuracy (%) every tuning phase trains to; a run capped below it is flagged
    bound: float  # a seed is flagged when its threatening arm fits more than this many points more than the other
    max_flagged_share: float = MAX_FLAGGED_SHARE  # void when more than this share of the seeds are flagged

    def allowed(self, seeds: int) -> int:
        """The most flagged seeds a claim on `seeds` seeds stands with."""
        return math.floor(self.max_flagged_share * seeds + 1e-9)

    def check(self, fits: Mapping[str, pd.Series], where: str, capped: Mapping[str, pd.Series],
              threat: tuple[str, str] | None = None) -> Premise:
        """`fits`: arm -> its train accuracy (%) over the window per seed; `capped`: arm -> whether its run hit the
        cap below the target, per seed; `threat`: (arm, other) when `arm` fitting more than `other` could fake the
        claim (None: only the cap and divergence flags)."""
        table = pd.DataFrame({f"fit {arm}": v for arm, v in fits.items()}
                             | {f"capped {arm}": c.astype(bool) for arm, c in capped.items()})
        reasons = {int(seed): why for seed, row in table.iterrows() if (why := self.flags(row, fits, threat))}
        n, allowed = len(table), self.allowed(len(table))
        means = ", ".join(f"{arm} {table[f'fit {arm}'].mean():.1f} %" for arm in fits)
        said = (f"{where}: fits {means} over the window ({n} seeds); {len(reasons)} seed(s) flagged"
                + (f" ({'; '.join(f'{s}: {why}' for s, why in reasons.items())})" if reasons else "")
                + f", at most {allowed} allowed")
        return Premise(len(reasons) <= allowed and n > 0, said, arms=len(fits), flagged=tuple(reasons),
                       protocol=TARGET_PROTOCOL)

    def flags(self, row: pd.Series, fits: Mapping[str, pd.Series], threat: tuple[str, str] | None) -> str:
        """Why one seed is flagged ("" when it is not)."""
        why = [f"{arm} diverged" for arm in fits if not np.isfinite(row[f"fit {arm}"])]
        why += [f"{arm} capped below {self.target:g} %" for arm in fits if row[f"capped {arm}"]]
        if threat and not why:
            arm, other = threat
            more = row[f"fit {arm}"] - row[f"fit {other}"]
            if more > self.bound:
                why.append(f"{arm} fits {more:.1f} points more than {other} (bound {self.bound:g})")
        return ", ".join(why)


def pass_chance(seeds: int, arms: int, margin_sd: float = PLANNING_MARGIN_SD) -> float:
    """The chance that `arms` independent arms, each truly `margin_sd` per-seed SDs above the floor, all pass the
    floor's one-sided 95 % bound at `seeds` seeds: (mean - floor) / (s / sqrt(n)) is noncentral t with n - 1 df and
    noncentrality sqrt(n) x margin_sd. (The arms' difference check, against a bound of 2 SDs or more, costs
    about 1 % more at 16 seeds: benchmarks/sequential_error.py simulates both.)"""
    if seeds < 2 or arms < 0:
        raise ValueError(f"pass_chance needs at least 2 seeds and a non-negative arm count; got {seeds}, {arms}")
    one = float(nct.sf(stdtrit(seeds - 1, 1 - LEVEL), seeds - 1, math.sqrt(seeds) * margin_sd))
    return one ** arms


def seeds_to_pass(arms: int, wanted: float = WANTED_PASS, margin_sd: float = PLANNING_MARGIN_SD,
                  most: int = 200) -> int | None:
    """The fewest seeds at which `arms` truly fitting arms pass with chance >= `wanted` (None: not by `most`)."""
    return next((n for n in range(2, most + 1) if pass_chance(n, arms, margin_sd) >= wanted), None)
