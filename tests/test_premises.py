"""Premise gates on constructed histories: a verdict only where both arms fit their training data."""
import math
from pathlib import Path

import pandas as pd
import pytest

from plasticity_nb.analysis.premises import PremiseRule, RunFitRule
from plasticity_nb.execution.store import RunRecord
from plasticity_nb.run.run_config import Phase, RunConfig
from plasticity_nb.studies import optimisers, warm_start_gap
from plasticity_nb.studies.study_config import WarmStartConfig
from plasticity_nb.studies.study_result import CLOSED_THREAT, GAP_THREAT, compare

RULE = PremiseRule(min_train_acc=97.0, max_difference=2.0)  # a rule of its own, not a preset's


def record(name: str, train_acc: list[float], test_acc: float, status: str = "finished") -> RunRecord:
    """A stored run whose final phase has these per-epoch train accuracies (fractions)."""
    rows = [dict(phase=1, pool="full", epoch=e + 1, phase_epoch=e + 1, step=e, lr=1e-3, train_loss=0.1,
                 train_acc=a, test_loss=1.0, test_acc=test_acc, seconds=1.0) for e, a in enumerate(train_acc)]
    return RunRecord(None, Path(name), pd.DataFrame(rows), pd.DataFrame(), {"status": status}, {})


def study(warm_fit: list[float], scratch_fit: list[float], gaps=(0.03, 0.04, 0.05)):
    records, labels = [], []
    for seed, gap in enumerate(gaps):
        records += [record(f"w{seed}", warm_fit, 0.60 - gap), record(f"s{seed}", scratch_fit, 0.60)]
        labels += [dict(seed=seed, arm="warm"), dict(seed=seed, arm="scratch")]
    return compare(records, labels, last_k=3, rule=RULE)


def test_fitted_arms_get_a_verdict():
    result = study([0.90, 0.99, 0.99, 1.0], [0.80, 0.98, 0.99, 0.99])
    config = WarmStartConfig.from_preset("quick", budget="fixed")
    claim = warm_start_gap.claims(result, config)[0]
    assert claim.premise.met and claim.verdict == "supported"
    assert result.estimates.premise.tolist() == ["met"]


def test_an_unfitted_arm_is_named_with_its_train_accuracy():
    result = study([0.99, 1.0, 1.0, 1.0], [0.80, 0.88, 0.90, 0.91])  # window mean 89.7 %
    claim = warm_start_gap.claims(result, WarmStartConfig.from_preset("quick", budget="fixed"))[0]
    assert claim.verdict == "premise not met"
    assert "scratch arm fits only 89.7 %" in claim.premise.detail and "floor 95 %" in claim.premise.detail


def test_arms_that_fit_unequally_fail_the_premise():
    result = study([1.0, 1.0, 1.0], [0.97, 0.975, 0.975])  # both above 97 %, 2.7 points apart
    premise = result.premise(RULE)
    assert not premise.met and "2.7 pp apart" in premise.detail


def test_the_window_not_the_last_epoch_decides():
    spiky = [1.0, 1.0, 0.94]  # a loss spike in the last epoch (94 %): window mean 98 %
    assert study(spiky, [0.99, 0.99, 0.99]).premise(RULE).met


def test_a_diverged_arm_fails_the_premise():
    records = [record("w0", [1.0], 0.5), record("s0", [0.2], float("nan"), status="diverged"),
               record("w1", [1.0], 0.5), record("s1", [1.0], 0.6)]
    labels = [dict(seed=s, arm=a) for s in (0, 1) for a in ("warm", "scratch")]
    assert not compare(records, labels, last_k=1, rule=RULE).premise(RULE).met


