"""`<out>/report.md`: the claims at a glance, each claim in detail, the method, and the figures.

The page a researcher pastes into a lab meeting, read top down. It leads with two short sentences, one short table
(`summary_table`: each claim in words, its estimate with interval and unit, its seeds, its verdict in words, how it
stands against its source; the notebooks and the explorer show the same table) and one forest plot of every
estimate (plots.claims_forest). Below them, each claim in its own subsection (`claim_details`): the paper's
finding, our effect with its interval and SD, the test, the verdict, the plan (what effect these seeds can detect,
the power at the claim's smallest effect of interest and the seeds it needs), the premise, whether its definition
was fixed before its data (and the post-hoc verdict beside it where not) and its other tests. Then the method in
short sentences; after a `run --settle`, its sequential design and each claim's frozen verdict; what would settle
the unresolved claims; the per-condition tables, where the run time went and the figures of every notebook that
ran at this preset. The registry's history (every change to the claims registry) is long and rarely read, so it
lives in its own file, `<out>/claims-registry.md`, to which the method links. The provenance line comes last.
"""
from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..analysis.claim_history import CHANGES, PROCEDURE
from ..analysis.claims import (
    CLAIMS,
    FIXED_N,
    MIN_PLANNING_N,
    PAPER,
    PLANNING_SD,
    SETTLED,
    UNIT_LEVEL,
    claims_lock,
    in_registry_order,
    planning_sd,
    read_claims,
    registry_hash,
    the_verdicts,
)
from ..analysis.settle import END as SETTLED_END
from ..analysis.settle import START as SETTLED_START
from ..analysis.settle import section as settled_section
from ..analysis.settle import triage_section
from ..analysis.stats import ALPHA, POWER, T_MODEL
from ..core.files import locked, remove_stale_temporaries, write_atomic
from ..execution.provenance import git_commit
from ..studies.study_result import StudyResult

LEAD_START, LEAD_END = "<!-- the verdicts: start -->", "<!-- the verdicts: end -->"  # refresh_report's markers
REGISTRY_PAGE = "claims-registry.md"  # beside report.md, which links to it
STAGES = {SETTLED: "Settled sequentially (the verdict)", FIXED_N: "Fixed n (exploratory where a settled row exists)"}

TESTS = {"difference": "CI above 0", "equivalence": "TOST within ±{margin:g}", "bound": "below {margin:+g}",
         "correlation": "r's CI above 0", "screen": "some r != 0, Holm over {margin:g} candidates",
         "trend": "shrink per doubling below {margin:+g}", "estimate": "an estimate, no test", "share": "a share"}


def write_report(out_dir: str | os.PathLike, preset: str, timings: pd.DataFrame | None = None,
                 results: dict[str, StudyResult] | None = None) -> Path:
    """`results` (notebook stem -> its StudyResult) adds each notebook's per-condition table."""
    out_dir = Path(out_dir)
    with locked(claims_lock(out_dir)):  # the page matches claims.csv as it is, not as another batch left it
        claims = read_claims(out_dir)
        path = out_dir / "report.md"
        remove_stale_temporaries(path)
        write_atomic(path, "\n".join(report_lines(out_dir, preset, claims[claims.preset == preset], timings,
                                                  results)) + "\n")
        write_registry_page(out_dir)  # under the same lock: the page it links to is the registry it names
    return path


def write_registry_page(out_dir: Path) -> Path:
    """`<out>/claims-registry.md`: the registry's whole history, out of report.md so that the page stays short."""
    path = out_dir / REGISTRY_PAGE
    remove_stale_temporaries(path)
    write_atomic(path, "\n".join(registry_lines()) + "\n")
    return path


def report_lines(out_dir: Path, preset: str, claims: pd.DataFrame, timings: pd.DataFrame | None,
                 results: dict[str, StudyResult] | None) -> list[str]:
    """The page top down: the findings, each claim in detail, the method, then what a reader looks up."""
    claims = in_registry_order(claims)
    # the lead shows *the* verdicts (a settled one wherever it exists); the detail below every row of both stages
    verdicts = in_registry_order(the_verdicts(claims))
    lines = [f"# plasticity_nb report: preset `{preset}`", "", LEAD_START, *lead(out_dir, preset, verdicts), LEAD_END,
             "", *claim_details(claims), "", *method_lines()]
    # the markers always: refresh_report fills them after a look, in place, not below the provenance line
    lines += settled_section(out_dir, preset) or ["", SETTLED_START, SETTLED_END]
    lines += triage_section(out_dir, preset)  # which other claims this machine can settle, from the main job's plan
    lines += settle(claims) + departures(claims, preset) + per_condition(results)
    if timings is not None and len(timings):
        lines += ["", "## Run time", "", markdown_table(timings)]
    return lines + figures(out_dir, preset, claims) + ["", provenance()]


