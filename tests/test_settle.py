"""`run --settle`: the decision path on constructed looks (no training), bad input through the CLI, and one
smoke run end to end."""
import json

import pytest

from plasticity_nb.analysis.claims import CLAIMS, ClaimResult, read_claims, record_claims, relation, the_verdicts
from plasticity_nb.analysis.premises import Premise
from plasticity_nb.analysis.sequential import BUDGET, FUTILE, NOT_RESOLVED, OPEN, Design
from plasticity_nb.analysis.settle import (
    ABSENT,
    Ledger,
    Notebook,
    SettleError,
    decide_look,
    ledger_path,
    make_plan,
    read_ledger,
    resume,
    run_settle,
)
from plasticity_nb.analysis.stats import (
    PREMISE_NOT_MET,
    PREMISE_UNCERTAIN,
    SUPPORTED,
    bound_test,
    correlation_test,
    difference_test,
    ratio_test,
)
from plasticity_nb.batch.cli import main
from plasticity_nb.views.report import LEAD_END, summary_table, write_report

MET, NOT_MET = Premise(True, "both arms fit"), Premise(False, "warm arm at 40 %")
SURE = [10.0, 10.1, 9.9, 10.05, 10.02, 9.97, 10.08, 9.93]  # far above 0 at every look
NOISY = [1.0, -1.2, 2.1, 0.4, -0.9, 1.5, -0.3, 0.8]  # no boundary crossed
NIL = [0.1, -0.2, 0.05, -0.1, 0.15, -0.05, 0.0, 0.12]  # tightly around 0: far below a sesoi of 5
NB01, NB02 = Notebook("01", "01_warm_start_gap", 5.0), Notebook("02", "02_pretraining_duration")  # 02: no futility


def claim(claim_id, values, n, premise=MET):
    return ClaimResult(claim_id, (difference_test(values[:n]),), premise)


def fresh(design=Design((4, 8)), first_seed=100):
    return Ledger(design, first_seed, "smoke", ("01", "02"))


def test_test_values_are_the_tested_finite_values_in_order():
    assert difference_test([1.0, float("nan"), 3.0, 2.0]).values == (1.0, 3.0, 2.0)
    assert bound_test([1.0, 2.0, 4.0], 5.0).values == (1.0, 2.0, 4.0)
    ratio = ratio_test([2.0, 4.0, 1.0], [1.0, 1.0, 1.0])
    assert ratio.values == pytest.approx((0.6931, 1.3863, 0.0), abs=1e-4) and ratio.log_scale
    assert "values" not in repr(difference_test([1.0, 2.0, 4.0]))  # printed tests are as they were


def test_an_efficacy_stop_is_frozen_while_another_claim_continues():
    ledger = decide_look(fresh(), 1, [claim("C1", SURE, 4), claim("C2", NOISY, 4)], final=False)
    assert ledger.settled["C1"].verdict == SUPPORTED and ledger.settled["C1"].look == 1
    assert ledger.settled["C1"].seeds == 4 and ledger.settled["C1"].interval[0] > 0
    assert ledger.is_open("C2") and ledger.looks_done == 1
    # look 2: C1's new seeds would say otherwise, but it is never decided again
    later = decide_look(ledger, 2, [claim("C1", [-x for x in SURE], 8), claim("C2", NOISY, 8)], final=True)
    assert later.settled["C1"] == ledger.settled["C1"]
    assert later.settled["C2"].verdict == NOT_RESOLVED and later.settled["C2"].look == 2


def test_futility_stops_a_difference_below_its_smallest_effect():
    ledger = decide_look(fresh(), 1, [claim("C1", NIL, 4)], final=False, smallest_effect={"C1": 5.0})
    assert ledger.settled["C1"].verdict == FUTILE
    # a settled answer: the gap, if any, is smaller than the one that matters; neither "agrees" nor "departs"
    assert relation(CLAIMS["C1"], FUTILE) == "smaller than the smallest effect of interest"


@pytest.mark.parametrize("verdict", [OPEN, BUDGET, NOT_RESOLVED])
def test_unsettled_sequential_outcomes_are_not_resolved(verdict):
    assert relation(CLAIMS["C1"], verdict) == "not resolved"


