"""The claims registry: definitions changed after their data keep the earlier verdict primary on the seeds seen,
claims added after their data never agree on them, procedure corrections apply everywhere, and the plan comes
from the smallest effect of interest, never from the observed effect."""
import dataclasses
import math

import pandas as pd
import pytest

from plasticity_nb.analysis import claim_history, claims
from plasticity_nb.analysis.claims import CLAIMS, Claim, ClaimResult, claim_row, registry_hash
from plasticity_nb.analysis.premises import TARGET_PROTOCOL, Premise
from plasticity_nb.analysis.stats import difference_test, power_difference, ratio_test, seeds_for
from plasticity_nb.views.report import write_report

MET = Premise(True, "both fit")


def by_seed(values, first_seed=0) -> pd.Series:
    return pd.Series(values, index=pd.Index(range(first_seed, first_seed + len(values)), name="seed"))


def c2(first_seed: int) -> ClaimResult:
    """C2 as it is now (a clear gap at 5 epochs) and as it was defined before a5df8a4 (an unclear one at 3)."""
    now = difference_test(by_seed([2.0, 2.5, 3.0], first_seed), "pretrain_epochs=5")
    before = difference_test(by_seed([-1.0, 2.0, 0.5], first_seed), "pretrain_epochs=3")
    return ClaimResult("C2", (now,), MET, earlier=ClaimResult("C2", (before,), MET))


def test_a_definition_changed_after_its_data_keeps_the_earlier_verdict_primary_on_the_seeds_seen():
    row = claim_row(c2(first_seed=0), "quick", smallest_effect=2.0)
    assert row["verdict"] == "inconclusive" and row["condition"] == "pretrain_epochs=3"
    assert row["post_hoc"].startswith("supported") and "pretrain_epochs=5" in row["post_hoc"]
    assert row["definition"].startswith("post hoc: changed 2026-11-25 (a5df8a4) after seeing seeds 0-2")
    assert row["vs_paper"] == "not resolved"


def test_the_new_definition_is_primary_on_seeds_not_yet_seen():
    row = claim_row(c2(first_seed=10), "quick", smallest_effect=2.0)
    assert row["verdict"] == "supported" and row["condition"] == "pretrain_epochs=5" and row["post_hoc"] == ""
    assert "confirmatory on unseen seeds" in row["definition"] and row["vs_paper"] == "agrees"
    mixed = claim_row(c2(first_seed=2), "quick", smallest_effect=2.0)  # seeds 2-4: one was seen
    assert mixed["definition"].startswith("post hoc")


def test_a_change_made_before_a_presets_data_is_not_post_hoc_there():
    row = claim_row(c2(first_seed=0), "paper", smallest_effect=1.0)  # no paper result had been seen
    assert row["verdict"] == "supported" and row["post_hoc"] == "" and "before its data" in row["definition"]


def test_without_a_computable_earlier_definition_the_seen_seeds_give_no_verdict():
    cells = [difference_test(by_seed([2.0, 2.5, 3.0]), "depth=1, width=8")]
    row = claim_row(ClaimResult.every_condition("C6", cells, MET), "quick", smallest_effect=2.0)
    assert row["verdict"] == "not resolved" and row["post_hoc"].startswith("supported")
    assert "cannot compute it" in row["definition"]


def test_a_claim_added_after_its_data_never_agrees_on_them():
    beats = lambda first: ClaimResult("C7b", (difference_test(by_seed([3.0, 4.0, 5.0], first)),), MET)
    seen, fresh = claim_row(beats(0), "quick", 2.0), claim_row(beats(20), "quick", 2.0)
    assert seen["verdict"] == fresh["verdict"] == "supported"
    assert seen["vs_paper"] == "post hoc" and "cannot agree" in seen["definition"]
    assert fresh["vs_paper"] == "agrees"


def test_the_plan_comes_from_the_smallest_effect_of_interest_not_the_observed_effect():
    small, large = by_seed([0.1, 1.1, 2.1]), by_seed([10.1, 11.1, 12.1])  # the same SD (1), different effects
    rows = [claim_row(ClaimResult("C4", (difference_test(d),), MET), "quick", smallest_effect=2.0)
            for d in (small, large)]
    stated = claims.PLANNING_SD[("quick", "pp")]
    needed = seeds_for(lambda n: power_difference(2.0, stated, n))
    assert rows[0]["seeds_for_sesoi"] == rows[1]["seeds_for_sesoi"] == needed
    assert rows[0]["power_at_sesoi"] == pytest.approx(power_difference(2.0, stated, 3), abs=1e-3)
    assert rows[0]["sesoi"] == 2.0


