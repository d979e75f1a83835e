"""The study's claims and `<out>/claims.csv`: one row per claim and preset, effect with its paired CI.

Every claim is phrased so that a positive effect supports it. Its verdict is `supported` when the 95% CI
lies above 0, `not supported` when it lies below 0, `inconclusive` when it straddles 0, unless the
claim's own rule (C3, C6: every condition; C7: recovery) says otherwise.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from .stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Estimate

COLUMNS = ["claim", "notebook", "statement", "preset", "n_seeds", "effect_pp", "ci_low_pp", "ci_high_pp", "verdict"]


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    notebook: str  # notebook stem that tests it
    statement: str  # what "supported" means
    paper: str  # what Berariu et al. found (direction only: their exact numbers are not known to us)
    effect: str  # what effect_pp measures


CLAIMS = {c.id: c for c in [
    Claim("C1", "01_warm_start_gap", "warm-started training generalises worse than training from scratch",
          "Both arms reach 100% train accuracy; the warm-started model's test accuracy plateaus lower (Fig. 1).",
          "gap = scratch - warm final test accuracy"),
    Claim("C2", "02_pretraining_duration", "the gap appears after only a few pretraining epochs",
          "The gap appears after about 5-10 epochs of pretraining with Adam, before pretraining fits the "
          "half; early stopping does not avoid it (Fig. 2).",
          "gap after `few_epochs` pretraining epochs"),
    Claim("C3", "03_optimisers", "the gap appears under every optimiser",
          "The gap appears with Adam, RMSprop, SGD and SGD with momentum (App. A.1).",
          "gap of the optimiser with the weakest evidence (lowest CI bound); supported only if every "
          "optimiser's CI lies above 0"),
    Claim("C4", "04_blending", "a transient bias toward the pretraining subset is enough to cause the gap",
          "Even a transient, slowly fading bias towards the half produces the gap (Fig. 3).",
          "gap of the single-stage blended run with the slowest fade (largest gamma)"),
    Claim("C5a", "05_multistage", "the gap grows with the number of stages",
          "Final test accuracy falls steadily as the number of pretraining stages grows (Fig. 4, left).",
          "gap(most stages) - gap(fewest stages), averaged over ratios"),
    Claim("C5b", "05_multistage", "the gap grows with the class shift between stages",
          "A larger difference between stages (smaller uniform fraction r) gives a larger gap (Fig. 4).",
          "gap(smallest r) - gap(largest r), averaged over stage counts"),
    Claim("C6", "06_capacity", "the gap survives every depth and width tried",
          "The gap survives every depth and width tried; bigger models do not fix it (Fig. 5).",
          "gap of the (depth, width) with the weakest evidence; supported only if every CI lies above 0"),
    Claim("C7", "07_resets", "re-initialising the top 4-5 groups recovers from-scratch accuracy",
          "Resetting the top 4 or 5 module groups recovers from-scratch generalisation; resetting a few is not "
          "enough (Fig. 6).",
          "gap removed by resetting the top 4-5 groups: gap(no reset) - gap(reset); supported when that is "
          "above 0 and the remaining gap is not significantly above 0"),
    Claim("C8", "08_tuning_lr", "a 10x larger tuning lr shrinks the gap",
          "A 10x larger tuning learning rate substantially reduces, but does not close, the gap (Fig. 7).",
          "gap(1x tuning lr) - gap(largest multiplier), scratch at the same multipliers"),
    Claim("C9", "09_two_phases", "warm-started tuning ends in a sharper minimum (higher top eigenvalue and trace)",
          "Not measured by the paper; its two-phases hypothesis (§3) predicts a narrower minimum after warm-starting.",
          "relative difference in percent, 100 (warm / scratch - 1), of the top Hessian eigenvalue and of the "
          "trace at the end of tuning (the one with the weaker evidence); supported only if both are above 0"),
    Claim("C10", "09_two_phases", "warm-started tuning starts with less gradient noise",
          "Not measured by the paper; its hypothesis is that pretraining removes the gradient noise that drives "
          "exploration at the start of tuning.",
          "100 (1 - warm / scratch) of the per-example gradient variance tr(Sigma), over the early tuning probes"),
]}


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    claim: str  # id in CLAIMS
    estimate: Estimate
    verdict: str  # usually estimate.verdict; claims with their own rule set it

    @classmethod
    def from_estimate(cls, claim: str, estimate: Estimate) -> "ClaimResult":
        return cls(claim, estimate, estimate.verdict)

    @classmethod
    def every_condition(cls, claim: str, estimates: list[Estimate]) -> "ClaimResult":
        """Supported only if every condition is; reports the condition with the weakest evidence."""
        weakest = min(estimates, key=lambda e: e.ci_low)
        verdicts = {e.verdict for e in estimates}
        verdict = SUPPORTED if verdicts == {SUPPORTED} else NOT_SUPPORTED if NOT_SUPPORTED in verdicts else INCONCLUSIVE
        return cls(claim, weakest, verdict)


def claims_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "claims.csv"


def read_claims(out_dir: str | os.PathLike) -> pd.DataFrame:
    path = claims_path(out_dir)
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)


def record_claims(out_dir: str | os.PathLike, preset: str, results: list[ClaimResult]) -> pd.DataFrame:
    """Write (or replace) these claims' rows for this preset in claims.csv; return the new rows."""
    rows = pd.DataFrame([{
        "claim": r.claim, "notebook": CLAIMS[r.claim].notebook, "statement": CLAIMS[r.claim].statement,
        "preset": preset, "n_seeds": r.estimate.n, "effect_pp": round(r.estimate.mean, 3),
        "ci_low_pp": round(r.estimate.ci_low, 3), "ci_high_pp": round(r.estimate.ci_high, 3), "verdict": r.verdict,
    } for r in results], columns=COLUMNS)
    table = read_claims(out_dir)
    table = table[~(table.claim.isin(rows.claim) & (table.preset == preset))]
    table = pd.concat([t for t in (table, rows) if len(t)], ignore_index=True).sort_values(["preset", "claim"])
    path = claims_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)  # readers never see a half-written table
    return rows
