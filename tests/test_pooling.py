import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import digamma, polygamma

from benchmarks.pooling_coverage import reported, simulate
from plasticity_nb.analysis.pooling import (
    contrast_table,
    fit_prior,
    homogeneity,
    pooled_estimates,
    pooled_intervals,
    seed_stratum_df,
    trigamma_inverse,
)
from plasticity_nb.analysis.stats import paired_estimate


def long_table(y: np.ndarray) -> pd.DataFrame:
    """(conditions, seeds) array -> long table with conditions c0, c1, ... and seeds 0, 1, ..."""
    g, n = y.shape
    return pd.DataFrame({"seed": np.tile(np.arange(n), g), "condition": np.repeat([f"c{c}" for c in range(g)], n),
                         "gap_pp": y.ravel()})


def test_trigamma_inverse_inverts_trigamma():
    x = np.array([1e-8, 1e-3, 0.5, math.pi ** 2 / 6, 10.0, 1e8])
    assert polygamma(1, trigamma_inverse(x)) == pytest.approx(x, rel=1e-6)
    assert trigamma_inverse(np.array([math.pi ** 2 / 6]))[0] == pytest.approx(1.0)  # trigamma(1) = pi^2 / 6


def test_fit_prior_hand_computed_case():
    # Two conditions, d = 2: e = log s^2 + Euler's gamma. With log s^2 = +-a the sample variance of e is 2 a^2;
    # choosing 2 a^2 = trigamma(1) + trigamma(2) makes the excess trigamma(2), so d0 = 4 exactly, and
    # s0^2 = exp(mean e + digamma(2) - log 2) = exp(gamma + 1 - gamma) / 2 = e / 2.
    a = math.sqrt((polygamma(1, 1) + polygamma(1, 2)) / 2)
    d0, s02, converged = fit_prior(np.array([[math.exp(a), math.exp(-a)]]), np.full((1, 2), 2.0))
    assert d0[0] == pytest.approx(4.0, rel=1e-6) and s02[0] == pytest.approx(math.e / 2, rel=1e-6)
    assert converged[0]


def test_moderated_variance_and_df_in_the_hand_computed_case():
    # The same two variances from 3 seeds each, no seed effect (seed means equal), but limma's d0 = 4, s0^2 = e/2.
    a = math.sqrt((polygamma(1, 1) + polygamma(1, 2)) / 2)
    y = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    y = y * np.sqrt([[math.exp(a)], [math.exp(-a)]])  # sample variances exp(+-a)
    r = pooled_intervals(y[None], min_conditions=2, tolerated_ratio=np.inf)
    s2 = np.array([math.exp(a), math.exp(-a)])
    assert r["s2"][0] == pytest.approx((4 * math.e / 2 + 2 * s2) / 6)
    # d0 + d = 6 but the whole table has 4 residual df (limma's cap), and the strata allow at most that.
    assert r["df"][0] == pytest.approx([min(6.0, r["df_cap"][0], 4.0)] * 2)
    half = stats.t.ppf(0.975, r["df"][0]) * np.sqrt(r["s2"][0] / 3)
    assert r["high"][0] - r["mean"][0] == pytest.approx(half)


def test_equal_variances_give_infinite_prior_df_as_limma_says():
    # limma's fitFDist: no spread beyond sampling gives d0 = inf and s0^2 = exp(mean of the bias-corrected logs).
    d0, s02, _ = fit_prior(np.full((1, 5), 2.0), np.full((1, 5), 2.0))
    assert np.isinf(d0[0]) and s02[0] == pytest.approx(2.0 * math.exp(-digamma(1.0)))
    # Many conditions with one true variance (chi-square draws): equal-ish, d0 very large or infinite.
    rng = np.random.default_rng(1)
    s2 = rng.chisquare(7, size=(1, 400)) / 7
    d0, s02, _ = fit_prior(s2, np.full_like(s2, 7.0))
    assert d0[0] > 50 and s02[0] == pytest.approx(1.0, abs=0.1)


def test_very_unequal_variances_give_small_prior_df():
    d0, _, _ = fit_prior(np.array([[0.01, 1.0, 100.0, 1e4]]), np.full((1, 4), 2.0))
    assert 0 < d0[0] < 1


