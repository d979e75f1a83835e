"""The main job's sequential design, chosen by simulation (issue 36).

The central claims C1 (notebook 01's gap), C2 (the gap after 5 pretraining epochs, notebook 02) and C4 (the gap of
the blended run at gamma 0.9, notebook 04) are two-sided paired difference tests on per-seed gaps in points, each
with the smallest effect of interest (sesoi) 2 pp at quick. For every candidate design (looks x spending x
futility level) this simulates, with the package's own boundaries (`sequential.difference_power`, which calls
`Design.codes`), each claim's fate under train-to-target:

- power: 'supported' with the truth at the sesoi, per-seed SD `--sd` (3.12, claims.PLANNING_SD at quick: the
  largest 8-seed SD seen) and `--seen-sd` (1.96, C1's own on seeds 100-107) beside it, with the premise's per-run
  flags (each seed flagged with chance 0.15, the fit pilot's 2 of 13; void, 'premise not met', at a look where more
  than a third of the seeds so far are flagged) and without them;
- type I error: any verdict with the truth at 0, no flags;
- the expected seeds and the expected wall time of the three claims together, with the truth at the sesoi (the
  alternative) and at 0 (the null): each look trains the new seeds of every claim still open and one scratch run
  per seed shared by them, on `--workers` workers; the worst case is every claim to the last look.

Choice: among the designs where every look can stop (each look's chance of 'supported' at the sesoi >= 5 %) and
whose power with premise voids is >= 0.90 at SD 3.12, the one with the least expected wall time under the
alternative; its power is confirmed on `--confirm-sims` fresh paths (another seed) before it is taken. Two are
chosen: the fastest of all, and the fastest with a futility rule (futility > 0). Without one, a claim whose true
gap is 0 can only end 'not resolved' at the last look; with one, it ends 'smaller than the smallest effect of
interest', a settled answer, mostly at an interim look. The main design is the second (docs/sequential-design.md
says why); both are printed.

Claims are simulated as independent: their gaps share the scratch run of a seed, which correlates them
positively, so the chance that any claim is still open (and the scratch run still needed) is at most what
independence gives; the expected times here are upper bounds in that respect.

Costs (CPU-s per seed, one worker of two, `AMD EPYC` avx512_bf16, train-to-target): estimates, parameters here.
Scratch 89 and C1's warm run 116 are the fit pilot's means at 5,000 images, width 8 (87-91 and 104-131 s,
benchmarks/fit-pilot-cpu-epyc-2026-12-06/log.txt; 205 per pair); C2's warm run (5 pretraining epochs, then tuned
to the target) about 120 and C4's blended run (its fixed 50-epoch cap x 2.4 s) about 120 are not measured. A look
also executes each open notebook: about 20 s in all (5.5 s a notebook's kernel from a complete store,
benchmarks/RESULTS.md 2026-11-26, three notebooks and start-up), `--look-overhead`.

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/design_choice.py [--sims 20000] \
        [--out benchmarks/design-choice-2026-12-06.csv]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from plasticity_nb.analysis.sequential import (
    FLAG_CHANCE,
    FUTILE,
    NOT_RESOLVED,
    NOT_SUPPORTED,
    OBRIEN_FLEMING,
    POCOCK,
    POWER_SEED,
    PREMISE_NOT_MET,
    SUPPORTED,
    Design,
    Operating,
    difference_power,
    hsd,
    spending_name,
)

SESOI, PLAN_SD, SEEN_SD = 2.0, 3.12, 1.96  # pp: the quick sesoi, claims.PLANNING_SD[("quick", "pp")], C1's own SD
COSTS = {"scratch": 89.0, "C1": 116.0, "C2": 120.0, "C4": 120.0}  # CPU-s per seed (module docstring)
WORKERS, LOOK_OVERHEAD_S = 2, 20.0
WANTED_POWER, LOOK_CAN_STOP = 0.90, 0.05
CONFIRM_SEED = POWER_SEED + 1  # fresh paths for the chosen design's confirmation

BRIEF_LOOKS = [(6, 12), (8, 16), (8, 12, 16), (6, 12, 18), (10, 20), (5, 10, 15, 20)]  # issue 36's examples
LOOKS = BRIEF_LOOKS + [
    (12, 24), (15, 30), (18, 36), (12, 30), (15, 33), (18, 33), (12, 27), (9, 27), (12, 36), (16, 32),
    (8, 16, 24), (9, 18, 27), (10, 20, 30), (11, 22, 33), (12, 24, 36), (13, 26, 39), (12, 21, 30), (12, 24, 33),
    (15, 24, 33), (9, 18, 30), (12, 20, 28), (15, 27, 36), (9, 21, 33),
    (6, 12, 18, 24), (7, 14, 21, 28), (8, 16, 24, 32), (9, 18, 27, 36), (10, 20, 30, 40), (9, 15, 24, 33),
    (6, 12, 18, 24, 30), (7, 14, 21, 28, 35), (6, 12, 18, 27, 36),
]
SPENDINGS = [OBRIEN_FLEMING, POCOCK, hsd(-4), hsd(-2), hsd(0), hsd(1)]
FUTILITIES = (0.1, 0.05, 0.0)


@dataclasses.dataclass(frozen=True)
class Costs:
    scratch: float  # CPU-s per seed of the scratch run the claims share
    warm: tuple[float, ...]  # CPU-s per seed of each claim's own run (C1, C2, C4)
    workers: int
    look_overhead_s: float  # wall s a look spends beyond training (notebook kernels), when any claim is open


def candidates(looks: Iterable[Sequence[int]] = LOOKS, spendings: Iterable[str] = SPENDINGS,
               futilities: Iterable[float] = FUTILITIES) -> list[Design]:
    return [Design(tuple(n), spending=s, futility=f) for n in looks for s in spendings for f in futilities]


def expected_wall_s(design: Design, reaches: Sequence[float], costs: Costs) -> float:
    """Wall time of the claims together when each, independently, is still open at look k with chance
    reaches[k]: the look trains its new seeds' runs of the open claims and the shared scratch run."""
    total, before = 0.0, 0
    for n, r in zip(design.looks, reaches):
        any_open = 1 - (1 - r) ** len(costs.warm)
        cpu = (n - before) * (costs.scratch * any_open + sum(costs.warm) * r)
        total += cpu / costs.workers + costs.look_overhead_s * any_open
        before = n
    return total


