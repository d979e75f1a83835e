"""benchmarks/sequential_error.py, small and seeded: simulated claims through the package's own settle path
(run_settle, decide_look, Design.decide, the stats tests, RunFitRule), its error rates and its rules."""
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import sequential_error as se
from plasticity_nb.analysis.premises import MET, NOT_MET
from plasticity_nb.analysis.sequential import BUDGET, FUTILE, NOT_RESOLVED
from plasticity_nb.analysis.stats import (
    EQUIVALENT,
    NOT_EQUIVALENT,
    NOT_SUPPORTED,
    PREMISE_NOT_MET,
    SUPPORTED,
    t_model_fits,
)

pytestmark = pytest.mark.slow(seconds=15)  # its rough share of the suite (conftest.py orders modules by it)
CASES = {case.name: case for case in se.cases()}
OBF = se.DESIGNS["OBF 4-8-12-16"]


def settle(case, design, seed, adjust=None, shortcuts=True):
    """One batch of simulated claims settled: its data, final ledger and outcome."""
    rng = np.random.default_rng(seed)
    batch = se.draw(case, rng, len(se.batch_claims()), design.looks[-1])
    if adjust:
        adjust(batch)
    outcome = se.Outcome()
    with se.scratch_folder() as out:
        if shortcuts:
            with se.shortcuts():
                ledger = se.settle_batch(case, design, batch, out, outcome, 0)
        else:
            ledger = se.settle_batch(case, design, batch, out, outcome, 0)
    return batch, ledger, outcome


@pytest.mark.parametrize("name", ["difference at 0", "equivalence at the margin (+1), SD 0.5",
                                  "bound at the bound (2)"])
def test_type_one_error_within_a_generous_monte_carlo_bound(name):
    case = CASES[name]
    table = se.run(300, seed=36, only=name, designs=["OBF 4-8-12-16"])
    row = table.iloc[0]
    assert row.sims == 300 and row.refrozen == 0
    assert row.rate <= case.level + 3 * math.sqrt(case.level * (1 - case.level) / 300)


def test_power_at_the_smallest_effect_is_real_and_premise_flags_cost_some():
    table = se.run(300, seed=37, only="power: difference at 2, SD 1.96", designs=["OBF 4-8-12-16"])
    clean, flagged = table.set_index("flag_rate").rate.loc[[0.0, se.PILOT_FLAGS]]
    assert clean > 0.8 and flagged < clean


