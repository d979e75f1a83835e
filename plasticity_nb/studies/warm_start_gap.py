"""01 · The warm-start gap (Berariu et al. Fig. 1; Ash & Adams). Claim C1."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..analysis.claims import Claim, ClaimResult
from .study_config import WarmStartConfig
from .study_result import StudyResult

Config = WarmStartConfig
EARLIER_FLOOR = 97.0  # C1's premise floor (%) at quick before 4f36217, primary on the seeds it had seen

# The claims this notebook tests (the registry: studies.claim_registry).
GAP = Claim(
    "C1", "01_warm_start_gap", "warm-started training generalises worse than training from scratch",
    "Both arms reach 100% train accuracy; the warm-started model's test accuracy plateaus lower (Fig. 1).",
    "gap = scratch - warm test accuracy over the metric window; difference test")
CLAIMS = (GAP,)


def claim_conditions(config: WarmStartConfig) -> dict[str, Any]:
    """C1 reads the notebook's one condition: nothing to restrict (the main job's settle stage)."""
    return {}


def claims(result: StudyResult, config: WarmStartConfig) -> list[ClaimResult]:
    if config.to_target:  # the 97 % floor is a fixed budget's rule: runs trained to a target cannot compute it
        premise = result.premise(config.premise_rule())
        return [ClaimResult(GAP, (result.gap_test(),), premise, result.fit_tests(premise))]
    earlier_rule = dataclasses.replace(config.premise_rule(), min_train_acc=EARLIER_FLOOR)
    earlier = ClaimResult(GAP, (result.gap_test(),), result.premise(earlier_rule))
    return [ClaimResult(GAP, (result.gap_test(),), result.premise(config.premise_rule()), earlier=earlier)]
