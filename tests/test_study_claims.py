"""Each study's claims computed from constructed runs: the right comparison, test and premise."""
import numpy as np
import pandas as pd
import pytest

from plasticity_nb.studies import resets, tuning_lr
from plasticity_nb.studies.study_result import compare
from tests.test_premises import record

SEED_NOISE = {0: 0.0, 1: 0.004, 2: -0.003}


def build(config, test_acc, train_acc=lambda labels: [1.0, 1.0, 1.0]):
    records, labels = [], []
    for run_labels, run in config.plan():
        accuracy = test_acc(run_labels) + SEED_NOISE[run_labels["seed"] % 3]
        records.append(record(run.key() + str(run_labels), train_acc(run_labels), accuracy))
        labels.append(run_labels)
    return compare(records, labels, config.last_k, config.CONDITIONS, config.premise_rule())


def test_c8a_compares_at_the_same_rate_and_c8b_warm_10x_against_scratch_1x():
    config = tuning_lr.Config.from_preset("quick", seeds=[0, 1, 2], lr_multipliers=[1, 10])
    accuracy = {(1, "scratch"): 0.60, (1, "warm"): 0.55, (10, "scratch"): 0.62, (10, "warm"): 0.61}
    spread = lambda labels: 0.001 * labels["seed"] if labels["arm"] == "warm" else 0
    result = build(config, lambda labels: accuracy[(labels["lr_multiplier"], labels["arm"])] + spread(labels))
    c8a, c8b = tuning_lr.claims(result, config)
    assert c8a.primary.estimate.mean == pytest.approx(100 * (0.05 - 0.01), abs=0.2)  # gap(1x) 5 pp - gap(10x) 1 pp
    assert c8a.tests[1].estimate.mean == pytest.approx(1.0, abs=0.2)  # the remaining gap at 10x
    assert c8b.tests[1].estimate.mean == pytest.approx(100 * (0.60 - 0.61), abs=0.2)  # scratch 1x - warm 10x
    assert c8b.verdict == "not supported"  # warm at 10x beats scratch at 1x: the gap is not "not closed"


def test_c7_recovery_is_an_equivalence_and_a_partial_reset_leaves_a_gap():
    config = resets.Config.from_preset("quick", seeds=[0, 1, 2])
    def test_acc(labels):
        if labels["arm"] == "scratch":
            return 0.60
        return (0.60 if labels["reset_from_group"] <= 3 else 0.55) + 0.001 * labels["seed"]
    result = build(config, test_acc)
    found = {c.claim: c for c in resets.claims(result, config)}
    assert found["C7a"].primary.kind == "equivalence" and found["C7a"].verdict == "equivalent"
    assert found["C7b"].verdict == "supported"
    assert found["C7c"].primary.kind == "bound"


def test_c7_holds_at_each_depth_not_on_the_mean_over_depths():
    """Remaining gaps of +2 pp at k = 3 and -2 pp at k = 2 average to 0, which once passed as 'recovers'."""
    config = resets.Config.from_preset("quick", seeds=[0, 1, 2])
    def test_acc(labels):
        if labels["arm"] == "scratch":
            return 0.60
        shift = {3: -0.02, 2: 0.02}.get(labels["reset_from_group"], -0.05)
        return 0.60 + shift + 0.001 * labels["seed"] ** 2
    found = {c.claim: c for c in resets.claims(build(config, test_acc), config)}
    assert sorted(t.label for t in found["C7a"].tests) == ["gap left after reset 2-6", "gap left after reset 3-6"]
    assert found["C7a"].verdict == "not equivalent"


def test_epochs_to_target_counts_a_run_that_never_gets_there_as_budget_plus_one():
    config = resets.Config.from_preset("smoke", seeds=[0, 1])
    fits = lambda labels: [0.5, 0.95] if labels["arm"] == "scratch" else [0.5, 0.6]
    result = build(config, lambda labels: 0.5, train_acc=fits)
    epochs = resets.epochs_to_target(result, 90.0, budget=2)
    assert set(epochs[epochs.arm == "scratch"].epochs) == {2} and set(epochs[epochs.arm == "warm"].epochs) == {3}


