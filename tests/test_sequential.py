import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import stdtrit

from benchmarks.sequential_error import Scenario, naive, rule_state, run_scenario
from plasticity_nb.analysis import claims, premises
from plasticity_nb.analysis.sequential import (
    BOUND,
    BUDGET,
    DIFFERENCE,
    EQUIVALENCE,
    FLAG_CHANCE,
    FUTILE,
    MAIN_DESIGN,
    NOT_MET,
    NOT_RESOLVED,
    OBRIEN_FLEMING,
    OPEN,
    POCOCK,
    UNCERTAIN,
    Design,
    allowed_flags,
    calibration,
    crossing,
    difference_power,
    hsd,
    hsd_gamma,
    spent,
    void_chance,
    walk,
    z_boundaries,
)
from plasticity_nb.analysis.stats import (
    EQUIVALENT,
    NOT_EQUIVALENT,
    NOT_SUPPORTED,
    PREMISE_NOT_MET,
    PREMISE_UNCERTAIN,
    SUPPORTED,
    power_difference,
)

EQUAL4 = (0.25, 0.5, 0.75, 1.0)


def around(mean: float, n: int, sd: float = 1.0) -> np.ndarray:
    """n differences with exactly this mean and SD (no ties)."""
    x = np.linspace(-1, 1, n)
    return mean + sd * (x - x.mean()) / x.std(ddof=1)


# --- boundaries against published tables ------------------------------------------------------------------------

def test_lan_demets_obrien_fleming_four_equal_looks_two_sided():
    # gsDesign(k = 4, test.type = 2, sfu = sfLDOF): 4.33, 2.96, 2.36, 2.01 (DeMets & Lan 1994 give the same
    # design: 4.3326, 2.9631, 2.3590, 2.0141)
    z = z_boundaries(EQUAL4, 0.05, OBRIEN_FLEMING, True)
    assert z == pytest.approx((4.3326, 2.9631, 2.3590, 2.0141), abs=2e-4)


def test_classic_obrien_fleming_and_pocock_constants():
    # Jennison & Turnbull (2000): C_B(4, 0.05) = 2.024 (Table 2.3), C_P(4, 0.05) = 2.361 (Table 2.1)
    obf = brentq(lambda c: sum(crossing(EQUAL4, [c / math.sqrt(t) for t in EQUAL4], True)) - 0.05, 1.5, 4)
    pocock = brentq(lambda c: sum(crossing(EQUAL4, [c] * 4, True)) - 0.05, 1.5, 4)
    assert obf == pytest.approx(2.024, abs=5e-4)
    assert pocock == pytest.approx(2.361, abs=5e-4)


def test_hwang_shih_decani_against_gsdesign_snapshot():
    # keaven/gsDesign tests/testthat/_snaps/independent-test-gsBoundSummary.md: its default design, HSD gamma = -4,
    # 5 equal looks, one-sided 0.025: 3.2527, 2.9860, 2.6917, 2.3737, 2.0253
    fractions = tuple(np.arange(1, 6) / 5)
    total = 0.025 * (1 - np.exp(4 * np.array(fractions))) / (1 - math.exp(4))
    steps = np.diff(total, prepend=0.0)
    z = walk(fractions, False, lambda k, chance: brentq(lambda b: chance(b) - steps[k], 0, 20, xtol=1e-10))[0]
    assert z == pytest.approx((3.2527, 2.9860, 2.6917, 2.3737, 2.0253), abs=1e-4)
    # the same through the package's own spending option
    assert z_boundaries(fractions, 0.025, hsd(-4), False) == pytest.approx(z, abs=1e-8)
    assert spent(fractions, 0.025, hsd(-4)) == pytest.approx(total, abs=1e-12)


def test_hwang_shih_decani_family_spans_the_other_two():
    t = np.array([0.25, 0.5, 0.75, 1.0])
    assert spent(t, 0.05, hsd(0)) == pytest.approx(0.05 * t)  # gamma 0: linear
    assert spent(1.0, 0.05, hsd(-7)) == pytest.approx(0.05) and spent(1.0, 0.05, hsd(3)) == pytest.approx(0.05)
    # gamma -4 spends about as late as O'Brien-Fleming, gamma 1 about as early as Pocock (Jennison & Turnbull 7.3)
    assert spent(0.25, 0.05, hsd(-4)) < spent(0.25, 0.05, hsd(1)) < 1.1 * spent(0.25, 0.05, POCOCK)
    assert hsd_gamma(hsd(-2.5)) == -2.5 and hsd_gamma(POCOCK) is None
    assert "Hwang-Shih-DeCani (gamma -2)" in Design(spending=hsd(-2)).describe()