def worst_wall_s(design: Design, costs: Costs) -> float:
    """Every claim open to the last look."""
    return expected_wall_s(design, [1.0] * len(design.looks), costs)


def efficacy_t(design: Design) -> tuple[float, ...]:
    return tuple(row.t for row in design.boundaries("difference")["efficacy"])


def futility_t(design: Design) -> tuple[float, ...]:
    """Per interim look: the t a claim's (mean - sesoi) / SE must fall below for a futility stop."""
    tables = design.boundaries("difference")
    return tuple(row.t for row in tables["futility"][:-1]) if "futility" in tables else ()


def per_look(op: Operating, *verdicts: str) -> tuple[float, ...]:
    return tuple(float(sum(look.get(v, 0.0) for v in verdicts)) for look in op.by_look)


def evaluate(design: Design, sims: int, costs: Costs, seed: int = POWER_SEED) -> dict:
    """One candidate's row: power (with and without voids, at both SDs), type I error, seeds and times."""
    run = lambda effect, sd, flags: difference_power(design, effect, sd, SESOI, flag_chance=flags, sims=sims,
                                                     seed=seed)
    alt, clean, seen = run(SESOI, PLAN_SD, FLAG_CHANCE), run(SESOI, PLAN_SD, 0.0), run(SESOI, SEEN_SD, FLAG_CHANCE)
    null, null_clean = run(0.0, PLAN_SD, FLAG_CHANCE), run(0.0, PLAN_SD, 0.0)
    supported = per_look(alt, SUPPORTED)
    return dict(
        looks=",".join(map(str, design.looks)), spending=design.spending, futility=design.futility, sims=sims,
        power=alt.power, power_no_voids=clean.power, power_sd_seen=seen.power, mc_se=alt.mc_se,
        void_alt=alt.chance(PREMISE_NOT_MET), futile_alt=alt.chance(FUTILE), unresolved_alt=alt.chance(NOT_RESOLVED),
        type1=null_clean.chance(SUPPORTED, NOT_SUPPORTED), futile_null=null.chance(FUTILE),
        unresolved_null=null.chance(NOT_RESOLVED), void_null=null.chance(PREMISE_NOT_MET),
        supported_by_look=" ".join(f"{p:.3f}" for p in supported), min_look_supported=min(supported),
        stop_alt_by_look=" ".join(f"{p:.3f}" for p in alt.stops),
        stop_null_by_look=" ".join(f"{p:.3f}" for p in null.stops),
        seeds_alt=alt.expected_seeds, seeds_null=null.expected_seeds,
        hours_alt=expected_wall_s(design, alt.reaches, costs) / 3600,
        hours_null=expected_wall_s(design, null.reaches, costs) / 3600,
        hours_worst=worst_wall_s(design, costs) / 3600,
        t_efficacy=" ".join(f"{t:.2f}" for t in efficacy_t(design)),
        t_futility=" ".join(f"{t:.2f}" for t in futility_t(design)),
    )


