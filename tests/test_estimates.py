"""Estimates beside the claims: the gap at equal fit (against statsmodels OLS and the closed form)."""
import math

import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from plasticity_nb.analysis.estimates import gap_at_equal_fit
from plasticity_nb.analysis.stats import INCONCLUSIVE


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
