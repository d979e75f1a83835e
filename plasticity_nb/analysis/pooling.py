"""Pooled variance across a study's conditions, where it is valid, with the per-condition t beside it.

A study's conditions share seeds, so each condition's SD comes from few degrees of freedom (2 at 3 seeds)
while the study holds 4-40 of them. Pooling buys degrees of freedom only when the conditions' variances are
alike; where they differ it narrows the noisy conditions' intervals below their coverage.

Method: Smyth's (2004) empirical-Bayes moderated t (limma's `eBayes`, Stat. Appl. Genet. Mol. Biol. 3:3).
Each condition's sample variance s^2 (d = n - 1 df) is shrunk toward a prior s0^2 with d0 prior df fitted to
the spread of the log variances (`fit_prior`, limma's `fitFDist` without covariates):
s_tilde^2 = (d0 s0^2 + d s^2) / (d0 + d), with a t on d0 + d df (d0 = inf: full pooling; d0 = 0: none).
Two corrections make it fit paired seeds:

- *Shared seeds.* Every condition's gap carries the seed's own effect (and, where conditions share one scratch
  run per seed, that run's noise), so the conditions' variances are correlated and G conditions hold far less
  than G independent variances. limma caps d0 + d at the total residual df; here the cap is the Satterthwaite
  df of the same variance estimated from the seed stratum (n - 1 df) and the residual stratum
  ((G - 1)(n - 1) df) of the seeds-by-conditions table (`seed_stratum_df`): with a large seed effect it falls to
  n - 1, i.e. no gain, which is the truth (a single condition's mean carries the seed effect in full).
- *Unequal variances.* Failing to reject equal variances is not enough: at 3 seeds a test of equal variances
  misses a 10-fold spread most of the time, and the noisiest condition then under-covers (worst-condition
  coverage down to 0.83 with the naive rule, benchmarks/RESULTS.md). So pooling needs the data to *show* that the
  variances agree: an equivalence test on Bartlett's statistic (`homogeneity`) pools only when it is below the
  5 % quantile of its distribution under a `TOLERATED_RATIO`-fold geometric spread of the variances. Otherwise,
  or with fewer than `MIN_CONDITIONS` conditions, every condition keeps its own t interval. The test adapts to
  the design: it rarely passes at 3 seeds and 4 conditions, often at 8 seeds and 16.
- *Nothing to gain.* Where the seed stratum caps the df within `MIN_DF_GAIN` of a condition's own n - 1 (a
  dominant seed effect or shared scratch noise), pooling would only swap the condition's variance estimate for
  another of the same df, wider in the median; each condition keeps its own t.

`pooled_estimates` takes a long table (seed, condition, value) and returns, per condition, a `PooledEstimate`:
the interval used, the per-condition t interval beside it and the `Decision`. A contrast between conditions is
a difference series per seed like any other (`contrast_table` builds the long table). `pooled_intervals` is the
same analysis on arrays of many studies at once, for the simulation.
"""
from __future__ import annotations

import dataclasses
from typing import Hashable, Sequence

import numpy as np
import pandas as pd
from scipy.special import chdtrc, chndtrix, digamma, polygamma, stdtrit

from .stats import Estimate, paired_estimate

