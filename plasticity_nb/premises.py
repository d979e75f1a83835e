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
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit

MET, NOT_MET, UNCERTAIN = "met", "not met", "uncertain"
LEVEL = 0.05  # each one-sided bound's level


@dataclasses.dataclass(frozen=True)
class Premise:
    """Whether a comparison's premise holds, and why: otherwise it names the condition, arm and accuracy."""

    met: bool
    detail: str
    uncertain: bool = False  # neither met nor clearly failed (then `met` is False)

    @property
    def state(self) -> str:
        return MET if self.met else UNCERTAIN if self.uncertain else NOT_MET

    @classmethod
    def all_of(cls, premises: Sequence["Premise"]) -> "Premise":
        failed = [p.detail for p in premises if p.state == NOT_MET]
        if failed:
            return cls(False, "; ".join(failed))
        unsure = [p.detail for p in premises if p.state == UNCERTAIN]
        if unsure:
            return cls(False, "; ".join(unsure), uncertain=True)
        return cls(True, "; ".join(dict.fromkeys(p.detail for p in premises)))


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

    def check(self, fits: Mapping[str, Sequence[float]], where: str) -> Premise:
        """`fits`: arm -> its train accuracy (%) over the metric window, per seed (a pandas Series indexed by
        seed pairs the arms); `where` names the condition."""
        arms = {arm: np.asarray(values, dtype=float) for arm, values in fits.items()}
        diverged = [f"{where}: {arm} arm diverged in a seed (no train accuracy)"
                    for arm, acc in arms.items() if not np.isfinite(acc).all() or not len(acc)]
        if diverged:
            return Premise(False, "; ".join(diverged))
        floor = {arm: self.floor(arm, acc, where) for arm, acc in arms.items()}
        return Premise.all_of([*floor.values(), self.spread(fits, where)])

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
