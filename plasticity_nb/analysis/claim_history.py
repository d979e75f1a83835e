"""Every change made to a claim's definition or to a test procedure, dated, with its reason and whether it came
after the claim's data were seen: the history half of the claims registry (the definitions: each study module's
CLAIMS, assembled by studies.claim_registry).

Three kinds, kept apart:
- a *definition* change (what a claim measures: its slice, metric, threshold or budget). Made after its data were
  seen (`seen`: preset -> the seeds whose results had been looked at), it is post hoc on those seeds: the earlier
  definition's verdict stays primary there (where the runs can still compute it) and the new one is reported
  beside it; the new one is primary only on seeds not yet seen. A change chosen blind to every effect (on train
  accuracy or run time alone) that made new runs records no seen seeds, and says why.
- a claim *added* after its data were seen: it can never "agree" on those seeds.
- a *procedure* correction (a test that was wrong for its statement): applies to every result, old data
  included, and is disclosed here.
Found by reading the whole git history (2026-12-01 audit); commits are those of this repository.
"""
from __future__ import annotations

import dataclasses

from .premises import TARGET_PROTOCOL

DEFINITION, ADDED, PROCEDURE = "definition change", "added after its data", "procedure"
QUICK_CPU_SEEDS = (0, 1, 2)  # every quick result seen before 2026-11-26 (README, benchmarks/RESULTS.md)


@dataclasses.dataclass(frozen=True)
class Change:
    claim: str  # a claim id, or "all"
    date: str  # when it was made (author date)
    commit: str  # the commit that made it ("" for this registry's own corrections)
    kind: str  # DEFINITION | ADDED | PROCEDURE
    before: str
    after: str
    reason: str  # the reason given (commit message or code), and how it stands
    seen: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)  # preset -> seeds seen before it
    # the runs it concerns: "" every result; TARGET_PROTOCOL only results of runs trained to a target (a fixed budget's
    # results, stored before or chosen since, keep the definitions they were made under)
    protocol: str = ""


QUICK_SEEN = {"quick": QUICK_CPU_SEEDS}
# Every seed any quick or gpu result had shown by 2026-12-06 (the seed blocks of the developers' guide): what the
# changes of that day, made after reading them all, are post hoc on.
SEEN_BY_2026_12_06 = {"quick": (*range(8), *range(100, 108), 200, 201, 202, 300, 301, 302, 400, 401, 402),
                      "gpu": (*range(3), *range(500, 508))}
EFFECT_BLIND = ("chosen on train accuracy alone (benchmarks/premise_pilot.py); every run it concerns was new, so no "
                "effect under it had been seen; the results it replaced had been seen, which this entry discloses")
