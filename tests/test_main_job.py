"""The main job (`run` without selecting options): its settle stage trains only the conditions the central claims
read, it runs before the exploratory stage, and its plan triages every other claim into report.md."""
import math

import pandas as pd
import pytest

from plasticity_nb.analysis.claims import CLAIMS
from plasticity_nb.analysis.sequential import MAIN_DESIGN
from plasticity_nb.analysis.settle import (
    CENTRAL,
    MAIN_JOB,
    NO_SD,
    OPT_IN,
    TOO_COSTLY,
    make_plan,
    triage_lines,
    triage_section,
    write_triage,
)
from plasticity_nb.batch import cli
from plasticity_nb.batch.cli import MAIN_FIRST_SEED, main, main_settle_params
from plasticity_nb.studies import STUDIES

SETTLE_PARAMS = ["pretrain_epochs_sweep=[5]", "few_epochs=5", "gammas=[0.9]"]


def test_the_settle_stage_trains_only_the_conditions_the_central_claims_read():
    stage = main_settle_params("quick")
    assert stage == {"only": "01,02,04", "params": SETTLE_PARAMS}
    values = {"02": dict(pretrain_epochs_sweep=[5], few_epochs=5), "04": dict(gammas=[0.9]), "01": {}}
    plans = {i: STUDIES[i].config.from_preset("quick", seeds=[600, 601], **p).plan("cifar10")
             for i, p in values.items()}
    assert {c["pretrain_epochs"] for c, _ in plans["02"]} == {5}
    assert {c["gamma"] for c, _ in plans["04"]} == {0.9}
    scratch = {i: {r.key() for c, r in plan if c["arm"] == "scratch"} for i, plan in plans.items()}
    assert scratch["01"] == scratch["02"] == scratch["04"] and len(scratch["01"]) == 2  # trained once for all three


def test_the_conditions_are_the_ones_each_claim_is_computed_at():
    config02 = STUDIES["02"].config.from_preset("quick")
    config04 = STUDIES["04"].config.from_preset("quick")
    assert STUDIES["02"].module.claim_conditions(config02)["pretrain_epochs_sweep"] == [config02.few_epochs]
    assert STUDIES["04"].module.claim_conditions(config04) == {"gammas": [max(config04.gammas)]}
    assert STUDIES["01"].module.claim_conditions(STUDIES["01"].config.from_preset("quick")) == {}


class Calls(list):
    """The run_notebooks calls the main job made; `status` queues what each returns (0 once it is empty)."""
    status: list[int]


@pytest.fixture
def calls(monkeypatch):
    made = Calls()
    made.status = []

    def fake(preset, only, raw_params, **options):
        made.append(dict(preset=preset, only=only, params=raw_params, **options))
        return made.status.pop(0) if made.status else 0

    monkeypatch.setattr(cli, "run_notebooks", fake)
    return made


def test_run_alone_settles_first_then_explores(calls, capsys, tmp_path):
    assert main(["run", "--out", str(tmp_path)]) == 0
    settle, explore = calls
    assert settle["only"] == "01,02,04" and settle["params"] == SETTLE_PARAMS and settle["show_plan"]
    assert settle["settle"].design == MAIN_DESIGN and settle["settle"].first_seed == MAIN_FIRST_SEED
    assert explore["only"] is None and explore["params"] == [] and "settle" not in explore
    assert settle["settings"] is explore["settings"] and settle["settings"].out_dir == tmp_path.resolve()
    out = capsys.readouterr().out
    assert "main job, stage 1 of 2 (settle): claims C1, C2, C4" in out
    assert ("python -m plasticity_nb run --settle main --first-seed 600 --only 01,02,04 --param "
            "'pretrain_epochs_sweep=[5]' --param few_epochs=5 --param 'gammas=[0.9]'") in out
    assert "stage 2 of 2 (exploratory): every notebook at the quick preset's seeds 0-2, fixed n" in out


def test_a_failed_settle_stage_stops_the_main_job(calls):
    calls.status = [1]
    assert main(["run"]) == 1 and len(calls) == 1


@pytest.mark.parametrize("stage, only", [("settle", "01,02,04"), ("explore", None)])
def test_stage_runs_one_stage(calls, stage, only):
    assert main(["run", "--stage", stage]) == 0
    assert [c["only"] for c in calls] == [only]


