"""The claims registry and `<out>/claims.csv`: one row per claim and preset.

Each claim states what its source says, and is tested the way the statement needs (see stats.py): a
difference ("X is worse": the paired CI above 0), an equivalence ("X recovers": TOST against the preset's
margin) or a bound ("X does not speed up by more than m"). Before any verdict, the claim's premise is
checked (both arms fit their training data, see premises.py): when it fails the verdict is `premise not
met`, when it cannot be told from these seeds `premise uncertain`. Claims the paper did not make (C8a's
protocol, C9, C10, C15) are `extension`, never "agrees"; an unsettled verdict is "not resolved", never
"departs".

The registry is CLAIMS (each definition, a `Claim` with the date it was fixed and its smallest effect of interest,
declared by the study module that computes it and assembled from the study catalogue on first read: `Registry`)
with claim_history.CHANGES (every change to a definition or a procedure, dated, with its reason and whether it
came after the claim's data were seen). A definition changed after its data were seen keeps the
earlier definition's verdict primary on the seeds already seen (the new one beside it, labelled post hoc);
the new definition is primary only on seeds not yet seen (`standing`). `registry_hash` ties a report to the
definitions it used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..core.config import ConfigError
from ..core.files import locked, remove_stale_temporaries, write_atomic
from ..core.paths import is_bundle
from ..data.datasets import DEFAULT_DATASET
from .claim_history import ADDED, CHANGES, DEFINITION, Change
from .premises import Premise
from .sequential import BUDGET, FUTILE, OPEN
from .stats import (
    EQUIVALENT,
    ESTIMATE,
    INCONCLUSIVE,
    MAX_SEEDS,
    NEGATIVE,
    POSITIVE,
    PREMISE_NOT_MET,
    PREMISE_UNCERTAIN,
    Test,
    combine,
    power_of,
    seeds_for,
)

COLUMNS = ["claim", "notebook", "statement", "preset", "dataset", "test", "unit", "n_seeds", "n_missing", "method",
           "effect", "ci_low", "ci_high", "ci_level", "sd", "margin", "p_value", "mde_80", "sesoi", "power_at_sesoi",
           "seeds_for_sesoi", "verdict", "vs_paper", "definition", "post_hoc", "premise", "other_tests", "condition",
           "registry", "verdict_words", "stage"]
PAPER, EXTENSION = "paper", "extension"
NOT_RESOLVED, POST_HOC = "not resolved", "post hoc"
# A row's stage: a claim settled by `run --settle` (frozen, error-controlled: *the* verdict wherever it exists), or
# a notebook's fixed-n test of the seeds it ran (exploratory beside a settled one, which it never replaces)
SETTLED, FIXED_N = "settled", "fixed n"
# sequential outcomes (sequential.py) that settle nothing: still open, or ended by a budget or the last look
# without a verdict; and an estimate, which is reported with its interval and decides nothing
UNSETTLED = (INCONCLUSIVE, PREMISE_UNCERTAIN, NOT_RESOLVED, OPEN, BUDGET, ESTIMATE)
# A futility stop is a settled answer: the effect, if any, is smaller than the smallest one of interest
SMALLER = "smaller than the smallest effect of interest"
# Sources of the remedy claims (notebook 10): their verdicts agree or depart from these, as C1-C8 from the paper's.
ASH_ADAMS, SHIN, LEE, RESCIENCE = "Ash & Adams 2020", "Shin et al. 2024", "Lee et al. 2024", "Kireev 2021"
FIRE_2026 = "FIRE, ICLR 2026 (arXiv 2602.08040)"  # Frobenius-Isometry REinitialization; code isaac7778/FIRE
FIRST_FIXED = "2026-11-24"  # the date the first claims were written down (commit 3d35472's parent and before)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    notebook: str  # notebook stem that tests it
    statement: str  # what a positive verdict means
    paper: str  # what the source found (direction only: Berariu et al.'s exact numbers are not known to us)
    effect: str  # what the primary test's effect measures
    source: str = PAPER  # paper: a statement of Berariu et al.; a citation: that source's; extension: nobody's
    unit: str = "pp"  # unit of the effect
    # smallest effect of interest in `unit`, for planning; None: the preset's `smallest_effect` (a gap in points),
    # or, for an equivalence or a bound, its margin
    sesoi: float | None = None
    fixed: str = FIRST_FIXED  # the date its first definition was written down (later changes: claim_history)

    def __post_init__(self) -> None:
        if self.sesoi is not None and not self.sesoi > 0:
            raise ValueError(f"claim {self.id}: its smallest effect of interest must be > 0, got {self.sesoi!r}")


# The module that assembles the registry from the study catalogue (its `claim_registry()`). Named, not imported:
# analysis stands below the studies (tests/test_imports.py), which declare their claims with this module's Claim.
REGISTRY_MODULE = "plasticity_nb.studies"


class Registry(Mapping[str, Claim]):
    """Every claim, id -> its Claim, in the study catalogue's order (C1, C2, ... C17b): each study module declares
    the claims its notebook tests (its CLAIMS) and studies.claim_registry() assembles them. Assembled on first read,
    so that importing this module imports no study (nor, through them, torch)."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] | None = None

    def _load(self) -> dict[str, Claim]:
        if self._claims is None:
            module = importlib.import_module(REGISTRY_MODULE)
            if not hasattr(module, "claim_registry"):  # read while the studies import: a circle
                raise RuntimeError(f"the claims registry was read while {REGISTRY_MODULE} was importing: a study "
                                   "module refers to its own Claim objects, never to CLAIMS, at import")
            self._claims = dict(module.claim_registry())
        return self._claims

    def __getitem__(self, claim: str) -> Claim:
        return self._load()[claim]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"Registry({self._load()!r})"