def test_every_condition_of_a_claim_is_checked():
    config = optimisers.Config.from_preset("smoke", premise_train_acc=97.0)
    records, labels = [], []
    for labels_, run in config.plan():
        fit = [0.85] if labels_["optimizer"] == "sgd" and labels_["arm"] == "scratch" else [1.0]
        records.append(record(run.key(), fit * 2, 0.5))
        labels.append(labels_)
    result = compare(records, labels, config.last_k, config.CONDITIONS, config.premise_rule())
    claim = optimisers.claims(result, config)[0]
    assert claim.verdict == "premise not met"
    assert claim.premise.detail.startswith("optimizer=sgd, pretrain_epochs=2: scratch arm fits only 85.0 %")


@pytest.mark.parametrize("overrides,culprit", [
    (dict(equivalence_margin=0.0), "equivalence_margin must be > 0"),
    (dict(equivalence_margin=-1.0), "equivalence_margin must be > 0"),
    (dict(seeds=[3]), "seeds \\[3\\] has one seed"),
    (dict(premise_train_acc=101.0), "premise_train_acc must be in \\[0, 100\\]"),
    (dict(premise_arm_difference=-1.0), "premise_arm_difference must be >= 0"),
])
def test_bad_claim_options_are_rejected(overrides, culprit):
    from plasticity_nb import ConfigError

    with pytest.raises(ConfigError, match=culprit):
        WarmStartConfig.from_preset("quick", **overrides)


def test_the_premise_states_its_own_uncertainty():
    """A mean above the floor from three scattered seeds is not enough: the lower 95 % bound must reach it."""
    rule = PremiseRule(min_train_acc=95.0, max_difference=2.0)
    fitted = [99.0, 99.5, 99.2]
    assert rule.check({"warm": fitted, "scratch": [99.1, 99.4, 99.0]}, "here").state == "met"
    unsure = rule.check({"warm": [96.0, 94.0, 97.5], "scratch": fitted}, "here")  # mean 95.8, lower bound ~92.9
    assert unsure.state == "uncertain" and "uncertain whether the warm arm fits 95.8 %" in unsure.detail
    clearly = rule.check({"warm": [90.0, 91.0, 89.0], "scratch": fitted}, "here")
    assert clearly.state == "not met" and "warm arm fits only 90.0 %" in clearly.detail
    apart = rule.check({"warm": [97.0, 99.0, 96.0], "scratch": fitted}, "here")  # 2.1 pp apart, bounds wide
    assert apart.state == "uncertain" and "fit equally" in apart.detail


def test_an_uncertain_premise_gives_no_verdict():
    from plasticity_nb.analysis.claims import CLAIMS, ClaimResult, relation
    from plasticity_nb.analysis.premises import Premise
    from plasticity_nb.analysis.stats import difference_test

    result = ClaimResult("C1", (difference_test([2.0, 2.5, 3.0]),), Premise(False, "unsure", uncertain=True))
    assert result.verdict == "premise uncertain" and relation(CLAIMS["C1"], result.verdict) == "not resolved"
    both = Premise.all_of([Premise(True, "a"), Premise(False, "b", uncertain=True), Premise(False, "c")])
    assert both.state == "not met" and both.detail == "c"


def test_an_open_gate_stays_open_however_few_and_scattered_the_seeds():
    """smoke's rule (floor 0 %, arms within 100 points): two seeds give t bounds beyond 0-100 %, which an accuracy
    cannot reach, so they are clipped and the premise holds."""
    rule = PremiseRule(min_train_acc=0.0, max_difference=100.0)
    assert rule.check({"warm": [10.0, 60.0], "scratch": [90.0, 20.0]}, "smoke").state == "met"


def test_a_premise_counts_the_arms_it_checks_over_its_conditions():
    from plasticity_nb.analysis.premises import Premise

    rule = PremiseRule(min_train_acc=95.0, max_difference=2.0)
    one = rule.check({"warm": [99.0, 99.5, 99.2], "scratch": [99.1, 99.4, 99.0]}, "a")
    unfit = rule.check({"warm": [90.0, 91.0, 89.0], "scratch": [99.1, 99.4, 99.0]}, "b")
    assert one.arms == 2 and unfit.arms == 2
    assert Premise.all_of([one, one, unfit]).arms == 6 and Premise.all_of([one, unfit]).state == "not met"
    assert Premise(True, "matched loss").arms == 0  # a premise on something other than fit