def gsdesign_crossings(fractions, bounds, two_sided: bool) -> np.ndarray:
    """First-crossing chances of z `bounds` under the null from gsdesign's own grid and density recursion (h1,
    hupdate): the mass its density puts beyond each bound, after continuing between the earlier ones."""
    gs = pytest.importorskip("gsdesign", reason="PyPI gsdesign (the integration core of gsDesign) not installed")
    out, previous = [], None
    for k, (info, b) in enumerate(zip(fractions, bounds)):
        low = -b if two_sided else -np.inf

        def mass(a, c):
            if k == 0:
                return gs.h1(theta=0.0, info=info, a=a, b=c)
            return gs.hupdate(18, 0.0, info, a, c, 0.0, fractions[k - 1], previous)

        chance = mass(b, np.inf)[2].sum() + (mass(-np.inf, -b)[2].sum() if two_sided else 0.0)
        out.append(chance)
        previous = mass(low, b)
    return np.array(out)


@pytest.mark.parametrize("fractions, level, spending, two_sided", [
    (EQUAL4, 0.05, OBRIEN_FLEMING, True),
    (EQUAL4, 0.05, POCOCK, True),
    (tuple(np.arange(1, 6) / 5), 0.025, hsd(-4), False),
    ((1 / 3, 2 / 3, 1.0), 0.05, hsd(-2), True),
    ((0.3, 0.55, 1.0), 0.1, hsd(1), False),
])
def test_boundaries_spend_what_the_function_says_by_gsdesign(fractions, level, spending, two_sided):
    z = z_boundaries(tuple(fractions), level, spending, two_sided)
    theirs = np.cumsum(gsdesign_crossings(fractions, z, two_sided))
    side = level / 2 if two_sided else level
    assert theirs == pytest.approx(spent(np.array(fractions), side, spending) * (2 if two_sided else 1), abs=2e-6)


def test_boundaries_spend_what_the_function_says():
    z = z_boundaries(EQUAL4, 0.05, OBRIEN_FLEMING, False)
    spent = np.cumsum(crossing(EQUAL4, z, False))
    assert spent[-1] == pytest.approx(0.05, abs=1e-6)
    assert spent[0] == pytest.approx(2 * (1 - 0.5 * math.erfc(-1.959964 / 0.5 / math.sqrt(2))), abs=1e-6)


def test_t_boundaries_are_wider_than_z_and_calibrated_down():
    d = Design()
    table = d.boundaries(DIFFERENCE)["efficacy"]
    assert all(row.t > row.z for row in table)  # 3-15 df: heavier tails than the normal
    assert 0.9 < calibration(d.looks, 0.05, OBRIEN_FLEMING, True) < 1.0  # z-to-t alone is slightly over
    assert table[-1].t == pytest.approx(2.227, abs=0.01)


# --- the level, on a small seeded simulation of the whole path -------------------------------------------------

@pytest.mark.parametrize("scenario", [
    Scenario("difference", DIFFERENCE, (0,), (SUPPORTED, NOT_SUPPORTED), 0.05, gate=False, futility=0),
    Scenario("equivalence at the margin", EQUIVALENCE, (1,), (EQUIVALENT,), 0.05, margin=1.0, gate=False),
    Scenario("bound at the bound", BOUND, (1,), (SUPPORTED,), 0.05, margin=1.0, gate=False),
    Scenario("difference, 4 conditions, gate, budget", DIFFERENCE, (3, 3, 3, 0), (SUPPORTED,), 0.025, sesoi=1.0,
             seed_budget=12),
])
def test_type_one_error_within_monte_carlo_error(scenario):
    row = run_scenario(scenario, 3000, seed=11)
    assert row["rate"] <= scenario.level + 3 * row["mc_se"]


def test_power_at_the_smallest_effect_and_the_naive_rule():
    power = run_scenario(Scenario("power", DIFFERENCE, (1.0,), (SUPPORTED,), None, sesoi=1.0), 2000, seed=12)
    assert power["rate"] > 0.8
    assert naive(np.random.default_rng(3), 4000, (3, 5, 8))["rate"] > 0.08  # peeking inflates 0.05


