"""Error rates of the package's own settle path (`run --settle`), by simulation (issue 36, item 2).

Every simulated claim is decided by the code that decides a real one:

- settle.run_settle runs the look loop: which notebooks get a look's seeds (those with an open claim), the seed
  budget (`Design.reachable`), the time budget (its `clock`: here a fake one that each look advances by the fit
  pilot's CPU seconds per seed, `SECONDS_PER_SEED`), the final look, the ledger (written after every look, to a
  temporary folder) and freezing: `evaluate` keeps returning every claim of a notebook with the new seeds, as the
  batch's does, and decide_look must never decide a settled claim again (`Runner` checks the ledger after every
  look: `refrozen` counts the settled claims that changed, and must be 0);
- at each look `evaluate` builds each claim's ClaimResult as the notebooks do through StudyResult (studies/*.py):
  per condition stats.difference_test / equivalence_test / bound_test on a Series of the simulated values indexed
  by seed, and the quick preset's premise rule (`StudyConfig.premise_rule`: RunFitRule, target 99 %, bound 2
  points) checked on simulated per-run fits and caps with the claim's threat (study_result.GAP_THREAT for a
  difference or a bound, CLOSED_THREAT for an equivalence), every condition's premise needed (Premise.all_of, as
  StudyResult.premise); ClaimResult.every_condition for a claim of several conditions;
- settle.decide_look, decide_claim and Design.decide do the rest: the premise (not met: frozen; RunFitRule is never
  uncertain), ties (fewer than stats.MIN_DISTINCT distinct differences: no stop at that look), futility at the
  preset's smallest effect of interest (`Notebook.smallest_effect`), Holm's first step, intersection-union, the
  boundaries and the verdict at the last look or at a budget stop.

One thing is left out: each Test's `mde` (the effect 80 % power detects at the test's own SD, a number for the
report). It costs 3 ms a difference test and 0.2-0.8 s an equivalence test (a quadrature inside a bisection),
and no decision reads it; `shortcuts` makes it NaN (and computes the registry's hash, which every frozen claim
records, once), and tests/test_sequential_error.py checks that the ledgers are the same with them and without.
RunFitRule.check is called once per distinct input (`premise`): the simulated runs take three forms, so the same
flags recur, and the rule is deterministic.

Each run_settle call settles one batch of independent simulated claims, one per registry claim of the notebooks
whose claims all take the preset's smallest effect of interest (`slots`: 20 claims in 9 notebooks; notebooks 09,
11 and 12 hold a claim with its own, in %, r or pp per doubling, which would put futility on another scale), each
with its own data. Preset "error-sim": no registry
change has seen its seeds, so every claim is one the design can settle (a claim it cannot would stop the run).

Simulated data, in the quick preset's units (points of accuracy). A condition's per-seed differences are normal
around the truth with the stated SD (`whole`: rounded to whole numbers, as epochs are, which makes ties). Its runs'
fits (`RUNS`): a seed is flagged with chance `flag_rate` (the fit pilot flagged 2 of 13 seeds, 0.15), 3 in 4 flagged
seeds by the threatening arm fitting 3.5 points more than the other (the pilot's Adam dips after the fit), 1 in 4
by the other arm's run capped below the target; an unflagged seed's arms both fit 99.6 %. Flags and differences
are independent, so the premise only removes chances to stop.

Rates. Type I: the share of claims with a verdict the truth contradicts (a difference at 0: 'supported' or 'not
supported', two-sided alpha; with one condition at 0 and the others far above, 'supported', alpha / 2; an
equivalence at its margin: 'equivalent'; a bound at the bound: 'supported'), against level + 2 MC SE, the SE at
the level (sqrt(level (1 - level) / sims)). Power: 'supported' at the quick preset's smallest effect of interest
(2 points) at the planning SD (3.12, claims.PLANNING_SD) and C1's SD (1.96), beside the fixed-n test's power at the
last look (stats.power_difference, every condition needed) and 0.8 (stats.POWER), with its own MC SE.

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/sequential_error.py --sims 20000 \\
        --out benchmarks/sequential-error-2026-12-06.csv
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

# tests/test_sequential.py imports the vectorized model of the design alone from here, where it lived until now
from benchmarks.sequential_design_error import Scenario, naive, rule_state, run_scenario  # noqa: F401
from plasticity_nb.analysis import settle, stats
from plasticity_nb.analysis.claims import CLAIMS, PLANNING_SD, ClaimResult
from plasticity_nb.analysis.premises import Premise, RunFitRule
from plasticity_nb.analysis.sequential import BOUND, BUDGET, DIFFERENCE, EQUIVALENCE, POCOCK, VERDICTS, Design
from plasticity_nb.analysis.settle import Ledger, Notebook, Settled, claims_of, ledger_path, read_ledger, run_settle
from plasticity_nb.analysis.stats import (
    ALPHA,
    EQUIVALENT,
    NOT_SUPPORTED,
    POWER,
    SUPPORTED,
    bound_test,
    difference_test,
    equivalence_test,
    power_difference,
    t_model_fits,
)
from plasticity_nb.studies.study_config import ARMS, BASE_PRESETS
from plasticity_nb.studies.study_result import CLOSED_THREAT, GAP_THREAT

QUICK = BASE_PRESETS["quick"]
RULE = RunFitRule(QUICK["fit_target"], QUICK["premise_arm_difference"])  # StudyConfig.premise_rule() at quick
SESOI, MARGIN = QUICK["smallest_effect"], QUICK["equivalence_margin"]  # 2 points, 1 point
PLANNING = PLANNING_SD[("quick", "pp")]  # 3.12: the SD quick plans its seeds at
C1_SD = 1.96  # C1's gap SD on seeds 100-107 (claims.PLANNING_SD's comment)
PILOT_FLAGS = 0.15  # the fit pilot's flagged seeds, 2 of 13 (benchmarks/RESULTS.md, 2026-12-06)
SECONDS_PER_SEED = 205.0  # the fit pilot's CPU seconds per seed of notebook 01 at quick
PRESET, FIRST_SEED = "error-sim", 100  # simulated runs: no seed of a real result is used
CAP_SHARE = 0.25  # of flagged seeds, those flagged by a capped run (the rest: the threatening arm fits more)
DESIGNS = {"OBF 4-8-12-16": Design(), "Pocock 8-16": Design((8, 16), spending=POCOCK)}
TESTS = {DIFFERENCE: lambda values, bound, label: difference_test(values, label),
         EQUIVALENCE: lambda values, bound, label: equivalence_test(values, bound, label),
         BOUND: bound_test}
THREATS = {DIFFERENCE: GAP_THREAT, EQUIVALENCE: CLOSED_THREAT, BOUND: GAP_THREAT}


@dataclasses.dataclass(frozen=True)
class Case:
    """One simulated scenario: the claim's kind and truth, its data's SD and premise flags, and the budgets."""

    name: str
    kind: str
    truths: tuple[float, ...]  # the true mean difference per condition (points)
    sd: float  # the per-seed SD of each condition's differences (points)
    counted: tuple[str, ...]  # type I: the verdicts the truth contradicts; power: the right one
    level: float | None  # type I: the level they must keep; None: a power row
    bound: float | None = None  # an equivalence's margin, a bound's bound
    flag_rate: float = 0.0  # each seed's chance of a premise flag, per condition
    whole: bool = False  # differences rounded to whole numbers (ties)
    seed_budget: int | None = None
    time_budget: bool = False  # a time budget spent by the end of the first look
    futility: bool = True  # the notebook has the preset's smallest effect of interest (False: None, no futility)


def cases() -> list[Case]:
    both, sd = (SUPPORTED, NOT_SUPPORTED), PLANNING
    far = 3 * sd  # a condition "far above 0": the least favourable case of intersection-union, nearly
    return [
        Case("difference at 0", DIFFERENCE, (0.0,), sd, both, ALPHA),
        Case("difference at 0, flags 0.15", DIFFERENCE, (0.0,), sd, both, ALPHA, flag_rate=PILOT_FLAGS),
        Case("difference at 0, whole numbers (ties), SD 1", DIFFERENCE, (0.0,), 1.0, both, ALPHA, whole=True),
        Case("difference at 0, seed budget 12", DIFFERENCE, (0.0,), sd, both, ALPHA, seed_budget=12),
        Case("difference at 0, time budget spent at look 1", DIFFERENCE, (0.0,), sd, both, ALPHA, time_budget=True),
        Case("4 conditions at 0", DIFFERENCE, (0.0,) * 4, sd, both, ALPHA),
        Case("4 conditions, 3 at +9.36 (3 SD), 1 at 0: supported", DIFFERENCE, (far, far, far, 0.0), sd, (SUPPORTED,),
             ALPHA / 2),
        Case("equivalence at the margin (+1), SD 0.5", EQUIVALENCE, (MARGIN,), 0.5, (EQUIVALENT,), ALPHA,
             bound=MARGIN),
        Case("bound at the bound (2)", BOUND, (SESOI,), sd, (SUPPORTED,), ALPHA, bound=SESOI),
        Case("power: difference at 2, SD 3.12", DIFFERENCE, (SESOI,), sd, (SUPPORTED,), None),
        Case("power: difference at 2, SD 3.12, flags 0.15", DIFFERENCE, (SESOI,), sd, (SUPPORTED,), None,
             flag_rate=PILOT_FLAGS),
        Case("power: difference at 2, SD 1.96", DIFFERENCE, (SESOI,), C1_SD, (SUPPORTED,), None),
        Case("power: difference at 2, SD 1.96, flags 0.15", DIFFERENCE, (SESOI,), C1_SD, (SUPPORTED,), None,
             flag_rate=PILOT_FLAGS),
        Case("power: 4 conditions at 2, SD 1.96", DIFFERENCE, (SESOI,) * 4, C1_SD, (SUPPORTED,), None),
        Case("power: 4 conditions at 2, SD 1.96, flags 0.15", DIFFERENCE, (SESOI,) * 4, C1_SD, (SUPPORTED,), None,
             flag_rate=PILOT_FLAGS),
        # added after the first full run (the cases above keep their draws: each case's are keyed by its place):
        # at SD 1 futility at 2 points stops 99 % of the tied claims above before their ties matter
        Case("difference at 0, whole numbers (ties), SD 1, no futility", DIFFERENCE, (0.0,), 1.0, both, ALPHA,
             whole=True, futility=False),
    ]


def slots() -> dict[str, tuple[str, ...]]:
    """Notebook stem -> its registry claims, for the notebooks whose claims all take the preset's smallest effect of
    interest: each claim is one simulated claim of a batch."""
    stems = dict.fromkeys(c.notebook for c in CLAIMS.values())
    return {stem: claims_of(stem) for stem in stems if all(CLAIMS[c].sesoi is None for c in claims_of(stem))}


def batch_claims() -> list[str]:
    """The simulated claims of a batch, in the order of its arrays."""
    return [claim for claims in slots().values() for claim in claims]


def design_of(case: Case, design: Design) -> Design:
    budget = SECONDS_PER_SEED * design.looks[0] if case.time_budget else None
    return dataclasses.replace(design, seed_budget=case.seed_budget, time_budget_s=budget)


@dataclasses.dataclass
class Batch:
    """One batch's simulated data: per claim, condition and seed."""

    values: np.ndarray  # (claims, conditions, seeds): the paired differences
    runs: np.ndarray  # (claims, conditions, seeds): the seed's runs, an index into RUNS


