"""The premise of every warm-vs-scratch comparison: both arms fit their training data, equally well.

Berariu et al. compare arms that both reach 100 % train accuracy; a gap between a fitted and an unfitted
arm is a budget artefact, not plasticity. Fit is measured as an arm's train accuracy over the run's
metric window (the last `last_k` epochs of its final phase; the running accuracy of each training epoch,
so no extra pass), averaged over seeds: a window, not the last epoch, because Adam with BatchNorm has
short loss spikes. Each preset states its rule (`StudyConfig.premise_rule`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Premise:
    """Whether a comparison's premise holds, and why: on failure it names the condition, arm and accuracy."""

    met: bool
    detail: str

    @classmethod
    def all_of(cls, premises: Sequence["Premise"]) -> "Premise":
        failed = [p.detail for p in premises if not p.met]
        if failed:
            return cls(False, "; ".join(failed))
        return cls(True, "; ".join(dict.fromkeys(p.detail for p in premises)))


@dataclasses.dataclass(frozen=True)
class PremiseRule:
    min_train_acc: float  # each arm's mean train accuracy (%) over the metric window must reach this
    max_difference: float  # and the arms' accuracies may differ by at most this many points

    def check(self, fits: dict[str, float], where: str) -> Premise:
        """`fits`: arm -> mean train accuracy (%) over the metric window; `where` names the condition."""
        low = [f"{where}: {arm} arm diverged in a seed (no train accuracy)" if math.isnan(acc) else
               f"{where}: {arm} arm fits only {acc:.1f} % of its training pool (floor {self.min_train_acc:g} %)"
               for arm, acc in fits.items() if not acc >= self.min_train_acc]
        if low:
            return Premise(False, "; ".join(low))
        spread = max(fits.values()) - min(fits.values())
        if spread > self.max_difference:
            arms = ", ".join(f"{arm} {acc:.1f} %" for arm, acc in fits.items())
            return Premise(False, f"{where}: the arms fit unequally ({arms}: {spread:.1f} pp apart, bound "
                                  f"{self.max_difference:g} pp)")
        return Premise(True, f"every arm's train accuracy >= {self.min_train_acc:g} %, arms within "
                             f"{self.max_difference:g} pp")