def test_simulated_premise_rule_is_premises_rule():
    rule, rng = premises.PremiseRule(95.0, 2.0), np.random.default_rng(5)
    for n in (4, 8, 16):
        for _ in range(20):
            acc = 95.5 + rng.standard_normal((2, n)) * rng.choice([0.3, 1.0, 3.0])
            state = rule.check({"scratch": acc[0], "warm": acc[1]}, "c").state
            assert ("met", "uncertain", "not met")[rule_state(acc[None, None])[0, 0]] == state


# --- power by simulation (difference_power), for planning ------------------------------------------------------

def test_power_of_one_look_is_the_fixed_t_test():
    one = difference_power(Design(looks=(12,)), 2.0, 3.12, sims=20_000, seed=1)
    fixed = power_difference(2.0, 3.12, 12)
    se = math.sqrt(fixed * (1 - fixed) / 20_000)
    assert one.power + one.chance(NOT_SUPPORTED) == pytest.approx(fixed, abs=4 * se)
    assert one.stops == pytest.approx((1.0,)) and one.expected_seeds == 12


def test_sequential_power_keeps_the_level_and_is_seeded():
    null = difference_power(Design(looks=(6, 12, 18), spending=hsd(-2), futility=0), 0.0, 1.0, sims=20_000, seed=2)
    assert null.chance(SUPPORTED, NOT_SUPPORTED) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 20_000)
    again = difference_power(Design(looks=(6, 12, 18), spending=hsd(-2), futility=0), 0.0, 1.0, sims=20_000, seed=2)
    assert again.by_look == null.by_look
    assert sum(null.stops) == pytest.approx(1.0) and null.reaches[0] == 1.0
    assert null.expected_seeds == pytest.approx(np.dot(null.stops, (6, 12, 18)))


def test_premise_voids_are_the_run_fit_rules():
    rule = premises.RunFitRule(99.0, 2.0)
    assert [int(allowed_flags(n)) for n in range(3, 41)] == [rule.allowed(n) for n in range(3, 41)]
    voided = difference_power(Design(looks=(8,)), 2.0, 1.0, flag_chance=FLAG_CHANCE, sims=20_000, seed=3)
    exact = void_chance(8)  # more than 2 of 8 flagged at 0.15: 0.105
    assert voided.chance(PREMISE_NOT_MET) == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20_000))
    # the flags only remove chances: a void claim is never 'supported', and without flags power is higher
    clean = difference_power(Design(looks=(8,)), 2.0, 1.0, sims=20_000, seed=3)
    assert clean.power - voided.power == pytest.approx(voided.chance(PREMISE_NOT_MET), abs=0.01)


def test_power_grows_with_the_effect_and_futility_stops_null_claims():
    design = Design(looks=(8, 16), spending=POCOCK)
    low, high = (difference_power(design, e, 3.12, 2.0, sims=5_000) for e in (1.0, 2.0))
    assert low.power < high.power
    null = difference_power(design, 0.0, 3.12, 2.0, sims=5_000)
    assert null.by_look[0].get(FUTILE, 0) > 0.2 and FUTILE not in null.by_look[-1]  # interim looks only
    with pytest.raises(ValueError, match="sd > 0"):
        difference_power(design, 1.0, 0.0)


def test_main_design_has_its_power_and_every_look_can_stop():
    # benchmarks/design_choice.py chose it: the same seeded paths give the same numbers
    alt = difference_power(MAIN_DESIGN, 2.0, 3.12, 2.0, flag_chance=FLAG_CHANCE)
    assert alt.power >= 0.90 and alt.power == pytest.approx(0.9092, abs=1e-4)
    assert min(look.get(SUPPORTED, 0.0) for look in alt.by_look) > 0.05  # each look stops a true 2 pp
    assert all(row.t < 3 for row in MAIN_DESIGN.boundaries(DIFFERENCE)["efficacy"])  # not 4 seeds' t >= 54
    null = difference_power(MAIN_DESIGN, 0.0, 3.12, 2.0, flag_chance=FLAG_CHANCE)
    assert null.chance(FUTILE) > 0.8  # a gap of 0 mostly ends settled: smaller than the smallest effect of interest