def test_bartletts_statistic_matches_scipy_and_the_bound_tightens_with_seeds():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((4, 6)) * np.array([[1.0], [1.5], [2.0], [0.8]])
    stat, bound, p = homogeneity(y.var(axis=1, ddof=1)[None], np.full((1, 4), 5.0), 3.0, 0.05)
    reference = stats.bartlett(*y)
    assert stat[0] == pytest.approx(reference.statistic) and p[0] == pytest.approx(reference.pvalue)
    bounds = [homogeneity(np.ones((1, 4)), np.full((1, 4), d), 3.0, 0.05)[1][0] for d in (2.0, 7.0)]
    assert 0 < bounds[0] < bounds[1]  # more seeds, more room to show agreement
    assert np.isinf(homogeneity(np.ones((1, 4)), np.full((1, 4), 2.0), np.inf, 0.05)[1][0])  # no check


def test_seed_stratum_df_spans_seed_df_to_residual_df():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((4, 5))
    no_seed_effect = noise - noise.mean(axis=0)  # every seed's mean 0: only the residual stratum, 3 * 4 df
    assert seed_stratum_df(no_seed_effect[None])[0] == pytest.approx(12.0)
    huge_seed_effect = noise + 1e4 * rng.standard_normal(5)  # the seed stratum dominates: n - 1 = 4 df
    assert seed_stratum_df(huge_seed_effect[None])[0] == pytest.approx(4.0, rel=1e-3)


def test_a_homogeneous_study_pools_and_narrows_the_typical_interval():
    y = np.random.default_rng(4).standard_normal((16, 8))
    result = pooled_estimates(long_table(y))
    decision = result["c0"].decision
    assert decision.pooled and decision.method == "moderated t" and decision.reason == ""
    assert decision.bartlett <= decision.bartlett_bound and decision.complete_seeds == 8
    for label, e in result.items():
        assert e.per_condition == paired_estimate(y[int(label[1:])])
        assert e.estimate.mean == pytest.approx(e.per_condition.mean) and e.estimate.n == 8
        assert e.df > 7 and e.missing == 0 and e.estimate.sd == result["c1"].estimate.sd  # d0 = inf here
    width = [[e.estimate.ci_high - e.estimate.ci_low, e.per_condition.ci_high - e.per_condition.ci_low]
             for e in result.values()]
    assert np.median(np.divide(*np.array(width).T)) < 1  # a condition with a small SD may widen: not the median


def test_unequal_variances_fall_back_to_the_per_condition_t():
    y = np.random.default_rng(5).standard_normal((4, 8)) * np.array([[1.0], [2.0], [5.0], [10.0]])
    result = pooled_estimates(long_table(y))
    decision = result["c0"].decision
    assert not decision.pooled and decision.method == "per-condition t"
    assert "not shown to agree" in decision.reason and decision.bartlett > decision.bartlett_bound
    assert all(e.estimate == e.per_condition for e in result.values())


def test_too_few_conditions_fall_back():
    y = np.random.default_rng(6).standard_normal((2, 8))
    decision = pooled_estimates(long_table(y))["c0"].decision
    assert not decision.pooled and "fewer than 3 conditions" in decision.reason


def test_missing_pairs_are_counted_not_dropped_silently():
    y = np.random.default_rng(7).standard_normal((4, 5))
    y[1, 2] = np.nan
    table = long_table(y).drop(index=[3])  # c0's seed 3: no row at all
    result = pooled_estimates(table)
    assert result["c0"].missing == 1 and result["c1"].missing == 1 and result["c2"].missing == 0
    assert result["c1"].per_condition.n == 4 and result["c0"].decision.complete_seeds == 3


def test_condition_over_several_columns_as_in_study_gaps():
    y = np.random.default_rng(8).standard_normal((4, 4))
    table = long_table(y).assign(width=lambda t: t.condition.str[1:].astype(int) % 2, depth=lambda t: t.condition)
    result = pooled_estimates(table.drop(columns="condition"), condition=["width", "depth"])
    assert set(result) == {(0, "c0"), (1, "c1"), (0, "c2"), (1, "c3")}


