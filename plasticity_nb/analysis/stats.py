"""Honest statistics for paired seeds: each statement gets the test that fits it, and its power.

- A *difference* ("X is worse", "X reduces the gap"): the paired mean with a two-sided 95 % interval;
  supported when the interval lies above 0.
- An *equivalence* ("X recovers", "X closes the gap"): paired two one-sided tests (TOST) against a stated
  margin +/- m; equivalent when the 90 % interval lies inside (-m, m) (TOST at alpha = 0.05). A 95 % CI
  that merely includes 0 is absence of evidence, never equivalence.
- A *bound* ("X does not speed up training by more than m"): one-sided test of mean < m.
- A *correlation* ("a metric predicts the gap"): Pearson's r across independent units with its Fisher-z 95 %
  interval; supported when the interval lies above 0.
- A *screen* ("some metric among K candidates predicts the gap"): each candidate's two-sided correlation test,
  Holm-corrected over the K; supported when at least one candidate is rejected at family-wise level ALPHA.
- An *estimate* (how much the gap changes per doubling of the scale) and a *share* (of seeds a remedy improves,
  estimates.py): a number with its interval and n, and no verdict: ESTIMATE ("estimate only"), which settles
  nothing (a claim of estimates alone is "estimate only", never "agrees" or "departs").

The t model needs spread: where the differences have fewer than `MIN_DISTINCT` distinct values (ties, or all
equal: SD 0) the test is the exact sign-flip test instead (the differences' signs are exchangeable under the
null; its interval inverts it), which from 3 seeds can never be significant: 2^-3 = 0.125 is its smallest p.
Differences that are missing (a diverged run) are counted in `Estimate.missing`, never dropped silently.

Power is planned, never post hoc: at a claim's smallest effect of interest (the margin for an equivalence or a
bound), at the SD the claim's analysis estimates (`power_at` and `seeds_for`), never at the observed effect,
which would only restate the t statistic. TOST power comes from both one-sided tests (the exact integral over
the sample SD), not from the nearer margin alone.

A claim tested by several tests (several conditions, or two parts of one statement) holds only if every test
holds (an intersection-union test: no correction, its joint power stated), and fails if any test fails once the
contrary tests are Holm-corrected (`combine`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Sequence

import numpy as np
from scipy.special import stdtrit  # Student t quantile; scipy.stats takes ~1 s to import

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
ESTIMATE = "estimate only"  # the verdict of an estimate: reported with its interval, decides nothing
EQUIVALENT, NOT_EQUIVALENT = "equivalent", "not equivalent"
PREMISE_NOT_MET, PREMISE_UNCERTAIN = "premise not met", "premise uncertain"
POSITIVE = (SUPPORTED, EQUIVALENT)  # verdicts that say the statement holds
NEGATIVE = (NOT_SUPPORTED, NOT_EQUIVALENT)  # verdicts that say it does not
ALPHA = 0.05  # every test's level
POWER = 0.8  # the power that "minimum detectable effect" and "seeds needed" refer to
TESTS = ("difference", "equivalence", "bound", "correlation", "screen", "trend", "estimate", "share")
MIN_DISTINCT = 3  # fewer distinct differences than this: the exact sign-flip test, not the t model
T_MODEL, SIGN_FLIP = "t", "exact sign-flip"
MAX_EXACT = 16  # up to this many pairs every sign pattern is enumerated; beyond, a seeded sample of them
MAX_SEEDS = 1000  # "seeds needed" beyond this: not a practical experiment (inf)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Mean of paired differences (e.g. scratch - warm, in points) with its confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int  # number of pairs (seeds) used
    sd: float  # standard deviation of the differences
    confidence: float = 0.95
    method: str = T_MODEL  # t | exact sign-flip (ties or no spread)
    missing: int = 0  # pairs given but not finite (a diverged run): reported, not used
    seeds: tuple[int, ...] = ()  # the seeds of the pairs used, where the differences came indexed by seed

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
    """Mean of `differences` and its two-sided interval (t, or the exact sign-flip one where the t model does
    not fit); with fewer than 2 pairs the interval is unbounded."""
    d, missing = finite(differences)
    n, seeds = len(d), seeds_of(differences)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return Estimate(mean, -math.inf, math.inf, n, math.nan, confidence, missing=missing, seeds=seeds)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if not t_model_fits(d):
        low, high = sign_flip_interval(d, confidence)
        return Estimate(mean, low, high, n, sd, confidence, SIGN_FLIP, missing, seeds)
    half = float(stdtrit(n - 1, 0.5 + confidence / 2)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, sd, confidence, T_MODEL, missing, seeds)


def seeds_of(differences: Sequence[float]) -> tuple[int, ...]:
    """The seeds of the finite differences, when they come as a pandas Series indexed by seed."""
    index = getattr(differences, "index", None)
    if getattr(index, "name", None) != "seed":
        return ()
    values = np.asarray(differences, dtype=float)
    return tuple(sorted(int(s) for s, v in zip(index, values) if math.isfinite(v)))


def finite(values: Sequence[float]) -> tuple[np.ndarray, int]:
    """The finite values, and how many were not."""
    d = np.asarray(values, dtype=float)
    keep = np.isfinite(d)
    return d[keep], int((~keep).sum())


def t_model_fits(d: np.ndarray) -> bool:
    """Enough distinct differences for the t model (ties or no spread make its SD meaningless)."""
    return len(np.unique(d)) >= MIN_DISTINCT


@functools.lru_cache(maxsize=None)
def sign_patterns(n: int) -> np.ndarray:
    """Every +/-1 pattern of n signs (n <= MAX_EXACT), or a seeded sample with the identity first."""
    if n <= MAX_EXACT:
        return 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    sample = np.random.default_rng(20261201).choice([-1, 1], size=(2 ** MAX_EXACT, n))
    sample[0] = 1
    return sample


def sign_flip_p(d: np.ndarray, mu: float, alternative: str) -> float:
    """Exact one-sided p of the sign-flip test of mean(d) = mu against mean > mu ('greater') or < mu ('less')."""
    x = np.asarray(d, dtype=float) - mu
    observed = x.mean()
    means = sign_patterns(len(x)) @ x / len(x)
    tolerance = 1e-9 * max(1.0, float(np.abs(x).max()))
    if alternative == "greater":
        return float(np.mean(means >= observed - tolerance))
    return float(np.mean(means <= observed + tolerance))


def sign_flip_interval(d: np.ndarray, confidence: float) -> tuple[float, float]:
    """The values mu that the two one-sided sign-flip tests at (1 - confidence) / 2 each keep."""
    level = (1 - confidence) / 2
    return (sign_flip_end(d, level, "greater"), -sign_flip_end(-d, level, "greater"))


def sign_flip_end(d: np.ndarray, level: float, alternative: str) -> float:
    """Lower end: the smallest mu the one-sided test (mean > mu) does not reject at `level`."""
    if 0.5 ** len(d) > level:  # even a mu below every difference is kept: no lower end
        return -math.inf
    rejected, kept = float(d.min()) - 1.0 - float(np.ptp(d)), float(d.mean())
    for _ in range(60):
        middle = (rejected + kept) / 2
        if sign_flip_p(d, middle, alternative) <= level:
            rejected = middle
        else:
            kept = middle
    return kept


@dataclasses.dataclass(frozen=True)
class Test:
    """One statistical test of a statement about paired differences."""

    kind: str  # difference | equivalence | bound | correlation (see the module docstring)
    estimate: Estimate  # mean and interval (95 % for a difference, 90 % for equivalence and bounds)
    verdict: str  # this test alone, uncorrected
    p_value: float  # difference: two-sided p of mean = 0; equivalence: TOST p; bound: one-sided p of mean >= margin
    margin: float | None = None  # equivalence: +/- margin; bound: the bound
    mde: float = math.nan  # difference: effect detectable with 80 % power at these seeds and this SD;
    # equivalence: the smallest margin TOST meets with 80 % power when the truth is 0; bound: likewise the bound
    label: str = ""  # what this test compares, e.g. the condition or "remaining gap"
    contrary_p: float = math.nan  # p of the contrary statement's test: its verdict (NEGATIVE) when below ALPHA
    support_p: float = math.nan  # one-sided p of the statement itself: the largest is the weakest evidence
    log_scale: bool = False  # a ratio test: tested on log ratios, the estimate shown in percent (see ratio_test)
    # the finite tested values in the order given (seed order), log ratios for a ratio test: what a sequential
    # decision (sequential.py) needs at each look; left out of the repr so that printed tests stay as they were
    values: tuple[float, ...] = dataclasses.field(default=(), repr=False)

    def describe(self, unit: str = "pp") -> str:
        if self.kind in ("estimate", "share"):
            return self.describe_estimate(unit)
        e = self.estimate
        ci = f"{round(100 * e.confidence)} % CI {e.ci_low:+.2f} to {e.ci_high:+.2f}"
        rule = {"difference": "above 0?", "equivalence": "within +/-{margin:g}?", "bound": "below {margin:+g}?",
                "correlation": "r above 0?", "screen": "any r != 0, Holm over {margin:g}?",
                "trend": "shrink below {margin:+g}?"}[self.kind].format(
            margin=self.margin)
        head = f"{self.label}: " if self.label else ""
        exact = f", {e.method} (ties)" if e.method == SIGN_FLIP else ""
        missing = f", {e.missing} pair(s) missing" if e.missing else ""
        return f"{head}{e.mean:+.2f} {unit} ({ci}{exact}{missing}, {rule} p = {self.p_value:.3f}) -> {self.verdict}"

    def describe_estimate(self, unit: str) -> str:
        """An estimate's line: the number, its interval, n and how it was made; no test, so no p value. A share is
        a proportion, unitless and unsigned."""
        e = self.estimate
        head = f"{self.label}: " if self.label else ""
        missing = f", {e.missing} missing" if e.missing else ""
        if self.kind == "share":
            ci = f"{round(100 * e.confidence)} % CI {e.ci_low:.2f} to {e.ci_high:.2f}"
            return f"{head}{e.mean:.2f} ({ci}, n={e.n}{missing}; {e.method}) -> {self.verdict}"
        ci = f"{round(100 * e.confidence)} % CI {e.ci_low:+.2f} to {e.ci_high:+.2f}"
        return f"{head}{e.mean:+.2f} {unit} ({ci}, n={e.n} seeds{missing}; {e.method}) -> {self.verdict}"


def as_values(d: np.ndarray) -> tuple[float, ...]:
    """A test's `values`: plain floats, so that a Test stays hashable and JSON-ready."""
    return tuple(float(v) for v in d)