def test_design_choice_time_model():
    from benchmarks.design_choice import Costs, expected_wall_s, worst_wall_s

    costs = Costs(89.0, (116.0, 120.0, 120.0), 2, 20.0)
    assert worst_wall_s(MAIN_DESIGN, costs) == pytest.approx(36 * (89 + 356) / 2 + 3 * 20)
    # one claim open at look 2 for sure, none at look 3: the scratch run and its run, 12 new seeds
    one = Costs(89.0, (116.0,), 2, 20.0)
    assert expected_wall_s(MAIN_DESIGN, (1.0, 1.0, 0.0), one) == pytest.approx(27 * 205 / 2 + 2 * 20)


# --- decisions on constructed looks ----------------------------------------------------------------------------

def test_efficacy_stops_and_reports_its_repeated_interval():
    d = Design()
    up = d.decide(DIFFERENCE, around(3.0, 8), 2)
    assert (up.stop, up.verdict) == (True, SUPPORTED)
    assert up.conditions[0].ci_low > 0 and up.boundary == pytest.approx(d.boundaries(DIFFERENCE)["efficacy"][1].t)
    assert d.decide(DIFFERENCE, around(-3.0, 8), 2).verdict == NOT_SUPPORTED
    assert d.decide(EQUIVALENCE, around(0.0, 16, 0.5), 4, margin=1.0).verdict == EQUIVALENT
    assert d.decide(EQUIVALENCE, around(3.0, 16), 4, margin=1.0).verdict == NOT_EQUIVALENT
    assert d.decide(BOUND, around(-2.0, 12), 3, margin=1.0).verdict == SUPPORTED
    assert d.decide(BOUND, around(4.0, 12), 3, margin=1.0).verdict == NOT_SUPPORTED


def test_open_claims_continue_and_the_last_look_is_not_resolved():
    d = Design()
    weak = d.decide(DIFFERENCE, around(0.3, 8), 2)
    assert (weak.stop, weak.verdict) == (False, OPEN)
    assert weak.conditions[0].ci_low < 0 < weak.conditions[0].ci_high
    assert d.decide(DIFFERENCE, around(0.3, 16), 4).verdict == NOT_RESOLVED


def test_futility_at_interim_looks_only():
    d = Design()
    futile = d.decide(DIFFERENCE, around(0.0, 8), 2, sesoi=2.0)
    assert (futile.stop, futile.verdict) == (True, FUTILE)
    # a settled answer for readers: smaller than the smallest effect of interest, which the interval shows
    assert "smaller than the smallest effect of interest" in futile.reason
    assert "settled" in futile.reason and "an effect of 2 or more is rejected" in futile.reason
    # the futility test's own bound, below the sesoi; the repeated (95 %) interval is wider
    table = d.boundaries(DIFFERENCE)["futility"][1]
    bound = 0.0 + float(stdtrit(7, 1 - table.nominal_p)) / math.sqrt(8)
    assert f"below {bound:.3g}," in futile.reason and bound < 2.0
    assert futile.conditions[0].ci_high > bound
    assert d.decide(DIFFERENCE, around(0.0, 16), 4, sesoi=2.0).verdict == NOT_RESOLVED  # no futility at the last
    assert d.decide(DIFFERENCE, around(0.0, 8), 2).verdict == OPEN  # no sesoi: no futility rule
    assert Design(futility=0).decide(DIFFERENCE, around(0.0, 8), 2, sesoi=2.0).verdict == OPEN


def test_budget_stops_are_not_resolved_with_their_interval():
    d = Design(seed_budget=12)
    assert d.reachable == 3 and d.next_look(8) == 12 and d.next_look(12) is None
    stopped = d.decide(DIFFERENCE, around(0.5, 12), 3)
    assert (stopped.stop, stopped.verdict) == (True, BUDGET)
    row = stopped.conditions[0]
    assert row.ci_low < row.mean < row.ci_high and math.isfinite(row.ci_low)
    assert Design().decide(DIFFERENCE, around(0.5, 8), 2, final=True).verdict == BUDGET  # the time budget
    assert d.decide(DIFFERENCE, around(3.0, 12), 3).verdict == SUPPORTED  # a crossing is still a verdict