def eligible(rows: pd.DataFrame, futility: bool = False) -> pd.Series:
    """Power >= WANTED_POWER with voids at SD 3.12 and every look able to stop; `futility`: with a futility rule."""
    return (rows.power >= WANTED_POWER) & (rows.min_look_supported >= LOOK_CAN_STOP) & \
        ((rows.futility > 0) | (not futility))


def choose(rows: pd.DataFrame, confirm_sims: int, futility: bool = False) -> tuple[pd.Series, list[str]]:
    """The eligible design with the least expected time under the alternative whose power holds on fresh paths;
    the notes say which were passed over and why."""
    notes = []
    for _, row in rows[eligible(rows, futility)].sort_values("hours_alt").iterrows():
        design = design_of(row)
        check = difference_power(design, SESOI, PLAN_SD, SESOI, flag_chance=FLAG_CHANCE, sims=confirm_sims,
                                 seed=CONFIRM_SEED)
        if check.power >= WANTED_POWER:
            notes.append(f"confirmed on {confirm_sims:,} fresh paths: power {check.power:.4f} (MC SE "
                         f"{check.mc_se:.4f})")
            return row, notes
        notes.append(f"passed over {row.looks} {row.spending} futility {row.futility:g}: power {row.power:.4f} on "
                     f"the search paths but {check.power:.4f} on {confirm_sims:,} fresh ones")
    raise SystemExit("no candidate reaches the wanted power: widen LOOKS")


def design_of(row: pd.Series) -> Design:
    return Design(tuple(int(n) for n in str(row.looks).split(",")), spending=row.spending, futility=row.futility)


def describe(design: Design, costs: Costs, sims: int) -> list[str]:
    """The chosen design look by look, at the sesoi and at 0 (SD 3.12, voids included)."""
    alt = difference_power(design, SESOI, PLAN_SD, SESOI, flag_chance=FLAG_CHANCE, sims=sims, seed=CONFIRM_SEED)
    null = difference_power(design, 0.0, PLAN_SD, SESOI, flag_chance=FLAG_CHANCE, sims=sims, seed=CONFIRM_SEED)
    tables = design.boundaries("difference")
    lines = [f"{'look':>4} {'seeds':>5} {'t eff':>6} {'mean >= (SD 3.12)':>18} {'t fut':>6} "
             f"{'supported@2':>11} {'futile@2':>8} {'void@2':>7} {'futile@0':>8} {'any@0':>6} {'void@0':>7}"]
    for k, n in enumerate(design.looks):
        t = tables["efficacy"][k].t
        fut = tables["futility"][k].t if "futility" in tables and k < len(design.looks) - 1 else math.nan
        a, z = alt.by_look[k], null.by_look[k]
        lines.append(f"{k + 1:>4} {n:>5} {t:>6.2f} {t * PLAN_SD / math.sqrt(n):>15.2f} pp {fut:>6.2f} "
                     f"{a.get(SUPPORTED, 0):>11.3f} {a.get(FUTILE, 0):>8.3f} {a.get(PREMISE_NOT_MET, 0):>7.3f} "
                     f"{z.get(FUTILE, 0):>8.3f} {z.get(SUPPORTED, 0) + z.get(NOT_SUPPORTED, 0):>6.3f} "
                     f"{z.get(PREMISE_NOT_MET, 0):>7.3f}")
    lines.append(f"at 2 pp: supported {alt.power:.3f}, futile {alt.chance(FUTILE):.3f}, void "
                 f"{alt.chance(PREMISE_NOT_MET):.3f}, not resolved {alt.chance(NOT_RESOLVED):.3f}; "
                 f"{alt.expected_seeds:.1f} seeds, {expected_wall_s(design, alt.reaches, costs) / 3600:.2f} h")
    lines.append(f"at 0: supported or not supported {null.chance(SUPPORTED, NOT_SUPPORTED):.4f}, futile "
                 f"{null.chance(FUTILE):.3f}, void {null.chance(PREMISE_NOT_MET):.3f}, not resolved "
                 f"{null.chance(NOT_RESOLVED):.3f}; {null.expected_seeds:.1f} seeds, "
                 f"{expected_wall_s(design, null.reaches, costs) / 3600:.2f} h")
    return lines


