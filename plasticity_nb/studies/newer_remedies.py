"""11 · The remedies of 2024 beside those of notebook 10, on its protocol, and which metric predicts the gap.
Claims C16a-e (each new remedy, as its source states it; registered 2026-12-02 before any run of them) and C15
(redefined 2026-12-02 over every remedy and metric: claim_history.py).

The protocol is notebook 10's (remedies.py): per seed, a warm-started run with a remedy against a scratch run.
Hare & Tortoise, SAM, soft shrink-and-perturb, Parseval regularisation and weight clipping act in both phases of
the warm run (they are meant to keep a network plastic while it learns) and are compared with plain scratch;
their settings are their authors' defaults, or scaled to the budget by the rule each module states
(`Remedy.for_budget`). Its quick seeds (300-302) were never used by another notebook, so C15's new definition
is confirmatory on them.
"""
from __future__ import annotations

import dataclasses

from ..analysis.claims import ClaimResult
from ..analysis.stats import Test, correlation_test, difference_test, screen_test
from . import remedies
from .remedies import BUILTIN_CONDITIONS, NONE, SOURCE_VALUES, START_METRICS
from .study_config import presets
from .study_result import StudyResult

# The remedies of 2024, each with its claim: the reduction of the gap it brings (claims.py).
NEWER = {"hare_tortoise": "C16a", "sam": "C16b", "soft_shrink_perturb": "C16c", "parseval": "C16d",
         "weight_clipping": "C16e"}
PRIMARY_BEFORE = "grad_ratio"  # C15's one predictor before its 2026-12-02 definition (claim_history.py)
QUICK_SEEDS = [300, 301, 302]  # never used by another notebook (notebook 10: 0-2 and 200-202)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(remedies.Config):
    # The remedies of notebook 10 and those of 2024 on one protocol: notebook 10's fields, its values per preset.
    PRESETS = presets(
        # smoke: two new remedies and one old, for the test suite (tests/test_new_remedies.py covers every remedy)
        smoke=dict(pretrain_epochs=2, remedies=["hare_tortoise", "weight_clipping", "l2_init"], **SOURCE_VALUES,
                   redo_every=5, cbp_replacement_rate=1e-3, cbp_maturity=5, speed_target_acc=20.0),
        quick=dict(seeds=QUICK_SEEDS, pretrain_epochs=10, remedies=[*BUILTIN_CONDITIONS, *NEWER], **SOURCE_VALUES,
                   redo_every=200, cbp_replacement_rate=1e-4, cbp_maturity=100, speed_target_acc=90.0),
        paper=dict(pretrain_epochs=350, remedies=[*BUILTIN_CONDITIONS, *NEWER], **SOURCE_VALUES, redo_every=1000,
                   cbp_replacement_rate=1e-5, cbp_maturity=1000, speed_target_acc=99.0))


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C16a-e for each new remedy in the sweep, each with the share of seeds it improves beside it; C15 across
    every condition."""
    rule, found = config.premise_rule(), []
    for remedy, claim in NEWER.items():
        if remedy in config.remedies:
            reduces = difference_test(result.gap_change("remedy", NONE, remedy), f"gap(none) - gap({remedy})")
            found.append(ClaimResult(claim, (reduces,), result.reduction_premise(rule, "remedy", NONE, remedy),
                                     (result.gap_test(remedy=remedy),
                                      result.gap_equivalence(config.equivalence_margin, remedy=remedy),
                                      remedies.improvement(result, remedy))))
    found.append(predictor_claim(result, config))
    return found


def predictor_claim(result: StudyResult, config: Config) -> ClaimResult:
    """C15: a screen of every start-of-tuning metric (Holm over them), each a correlation with the gap across the
    conditions whose premise holds, each condition its mean over seeds: runs of one seed share its scratch run,
    subset and initial weights, so they are not independent units, while a seed's shared effect shifts every
    condition's mean alike. The earlier definition (grad_ratio alone, one-sided) beside it."""
    rule = config.premise_rule()
    fitted = [r for r in (NONE, *config.remedies) if result.premise(rule, remedy=r).met]
    start = remedies.start_of_tuning(result)
    per_condition = start[start.remedy.isin(fitted)].groupby("remedy")[[*START_METRICS, "gap_pp"]].mean()
    left_out = sorted(set(config.remedies) - set(fitted))
    where = f"{len(per_condition)} conditions' means" + (
        f", premise not met so left out: {', '.join(left_out)}" if left_out else "")
    candidates = [correlation_test(per_condition[m], per_condition.gap_pp, f"r({m}, gap) over {where}")
                  for m in START_METRICS]
    seeds = tuple(sorted(start.seed.unique()))  # the registry's standing needs them, whichever conditions fit
    candidates = [with_seeds(t, seeds) for t in candidates]
    premise = result.premise(rule, remedy=NONE)
    earlier = ClaimResult("C15", (candidates[START_METRICS.index(PRIMARY_BEFORE)],), premise)
    return ClaimResult("C15", (screen_test(candidates),), premise, tuple(candidates), earlier=earlier)


def with_seeds(test: Test, seeds: tuple[int, ...]) -> Test:
    """`test` with the seeds its units were averaged over (a correlation's units are conditions, not seeds)."""
    return dataclasses.replace(test, estimate=dataclasses.replace(test.estimate, seeds=seeds))