# A seed's two runs: (the threatening arm's fit, the other's, the threatening arm capped, the other capped). Three
# kinds, so that RunFitRule.check sees the same inputs again and again and `premise` can keep what it returned.
RUNS = ((99.6, 99.6, False, False),  # both fit: not flagged
        (99.6, 96.1, False, False),  # the threatening arm fits 3.5 points more (the pilot's Adam dips): flagged
        (99.6, 97.5, False, True))  # the other arm's run capped below the target: flagged


def draw(case: Case, rng: np.random.Generator, claims: int, seeds: int) -> Batch:
    shape = (claims, len(case.truths), seeds)
    values = np.asarray(case.truths)[None, :, None] + case.sd * rng.standard_normal(shape)
    if case.whole:
        values = np.round(values)
    flagged = rng.random(shape) < case.flag_rate
    runs = np.where(flagged, np.where(rng.random(shape) < CAP_SHARE, 2, 1), 0).astype(np.int8)
    return Batch(values, runs)


@functools.lru_cache(maxsize=64)
def seed_index(seeds: tuple[int, ...]) -> pd.Index:
    """The seeds as the index of a StudyResult's per-seed Series (what gives a Test its seeds)."""
    return pd.Index(seeds, name="seed")


CHECKED: dict[tuple, Premise] = {}  # RunFitRule.check's answers, by their exact inputs (`premise`)


