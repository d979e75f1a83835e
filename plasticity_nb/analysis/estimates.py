"""Estimates reported beside the claims, without a verdict of their own (stats.ESTIMATE).

- The *gap at equal fit*: where the arms fit their training data unequally, part of a gap may be the fit's. The
  per-seed gaps regressed on the per-seed fit differences (OLS with an intercept): the intercept is the gap where
  both arms fit alike, with its t interval on n - 2 df. It needs spread in the fits: with tied fit differences (or
  fewer than 3 seeds) the slope, and so the intercept, cannot be told apart from the mean, and the interval is NaN.
- The *share of seeds a remedy improves*: the seeds whose gap it reduces (reduction > 0; a tie at exactly 0 is
  not an improvement and is counted apart), with the exact Clopper-Pearson interval of the probability, per
  condition (`improvement_share`) and summed over the conditions a remedy ran in (`share_over_conditions`).
- The *share of the gap a remedy closes*: mean reduction / mean gap without it, over the same seeds, with Fieller's
  interval for a ratio of paired means (`gap_closed`). Unbounded where the mean gap cannot be told from 0.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import pandas as pd

from .stats import ESTIMATE, Estimate, Test, finite, seeds_of

EQUAL_FIT = "OLS intercept at equal fit, t on n - 2 df"
EXACT = "exact (Clopper-Pearson)"
FIELLER = "ratio of paired means, Fieller's interval (t on n - 1 df)"


def gap_at_equal_fit(gaps: pd.Series, fit_differences: pd.Series, confidence: float = 0.95) -> Estimate:
    """The gap where both arms fit alike: the intercept of the OLS line of `gaps` on `fit_differences` (scratch fit
    minus warm fit, train accuracy in points), both indexed by seed, with its t interval on n - 2 df. A seed where
    either value is not finite is counted in `missing`. `sd` is the residual SD. With fewer than 3 seeds, tied fit
    differences or an exact line the interval is NaN (and the estimate too where the slope is not estimable), and
    `method` says why: never certainty from a few numbers."""
    pairs, missing = paired_by_seed(gaps, fit_differences)
    x, y, n = pairs.fit.to_numpy(), pairs.gap.to_numpy(), len(pairs)
    seeds = seeds_of(pairs.gap)

    def without_interval(mean: float, why: str) -> Estimate:
        return Estimate(mean, math.nan, math.nan, n, math.nan, confidence, why, missing, seeds)

    if n < 3:
        return without_interval(math.nan, f"not estimable: {n} seed(s) with both values; the line needs 3 or more")
    if len(np.unique(x)) < 2:
        zero = ": they are all 0, so the paired gap itself is the gap at equal fit" if x[0] == 0 else ""
        return without_interval(math.nan, f"not estimable: every fit difference is {x[0]:+g} pp, no spread to "
                                          f"tell the slope from the mean (no certainty from tied fits){zero}")
    import statsmodels.api as sm

    fit = sm.OLS(y, sm.add_constant(x)).fit()
    intercept, residual_sd = float(fit.params[0]), math.sqrt(fit.mse_resid)
    if not residual_sd > 1e-9 * max(1.0, float(np.abs(y).max())):  # an exact line, to rounding
        return without_interval(intercept, f"{EQUAL_FIT}; no residual spread: an exact line gives no interval")
    low, high = (float(v) for v in fit.conf_int(1 - confidence)[0])
    return Estimate(intercept, low, high, n, residual_sd, confidence, EQUAL_FIT, missing, seeds)


def paired_by_seed(gaps: pd.Series, fit_differences: pd.Series) -> tuple[pd.DataFrame, int]:
    """The seeds with both values finite (a frame of `gap` and `fit` by seed) and how many seeds lack one; a
    ValueError naming the culprit for input that is not two Series over the same seeds."""
    for name, series in (("gaps", gaps), ("fit_differences", fit_differences)):
        if not isinstance(series, pd.Series):
            raise ValueError(f"{name} must be a pandas Series indexed by seed, got {type(series).__name__}")
        if series.index.has_duplicates:
            raise ValueError(f"{name} has seed {series.index[series.index.duplicated()].tolist()[0]!r} more than once")
    only = sorted(set(gaps.index) ^ set(fit_differences.index), key=str)
    if only:
        raise ValueError(f"gaps and fit_differences must have the same seeds; seed {only[0]!r} is in one only")
    pairs = pd.DataFrame({"gap": pd.to_numeric(gaps, errors="coerce"),
                          "fit": pd.to_numeric(fit_differences, errors="coerce")}).astype(float)
    kept = np.isfinite(pairs).all(axis=1)
    return pairs[kept].sort_index(), int((~kept).sum())


@dataclasses.dataclass(frozen=True)
class Share:
    """How many trials succeeded (a remedy reduced the gap), with the exact interval of the probability."""

    successes: int
    trials: int  # finite values: the successes, the ties and the rest
    ties: int  # trials at exactly 0: not successes, reported
    ci_low: float  # NaN with no trial
    ci_high: float
    confidence: float = 0.95
    method: str = EXACT
    missing: int = 0  # values given but not finite (a diverged run): not trials, reported
    seeds: tuple[int, ...] = ()

    @property
    def share(self) -> float:
        return self.successes / self.trials if self.trials else math.nan


def exact_share(successes: int, trials: int, ties: int = 0, confidence: float = 0.95, method: str = EXACT,
                missing: int = 0, seeds: tuple[int, ...] = ()) -> Share:
    """`successes` of `trials` with the Clopper-Pearson interval (scipy's binomtest, method "exact")."""
    if trials == 0:
        return Share(0, 0, 0, math.nan, math.nan, confidence, method, missing, seeds)
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="exact")
    return Share(successes, trials, ties, float(ci.low), float(ci.high), confidence, method, missing, seeds)