def test_the_plan_does_not_move_with_the_sd_of_three_seeds():
    """Planned at the preset's stated SD (claims.PLANNING_SD), not at whatever 3 seeds happen to show."""
    narrow, wide = by_seed([1.9, 2.0, 2.1]), by_seed([-4.0, 2.0, 8.0])  # SD 0.1 and 6: the same mean
    rows = [claim_row(ClaimResult("C1", (difference_test(d),), MET), "quick", smallest_effect=2.0)
            for d in (narrow, wide)]
    assert rows[0]["sd"] != rows[1]["sd"]
    assert rows[0]["seeds_for_sesoi"] == rows[1]["seeds_for_sesoi"] > 3
    assert rows[0]["power_at_sesoi"] == rows[1]["power_at_sesoi"]


def test_without_a_stated_sd_only_eight_seeds_or_more_plan():
    """C9's unit (%) has no stated SD: its own SD plans from 8 seeds, not from 3."""
    few = ClaimResult("C9", (ratio_test(by_seed([2.0, 3.0, 5.0]), by_seed([1.0, 1.0, 1.0])),), MET)
    many = ClaimResult("C9", (ratio_test(by_seed([2.0, 3.0, 5.0, 2.5, 4.0, 3.5, 2.2, 6.0]), by_seed([1.0] * 8)),), MET)
    assert math.isnan(claim_row(few, "quick")["seeds_for_sesoi"])
    assert "not planned" in claim_row(few, "quick")["verdict_words"]
    assert claim_row(many, "quick")["seeds_for_sesoi"] >= 2


def test_a_claim_over_several_tests_states_its_joint_power():
    tests = [difference_test(by_seed([1.0, 2.0, 3.0])), difference_test(by_seed([0.0, 2.0, 4.0]))]
    row = claim_row(ClaimResult.every_condition("C3", tests, MET), "quick", smallest_effect=2.0)
    stated = claims.PLANNING_SD[("quick", "pp")]
    assert row["power_at_sesoi"] == pytest.approx(power_difference(2.0, stated, 3) ** 2, abs=1e-3)


WORDS = [  # (verdict code, test kind, margin, unit, seeds planned) -> the words a reader gets
    ("supported", "difference", None, "pp", 12.0, "holds"),
    ("supported", "bound", 2.0, "pp", 12.0, "holds"),
    ("equivalent", "equivalence", 1.0, "pp", 30.0, "equivalent within ±1 pp"),
    ("not supported", "difference", None, "%", 12.0, "does not hold"),
    ("not equivalent", "equivalence", 1.0, "pp", 30.0, "does not hold"),
    ("premise not met", "difference", None, "pp", 12.0, "premise not met"),
    ("premise uncertain", "difference", None, "pp", 22.0, "not settled: about 22 seeds at the smallest effect of "
                                                           "interest"),
    ("inconclusive", "bound", 1.0, "epochs", 10.0, "not settled: about 10 seeds at the smallest effect of interest"),
    ("not resolved", "equivalence", 1.0, "pp", math.inf, "not settled: over 1,000 seeds at the smallest effect of "
                                                          "interest"),
    ("inconclusive", "correlation", None, "r", 30.0, "not settled: about 30 conditions at the smallest effect of "
                                                      "interest"),
    ("open", "difference", None, "pp", 22.0, "not settled: about 22 seeds at the smallest effect of interest"),
    ("stopped for futility", "difference", None, "pp", 22.0, "smaller than the smallest effect of interest"),
    ("stopped by budget: not resolved", "difference", None, "pp", 22.0, "not settled: about 22 seeds at the "
                                                                        "smallest effect of interest"),
    ("inconclusive", "difference", None, "pp", math.nan, "not settled: seeds not planned (no SD from 8 or more "
                                                          "seeds to plan at)"),
    ("premise uncertain", "screen", 13.0, "r", 50.0, "not settled: about 50 conditions at the smallest effect of "
                                                      "interest"),
    ("inconclusive", "estimate", None, "pp/doubling", math.nan, "estimate only"),
    ("supported", "estimate", None, "pp/doubling", math.nan, "estimate only"),
    ("estimate only", "estimate", None, "pp/doubling", 125.0, "estimate only"),  # stats.py's verdict of an estimate
]


@pytest.mark.parametrize("verdict, test, margin, unit, seeds, words", WORDS)
def test_every_verdict_code_has_its_plain_words(verdict, test, margin, unit, seeds, words):
    assert claims.verdict_words(verdict, test, margin, unit, seeds) == words