def test_a_seed_budget_ends_open_claims_as_budget_stops():
    design = Design((4, 8, 12, 16), seed_budget=8)
    ledger = decide_look(fresh(design), 1, [claim("C1", NOISY, 4)], final=False)
    ledger = decide_look(ledger, 2, [claim("C1", NOISY, 8)], final=design.reachable == 2)
    assert ledger.settled["C1"].verdict == BUDGET and ledger.settled["C1"].look == 2


def test_a_premise_failing_at_a_look_freezes_the_claim():
    ledger = decide_look(fresh(), 1, [claim("C1", NOISY, 4)], final=False)
    assert ledger.is_open("C1")
    ledger = decide_look(ledger, 2, [claim("C1", SURE, 8, NOT_MET)], final=False)
    assert ledger.settled["C1"].verdict == PREMISE_NOT_MET and ledger.settled["C1"].look == 2


def test_an_uncertain_premise_makes_no_decision_until_the_last_look():
    unsure = Premise(False, "warm arm's bound straddles the floor", uncertain=True)
    ledger = decide_look(fresh(), 1, [claim("C1", SURE, 4, unsure)], final=False)
    assert ledger.is_open("C1")  # SURE would have crossed: the premise gate only removes chances to stop
    ledger = decide_look(ledger, 2, [claim("C1", SURE, 8, unsure)], final=True)
    assert ledger.settled["C1"].verdict == PREMISE_UNCERTAIN


def test_a_correlation_claim_is_listed_as_not_settled_sequentially():
    test = correlation_test([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0])
    ledger = decide_look(fresh(), 1, [ClaimResult("C15", (test,), MET)], final=False)
    assert "correlation test has no sequential boundaries" in ledger.unsettled["C15"]
    assert not ledger.is_open("C15") and "C15" not in ledger.settled


class Fake:
    """A look runner and claim evaluator without training: the claims at each look from fixed values."""

    def __init__(self, values, clock_step=0.0):
        self.values, self.looks, self.evaluated, self.now, self.step = values, [], [], 0.0, clock_step

    def run_look(self, notebooks, seeds):
        self.looks.append(([nb.id for nb in notebooks], seeds))
        self.now += self.step  # the look's training time
        return []

    def evaluate(self, notebook, seeds):
        self.evaluated.append((notebook.id, len(seeds)))
        claim_id = {"01": "C1", "02": "C2"}[notebook.id]
        return [claim(claim_id, self.values[claim_id], len(seeds))]

    def clock(self):
        return self.now


def test_only_notebooks_with_open_claims_get_the_next_looks_seeds(tmp_path):
    fake = Fake({"C1": SURE, "C2": NOISY})
    ledger, failures = run_settle(tmp_path, fresh(), [NB01, NB02], fake.run_look, fake.evaluate, fake.clock)
    assert fake.looks == [(["01", "02"], tuple(range(100, 104))), (["02"], tuple(range(100, 108)))]
    assert ledger.settled["C1"].look == 1 and ledger.settled["C2"].verdict == NOT_RESOLVED
    assert read_ledger(tmp_path, "smoke") == ledger and not failures


def test_a_time_budget_spent_after_a_look_stops_open_claims_by_budget(tmp_path):
    fake = Fake({"C1": NOISY, "C2": NOISY}, clock_step=7200.0)
    design = Design((4, 8, 12), time_budget_s=3600.0)
    notebooks = [Notebook("01", "01_warm_start_gap"), NB02]  # no smallest effect: no futility stop
    ledger, _ = run_settle(tmp_path, fresh(design), notebooks, fake.run_look, fake.evaluate, fake.clock)
    assert len(fake.looks) == 1  # no look starts once the budget is spent
    assert {s.verdict for s in ledger.settled.values()} == {BUDGET} and ledger.elapsed_s == 7200.0


def test_a_resumed_ledger_continues_and_never_re_decides(tmp_path):
    fake = Fake({"C1": SURE, "C2": NOISY})

    def interrupted(notebooks, seeds):
        if len(fake.looks) == 1:
            raise KeyboardInterrupt
        return fake.run_look(notebooks, seeds)

    with pytest.raises(KeyboardInterrupt):
        run_settle(tmp_path, fresh(), [NB01, NB02], interrupted, fake.evaluate, fake.clock)
    first = read_ledger(tmp_path, "smoke")
    assert first.looks_done == 1 and first.settled["C1"].verdict == SUPPORTED
    again = Fake({"C1": [-x for x in SURE], "C2": NOISY})  # C1 would now fail: frozen, so never evaluated
    ledger, _ = run_settle(tmp_path, fresh(), [NB01, NB02], again.run_look, again.evaluate, again.clock)
    assert again.looks == [(["02"], tuple(range(100, 108)))] and again.evaluated == [("02", 8)]
    assert ledger.settled["C1"] == first.settled["C1"] and ledger.looks_done == 2