def premise(runs: np.ndarray, seeds: tuple[int, ...], where: str, threat: tuple[str, str]) -> Premise:
    """The quick rule's premise of one condition's runs at these seeds: RunFitRule.check, called once per distinct
    input (it is deterministic, and a pandas loop over the seeds: 70 % of the time before it was kept)."""
    key = (runs.tobytes(), seeds, where, threat)
    if key not in CHECKED:
        index = seed_index(seeds)
        table = np.asarray([RUNS[r] for r in runs], dtype=object)
        fits = {arm: pd.Series(table[:, threat.index(arm)].astype(float), index=index) for arm in ARMS}
        capped = {arm: pd.Series(table[:, 2 + threat.index(arm)].astype(bool), index=index) for arm in ARMS}
        CHECKED[key] = RULE.check(fits, where, capped, threat)
    return CHECKED[key]


class Runner:
    """run_settle's callbacks for one batch: `run_look` trains nothing and advances the fake clock by the new seeds'
    CPU time; `evaluate` builds every claim of a notebook at the look's seeds (frozen ones too, as the batch does);
    `clock`. At each look's first evaluation it reads the ledger run_settle wrote after the previous look: the
    claims settled there must be unchanged (`refrozen` counts those that are not), and the open ones' ties are
    counted."""

    def __init__(self, case: Case, batch: Batch, out: Path, claims: Sequence[str]):
        self.case, self.batch, self.out = case, batch, out
        self.index = {claim: i for i, claim in enumerate(claims)}
        self.now, self.seeds_run, self.looks = 0.0, 0, 0
        self.settled: dict[str, Settled] = {}
        self.refrozen = self.open_looks = self.tie_looks = 0
        self.checked = -1

    def clock(self) -> float:
        return self.now

    def run_look(self, notebooks: Sequence[Notebook], seeds: tuple[int, ...]) -> list[str]:
        self.now += SECONDS_PER_SEED * (len(seeds) - self.seeds_run)
        self.seeds_run, self.looks = len(seeds), self.looks + 1
        return []

    def evaluate(self, notebook: Notebook, seeds: tuple[int, ...]) -> list[ClaimResult]:
        if self.checked != self.looks:
            self.check_frozen()
        return [self.result(claim, seeds) for claim in claims_of(notebook.stem)]

    def check_frozen(self) -> None:
        self.checked = self.looks
        ledger = read_ledger(self.out, PRESET)
        if ledger is None:
            return
        self.refrozen += sum(ledger.settled.get(c) != s for c, s in self.settled.items())
        self.settled = dict(ledger.settled)

    def result(self, claim: str, seeds: tuple[int, ...]) -> ClaimResult:
        i, n, kind = self.index[claim], len(seeds), self.case.kind
        index = seed_index(seeds)
        threat, several = THREATS[kind], len(self.case.truths) > 1
        tests, premises = [], []
        for g in range(len(self.case.truths)):
            where = f"condition={g + 1}" if several else ""
            values = self.batch.values[i, g, :n]
            if claim not in self.settled:
                self.open_looks += 1
                self.tie_looks += not t_model_fits(values)
            tests.append(TESTS[kind](pd.Series(values, index=index), self.case.bound, where))
            premises.append(premise(self.batch.runs[i, g, :n], seeds, where or "all runs", threat))
        if not several:
            return ClaimResult(claim, (tests[0],), premises[0])
        return ClaimResult.every_condition(claim, tests, Premise.all_of(premises))


