"""Estimates beside the claims: the gap at equal fit (against statsmodels OLS and the closed form) and the share of
seeds a remedy improves (against the binomial enumerated by hand), per condition and over conditions."""
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from plasticity_nb.analysis.estimates import (
    exact_share,
    gap_at_equal_fit,
    improvement_share,
    share_over_conditions,
    share_test,
)
from plasticity_nb.analysis.stats import ESTIMATE, INCONCLUSIVE


def by_seed(values, first_seed=0) -> pd.Series:
    return pd.Series(values, index=pd.Index(range(first_seed, first_seed + len(values)), name="seed"), dtype=float)


GAPS = by_seed([3.1, 1.8, 4.6, 0.9, 2.7])
FITS = by_seed([1.2, 0.4, 2.5, -0.3, 0.9])  # scratch fit - warm fit, points


def test_the_gap_at_equal_fit_is_the_ols_intercept_with_its_t_interval_on_n_minus_2_df():
    estimate = gap_at_equal_fit(GAPS, FITS)
    reference = smf.ols("gap ~ fit", pd.DataFrame({"gap": GAPS, "fit": FITS})).fit()
    assert estimate.mean == pytest.approx(reference.params["Intercept"])
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx(tuple(reference.conf_int(0.05).loc["Intercept"]))
    # by hand: a = mean(y) - b mean(x), se(a) = s sqrt(1/n + mean(x)^2 / Sxx), t on n - 2 df
    x, y, n = FITS.to_numpy(), GAPS.to_numpy(), len(GAPS)
    sxx = ((x - x.mean()) ** 2).sum()
    b = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    a = y.mean() - b * x.mean()
    s = math.sqrt(((y - a - b * x) ** 2).sum() / (n - 2))
    half = stats.t.ppf(0.975, n - 2) * s * math.sqrt(1 / n + x.mean() ** 2 / sxx)
    assert (estimate.mean, estimate.ci_low, estimate.ci_high) == pytest.approx((a, a - half, a + half))
    assert estimate.n == 5 and estimate.sd == pytest.approx(s) and estimate.seeds == (0, 1, 2, 3, 4)
    assert estimate.missing == 0 and estimate.confidence == 0.95


def test_a_missing_value_on_either_side_is_counted_not_used():
    fits = FITS.copy()
    fits[2] = math.nan
    estimate = gap_at_equal_fit(GAPS, fits)
    kept = fits.notna()
    reference = smf.ols("gap ~ fit", pd.DataFrame({"gap": GAPS[kept], "fit": fits[kept]})).fit()
    assert estimate.missing == 1 and estimate.n == 4 and estimate.seeds == (0, 1, 3, 4)
    assert estimate.mean == pytest.approx(reference.params["Intercept"])


@pytest.mark.parametrize("fits,why", [
    (by_seed([1.5, 1.5, 1.5, 1.5, 1.5]), "no certainty from tied fits"),
    (by_seed([0.0, 0.0, 0.0, 0.0, 0.0]), "the paired gap itself is the gap at equal fit"),
])
def test_tied_fits_give_no_estimate_and_say_why(fits, why):
    estimate = gap_at_equal_fit(GAPS, fits)
    assert math.isnan(estimate.mean) and math.isnan(estimate.ci_low) and math.isnan(estimate.ci_high)
    assert why in estimate.method and estimate.n == 5 and estimate.verdict == INCONCLUSIVE


def test_two_seeds_or_an_exact_line_give_no_interval():
    two = gap_at_equal_fit(GAPS.iloc[:2], FITS.iloc[:2])
    assert math.isnan(two.ci_low) and math.isnan(two.ci_high) and "3 or more" in two.method and two.n == 2
    line = gap_at_equal_fit(2.0 + 0.5 * FITS, FITS)  # every seed on one line: a residual SD of 0
    assert line.mean == pytest.approx(2.0) and math.isnan(line.ci_low) and math.isnan(line.ci_high)
    assert "no residual spread" in line.method and line.verdict == INCONCLUSIVE


