"""13 · FIRE's continual protocol: N cumulative chunks of the subset, each chunk's test accuracy and the final gap to
scratch, per remedy. No claim: estimates only (a claim is registered before any run, by whoever registers claims).

FIRE's continual benchmark (Han et al. 2026; isaac7778/FIRE at c37a0ac, vision/task.py:188-199 and 253-256,
train.py:83-86 and 146-311) splits a seeded permutation of the training set into N = 10 chunks and trains chunk k on
the first k of them ("full" access: cumulative), a fixed number of epochs each, with a new Adam per chunk that warms
up over its first 10 % of epochs and gradients clipped to norm 0.5 (study_config.FIRE_PHASE), testing on the whole
test set after every epoch. Here, per seed and condition `remedy`, one continual run of N phases: phase k < N on the
seeded class-balanced part k/N of the subset (a pool "part": the parts of one run are nested, the first k/N of each
class in one seeded order; FIRE's are prefixes of one permutation, not drawn per class), phase N on all of it, each
`tune_epochs` epochs (so a chunk's steps grow with it, as in FIRE's). Its pair, labelled "warm" and "scratch" as in
every study, is a scratch run: fresh weights trained on all N chunks for the last chunk's steps with the same warm-up
and clipping, which is FIRE's full reset at the last chunk (train.py:170-181). The gap is scratch - continual test
accuracy over the last `last_k` epochs, paired by seed; each chunk's accuracy is the continual run's after the
chunk's last epoch.

Remedies act as FIRE's loop applies them in this benchmark: those at the tuning start (shrink-and-perturb, DASH,
FIRE, the full reset, Muon) at the start of every chunk from the second (train.py:165); those of both phases (L2
Init, ReDo, continual backprop, Parseval, SNR, ...) in every chunk, the first included; a regulariser (augmentation,
weight decay) in every phase of both arms. (FIRE's continual runs train every chunk with Muon, the first included;
here Muon replaces Adam from the second chunk, as the package's Muon acts on a tuning phase only.) Each remedy's
settings are notebook 10's (the `remedies` parameter and its per-preset settings, remedies.AT_PRESET), not FIRE's
per-benchmark ones; a remedy scaled to the budget scales to one chunk's, the last.

The premise is the fixed budget's (`PremiseRule`), not fit by construction (FIRE's chunks train a fixed number of
epochs, with no target; remedies.Config says why a target cannot apply): `budget` "target" is refused.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import pandas as pd

from ..analysis.claims import Claim, ClaimResult
from ..analysis.stats import Test, difference_test
from ..core.config import ConfigError, ranged
from ..run.run_config import Phase, RunConfig
from .remedies import NONE, RemedyConditions
from .study_config import FIRE_PHASE, Plan, StudyConfig, part_size, presets
from .study_result import StudyResult

CLAIMS: tuple[Claim, ...] = ()  # estimates only, for now
# FIRE's comparison (scripts/continunal.sh: S&P, DASH, Parseval, CBP, ReDo, L2 Init, SNR, FIRE, Muon, full reset)
FIRE_REMEDIES = ["shrink_perturb", "dash", "parseval", "cbp", "redo", "l2_init", "snr", "fire", "muon", "full_reset"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(RemedyConditions, StudyConfig):
    # The conditions besides "none", in order, as notebook 10's `remedies`: registered remedies and the regularisers,
    # a list of names or a mapping of each name to its settings (its type's, a dict of their fields, or None)
    remedies: Mapping[str, Any]
    chunks: int = ranged(10, ge=2)  # N: cumulative chunks; phase k trains on the first k (FIRE's 10)

    CONDITIONS = ("remedy",)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = presets(
        # smoke: plumbing; 3 chunks of 512 images (the first ~170: two steps of 64), one remedy at the chunk start
        # and one in every chunk
        smoke=dict(budget="fixed", chunks=3, remedies=["fire", "l2_init"]),
        # quick: FIRE's 10 chunks of the quick subset (5,000 images, w8 ResNet-18), three remedies, three seeds, on a
        # 2-core CPU in about an hour: 117 runs with their prefixes, 13.7 M training examples, ~51 min at the stored
        # quick runs' 0.45 ms per example (execution/eta.py over results/quick's bundle, 2 workers), a few more for
        # the evaluations and each run's start (docs/remedies.md, "FIRE's protocols"). Batch 100 divides every chunk
        # (500 k images), so no example is dropped (this loop drops an epoch's partial batch, FIRE's loader does not)
        # and the last chunk, like scratch, takes 50 steps an epoch (FIRE's 256 at 50,000 images: 195). 40 epochs a
        # chunk (FIRE: 100), 2,000 steps in the last: what the hour holds; scratch fits 5,000 images well inside them
        # (97 % train accuracy at 20 epochs, benchmarks/scale_pilot.py). The test set is evaluated after each chunk and
        # in the last chunk's 5-epoch metric window only: a 10,000-image evaluation costs about a third of an epoch.
        quick=dict(budget="fixed", chunks=10, batch_size=100, tune_epochs=40, last_k=5, eval_every=40,
                   remedies=["fire", "shrink_perturb", "l2_init"]),
        # paper: FIRE's scale, ResNet-18 (w64) on all of CIFAR-10, 10 chunks of 100 epochs at batch 256, seeds 1-3
        # (vision/train.py:83-86, config.py:57-73, scripts/continunal.sh), the test set after every epoch, the metric
        # window the last 10; the remedies of FIRE's comparison, in its order
        paper=dict(budget="fixed", seeds=[1, 2, 3], train_subset=50000, chunks=10, batch_size=256, tune_epochs=100,
                   last_k=10, remedies=FIRE_REMEDIES),
    )

    def check_sweep(self) -> None:
        if self.to_target:
            raise ConfigError("budget 'target' does not fit the continual protocol: FIRE trains every chunk a fixed "
                              "number of epochs, its warm-up spread over them; set budget='fixed'")
        first = part_size(self.train_subset, 1 / self.chunks, self.dataset)
        if first < self.batch_size:
            raise ConfigError(f"chunks {self.chunks}: the first chunk holds {first} of train_subset "
                              f"{self.train_subset}'s examples, fewer than batch_size {self.batch_size}, so it would "
                              "take no step; use fewer chunks, a larger train_subset or a smaller batch_size")

    def tune(self, **changes: Any) -> Phase:
        """Every phase of both arms, with FIRE's warm-up and clipping (FIRE_PHASE)."""
        return super().tune(**{**FIRE_PHASE, **changes})

    def fractions(self) -> tuple[float, ...]:
        """The share of the subset chunks 1..N-1 train on (chunk N: all of it)."""
        return tuple(k / self.chunks for k in range(1, self.chunks))

    def continual(self, seed: int, data_id: str = "", first: tuple = (), later: tuple = (), **run: Any) -> RunConfig:
        """The continual run: chunk k on the part k/N of the subset, the last on all of it, each `tune_epochs`
        epochs; `first`, `later`: the remedies of the first chunk and of every later one."""
        parts = tuple(self.tune(pool="part", fraction=f, remedies=first if k == 0 else later)
                      for k, f in enumerate(self.fractions()))
        return self.run_config(seed, (*parts, self.tune(remedies=later)), data_id, **run)

    def arms(self, remedy: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes `remedy` makes to the continual run (`continual()` keywords) and to the scratch run, by where
        its settings act (their PLACEMENT), as FIRE's loop applies them in this benchmark."""
        run, settings = self.common_arms(remedy)
        if settings is None:
            return run, run
        if settings.PLACEMENT == "tuning start":
            return dict(later=(settings,), **run), run
        return dict(first=(settings,), later=(settings,), **run), run

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for remedy in (NONE, *self.remedies):
            continual, scratch = self.arms(remedy)
            plan += self.pairs(dict(remedy=remedy), lambda s: self.continual(s, data_id, **continual),
                               lambda s: self.scratch(s, data_id, **scratch))
        return plan


def chunk_accuracies(result: StudyResult) -> pd.DataFrame:
    """Per remedy, seed and chunk (1..N): the continual run's test and train accuracy (%) after the chunk's last
    epoch, and the optimiser steps it has taken by then. Test accuracy is NaN where the run diverged."""
    h = result.history
    continual = h[h.arm == "warm"].sort_values("epoch")
    ends = continual.groupby(["remedy", "seed", "phase"], sort=False).tail(1)
    table = ends[["remedy", "seed", "phase", "step", "test_acc", "train_acc"]].rename(columns={"phase": "chunk"})
    return table.sort_values(["remedy", "seed", "chunk"], key=condition_order(result)).reset_index(drop=True)


def chunk_table(result: StudyResult) -> pd.DataFrame:
    """Per remedy and chunk: the test accuracy (%) after the chunk, mean and SD over seeds, and the number of seeds;
    beside the last chunk, scratch's final accuracy (its metric window's) for the comparison."""
    chunks = chunk_accuracies(result)
    table = chunks.groupby(["remedy", "chunk"], sort=False).test_acc.agg(["mean", "std", "count"]).reset_index()
    table = table.rename(columns={"mean": "test_acc", "std": "test_acc_sd", "count": "n_seeds"})
    scratch = result.summary[result.summary.arm == "scratch"].groupby("remedy", sort=False).final_test_acc.mean()
    last = table.chunk == table.chunk.max()
    table.loc[last, "scratch_test_acc"] = table.loc[last, "remedy"].map(scratch)
    return table


def estimates(result: StudyResult, config: Config) -> list[Test]:
    """Per condition, the final gap (scratch - continual, points; difference test), and per remedy its reduction of
    the plain continual run's gap, gap(none) - gap(remedy) (difference test): estimates with their intervals, no
    claim."""
    found = [result.gap_test(remedy=r) for r in (NONE, *config.remedies)]
    for remedy in config.remedies:
        found.append(difference_test(result.gap_change("remedy", NONE, remedy), f"gap(none) - gap({remedy})"))
    return found


def gap_table(result: StudyResult, config: Config) -> pd.DataFrame:
    """Per condition: the final gap (pp, 95 % CI), its reduction of the plain continual run's (pp, 95 % CI), each
    arm's final test and train accuracy over the metric window, and the premise (the fixed budget's rule)."""
    rule, rows = config.premise_rule(), []
    for remedy in (NONE, *config.remedies):
        gap = result.gap_test(remedy=remedy).estimate
        row = dict(remedy=remedy, gap_pp=gap.mean, ci_low=gap.ci_low, ci_high=gap.ci_high)
        if remedy != NONE:
            reduction = difference_test(result.gap_change("remedy", NONE, remedy), remedy).estimate
            row.update(reduction_pp=reduction.mean, reduction_ci_low=reduction.ci_low,
                       reduction_ci_high=reduction.ci_high)
        rows.append({**row, "continual_test_acc": result.arm_series("warm", remedy=remedy).mean(),
                     "scratch_test_acc": result.arm_series("scratch", remedy=remedy).mean(),
                     "continual_train_acc": result.fit("warm", remedy=remedy),
                     "scratch_train_acc": result.fit("scratch", remedy=remedy),
                     "premise": result.premise(rule, remedy=remedy).state})
    return pd.DataFrame(rows)


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """None: this study registers no claim (`estimates` gives its numbers). A claim about it is added to the registry
    before any run, as every claim is."""
    return []


def condition_order(result: StudyResult):
    """A sort key that keeps the conditions in the plan's order (none first) and sorts the other columns."""
    order = {r: i for i, r in enumerate(dict.fromkeys(result.summary.remedy))}
    return lambda column: column.map(order) if column.name == "remedy" else column