@pytest.mark.parametrize("other", [fresh(Design((4, 12))), fresh(first_seed=0),
                                   Ledger(Design((4, 8)), 100, "smoke", ("01",))])
def test_a_ledger_of_another_command_is_refused(tmp_path, other):
    fake = Fake({"C1": SURE, "C2": NOISY})
    run_settle(tmp_path, fresh(), [NB01], fake.run_look, fake.evaluate, fake.clock)
    with pytest.raises(SettleError, match="another settle command"):
        resume(tmp_path, other)


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() \
        else []


@pytest.mark.parametrize("args,culprit", [
    (["--settle", "4,4,8"], "--settle: looks must be strictly increasing"),
    (["--settle", "8,4"], "--settle: looks must be strictly increasing"),
    (["--settle", "2,4"], "--settle: the first look needs at least 3 seeds"),
    (["--settle", "four"], "--settle takes 'main' (the chosen design) or comma-separated seed counts"),
    (["--settle", "4,8", "--seed-budget", "3"], "--seed-budget: seed budget 3 is below the first look"),
    (["--settle", "4,8", "--time-budget", "0"], "--time-budget must be > 0"),
    (["--settle", "4,8", "--seeds", "5"], "--settle chooses every look's seeds"),
    (["--settle", "4,8", "--param", "seeds=[1, 2, 3]"], "--settle chooses every look's seeds"),
    (["--seed-budget", "8"], "apply to --settle only"),
    (["--settle", "4,8", "--first-seed", "96", "--preset", "quick"], "may run seeds 100-103, which results at quick"),
    (["--settle", "main", "--first-seed", "390", "--preset", "quick"], "may run seeds 400-402"),  # its last look
])
def test_bad_settle_input_fails_with_one_message_and_writes_nothing(tmp_path, capsys, args, culprit):
    out = tmp_path / "out"
    first = ["--first-seed", "50"]  # a case's own --first-seed comes later, and argparse keeps the last
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), *first, *args]) == 2
    assert culprit in capsys.readouterr().err
    assert _files(out) == []


def test_settle_without_a_first_seed_fails_with_one_message_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--settle", "4,8"]) == 2
    assert "--settle needs --first-seed SEED" in capsys.readouterr().err
    assert _files(out) == []


def test_a_ledger_of_another_design_is_refused_by_the_cli(tmp_path, capsys):
    fake = Fake({"C1": SURE})
    run_settle(tmp_path, Ledger(Design((3, 4)), 50, "smoke", ("01",)), [NB01], fake.run_look, fake.evaluate,
               fake.clock)
    before = _files(tmp_path)
    args = ["run", "--preset", "smoke", "--only", "01", "--out", str(tmp_path), "--first-seed", "50"]
    assert main([*args, "--settle", "3,5"]) == 2
    assert "another settle command" in capsys.readouterr().err and _files(tmp_path) == before


@pytest.mark.slow
def test_a_store_of_another_precision_is_refused(tmp_path, capsys):
    from plasticity_nb import load_cifar10
    from plasticity_nb.execution.runner import run_many
    from plasticity_nb.studies import STUDIES

    small = dict(tune_epochs=1, train_subset=256)  # bf16 is emulated on most CPUs: a small run keeps it quick
    config = STUDIES["01"].config.from_preset("smoke", seeds=[50, 51], **small)  # smoke trains at fp32
    scratch = [c for labels, c in config.plan(load_cifar10(None, "cpu").data_id) if labels["arm"] == "scratch"][0]
    # a real run, as bf16
    run_many([scratch.replace(precision="bf16")], out_dir=tmp_path, device="cpu", workers=1, progress=False)
    before = _files(tmp_path)
    args = ["run", "--preset", "smoke", "--only", "01", "--out", str(tmp_path), "--first-seed", "50",
            *(f"--param={name}={value}" for name, value in small.items())]
    assert main([*args, "--settle", "3,4"]) == 2
    err = capsys.readouterr().err
    assert scratch.replace(precision="bf16").key() in err and "precision bf16" in err and "resolves fp32" in err
    assert _files(tmp_path) == before


