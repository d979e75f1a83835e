"""Honest statistics for paired seeds: each statement gets the test that fits it, and its power.

- A *difference* ("X is worse", "X reduces the gap"): the paired mean with a two-sided 95 % t interval;
  supported when the interval lies above 0.
- An *equivalence* ("X recovers", "X closes the gap"): paired two one-sided tests (TOST) against a stated
  margin +/- m; equivalent when the 90 % interval lies inside (-m, m) (TOST at alpha = 0.05). A 95 % CI
  that merely includes 0 is absence of evidence, never equivalence.
- A *bound* ("X does not speed up training by more than m"): one-sided t test of mean < m.
- A *correlation* ("a metric predicts the gap"): Pearson's r across runs with its Fisher-z 95 % interval;
  supported when the interval lies above 0 (power from the same Fisher-z approximation).

Power comes from statsmodels' `TTestPower` (a paired test is a one-sample test on the differences): the
minimum detectable effect at 80 % power for the seeds used, and the seeds needed for 80 % power at the
observed effect and SD. For TOST and bounds, power is that of the one-sided test against the nearer
margin (the far side is ignored: exact when the observed mean is far from the other margin).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy.special import stdtrit  # Student t quantile; scipy.stats takes ~1 s to import

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
EQUIVALENT, NOT_EQUIVALENT = "equivalent", "not equivalent"
PREMISE_NOT_MET = "premise not met"
POSITIVE = (SUPPORTED, EQUIVALENT)  # verdicts that say the statement holds
NEGATIVE = (NOT_SUPPORTED, NOT_EQUIVALENT)  # verdicts that say it does not
ALPHA = 0.05  # every test's level
POWER = 0.8  # the power that "minimum detectable effect" and "seeds needed" refer to
TESTS = ("difference", "equivalence", "bound", "correlation")


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
    d = finite(differences)
    n = len(d)
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, 0, math.nan, confidence)
    mean = float(d.mean())
    if n == 1:
        return Estimate(mean, -math.inf, math.inf, 1, math.nan, confidence)
    sd = float(d.std(ddof=1))
    half = float(stdtrit(n - 1, 0.5 + confidence / 2)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, sd, confidence)


def finite(values: Sequence[float]) -> np.ndarray:
    d = np.asarray(values, dtype=float)
    return d[np.isfinite(d)]


@dataclasses.dataclass(frozen=True)
class Test:
    """One statistical test of a statement about paired differences, with its power."""

    kind: str  # difference | equivalence | bound | correlation (see the module docstring)
    estimate: Estimate  # mean and interval (95 % for a difference, 90 % for equivalence and bounds)
    verdict: str
    p_value: float  # difference: two-sided p of mean = 0; equivalence: TOST p; bound: one-sided p of mean >= margin
    margin: float | None = None  # equivalence: +/- margin; bound: the bound
    mde: float = math.nan  # effect (or margin distance) detectable with 80 % power at these seeds and this SD
    seeds_needed: float = math.nan  # seeds (correlation: runs) for 80 % power at the observed effect (inf: > 1,000)
    label: str = ""  # what this test compares, e.g. the condition or "remaining gap"

    def describe(self, unit: str = "pp") -> str:
        e = self.estimate
        ci = f"{round(100 * e.confidence)} % CI {e.ci_low:+.2f} to {e.ci_high:+.2f}"
        rule = {"difference": "above 0?", "equivalence": "within +/-{margin:g}?", "bound": "below {margin:+g}?",
                "correlation": "r above 0?"}[self.kind].format(margin=self.margin)
        head = f"{self.label}: " if self.label else ""
        return f"{head}{e.mean:+.2f} {unit} ({ci}, {rule} p = {self.p_value:.3f}) -> {self.verdict}"


def difference_test(differences: Sequence[float], label: str = "") -> Test:
    """Is the mean paired difference above 0? Two-sided 95 % t interval; supported when it lies above 0."""
    d = finite(differences)
    estimate = paired_estimate(d)
    p = t_test(d, lambda s: s.ttest_mean(0.0, alternative="two-sided")[1], certain=estimate.mean != 0)
    return Test("difference", estimate, estimate.verdict, p, None, detectable(estimate, "two-sided"),
                seeds_for(abs(estimate.mean), estimate.sd, "two-sided"), label)


def equivalence_test(differences: Sequence[float], margin: float, label: str = "") -> Test:
    """Paired TOST: is the mean difference within (-margin, +margin)? Reports the 90 % interval it uses."""
    check_margin(margin)
    d = finite(differences)
    estimate = paired_estimate(d, confidence=1 - 2 * ALPHA)
    p = t_test(d, lambda s: s.ttost_mean(-margin, margin)[0], certain=abs(estimate.mean) < margin)
    if p < ALPHA:
        verdict = EQUIVALENT
    elif estimate.ci_low > margin or estimate.ci_high < -margin:
        verdict = NOT_EQUIVALENT  # the whole interval lies beyond a margin
    else:
        verdict = INCONCLUSIVE
    room = margin - abs(estimate.mean)  # distance to the nearer margin
    return Test("equivalence", estimate, verdict, p, margin, detectable(estimate, "larger"),
                seeds_for(room, estimate.sd, "larger") if room > 0 else math.inf, label)


def bound_test(differences: Sequence[float], bound: float, label: str = "") -> Test:
    """One-sided: is the mean difference below `bound`? Supported when the one-sided 95 % bound is below it."""
    d = finite(differences)
    estimate = paired_estimate(d, confidence=1 - 2 * ALPHA)  # its upper end is the one-sided 95 % bound
    p = t_test(d, lambda s: s.ttest_mean(bound, alternative="smaller")[1], certain=estimate.mean < bound)
    if estimate.ci_high < bound:
        verdict = SUPPORTED
    elif estimate.ci_low > bound:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    room = bound - estimate.mean
    return Test("bound", estimate, verdict, p, bound, detectable(estimate, "larger"),
                seeds_for(room, estimate.sd, "larger") if room > 0 else math.inf, label)


def correlation_test(x: Sequence[float], y: Sequence[float], label: str = "") -> Test:
    """Does `x` predict `y` across runs? Pearson's r with the Fisher-z 95 % interval (scipy); supported when the
    interval lies above 0. The estimate's n counts pairs (runs), its sd is not defined (NaN)."""
    from scipy.stats import norm, pearsonr

    pairs = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    n = len(pairs)
    if n < 4 or not (pairs.std(axis=0) > 0).all():  # Fisher z needs n > 3 and spread in both
        estimate = Estimate(math.nan, -math.inf, math.inf, n, math.nan)
        return Test("correlation", estimate, INCONCLUSIVE, math.nan, label=label)
    result = pearsonr(pairs[:, 0], pairs[:, 1])
    ci = result.confidence_interval(0.95)
    estimate = Estimate(float(result.statistic), float(ci.low), float(ci.high), n, math.nan)
    z = norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)  # Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3))
    mde = math.tanh(z / math.sqrt(n - 3))
    r = abs(estimate.mean)
    needed = math.ceil((z / math.atanh(r)) ** 2 + 3) if 0 < r < 1 else math.inf
    return Test("correlation", estimate, estimate.verdict, float(result.pvalue), None, mde,
                float(needed) if needed <= 1000 else math.inf, label)


