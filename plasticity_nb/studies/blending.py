"""04 · Single-stage blending: a transient bias toward the half (Berariu et al. Fig. 3). Claim C4.

One run, no separate pretraining: at step n each example is drawn from the full subset with probability
p(n) = 1 - gamma^(blend_rate * n / N) (paper: blend_rate 50, N the run's steps), otherwise from the
pretraining half. The reference (gamma -> 0, uniform sampling from the start) is the scratch run.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..analysis.claims import Claim, ClaimResult
from ..core.config import range_of
from ..run.run_config import Phase
from .study_config import Plan, StudyConfig, check_sweep, presets
from .study_result import StudyResult

# The claims this notebook tests (the registry: studies.claim_registry).
TRANSIENT_BIAS = Claim(
    "C4", "04_blending", "a transient bias toward the pretraining subset is enough to cause the gap",
    "Even a transient, slowly fading bias towards the half produces the gap (Fig. 3).",
    "gap of the single-stage blended run with the slowest fade (largest gamma); difference test")
CLAIMS = (TRANSIENT_BIAS,)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    gammas: tuple[float, ...] = range_of(Phase, "gamma")  # larger = the bias toward the half fades more slowly
    blend_rate: float = range_of(Phase, "blend_rate", 50.0)  # the paper's 50: p = 1 - gamma after 1/50 of the run

    CONDITIONS = ("gamma",)
    PRESETS = presets(smoke=dict(gammas=[0.5, 0.9]), quick=dict(gammas=[0.1, 0.5, 0.9]),
                      paper=dict(gammas=[0.1, 0.3, 0.5, 0.7, 0.9]))

    def check_sweep(self) -> None:
        check_sweep("gammas", self.gammas)

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for gamma in self.gammas:
            blend = self.tune(pool="blend", gamma=gamma, blend_rate=self.blend_rate)
            plan += self.pairs(dict(gamma=gamma), lambda s: self.run_config(s, (blend,), data_id),
                               lambda s: self.scratch(s, data_id))
        return plan


def claim_conditions(config: Config) -> dict[str, Any]:
    """The notebook parameters that train only the condition C4 reads (the main job's settle stage)."""
    return {"gammas": [max(config.gammas)]}


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    slowest = dict(gamma=max(config.gammas))
    premise = result.premise(config.premise_rule(), **slowest)
    return [ClaimResult(TRANSIENT_BIAS, (result.gap_test(**slowest),), premise, result.fit_tests(premise, **slowest))]