CLAIMS: Registry = Registry()


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    # the claim: its Claim (as the studies give it), or its id in CLAIMS; kept as the id, the Claim as `definition`
    claim: str
    tests: tuple[Test, ...]  # the primary test first; every test must hold for a positive verdict
    premise: Premise
    others: tuple[Test, ...] = ()  # reported beside the claim, not part of its verdict (e.g. a secondary metric)
    # the same claim under its definition before a change made after its data were seen (claim_history), where
    # the runs can still compute it: primary on the seeds that change had seen
    earlier: "ClaimResult | None" = None
    definition: Claim = dataclasses.field(default=None, repr=False, compare=False)  # set from `claim`

    def __post_init__(self) -> None:
        given = self.claim if isinstance(self.claim, Claim) else self.definition
        claim_id = given.id if isinstance(self.claim, Claim) else self.claim
        if claim_id not in CLAIMS:
            raise ValueError(f"unknown claim id {claim_id!r}; the registry has {', '.join(CLAIMS)}")
        if given is not None and given != CLAIMS[claim_id]:
            raise ValueError(f"claim {claim_id} is not the registry's definition of it: declare a claim in its "
                             "study module's CLAIMS (studies.claim_registry)")
        object.__setattr__(self, "claim", claim_id)
        object.__setattr__(self, "definition", CLAIMS[claim_id])

    @property
    def primary(self) -> Test:
        return self.tests[0]

    @property
    def verdict(self) -> str:
        if not self.premise.met:
            return PREMISE_UNCERTAIN if self.premise.uncertain else PREMISE_NOT_MET
        return combine(self.tests)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every seed any of its tests used (known where the differences came indexed by seed)."""
        return tuple(sorted({s for t in self.tests for s in t.estimate.seeds}))

    @classmethod
    def every_condition(cls, claim: Claim | str, tests: Sequence[Test], premise: Premise,
                        **fields: Any) -> "ClaimResult":
        """Holds only if it holds in every condition; the test with the weakest evidence is reported first."""
        ordered = sorted(tests, key=lambda t: -t.support_p if math.isfinite(t.support_p) else -math.inf)
        return cls(claim, tuple(ordered), premise, **fields)


def relation(claim: Claim, verdict: str, post_hoc: bool = False) -> str:
    """agrees / departs / not resolved / premise not met / post hoc / extension / smaller than the smallest effect
    of interest (a futility stop): how a verdict stands against its source. `post_hoc`: the claim was added after
    seeing these seeds' data, so it cannot agree on them."""
    if claim.source == EXTENSION:
        return EXTENSION
    if verdict == PREMISE_NOT_MET:
        return PREMISE_NOT_MET
    if verdict == FUTILE:
        return SMALLER
    if verdict in UNSETTLED:
        return NOT_RESOLVED
    if post_hoc:
        return POST_HOC
    return "agrees" if verdict in POSITIVE else "departs"