def one_sided_p(d: np.ndarray, mu: float, alternative: str) -> float:
    """p of mean(d) = mu against 'greater' or 'less': t, or exact sign-flip where the t model does not fit;
    NaN with fewer than 2 pairs."""
    if len(d) < 2:
        return math.nan
    if not t_model_fits(d):
        return sign_flip_p(d, mu, alternative)
    from scipy.stats import t

    statistic = (d.mean() - mu) / (d.std(ddof=1) / math.sqrt(len(d)))
    return float(t.sf(statistic, len(d) - 1) if alternative == "greater" else t.cdf(statistic, len(d) - 1))


def difference_test(differences: Sequence[float], label: str = "") -> Test:
    """Is the mean paired difference above 0? Two-sided 95 % interval; supported when it lies above 0."""
    d, _ = finite(differences)
    estimate = paired_estimate(differences)
    above, below = one_sided_p(d, 0.0, "greater"), one_sided_p(d, 0.0, "less")
    return Test("difference", estimate, estimate.verdict, min(1.0, 2 * min(above, below)), None,
                detectable_difference(estimate.sd, estimate.n), label, min(1.0, 2 * below), above,
                values=as_values(d))


def equivalence_test(differences: Sequence[float], margin: float, label: str = "") -> Test:
    """Paired TOST: is the mean difference within (-margin, +margin)? Reports the 90 % interval it uses."""
    check_margin(margin)
    d, _ = finite(differences)
    estimate = paired_estimate(differences, confidence=1 - 2 * ALPHA)
    p = max(one_sided_p(d, -margin, "greater"), one_sided_p(d, margin, "less"))
    if p < ALPHA:
        verdict = EQUIVALENT
    elif estimate.ci_low > margin or estimate.ci_high < -margin:
        verdict = NOT_EQUIVALENT  # the whole interval lies beyond a margin
    else:
        verdict = INCONCLUSIVE
    beyond = min(one_sided_p(d, margin, "greater"), one_sided_p(d, -margin, "less"))
    return Test("equivalence", estimate, verdict, p, margin, detectable_margin(estimate.sd, estimate.n), label,
                beyond, p, values=as_values(d))