def test_the_pass_chance_is_the_floor_tests_power_and_agrees_with_simulation():
    """Exact (noncentral t) against a seeded simulation of the floor check, and against the design's published
    planning numbers (benchmarks/RESULTS.md: one arm 0.985 at 16 seeds, eight arms 0.884 simulated)."""
    import numpy as np
    from scipy.special import stdtrit

    from plasticity_nb.analysis.premises import pass_chance, seeds_to_pass

    rng = np.random.default_rng(7)
    for n in (4, 8, 16):
        acc = 1.0 + rng.standard_normal((100_000, n))  # floor 0, truly 1 SD above it
        passed = acc.mean(1) - stdtrit(n - 1, 0.95) * acc.std(1, ddof=1) / np.sqrt(n) >= 0
        assert pass_chance(n, 1) == pytest.approx(passed.mean(), abs=0.004)
    assert pass_chance(16, 1) == pytest.approx(0.985, abs=0.001)
    assert pass_chance(16, 8) == pytest.approx(0.885, abs=0.002)
    assert pass_chance(16, 0) == 1.0 and pass_chance(8, 2) == pytest.approx(pass_chance(8, 1) ** 2)
    assert seeds_to_pass(8) == 17 and pass_chance(16, 8) < 0.9 <= pass_chance(17, 8)
    assert seeds_to_pass(2) == 13 and seeds_to_pass(1, margin_sd=0.01, most=30) is None
    with pytest.raises(ValueError, match="at least 2 seeds"):
        pass_chance(1, 2)


# Train-to-target's per-run premise (RunFitRule): flags in the direction that could fake the claim.
RUN_RULE = RunFitRule(target=99.0, bound=2.0)


def seeded(values) -> pd.Series:
    return pd.Series(values, index=range(len(values)), dtype=float)


def run_check(warm, scratch, capped_warm=(), threat=GAP_THREAT):
    n = len(warm)
    capped = {"warm": pd.Series([i in capped_warm for i in range(n)]), "scratch": pd.Series([False] * n)}
    return RUN_RULE.check({"warm": seeded(warm), "scratch": seeded(scratch)}, "test", capped, threat)


def test_warm_fitting_more_never_flags_a_gap_claim_but_scratch_fitting_more_does():
    assert run_check([99.9] * 5, [95.0] * 5).met  # it could only hide a gap
    scratch_more = run_check([95.0] * 5, [99.9] * 5)
    assert not scratch_more.met and scratch_more.flagged == (0, 1, 2, 3, 4)
    assert "scratch fits 4.9 points more than warm" in scratch_more.detail


def test_for_a_closed_gap_the_warm_side_fitting_more_is_the_threat():
    assert not run_check([99.9] * 5, [95.0] * 5, threat=CLOSED_THREAT).met
    assert run_check([95.0] * 5, [99.9] * 5, threat=CLOSED_THREAT).met


def test_tied_fits_flag_nothing_and_claim_no_interval():
    premise = run_check([99.5] * 3, [99.5] * 3)
    assert premise.met and premise.flagged == () and "bound" not in premise.detail


def test_a_diverged_or_capped_run_flags_its_seed_whatever_the_direction():
    diverged = run_check([99.5, math.nan, 99.5, 99.5, 99.5], [99.5] * 5, threat=None)
    assert diverged.flagged == (1,) and "warm diverged" in diverged.detail
    capped = run_check([99.5] * 5, [99.5] * 5, capped_warm=(2,), threat=None)
    assert capped.flagged == (2,) and "warm capped below 99 %" in capped.detail


@pytest.mark.parametrize("seeds,flagged,met", [(3, 1, True), (3, 2, False), (6, 2, True), (6, 3, False),
                                               (15, 5, True), (15, 6, False)])