def changes_of(claim: str) -> list[Change]:
    return [c for c in CHANGES if c.claim in (claim, "all")]


def standing(claim: str, preset: str, seeds: Sequence[int], protocol: str = "") -> tuple[Change | None, bool]:
    """The latest change made after this claim's data were seen at `preset` (a definition change, or the claim's
    addition) among those that concern results of this `protocol` (Premise.protocol), and whether `seeds` include
    any that change had seen (then its new definition is post hoc here; unknown seeds count as seen)."""
    after = [c for c in changes_of(claim) if c.kind in (DEFINITION, ADDED) and preset in c.seen
             and c.protocol in ("", protocol)]
    if not after:
        return None, False
    change = after[-1]
    return change, not seeds or bool(set(seeds) & set(change.seen[preset]))


# stats.py's kind of a pure estimate (C17a/b's primary test): an effect with its interval, no verdict; its plan is
# power_of's (the seeds for its interval to exclude 0 at the smallest effect of interest)
ESTIMATE_KIND = "estimate"
UNIT_LEVEL = ("correlation", "screen")  # their n counts conditions, not seeds, and no SD enters their power
# The SD that plans seeds (`planned`), per preset and claim unit: one already seen on at least MIN_PLANNING_N seeds
# and stated here, so that a claim's plan never moves with the SD its own 3 seeds happen to show, nor with its
# observed effect. quick, pp: 3.12, the largest SD of a per-seed gap among the committed quick rows with 8 seeds:
# C3's weakest optimiser (RMSprop) on seeds 0-7, benchmarks/gpu-quick-h200-2026-11-26/claims.csv (the other five
# rows there 1.29-2.60; C1's gap on seeds 100-107 1.96, C2 1.33, C4 1.72 in
# benchmarks/confirm-quick-cpu-epyc-2026-12-01/claims.csv). The largest, because one SD plans every pp claim of the
# preset, differences of gaps and remaining gaps among them, and a 2-core CPU's runs are not an H200's. No other
# preset or unit has an SD seen on 8 seeds yet (smoke is plumbing, paper and gpu have not run; the %, epochs and
# pp/doubling claims have only 3): those plan at the test's own SD where it comes from 8 seeds or more, else not.
PLANNING_SD = {("quick", "pp"): 3.12}
MIN_PLANNING_N = 8  # fewer seeds give an SD too unsure to plan from (at 3 its 95 % interval spans 0.5x to 6x)


def planning_sd(preset: str, unit: str, sd: float, n: int) -> float:
    """The SD seeds are planned at: the stated one for this preset and unit (PLANNING_SD), or the test's own where
    it comes from MIN_PLANNING_N seeds or more (the larger of the two where both exist: a plan errs towards more
    seeds); NaN when neither exists, so that no claim is planned from a 3-seed SD."""
    own = float(sd) if n >= MIN_PLANNING_N and math.isfinite(sd) and sd > 0 else math.nan
    seen = [v for v in (PLANNING_SD.get((preset, unit), math.nan), own) if math.isfinite(v)]
    return max(seen) if seen else math.nan