TOLERATED_RATIO = 3.0  # pool only where the data exclude a 3-fold spread of the variances (largest / smallest)
EQUIVALENCE_LEVEL = 0.05  # ... at this level; both settled by benchmarks/pooling_coverage.py
MIN_CONDITIONS = 3  # fewer conditions cannot show that their variances agree
MIN_DF_GAIN = 2  # pool only where the strata give at least this many df beyond a condition's own n - 1
POOLED, PER_CONDITION = "moderated t", "per-condition t"


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the pooled analysis of one study (or one table of contrasts) decided, and why."""

    pooled: bool  # True: the moderated t was used; False: every condition keeps its own t
    method: str  # POOLED or PER_CONDITION
    reason: str  # why it fell back ("" when pooled)
    d0: float  # prior df fitted from the conditions' variances (inf: they look equal)
    s0: float  # prior SD (sqrt of s0^2)
    df_cap: float  # Satterthwaite df of the seed and residual strata: the most df pooling can claim
    bartlett: float  # Bartlett's statistic (chi-square on G - 1 df under equal variances; NaN: one condition)
    bartlett_bound: float  # pool only when bartlett <= this: its 5 % quantile under a TOLERATED_RATIO spread
    heterogeneity_p: float  # Bartlett's p of equal variances, for reference (the rule uses the bound)
    complete_seeds: int  # seeds present in every condition (the strata use these)


@dataclasses.dataclass(frozen=True)
class PooledEstimate:
    """One condition under the pooled analysis: the interval to use, the per-condition t beside it."""

    estimate: Estimate  # pooled where the decision says so, else the per-condition one
    per_condition: Estimate  # paired_estimate of this condition's values alone
    df: float  # df of the t behind `estimate`
    missing: int  # seeds of the study with no finite value for this condition (reported, never imputed)
    decision: Decision  # shared by every condition of the table


def pooled_estimates(table: pd.DataFrame, value: str = "gap_pp", condition: str | Sequence[str] = "condition",
                     seed: str = "seed", confidence: float = 0.95) -> dict[Hashable, PooledEstimate]:
    """Per condition of a long table (one row per seed and condition), its pooled and per-condition interval.

    `condition` names one column or several (labels are then tuples, as in StudyResult.gaps). Raises
    ValueError for missing columns, duplicate rows, or a condition with fewer than 2 finite values; a
    non-finite value or an absent row is a missing pair, counted in `missing`.
    """
    wide, missing = to_matrix(table, value, condition, seed)
    y = wide.to_numpy(dtype=float)
    result = pooled_intervals(y[None], confidence)
    decision = decide(result, 0, int(np.isfinite(y).all(axis=0).sum()))
    out = {}
    for c, label in enumerate(wide.index):
        own = paired_estimate(y[c], confidence)
        pooled = Estimate(own.mean, float(result["low"][0, c]), float(result["high"][0, c]), own.n,
                          float(np.sqrt(result["s2"][0, c])), confidence)
        out[label] = PooledEstimate(pooled if decision.pooled else own, own, float(result["df"][0, c]),
                                    int(missing[label]), decision)
    return out


def contrast_table(table: pd.DataFrame, pairs: Sequence[tuple[Hashable, Hashable]], value: str = "gap_pp",
                   condition: str = "condition", seed: str = "seed") -> pd.DataFrame:
    """Long table of per-seed contrasts value(a) - value(b), labelled "a - b", ready for `pooled_estimates`."""
    wide, _ = to_matrix(table, value, condition, seed)
    for a, b in pairs:
        for label in (a, b):
            if label not in wide.index:
                raise ValueError(f"contrast {a!r} - {b!r}: no condition {label!r} in the table")
    rows = [pd.DataFrame({seed: wide.columns, condition: f"{a} - {b}", value: (wide.loc[a] - wide.loc[b]).values})
            for a, b in pairs]
    return pd.concat(rows, ignore_index=True)


def to_matrix(table: pd.DataFrame, value: str, condition: str | Sequence[str],
              seed: str) -> tuple[pd.DataFrame, pd.Series]:
    """Conditions x seeds matrix (NaN where a pair is missing) and the missing pairs per condition."""
    columns = [condition] if isinstance(condition, str) else list(condition)
    absent = [c for c in (*columns, seed, value) if c not in table.columns]
    if absent:
        raise ValueError(f"the table has no column {', '.join(map(repr, absent))} (it has {list(table.columns)})")
    if table.duplicated([*columns, seed]).any():
        first = table[table.duplicated([*columns, seed], keep=False)].iloc[0]
        raise ValueError(f"more than one row for condition {tuple(first[columns])} and seed {first[seed]!r}")
    values = pd.to_numeric(table[value], errors="coerce").where(lambda v: np.isfinite(v))
    # Rows are the conditions present (never the product of several columns' values); NaN where a seed is absent.
    wide = table.assign(**{value: values}).set_index([*columns, seed])[value].unstack(seed)
    wide = wide.reindex(columns=sorted(table[seed].unique()))
    finite = wide.notna().sum(axis=1)
    if (finite < 2).any():
        raise ValueError(f"condition {finite[finite < 2].index[0]!r} has {int(finite.min())} finite value(s); "
                         f"a variance needs at least 2 seeds")
    return wide, wide.isna().sum(axis=1)


def decide(result: dict[str, np.ndarray], b: int, complete_seeds: int) -> Decision:
    """The Decision record of study `b` of a `pooled_intervals` result."""
    return Decision(bool(result["pooled"][b]), POOLED if result["pooled"][b] else PER_CONDITION,
                    str(result["reason"][b]), float(result["d0"][b]), float(np.sqrt(result["s02"][b])),
                    float(result["df_cap"][b]), float(result["bartlett"][b]), float(result["bound"][b]),
                    float(result["het_p"][b]), complete_seeds)


def pooled_intervals(y: np.ndarray, confidence: float = 0.95, tolerated_ratio: float = TOLERATED_RATIO,
                     level: float = EQUIVALENCE_LEVEL, min_conditions: int = MIN_CONDITIONS,
                     min_df_gain: float = MIN_DF_GAIN) -> dict[str, np.ndarray]:
    """The pooled analysis of many studies at once: `y` is (studies, conditions, seeds), NaN where missing.

    Returns arrays: per study and condition `mean`, `s2` (moderated variance), `df`, `low`, `high` (the
    moderated interval), `own_low`, `own_high` (per-condition t); per study `d0`, `s02`, `df_cap`, `het_p`,
    `converged`, `bartlett`, `bound`, `pooled` and `reason` (why it fell back, "" when pooled).
    `tolerated_ratio=inf, min_df_gain=0, min_conditions=2` is the naive moderated t (no checks).
    """
    n = np.isfinite(y).sum(axis=2)
    mean = np.nanmean(y, axis=2)
    s2 = np.nanvar(y, axis=2, ddof=1)
    d = (n - 1).astype(float)
    d0, s02, converged = fit_prior(s2, d)
    df_cap = seed_stratum_df(y)
    stat, bound, het_p = homogeneity(s2, d, tolerated_ratio, level)
    with np.errstate(invalid="ignore"):  # d0 = inf: the np.where takes s0^2
        s2_mod = np.where(np.isinf(d0)[:, None], s02[:, None],
                          (d0[:, None] * s02[:, None] + d * s2) / (d0[:, None] + d))
    df = np.minimum(np.minimum(d0[:, None] + d, df_cap[:, None]), d.sum(axis=1, keepdims=True))  # limma's cap too
    half = stdtrit(df, 0.5 + confidence / 2) * np.sqrt(s2_mod / n)
    own_half = stdtrit(d, 0.5 + confidence / 2) * np.sqrt(s2 / n)
    reason = np.full(len(y), "", dtype=object)
    reason[~(stat <= bound)] = f"variances not shown to agree within {tolerated_ratio:g}-fold"
    reason[~(df_cap >= d.max(axis=1) + min_df_gain)] = f"pooling gains fewer than {min_df_gain:g} df (seed effect)"
    reason[~converged] = "the prior's fit did not converge"
    reason[~np.isfinite(df_cap)] = "fewer than 2 seeds present in every condition"
    reason[~(s02 > 0)] = "no spread in any condition"
    reason[y.shape[1] < min_conditions] = f"fewer than {min_conditions} conditions"
    return dict(mean=mean, s2=s2_mod, df=df, low=mean - half, high=mean + half, own_low=mean - own_half,
                own_high=mean + own_half, d0=d0, s02=s02, df_cap=df_cap, bartlett=stat, bound=bound,
                het_p=het_p, converged=converged, pooled=reason == "", reason=reason)


def fit_prior(s2: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """limma's fitFDist (no covariate): prior df d0, scale s0^2 and whether the fit converged, per study, from
    (studies, conditions) arrays.

    log s^2 has mean log sigma^2 + digamma(d/2) - log(d/2) and variance trigamma(d/2) under a chi-square; the
    spread of the log variances beyond trigamma(d/2) is the prior's trigamma(d0/2). No excess spread: d0 = inf.
    """
    median = np.median(s2, axis=1, keepdims=True)
    floor = np.where(median > 0, 1e-5 * median, 1.0)  # limma's floor keeps log() finite for a zero variance
    e = np.log(np.maximum(s2, floor)) - digamma(d / 2) + np.log(d / 2)
    g = s2.shape[1]
    e_mean = e.mean(axis=1)
    excess = (((e - e_mean[:, None]) ** 2).sum(axis=1) / max(g - 1, 1) - polygamma(1, d / 2).mean(axis=1)
              if g > 1 else np.full(len(s2), np.nan))
    d0 = np.full(len(s2), np.inf)
    spread = excess > 0
    d0[spread] = 2 * trigamma_inverse(excess[spread])
    converged = ~spread | np.isclose(polygamma(1, d0 / 2), excess, rtol=1e-6, atol=0)
    with np.errstate(invalid="ignore"):
        s02 = np.where(spread, np.exp(e_mean + digamma(d0 / 2) - np.log(d0 / 2)), np.exp(e_mean))
    s02 = np.where(median[:, 0] > 0, s02, 0.0)
    return d0, s02, converged


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """y with trigamma(y) = x, by limma's Newton iteration (monotone from 0.5 + 1/x; Smyth 2004, appendix)."""
    x = np.asarray(x, dtype=float)
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = polygamma(1, y)
        step = tri * (1 - tri / x) / polygamma(2, y)
        y = y + step
        if np.all(-step / y < 1e-8):
            break
    # Far tails, as limma: trigamma(y) ~ 1/y^2 for small y and ~ 1/y for large y.
    return np.where(x > 1e7, 1 / np.sqrt(x), np.where(x < 1e-6, 1 / x, y))


