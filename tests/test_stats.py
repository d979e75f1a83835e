import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from plasticity_nb.analysis.claims import CLAIMS, COLUMNS, ClaimResult, read_claims, record_claims, relation
from plasticity_nb.analysis.premises import Premise
from plasticity_nb.analysis.stats import (
    bound_test,
    combine,
    difference_test,
    equivalence_test,
    paired_estimate,
    power_difference,
    power_equivalence,
    ratio_test,
    seeds_for,
)
from plasticity_nb.core.config import ConfigError

MET = Premise(True, "both fit")


def test_paired_ci_matches_scipys_paired_t_test():
    scratch, warm = np.array([61.2, 58.0, 60.1, 59.4]), np.array([57.9, 55.1, 57.6, 56.6])
    estimate = paired_estimate(scratch - warm)
    reference = stats.ttest_rel(scratch, warm).confidence_interval(0.95)
    assert estimate.mean == pytest.approx((scratch - warm).mean())
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((reference.low, reference.high))
    assert estimate.n == 4 and estimate.verdict == "supported"


@pytest.mark.parametrize("diffs,verdict", [([2.0, 2.5, 3.0], "supported"), ([-2.0, -2.5, -3.0], "not supported"),
                                           ([-1.0, 2.0, 0.5], "inconclusive"), ([3.0], "inconclusive")])
def test_verdicts(diffs, verdict):
    assert paired_estimate(diffs).verdict == verdict
    assert difference_test(diffs).verdict == verdict


def test_diverged_pairs_are_left_out():
    estimate = paired_estimate([1.0, math.nan, 2.0, 3.0])
    assert estimate.n == 3 and estimate.mean == 2.0


def test_tost_matches_statsmodels_paired_tost_and_a_hand_computed_case():
    scratch, warm = np.array([60.2, 58.9, 61.0, 59.5]), np.array([60.0, 59.2, 60.5, 59.6])
    test = equivalence_test(scratch - warm, 1.0)
    assert test.p_value == pytest.approx(ttost_paired(scratch, warm, -1.0, 1.0)[0])
    d = scratch - warm  # by hand: the larger of the two one-sided t-test p values
    se = d.std(ddof=1) / math.sqrt(len(d))
    by_hand = max(stats.t.sf((d.mean() + 1) / se, len(d) - 1), stats.t.cdf((d.mean() - 1) / se, len(d) - 1))
    assert test.p_value == pytest.approx(by_hand)
    assert test.verdict == "equivalent" and test.estimate.confidence == pytest.approx(0.90)
    assert -1 < test.estimate.ci_low and test.estimate.ci_high < 1  # TOST at 0.05 = 90 % interval inside the margin


@pytest.mark.parametrize("diffs,verdict", [([0.1, -0.2, 0.05, 0.0], "equivalent"), ([3.0, 3.5, 2.8], "not equivalent"),
                                           ([0.2, -0.5, 1.4], "inconclusive"), ([-0.3, 0.4], "inconclusive")])
def test_equivalence_verdicts(diffs, verdict):
    assert equivalence_test(diffs, 1.0).verdict == verdict


def test_an_interval_that_includes_zero_is_not_equivalence():
    diffs = [1.5, -1.2, 0.4]  # the 95 % CI includes 0, but it is far wider than the margin
    assert paired_estimate(diffs).verdict == "inconclusive" and equivalence_test(diffs, 1.0).verdict == "inconclusive"


def test_bound_test_is_a_one_sided_t_test():
    d = np.array([0.0, 0.5, -0.5, 0.2, -0.1])
    test = bound_test(d, 1.0)
    assert test.p_value == pytest.approx(stats.ttest_1samp(d, 1.0, alternative="less").pvalue)
    assert test.verdict == "supported"
    assert bound_test([3.0, 3.2, 2.9], 1.0).verdict == "not supported"


def power_of_paired_t(effect_size: float, n: int, two_sided: bool) -> float:
    """Exact power of a one-sample t test by the noncentral t distribution (alpha 0.05)."""
    df, nc = n - 1, effect_size * math.sqrt(n)
    critical = stats.t.ppf(0.975 if two_sided else 0.95, df)
    return stats.nct.sf(critical, df, nc) + (stats.nct.cdf(-critical, df, nc) if two_sided else 0.0)


def test_minimum_detectable_effect_has_80_percent_power():
    test = difference_test([1.0, 3.0, 2.0])  # sd 1, n 3
    assert test.estimate.sd == pytest.approx(1.0)
    assert power_of_paired_t(test.mde / 1.0, 3, two_sided=True) == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("effect,sd", [(1.0, 1.0), (0.5, 1.2), (2.0, 0.7)])