def improvement_share(reductions: Sequence[float], confidence: float = 0.95) -> Share:
    """The seeds whose reduction of the gap (gap(none) - gap(remedy), per seed, indexed by seed) is above 0, with
    the exact interval of the probability that the remedy improves a seed. A reduction of exactly 0 is not an
    improvement (counted in `ties`); a missing one (a diverged run) is not a trial (counted in `missing`)."""
    if len(reductions) == 0:
        raise ValueError("reductions is empty: a share of seeds needs at least one seed")
    d, missing = finite(reductions)
    return exact_share(int((d > 0).sum()), len(d), int((d == 0).sum()), confidence, EXACT, missing,
                       seeds_of(reductions))


def share_over_conditions(shares: Sequence[Share], confidence: float = 0.95) -> Share:
    """A remedy's shares summed over the conditions (and notebooks) it ran in: successes over trials, the same
    exact interval. It treats each (condition, seed) pair as one independent trial; the conditions of a study
    share seeds (a seed's scratch run, subset and initial weights), which makes its trials dependent and the
    interval an approximation, as its `method` says."""
    if not shares:
        raise ValueError("shares is empty: give the share of at least one condition")
    method = (f"{EXACT} over {len(shares)} condition(s), each (condition, seed) pair one trial: approximate where "
              "conditions share seeds")
    return exact_share(sum(s.successes for s in shares), sum(s.trials for s in shares), sum(s.ties for s in shares),
                       confidence, method, sum(s.missing for s in shares),
                       tuple(sorted({seed for s in shares for seed in s.seeds})))


def share_test(share: Share, label: str = "") -> Test:
    """A share reported beside a claim (ClaimResult.others): kind "share", verdict ESTIMATE, the estimate's mean the
    share and its n the trials; the counts of successes and ties in its method."""
    method = (f"{share.successes} of {share.trials} improved, {share.ties} tied at 0 (not improved); "
              f"{share.method}")
    estimate = Estimate(share.share, share.ci_low, share.ci_high, share.trials, math.nan, share.confidence, method,
                        share.missing, share.seeds)
    return Test("share", estimate, ESTIMATE, math.nan, label=label)


def gap_closed(reductions: pd.Series, gaps: pd.Series, confidence: float = 0.95) -> Test:
    """The share of the gap a remedy closes: mean(gap(none) - gap(remedy)) / mean(gap(none)), over the seeds where
    both are finite (paired by index), with Fieller's interval for the ratio of two correlated means. Where the
    mean gap is not distinguishable from 0 at this confidence, the interval is unbounded (-inf, inf). 1 closes the
    whole gap, 0 none; a share, so it is reported unitless, with no verdict."""
    pairs = pd.concat([pd.Series(reductions, dtype=float), pd.Series(gaps, dtype=float)], axis=1, join="inner")
    keep = np.isfinite(pairs).all(axis=1)
    a, b = pairs[keep].iloc[:, 0].to_numpy(), pairs[keep].iloc[:, 1].to_numpy()
    n, missing, seeds = len(a), int((~keep).sum()), seeds_of(pairs[keep].iloc[:, 0])
    ratio = float(a.mean() / b.mean()) if n and b.mean() != 0 else math.nan
    low, high = fieller_interval(a, b, confidence) if n >= 2 else (-math.inf, math.inf)
    estimate = Estimate(ratio, low, high, n, math.nan, confidence, FIELLER, missing, seeds)
    return Test("share", estimate, ESTIMATE, math.nan, label="share of gap(none) the remedy closes")


def fieller_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Fieller's interval for mean(a) / mean(b), a and b paired (Fieller 1954): the ratios r for which
    mean(a) - r mean(b) is not distinguishable from 0 by a t test on n - 1 df."""
    from scipy.special import stdtrit

    n = len(a)
    ma, mb = a.mean(), b.mean()
    cov = np.cov(a, b, ddof=1) / n  # variances and covariance of the two means
    vaa, vbb, vab = cov[0, 0], cov[1, 1], cov[0, 1]
    t2 = float(stdtrit(n - 1, 0.5 + confidence / 2)) ** 2
    g = t2 * vbb / mb ** 2 if mb != 0 else math.inf
    if not g < 1:
        return -math.inf, math.inf
    ratio = ma / mb
    spread = t2 * (vaa - 2 * ratio * vab + ratio ** 2 * vbb - g * (vaa - vab ** 2 / vbb)) if vbb > 0 else t2 * vaa
    half = math.sqrt(max(spread, 0.0)) / abs(mb)
    centre = ratio - (g * vab / vbb if vbb > 0 else 0.0)
    return float((centre - half) / (1 - g)), float((centre + half) / (1 - g))