def method_lines() -> list[str]:
    """How a claim is tested, one idea a line, and where the registry's history is."""
    power = f"{100 * POWER:.0f} %"
    return ["## Method", "", *(f"- {line}" for line in [
        "Gaps are *scratch − warm* test accuracy in percentage points, paired by seed.",
        "A positive gap means warm-starting hurts.",
        f"Each claim gets the test its statement needs, at α = {ALPHA:g}.",
        "A difference (\"worse\", \"reduces\") holds when its 95 % t interval lies above 0.",
        "An equivalence (\"recovers\") holds when its 90 % interval lies inside ± the margin (two one-sided tests).",
        "A bound is tested one-sided.",
        "Where the differences tie (fewer than 3 distinct values, or none spread), the exact sign-flip test replaces "
        "the t model.",
        "From 3 seeds the sign-flip test gives no verdict.",
        "Ratios (C9, C10) are tested on the log scale and shown as geometric-mean percentages.",
        "A claim over several conditions or tests holds only if each holds (no correction; the joint power is "
        "stated).",
        "It fails if one fails after Holm's correction.",
        f"The plan gives the smallest effect these seeds detect with {power} power at the SD seen.",
        "It gives the power at the claim's smallest effect of interest (the margin for an equivalence or a bound), "
        f"and the seeds that effect needs for {power}.",
        f"Plans use an SD already seen on {MIN_PLANNING_N} or more seeds ({planning_sds()}), else the test's own "
        f"where it has {MIN_PLANNING_N} seeds or more, else none.",
        "No plan uses the observed effect, nor the SD of 3 seeds.",
        "The premise: both arms fit their training data.",
        "No verdict is given where the premise fails or cannot be told from these seeds.",
        "The paper's exact numbers are not known to us, so agreement is in direction only.",
        "Claims C11-C14 (remedies) are stated as their cited sources state them.",
        "C15's test is a correlation across conditions.",
        f"Every change to the claims registry, and why, is in [{REGISTRY_PAGE}]({REGISTRY_PAGE}).",
    ])]


def per_condition(results: dict[str, StudyResult] | None) -> list[str]:
    """Each notebook's per-condition table, and the remedies' shares of seeds improved; nothing without results."""
    if not results:
        return []
    lines = ["", "## Per condition", "",
             "Mean test accuracy and train accuracy (%, both over the metric window) of each arm beside every gap, "
             "and whether the premise holds there.", ""]
    for stem, result in results.items():
        lines += [f"### {stem}", "", markdown_table(result.estimates.round(2)), ""]
    return lines + improvement_section(results)


def figures(out_dir: Path, preset: str, claims: pd.DataFrame) -> list[str]:
    """Every figure of every notebook that ran at this preset, by notebook."""
    lines = ["", "## Figures"]
    for notebook in dict.fromkeys(claims.notebook):
        shown = sorted((out_dir / "figures").glob(f"{notebook}_{preset}_*.png"))
        if shown:
            lines += ["", f"### {notebook}", ""] + [f"![{f.stem}](figures/{f.name})" for f in shown]
    return lines


def provenance() -> str:
    """The page's last line: when, from what and by which code and registry it was made (not for a first read)."""
    return (f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from `claims.csv`; code {git_commit()}; "
            f"claims registry `{registry_hash()}` ([its history]({REGISTRY_PAGE})).")


def refresh_report(out_dir: Path, preset: str) -> None:
    """Bring the page's lead and its settled section up to claims.csv and the ledger as they are now, the rest of
    the page as the batch last wrote it: `run --settle` calls it after each look's decision, which comes after the
    look's notebooks (and their report) ran."""
    path = Path(out_dir) / "report.md"
    with locked(claims_lock(out_dir)):
        if not path.exists():
            return
        claims = read_claims(out_dir)
        verdicts = in_registry_order(the_verdicts(claims[claims.preset == preset]))
        text = replaced(path.read_text(), LEAD_START, LEAD_END, lead(Path(out_dir), preset, verdicts))
        settled = settled_section(out_dir, preset)
        if settled:  # ["", start, ..., end]: what lies between the markers
            text = replaced(text, SETTLED_START, SETTLED_END, settled[2:-1])
        write_atomic(path, text)