def test_a_stopped_claim_never_changes_at_later_looks():
    def stop_half_then_reverse(batch):
        # every other claim crosses at 4 seeds, and re-deciding it later would flip it; the others have mean 0 and
        # a wide spread at every look (no stop before the last), so that their notebooks, and the stopped claims
        # with them, get every look
        batch.values[0::2, :, :4] = 10 + np.arange(4) / 100
        batch.values[0::2, :, 4:] = -100 - np.arange(batch.values.shape[-1] - 4)
        batch.values[1::2] = np.tile([-10.0, 0.0, 10.0, 0.0], batch.values.shape[-1] // 4)

    batch, ledger, outcome = settle(CASES["difference at 0"], OBF, 1, stop_half_then_reverse)
    claims = se.batch_claims()
    assert all((ledger.settled[c].verdict, ledger.settled[c].look) == (SUPPORTED, 1) for c in claims[0::2])
    assert all((ledger.settled[c].verdict, ledger.settled[c].look) == (NOT_RESOLVED, 4) for c in claims[1::2])
    assert outcome.looks_run == [4] and outcome.refrozen == 0  # re-evaluated at looks 2-4, never re-decided


def test_a_time_budget_spent_after_the_first_look_stops_open_claims_by_budget():
    case = CASES["difference at 0, time budget spent at look 1"]
    design = se.design_of(case, OBF)
    assert design.time_budget_s == se.SECONDS_PER_SEED * 4
    _, ledger, outcome = settle(case, design, 3)
    assert outcome.looks_run == [1] and ledger.looks_done == 1 and ledger.elapsed_s == design.time_budget_s
    verdicts = [s.verdict for s in ledger.settled.values()]
    assert BUDGET in verdicts and set(verdicts) <= {BUDGET, FUTILE, SUPPORTED, NOT_SUPPORTED, PREMISE_NOT_MET}
    assert all(s.reason.startswith("look 1: the budget ends the claim") for s in ledger.settled.values()
               if s.verdict == BUDGET)


def test_a_seed_budget_below_the_last_look_is_never_passed():
    case = CASES["difference at 0, seed budget 12"]
    design = se.design_of(case, OBF)
    _, ledger, outcome = settle(case, design, 4)
    assert outcome.looks_run == [3] and max(s.seeds for s in ledger.settled.values()) == 12
    budget = [s for s in ledger.settled.values() if s.verdict == BUDGET]
    assert budget and {s.look for s in budget} == {3}
    assert NOT_RESOLVED not in {s.verdict for s in ledger.settled.values()}  # the last look (16) never ran


@pytest.mark.parametrize("name", ["difference at 0, whole numbers (ties), SD 1",
                                  "difference at 0, whole numbers (ties), SD 1, no futility"])
def test_ties_make_no_stop_at_their_look(name):
    case = CASES[name]
    batch, ledger, outcome = settle(case, OBF, 5)
    assert outcome.tie_looks > 0
    for i, claim in enumerate(se.batch_claims()):
        s = ledger.settled[claim]
        if s.verdict in (SUPPORTED, NOT_SUPPORTED, FUTILE):  # a boundary crossed: never on tied differences
            assert t_model_fits(batch.values[i, 0, :s.seeds])
    # a claim tied at every look ends not resolved at the last one
    tied = [i for i in range(len(se.batch_claims())) if not t_model_fits(batch.values[i, 0, :16])]
    assert all(ledger.settled[se.batch_claims()[i]].verdict in (NOT_RESOLVED, PREMISE_NOT_MET) for i in tied)


def test_every_condition_must_hold():
    case = CASES["4 conditions, 3 at +9.36 (3 SD), 1 at 0: supported"]

    def fourth_below_zero(batch):  # three conditions far above 0, the fourth clearly below
        batch.values[:, 3, :] = -5 + batch.values[:, 3, :] / 10

    _, ledger, _ = settle(case, OBF, 6, fourth_below_zero)
    assert SUPPORTED not in {s.verdict for s in ledger.settled.values()}
    assert NOT_SUPPORTED in {s.verdict for s in ledger.settled.values()}


def test_premise_flags_past_a_third_of_the_seeds_void_the_claim():
    seeds = tuple(range(100, 104))
    assert se.premise(np.array([1, 0, 0, 0], np.int8), seeds, "all runs", se.GAP_THREAT).state == MET
    for runs in ([1, 1, 0, 0], [2, 0, 1, 0]):
        premise = se.premise(np.array(runs, np.int8), seeds, "all runs", se.GAP_THREAT)
        assert premise.state == NOT_MET and len(premise.flagged) == 2

    def void_at_first_look(batch):
        batch.runs[..., :2] = 1

    _, ledger, _ = settle(CASES["power: difference at 2, SD 1.96, flags 0.15"], OBF, 7, void_at_first_look)
    assert {(s.verdict, s.look) for s in ledger.settled.values()} == {(PREMISE_NOT_MET, 1)}


def test_the_kept_premise_is_the_rules_own_answer():
    rng = np.random.default_rng(8)
    for n in (4, 8, 16):
        runs = rng.choice(3, n, p=[0.6, 0.3, 0.1]).astype(np.int8)
        seeds = tuple(range(100, 100 + n))
        index = pd.Index(seeds, name="seed")
        warm, scratch = zip(*[(se.RUNS[r][0], se.RUNS[r][1]) for r in runs])  # warm threatens a closed gap
        fits = {"warm": pd.Series(warm, index=index), "scratch": pd.Series(scratch, index=index)}  # ARMS' order
        capped = {"warm": pd.Series([se.RUNS[r][2] for r in runs], index=index),
                  "scratch": pd.Series([se.RUNS[r][3] for r in runs], index=index)}
        own = se.RULE.check(fits, "all runs", capped, se.CLOSED_THREAT)
        assert se.premise(runs, seeds, "all runs", se.CLOSED_THREAT) == own
        assert se.premise(runs, seeds, "all runs", se.CLOSED_THREAT) is se.premise(runs, seeds, "all runs",
                                                                                   se.CLOSED_THREAT)
        assert set(own.flagged) == {s for s, r in zip(seeds, runs) if r}


@pytest.mark.parametrize("name", ["power: difference at 2, SD 3.12, flags 0.15", "bound at the bound (2)"])
def test_the_shortcuts_change_no_decision(name):
    case, design = CASES[name], OBF
    _, fast, _ = settle(case, design, 9)
    _, slow, _ = settle(case, design, 9, shortcuts=False)
    assert fast.settled == slow.settled


def test_equivalence_and_its_contrary_are_the_designs():
    def inside(batch):
        batch.values[:] = (batch.values - se.MARGIN) / 20  # near 0, well within the margin

    case = CASES["equivalence at the margin (+1), SD 0.5"]
    _, ledger, _ = settle(case, OBF, 10, inside)
    assert {s.verdict for s in ledger.settled.values()} <= {EQUIVALENT, PREMISE_NOT_MET}

    def outside(batch):
        batch.values[:] = (batch.values - se.MARGIN) / 20 + 3 * se.MARGIN

    _, ledger, _ = settle(case, OBF, 11, outside)
    assert {s.verdict for s in ledger.settled.values()} == {NOT_EQUIVALENT}


def test_the_table_reports_each_scenarios_rate_its_error_and_its_check():
    table = se.run(30, seed=12, only="difference at 0, flags", designs=list(se.DESIGNS))
    assert list(table.design) == list(se.DESIGNS) and (table.sims == 40).all()  # whole batches of 20 claims
    assert {"rate", "mc_se", "level", "limit", "passed", "seconds", "refrozen", "verdicts"} <= set(table.columns)
    row = table.iloc[0]
    assert row.mc_se == pytest.approx(math.sqrt(0.05 * 0.95 / 40)) and row.limit == pytest.approx(0.05 + 2 * row.mc_se)
    assert row.passed == (row.rate <= row.limit)
