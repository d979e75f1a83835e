"""Each study's claims computed from constructed runs: the right comparison, test and premise."""
import pytest

from plasticity_nb.analysis.study_result import compare
from plasticity_nb.studies import resets, tuning_lr
from tests.test_premises import record

SEED_NOISE = {0: 0.0, 1: 0.004, 2: -0.003}


def build(config, test_acc, train_acc=lambda labels: [1.0, 1.0, 1.0]):
    records, labels = [], []
    for run_labels, run in config.plan():
        accuracy = test_acc(run_labels) + SEED_NOISE[run_labels["seed"]]
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
    # the start-of-tuning metrics, as the runs record them in their first tuning epoch: here the imbalance
    # grows with the gap, so C15 must find a positive correlation
    first = result.history.tune_epoch == 1
    gap = result.history.remedy.map(lambda r: scratch.get(r, 0.60) - warm[r])
    for column in remedies.PREDICTORS:
        result.history[column] = (1 + 10 * gap).where(first)
    found = {c.claim: c for c in remedies.claims(result, config)}
    assert found["C11"].primary.kind == "equivalence" and found["C11"].verdict == "equivalent"
    assert found["C12"].verdict == "not equivalent" and found["C12b"].verdict == "supported"  # DASH beats scratch
    # "does little": L2 Init removes none of the gap (it widens it), ReDo removes 4 of its 5 pp
    assert found["C13a"].primary.kind == "bound" and found["C13a"].verdict == "supported"
    assert found["C13b"].verdict == "not supported"
    assert found["C14a"].primary.estimate.mean == pytest.approx(5.0, abs=0.5)  # gap(none) 5 pp - gap(augment) 0
    assert found["C15"].primary.kind == "correlation" and found["C15"].verdict == "supported"
    assert found["C15"].primary.estimate.n == 1 + len(config.remedies)  # the conditions, all premises met