def test_claims_csv_without_verdict_words_still_loads_and_gets_them_from_its_codes(tmp_path):
    claims.record_claims(tmp_path, "quick", [c2(first_seed=10)])
    path = claims.claims_path(tmp_path)
    table = pd.read_csv(path)
    assert table.verdict_words.tolist() == ["holds"]
    old = table.drop(columns="verdict_words").assign(verdict="premise uncertain", n_seeds=3, seeds_for_sesoi=14.0)
    old = pd.concat([old, old.assign(claim="C15", test="screen", unit="r", seeds_for_sesoi=50.0),
                     old.assign(claim="C5a", verdict="not supported")])
    old.to_csv(path, index=False)
    read = claims.read_claims(tmp_path)
    # an old row's plan was made at its own SD (here of 3 seeds): not repeated, unless no SD entered it
    assert read.verdict_words.tolist() == [
        "not settled: seeds not planned (an older row: rerun its notebook to plan it)",
        "not settled: about 50 conditions at the smallest effect of interest", "does not hold"]
    assert list(read.columns) == claims.COLUMNS and set(read.stage) == {claims.FIXED_N}  # before stages: fixed n
    write_report(tmp_path, "quick")  # an old file still reports


def test_the_report_names_the_registry_and_its_own_page_lists_every_change(tmp_path):
    claims.record_claims(tmp_path, "quick", [c2(first_seed=0)])
    text = write_report(tmp_path, "quick").read_text()
    assert f"claims registry `{registry_hash()}`" in text
    assert "[claims-registry.md](claims-registry.md)" in text and "undisclosed until now" not in text
    assert "not error-controlled" in text
    history = (tmp_path / "claims-registry.md").read_text()
    assert history.startswith("# Changes to the claims registry") and f"`{registry_hash()}`" in history
    assert history.count("\n- **") == len(claim_history.CHANGES)
    assert "tr(Sigma)" in history and "undisclosed until now" in history  # C10's switch of metric, disclosed


def test_the_registry_hash_changes_with_any_change(monkeypatch):
    before = registry_hash()
    extra = claim_history.Change("C1", "2026-12-02", "abc1234", claim_history.DEFINITION, "a", "b", "why")
    monkeypatch.setattr(claims, "CHANGES", (*claim_history.CHANGES, extra))
    assert registry_hash() != before


def test_every_change_names_a_known_claim_and_kind():
    for change in claim_history.CHANGES:
        assert change.claim == "all" or change.claim in CLAIMS, change
        assert change.kind in (claim_history.DEFINITION, claim_history.ADDED, claim_history.PROCEDURE)
        assert set(change.seen) <= {"smoke", "quick", "paper", "gpu"}  # gpu: notebook 12's own preset


def test_bad_registry_input_is_refused_naming_the_culprit():
    with pytest.raises(ValueError, match="unknown claim id 'C99'"):
        ClaimResult("C99", (difference_test([1.0, 2.0, 3.0]),), MET)
    with pytest.raises(ValueError, match="claim C1: its smallest effect of interest must be > 0"):
        dataclasses.replace(CLAIMS["C1"], sesoi=0.0)
    with pytest.raises(ValueError, match="claim X: its smallest effect of interest must be > 0"):
        Claim("X", "01_warm_start_gap", "s", "p", "e", sesoi=-1.0)


@pytest.mark.parametrize("value", [0.0, -2.0])
def test_a_smallest_effect_at_or_below_zero_is_refused(value):
    from plasticity_nb import ConfigError
    from plasticity_nb.studies.study_config import WarmStartConfig

    with pytest.raises(ConfigError, match="smallest_effect must be > 0"):
        WarmStartConfig.from_preset("quick", smallest_effect=value)
    assert math.isfinite(WarmStartConfig.from_preset("quick").smallest_effect)


def test_the_docs_list_every_change_made_after_seeing_data():
    from plasticity_nb.core.paths import project_root

    page = (project_root() / "docs" / "statistics.md").read_text()
    section = page[page.index("## The claims registry"):]
    for change in claim_history.CHANGES:
        if change.seen:
            assert change.claim in section and change.commit in section, change


TARGET_MET = Premise(True, "both fit, trained to a target", protocol=TARGET_PROTOCOL)


def test_train_to_target_rows_on_seen_seeds_are_not_resolved_and_compute_no_earlier_definition():
    now = difference_test(by_seed([2.0, 2.5, 3.0], 100), "pretrain_epochs=5")
    earlier = ClaimResult("C2", (difference_test(by_seed([-1.0, 2.0, 0.5], 100)),), TARGET_MET)
    row = claim_row(ClaimResult("C2", (now,), TARGET_MET, earlier=earlier), "quick", smallest_effect=2.0)
    assert row["verdict"] == "not resolved" and row["post_hoc"].startswith("supported")
    assert "2026-12-06 (17ff574)" in row["definition"] and "the runs cannot compute it" in row["definition"]