def seed_stratum_df(y: np.ndarray) -> np.ndarray:
    """Satterthwaite df of var(one condition's value) = tau^2 + sigma^2 estimated from the seed-by-condition
    table's two strata, MS_seed / G + (1 - 1/G) MS_residual, over the seeds present in every condition."""
    complete = np.isfinite(y).all(axis=1)  # (studies, seeds)
    g = y.shape[1]
    k = complete.sum(axis=1)
    z = np.where(complete[:, None, :], y, 0.0)
    k_safe = np.maximum(k, 1)
    seed_mean = z.sum(axis=1) / g  # (studies, seeds); 0 where incomplete
    grand = (seed_mean * complete).sum(axis=1) / k_safe
    cond_mean = z.sum(axis=2) / k_safe[:, None]
    ms_seed = g * (((seed_mean - grand[:, None]) ** 2) * complete).sum(axis=1) / np.maximum(k - 1, 1)
    resid = (z - cond_mean[:, :, None] - seed_mean[:, None, :] + grand[:, None, None]) * complete[:, None, :]
    df_res = (g - 1) * (k - 1)
    ms_res = (resid ** 2).sum(axis=(1, 2)) / np.maximum(df_res, 1)
    a, b = ms_seed / g, (1 - 1 / g) * ms_res
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (a + b) ** 2 / (a ** 2 / np.maximum(k - 1, 1) + b ** 2 / np.maximum(df_res, 1))
    df = np.where(a + b > 0, df, np.maximum(k - 1, 1))
    return np.where(k >= 2, df, np.inf)