def test_a_claim_is_void_when_more_than_a_third_of_its_seeds_are_flagged(seeds, flagged, met):
    scratch = [99.9] * flagged + [99.0] * (seeds - flagged)  # scratch fits 4.9 points more in the first seeds
    premise = run_check([95.0] * flagged + [99.0] * (seeds - flagged), scratch)
    assert len(premise.flagged) == flagged and premise.met is met


def target_record(name, train_acc, test_acc, target=0.99, cap=4, window=2):
    phase = Phase(epochs=cap, target_train_acc=target, window=window)
    rows = [dict(phase=1, pool="full", epoch=e + 1, phase_epoch=e + 1, step=e, lr=1e-3, train_loss=0.1,
                 train_acc=a, test_loss=1.0, test_acc=test_acc, seconds=1.0) for e, a in enumerate(train_acc)]
    config = RunConfig(phases=(phase,), train_subset=5000, test_subset=1000)
    return RunRecord(config, Path(name), pd.DataFrame(rows), pd.DataFrame(), {"status": "finished"}, {})


def test_a_capped_run_is_flagged_in_the_study_and_the_claim_reads_premise_not_met():
    records, labels = [], []
    for seed in range(3):
        warm = [0.9, 0.95, 0.96, 0.97, 0.97, 0.98] if seed > 0 else [0.9, 0.99, 0.99, 0.995]  # seeds 1, 2 capped
        records += [target_record(f"w{seed}", warm, 0.55), target_record(f"s{seed}", [0.9, 0.99, 0.99, 0.99], 0.6)]
        labels += [dict(seed=seed, arm="warm"), dict(seed=seed, arm="scratch")]
    config = WarmStartConfig.from_preset("quick").replace(budget="target")
    result = compare(records, labels, last_k=2, rule=config.premise_rule())
    assert result.summary.capped.tolist() == [False, False, True, False, True, False]
    claim = warm_start_gap.claims(result, config)[0]
    assert claim.premise.flagged == (1, 2) and claim.verdict == "premise not met"  # one of 3 would be allowed


def test_beside_a_target_gap_claim_the_per_protocol_gap_and_the_gap_at_equal_fit():
    records, labels = [], []
    for seed, (warm_fit, gap) in enumerate([(0.99, 0.03), (0.995, 0.04), (0.999, 0.05), (0.992, 0.02), (0.9, 0.1)]):
        warm = [0.95, warm_fit, warm_fit, warm_fit] if seed < 4 else [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]  # seed 4 capped
        records += [target_record(f"w{seed}", warm, 0.60 - gap), target_record(f"s{seed}", [0.99, 1.0, 1.0], 0.60)]
        labels += [dict(seed=seed, arm="warm"), dict(seed=seed, arm="scratch")]
    config = WarmStartConfig.from_preset("quick").replace(budget="target")
    result = compare(records, labels, last_k=2, rule=config.premise_rule())
    claim = warm_start_gap.claims(result, config)[0]
    assert claim.premise.met and claim.premise.flagged == (4,)  # one of five is allowed
    per_protocol, equal_fit = claim.others
    assert per_protocol.estimate.n == 4 and per_protocol.estimate.mean == pytest.approx(3.5)
    assert claim.primary.estimate.n == 5  # intention to treat: every pair
    assert equal_fit.label == "gap at equal fit" and equal_fit.estimate.n == 5


def test_a_median_window_summary_is_not_moved_by_one_spike_epoch():
    spiky = [0.99, 0.995, 0.70, 0.99, 0.995]  # Adam's spike in the middle of the window
    records = [record("w", spiky, 0.55), record("s", [0.99, 0.99, 0.99, 0.99, 0.99], 0.6)]
    labels = [dict(seed=0, arm="warm"), dict(seed=0, arm="scratch")]
    mean = compare(records, labels, last_k=5, rule=RULE).summary.window_train_acc.iloc[0]
    median = compare(records, labels, last_k=5, rule=RULE, summary="median").summary.window_train_acc.iloc[0]
    assert mean == pytest.approx(93.4) and median == pytest.approx(99.0)