def bound_test(differences: Sequence[float], bound: float, label: str = "") -> Test:
    """One-sided: is the mean difference below `bound`? Supported when the one-sided 95 % bound is below it."""
    d, _ = finite(differences)
    estimate = paired_estimate(differences, confidence=1 - 2 * ALPHA)  # its upper end is the one-sided 95 % bound
    if estimate.ci_high < bound:
        verdict = SUPPORTED
    elif estimate.ci_low > bound:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    below = one_sided_p(d, bound, "less")
    return Test("bound", estimate, verdict, below, bound, detectable_bound(estimate.sd, estimate.n), label,
                one_sided_p(d, bound, "greater"), below, values=as_values(d))


def ratio_test(numerator: Sequence[float], denominator: Sequence[float], label: str = "",
               smaller: bool = False) -> Test:
    """Is numerator / denominator above 1 (`smaller`: below 1), per seed? The difference test of the log ratios,
    shown as 100 (geometric-mean ratio - 1) % (`smaller`: 100 (1 - ratio) %), so that no interval passes -100 %
    (+100 %). A seed where either value is missing or not positive (a Hutchinson trace estimate can be) has no
    log ratio: it is counted as a missing pair. The SD is that of the log ratios, times 100."""
    import pandas as pd

    ratio = pd.Series(numerator, dtype=float) / pd.Series(denominator, dtype=float)  # paired by index (seed)
    logs = np.log(ratio.where(ratio > 0))  # a non-positive value gives a ratio <= 0 (or NaN): missing
    logs = logs.where((pd.Series(numerator) > 0) & (pd.Series(denominator) > 0))
    test = difference_test(-logs if smaller else logs, label)
    percent = (lambda g: 100 * (1 - math.exp(-g))) if smaller else (lambda g: 100 * math.expm1(g))
    e = test.estimate
    shown = dataclasses.replace(e, mean=percent(e.mean) if math.isfinite(e.mean) else e.mean,
                                ci_low=percent(e.ci_low) if math.isfinite(e.ci_low) else e.ci_low,
                                ci_high=percent(e.ci_high) if math.isfinite(e.ci_high) else e.ci_high,
                                sd=100 * e.sd)
    mde = percent(test.mde) if math.isfinite(test.mde) else test.mde
    return dataclasses.replace(test, estimate=shown, mde=mde, log_scale=True)


