"""Does the pooled (moderated t) interval of plasticity_nb.analysis.pooling cover for the *worst* condition of a study?

Simulates studies of G conditions x n seeds of paired gaps, gap[c, s] = tau u_s + e[c, s] (true mean 0), over
the grid: seed-effect to noise ratio tau/sigma 0, 1, 2 (sigma: the least noisy condition's noise SD, 1);
variance ratio R of the gaps between conditions 1, 10, 100 (var(gap_c) = (tau^2 + 1) R^(c / (G - 1)),
geometric); 3, 4, 8 seeds; 1, 4, 16 conditions; and a scratch arm shared by all conditions of a seed or not.
With a shared scratch arm the noise is split as in a real study, gap = scratch[s] - warm[c, s], the scratch
run's noise (variance 1/2) common to every condition of the seed, so the conditions correlate beyond tau.

Per cell: the worst condition's coverage of the interval the analysis reports (pooled where it pools, the
per-condition t where it falls back), of the per-condition t, and of the naive moderated t (no heterogeneity
check, always pooled where it can be); the pooled interval's own coverage in the studies it pooled; how often
it pooled; fits that did not converge or were degenerate (never dropped: they fall back and count as they
cover); the median width of the reported interval over the per-condition t's (all studies, and the pooled
ones alone).

    nice -n 19 .venv/bin/python benchmarks/pooling_coverage.py [--sims 10000] [--out benchmarks/...csv]
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd

from plasticity_nb.analysis.pooling import (
    EQUIVALENCE_LEVEL,
    MIN_CONDITIONS,
    MIN_DF_GAIN,
    TOLERATED_RATIO,
    pooled_intervals,
)

TAU_RATIOS, VARIANCE_RATIOS, SEEDS, CONDITIONS, SHARED = (0, 1, 2), (1, 10, 100), (3, 4, 8), (1, 4, 16), (False, True)
SCRATCH_VARIANCE = 0.5  # of the least noisy condition's noise variance 1: scratch and warm runs equally noisy


def simulate(rng: np.random.Generator, sims: int, tau: float, ratio: float, seeds: int, conditions: int,
             shared: bool) -> np.ndarray:
    """(sims, conditions, seeds) gaps with true mean 0 and gap variances spread geometrically over `ratio`."""
    steps = np.arange(conditions) / max(conditions - 1, 1)
    noise_var = (tau ** 2 + 1) * ratio ** steps - tau ** 2  # >= 1: var(gap_c) = tau^2 + noise_var
    gaps = tau * rng.standard_normal((sims, 1, seeds))
    if shared:  # one scratch run per seed, every condition's gap = scratch - warm
        scratch = np.sqrt(SCRATCH_VARIANCE) * rng.standard_normal((sims, 1, seeds))
        warm = np.sqrt(noise_var - SCRATCH_VARIANCE)[:, None] * rng.standard_normal((sims, conditions, seeds))
        return gaps + scratch - warm
    return gaps + np.sqrt(noise_var)[:, None] * rng.standard_normal((sims, conditions, seeds))


def evaluate(y: np.ndarray, **rule) -> dict[str, float]:
    """One cell's row: coverage of the true mean 0 (worst condition), pooling rate, fits, width ratios."""
    r, naive = pooled_intervals(y, **rule), pooled_intervals(y, tolerated_ratio=np.inf, min_conditions=2, min_df_gain=0)
    covers, width = reported(r)
    own_covers = (r["own_low"] <= 0) & (r["own_high"] >= 0)
    pooled_covers = ((r["low"] <= 0) & (r["high"] >= 0))[r["pooled"]]  # the pooled interval where it was used
    own_width = r["own_high"] - r["own_low"]
    ratio = np.median(width / own_width)  # per condition and study: 1 where it fell back
    return dict(
        coverage_worst=covers.mean(axis=0).min(), coverage_t_worst=own_covers.mean(axis=0).min(),
        coverage_naive_worst=reported(naive)[0].mean(axis=0).min(),
        coverage_when_pooled_worst=pooled_covers.mean(axis=0).min() if len(pooled_covers) else np.nan,
        pooled_fraction=r["pooled"].mean(), not_converged=int((~r["converged"]).sum()),
        degenerate=int((~np.isfinite(r["low"]) | ~np.isfinite(r["s2"])).any(axis=1).sum()),
        d0_inf_fraction=np.isinf(r["d0"]).mean(), median_df=np.median(r["df"]),
        width_ratio=ratio, width_ratio_when_pooled=np.median((width / own_width)[r["pooled"]])
        if r["pooled"].any() else np.nan)


def reported(r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per study and condition: does the reported interval cover 0, and its width (NaN bounds never cover)."""
    pooled = r["pooled"][:, None]
    low, high = np.where(pooled, r["low"], r["own_low"]), np.where(pooled, r["high"], r["own_high"])
    return (low <= 0) & (high >= 0), high - low


def run(sims: int, seed: int = 20261201, **rule) -> pd.DataFrame:
    rows = []
    for i, (tau, ratio, seeds, conditions, shared) in enumerate(
            itertools.product(TAU_RATIOS, VARIANCE_RATIOS, SEEDS, CONDITIONS, SHARED)):
        rng = np.random.default_rng([seed, i])  # each cell its own stream: cells reproduce alone
        y = simulate(rng, sims, tau, ratio, seeds, conditions, shared)
        rows.append(dict(tau_ratio=tau, variance_ratio=ratio, seeds=seeds, conditions=conditions,
                         shared_scratch=shared, sims=sims, **evaluate(y, **rule)))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=10000)
    parser.add_argument("--tolerated-ratio", type=float, default=TOLERATED_RATIO)
    parser.add_argument("--level", type=float, default=EQUIVALENCE_LEVEL)
    parser.add_argument("--min-conditions", type=int, default=MIN_CONDITIONS)
    parser.add_argument("--min-df-gain", type=float, default=MIN_DF_GAIN)
    parser.add_argument("--out", default=None, help="CSV of the full table")
    args = parser.parse_args()
    start = time.perf_counter()
    table = run(args.sims, tolerated_ratio=args.tolerated_ratio, level=args.level,
                min_conditions=args.min_conditions, min_df_gain=args.min_df_gain)
    wall = time.perf_counter() - start
    with pd.option_context("display.width", 250, "display.max_rows", 500, "display.precision", 3):
        print(table.drop(columns="sims").to_string(index=False))
    some = table[table.pooled_fraction > 0]
    print(f"\nworst-condition coverage over all {len(table)} cells: reported {table.coverage_worst.min():.3f}, "
          f"per-condition t {table.coverage_t_worst.min():.3f}, naive moderated t "
          f"{table.coverage_naive_worst.min():.3f}; cells under 0.93: {int((table.coverage_worst < 0.93).sum())} "
          f"(naive {int((table.coverage_naive_worst < 0.93).sum())}); not converged {table.not_converged.sum()}, "
          f"degenerate {table.degenerate.sum()}")
    print(f"cells that pooled at all: {len(some)}; median width ratio when pooled "
          f"{some.width_ratio_when_pooled.median():.3f} (range {some.width_ratio_when_pooled.min():.3f}-"
          f"{some.width_ratio_when_pooled.max():.3f}); {args.sims} sims a cell, {wall:.1f} s")
    if args.out:
        table.to_csv(args.out, index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
