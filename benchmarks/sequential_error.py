"""Error rates of plasticity_nb.analysis.sequential's design, by simulation of the whole decision path.

Per simulated claim: paired differences of SD 1 (normal, or t with 5 df scaled to SD 1) for every condition up
to the last look; at each look the design's own `Design.codes` on each condition's t statistic at the look's n
(the statistic a verdict uses: each condition's own t, stats.py),
then the premise gate (two arms' per-seed train accuracies with SD 1 pp, true mean floor + 1 SD, judged as
premises.PremiseRule judges them: each arm's one-sided 95 % lower t bound at the floor, the arms' difference's
upper bound within `MAX_DIFFERENCE`; a claim of several conditions needs every condition's), Holm across
conditions (the contrary tests at alpha / G; intersection-union for the claim), TOST with the truth at the
margin, the bound with the truth at the bound, the futility rule, and a seed budget that stops before the last
look. A claim's verdict is frozen at the look where it stops.

Type I error: the rate of a verdict the truth contradicts, against its level (difference: any verdict at a true
0, two-sided alpha; one direction alpha / 2; equivalence: 'equivalent' with the truth at the margin; bound:
'supported' with the truth at the bound; contrary verdicts likewise), with its Monte Carlo SE at the level;
it must be <= level + 2 SE. Power at the smallest effect of interest (effect / SD = 1, the quick preset's 2 pp
at SD ~2 pp, and 0.5). The premise pass rate of arms that truly fit, per planned n. The naive rule (look at 3, 5,
8 seeds, or after every seed up to 20, stop at p < 0.05) for comparison.

    nice -n 19 .venv/bin/python benchmarks/sequential_error.py [--sims 20000] [--out benchmarks/...csv]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit

from plasticity_nb.analysis.premises import pass_chance
from plasticity_nb.analysis.sequential import (
    BOUND,
    CODE,
    DIFFERENCE,
    EQUIVALENCE,
    NOT_MET,
    OPEN,
    PREMISE_NOT_MET,
    PREMISE_UNCERTAIN,
    UNCERTAIN,
    VERDICTS,
    Design,
)
from plasticity_nb.analysis.stats import (
    EQUIVALENT,
    NOT_EQUIVALENT,
    NOT_SUPPORTED,
    SUPPORTED,
    power_bound,
    power_difference,
    power_equivalence,
)

FLOOR, ARM_SD, FIT_ABOVE, MAX_DIFFERENCE = 95.0, 1.0, 1.0, 2.0  # the quick preset's rule; arms at floor + 1 SD
LEVEL = 0.05  # premises.LEVEL
STATE = {"met": 0, UNCERTAIN: 1, NOT_MET: 2}


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    truths: tuple[float, ...]  # true mean difference per condition (SD units)
    errors: tuple[str, ...]  # the verdicts counted (type I: the ones the truth contradicts; power: the right one)
    level: float | None  # type I: the level they must keep; None: a power row
    margin: float | None = None  # equivalence margin or bound
    sesoi: float | None = None  # futility's smallest effect of interest (difference)
    distribution: str = "normal"
    gate: bool = True  # simulate the premise gate
    seed_budget: int | None = None
    futility: float = 0.1
    calibrated: bool = True  # False: the significance-level approach alone (nominal p = 1 - Phi(z))


def scenarios() -> list[Scenario]:
    a, both = 0.05, (SUPPORTED, NOT_SUPPORTED)
    rows = [
        Scenario("difference, design alone, uncalibrated", DIFFERENCE, (0,), both, a, gate=False, futility=0,
                 calibrated=False),
        Scenario("equivalence, design alone, uncalibrated", EQUIVALENCE, (1,), (EQUIVALENT,), a, margin=1.0,
                 gate=False, calibrated=False),
        Scenario("bound, design alone, uncalibrated", BOUND, (1,), (SUPPORTED,), a, margin=1.0, gate=False,
                 calibrated=False),
        Scenario("difference, design alone", DIFFERENCE, (0,), both, a, gate=False, futility=0),
        Scenario("difference, design alone, t5", DIFFERENCE, (0,), both, a, distribution="t5", gate=False, futility=0),
        Scenario("difference, full path", DIFFERENCE, (0,), both, a, sesoi=1.0),
        Scenario("difference, full path, one direction", DIFFERENCE, (0,), (SUPPORTED,), a / 2, sesoi=1.0),
        Scenario("difference, full path, t5", DIFFERENCE, (0,), both, a, sesoi=1.0, distribution="t5"),
        Scenario("difference, full path, budget 12 seeds", DIFFERENCE, (0,), both, a, sesoi=1.0, seed_budget=12),
        Scenario("difference, 4 conditions at 0: not supported (Holm)", DIFFERENCE, (0,) * 4, (NOT_SUPPORTED,),
                 a / 2, sesoi=1.0),
        Scenario("difference, 4 conditions, 3 at +3 SD, 1 at 0: supported (IUT)", DIFFERENCE, (3, 3, 3, 0),
                 (SUPPORTED,), a / 2, sesoi=1.0),
        Scenario("difference, 4 conditions, 3 at +3 SD, 1 at 0, t5", DIFFERENCE, (3, 3, 3, 0), (SUPPORTED,),
                 a / 2, sesoi=1.0, distribution="t5"),
        Scenario("equivalence, design alone, truth at margin", EQUIVALENCE, (1,), (EQUIVALENT,), a, margin=1.0,
                 gate=False),
        Scenario("equivalence, full path, truth at margin", EQUIVALENCE, (1,), (EQUIVALENT,), a, margin=1.0),
        Scenario("equivalence, full path, truth at margin, t5", EQUIVALENCE, (1,), (EQUIVALENT,), a, margin=1.0,
                 distribution="t5"),
        Scenario("equivalence, 2 conditions (margin, 0)", EQUIVALENCE, (1, 0), (EQUIVALENT,), a, margin=1.0),
        Scenario("equivalence, 2 conditions at the margin: not equivalent (Holm)", EQUIVALENCE, (1, 1),
                 (NOT_EQUIVALENT,), a, margin=1.0),
        Scenario("equivalence, truth at margin, budget 12 seeds", EQUIVALENCE, (1,), (EQUIVALENT,), a, margin=1.0,
                 seed_budget=12),
        Scenario("bound, design alone, truth at bound", BOUND, (1,), (SUPPORTED,), a, margin=1.0, gate=False),
        Scenario("bound, full path, truth at bound", BOUND, (1,), (SUPPORTED,), a, margin=1.0),
        Scenario("bound, full path, truth at bound, t5", BOUND, (1,), (SUPPORTED,), a, margin=1.0, distribution="t5"),
        Scenario("bound, truth at bound: not supported", BOUND, (1,), (NOT_SUPPORTED,), a, margin=1.0),
        Scenario("bound, 2 conditions (at bound, 3 SD below)", BOUND, (1, -2), (SUPPORTED,), a, margin=1.0),
    ]
    for effect in (1.0, 0.5):  # power at the smallest effect of interest (the sesoi is that effect)
        rows += [
            Scenario(f"power: difference at {effect:g} SD", DIFFERENCE, (effect,), (SUPPORTED,), None, sesoi=effect),
            Scenario(f"power: difference at {effect:g} SD, 4 conditions", DIFFERENCE, (effect,) * 4, (SUPPORTED,),
                     None, sesoi=effect),
            Scenario(f"power: equivalence, truth 0, margin {effect:g} SD", EQUIVALENCE, (0,), (EQUIVALENT,), None,
                     margin=effect),
            Scenario(f"power: bound, truth {effect:g} SD below", BOUND, (0,), (SUPPORTED,), None, margin=effect),
        ]
    rows.append(Scenario("futility at the sesoi (power lost)", DIFFERENCE, (1.0,), ("stopped for futility",), 0.1,
                         sesoi=1.0))
    return rows


def draw(rng: np.random.Generator, sims: int, truths: Sequence, n: int, distribution: str) -> np.ndarray:
    """(sims, conditions, n) paired differences with SD 1 around each condition's truth."""
    shape = (sims, len(truths), n)
    if distribution == "t5":
        noise = rng.standard_t(5, shape) * math.sqrt(3 / 5)  # var of t5 is 5/3
    else:
        noise = rng.standard_normal(shape)
    return np.asarray(truths, dtype=float)[None, :, None] + noise