def correlation_test(x: Sequence[float], y: Sequence[float], label: str = "") -> Test:
    """Does `x` predict `y` across independent units? Pearson's r with the Fisher-z 95 % interval (scipy);
    supported when the interval lies above 0. The estimate's n counts the units, its sd is not defined (NaN)."""
    from scipy.stats import norm, pearsonr

    pairs = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    keep = np.isfinite(pairs).all(axis=1)
    pairs, missing = pairs[keep], int((~keep).sum())
    n = len(pairs)
    if n < 4 or not (pairs.std(axis=0) > 0).all():  # Fisher z needs n > 3 and spread in both
        estimate = Estimate(math.nan, -math.inf, math.inf, n, math.nan, missing=missing)
        return Test("correlation", estimate, INCONCLUSIVE, math.nan, label=label)
    result = pearsonr(pairs[:, 0], pairs[:, 1])
    ci = result.confidence_interval(0.95)
    estimate = Estimate(float(result.statistic), float(ci.low), float(ci.high), n, math.nan, missing=missing)
    z = norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)  # Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3))
    below = float(pearsonr(pairs[:, 0], pairs[:, 1], alternative="less").pvalue)
    above = float(pearsonr(pairs[:, 0], pairs[:, 1], alternative="greater").pvalue)
    return Test("correlation", estimate, estimate.verdict, float(result.pvalue), None,
                math.tanh(z / math.sqrt(n - 3)), label, min(1.0, 2 * below), above)