def test_remedy_claims_test_what_each_source_states():
    from plasticity_nb.studies import remedies

    config = remedies.Config.from_preset("quick", seeds=[0, 1, 2])
    scratch = {"none": 0.60, "augment": 0.70}
    warm = {"none": 0.55, "shrink_perturb": 0.60, "dash": 0.65, "l2_init": 0.52, "redo": 0.59, "cbp": 0.56,
            "augment": 0.70, "weight_decay": 0.55}
    spread = {"none": 1, "shrink_perturb": 2, "dash": 3, "l2_init": 4, "redo": 5, "cbp": 6, "augment": 7,
              "weight_decay": 8}  # seeds differ, and differently per condition: no tied differences
    def test_acc(labels):
        remedy = labels["remedy"]
        if labels["arm"] == "scratch":
            return scratch.get(remedy, 0.60)
        return warm[remedy] + 0.0005 * spread[remedy] * labels["seed"] ** 2
    result = build(config, test_acc)
    found = {c.claim: c for c in remedies.claims(result, config)}
    assert found["C11"].primary.kind == "equivalence" and found["C11"].verdict == "equivalent"
    assert found["C12"].verdict == "not equivalent" and found["C12b"].verdict == "supported"  # DASH beats scratch
    # "does little": L2 Init removes none of the gap (it widens it), ReDo removes 4 of its 5 pp
    assert found["C13a"].primary.kind == "bound" and found["C13a"].verdict == "supported"
    assert found["C13b"].verdict == "not supported"
    assert found["C14a"].primary.estimate.mean == pytest.approx(5.0, abs=0.5)  # gap(none) 5 pp - gap(augment) 0
    assert "C15" not in found  # notebook 11's, over every remedy
    # beside each remedy's claim, the share of seeds whose gap it reduces (an estimate, no verdict)
    for claim, remedy in (("C11", "shrink_perturb"), ("C12", "dash"), ("C12b", "dash"), ("C13a", "l2_init"),
                          ("C13b", "redo"), ("C13c", "cbp"), ("C14a", "augment"), ("C14b", "weight_decay")):
        share = found[claim].others[-1]
        reductions = result.gap_change("remedy", "none", remedy)
        assert share.kind == "share" and share.verdict == "estimate only" and remedy in share.label
        assert share.estimate.mean == pytest.approx((reductions > 0).mean()) and share.estimate.n == 3
    assert found["C13a"].others[-1].estimate.mean == 0  # L2 Init widens the gap on every seed


def newer_result(config, gap_of, start_metric=None):
    """Runs of notebook 11's conditions, scratch at 60 % and warm at 60 % - gap_of(remedy) points (plus a seed
    spread unique to each condition); `start_metric(gap)` fills every start-of-tuning measure of each warm run."""
    from plasticity_nb.studies import remedies

    order = ("none", *config.remedies)
    def test_acc(labels):
        if labels["arm"] == "scratch":
            return 0.60
        remedy = labels["remedy"]
        return 0.60 - gap_of(remedy) / 100 + 0.0005 * (1 + order.index(remedy)) * (labels["seed"] % 3) ** 2
    result = build(config, test_acc)
    h = result.history
    first = (h.tune_epoch == 1) & (h.arm == "warm")
    rng, gap = np.random.default_rng(0), h.remedy.map(gap_of)
    for column in remedies.START_METRICS:
        drawn = pd.Series(rng.normal(size=len(h)), index=h.index)
        h[column] = (start_metric(gap) if start_metric else drawn).where(first)
    return result


def test_notebook_11_tests_each_new_remedy_by_the_reduction_it_brings():
    from plasticity_nb.studies import newer_remedies

    config = newer_remedies.Config.from_preset("quick", seeds=[0, 1, 2])
    gaps = {"none": 5.0, "hare_tortoise": 0.0, "sam": 5.0, "soft_shrink_perturb": 12.0}
    result = newer_result(config, lambda remedy: gaps.get(remedy, 4.0))
    found = {c.claim: c for c in newer_remedies.claims(result, config)}
    assert set(found) == {"C15", "C16a", "C16b", "C16c", "C16d", "C16e"}
    assert found["C16a"].primary.kind == "difference" and found["C16a"].verdict == "supported"
    assert found["C16a"].primary.estimate.mean == pytest.approx(5.0, abs=1.0)  # gap(none) 5 - gap(H&T) 0, + spread
    assert found["C16a"].others[1].kind == "equivalence"  # the remaining gap's TOST beside it
    assert found["C16a"].others[2].kind == "share" and found["C16a"].others[2].estimate.mean == 1.0
    assert found["C16c"].verdict == "not supported"  # soft S&P widens the gap here
    assert found["C16c"].others[2].estimate.mean == 0.0  # soft S&P widens the gap on every seed