def t_test(d: np.ndarray, p_value, certain: bool) -> float:
    """`p_value(DescrStatsW(d))`; NaN with fewer than 2 pairs; 0 or 1 when every difference is the same
    (no spread: the statement is then certainly true or false for these pairs)."""
    if len(d) < 2:
        return math.nan
    if not d.std() > 0:
        return 0.0 if certain else 1.0
    from statsmodels.stats.weightstats import DescrStatsW

    return float(p_value(DescrStatsW(d)))


def check_margin(margin: float) -> None:
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin!r}")


def detectable(estimate: Estimate, alternative: str) -> float:
    """Smallest true effect (in the data's unit) that `estimate.n` seeds detect with 80 % power at its SD."""
    if estimate.n < 2 or not estimate.sd > 0:
        return math.nan
    from statsmodels.stats.power import TTestPower

    d = TTestPower().solve_power(effect_size=None, nobs=estimate.n, alpha=ALPHA, power=POWER, alternative=alternative)
    return float(d) * estimate.sd


def seeds_for(effect: float, sd: float, alternative: str) -> float:
    """Seeds (pairs) needed for 80 % power when the true effect is `effect` and the differences' SD is `sd`."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or sd <= 0:
        return math.nan
    if effect <= 0:
        return math.inf
    from statsmodels.stats.power import TTestPower

    power = TTestPower()

    def at(n: int) -> float:
        value = power.power(effect / sd, nobs=n, alpha=ALPHA, alternative=alternative)
        if math.isnan(value) and alternative == "two-sided":
            # scipy's noncentral t underflows to NaN in the far tail of a large effect; that tail is ~0, so the
            # power is the near tail alone: the one-sided test at alpha / 2.
            value = power.power(effect / sd, nobs=n, alpha=ALPHA / 2, alternative="larger")
        return value

    # Counting up never fails, where statsmodels' root finder (solve_power) returns NaN for large effects.
    for n in range(2, 1001):
        if at(n) >= POWER:
            return float(n)
    return math.inf  # more than 1,000 seeds: not a practical experiment


def combine(tests: Sequence[Test]) -> str:
    """A statement tested by several tests holds only if every test says so; one contrary test refutes it."""
    verdicts = [t.verdict for t in tests]
    if all(v in POSITIVE for v in verdicts):
        return tests[0].verdict
    if any(v in NEGATIVE for v in verdicts):
        return next(v for v in verdicts if v in NEGATIVE)
    return INCONCLUSIVE