def screen_test(candidates: Sequence[Test], label: str = "") -> Test:
    """Does any of these correlation tests' predictors predict the outcome? Holm's step-down over their two-sided
    p values: supported when at least one is rejected at family-wise ALPHA (never "not supported": no evidence
    of a predictor is not evidence of none). The estimate is the candidate with the smallest p; the p value is
    its Holm-adjusted one (K times its raw p, at most 1); `margin` holds K, the family's size."""
    if not candidates or any(c.kind != "correlation" for c in candidates):
        raise ValueError("a screen needs one or more correlation tests")
    p = np.nan_to_num(np.asarray([c.p_value for c in candidates], dtype=float), nan=1.0)
    best, k = candidates[int(np.argmin(p))], len(candidates)
    adjusted = min(1.0, k * float(p.min()))
    verdict = SUPPORTED if any(holm_rejects(p)) else INCONCLUSIVE
    return Test("screen", best.estimate, verdict, adjusted, float(k), math.nan,
                label or f"strongest of {k}: {best.label}", math.nan, adjusted)


@dataclasses.dataclass(frozen=True)
class SlopeFit:
    """OLS of values on log2(level) with one intercept per seed and a common slope, or why it cannot be made."""

    slope: float  # per doubling of the level (NaN where the fit cannot be made)
    se: float  # the slope's standard error
    df: int  # residual degrees of freedom
    sd: float  # one seed's own slope SD: residual SD / sqrt(sum of squared centred log2 levels of one seed)
    n_seeds: int
    missing: int  # values given but not finite
    seeds: tuple[int, ...]
    values: tuple[float, ...]  # the finite values in the order given
    why_not: str = ""  # why there is no interval ("" when there is one)


SEED_SLOPE = "OLS, seed intercepts"


def seed_slope(values: Sequence[float], levels: Sequence[float], seeds: Sequence[int]) -> SlopeFit:
    """The common within-seed slope of `values` on log2(`levels`) (statsmodels OLS, one intercept per seed: a seed's
    shared effect, its subset and initial weights). No interval (`why_not`) with no residual degree of freedom, a
    single level or seed, or no residual spread: never certainty from a perfect fit of a few numbers."""
    import pandas as pd
    import statsmodels.formula.api as smf

    table = pd.DataFrame({"y": np.asarray(values, dtype=float), "x": np.log2(np.asarray(levels, dtype=float)),
                          "seed": list(seeds)})
    kept, missing = table[np.isfinite(table.y)], int((~np.isfinite(table.y)).sum())
    n_seeds, used = kept.seed.nunique(), tuple(sorted(int(s) for s in kept.seed.unique()))
    df = len(kept) - n_seeds - 1
    if df < 1 or kept.x.nunique() < 2 or n_seeds < 2:
        why = f"not estimable: {len(kept)} values over {n_seeds} seed(s) and {kept.x.nunique()} level(s)"
        return SlopeFit(math.nan, math.nan, max(df, 0), math.nan, n_seeds, missing, used, (), why)
    fit = smf.ols("y ~ x + C(seed)", kept).fit()
    per_seed = kept.groupby("seed").x.apply(lambda x: float(((x - x.mean()) ** 2).sum())).mean()
    sd = math.sqrt(fit.mse_resid / per_seed) if per_seed > 0 else math.nan
    exact = not math.sqrt(fit.mse_resid) > 1e-9 * max(1.0, float(kept.y.abs().max()))  # a fit exact to rounding
    return SlopeFit(float(fit.params["x"]), float(fit.bse["x"]), df, sd, n_seeds, missing, used,
                    as_values(kept.y.to_numpy()), "no residual spread: an exact fit gives no interval" if exact else "")


def slope_estimate(values: Sequence[float], levels: Sequence[float], seeds: Sequence[int], label: str = "") -> Test:
    """How much `values` change per doubling of `levels`: the within-seed OLS slope (`seed_slope`) with its two-sided
    95 % t interval on the fit's residual df, as an estimate (verdict ESTIMATE: it decides nothing). NaN interval
    where the fit gives none. The estimate's n counts seeds and its sd is one seed's own slope SD, so that a plan
    (the seeds for the interval to exclude 0 at a slope of interest) treats seeds as units, as for the tests."""
    fit = seed_slope(values, levels, seeds)
    half = float(stdtrit(fit.df, 0.5 + 0.95 / 2)) * fit.se if not fit.why_not else math.nan
    method = f"{SEED_SLOPE}, t on {fit.df} df" + (f"; {fit.why_not}" if fit.why_not else "")
    estimate = Estimate(fit.slope, fit.slope - half, fit.slope + half, fit.n_seeds, fit.sd, 0.95, method,
                        fit.missing, fit.seeds)
    return Test("estimate", estimate, ESTIMATE, math.nan, None, detectable_difference(fit.sd, fit.n_seeds), label,
                values=fit.values)