def planned(result: ClaimResult, smallest_effect: float | None, preset: str) -> tuple[float, float, float]:
    """(smallest effect of interest, the joint power these seeds give every test at it, the seeds each test needs
    for 80 % power at it), at the preset's planning SD (`planning_sd`); never at the observed effect, nor at an SD
    from 3 seeds. A ratio's effect is planned on the log scale."""
    test, sesoi = result.primary, sesoi_of(result, smallest_effect)
    if not math.isfinite(sesoi):
        return math.nan, math.nan, math.nan
    effect = math.log1p(sesoi / 100) if test.log_scale else sesoi
    scale = 100 if test.log_scale else 1
    unit = result.definition.unit

    def power(t: Test, n: int) -> float:
        # a bound's (and a trend bound's) power: the truth at 0, the margin away
        room = effect if t.kind not in ("bound", "trend") else t.margin
        return power_of(t, room, planning_sd(preset, unit, t.estimate.sd, t.estimate.n) / scale, n)

    joint = math.prod(power(t, t.estimate.n) for t in result.tests)  # intersection-union: at least this if the
    # tests correlate positively, as conditions sharing seeds do
    needed = [seeds_for(lambda n, t=t: power(t, n)) if t.kind in UNIT_LEVEL
              or math.isfinite(planning_sd(preset, unit, t.estimate.sd, t.estimate.n)) else math.nan
              for t in result.tests]
    return sesoi, joint, math.nan if any(math.isnan(n) for n in needed) else max(needed)


def verdict_words(verdict: str, test: str, margin: float, unit: str, seeds_needed: float,
                  unplanned: str = f"no SD from {MIN_PLANNING_N} or more seeds to plan at") -> str:
    """claims.csv's `verdict_words`: a verdict code (stats.py, sequential.py) in plain words for readers, one of
    "holds", "does not hold", "equivalent within ±m <unit>", "premise not met", "estimate only", or "not settled:
    about N seeds at the smallest effect of interest" (N: the seeds planned, `planned`) for every verdict that
    settles nothing (inconclusive, premise uncertain, not resolved, open, futile, stopped by budget); `unplanned`
    says why there is no N."""
    if verdict == PREMISE_NOT_MET:
        return PREMISE_NOT_MET
    if verdict == FUTILE:
        return SMALLER
    if test == ESTIMATE_KIND:
        return "estimate only"
    if verdict == EQUIVALENT:
        return f"equivalent within ±{margin:g} {unit}"
    if verdict in POSITIVE:
        return "holds"
    if verdict in NEGATIVE:
        return "does not hold"
    units = "conditions" if test in UNIT_LEVEL else "seeds"
    if not isinstance(seeds_needed, (int, float)) or math.isnan(seeds_needed):
        return f"not settled: {units} not planned ({unplanned})"
    if math.isinf(seeds_needed):
        return f"not settled: over {MAX_SEEDS:,} {units} at the smallest effect of interest"
    return f"not settled: about {seeds_needed:.0f} {units} at the smallest effect of interest"


def sesoi_of(result: ClaimResult, smallest_effect: float | None) -> float:
    """The claim's smallest effect of interest in its unit (a ratio's in percent): the registry's, else the preset's
    `smallest_effect` for a difference, the margin for an equivalence or a bound; NaN when there is none."""
    claim, test = result.definition, result.primary
    sesoi = claim.sesoi if claim.sesoi is not None else smallest_effect if test.kind == "difference" else test.margin
    return math.nan if sesoi is None or not math.isfinite(sesoi) else float(sesoi)


def registry_hash() -> str:
    """A short hash of every claim's definition and every change: a report names the registry it used."""
    text = repr(sorted(CLAIMS.items())) + repr(CHANGES)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def claims_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "claims.csv"


def read_claims(out_dir: str | os.PathLike) -> pd.DataFrame:
    path = claims_path(out_dir)
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path, keep_default_na=False, na_values=["", "nan"])
    if "registry" not in table.columns:  # written by an older version: its verdicts used other procedures
        return pd.DataFrame(columns=COLUMNS)
    table = with_verdict_words(with_dataset(table))
    table = table.assign(stage=table.stage.fillna(FIXED_N) if "stage" in table.columns else FIXED_N)
    return table[[c for c in COLUMNS if c in table] + [c for c in table if c not in COLUMNS]]