def test_seeds_needed_is_the_smallest_count_with_80_percent_power(effect, sd):
    n = int(seeds_for(lambda n: power_difference(effect, sd, n)))
    assert power_of_paired_t(effect / sd, n, two_sided=True) >= 0.8 - 1e-6
    if n > 2:
        assert power_of_paired_t(effect / sd, n - 1, two_sided=True) < 0.8


def test_tost_power_counts_both_margins_as_a_simulation_does():
    """The audit's case: true mean 0, SD 1.93, margin 1. The nearer margin alone said 26 seeds give 80 %."""
    rng = np.random.default_rng(7)
    for n in (26, 34):
        x = rng.normal(0.0, 1.93, (20_000, n))
        half = stats.t.ppf(0.95, n - 1) * x.std(axis=1, ddof=1) / math.sqrt(n)
        simulated = np.mean((x.mean(axis=1) - half > -1) & (x.mean(axis=1) + half < 1))
        assert power_equivalence(1.0, 1.93, n) == pytest.approx(simulated, abs=4 * math.sqrt(0.25 / 20_000))
    assert power_equivalence(1.0, 1.93, 26) < 0.66
    assert seeds_for(lambda n: power_equivalence(1.0, 1.93, n)) == 34


def test_a_margin_must_be_positive():
    with pytest.raises(ValueError, match="margin must be > 0"):
        equivalence_test([0.1, 0.2], 0.0)


def test_claims_csv_keeps_one_row_per_claim_and_preset(tmp_path):
    record = lambda preset, diffs: record_claims(tmp_path, preset, [ClaimResult("C1", (difference_test(diffs),), MET)])
    record("smoke", [1.0, 2.0])
    record("smoke", [2.0, 2.5, 3.0])
    record("paper", [-1.0, 2.0, 3.0])
    table = read_claims(tmp_path)
    assert list(table.columns) == COLUMNS
    assert table[["claim", "preset", "n_seeds", "verdict", "vs_paper"]].values.tolist() == [
        ["C1", "paper", 3, "inconclusive", "not resolved"], ["C1", "smoke", 3, "supported", "agrees"]]
    assert table.iloc[0].mde_80 > 0 and math.isnan(table.iloc[0].sesoi)  # no config: no smallest effect given


def test_an_output_folder_keeps_one_datasets_results(tmp_path):
    """claims.csv rows (and the figures and notebooks beside them) are named by notebook and preset, so results on
    another dataset are refused rather than put in their place; rows written before datasets existed are CIFAR-10's."""
    result = [ClaimResult("C1", (difference_test([1.0, 2.0, 3.0]),), MET)]
    record_claims(tmp_path, "smoke", result)
    assert list(read_claims(tmp_path).dataset) == ["cifar10"]
    with pytest.raises(ConfigError, match=f"{tmp_path} holds results on cifar10 .* Give each dataset its own"):
        record_claims(tmp_path, "smoke", result, SimpleNamespace(dataset="svhn", smallest_effect=None))
    assert list(read_claims(tmp_path).dataset) == ["cifar10"]
    (tmp_path / "claims.csv").write_text(read_claims(tmp_path).drop(columns="dataset").to_csv(index=False))
    assert list(read_claims(tmp_path).columns) == COLUMNS and list(read_claims(tmp_path).dataset) == ["cifar10"]


def test_a_claim_about_every_condition_needs_every_condition():
    good, unsure = difference_test([2.0, 2.5, 3.0]), difference_test([-1.0, 2.0, 0.5])
    bad = difference_test([-2.0, -2.5, -3.0])
    assert ClaimResult.every_condition("C3", [good, good], MET).verdict == "supported"
    mixed = ClaimResult.every_condition("C3", [good, unsure], MET)
    assert mixed.verdict == "inconclusive" and mixed.primary == unsure  # the weakest evidence is reported
    assert ClaimResult.every_condition("C3", [good, unsure, bad], MET).verdict == "not supported"


def test_a_failed_premise_replaces_the_verdict():
    failed = Premise(False, "optimizer=sgd: scratch arm fits only 89.0 %")
    result = ClaimResult("C3", (difference_test([2.0, 2.5, 3.0]),), failed)
    assert result.verdict == "premise not met" and relation(CLAIMS["C3"], result.verdict) == "premise not met"


def test_claims_the_paper_did_not_make_are_extensions():
    supported = ClaimResult("C9", (difference_test([20.0, 25.0, 30.0]),), MET)
    assert supported.verdict == "supported" and relation(CLAIMS["C9"], supported.verdict) == "extension"
    extensions = {"C8a", "C9", "C10", "C15", "C16b", "C16c", "C16d", "C16e", "C17a", "C17b", "C18c", "C18d"}
    assert {c.id for c in CLAIMS.values() if c.source == "extension"} == extensions
    # the remedy claims are judged against their own sources, not against the paper
    assert relation(CLAIMS["C11"], "not equivalent") == "departs" and CLAIMS["C11"].source == "Ash & Adams 2020"