@pytest.mark.slow(seconds=25)
def test_settle_end_to_end_on_the_smoke_preset(tmp_path):
    # One-epoch phases on 256 images halve smoke's time. Smoke's own smallest effect (5 pp) can stop C1 for futility
    # at look 1; at 0.5 pp it stays open on these seeds (this CPU's training is deterministic), so look 2 runs.
    small = ["tune_epochs=1", "pretrain_epochs=1", "train_subset=256", "smallest_effect=0.5"]
    args = ["run", "--settle", "3,4", "--only", "01", "--preset", "smoke", "--first-seed", "50", "--out",
            str(tmp_path), *(f"--param={p}" for p in small)]
    assert main(args) == 0
    ledger = json.loads(ledger_path(tmp_path, "smoke").read_text())
    assert ledger["design"]["looks"] == [3, 4] and ledger["first_seed"] == 50
    settled = ledger["claims"]["C1"]
    assert settled["look"] == 2 and settled["seeds"] == 4 and settled["verdict"] != OPEN
    report = (tmp_path / "report.md").read_text()
    assert "## Settled sequentially" in report and "Sequential design (fixed before any run)" in report
    assert f"| C1 | {settled['verdict']} |" in report
    # the look's notebook ran before its decision: the lead and the notebook, brought up to it, show the settled row
    settled_row = the_verdicts(read_claims(tmp_path)).iloc[0]
    assert settled_row.stage == "settled"
    row = summary_table(settled_row.to_frame().T).iloc[0]
    assert f"| {row['estimate [interval]']} | {row.seeds} | {row.verdict} |" in report.split(LEAD_END)[0]
    executed = (tmp_path / "notebooks" / "01_warm_start_gap.ipynb").read_text()
    assert row["estimate [interval]"] in executed  # the settled row's repeated interval, not the t interval
    configs = [json.loads((p / "config.json").read_text()) for p in (tmp_path / "runs").iterdir()
               if p.is_dir() and not p.name.startswith(".")]
    trained = [json.loads(line) for line in (tmp_path / "runs" / "events.log").read_text().splitlines()]
    trained = [e["key"] for e in trained if e.get("event") == "finish"]
    assert len(trained) == len(set(trained))  # the second look reused the first look's runs
    seeds = {c["seed"] for c in configs}
    assert ledger["looks_done"] == 2 and seeds == {50, 51, 52, 53}
    assert main(args) == 0  # everything settled: the same command runs no look and changes no verdict
    assert json.loads(ledger_path(tmp_path, "smoke").read_text())["claims"] == ledger["claims"]
    # the settled verdict is *the* verdict: an exploratory fixed-n test of C1 afterwards sits beside it
    exploratory = ClaimResult("C1", (difference_test([9.0, 9.5, 10.0]),), Premise(True, "fit"))
    shown = record_claims(tmp_path, "smoke", [exploratory])
    assert shown.stage.tolist() == ["settled"] and shown.verdict.tolist() == [settled["verdict"]]
    table = read_claims(tmp_path)
    assert sorted(table[table.claim == "C1"].stage) == ["fixed n", "settled"]
    lead = write_report(tmp_path, "smoke").read_text().split(LEAD_END)[0]
    assert f"| {shown.verdict_words[0]} |" in lead and "| holds |" not in lead
    from plasticity_nb.views.explorer import claims_overview

    overview = claims_overview(tmp_path, "smoke")[1]  # the explorer shows the settled verdict alone too
    assert overview.verdict.tolist() == [shown.verdict_words[0]]


