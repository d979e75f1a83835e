"""The study notebooks: one module per section of the paper, each with its `Config` (parameters,
presets, the runs it needs), the claims it tests (`CLAIMS`, its `Claim` declarations) and `claims(result, config)`
that computes them; the catalogue the batch CLI uses, and the claims registry assembled from it."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

from ..analysis.claims import Claim
from ..core.paths import project_root
from . import (
    blending,
    capacity,
    continual,
    multistage,
    newer_remedies,
    optimisers,
    pretraining_duration,
    remedies,
    resets,
    scale,
    tuning_lr,
    two_phases,
    warm_start_gap,
)

# Notebook parameters that choose where and how to run, not what is computed (never part of a config): the preset,
# and the fields of the ExecutionSettings the notebook passes whole to run_study (execution/settings.py; spelt out
# here, as the claims registry imports this module without torch; tests/test_execution_settings.py holds them equal).
EXECUTION_PARAMETERS = ("preset", "out_dir", "data_dir", "device", "workers", "executor", "ray_address", "progress",
                        "checkpoint_every", "ensemble", "compile")
PRESETS = ("smoke", "quick", "paper", "gpu")  # gpu: the scale study's whole grid (12 only)


@dataclasses.dataclass(frozen=True)
class Study:
    id: str  # two-digit prefix of the notebook file, as used by --only
    notebook: str  # file name under notebooks/
    module: ModuleType  # its Config and claims()

    @property
    def path(self) -> Path:
        return notebooks_dir() / self.notebook

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem

    @property
    def config(self):
        return self.module.Config


STUDIES = {s.id: s for s in [
    Study("01", "01_warm_start_gap.ipynb", warm_start_gap),
    Study("02", "02_pretraining_duration.ipynb", pretraining_duration),
    Study("03", "03_optimisers.ipynb", optimisers),
    Study("04", "04_blending.ipynb", blending),
    Study("05", "05_multistage.ipynb", multistage),
    Study("06", "06_capacity.ipynb", capacity),
    Study("07", "07_resets.ipynb", resets),
    Study("08", "08_tuning_lr.ipynb", tuning_lr),
    Study("09", "09_two_phases.ipynb", two_phases),
    Study("10", "10_remedies.ipynb", remedies),
    Study("11", "11_remedies_2024.ipynb", newer_remedies),
    Study("12", "12_scale.ipynb", scale),
    Study("13", "13_continual.ipynb", continual),
]}


def claim_registry() -> dict[str, Claim]:
    """Every claim, id -> its definition, in the catalogue's order (each study's CLAIMS as it declares them): the
    registry analysis.claims.CLAIMS reads. A claim declared twice, or by a study whose notebook does not test it,
    is refused."""
    found: dict[str, Claim] = {}
    for study in STUDIES.values():
        for claim in study.module.CLAIMS:
            if claim.id in found:
                raise ValueError(f"claim {claim.id} is declared twice ({found[claim.id].notebook}, {study.stem})")
            if claim.notebook != study.stem:
                raise ValueError(f"claim {claim.id} names notebook {claim.notebook} but study {study.id} "
                                 f"({study.stem}) declares it")
            found[claim.id] = claim
    return found


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