def markdown(rows: pd.DataFrame) -> str:
    head = ("| looks | spending | futility | power (voids) | no voids | at SD 1.96 | type I | seeds at 2 pp / 0 "
            "| hours at 2 pp / 0 / worst | 'supported' by look at 2 pp | t by look |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows.itertuples():
        lines.append(f"| {r.looks} | {spending_name(r.spending)} | {r.futility:g} | {r.power:.3f} | "
                     f"{r.power_no_voids:.3f} | {r.power_sd_seen:.3f} | {r.type1:.4f} | {r.seeds_alt:.1f} / "
                     f"{r.seeds_null:.1f} | {r.hours_alt:.2f} / {r.hours_null:.2f} / {r.hours_worst:.2f} | "
                     f"{r.supported_by_look} | {r.t_efficacy} |")
    return "\n".join(lines)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=20_000, help="paths per design and truth")
    parser.add_argument("--confirm-sims", type=int, default=100_000, help="fresh paths that confirm the choice")
    parser.add_argument("--scratch", type=float, default=COSTS["scratch"], help="CPU-s per seed, shared scratch run")
    parser.add_argument("--warm", type=float, nargs=3, default=[COSTS[c] for c in ("C1", "C2", "C4")],
                        metavar=("C1", "C2", "C4"), help="CPU-s per seed of each claim's own run")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--look-overhead", type=float, default=LOOK_OVERHEAD_S, help="wall s per look")
    parser.add_argument("--quick", action="store_true", help="the issue's six look sets only")
    parser.add_argument("--out", type=Path, default=None, help="csv of every candidate")
    args = parser.parse_args(argv)
    costs = Costs(args.scratch, tuple(args.warm), args.workers, args.look_overhead)
    started = time.perf_counter()
    rows = pd.DataFrame([evaluate(d, args.sims, costs) for d in candidates(BRIEF_LOOKS if args.quick else LOOKS)])
    searched = time.perf_counter() - started
    fastest, fastest_notes = choose(rows, args.confirm_sims)
    chosen, notes = choose(rows, args.confirm_sims, futility=True)
    rows["eligible"] = eligible(rows)
    same = lambda row: (rows.looks == row.looks) & (rows.spending == row.spending) & (rows.futility == row.futility)
    rows["chosen"] = np.where(same(chosen), "main", np.where(same(fastest), "fastest", ""))
    if args.out:
        rows.to_csv(args.out, index=False, float_format="%.5g")
    pd.set_option("display.width", 250, "display.max_columns", 40, "display.max_rows", 400)
    print(f"{cpu_name()}; {len(rows)} designs x 5 truths x {args.sims:,} paths in {searched:.0f} s "
          f"({time.perf_counter() - started:.0f} s with the confirmation)")
    print(f"costs CPU-s per seed: scratch {costs.scratch:g}, C1/C2/C4 {'/'.join(f'{c:g}' for c in costs.warm)}; "
          f"{costs.workers} workers; {costs.look_overhead_s:g} s a look")
    best = rows[rows.eligible].sort_values("hours_alt")
    print(f"\n{len(best)} of {len(rows)} eligible (power >= {WANTED_POWER} with voids at SD {PLAN_SD}, every look "
          f"'supported' >= {LOOK_CAN_STOP}); the 15 fastest under the alternative:")
    print(markdown(best.head(15)))
    print("\nthe issue's example look sets, best of each (by power):")
    brief = rows[rows.looks.isin([",".join(map(str, n)) for n in BRIEF_LOOKS])]
    print(markdown(brief.sort_values("power", ascending=False).groupby("looks", sort=False).head(1)))
    with_futility = rows[eligible(rows, futility=True)].sort_values("hours_alt")
    print(f"\nwith a futility rule, {len(with_futility)} eligible; the 10 fastest under the alternative:")
    print(markdown(with_futility.head(10)))
    for name, row, said in (("fastest of all", fastest, fastest_notes), ("main (fastest with futility)", chosen,
                                                                        notes)):
        print(f"\n{name}:", row.looks, spending_name(row.spending), "futility", row.futility)
        print("\n".join(said))
        print("\n".join(describe(design_of(row), costs, args.confirm_sims)))


if __name__ == "__main__":
    main()
