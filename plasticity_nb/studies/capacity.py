"""06 · Depth and width (Berariu et al. Fig. 5). Claim C6.

Fig. 1 on ResNets with `depth` BasicBlocks per stage (changed in all four stages) and base width `width`
(stages w, 2w, 4w, 8w), warm and scratch at every (depth, width), the same learning rate throughout.
"""
from __future__ import annotations

import dataclasses
import itertools

from ..analysis.claims import Claim, ClaimResult
from ..core.config import range_of
from ..run.run_config import RunConfig
from .study_config import Plan, WarmStartConfig, check_sweep, presets
from .study_result import StudyResult

# The claims this notebook tests (the registry: studies.claim_registry).
EVERY_SIZE = Claim(
    "C6", "06_capacity", "the gap survives every depth and width tried, including wider than the base",
    "The gap survives every depth and width tried; bigger models do not fix it (Fig. 5).",
    "gap per (depth, width), the grid including a width above the base width; one difference test per "
    "condition, reported: the one with the weakest evidence")
CLAIMS = (EVERY_SIZE,)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(WarmStartConfig):
    depths: tuple[int, ...] = range_of(RunConfig, "depth")  # BasicBlocks per stage (replaces `depth`)
    widths: tuple[int, ...] = range_of(RunConfig, "width")  # base widths (replaces `width`)

    CONDITIONS = ("depth", "width")
    # Each grid has a width above the base `width` (smoke 4, quick 8), so "bigger models do not fix it" is tested.
    PRESETS = presets(smoke=dict(pretrain_epochs=2, depths=[1, 2], widths=[4, 8]),
                      quick=dict(pretrain_epochs=10, depths=[1, 2], widths=[8, 16]),
                      paper=dict(pretrain_epochs=350, depths=[1, 2, 3, 4], widths=[16, 32, 64, 128]))

    def check_sweep(self) -> None:
        super().check_sweep()
        check_sweep("depths", self.depths)
        check_sweep("widths", self.widths)

    def plan(self, data_id: str = "") -> Plan:
        return [run for d, w in itertools.product(self.depths, self.widths)
                for run in self.pairs(dict(depth=d, width=w), lambda s: self.warm(s, data_id, depth=d, width=w),
                                      lambda s: self.scratch(s, data_id, depth=d, width=w))]


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C6 needs a width above the base `width` (else "bigger models do not fix it" is untested: left out)."""
    if max(config.widths) <= config.width:
        return []
    grid = [dict(depth=d, width=w) for d, w in itertools.product(config.depths, config.widths)]
    tests = [result.gap_test(**c) for c in grid]
    return [ClaimResult.every_condition(EVERY_SIZE, tests, result.premise(config.premise_rule()))]