def test_every_kind_of_test_describes_itself():
    assert difference_test([1.0, 2.0, 3.0], "x").describe().startswith("x: +2.00 pp (95 % CI")
    assert "within +/-1?" in equivalence_test([0.1, 0.2, 0.0], 1.0).describe()
    assert "below +1?" in bound_test([0.1, 0.2, 0.0], 1.0).describe("epochs")


def sign_flip_by_hand(d, mu, greater=True):
    """Every sign pattern of d - mu, and the share whose mean is at least (at most) the observed one."""
    x = np.asarray(d, dtype=float) - mu
    means = [np.mean(np.where(np.array(signs) == 0, 1, -1) * x) for signs in np.ndindex(*(2,) * len(x))]
    return np.mean([m >= x.mean() - 1e-12 if greater else m <= x.mean() + 1e-12 for m in means])


def test_identical_differences_give_no_certainty_from_three_numbers():
    """SD 0 once gave p = 0 and 'equivalent'; the exact sign-flip test cannot go below 2^-3 = 0.125."""
    tost = equivalence_test([0.3, 0.3, 0.3], 1.0)
    assert tost.verdict == "inconclusive" and tost.p_value == pytest.approx(0.125)
    assert tost.estimate.method == "exact sign-flip" and math.isinf(tost.estimate.ci_low)
    assert difference_test([0.5, 0.5, 0.5]).p_value == pytest.approx(0.25)
    assert difference_test([0.5, 0.5, 0.5]).verdict == "inconclusive"
    eight = difference_test([2.0] * 8)  # 8 identical differences: exact p = 2 * 2^-8
    assert eight.verdict == "supported" and eight.p_value == pytest.approx(2 / 256)


def test_ties_use_the_exact_sign_flip_test_and_its_inverted_interval():
    d = [1.0, 1.0, 2.0, 2.0, 1.0, 2.0]  # two distinct values: the t model's SD means little
    test = difference_test(d)
    assert test.estimate.method == "exact sign-flip"
    assert test.p_value == pytest.approx(2 * sign_flip_by_hand(d, 0.0))
    low = test.estimate.ci_low  # the interval keeps exactly the mu the one-sided tests do not reject
    assert sign_flip_by_hand(d, low + 1e-6) > 0.025 and sign_flip_by_hand(d, low - 1e-3) <= 0.025
    assert difference_test([1.0, 2.0, 3.0]).estimate.method == "t"  # three distinct values: the t model


def test_missing_pairs_are_counted_not_dropped_silently():
    test = difference_test([1.0, math.nan, 2.0, 3.5])
    assert test.estimate.n == 3 and test.estimate.missing == 1 and "1 pair(s) missing" in test.describe()


def test_ratios_are_tested_on_the_log_scale_and_never_pass_minus_100_percent():
    warm, scratch = np.array([1.2, 0.1, 3.0, 0.9]), np.array([1.0, 2.0, 1.0, 1.0])
    test = ratio_test(warm, scratch, "trace")
    logs = np.log(warm / scratch)
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    assert test.estimate.mean == pytest.approx(100 * (math.exp(logs.mean()) - 1))  # the geometric-mean ratio
    assert test.estimate.ci_low == pytest.approx(100 * (math.exp(logs.mean() - half) - 1))
    assert test.estimate.ci_low > -100
    assert ratio_test(scratch, warm, "noise", smaller=True).estimate.ci_high < 100  # 100 (1 - ratio) below +100 %
    with_negative = ratio_test([1.2, -0.5, 3.0, 0.9], scratch, "trace")  # a Hutchinson trace can come out < 0
    assert with_negative.estimate.missing == 1 and with_negative.estimate.n == 3


def test_a_claim_that_fails_on_any_condition_is_holm_corrected():
    """Four conditions, one with its 95 % CI just below 0 (one-sided p ~0.02): alone 'not supported', but Holm
    over four needs p < 0.0125, so the claim is not resolved; a clearly negative condition still refutes it."""
    good = difference_test([2.0, 2.5, 3.0, 2.2, 2.8])
    slightly = difference_test([-0.2, -1.9, -0.4, -1.6, -0.1, -1.0])
    assert slightly.verdict == "not supported" and 0.0125 < slightly.contrary_p < 0.05
    from statsmodels.stats.multitest import multipletests
    assert not multipletests([good.contrary_p, good.contrary_p, good.contrary_p, slightly.contrary_p],
                             alpha=0.05, method="holm")[0].any()
    assert combine([good, good, good, slightly]) == "inconclusive"
    assert combine([good, slightly]) == "not supported" or slightly.contrary_p >= 0.025
    clearly = difference_test([-3.0, -3.5, -2.8, -3.1, -3.3])
    assert combine([good, good, good, clearly]) == "not supported"