def premise_states(rng: np.random.Generator, sims: int, conditions: int, looks: Sequence[int]) -> np.ndarray:
    """(sims, looks) premise states (STATE) of a claim: PremiseRule.check on two arms per condition, every
    condition's premise needed (Premise.all_of), on all seeds so far at each look."""
    acc = FLOOR + FIT_ABOVE * ARM_SD + ARM_SD * rng.standard_normal((sims, conditions, 2, looks[-1]))
    out = np.zeros((sims, len(looks)), dtype=int)
    for k, n in enumerate(looks):
        out[:, k] = rule_state(acc[..., :n]).max(axis=1)  # not met > uncertain > met
    return out


def rule_state(acc: np.ndarray) -> np.ndarray:
    """(sims, conditions) premise state of arms (..., 2 arms, n seeds), as premises.PremiseRule.check."""
    n = acc.shape[-1]
    t = stdtrit(n - 1, 1 - LEVEL)
    mean, half = acc.mean(-1), t * acc.std(-1, ddof=1) / math.sqrt(n)
    floor = np.where(mean - half >= FLOOR, 0, np.where(mean + half < FLOOR, 2, 1))
    high = np.where((mean[..., 0] >= mean[..., 1])[..., None], acc[..., 0, :], acc[..., 1, :])
    low = np.where((mean[..., 0] >= mean[..., 1])[..., None], acc[..., 1, :], acc[..., 0, :])
    d = high - low
    dm, dh = d.mean(-1), t * d.std(-1, ddof=1) / math.sqrt(n)
    spread = np.where(dm + dh <= MAX_DIFFERENCE, 0, np.where(dm - dh > MAX_DIFFERENCE, 2, 1))
    return np.maximum(floor.max(axis=-1), spread)


