"""02 · How much pretraining causes the gap (Berariu et al. Fig. 2). Claim C2.

Fig. 1 with the pretraining length swept; every warm run is tuned for `tune_epochs` and compared with
the same scratch runs (no pretraining, E_pre = 0). The pretraining train accuracy reached at each length
shows whether the gap appears before pretraining fits the half.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from ..analysis.claims import Claim, ClaimResult
from ..core.config import ConfigError, range_of
from ..run.run_config import Phase
from .study_config import Plan, StudyConfig, check_sweep, presets
from .study_result import StudyResult

EARLIER_FEW_EPOCHS = 3  # C2's slice at quick before a5df8a4, primary on the seeds it had seen

# The claims this notebook tests (the registry: studies.claim_registry).
EARLY_GAP = Claim(
    "C2", "02_pretraining_duration", "the gap appears after only 5-10 pretraining epochs",
    "The gap appears after about 5-10 epochs of pretraining with Adam, before pretraining fits the "
    "half; early stopping does not avoid it (Fig. 2).",
    "gap after `few_epochs` pretraining epochs (inside the paper's 5-10); difference test")
CLAIMS = (EARLY_GAP,)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    # pretraining lengths E_pre (epochs on the half; no pretraining is the scratch arm)
    pretrain_epochs_sweep: tuple[int, ...] = range_of(Phase, "epochs")
    few_epochs: int  # C2 is read off the gap after this many pretraining epochs (one of the sweep; paper: 5-10)

    CONDITIONS = ("pretrain_epochs",)
    PRESETS = presets(
        smoke=dict(pretrain_epochs_sweep=[1, 2], few_epochs=1),
        quick=dict(pretrain_epochs_sweep=[1, 3, 5, 10], few_epochs=5),
        paper=dict(pretrain_epochs_sweep=[1, 2, 5, 10, 20, 50, 100, 200, 350], few_epochs=5),
    )

    def check_sweep(self) -> None:
        check_sweep("pretrain_epochs_sweep", self.pretrain_epochs_sweep)
        if self.few_epochs not in self.pretrain_epochs_sweep:
            raise ConfigError(f"few_epochs {self.few_epochs} must be one of pretrain_epochs_sweep "
                              f"{list(self.pretrain_epochs_sweep)}")

    def plan(self, data_id: str = "") -> Plan:
        return [run for e in self.pretrain_epochs_sweep
                for run in self.pairs(dict(pretrain_epochs=e), lambda s: self.warm(s, data_id, pretrain_epochs=e),
                                      lambda s: self.scratch(s, data_id))]


def pretraining_fit(result: StudyResult) -> pd.DataFrame:
    """Train accuracy (%) on the half at the end of pretraining, per pretraining length (mean, min, max over seeds)."""
    h = result.history
    ends = h[(h.arm == "warm") & (h.phase == 1)].groupby(["pretrain_epochs", "seed"]).train_acc.last()
    return ends.groupby("pretrain_epochs").agg(["mean", "min", "max"]).add_prefix("pretrain_train_acc_").reset_index()


def claim_conditions(config: Config) -> dict[str, Any]:
    """The notebook parameters that train only the condition C2 reads (the main job's settle stage)."""
    return {"pretrain_epochs_sweep": [config.few_epochs], "few_epochs": config.few_epochs}


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C2 at `few_epochs`; beside it, where the sweep has it, its definition before a5df8a4 (claim_history)."""
    def at(epochs: int, earlier: ClaimResult | None = None) -> ClaimResult:
        few = dict(pretrain_epochs=epochs)
        premise = result.premise(config.premise_rule(), **few)
        return ClaimResult(EARLY_GAP, (result.gap_test(**few),), premise, result.fit_tests(premise, **few),
                           earlier=earlier)

    earlier = at(EARLIER_FEW_EPOCHS) if EARLIER_FEW_EPOCHS in config.pretrain_epochs_sweep else None
    return [at(config.few_epochs, earlier)]
