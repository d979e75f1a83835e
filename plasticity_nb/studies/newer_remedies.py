"""11 · The remedies of 2024 beside those of notebook 10, on its protocol, and which metric predicts the gap.
Claims C16a-e (each new remedy, as its source states it; registered 2026-12-02 before any run of them), C15
(redefined 2026-12-02 over every remedy and metric: claim_history.py), and C18a-d (FIRE, 2026; registered
2026-12-06 before any run of it on seeds 650-699, the block set aside for it).

The protocol is notebook 10's (remedies.py): per seed, a warm-started run with a remedy against a scratch run.
Hare & Tortoise, SAM, soft shrink-and-perturb, Parseval regularisation and weight clipping act in both phases of
the warm run (they are meant to keep a network plastic while it learns) and are compared with plain scratch;
their settings are their authors' defaults, or scaled to the budget by the rule each module states
(`Remedy.for_budget`). Its quick seeds (300-302) were never used by another notebook, so C15's new definition
is confirmatory on them.
"""
from __future__ import annotations

import dataclasses

from ..analysis.claims import EXTENSION, FIRE_2026, LEE, Claim, ClaimResult
from ..analysis.estimates import gap_closed
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
# FIRE's claims, registered 2026-12-06 before any run of FIRE on the seeds that decide them (block 650-699), in the
# order they run: our protocol first (C18a, the primary), then FIRE's own (C18b), then FIRE's protocol with
# augmentation (C18c) and with SGD (C18d), the last two only if the settle plan shows they fit in the budget.
FIRE_FINDING = (
    "FIRE's authors report on warm-started ResNet-18 on CIFAR-10 (their protocol: a seeded 10 % then 100 %, equal "
    "steps per phase, Adam 1e-3 re-created with a 10 % warm-up, gradient clipping 0.5, no augmentation) a test "
    "accuracy of 0.829 with FIRE against 0.778 for the plain warm start and 0.848 for a full reset, at tuning epoch "
    "100 (read off their repository's figure: it has no table).")
FIRE_EFFECT = ("reduction = gap(none) - gap(fire: every Conv2d and Linear weight orthogonalised by 10 Newton-Schulz "
               "iterations, once at the start of tuning, in the warm run){protocol}; difference test. Beside it: "
               "the share of the gap FIRE closes, mean reduction / mean gap(none) with Fieller's 95 % interval (an "
               "estimate: an equivalence within +/-1 pp would need about 26-34 seeds), its remaining gap, that "
               "gap's equivalence within the margin, and the share of seeds improved")
FIRE_OURS = Claim("C18a", "11_remedies_2024", "FIRE reduces the warm-start gap", FIRE_FINDING,
                  FIRE_EFFECT.format(protocol=" on our protocol (notebook 10's: half then all, each phase trained "
                                              "to the fit target, Adam 1e-3, no augmentation at quick)"),
                  source=FIRE_2026, fixed="2026-12-06")
FIRE_THEIRS = Claim("C18b", "11_remedies_2024", "FIRE reduces the warm-start gap on its authors' protocol",
                    FIRE_FINDING, FIRE_EFFECT.format(protocol=" on FIRE's warm-start protocol (protocol='fire'; a "
                                                              "fixed, equal number of steps per phase, so the fit "
                                                              "is not by construction and the premise is checked "
                                                              "per arm)"),
                    source=FIRE_2026, fixed="2026-12-06")
FIRE_AUGMENTED = Claim("C18c", "11_remedies_2024", "FIRE reduces the warm-start gap with augmentation",
                       "Not tested by FIRE's authors, whose evidence is Adam without augmentation; ours.",
                       FIRE_EFFECT.format(protocol=" on FIRE's protocol with random crop and flip in both arms"),
                       source=EXTENSION, fixed="2026-12-06")
FIRE_SGD = Claim("C18d", "11_remedies_2024", "FIRE reduces the warm-start gap with SGD",
                 "Not tested by FIRE's authors, whose evidence is Adam without augmentation; ours.",
                 FIRE_EFFECT.format(protocol=" on FIRE's protocol with SGD in place of Adam in both arms"),
                 source=EXTENSION, fixed="2026-12-06")
FIRE_CLAIMS = (FIRE_OURS, FIRE_THEIRS, FIRE_AUGMENTED, FIRE_SGD)
CLAIMS = (PREDICTOR, *NEWER.values(), *FIRE_CLAIMS)

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
    """C16a-e for each new remedy in the sweep, each with the share of seeds it improves beside it; with FIRE among
    them, the one of C18a-d its protocol and setting compute (`fire_claim_of`); C15 across every condition."""
    rule, found = config.premise_rule(), []
    for remedy, claim in NEWER.items():
        if remedy in config.remedies:
            reduces = difference_test(result.gap_change("remedy", NONE, remedy), f"gap(none) - gap({remedy})")
            found.append(ClaimResult(claim, (reduces,), result.reduction_premise(rule, "remedy", NONE, remedy),
                                     (result.gap_test(remedy=remedy),
                                      result.gap_equivalence(config.equivalence_margin, remedy=remedy),
                                      remedies.improvement(result, remedy))))
    if "fire" in config.remedies and fire_claim_of(config) is not None:
        found.append(fire_claim(result, config))
    found.append(predictor_claim(result, config))
    return found


def fire_claim_of(config: Config) -> Claim | None:
    """Which of FIRE's claims a config computes: C18a on our protocol; on FIRE's (`protocol="fire"`), C18b as its
    authors run it (Adam, no augmentation), C18c with augmentation in both arms (`augment=True`), C18d with plain SGD
    in place of Adam in both arms (`optimizer="sgd"`); None for another setting of FIRE's protocol (no claim is
    registered for it)."""
    if config.protocol != "fire":
        return FIRE_OURS
    return {(False, "adam"): FIRE_THEIRS, (True, "adam"): FIRE_AUGMENTED,
            (False, "sgd"): FIRE_SGD}.get((config.augment, config.optimizer))


def fire_claim(result: StudyResult, config: Config) -> ClaimResult:
    """The one of C18a-d that the config's protocol and setting compute (`fire_claim_of`): the reduction FIRE brings,
    with the share of the gap it closes beside it."""
    rule = config.premise_rule()
    reductions = result.gap_change("remedy", NONE, "fire")
    reduces = difference_test(reductions, "gap(none) - gap(fire)")
    return ClaimResult(fire_claim_of(config), (reduces,), result.reduction_premise(rule, "remedy", NONE, "fire"),
                       (gap_closed(reductions, result.gap_series(remedy=NONE)), result.gap_test(remedy="fire"),
                        result.gap_equivalence(config.equivalence_margin, remedy="fire"),
                        remedies.improvement(result, "fire")))


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