def test_unresolved_verdicts_are_not_resolved_never_departs():
    assert relation(CLAIMS["C1"], "inconclusive") == "not resolved"
    assert relation(CLAIMS["C1"], "premise uncertain") == "not resolved"
    assert relation(CLAIMS["C12b"], "supported", post_hoc=True) == "post hoc"


def test_an_estimate_decides_nothing_and_never_agrees_or_departs():
    from plasticity_nb.analysis.claims import claim_row
    from plasticity_nb.analysis.stats import ESTIMATE, slope_estimate, trend_test

    seeds, levels = [0, 0, 0, 1, 1, 1, 2, 2, 2], [2500, 5000, 10000] * 3
    gaps = [4.0, 3.1, 2.2, 5.2, 3.9, 3.0, 3.3, 2.7, 1.4]  # a clear slope, far from 0: still no verdict
    slope = slope_estimate(gaps, levels, seeds, "gap change per doubling")
    assert slope.estimate.ci_high < 0 and slope.verdict == ESTIMATE and combine([slope]) == ESTIMATE
    assert relation(CLAIMS["C1"], ESTIMATE) == "not resolved" and relation(CLAIMS["C17a"], ESTIMATE) == "extension"
    bound = trend_test(gaps, levels, seeds, 0.5)
    assert combine([slope, difference_test([1.0, 2.0, 3.0])]) == "inconclusive"  # an estimate among tests: unsettled
    row = claim_row(ClaimResult("C17a", (slope,), MET, (bound,)), "quick")
    assert row["verdict"] == ESTIMATE and row["vs_paper"] == "extension" and row["test"] == "estimate"
    assert row["ci_level"] == 0.95 and row["effect"] == pytest.approx(slope.estimate.mean, abs=1e-3)
    # no plan from a 3-seed SD, and no SD stated for pp per doubling (claims.PLANNING_SD): NaN, not a guess
    assert math.isnan(row["power_at_sesoi"]) and math.isnan(row["seeds_for_sesoi"])
    assert "shrink below +0.5?" in row["other_tests"]  # the bound beside it
    assert "p =" not in slope.describe("pp/doubling") and slope.describe().endswith("-> estimate only")


def test_a_large_effect_needs_few_seeds():
    assert seeds_for(lambda n: power_difference(13.65, 2.18, n)) == 3  # statsmodels' solver gives up here (NaN)


def test_a_screen_is_holm_over_its_candidates_and_never_says_none_predicts():
    from plasticity_nb.analysis.stats import correlation_test, screen_test

    x = np.arange(10.0)
    strong = correlation_test(x, x + np.sin(x), "strong")
    weak = correlation_test(x, np.cos(3 * x), "weak")
    screen = screen_test([weak, strong, weak])
    assert screen.kind == "screen" and screen.margin == 3 and screen.label == "strongest of 3: strong"
    assert screen.verdict == "supported" and screen.p_value == pytest.approx(3 * strong.p_value)
    assert screen_test([weak, weak]).verdict == "inconclusive"  # no predictor found is not "none predicts"
    with pytest.raises(ValueError, match="correlation tests"):
        screen_test([difference_test([1.0, 2.0, 3.0])])


def test_a_screen_of_13_null_metrics_over_13_condition_means_keeps_its_level():
    """The design of C15: under no relation (each candidate independent of the gap, candidates correlated with
    each other, seeds shifting every condition alike), Pearson's p per candidate over condition means, Holm over
    the 13, keeps the family-wise false-positive rate at or below ALPHA (vectorised: the screen's own p values)."""
    from plasticity_nb.analysis.stats import holm_rejects

    rng, conditions, seeds, sims, k = np.random.default_rng(7), 13, 3, 2000, 13
    gaps = (rng.normal(size=(sims, conditions, 1)) + rng.normal(size=(sims, 1, seeds))
            + rng.normal(size=(sims, conditions, seeds))).mean(axis=2)
    shared = rng.normal(size=(sims, 1, conditions, 1))  # what makes the candidates correlate
    metrics = (shared + rng.normal(size=(sims, k, conditions, seeds))).mean(axis=3)
    p = stats.pearsonr(metrics, np.broadcast_to(gaps[:, None, :], metrics.shape), axis=2).pvalue
    false = np.mean([any(holm_rejects(row)) for row in p])
    assert false <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims)


def test_holm_rejects_what_statsmodels_rejects():
    from statsmodels.stats.multitest import multipletests

    from plasticity_nb.analysis.stats import holm_rejects

    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 13):  # few calls: multipletests collects garbage each time
        for _ in range(4):
            p = rng.uniform(0, 0.1, size) ** rng.uniform(0.5, 2)
            assert holm_rejects(p) == list(multipletests(p, alpha=0.05, method="holm")[0])
    assert holm_rejects([0.01, float("nan")]) == [True, False] and holm_rejects([]) == []
