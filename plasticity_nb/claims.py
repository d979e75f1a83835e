"""The study's claims and `<out>/claims.csv`: one row per claim and preset, effect with its paired CI."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from .stats import Estimate

COLUMNS = ["claim", "notebook", "statement", "preset", "n_seeds", "effect_pp", "ci_low_pp", "ci_high_pp", "verdict"]


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    notebook: str  # notebook stem that tests it
    statement: str  # what "supported" means; the effect is positive when the statement holds
    paper: str  # what Berariu et al. found (direction only: their exact numbers are not known to us)


CLAIMS = {c.id: c for c in [
    Claim("C1", "01_warm_start_gap", "warm-started training generalises worse than training from scratch",
          "Both arms reach 100% train accuracy; the warm-started model's test accuracy plateaus lower (Fig. 1)."),
]}


def claims_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "claims.csv"


def read_claims(out_dir: str | os.PathLike) -> pd.DataFrame:
    path = claims_path(out_dir)
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)


def record_claim(out_dir: str | os.PathLike, claim_id: str, preset: str, estimate: Estimate) -> pd.DataFrame:
    """Write (or replace) this claim's row for this preset in claims.csv; return the row."""
    claim = CLAIMS[claim_id]
    row = pd.DataFrame([{
        "claim": claim.id, "notebook": claim.notebook, "statement": claim.statement, "preset": preset,
        "n_seeds": estimate.n, "effect_pp": round(estimate.mean, 3), "ci_low_pp": round(estimate.ci_low, 3),
        "ci_high_pp": round(estimate.ci_high, 3), "verdict": estimate.verdict,
    }], columns=COLUMNS)
    table = read_claims(out_dir)
    table = table[~((table.claim == claim_id) & (table.preset == preset))]
    table = pd.concat([table, row] if len(table) else [row], ignore_index=True).sort_values(["preset", "claim"])
    path = claims_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)  # readers never see a half-written table
    return row