def homogeneity(s2: np.ndarray, d: np.ndarray, tolerated_ratio: float,
                level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bartlett's statistic per study, the bound below which it shows the variances agree, and its p-value.

    Under a spread of log variances x_c Bartlett's statistic is roughly noncentral chi-square on G - 1 df with
    noncentrality (d / 2) sum (x_c - mean x)^2 (var log s^2 ~ 2 / d). For a geometric spread of ratio R over G
    conditions that sum is (log R)^2 G (G + 1) / (12 (G - 1)); the bound is the `level` quantile there, so a
    study passes only when its variances are closer than any R-fold spread would likely make them.
    """
    g = s2.shape[1]
    if g < 2:
        nan = np.full(len(s2), np.nan)
        return nan, nan, nan
    total = d.sum(axis=1)
    pooled = (d * s2).sum(axis=1) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        m = total * np.log(pooled) - (d * np.log(s2)).sum(axis=1)
        stat = np.where(pooled > 0, m / (1 + ((1 / d).sum(axis=1) - 1 / total) / (3 * (g - 1))), np.nan)
        p = chdtrc(g - 1, stat)
    spread = np.log(tolerated_ratio) ** 2 * g * (g + 1) / (12 * (g - 1))
    bound = chndtrix(level, g - 1, d.mean(axis=1) / 2 * spread) if np.isfinite(spread) else np.full(len(s2), np.inf)
    return stat, np.asarray(bound, dtype=float), p