CHANGES: tuple[Change, ...] = (
    Change("all", "2026-11-25", "badf806", PROCEDURE, "precision bf16 everywhere", "precision auto: bf16 where the "
           "CPU runs it natively, fp32 elsewhere (AVX2)", "bf16 is emulated and 9x slower on AVX2; a run's precision "
           "is part of its key, so no stored run changed"),
    Change("all", "2026-11-25", "a5df8a4", PROCEDURE, "every claim a 95 % CI by its sign, no premise",
           "a premise gate (both arms fit), and the test the statement needs: difference, TOST within a margin, "
           "one-sided bound", "a CI that includes 0 is absence of evidence, not equivalence, and a gap between an "
           "unfitted and a fitted arm is a budget artefact; motivated openly by C3's unfitted SGD arms (88-91 %)"),
    Change("all", "2026-11-25", "eed1079", DEFINITION, "quick tuning budget 15 epochs (08: 15, 09: 12)",
           "25 epochs (08: 40, 09: 25; 03: 25 per optimiser)", "scratch Adam fitted only 93 % over epochs 11-15; "
           + EFFECT_BLIND),
    Change("all", "2026-11-25", "4f36217", DEFINITION, "quick premise floor 97 %", "95 %",
           "Adam at a constant 1e-3 spikes, so notebook 01's warm arm averaged 96.8 % over its window; made while C1's "
           "effect under the new budget was visible (C1's entry), before any other claim's result under it"),
    Change("C1", "2026-11-25", "4f36217", DEFINITION, "quick premise floor 97 %", "95 %",
           "as above; C1's own runs prompted it, so on them the 97 % floor stays primary", QUICK_SEEN),
    Change("C2", "2026-11-25", "a5df8a4", DEFINITION, "gap after few_epochs = 3 at quick (sweep 1, 3, 10); "
           "statement 'after only a few pretraining epochs'", "few_epochs = 5 (5 added to the sweep); statement "
           "'after only 5-10'", "inside the paper's 5-10; not in the commit message, and made after the quick table "
           "showed +2.0 pp at 3 epochs (inconclusive) and +5.2 at 10", QUICK_SEEN),
    Change("C2", "2026-11-25", "a5df8a4", DEFINITION, "few_epochs = 10 at paper", "5",
           "as at quick; no paper result had been seen"),
    Change("C3", "2026-11-25", "a5df8a4", DEFINITION, "one tuning budget for every optimiser",
           "a budget per optimiser (quick 25 each, after eed1079)", "SGD's scratch arm fitted only 88-91 %; "
           + EFFECT_BLIND),
    Change("C5a", "2026-11-25", "a5df8a4", DEFINITION, "gap(most stages) - gap(fewest) averaged over every ratio r",
           "the same at r = 1 only (class-balanced stages)", "to isolate the stage count; made after the quick table "
           "showed +0.04 pp (inconclusive); the commit did not say it came after", QUICK_SEEN),
    Change("C5b", "2026-11-25", "a5df8a4", DEFINITION, "gap(smallest r) - gap(largest r) averaged over stage counts",
           "the same at shift_stages (4) only", "to hold the stage count fixed; made after the quick table showed "
           "-1.52 pp (CI -2.27 to -0.78, not supported), which the new slice made inconclusive; undisclosed until "
           "now", QUICK_SEEN),
    Change("C6", "2026-11-25", "a5df8a4", DEFINITION, "quick widths 4 and 8 (base 8)", "8 and 16, so the grid has a "
           "width above the base", "'bigger models do not fix it' needs a wider model; it also dropped the width-4 "
           "cells whose intervals included 0; width-4 runs are no longer planned, so the earlier definition cannot "
           "be computed", QUICK_SEEN),
    Change("C7a", "2026-11-25", "a5df8a4", DEFINITION, "C7: gap removed by resetting the top 4-5 groups above 0 and "
           "the remaining gap's CI reaching 0", "remaining gap within +/- 1 pp at quick (TOST)",
           "the TOST replaces a test that took absence of evidence for equivalence (a procedure correction), but its "
           "quick margin was chosen after remaining gaps of -1.1 to +1.1 pp had been shown; no margin existed before, "
           "so no earlier verdict can be computed", QUICK_SEEN),
    Change("C7b", "2026-11-25", "a5df8a4", ADDED, "-", "remaining gap after resetting the top 1-2 groups above 0",
           "whether its numbers had been seen is unclear (the per-condition table was in an uncommitted report.md); "
           "taken as seen", QUICK_SEEN),
    Change("C7c", "2026-11-25", "a5df8a4", ADDED, "-", "speed-up of keeping the bottom groups below speed_margin",
           "notebook 07's tuning-speed table ran in the batch before; unclear whether read; taken as seen",
           QUICK_SEEN),
    Change("C8a", "2026-11-25", "a5df8a4", DEFINITION, "C8: gap(1x) - gap(10x) above 0 ('shrinks the gap')",
           "that, and the remaining gap(10x) above 0 ('reduces but does not close'); source: extension",
           "the paper says 'does not close'; stricter, made after the quick table showed gaps +5.2 at 1x and -0.0 at "
           "10x", QUICK_SEEN),
    Change("C8b", "2026-11-25", "a5df8a4", ADDED, "-", "the paper's comparison, scratch at 1x", "the per-arm "
           "accuracies at 1x and 10x were in an uncommitted report.md; unclear whether read; taken as seen",
           QUICK_SEEN),
    Change("C9", "2026-11-25", "77f20ec", DEFINITION, "notebook 09 at 15 tuning epochs", "12 (then 25 by eed1079)",
           "run time; it weakened C9 and was reported; " + EFFECT_BLIND),
    Change("C9", "2026-11-25", "a5df8a4", DEFINITION, "no premise; Hessian probes with running BatchNorm statistics",
           "both arms fitted and at matched probe loss (within loss_match); BatchNorm statistics re-estimated on the "
           "probe set", "sharpness compares only at matched loss, and the running statistics describe the training "
           "batches, not the probe set; made after C9 had been seen supported (+88.5 %) and inconclusive; the earlier "
           "definition is computed without the matched-loss premise (the running statistics are not stored)",
           QUICK_SEEN),
    Change("C10", "2026-11-25", "a5df8a4", DEFINITION, "primary metric tr(Sigma), the per-example gradient variance",
           "the noise scale tr(Sigma)/|G|^2, tr(Sigma) beside it", "tr(Sigma) alone grows with the loss; but the quick "
           "table had shown tr(Sigma) at -810 % and the noise scale pointing the claimed way (53 vs 406), and the "
           "switch went to that metric: undisclosed until now", QUICK_SEEN),
    Change("C12b", "2026-11-26", "a87a93c", ADDED, "-", "warm with DASH - scratch above 0 (Shin et al.'s own "
           "statement)", "added after C12 came out 'not equivalent' because DASH beat scratch; disclosed then",
           QUICK_SEEN),
    Change("all", "2026-11-26", "8012651", PROCEDURE, "seeds for 80 % power by statsmodels' solver (NaN for large "
           "effects)", "by counting seeds up", "a reported column, no verdict; superseded below"),
    Change("all", "2026-12-01", "", PROCEDURE, "p = 0 or 1 where every difference is equal; the t test on ties",
           "the exact sign-flip test where the differences have fewer than 3 distinct values (from 3 seeds: no "
           "verdict)", "zero variance gave certainty from 3 numbers"),
    Change("all", "2026-12-01", "", PROCEDURE, "seeds needed for 80 % power at the observed effect",
           "power and seeds at the claim's smallest effect of interest (the preset's smallest_effect, the margin for "
           "an equivalence or a bound), at the SD seen", "power at the observed effect is a transform of the t "
           "statistic (from 3 seeds anywhere from 3 to 81 when 10 are needed)"),
    Change("all", "2026-12-01", "", PROCEDURE, "TOST and bound power from the nearer margin",
           "TOST power from both one-sided tests (exact integral over the SD)", "at mean -0.01, SD 1.93, margin 1, "
           "'26 seeds' gave 64 % power, not 80 %"),
    Change("all", "2026-12-01", "", PROCEDURE, "a claim over conditions or tests fails if any one fails, uncorrected",
           "fails only if one fails after Holm's correction; holds only if each holds (intersection-union, joint "
           "power stated)", "uncorrected, 4 conditions gave 10 % false alarms and 16 gave 33 %"),
    Change("all", "2026-12-01", "", PROCEDURE, "the premise a hard threshold on the seeds' mean fit",
           "met when each arm's one-sided 95 % lower bound reaches the floor, not met when its upper bound is below, "
           "otherwise 'premise uncertain' (likewise the arms' difference)", "C2 and C5a failed the threshold with 3 "
           "seeds and passed it with 8; fixed before any new run"),
    Change("all", "2026-12-01", "", PROCEDURE, "inconclusive read as 'departs'; missing pairs dropped silently",
           "inconclusive is 'not resolved'; missing pairs are counted in claims.csv", "absence of evidence is not a "
           "departure"),
    Change("C7a", "2026-12-01", "", PROCEDURE, "TOST of the mean remaining gap over k = 3 and 2",
           "TOST at each depth, both needed", "a mean over depths lets +2 and -2 pass as 'recovers'"),
    Change("C7b", "2026-12-01", "", PROCEDURE, "the mean remaining gap over k = 6 and 5",
           "a difference test at each depth, both needed", "as for C7a"),
    Change("C7c", "2026-12-01", "", PROCEDURE, "the speed-up's mean over k = 3 and 2", "a bound at each depth",
           "as for C7a"),
    Change("C9", "2026-12-01", "", PROCEDURE, "per-seed 100 (warm / scratch - 1) averaged in percent",
           "log ratios tested, shown as the geometric mean in percent; a seed with a value <= 0 (a Hutchinson trace "
           "can be) is a missing pair", "intervals reached -571 %, an impossible ratio"),
    Change("C10", "2026-12-01", "", PROCEDURE, "per-seed 100 (1 - warm / scratch) averaged in percent",
           "log ratios, as for C9", "intervals reached +104 %, an impossible value"),
    Change("C13a", "2026-12-01", "", PROCEDURE, "remaining gap with the remedy above 0 ('does not close')",
           "the reduction gap(none) - gap(remedy) below smallest_effect ('does little')", "a remedy closing 80 % of "
           "the gap still 'agreed' with 'does little'; the bound is the preset's smallest effect of interest, fixed "
           "by a rule blind to C13's results"),
    Change("C13b", "2026-12-01", "", PROCEDURE, "as C13a", "as C13a", "as C13a"),
    Change("C13c", "2026-12-01", "", PROCEDURE, "as C13a", "as C13a", "as C13a"),
    Change("C12", "2026-12-01", "bcd226c", DEFINITION, "DASH over the earlier phases' data in random batches of "
           "the run's batch size, train-mode BatchNorm", "as its authors call it: every phase's new data so far, the "
           "new phase's last, one batch per chunk, eval mode", "the authors' code (DASH main.py:54, 68-69; "
           "train_utils.py:184-185; metric_utils.py:161), found by porting it; made after C12's quick seeds had been "
           "seen, so those seeds' verdict is not resolved (the old definition is no longer trained) and the new one "
           "is confirmatory on fresh seeds only", QUICK_SEEN),
    Change("C12b", "2026-12-01", "bcd226c", DEFINITION, "DASH as C12's entry says", "as C12's entry says",
           "as C12's entry", QUICK_SEEN),
    Change("C13a", "2026-12-01", "bcd226c", DEFINITION, "L2 Init lambda * sum ||theta - theta0||^2 over every "
           "parameter, BatchNorm's included", "the authors' 0.5 * lambda over conv and linear weights and biases "
           "(the convention of their lambda grid)", "the authors' code (L2_Init agents/agents.py:282-297): the old "
           "penalty was twice theirs at the same lambda; made after C13a's quick seeds had been seen (it was "
           "supported there)", QUICK_SEEN),
    Change("C13c", "2026-12-01", "bcd226c", DEFINITION, "continual backprop's fresh weights from the layer's default "
           "init (std 0.058 at fan-in 100)", "as lop/algos/gnt.py:74-75 draws them (std 0.141)", "the authors' "
           "code, found by porting it; made after C13c's quick seeds had been seen", QUICK_SEEN),
    Change("C15", "2026-12-01", "bcd226c", DEFINITION, "secondary predictor start_dormant_redo over each block's "
           "first conv", "over every post-ReLU layer but the output, as ReDo's code logs it (the old set is "
           "dormant_redo_units)", "the papers' layers (dopamine labs/redo weight_recyclers.py:261-301); the primary "
           "predictor (grad_ratio) is unchanged, but every notebook 10 run is new (the metric settings' version is "
           "in their keys)", QUICK_SEEN),
    Change("C15", "2026-12-01", "", PROCEDURE, "Pearson r over runs as if independent",
           "over conditions' means (runs of one seed share its scratch run)", "simulated: 13 % false positives under "
           "no relation with runs as units"),
    Change("C15", "2026-12-02", "a4f09a9", DEFINITION, "notebook 10: r(grad_ratio, gap) over the conditions of "
           "notebook 10 whose premise holds, Fisher-z CI above 0; three other start-of-tuning metrics beside it, "
           "uncorrected",
           "notebook 11: a screen of every metric the runs record at the start of tuning (13 candidates), r across "
           "every remedy's and regulariser's condition whose premise holds, two-sided, Holm over the candidates",
           "issue 23: the remedies of 2024 add conditions and metrics, and a predictor picked among several needs "
           "its multiplicity counted; made after notebook 10's quick C15 results on seeds 0-2 and 200-202 had been "
           "seen, so it is confirmatory only on seeds never used by either (notebook 11's quick seeds 300-302)",
           {"quick": (*QUICK_CPU_SEEDS, 200, 201, 202)}),
    Change("all", "2026-12-06", "bee7e7c", DEFINITION, "a fixed tuning budget per study, optimiser or cell (25 "
           "epochs in notebook 01), the metric and the premise read over its last last_k epochs",
           "every tuning phase on the full subset trains until an epoch's train accuracy reaches fit_target (99 %, Ash "
           "& Adams' target) within a cap, then last_k (5) epochs more, the window the metric and the premise read; "
           "the cap per cell by benchmarks/fit_pilot.py's rule on seeds 900-903 (train accuracy only), fixed before "
           "the pilot ran. Blending (04: its fade spans the whole budget) and the probes (09: at fixed epochs) keep "
           "fixed budgets; 02's pretraining length stays the variable, its tuning trains to the target",
           "issue 35: at 25 epochs the scratch arm sat at 96.9-97.6 % against a 95 % floor in every store, so no "
           "claim could pass its premise reliably; made after every seed block's results had been read, so on those "
           "seeds its rows are not resolved (the new runs cannot compute the old definition) and it is confirmatory "
           "only on seeds never used (the main job's 600-649)", SEEN_BY_2026_12_06, TARGET_PROTOCOL),
    Change("all", "2026-12-06", "17ff574", DEFINITION, "the premise: each arm's mean fit over the seeds above a floor "
           "by a one-sided 95 % t bound, the arms' difference within +/- a bound the same way (premise uncertain "
           "between)",
           "per run (RunFitRule): a seed is flagged when a run hit its cap below the target or diverged, or when the "
           "arm whose fitting more could fake the claim fits more than premise_arm_difference (2 points at quick) "
           "more than the other (premises.py lists each claim type's direction); the claim is void when more than a "
           "third of its seeds are flagged (first a fifth: changed the same day after the pilot's train accuracies, "
           "before any claim ran under it); intention-to-treat primary, per-protocol (unflagged seeds) and the gap "
           "at equal fit beside it",
           "issue 35: each run's fit is an exact property of it, yet the gate ran a low-powered population test "
           "(two arms 1 SD above the floor passed it with chance 0.10 at 3 seeds), and its symmetric check failed C1's "
           "confirmation because warm fitted more, which can only hide a gap; 12 of 33 uncertain premises failed "
           "only that check. Made after reading those results, so post hoc on every seen seed",
           SEEN_BY_2026_12_06, TARGET_PROTOCOL),
    Change("C17a", "2026-12-06", "130d149", DEFINITION, "trend bound: minus the slope of the gap on log2(size) "
           "below 0.5 pp per doubling", "the slope with its 95 % interval, an estimate without a verdict (the bound "
           "beside it)", "issue 35: the bound had 9-11 % power at 3 seeds; made after quick seeds 400-402 were seen, "
           "where the bound stays primary", {"quick": (400, 401, 402)}),
    Change("C17b", "2026-12-06", "130d149", DEFINITION, "as C17a, on log2(width)", "as C17a", "as C17a",
           {"quick": (400, 401, 402)}),
    Change("all", "2026-12-06", "1345fe4", PROCEDURE, "a pooled-variance (moderated) t interval beside each "
           "condition's own where the conditions' variances agreed", "each condition's own t interval only",
           "issue 35: it decided no verdict, pooled in 1 of 7 committed tables, and where it pooled its worst-condition"
           " coverage fell to 0.78-0.85 with a strong seed effect and a shared scratch arm (benchmarks/RESULTS.md)"),
)