def test_the_improvement_table_sums_each_remedys_trials_over_notebooks_and_counts_shared_runs_once():
    from plasticity_nb.studies import newer_remedies, remedies

    gaps = {"none": 5.0, "shrink_perturb": 1.0, "l2_init": 7.0, "hare_tortoise": 0.0}
    gap_of = lambda remedy: gaps.get(remedy, 4.0)
    ten = newer_result(remedies.Config.from_preset("quick", seeds=[0, 1, 2]), gap_of)
    eleven = newer_remedies.Config.from_preset("quick")  # seeds 300-302: other runs than notebook 10's
    table = remedies.improvement_table({"10_remedies": ten, "11_remedies_2024": newer_result(eleven, gap_of),
                                        "01": build(resets.Config.from_preset("quick", seeds=[0, 1, 2]),
                                                    lambda labels: 0.6)})  # no remedy condition: left out
    rows = table.set_index("remedy")
    assert list(table.columns) == remedies.IMPROVEMENT_COLUMNS
    assert set(rows.index) == set(remedies.BUILTIN_CONDITIONS) | set(newer_remedies.NEWER)
    assert rows.loc["shrink_perturb", ["improved", "trials", "ties", "repeated"]].tolist() == [6, 6, 0, 0]
    assert rows.loc["l2_init", ["improved", "trials"]].tolist() == [0, 6]
    assert rows.loc["hare_tortoise", ["improved", "trials"]].tolist() == [3, 3]  # notebook 11's alone
    assert rows.loc["shrink_perturb", "notebooks"] == "10_remedies (3 seeds); 11_remedies_2024 (3 seeds)"
    assert rows.loc["l2_init", "ci_high"] == pytest.approx(1 - 0.025 ** (1 / 6))  # 0 of 6: exact upper end
    assert "approximate where conditions share seeds" in rows.loc["l2_init", "method"]
    # at notebook 10's seeds notebook 11 trains the same runs for notebook 10's remedies: they count once
    same = newer_result(newer_remedies.Config.from_preset("quick", seeds=[0, 1, 2]), gap_of)
    again = remedies.improvement_table({"10_remedies": ten, "11_remedies_2024": same}).set_index("remedy")
    assert again.loc["shrink_perturb", ["trials", "repeated", "notebooks"]].tolist() == [3, 3, "10_remedies (3 seeds)"]
    assert again.loc["hare_tortoise", ["trials", "repeated"]].tolist() == [3, 0]


def test_c15_screens_every_start_of_tuning_measure_over_the_conditions_with_holm():
    from plasticity_nb.analysis.claims import claim_row
    from plasticity_nb.studies import newer_remedies, remedies

    config = newer_remedies.Config.from_preset("quick", budget="fixed")  # the fixed-budget registry: 300-302 unseen
    gap_of = lambda remedy: 0.5 * (("none", *config.remedies).index(remedy) % 7)
    noise = newer_result(config, gap_of)  # every measure drawn independently of the gap
    c15 = newer_remedies.predictor_claim(noise, config)
    assert c15.primary.kind == "screen" and c15.primary.margin == len(remedies.START_METRICS) == 13
    assert len(c15.others) == 13 and c15.primary.estimate.n == 1 + len(config.remedies)  # units: conditions
    assert c15.earlier.primary.label.startswith("r(grad_ratio, gap)")  # the definition before 2026-12-02
    tracks = newer_result(config, gap_of, start_metric=lambda gap: 1 + 10 * gap)
    found = newer_remedies.predictor_claim(tracks, config)
    assert found.verdict == "supported" and found.primary.p_value == pytest.approx(
        min(1.0, 13 * min(t.p_value for t in found.others)))
    row = claim_row(found, "quick")  # seeds 300-302 were never seen: the new definition is confirmatory
    assert row["verdict"] == "supported" and "confirmatory on unseen seeds" in row["definition"]
    earlier_seeds = newer_remedies.Config.from_preset("quick", seeds=[0, 1, 2], budget="fixed")
    seen = claim_row(newer_remedies.predictor_claim(newer_result(earlier_seeds, gap_of, lambda g: 1 + g),
                                                    earlier_seeds), "quick")
    assert "post hoc" in seen["definition"]  # notebook 10's seeds: the earlier definition is primary