def test_bad_input_to_the_gap_at_equal_fit_is_refused_naming_it():
    with pytest.raises(ValueError, match="gaps must be a pandas Series indexed by seed, got list"):
        gap_at_equal_fit(list(GAPS), FITS)
    with pytest.raises(ValueError, match="seed 5 is in one only"):
        gap_at_equal_fit(GAPS, by_seed([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    twice = pd.Series([1.0, 2.0, 3.0], index=pd.Index([0, 0, 1], name="seed"))
    with pytest.raises(ValueError, match="fit_differences has seed 0 more than once"):
        gap_at_equal_fit(by_seed([1.0, 2.0, 3.0]), twice)


def binomial_bounds(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson by hand: the lower end is the p with P(X >= k) = (1 - confidence) / 2, the upper end the p
    with P(X <= k) = (1 - confidence) / 2, i.e. P(X >= k + 1) = 1 - that; each tail summed term by term from
    math.comb and solved by bisection (both tails rise with p)."""
    tail = (1 - confidence) / 2

    def at_least(j, p):
        return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(j, n + 1))

    def solve(j, target):
        low, high = 0.0, 1.0
        for _ in range(100):
            middle = (low + high) / 2
            low, high = (middle, high) if at_least(j, middle) < target else (low, middle)
        return (low + high) / 2

    return 0.0 if k == 0 else solve(k, tail), 1.0 if k == n else solve(k + 1, 1 - tail)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_the_share_of_seeds_improved_has_the_exact_binomial_interval(n):
    for k in range(n + 1):
        reductions = by_seed([1.0] * k + [-1.0] * (n - k))
        share = improvement_share(reductions)
        assert (share.successes, share.trials, share.ties) == (k, n, 0) and share.share == pytest.approx(k / n)
        assert (share.ci_low, share.ci_high) == pytest.approx(binomial_bounds(k, n), abs=1e-9)
    assert improvement_share(by_seed([-1.0] * n)).ci_low == 0.0  # 0 of n: the interval starts at 0
    assert improvement_share(by_seed([1.0] * n)).ci_high == 1.0  # n of n: it ends at 1, never a certainty below


def test_a_tie_is_not_an_improvement_and_is_reported_and_a_missing_seed_is_no_trial():
    share = improvement_share(by_seed([0.0, 0.0, 2.0, math.nan]))
    assert (share.successes, share.trials, share.ties, share.missing) == (1, 3, 2, 1)
    assert share.seeds == (0, 1, 2)
    assert (share.ci_low, share.ci_high) == pytest.approx(binomial_bounds(1, 3), abs=1e-9)
    none = improvement_share(by_seed([math.nan, math.nan]))  # every run diverged: no trial, no interval
    assert none.trials == 0 and none.missing == 2 and math.isnan(none.share) and math.isnan(none.ci_low)


def test_the_share_over_conditions_sums_trials_and_says_it_is_approximate():
    first, second = improvement_share(by_seed([1.0, 2.0, -1.0])), improvement_share(by_seed([0.0, 3.0, 1.0], 300))
    over = share_over_conditions([first, second])
    assert (over.successes, over.trials, over.ties) == (4, 6, 1)
    assert (over.ci_low, over.ci_high) == pytest.approx(binomial_bounds(4, 6), abs=1e-9)
    assert over.seeds == (0, 1, 2, 300, 301, 302)
    assert "each (condition, seed) pair one trial" in over.method and "approximate" in over.method


def test_an_empty_share_is_refused_naming_it():
    with pytest.raises(ValueError, match="reductions is empty"):
        improvement_share(by_seed([]))
    with pytest.raises(ValueError, match="shares is empty"):
        share_over_conditions([])


def test_a_share_beside_a_claim_is_an_estimate_with_its_counts():
    test = share_test(exact_share(2, 3, ties=1), "share of seeds with gap(none) - gap(x) > 0")
    assert test.kind == "share" and test.verdict == ESTIMATE and test.estimate.n == 3
    text = test.describe("pp")
    assert text.startswith("share of seeds with gap(none) - gap(x) > 0: 0.67 (95 % CI")
    assert "2 of 3 improved, 1 tied at 0" in text and "p =" not in text and text.endswith("-> estimate only")


def test_gap_closed_is_the_ratio_of_means_with_fiellers_roots():
    from scipy.special import stdtrit

    from plasticity_nb.analysis.estimates import gap_closed

    seeds = pd.Index([650, 651, 652, 653, 654], name="seed")
    gaps = pd.Series([3.0, 4.5, 5.0, 2.5, 4.0], index=seeds)
    reductions = pd.Series([1.0, 2.5, 3.0, 0.5, 2.0], index=seeds)
    found = gap_closed(reductions, gaps)
    assert found.kind == "share" and found.estimate.n == 5 and found.estimate.seeds == tuple(seeds)
    assert found.estimate.mean == pytest.approx(reductions.mean() / gaps.mean())
    # the interval's ends are the roots of (mean a - r mean b)^2 = t^2 var(mean a - r mean b)
    n, t2 = 5, float(stdtrit(4, 0.975)) ** 2
    cov = np.cov(reductions, gaps, ddof=1) / n
    ma, mb = reductions.mean(), gaps.mean()
    coefficients = [mb ** 2 - t2 * cov[1, 1], -2 * (ma * mb - t2 * cov[0, 1]), ma ** 2 - t2 * cov[0, 0]]
    roots = sorted(np.roots(coefficients).real)
    assert (found.estimate.ci_low, found.estimate.ci_high) == pytest.approx(roots)


def test_gap_closed_is_unbounded_where_the_gap_is_not_told_from_zero_and_skips_missing_seeds():
    from plasticity_nb.analysis.estimates import gap_closed

    gaps = pd.Series([1.0, -1.0, 0.5, -0.4, np.nan], index=[1, 2, 3, 4, 5])
    found = gap_closed(pd.Series([0.5, 0.1, 0.2, 0.3, 1.0], index=[1, 2, 3, 4, 5]), gaps)
    assert (found.estimate.ci_low, found.estimate.ci_high) == (-math.inf, math.inf)
    assert found.estimate.n == 4 and found.estimate.missing == 1


def test_gap_closed_covers_the_true_share_about_95_percent_of_the_time():
    from plasticity_nb.analysis.estimates import fieller_interval

    rng, covered, repeats = np.random.default_rng(0), 0, 1000
    for _ in range(repeats):
        gaps = rng.normal(4.0, 3.0, 10)
        low, high = fieller_interval(0.5 * gaps + rng.normal(0.0, 1.5, 10), gaps, 0.95)
        covered += low <= 0.5 <= high
    assert 0.93 <= covered / repeats <= 0.97  # binomial SD at 1,000 repeats: 0.7 points