def test_report_states_each_claims_premise_pass_chance_and_flags_a_short_one(tmp_path):
    """Two arms pass with 0.97 at 16 seeds; eight (four conditions' arms) with 0.885, under the 90 % wanted: the
    report says so and names the 17 seeds that would reach it. The arm counts survive the ledger's JSON."""
    from plasticity_nb.analysis.settle import section, write_ledger

    four = Premise.all_of([Premise(True, "fit", arms=2)] * 4)
    results = [ClaimResult("C1", (difference_test(NOISY[:4]),), Premise(True, "fit", arms=2)),
               ClaimResult("C2", (difference_test(NOISY[:4]),), four)]
    ledger = decide_look(Ledger(Design((4, 8, 12, 16)), 100, "smoke", ("01", "02")), 1, results, final=False)
    assert dict(ledger.arms) == {"C1": 2, "C2": 8}
    write_ledger(tmp_path, ledger)
    assert read_ledger(tmp_path, "smoke").arms == ledger.arms
    text = "\n".join(section(tmp_path, "smoke"))
    assert "Premise planning" in text and "(16 seeds;" in text
    assert "| C1 | open |" in text and "| 0.97 (2) |" in text
    assert "| **0.89** (8; 90% needs 17 seeds) |" in text


def test_plan_prints_the_looks_power_and_time_and_trains_nothing(tmp_path, capsys):
    args = ["run", "--settle", "8,16", "--only", "01", "--preset", "quick", "--first-seed", "600", "--out",
            str(tmp_path)]
    assert main([*args, "--plan"]) == 0
    out = capsys.readouterr().out
    assert "plan: looks at 8, 16 seeds" in out and "C1 at its smallest effect of interest (2 pp, SD 3.12" in out
    assert "power 0." in out and "min a seed" in out and "expected ~" in out and "at worst" in out
    assert "triage: C1: about 22 seeds at 2 pp (SD 3.12)" in out  # fixed n, 80 % power at the stated SD
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing trained
    assert main([*args[:2], "main", *args[3:], "--plan"]) == 0  # the design chosen by simulation
    assert "plan: looks at 15, 27, 36 seeds, Hwang-Shih-DeCani (gamma 0) spending" in capsys.readouterr().out


def test_a_time_budget_below_the_first_useful_look_is_refused_before_training(tmp_path, capsys):
    args = ["run", "--settle", "8,16", "--only", "01", "--preset", "quick", "--first-seed", "600", "--out",
            str(tmp_path), "--time-budget", "0.01"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--time-budget 0.01 h cannot reach a useful look: look 1 (8 seeds)" in err and err.count("error:") == 1
    assert not ledger_path(tmp_path, "quick").exists()  # nothing written


def test_plan_needs_a_design(capsys):
    assert main(["run", "--plan", "--only", "01"]) == 2
    assert "--plan plans a sequential design: give --settle LOOKS with it" in capsys.readouterr().err


def test_a_train_to_target_claim_is_planned_by_its_void_chance_and_survives_the_ledger(tmp_path):
    from plasticity_nb.analysis.premises import TARGET_PROTOCOL
    from plasticity_nb.analysis.sequential import void_chance
    from plasticity_nb.analysis.settle import section, write_ledger

    premise = Premise(True, "fit", arms=2, protocol=TARGET_PROTOCOL)
    ledger = decide_look(Ledger(Design((15, 27, 36)), 600, "smoke", ("01",)), 1,
                         [ClaimResult("C1", (difference_test(NOISY[:4]),), premise)], final=False)
    write_ledger(tmp_path, ledger)
    assert read_ledger(tmp_path, "smoke").protocols == {"C1": TARGET_PROTOCOL}
    text = "\n".join(section(tmp_path, "smoke"))
    assert f"| void {void_chance(36):.2f} at 36 seeds (flags 15% a seed) |" in text


def test_claims_a_notebooks_settings_do_not_compute_keep_no_look_going(tmp_path):
    """Notebook 11 settled for FIRE alone computes C18a (and C15), not C16a-e: those are left unsettled, by name,
    and C18a's stop ends the settle."""
    fake = Fake({"C18a": SURE})
    fake.evaluate = lambda notebook, seeds: [claim("C18a", SURE, len(seeds))]
    ledger, _ = run_settle(tmp_path, fresh(), [Notebook("11", "11_remedies_2024", 2.0)], fake.run_look,
                           fake.evaluate, fake.clock)
    assert len(fake.looks) == 1 and ledger.settled["C18a"].look == 1
    assert ledger.unsettled["C16a"] == ABSENT and not ledger.is_open("C18b")


def test_the_plan_states_power_for_fires_claims():
    plan = make_plan(Design((15, 27, 36)), {"11": 220.0}, {"11": ("C15", "C16a", "C18a")},
                     {"C16a": 2.0, "C18a": 2.0}, 3.12)
    assert set(plan.operating) == {"C18a"} and plan.first_useful_look() is not None