def replaced(text: str, start: str, end: str, lines: list[str]) -> str:
    """`text` with what lies between the markers `start` and `end` replaced by `lines` (appended, between new
    markers, where the page has none yet)."""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + "\n".join([start, *lines, end]) + rest.split(end, 1)[1]
    return text.rstrip("\n") + "\n\n" + "\n".join([start, *lines, end]) + "\n"


def improvement_section(results: dict[str, StudyResult]) -> list[str]:
    """Per remedy, across the notebooks it ran in: the share of (condition, seed) pairs whose gap it reduced, with
    its exact interval (studies/remedies.improvement_table); nothing when no remedy study is among `results`."""
    from ..studies.remedies import improvement_table  # the remedy study imports torch: only a report with it pays

    table = improvement_table(results)
    if not len(table):
        return []
    shown = table.assign(share=[f"{r.share:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" for r in table.itertuples()])
    return ["", "## Remedies: the share of seeds each improves", "",
            "Each remedy's reduction of the gap, gap(none) - gap(remedy), paired per seed: the share of seeds where it "
            "is above 0, with its exact (Clopper-Pearson) 95 % interval, summed over the notebooks it ran in (a "
            "seed's runs counted once).", "",
            markdown_table(shown[["remedy", "share", "improved", "trials", "ties", "notebooks"]]), ""]


def lead(out_dir: Path, preset: str, claims: pd.DataFrame) -> list[str]:
    """The top of the page: two short sentences, the short table and the forest plot; estimates before verdict
    words."""
    if not len(claims):
        return [f"No claim has been recorded at the `{preset}` preset yet."]
    datasets = ", ".join(sorted(set(claims.dataset)))
    lines = [f"Claims tested at the `{preset}` preset on {datasets}. Each row gives our estimate with its interval "
             "(95 %, or 90 % where marked) and seeds, then the verdict in words.", "",
             markdown_table(summary_table(claims))]
    figure = forest_figure(out_dir, preset, claims)
    return lines + (["", f"![Every claim's estimate and interval; zero and each smallest effect of interest marked]"
                          f"(figures/{figure.name})"] if figure else [])