def trend_test(values: Sequence[float], levels: Sequence[float], seeds: Sequence[int], bound: float,
               label: str = "") -> Test:
    """Does `values` shrink by less than `bound` per doubling of `levels`? The within-seed OLS slope (`seed_slope`);
    the estimate is the shrink, minus the slope, with its 90 % interval (whose upper end is the one-sided 95 %
    bound): supported below `bound`, not supported when the whole interval is above it. Inconclusive where the fit
    gives no interval. The estimate's n counts seeds and its sd is that of one seed's own slope, so that planning
    treats seeds as the units, as for the other tests."""
    from scipy.stats import t

    fit = seed_slope(values, levels, seeds)
    if not math.isfinite(fit.slope):
        estimate = Estimate(math.nan, -math.inf, math.inf, fit.n_seeds, math.nan, 1 - 2 * ALPHA, SEED_SLOPE,
                            fit.missing, fit.seeds)
        return Test("trend", estimate, INCONCLUSIVE, math.nan, bound, label=label)
    shrink, se, df = -fit.slope, fit.se, fit.df
    half = float(stdtrit(df, 1 - ALPHA)) * se
    estimate = Estimate(shrink, shrink - half, shrink + half, fit.n_seeds, fit.sd, 1 - 2 * ALPHA, SEED_SLOPE,
                        fit.missing, fit.seeds)
    if fit.why_not:  # no residual spread
        return Test("trend", estimate, INCONCLUSIVE, math.nan, bound, label=label)
    verdict = SUPPORTED if estimate.ci_high < bound else NOT_SUPPORTED if estimate.ci_low > bound else INCONCLUSIVE
    below, above = float(t.cdf((shrink - bound) / se, df)), float(t.sf((shrink - bound) / se, df))
    return Test("trend", estimate, verdict, below, bound, detectable_bound(fit.sd, fit.n_seeds), label, above, below,
                values=fit.values)


def check_margin(margin: float) -> None:
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin!r}")


def power_difference(effect: float, sd: float, n: int) -> float:
    """Power of the two-sided paired t test at level ALPHA when the true mean difference is `effect`."""
    from scipy.stats import t

    df, shift = n - 1, effect / sd * math.sqrt(n)
    critical = t.ppf(1 - ALPHA / 2, df)
    return above(critical, df, shift) + above(critical, df, -shift)


def above(critical: float, df: int, shift: float) -> float:
    """P(T > critical) for a noncentral t; scipy underflows to NaN far in the tail, where the normal limit is exact
    to many digits."""
    from scipy.stats import nct, norm

    value = float(nct.sf(critical, df, shift))
    return value if math.isfinite(value) else float(norm.sf(critical - shift))


def power_bound(room: float, sd: float, n: int) -> float:
    """Power of the one-sided test of mean < bound when the truth lies `room` below the bound."""
    from scipy.stats import t

    df = n - 1
    return above(t.ppf(1 - ALPHA, df), df, room / sd * math.sqrt(n))


def power_equivalence(margin: float, sd: float, n: int, truth: float = 0.0) -> float:
    """Power of paired TOST within +/- margin when the true mean is `truth`: both one-sided tests must reject,
    i.e. the mean lands within margin - t s / sqrt(n) of 0; integrated exactly over the sample SD s."""
    from scipy.integrate import quad
    from scipy.stats import chi2, norm, t

    df, se = n - 1, sd / math.sqrt(n)
    critical = t.ppf(1 - ALPHA, df)

    def given(q: float) -> float:  # q = df s^2 / sd^2 ~ chi2(df)
        half = margin - critical * se * math.sqrt(q / df)
        inside = norm.cdf((half - truth) / se) - norm.cdf((-half - truth) / se) if half > 0 else 0.0
        return inside * chi2.pdf(q, df)

    top = df * (margin / (critical * se)) ** 2  # beyond it the acceptance region is empty
    low, high = chi2.ppf(1e-12, df), min(top, chi2.isf(1e-12, df))  # where the chi2 density lives
    return float(quad(given, low, high, limit=200, points=[min(df, high)])[0]) if high > low else 0.0