@contextlib.contextmanager
def shortcuts() -> Iterator[None]:
    """Two costs off the decision path, for the simulation: stats' tests with their `mde` NaN (no decision reads it;
    see the module docstring), and settle's registry_hash (a hash of the whole registry, the same for every claim:
    12 % of the time when each frozen claim hashed it again) computed once."""
    names = ("detectable_difference", "detectable_margin", "detectable_bound")
    saved = {name: getattr(stats, name) for name in names}
    registry_hash = settle.registry_hash
    for name in names:
        setattr(stats, name, lambda sd, n: math.nan)
    settle.registry_hash = functools.lru_cache(maxsize=1)(registry_hash)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(stats, name, function)
        settle.registry_hash = registry_hash


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary output folder for the ledgers, in memory where the machine has /dev/shm."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="sequential-error-", dir=shm if shm.is_dir() else None))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass
class Outcome:
    """Every simulated claim's frozen verdict, look and seeds, and the batches' checks."""

    verdicts: list[str] = dataclasses.field(default_factory=list)
    seeds: list[int] = dataclasses.field(default_factory=list)
    looks_run: list[int] = dataclasses.field(default_factory=list)  # per batch: run_look calls
    refrozen: int = 0
    open_looks: int = 0
    tie_looks: int = 0


def settle_batch(case: Case, design: Design, batch: Batch, out: Path, outcome: Outcome, number: int) -> Ledger:
    """One run_settle call on a fresh ledger, every claim of `slots()` a simulated claim of `batch` (in that order):
    the final ledger, its verdicts and checks added to `outcome`."""
    claims = batch_claims()
    notebooks = [Notebook(stem[:2], stem, SESOI if case.futility else None) for stem in slots()]
    ledger_path(out, PRESET).unlink(missing_ok=True)
    fresh = Ledger(design, FIRST_SEED, PRESET, tuple(nb.id for nb in notebooks), {"case": case.name, "batch": number})
    runner = Runner(case, batch, out, claims)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        ledger, failures = run_settle(out, fresh, notebooks, runner.run_look, runner.evaluate, runner.clock)
    runner.refrozen += sum(ledger.settled.get(c) != s for c, s in runner.settled.items())  # the last look's
    if failures or ledger.unsettled or set(ledger.settled) != set(claims):
        raise RuntimeError(f"{case.name}: batch {number} did not settle every claim: failures {failures}, "
                           f"unsettled {dict(ledger.unsettled)}, open {set(claims) - set(ledger.settled)}")
    outcome.verdicts += [ledger.settled[c].verdict for c in claims]
    outcome.seeds += [ledger.settled[c].seeds for c in claims]
    outcome.looks_run.append(runner.looks)
    outcome.refrozen += runner.refrozen
    outcome.open_looks += runner.open_looks
    outcome.tie_looks += runner.tie_looks
    return ledger