def test_premise_not_met_freezes_and_uncertain_continues():
    d = Design()
    looks = [(around(0.2, 4), "met"), (around(0.5, 8), NOT_MET), (around(3.0, 12), "met"), (around(3, 16), "met")]
    frozen = d.settle(DIFFERENCE, looks)
    assert (frozen.verdict, frozen.look, frozen.stop) == (PREMISE_NOT_MET, 2, True)
    unsure = d.decide(DIFFERENCE, around(3.0, 8), 2, premise=UNCERTAIN)
    assert (unsure.stop, unsure.verdict) == (False, OPEN)  # a crossing under an uncertain premise is no verdict
    assert d.decide(DIFFERENCE, around(3.0, 16), 4, premise=UNCERTAIN).verdict == PREMISE_UNCERTAIN
    resumed = d.settle(DIFFERENCE, [(around(3.0, 4), UNCERTAIN), (around(3.0, 8), "met")])
    assert (resumed.verdict, resumed.look) == (SUPPORTED, 2)


def test_verdict_frozen_at_the_look_where_it_stopped():
    d = Design()
    looks = [(around(0.2, 4), "met"), (around(3.0, 8), "met"), (around(-3.0, 12), "met")]
    assert (d.settle(DIFFERENCE, looks).verdict, d.settle(DIFFERENCE, looks).look) == (SUPPORTED, 2)


def test_ties_make_no_stop():
    d = Design()
    ties = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert d.decide(DIFFERENCE, ties, 2).verdict == OPEN
    assert d.decide(DIFFERENCE, ties * 2, 4).verdict == NOT_RESOLVED


def test_several_conditions_every_one_holds_any_one_fails():
    d = Design()
    strong, weak, wrong = around(3.0, 12), around(0.2, 12), around(-3.0, 12)
    assert d.decide(DIFFERENCE, {"a": strong, "b": strong}, 3).verdict == SUPPORTED
    assert d.decide(DIFFERENCE, {"a": strong, "b": weak}, 3).verdict == OPEN
    assert d.decide(DIFFERENCE, {"a": strong, "b": wrong}, 3).verdict == NOT_SUPPORTED
    # the contrary boundary at alpha / conditions is stricter than at alpha
    one, four = d.boundaries(DIFFERENCE, 1)["contrary"][2], d.boundaries(DIFFERENCE, 4)["contrary"][2]
    assert four.t > one.t


def test_missing_pairs_are_left_out():
    d = Design()
    x = np.append(around(3.0, 7), np.nan)
    decision = d.decide(DIFFERENCE, x, 2)
    assert decision.n == 7 and decision.verdict == SUPPORTED


def test_constants_match_the_rest_of_the_package():
    assert NOT_RESOLVED == claims.NOT_RESOLVED
    assert (UNCERTAIN, NOT_MET) == (premises.UNCERTAIN, premises.NOT_MET)


def test_describe_states_the_design():
    text = Design(seed_budget=12, time_budget_s=3600).describe()
    for said in ("4, 8, 12, 16", "O'Brien-Fleming", "premise not met", "stopped by budget", "at most 12 seeds",
                 "3600 s", "| 4 | 16 |"):
        assert said in text


# --- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, culprit", [
    (dict(looks=(4, 4, 8)), "strictly increasing"),
    (dict(looks=(8, 4)), "strictly increasing"),
    (dict(looks=(2, 4)), "at least 3 seeds"),
    (dict(looks=(4, 8.5)), "whole seed counts"),
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=0.5), "alpha"),
    (dict(seed_budget=3), "seed budget 3 is below the first look"),
    (dict(spending="linear"), "unknown spending"),
    (dict(spending="hwang-shih-decani"), "its gamma"),
    (dict(spending=hsd(-41)), "gamma must lie in"),
    (dict(time_budget_s=0), "time budget"),
])
def test_bad_designs(fields, culprit):
    with pytest.raises(ValueError, match=culprit):
        Design(**fields)


def test_bad_decisions():
    d = Design(seed_budget=12)
    with pytest.raises(ValueError, match="unknown test kind 'correlation'"):
        d.decide("correlation", around(1.0, 4), 1)
    with pytest.raises(ValueError, match="unknown test kind"):
        d.boundaries("ratio")
    with pytest.raises(ValueError, match="needs its margin"):
        d.decide(EQUIVALENCE, around(0.0, 4), 1)
    with pytest.raises(ValueError, match="look 4 is not one of"):
        d.decide(DIFFERENCE, around(0.0, 16), 4)
    with pytest.raises(ValueError, match="premise state"):
        d.decide(DIFFERENCE, around(0.0, 4), 1, premise="fine")