def follow(design: Design, s: Scenario, d: np.ndarray, premise: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Every claim's frozen verdict code and the seeds it used."""
    sims = d.shape[0]
    verdict, seeds = np.full(sims, CODE[OPEN]), np.zeros(sims, dtype=int)
    for k in range(1, design.reachable + 1):
        n, final, still = design.looks[k - 1], k == design.reachable, verdict == CODE[OPEN]
        x = d[:, :, :n]
        codes = design.codes(s.kind, x.mean(-1), x.std(-1, ddof=1), n, k, s.margin, s.sesoi, final)
        if premise is not None:
            codes = np.where(premise[:, k - 1] == STATE[NOT_MET], CODE[PREMISE_NOT_MET], codes)
            unsure = CODE[PREMISE_UNCERTAIN] if final else CODE[OPEN]
            codes = np.where(premise[:, k - 1] == STATE[UNCERTAIN], unsure, codes)
        verdict[still], seeds[still] = codes[still], n
    return verdict, seeds


def run_scenario(s: Scenario, sims: int, seed: int, looks: Sequence[int] = (4, 8, 12, 16)) -> dict:
    rng = np.random.default_rng(seed)
    design = Design(tuple(looks), seed_budget=s.seed_budget, futility=s.futility, calibrated=s.calibrated)
    d = draw(rng, sims, s.truths, design.looks[-1], s.distribution)
    premise = premise_states(rng, sims, len(s.truths), design.looks) if s.gate else None
    verdict, seeds = follow(design, s, d, premise)
    rate = float(np.isin(verdict, [CODE[v] for v in s.errors]).mean())
    row = dict(scenario=s.name, measure="power" if s.level is None else "error", kind=s.kind,
               conditions=len(s.truths), truths=" ".join(f"{t:g}" for t in s.truths), margin=s.margin,
               sesoi=s.sesoi, distribution=s.distribution, premise_gate=s.gate, seed_budget=s.seed_budget,
               futility=s.futility, calibrated=s.calibrated, sims=sims, counted=" / ".join(s.errors), rate=rate,
               mean_seeds=seeds.mean())
    if s.level is not None:
        se = math.sqrt(s.level * (1 - s.level) / sims)
        row.update(level=s.level, mc_se=se, limit=s.level + 2 * se, within=rate <= s.level + 2 * se)
    if s.level is None:  # the fixed design at the last look, for comparison (independent conditions)
        row["fixed_n_power"] = fixed_power(s, design.looks[-1]) ** len(s.truths)
    shares = {v: float((verdict == CODE[v]).mean()) for v in VERDICTS if (verdict == CODE[v]).any()}
    row["verdicts"] = "; ".join(f"{v} {p:.3f}" for v, p in shares.items())
    return row


def fixed_power(s: Scenario, n: int) -> float:
    """stats.py's power of one condition's fixed-n test at n seeds (SD 1)."""
    if s.kind == DIFFERENCE:
        return power_difference(s.truths[0], 1.0, n)
    if s.kind == EQUIVALENCE:
        return power_equivalence(s.margin, 1.0, n, s.truths[0])
    return power_bound(s.margin - s.truths[0], 1.0, n)


def premise_pass(rng: np.random.Generator, sims: int, looks: Sequence[int]) -> list[dict]:
    """How often arms that truly fit (floor + 1 SD) pass: one arm's floor alone, a comparison's premise, and a
    claim of four conditions (eight arms); beside each, premises.pass_chance (exact, the floor checks only)."""
    rows = []
    for n in looks:
        acc = FLOOR + FIT_ABOVE * ARM_SD + ARM_SD * rng.standard_normal((sims, 1, 2, n))
        t = stdtrit(n - 1, 1 - LEVEL)
        one = float((acc[:, 0, 0].mean(-1) - t * acc[:, 0, 0].std(-1, ddof=1) / math.sqrt(n) >= FLOOR).mean())
        both = float((rule_state(acc)[:, 0] == 0).mean())
        four = FLOOR + FIT_ABOVE * ARM_SD + ARM_SD * rng.standard_normal((sims, 4, 2, n))
        every = float((rule_state(four).max(axis=1) == 0).mean())
        rows.append(dict(scenario=f"premise pass at {n} seeds", measure="premise", sims=sims, seeds=n,
                         rate=both, one_arm=one, four_conditions=every, exact_one_arm=pass_chance(n, 1, FIT_ABOVE),
                         exact_two_arms=pass_chance(n, 2, FIT_ABOVE), exact_eight_arms=pass_chance(n, 8, FIT_ABOVE)))
    return rows


def naive(rng: np.random.Generator, sims: int, looks: Sequence[int]) -> dict:
    """Stop at the first look with a two-sided fixed-n t p < 0.05: the rate of any verdict at a true 0."""
    d = rng.standard_normal((sims, looks[-1]))
    hit = np.zeros(sims, dtype=bool)
    for n in looks:
        x = d[:, :n]
        t = x.mean(-1) / (x.std(-1, ddof=1) / math.sqrt(n))
        hit |= 2 * stdtr(n - 1, -np.abs(t)) < 0.05
    return dict(scenario=f"naive: stop at p < 0.05, looks {looks[0]}..{looks[-1]} ({len(looks)} looks)",
                measure="naive", sims=sims, rate=float(hit.mean()))


def run(sims: int, seed: int = 20261201) -> pd.DataFrame:
    rows = [run_scenario(s, sims, seed + i) for i, s in enumerate(scenarios())]
    rng = np.random.default_rng([seed, 1])
    rows += premise_pass(rng, sims, (4, 8, 12, 16, 17, 20))
    rows += [naive(rng, sims, (3, 5, 8)), naive(rng, sims, tuple(range(3, 21)))]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--out", default=None, help="CSV of the results table")
    args = parser.parse_args()
    start = time.perf_counter()
    table = run(args.sims, args.seed)
    wall = time.perf_counter() - start
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 70):
        print(table[["scenario", "rate", "limit", "within", "mean_seeds"]].to_string(index=False))
    print(f"wall {wall:.1f} s for {args.sims} simulations a scenario")
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
