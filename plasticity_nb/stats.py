"""Honest statistics for paired seeds: mean difference with a t-distribution confidence interval."""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy.special import stdtrit  # Student t quantile; scipy.stats takes ~1 s to import

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Mean of paired differences (e.g. scratch - warm, in points) with its confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int  # number of pairs (seeds)
    sd: float  # standard deviation of the differences
    confidence: float = 0.95

    @property
    def verdict(self) -> str:
        """Does the effect exist in the claimed (positive) direction? 'inconclusive' when the CI straddles 0."""
        if self.ci_low > 0:
            return SUPPORTED
        if self.ci_high < 0:
            return NOT_SUPPORTED
        return INCONCLUSIVE

    def __str__(self) -> str:
        return (f"{self.mean:+.2f} pp (95% CI {self.ci_low:+.2f} to {self.ci_high:+.2f}, "
                f"n={self.n} paired seeds): {self.verdict}")


def paired_estimate(differences: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean of `differences` and its two-sided t interval; with fewer than 2 pairs the CI is unbounded."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, 0, math.nan, confidence)
    mean = float(d.mean())
    if n == 1:
        return Estimate(mean, -math.inf, math.inf, 1, math.nan, confidence)
    sd = float(d.std(ddof=1))
    half = float(stdtrit(n - 1, 0.5 + confidence / 2)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, sd, confidence)
