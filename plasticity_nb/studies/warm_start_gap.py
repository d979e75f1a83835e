"""01 · The warm-start gap (Berariu et al. Fig. 1; Ash & Adams). Claim C1."""
from __future__ import annotations

from ..claims import ClaimResult
from ..protocols import StudyResult, WarmStartConfig

Config = WarmStartConfig


def claims(result: StudyResult, config: WarmStartConfig) -> list[ClaimResult]:
    return [ClaimResult("C1", (result.gap_test(),), result.premise(config.premise_rule()))]