def test_train_to_target_rows_on_the_main_jobs_fresh_seeds_are_confirmatory():
    now = difference_test(by_seed([2.0, 2.5, 3.0], 600), "pretrain_epochs=5")
    row = claim_row(ClaimResult("C2", (now,), TARGET_MET), "quick", smallest_effect=2.0)
    assert row["verdict"] == "supported" and "confirmatory on unseen seeds" in row["definition"]


def test_a_fixed_budget_store_keeps_the_definitions_it_was_made_under():
    """The changes of train-to-target concern its own runs: an old store's C2 reads as it did before them."""
    assert claim_row(c2(first_seed=0), "quick", smallest_effect=2.0)["condition"] == "pretrain_epochs=3"
    assert claim_row(c2(first_seed=10), "quick", smallest_effect=2.0)["verdict"] == "supported"


# The registry's hash for its definitions, in their order: the claims' move into their studies (issue #40) kept
# it at e44780934c93; FIRE's claims C18a-d, registered 2026-12-06 before any of their runs, made it bfe3dd8cffcd.
# A new definition or a new entry in claim_history changes it: record the change there (dated, with its reason)
# and pin the new hash here.
PINNED_HASH = "bfe3dd8cffcd"
PINNED_ORDER = ("C1", "C2", "C3", "C4", "C5a", "C5b", "C6", "C7a", "C7b", "C7c", "C8a", "C8b", "C9", "C10", "C11",
                "C12", "C12b", "C13a", "C13b", "C13c", "C14a", "C14b", "C15", "C16a", "C16b", "C16c", "C16d", "C16e",
                "C18a", "C18b", "C18c", "C18d", "C17a", "C17b")


def test_the_registry_keeps_its_hash_and_order():
    assert registry_hash() == PINNED_HASH and tuple(CLAIMS) == PINNED_ORDER


def test_the_registry_is_assembled_from_the_studies_that_compute_the_claims():
    import plasticity_nb
    from plasticity_nb.studies import STUDIES, claim_registry

    assert dict(CLAIMS) == claim_registry() and plasticity_nb.CLAIMS is CLAIMS  # the public name reads it too
    for study in STUDIES.values():
        assert all(isinstance(c, Claim) and c.notebook == study.stem for c in study.module.CLAIMS), study.id
        assert all(CLAIMS[c.id] is c for c in study.module.CLAIMS), study.id  # the very objects the study declares


def test_a_claim_declared_twice_or_by_another_study_is_refused(monkeypatch):
    from plasticity_nb.studies import claim_registry, tuning_lr, warm_start_gap

    monkeypatch.setattr(tuning_lr, "CLAIMS", (*tuning_lr.CLAIMS, warm_start_gap.GAP))
    with pytest.raises(ValueError, match="claim C1 is declared twice"):
        claim_registry()
    monkeypatch.setattr(tuning_lr, "CLAIMS", (dataclasses.replace(warm_start_gap.GAP, id="C99"),))
    with pytest.raises(ValueError, match="claim C99 names notebook 01_warm_start_gap but study 08"):
        claim_registry()


def test_a_claim_result_carries_its_definition_by_object_or_by_id():
    from plasticity_nb.studies.warm_start_gap import GAP

    test = difference_test(by_seed([1.0, 2.0, 3.0]))
    by_object, by_id = ClaimResult(GAP, (test,), MET), ClaimResult("C1", (test,), MET)
    assert by_object == by_id and by_object.claim == "C1" and by_object.definition is GAP is by_id.definition
    assert dataclasses.replace(by_object, others=(test,)).definition is GAP
    assert ClaimResult.every_condition(GAP, [test], MET).claim == "C1"
    with pytest.raises(ValueError, match="claim C1 is not the registry's definition"):
        ClaimResult(dataclasses.replace(GAP, statement="something else"), (test,), MET)


def test_the_studies_refer_to_their_claims_by_object_not_by_id():
    """A study's claims() names the Claim it declares: a string id there (as before issue #40) is refused."""
    import ast

    from plasticity_nb.core.paths import project_root

    for path in sorted((project_root() / "plasticity_nb" / "studies").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "ClaimResult", "every_condition") and node.args:
                assert not isinstance(node.args[0], ast.Constant), f"{path.name}:{node.lineno} names a claim by id"
