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

from ..analysis.claims import EXTENSION, LEE, Claim, ClaimResult
from ..analysis.stats import Test, correlation_test, difference_test, screen_test
from . import remedies
from .remedies import BUILTIN_CONDITIONS, NONE, START_METRICS
from .study_config import presets
from .study_result import StudyResult


def reduction_claim(claim: str, name: str, remedy: str, finding: str, setting: str, source: str = EXTENSION) -> Claim:
    """A remedy of 2024 reduces the warm-start gap (C16a-e, notebook 11; fixed 2026-12-02, before its runs)."""
    return Claim(claim, "11_remedies_2024", f"{name} reduces the warm-start gap", finding,
                 f"reduction = gap(none) - gap({remedy} in both phases of the warm run{setting}); difference test; "
                 "its gap and the remaining gap's equivalence within the margin beside it", source=source,
                 fixed="2026-12-02")


# The claims this notebook tests (the registry: studies.claim_registry).
PREDICTOR = Claim(
    "C15", "11_remedies_2024", "a plasticity metric at the start of tuning predicts the gap",
    "Not tested by a source: Ash & Adams explain the gap by the imbalance of gradients between fitted and new "
    "data; the plasticity literature proposes dormant units, feature rank, weight norm and more as its "
    "symptoms; Lyle et al. (2023) warn that such metrics are correlates, not causes.",
    "screen over every metric the runs record at the start of tuning (the gradient imbalance |grad on the new "
    "half| / |grad on the pretraining half| and the 12 plasticity metrics): per candidate, Pearson r across "
    "conditions (every remedy, old and new, and both regularisers, whose premise holds; each its mean over "
    "seeds, since runs of one seed share its scratch run, subset and initial weights) between the metric and "
    "the gap, two-sided; Holm over the candidates; supported when one is rejected. Every candidate's test "
    "beside it", source=EXTENSION, unit="r", sesoi=0.5)
# The remedies of 2024, each with its claim: the reduction of the gap it brings.
NEWER = {
    "hare_tortoise": reduction_claim(
        "C16a", "Hare & Tortoise", "hare_tortoise", "Resetting the fast network to its slow EMA copy "
        "keeps the generalisation that warm-starting loses (Lee et al. 2024: warm-started ResNet-18 on "
        "CIFAR-10 and other datasets, without augmentation; numbers not quoted: we cannot read their "
        "tables in our sources).", "", source=LEE),
    "sam": reduction_claim(
        "C16b", "SAM", "sam", "Foret et al. (2021) report better generalisation than the base optimiser "
        "from scratch, not a warm-start result; DASH's code runs SAM on warm-started ResNet-18s. Whether "
        "it reduces the warm-start gap is ours.", ", rho 0.1; scratch plain"),
    "soft_shrink_perturb": reduction_claim(
        "C16c", "soft shrink-and-perturb", "soft_shrink_perturb", "Juliani & Ash (2024) find that soft "
        "shrink-and-perturb, applied every step, mitigates plasticity loss in on-policy reinforcement "
        "learning; the supervised warm-start protocol is ours.",
        ", shrink scaled to the tuning phase by the rule fixed 2026-12-01"),
    "parseval": reduction_claim(
        "C16d", "Parseval regularisation", "parseval", "Chung et al. (2024) find that Parseval "
        "regularisation keeps continual reinforcement learning agents plastic (MLPs); convolutions and "
        "the supervised warm start are ours.", ", lambda 1e-3"),
    "weight_clipping": reduction_claim(
        "C16e", "weight clipping", "weight_clipping", "Elsayed et al. (2024) find that clipping weights "
        "to their initialisation bound keeps networks plastic in continual supervised and reinforcement "
        "learning; the warm-start protocol is ours.", ", zeta 1"),
}
CLAIMS = (PREDICTOR, *NEWER.values())

PRIMARY_BEFORE = "grad_ratio"  # C15's one predictor before its 2026-12-02 definition (claim_history.py)
QUICK_SEEDS = [300, 301, 302]  # never used by another notebook (notebook 10: 0-2 and 200-202)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(remedies.Config):
    # The remedies of notebook 10 and those of 2024 on one protocol: notebook 10's parameters, settings per preset.
    PRESETS = presets(
        # smoke: two new remedies and one old, for the test suite (tests/test_new_remedies.py covers every remedy)
        smoke=dict(pretrain_epochs=2, remedies=["hare_tortoise", "weight_clipping", "l2_init"], speed_target_acc=20.0),
        quick=dict(seeds=QUICK_SEEDS, pretrain_epochs=10, remedies=[*BUILTIN_CONDITIONS, *NEWER],
                   speed_target_acc=90.0),
        paper=dict(pretrain_epochs=350, remedies=[*BUILTIN_CONDITIONS, *NEWER], speed_target_acc=99.0))


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
    earlier = ClaimResult(PREDICTOR, (candidates[START_METRICS.index(PRIMARY_BEFORE)],), premise)
    return ClaimResult(PREDICTOR, (screen_test(candidates),), premise, tuple(candidates), earlier=earlier)


def with_seeds(test: Test, seeds: tuple[int, ...]) -> Test:
    """`test` with the seeds its units were averaged over (a correlation's units are conditions, not seeds)."""
    return dataclasses.replace(test, estimate=dataclasses.replace(test.estimate, seeds=seeds))
