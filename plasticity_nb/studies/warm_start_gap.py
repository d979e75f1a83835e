"""01 · The warm-start gap (Berariu et al. Fig. 1; Ash & Adams). Claim C1."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..analysis.claims import ClaimResult
from .study_config import WarmStartConfig
from .study_result import StudyResult

Config = WarmStartConfig
EARLIER_FLOOR = 97.0  # C1's premise floor (%) at quick before 4f36217, primary on the seeds it had seen


def claim_conditions(config: WarmStartConfig) -> dict[str, Any]:
    """C1 reads the notebook's one condition: nothing to restrict (the main job's settle stage)."""
    return {}


def claims(result: StudyResult, config: WarmStartConfig) -> list[ClaimResult]:
    if config.to_target:  # the 97 % floor is a fixed budget's rule: runs trained to a target cannot compute it
        premise = result.premise(config.premise_rule())
        return [ClaimResult("C1", (result.gap_test(),), premise, result.fit_tests(premise))]
    earlier_rule = dataclasses.replace(config.premise_rule(), min_train_acc=EARLIER_FLOOR)
    earlier = ClaimResult("C1", (result.gap_test(),), result.premise(earlier_rule))
    return [ClaimResult("C1", (result.gap_test(),), result.premise(config.premise_rule()), earlier=earlier)]
