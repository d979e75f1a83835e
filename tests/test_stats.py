import math

import numpy as np
import pytest
from scipy import stats

from plasticity_nb.claims import COLUMNS, ClaimResult, read_claims, record_claims
from plasticity_nb.stats import paired_estimate


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


def test_diverged_pairs_are_left_out():
    estimate = paired_estimate([1.0, math.nan, 2.0, 3.0])
    assert estimate.n == 3 and estimate.mean == 2.0


def test_claims_csv_keeps_one_row_per_claim_and_preset(tmp_path):
    def record(preset, diffs):
        return record_claims(tmp_path, preset, [ClaimResult.from_estimate("C1", paired_estimate(diffs))])

    record("smoke", [1.0, 2.0])
    record("smoke", [2.0, 2.5, 3.0])
    record("quick", [-1.0, 2.0, 3.0])
    table = read_claims(tmp_path)
    assert list(table.columns) == COLUMNS
    assert table[["claim", "preset", "n_seeds", "verdict"]].values.tolist() == [
        ["C1", "quick", 3, "inconclusive"], ["C1", "smoke", 3, "supported"]]


def test_a_claim_about_every_condition_needs_every_condition():
    good, unsure = paired_estimate([2.0, 2.5, 3.0]), paired_estimate([-1.0, 2.0, 0.5])
    bad = paired_estimate([-2.0, -2.5, -3.0])
    assert ClaimResult.every_condition("C3", [good, good]).verdict == "supported"
    mixed = ClaimResult.every_condition("C3", [good, unsure])
    assert mixed.verdict == "inconclusive" and mixed.estimate == unsure  # the weakest evidence is reported
    assert ClaimResult.every_condition("C3", [good, unsure, bad]).verdict == "not supported"