def summary_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims at a glance, in registry order: the claim in words, the estimate with its interval and unit, the
    seeds, the verdict in words (claims.csv's `verdict_words`) and how it stands against its source. report.md,
    the notebooks and the explorer lead with it; five columns, so that a reader takes a row in at once."""
    rows = in_registry_order(claims)
    return pd.DataFrame({"claim": [f"{r.claim}: {r.statement}" for r in rows.itertuples()],
                         "estimate [interval]": [estimate_text(r) for r in rows.itertuples()],
                         "seeds": [seeds_used(r) for r in rows.itertuples()],
                         "verdict": list(rows.verdict_words), "vs its source": list(rows.vs_paper)})


def estimate_text(row) -> str:
    """'+2.4 pp [0.3, 4.5]': a claims.csv row's estimate, interval and unit, the interval's level where not 95 %."""
    if not math.isfinite(row.effect):
        return "–"
    digits = 2 if row.unit == "r" else 1  # a correlation lives in [-1, 1]
    ends = (row.ci_low, row.ci_high)
    interval = f"[{ends[0]:.{digits}f}, {ends[1]:.{digits}f}]" if all(map(math.isfinite, ends)) else "[no interval]"
    level = "" if round(100 * row.ci_level) == 95 else f" ({100 * row.ci_level:.0f} %)"
    return f"{row.effect:+.{digits}f} {row.unit} {interval}{level}"


def seeds_used(row) -> str:
    """The n behind an estimate: seeds, or conditions for a correlation; missing pairs (diverged runs) named."""
    missing = f" ({row.n_missing:.0f} missing)" if row.n_missing else ""
    return f"{row.n_seeds}{' conditions' if row.test in UNIT_LEVEL else ''}{missing}"


def forest_figure(out_dir: Path, preset: str, claims: pd.DataFrame) -> Path | None:
    """plots.claims_forest saved as `figures/claims_<preset>_forest.png` (and .pdf); None with nothing to draw."""
    # imported here: seaborn and pyplot take ~1 s, and the batch's CLI imports this module to write its report
    import matplotlib.pyplot as plt

    from . import plots

    if not len(plots.forest_rows(claims)):
        return None
    figure = plots.claims_forest(claims, title=f"Every claim's estimate and interval (preset {preset})")
    try:
        return plots.save_figure(figure, out_dir, f"claims_{preset}_forest")[0]
    finally:
        plt.close(figure)  # a batch writes the report after every notebook: figures must not pile up


def planning_sds() -> str:
    return ", ".join(f"{preset} {sd:g} {unit}" for (preset, unit), sd in PLANNING_SD.items())


def markdown_table(table: pd.DataFrame) -> str:
    rows = [list(map(str, table.columns))] + [[f"{v:g}" if isinstance(v, float) else str(v) for v in r]
                                               for r in table.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                     + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def claim_details(claims: pd.DataFrame) -> list[str]:
    """Each claim in its own subsection, in registry order: every number of its rows as short labelled lines (a
    table of sixteen columns was too wide to read)."""
    if not len(claims):
        return []
    lines = ["## Each claim in detail"]
    for name, rows in claims.groupby("claim", sort=False):
        lines += ["", *claim_detail(name, rows)]
    return lines


def claim_detail(name: str, rows: pd.DataFrame) -> list[str]:
    """One claim: what its source found and what its effect measures, then each stage's row, the settled one first
    (*the* verdict where it exists)."""
    claim = CLAIMS[name]
    lines = [f"### {name}: {rows.statement.iloc[0]}", "", f"- **The source's finding:** {claim.paper}",
             f"- **Effect:** {ended(claim.effect)}"]
    for row in rows.sort_values("stage", key=lambda stage: stage.ne(SETTLED), kind="stable").itertuples():
        lines += (["", f"{STAGES.get(row.stage, row.stage)}:", ""] if len(rows) > 1 else []) + row_detail(row)
    return lines


def row_detail(row) -> list[str]:
    """A claims.csv row as lines, the estimate before the verdict: nothing it holds is left out."""
    lines = [f"- **Estimate:** {estimate_line(row)}", f"- **Test:** {tested_by(row)}",
             f"- **Verdict:** {row.verdict}; against its source: {row.vs_paper}."]
    if isinstance(row.post_hoc, str) and row.post_hoc:
        lines.append(f"- **Post-hoc verdict:** {row.post_hoc}")
    if row.mde_80 == row.mde_80 or row.sesoi == row.sesoi:  # a settled row is planned by its design, not here
        lines.append(f"- **Plan:** {plan_line(row)}")
    lines += [f"- **Premise:** {ended(premise_line(row.premise))}", f"- **Definition:** {ended(row.definition)}"]
    if isinstance(row.other_tests, str) and row.other_tests:
        label = "Decision" if row.stage == SETTLED else "Other tests"  # a settled row's is why it stopped
        lines += [f"- **{label}:**"] + [f"  - {test}" for test in row.other_tests.split(" | ")]
    return lines


def ended(text: str) -> str:
    """`text` with one full stop at its end, whether claims.csv or the registry ended it with one or not."""
    return str(text).rstrip(". ") + "."


def estimate_line(row) -> str:
    """'+3.61 pp, interval +2.68 to +4.54 (95 %), SD 1.67, 15 seeds': the SD left out where none was measured."""
    if not row.effect == row.effect:
        return f"none ({n_text(row)})."
    sd = f", SD {row.sd:.2f}" if row.sd == row.sd else ""
    return (f"{row.effect:+.2f} {row.unit}, interval {row.ci_low:+.2f} to {row.ci_high:+.2f} "
            f"({100 * row.ci_level:.0f} %){sd}, {n_text(row)}.")


def n_text(row) -> str:
    """'15 seeds (1 missing)', or conditions for a correlation."""
    missing = f" ({row.n_missing:.0f} missing)" if row.n_missing else ""
    return f"{row.n_seeds} {units(row)}{missing}"


def units(row) -> str:
    """What a claim's n counts: seeds, or conditions where its test is across conditions (a correlation)."""
    return "conditions" if row.test in UNIT_LEVEL else "seeds"


def tested_by(row) -> str:
    """The test the statement needs, and how it was computed where not by the t model."""
    test = TESTS[row.test].format(margin=row.margin if isinstance(row.margin, float) else math.nan)
    return test + (f" ({row.method})" if isinstance(row.method, str) and row.method != T_MODEL else "") + "."


def plan_line(row) -> str:
    """What these seeds detect, and the power and seeds at the claim's smallest effect of interest."""
    power = f"{100 * POWER:.0f} %"
    detect = (f"{row.mde_80:.2f} {row.unit} detectable with {power} power" if row.mde_80 == row.mde_80 else
              "no detectable effect computed")
    if not row.sesoi == row.sesoi:
        return f"{detect}; no smallest effect of interest."
    return (f"{detect}; at the smallest effect of interest ({row.sesoi:g} {row.unit}): power "
            f"{percent(row.power_at_sesoi)}, {units(row)} for {power}: {seeds(row.seeds_for_sesoi)}.")


def premise_line(premise: str) -> str:
    """claims.csv's premise with its state in bold where it is not met (no verdict is given then)."""
    state, _, rest = str(premise).partition(":")
    return str(premise) if state == "met" else f"**{state}**:{rest}"


def percent(value: float) -> str:
    return "–" if not value == value else f"{100 * value:.0f} %"


def settle(claims: pd.DataFrame) -> list[str]:
    """For each unresolved claim, what these seeds can detect and the seeds its smallest effect of interest needs;
    and why adding them after looking is not error-controlled."""
    unresolved = claims[claims.vs_paper.eq("not resolved") | claims.verdict.eq("inconclusive")]
    if not len(unresolved):
        return []
    lines = ["", "## What would settle the unresolved claims", ""]
    for row in unresolved.itertuples():
        sd = planning_sd(row.preset, row.unit, row.sd, row.n_seeds)
        target = (f"its smallest effect of interest ({row.sesoi:g} {row.unit}) needs {seeds(row.seeds_for_sesoi)} "
                  f"seeds for 80 % power at the planning SD {sd:.2f}" if row.sesoi == row.sesoi and sd == sd else
                  f"no SD from {MIN_PLANNING_N} or more seeds plans its seeds" if row.sesoi == row.sesoi else
                  "it has no planned effect")
        lines.append(f"- **{row.claim}**: {row.n_seeds} seeds detect {row.mde_80:.2f} {row.unit} with 80 % power; "
                     f"{target}.")
    lines += ["", "Adding seeds with `run --seeds N` after looking at these verdicts and testing again is **not "
              "error-controlled**. Every look is another chance of a false positive (about 12 % instead of 5 % with "
              "looks at 3, 5 and 8 seeds). Plan N from the smallest effect of interest before looking. Or settle the "
              "claims with a sequential design whose boundaries allow for the looks (`run --settle 4,8,12,16`: "
              "README, \"Settling claims sequentially\")."]
    return lines


def registry_lines() -> list[str]:
    """claims-registry.md: the registry's hash, how a change is applied, then every change in the order made."""
    return ["# Changes to the claims registry", "",
            f"Claims registry `{registry_hash()}`: the hash of every definition and every change below.", "",
            "A definition changed after its data were seen keeps the earlier definition's verdict primary on the "
            "seeds that were seen. The new one is reported beside it as post hoc. It is primary only on seeds not "
            "seen before the change. Procedure corrections fix a test that was wrong for its statement. They apply "
            "to every result, old data included.", "", *registry_changes()]


def registry_changes() -> list[str]:
    """Every change to the claims registry, one line each: definitions changed after their data were seen, claims
    added after their data, and procedure corrections (which apply to every result, old data included)."""
    lines = []
    for change in CHANGES:
        seen = "; ".join(f"{preset}: seeds {', '.join(map(str, s))}" for preset, s in change.seen.items())
        when = f"after seeing data ({seen})" if seen else "before any of its data were seen"
        kind = "procedure correction" if change.kind == PROCEDURE else change.kind
        lines.append(f"- **{change.claim}**, {change.date} ({change.commit or 'this registry'}), {kind}, {when}: "
                     f"{change.before} → {change.after}. Why: {change.reason}")
    return lines


def departures(claims: pd.DataFrame, preset: str) -> list[str]:
    rows = claims[claims.vs_paper.isin(["departs", "premise not met"])]
    if not len(rows):
        return []
    lines = ["", "## Where this run departs from its sources", ""]
    for row in rows.itertuples():
        source = CLAIMS[row.claim].source
        lines.append(f"- **{row.claim}** ({row.notebook}): {row.verdict} at the `{preset}` preset "
                     f"({row.effect:+.2f} {row.unit}, interval {row.ci_low:+.2f} to {row.ci_high:+.2f}, "
                     f"{row.n_seeds} seeds) where {'the paper' if source == PAPER else source} reports: "
                     f"{CLAIMS[row.claim].paper}")
    if preset != "paper":
        lines += ["", f"The `{preset}` preset trains narrow ResNets on a CIFAR-10 subset for tens of epochs, sized "
                  "for a CPU. The paper trains ResNet-18 on all 50,000 images for 850 epochs (Ash & Adams: on 2/3 "
                  "of the training set, tested on the other third). A departure here is a finding about that scale, "
                  "not a verdict on the source. The `paper` preset runs the paper's setting."]
    return lines


def seeds(value: float) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "–"
    return "> 1,000, or never (an effect at or beyond the margin)" if math.isinf(value) else f"{value:.0f}"