def test_plan_alone_plans_the_settle_stage_only(calls):
    assert main(["run", "--plan"]) == 0
    assert len(calls) == 1 and calls[0]["plan_only"] and calls[0]["only"] == "01,02,04"


@pytest.mark.parametrize("args, culprit", [
    (["--stage", "settle", "--only", "01"], "--stage runs a stage of the main job"),
    (["--stage", "explore", "--preset", "smoke"], "--stage runs a stage of the main job"),
    (["--plan", "--stage", "explore"], "--plan plans the settle stage: drop --stage explore"),
])
def test_bad_stage_input_fails_with_one_message(calls, capsys, args, culprit):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert culprit in err and err.count("error:") == 1 and not calls


def shared_plan(seconds_05=600.0):
    seconds = {"01": 60.0, "01+02": 30.0, "02": 60.0, "05": seconds_05, "09": 100.0}
    claims = {"01": ("C1",), "01+02": ("C1", "C2"), "02": ("C2",), "05": ("C5a", "C5b"), "09": ("C9", "C10")}
    sesoi = {c: 2.0 for group in claims.values() for c in group}
    return make_plan(MAIN_DESIGN, seconds, claims, sesoi, 3.12)


def test_a_plan_counts_shared_runs_once():
    plan = shared_plan()
    assert plan.claim_seconds("C1") == 90.0 and plan.claim_seconds("C2") == 90.0
    assert plan.reach_seconds(1) == 15 * (60 + 30 + 60 + 600 + 100)
    # the shared runs stay while C1 or C2 is open: never less than either notebook's own runs
    assert plan.open_chance("01+02", 2) >= max(plan.open_chance("01", 2), plan.open_chance("02", 2))
    assert "plan: runs notebooks 01+02 share (C1, C2): ~0.5 min a seed" in plan.lines()


def test_the_triage_names_each_claims_outcome():
    cheap, costly = shared_plan().triage().set_index("claim"), shared_plan(3600.0).triage().set_index("claim")
    assert cheap.loc["C1", "outcome"] == MAIN_JOB and "C1" in CENTRAL
    assert cheap.loc["C1", "seeds"] == 22 and math.isclose(cheap.loc["C1", "hours"], round(22 * 90 / 3600, 2))
    assert cheap.loc["C5a", "outcome"] == OPT_IN
    assert cheap.loc["C5a", "command"] == "python -m plasticity_nb run --settle 11,22 --first-seed SEED --only 05"
    assert costly.loc["C5a", "outcome"] == TOO_COSTLY and costly.loc["C5a", "command"] == ""
    assert CLAIMS["C9"].unit != "pp" and cheap.loc["C9", "outcome"].startswith(NO_SD)
    assert any(line.startswith("triage: C5a: about 22 seeds at 2 pp (SD 3.12), ~3.7 h here: opt-in settle target")
               for line in triage_lines(cheap.reset_index()))


def test_report_shows_the_triage_of_the_main_jobs_plan(tmp_path):
    assert triage_section(tmp_path, "quick") == []  # no plan yet
    write_triage(tmp_path, "quick", shared_plan().triage(), "AMD EPYC (avx512_bf16), 2 cores")
    lines = triage_section(tmp_path, "quick")
    assert "## Which claims can be settled here" in lines and any("AMD EPYC (avx512_bf16), 2 cores" in x for x in lines)
    row = next(x for x in lines if x.startswith("| C5a |"))
    assert row == ("| C5a | 05 | 22 | 3.7 | opt-in settle target | "
                   "`python -m plasticity_nb run --settle 11,22 --first-seed SEED --only 05` |")
    c9 = next(x for x in lines if x.startswith("| C9 |"))
    assert c9.startswith("| C9 | 09 | – | – | no stated SD") and c9.endswith("(%) |  |")  # no command
    from plasticity_nb.views.report import write_report

    assert "## Which claims can be settled here" in write_report(tmp_path, "quick").read_text()
    assert len(pd.read_csv(tmp_path / "triage-quick.csv")) == 6  # C1, C2, C5a, C5b, C9, C10