def test_contrasts_are_difference_series_through_the_same_analysis():
    y = np.random.default_rng(9).standard_normal((3, 6))
    table = contrast_table(long_table(y), [("c0", "c1"), ("c0", "c2"), ("c1", "c2")])
    assert list(table.condition.unique()) == ["c0 - c1", "c0 - c2", "c1 - c2"]
    assert table[table.condition == "c0 - c2"].gap_pp.to_numpy() == pytest.approx(y[0] - y[2])
    result = pooled_estimates(table)
    assert result["c1 - c2"].per_condition == paired_estimate(y[1] - y[2])
    with pytest.raises(ValueError, match="no condition 'c9'"):
        contrast_table(long_table(y), [("c0", "c9")])


@pytest.mark.parametrize("change,match", [
    (lambda t: t.drop(columns="gap_pp"), "no column 'gap_pp'"),
    (lambda t: t.drop(columns="seed"), "no column 'seed'"),
    (lambda t: t[~((t.condition == "c2") & (t.seed > 0))], "condition 'c2' has 1 finite value"),
    (lambda t: t.assign(gap_pp=np.where(t.condition == "c1", np.inf, t.gap_pp)), "condition 'c1' has 0 finite"),
    (lambda t: pd.concat([t, t.iloc[[5]]]), "more than one row for condition"),
])
def test_bad_input_raises_one_clear_error(change, match):
    table = long_table(np.random.default_rng(10).standard_normal((4, 3)))
    with pytest.raises(ValueError, match=match):
        pooled_estimates(change(table))


# Cells where the naive moderated t fails (3 seeds, 10-fold variance spread, with and without a shared scratch
# arm; a seed effect twice the noise, where pooled variances carry only n - 1 df) and one where pooling pays.
CELLS = [(0, 10, 3, 16, False), (1, 10, 3, 4, True), (2, 1, 3, 16, True), (0, 10, 8, 4, True), (0, 1, 8, 16, False)]
SIMS = 400  # worst of up to 16 conditions at coverage 0.95: SE 0.011, so 0.905 is 4 SE below


@pytest.mark.parametrize("cell", CELLS)
def test_worst_condition_covers_in_a_small_simulation(cell):
    y = simulate(np.random.default_rng([20261201, *cell]), SIMS, *cell)
    result = pooled_intervals(y)
    covers, width = reported(result)
    assert covers.mean(axis=0).min() >= 0.905


def test_the_check_matters_and_pooling_still_pays_where_it_is_valid():
    y = simulate(np.random.default_rng(11), SIMS, 0, 10, 3, 16, False)
    naive_covers, _ = reported(pooled_intervals(y, tolerated_ratio=np.inf, min_df_gain=0))
    assert naive_covers.mean(axis=0).min() < 0.9  # the noisiest condition under-covers without the check
    y = simulate(np.random.default_rng(12), SIMS, 0, 1, 8, 16, False)
    result = pooled_intervals(y)
    _, width = reported(result)
    assert result["pooled"].mean() > 0.1  # the equivalence check passes in a good share of homogeneous studies
    assert np.median((width / (result["own_high"] - result["own_low"]))[result["pooled"]]) < 0.95


def test_a_studys_per_condition_table_gives_the_pooled_interval_beside_its_own():
    from plasticity_nb.analysis.study_result import pooled_gaps

    rng = np.random.default_rng(0)  # a draw whose variances the test shows to agree
    gaps = pd.DataFrame([dict(seed=s, optimizer=o, pretrain_epochs=e, gap_pp=rng.normal(2, 1))
                         for s in range(8) for o in "abcd" for e in (3, 10)])
    columns = pooled_gaps(gaps, ("optimizer", "pretrain_epochs"))(dict(optimizer="a", pretrain_epochs=3))
    assert columns["variance"] == "moderated t" and columns["pooled_ci_low_pp"] < columns["pooled_ci_high_pp"]
    few = pooled_gaps(gaps[gaps.seed < 3], ("optimizer", "pretrain_epochs"))(dict(optimizer="a", pretrain_epochs=3))
    assert few["variance"].startswith("per-condition t: ")  # 3 seeds cannot show the variances agree
    assert pooled_gaps(gaps, ())({}) == {}  # one condition: nothing to pool