def the_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and preset: the settled one where `run --settle` froze a verdict, else the fixed-n one."""
    if not len(rows) or "stage" not in rows.columns:
        return rows
    rank = rows.stage.map({SETTLED: 0}).fillna(1)
    return rows.assign(_rank=rank).sort_values("_rank", kind="stable").drop_duplicates(
        ["claim", "preset"]).drop(columns="_rank").sort_values(["preset", "claim"])


def in_registry_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Claims rows in the registry's order (C1, C2, ... C17b), not claims.csv's string order (C10 before C2)."""
    rank = {claim: i for i, claim in enumerate(CLAIMS)}
    return rows.sort_values("claim", key=lambda ids: ids.map(lambda c: rank.get(c, len(rank))), kind="stable")


def with_verdict_words(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows written before `verdict_words` existed get it from their codes. Their plan was made at their own SD
    (often of 3 seeds), so it is not repeated in words unless no SD entered it (a correlation's)."""
    if len(rows) and "verdict_words" in rows.columns and rows.verdict_words.notna().all():
        return rows
    if not {"verdict", "test", "margin", "unit", "seeds_for_sesoi"} <= set(rows.columns):  # not a row we wrote
        return rows if "verdict_words" in rows.columns else rows.assign(verdict_words="")
    why = "an older row: rerun its notebook to plan it"
    words = pd.Series([verdict_words(r.verdict, r.test, r.margin, r.unit,
                                     r.seeds_for_sesoi if r.test in UNIT_LEVEL else math.nan, why)
                       for r in rows.itertuples()], index=rows.index, dtype=object)
    return rows.assign(verdict_words=rows.verdict_words.fillna(words) if "verdict_words" in rows.columns else words)


def with_dataset(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows written before other datasets existed (no `dataset`, or none given) are CIFAR-10's."""
    if "dataset" not in rows.columns:
        rows = rows.copy()
        rows.insert(min(COLUMNS.index("dataset"), len(rows.columns)), "dataset", DEFAULT_DATASET)
    return rows.fillna({"dataset": DEFAULT_DATASET})


def check_results_dataset(out_dir: str | os.PathLike, dataset: str) -> None:
    """An output folder holds one dataset's results: claims.csv, report.md, the figures and the executed notebooks
    are named by notebook and preset, so a batch on another dataset would replace them (its runs would not mix:
    the dataset is in every run's key)."""
    others = sorted(set(read_claims(out_dir).dataset) - {dataset})
    if others:
        raise ConfigError(f"the output folder {out_dir} holds results on {', '.join(others)} (claims.csv). "
                          f"Results on {dataset} would replace them, notebook by notebook. Give each dataset its "
                          "own output folder (--out / out_dir).")


def claim_row(result: ClaimResult, preset: str, smallest_effect: float | None = None,
              dataset: str = DEFAULT_DATASET) -> dict:
    """The claims.csv row: the primary verdict by the registry's standing (see `standing`), a post-hoc one beside
    it where a definition changed after these seeds were seen, and the plan at the smallest effect of interest."""
    claim = result.definition
    change, seen = standing(result.claim, preset, result.seeds, result.premise.protocol)
    shown, verdict, beside, post_hoc = result, result.verdict, "", False
    own = [c for c in CHANGES if c.claim == result.claim and c.kind == DEFINITION]
    definition = f"fixed before its data ({claim.fixed}" + (f"; last changed {own[-1].date}, {own[-1].commit})"
                                                           if own else ")")
    if change and change.kind == ADDED:
        post_hoc = seen
        definition = (f"post hoc: added {change.date} after seeing seeds {seeds_text(change.seen[preset])}, "
                      "so it cannot agree on them" if seen else f"added {change.date}; confirmatory on unseen seeds")
    elif change and seen:
        beside = f"{result.verdict} ({result.primary.describe(claim.unit)})"
        # a change that retrained the runs (its own protocol) leaves no earlier definition they can compute
        earlier = None if change.protocol else result.earlier
        shown = earlier or result
        verdict = earlier.verdict if earlier else NOT_RESOLVED
        definition = (f"post hoc: changed {change.date} ({change.commit}) after seeing seeds "
                      f"{seeds_text(change.seen[preset])}; the earlier definition is primary on them"
                      + ("" if earlier else ", and the runs cannot compute it"))
    elif change:
        definition = f"changed {change.date} ({change.commit}); confirmatory on unseen seeds"
    test, e = shown.primary, shown.primary.estimate
    sesoi, power, needed = planned(shown, smallest_effect, preset)
    return {
        "claim": result.claim, "notebook": claim.notebook, "statement": claim.statement, "preset": preset,
        "dataset": dataset, "test": test.kind, "unit": claim.unit, "n_seeds": e.n, "n_missing": e.missing,
        "method": e.method,
        "effect": round(e.mean, 3), "ci_low": round(e.ci_low, 3), "ci_high": round(e.ci_high, 3),
        "ci_level": e.confidence, "sd": round(e.sd, 3), "margin": test.margin, "p_value": round(test.p_value, 4),
        "mde_80": round(test.mde, 3), "sesoi": sesoi, "power_at_sesoi": round(power, 3), "seeds_for_sesoi": needed,
        "verdict": verdict, "vs_paper": relation(claim, verdict, post_hoc), "definition": definition,
        "post_hoc": beside, "premise": f"{shown.premise.state}: {shown.premise.detail}",
        "other_tests": " | ".join(t.describe(claim.unit) for t in (*shown.tests[1:], *shown.others)),
        "condition": test.label, "registry": registry_hash(),
        "verdict_words": verdict_words(verdict, test.kind, test.margin, claim.unit, needed), "stage": FIXED_N,
    }


def seeds_text(seeds: Sequence[int]) -> str:
    return f"{min(seeds)}-{max(seeds)}" if list(seeds) == list(range(min(seeds), max(seeds) + 1)) else \
        ", ".join(map(str, seeds))


def record_claims(out_dir: str | os.PathLike, preset: str, results: list[ClaimResult],
                  config: Any = None) -> pd.DataFrame:
    """Write (or replace) these claims' fixed-n rows for this preset in claims.csv; return *the* verdicts of these
    claims: a settled row where `run --settle` froze one (the fixed-n row stays beside it, exploratory), else the
    new row. `config` (the study's) gives the smallest effect of interest the seeds are planned for. A bundle is
    read-only: its claims.csv stays the committed one, the new rows only shown beside it."""
    smallest = getattr(config, "smallest_effect", None)
    dataset = getattr(config, "dataset", DEFAULT_DATASET)
    rows = pd.DataFrame([claim_row(r, preset, smallest, dataset) for r in results], columns=COLUMNS)
    if is_bundle(out_dir):
        table = merged(read_claims(out_dir), preset, with_dataset(rows))
    else:
        table = replace_rows(out_dir, preset, rows)
    return the_verdicts(table[(table.preset == preset) & table.claim.isin(rows.claim)]).reset_index(drop=True)


def claims_lock(out_dir: str | os.PathLike) -> Path:
    """The lock held while claims.csv is read and rewritten, and while report.md is made from it: batches and
    notebook kernels on one output folder all update them."""
    return Path(out_dir) / ".locks" / "claims.lock"


def replace_rows(out_dir: str | os.PathLike, preset: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Put claims.csv rows in place of the same claims' rows at this preset (the batch's execution cache
    restores a notebook's rows with it), under the claims lock so that concurrent writers keep each other's rows;
    readers see the old table or the new one. Returns the table written."""
    with locked(claims_lock(out_dir)):
        remove_stale_temporaries(claims_path(out_dir))
        rows = with_dataset(rows)
        for dataset in set(rows.dataset):
            check_results_dataset(out_dir, dataset)
        table = merged(read_claims(out_dir), preset, rows)
        write_atomic(claims_path(out_dir), table.to_csv(index=False))
    return table


def merged(table: pd.DataFrame, preset: str, rows: pd.DataFrame) -> pd.DataFrame:
    """`table` with `rows` in place of its rows of the same claims, preset and stage (fixed n where none is given)."""
    rows = rows.assign(stage=rows.stage.fillna(FIXED_N)) if "stage" in rows.columns else rows.assign(stage=FIXED_N)
    same = table.claim.isin(rows.claim) & (table.preset == preset) & table.stage.isin(rows.stage)
    table = table[~same]
    return pd.concat([t for t in (table, rows) if len(t)], ignore_index=True).sort_values(["preset", "claim"])