def simulate(case: Case, design: Design, sims: int, rng: np.random.Generator, out: Path) -> Outcome:
    """`sims` simulated claims (rounded up to whole batches) through run_settle."""
    per_batch = len(batch_claims())
    outcome = Outcome()
    with shortcuts():
        for number in range(math.ceil(sims / per_batch)):
            batch = draw(case, rng, per_batch, design.looks[-1])
            settle_batch(case, design, batch, out, outcome, number)
    return outcome


def row(case: Case, name: str, design: Design, outcome: Outcome, seconds: float) -> dict:
    sims = len(outcome.verdicts)
    verdicts = np.asarray(outcome.verdicts)
    rate = float(np.isin(verdicts, case.counted).mean())
    shares = {v: float((verdicts == v).mean()) for v in VERDICTS if (verdicts == v).any()}
    out = dict(design=name, scenario=case.name, measure="power" if case.level is None else "type I", kind=case.kind,
               conditions=len(case.truths), truths=" ".join(f"{t:g}" for t in case.truths), sd=case.sd,
               bound=case.bound, flag_rate=case.flag_rate, whole=case.whole, futility=case.futility,
               seed_budget=design.seed_budget,
               time_budget_s=design.time_budget_s, sims=sims, counted=" / ".join(case.counted), rate=rate)
    if case.level is not None:
        se = math.sqrt(case.level * (1 - case.level) / sims)
        out.update(mc_se=se, level=case.level, limit=case.level + 2 * se, passed=bool(rate <= case.level + 2 * se))
    else:
        fixed = power_difference(case.truths[0], case.sd, design.looks[-1]) ** len(case.truths)
        out.update(mc_se=math.sqrt(rate * (1 - rate) / sims), level=POWER, limit=math.nan, passed=None,
                   fixed_n_power=fixed, reaches_power=bool(rate >= POWER))
    out.update(mean_seeds=float(np.mean(outcome.seeds)), max_seeds=int(max(outcome.seeds)),
               looks_run=int(max(outcome.looks_run)), budget_share=shares.get(BUDGET, 0.0),
               tie_share=outcome.tie_looks / max(outcome.open_looks, 1), refrozen=outcome.refrozen,
               verdicts="; ".join(f"{v} {p:.4f}" for v, p in shares.items()), seconds=round(seconds, 1))
    return out


def run(sims: int, seed: int = 20261206, only: str | None = None, designs: Sequence[str] = tuple(DESIGNS),
        echo: bool = False) -> pd.DataFrame:
    """Every case under every design (`only`: the cases whose name contains it); the same draws for each design."""
    rows = []
    with scratch_folder() as out:
        for number, case in enumerate(cases()):
            if only and only not in case.name:
                continue
            for name in designs:
                design = design_of(case, DESIGNS[name])
                start = time.perf_counter()
                outcome = simulate(case, design, sims, np.random.default_rng([seed, number]), out)
                rows.append(row(case, name, design, outcome, time.perf_counter() - start))
                if echo:
                    r = rows[-1]
                    print(f"{name:14} {case.name:55} {r['rate']:.4f} (SE {r['mc_se']:.4f}, "
                          f"{'limit ' + format(r['limit'], '.4f') if case.level else 'power'}) {r['seconds']:.0f} s",
                          flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=20000, help="simulated claims a scenario and design")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--only", default=None, help="only the scenarios whose name contains this")
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    parser.add_argument("--out", default=None, help="CSV of the results table")
    args = parser.parse_args()
    start = time.perf_counter()
    table = run(args.sims, args.seed, args.only, args.designs, echo=True)
    wall = time.perf_counter() - start
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table[["design", "scenario", "sims", "rate", "mc_se", "level", "limit", "passed", "mean_seeds",
                     "seconds"]].to_string(index=False))
    print(f"wall {wall:.1f} s for {args.sims} simulated claims a scenario and design")
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