def power_of(test: Test, effect: float, sd: float, n: int) -> float:
    """The power `n` seeds give `test`'s kind at a true `effect` (difference; correlation: rho, n units) or at a
    true 0 (equivalence within its margin, bound `effect` above the truth)."""
    if test.kind in ("correlation", "screen"):  # Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3)); `effect` is rho
        from scipy.stats import norm

        # a screen's one candidate at rho, at Bonferroni's level ALPHA / K (Holm's first step): a lower bound
        level = ALPHA / (test.margin if test.kind == "screen" else 1)
        return float(norm.cdf(math.atanh(effect) * math.sqrt(n - 3) - norm.ppf(1 - level / 2))) if n > 3 else math.nan
    if n < 2 or not (sd > 0 and math.isfinite(sd)):
        return math.nan
    if test.kind in ("difference", "estimate"):  # an estimate: the seeds for its interval to exclude 0 at `effect`
        return power_difference(effect, sd, n)
    if test.kind == "equivalence":
        return power_equivalence(test.margin, sd, n)
    if test.kind in ("bound", "trend"):  # a trend: one seed's slope SD, seeds as the units
        return power_bound(effect, sd, n)
    raise ValueError(f"no planned power for a {test.kind} test")


def seeds_for(power: Callable[[int], float]) -> float:
    """The fewest seeds (2 .. MAX_SEEDS) at which `power(n)` reaches POWER; inf beyond."""
    if not power(MAX_SEEDS) >= POWER:
        return math.inf
    low, high = 1, MAX_SEEDS  # power(high) >= POWER; power grows with n
    while high - low > 1:
        middle = (low + high) // 2
        if power(middle) >= POWER:
            high = middle
        else:
            low = middle
    return float(high)


def smallest_with_power(power: Callable[[float], float], scale: float) -> float:
    """The smallest x > 0 (an effect, a margin) with power(x) >= POWER; `scale` is the data's SD."""
    low, high = 0.0, scale
    while power(high) < POWER:
        low, high = high, 2 * high
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (low, middle) if power(middle) >= POWER else (middle, high)
    return high


def detectable_difference(sd: float, n: int) -> float:
    """Smallest true effect `n` seeds detect with 80 % power at this SD (two-sided difference test)."""
    if n < 2 or not sd > 0:
        return math.nan
    return smallest_with_power(lambda effect: power_difference(effect, sd, n), sd)


def detectable_margin(sd: float, n: int) -> float:
    """Smallest margin TOST meets with 80 % power when the true difference is 0."""
    if n < 2 or not sd > 0:
        return math.nan
    return smallest_with_power(lambda margin: power_equivalence(margin, sd, n), sd)


def detectable_bound(sd: float, n: int) -> float:
    """Smallest distance below a bound that the one-sided test shows with 80 % power."""
    if n < 2 or not sd > 0:
        return math.nan
    return smallest_with_power(lambda room: power_bound(room, sd, n), sd)


def holm_rejects(p_values: Sequence[float], level: float = ALPHA) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise `level` (the i-th smallest p
    against level / (m - i), stopping at the first that fails). A NaN p (too few pairs) is never rejected and still
    counts in the family. Not statsmodels' multipletests, which agrees (tests/test_stats.py) but runs a full
    gc.collect() on every call: 0.1-0.2 s in a process holding a test suite's or a notebook's objects, and every
    claim's verdict calls this."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    rejected = np.zeros(len(p), dtype=bool)
    for rank, index in enumerate(np.argsort(p, kind="stable")):
        if not p[index] <= level / (len(p) - rank):
            break
        rejected[index] = True
    return rejected.tolist()


def combine(tests: Sequence[Test]) -> str:
    """A statement tested by several tests holds only if every test says so (intersection-union: no correction);
    it fails if any contrary test rejects after Holm's correction over them; otherwise it is inconclusive. Estimates
    alone decide nothing: ESTIMATE."""
    if all(t.verdict == ESTIMATE for t in tests):
        return ESTIMATE
    if all(t.verdict in POSITIVE for t in tests):
        return tests[0].verdict
    for test, rejected in zip(tests, holm_rejects([t.contrary_p for t in tests])):
        if rejected:
            return NOT_EQUIVALENT if test.kind == "equivalence" else NOT_SUPPORTED
    return INCONCLUSIVE
