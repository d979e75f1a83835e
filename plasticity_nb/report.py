"""`<out>/report.md`: the claims table, the paper's findings beside ours, and the figures.

The page a researcher pastes into a lab meeting: one row per claim with the paper's finding, our effect
with its interval, the SD of the paired differences and the power (what effect these seeds can detect,
how many seeds the observed effect needs), whether the premise holds, the verdict, and how it stands
against the paper (agrees / departs / premise not met / extension); then the figures of every notebook
that ran at this preset, and where the run time went.
"""
from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .claims import CLAIMS, PAPER, claims_lock, read_claims
from .files import locked, remove_stale_temporaries, write_atomic
from .protocols import StudyResult
from .provenance import git_commit
from .stats import ALPHA, POWER

TESTS = {"difference": "CI above 0", "equivalence": "TOST within ±{margin:g}", "bound": "below {margin:+g}",
         "correlation": "r's CI above 0"}


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
    return path


def report_lines(out_dir: Path, preset: str, claims: pd.DataFrame, timings: pd.DataFrame | None,
                 results: dict[str, StudyResult] | None) -> list[str]:
    lines = [f"# plasticity_nb report: preset `{preset}`", "",
             f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from `claims.csv`; code {git_commit()}. "
             "Gaps are *scratch − warm* test accuracy in percentage points (positive: warm-starting hurts), paired "
             f"by seed. Each claim gets the test its statement needs, at α = {ALPHA:g}: a difference (\"worse\", "
             "\"reduces\": the 95 % t interval above 0), an equivalence (\"recovers\": two one-sided tests, the 90 % "
             "interval inside ± the margin), or a bound (one-sided). Power: the smallest effect these seeds detect "
             f"with {POWER:.0%} power at the observed SD, and the seeds the observed effect needs for {POWER:.0%} "
             "power (statsmodels). No verdict is given where the premise fails (both arms must fit their training "
             "data). The paper's exact numbers are not known to us: agreement is in direction only. Claims C11-C14 "
             "(remedies) are stated as their cited sources state them; C15's test is a correlation across runs "
             "(its 'seeds' are runs).", ""]
    lines += claims_table(claims)
    lines += ["", "What each claim's effect measures, its other tests, and its premise:", ""]
    for row in claims.itertuples():
        others = f" Other tests: {row.other_tests}." if isinstance(row.other_tests, str) and row.other_tests else ""
        lines.append(f"- **{row.claim}**: {CLAIMS[row.claim].effect}.{others} Premise {row.premise}.")
    lines += settle(claims) + departures(claims, preset)
    if results:
        lines += ["", "## Per condition", "",
                  "Mean test accuracy and train accuracy (%, both over the metric window) of each arm beside every "
                  "gap, and whether the premise holds there.",
                  ""]
        for stem, result in results.items():
            lines += [f"### {stem}", "", markdown_table(result.estimates.round(2)), ""]
    if timings is not None and len(timings):
        lines += ["", "## Run time", "", markdown_table(timings)]
    lines += ["", "## Figures", ""]
    for notebook in dict.fromkeys(claims.notebook):
        figures = sorted((out_dir / "figures").glob(f"{notebook}_{preset}_*.png"))
        if figures:
            lines += [f"### {notebook}", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    return lines


def markdown_table(table: pd.DataFrame) -> str:
    rows = [list(map(str, table.columns))] + [[f"{v:g}" if isinstance(v, float) else str(v) for v in r]
                                               for r in table.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                     + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def claims_table(claims: pd.DataFrame) -> list[str]:
    lines = ["| claim | statement | the source's finding | test | ours: effect | interval | SD | seeds | detectable at "
             "80 % | seeds for 80 % | premise | verdict | vs its source |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in claims.itertuples():
        test = TESTS[row.test].format(margin=row.margin if isinstance(row.margin, float) else math.nan)
        premise = "met" if row.premise.startswith("met") else "**not met**"
        lines.append(f"| {row.claim} | {row.statement} | {CLAIMS[row.claim].paper} | {test} | {row.effect:+.2f} "
                     f"{row.unit} | {row.ci_low:+.2f} to {row.ci_high:+.2f} ({row.ci_level:.0%}) | {row.sd:.2f} | "
                     f"{row.n_seeds} | {row.mde_80:.2f} | {seeds(row.seeds_for_80)} | {premise} | {row.verdict} | "
                     f"{row.vs_paper} |")
    return lines


def settle(claims: pd.DataFrame) -> list[str]:
    """For each inconclusive claim, what these seeds can detect and how many the observed effect needs."""
    unresolved = claims[claims.verdict == "inconclusive"]
    if not len(unresolved):
        return []
    lines = ["", "## What would settle the inconclusive claims", ""]
    for row in unresolved.itertuples():
        lines.append(f"- **{row.claim}**: {row.n_seeds} seeds detect {row.mde_80:.2f} {row.unit} with 80 % power; the "
                     f"observed effect ({row.effect:+.2f} {row.unit}, SD {row.sd:.2f}) needs {seeds(row.seeds_for_80)} "
                     "seeds (`run --seeds N` adds seeds and reuses the stored ones).")
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
        lines += ["", f"The `{preset}` preset trains narrow ResNets on a CIFAR-10 subset for tens of epochs "
                  "(sized for a CPU), far from the paper's 850 epochs of ResNet-18 on all 50,000 images (and from "
                  "Ash & Adams' ResNet-18 on 2/3 of the training set, tested on the other third); a departure here "
                  "is a finding about that scale, not a verdict on the source. The `paper` preset runs the paper's "
                  "setting."]
    return lines


def seeds(value: float) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "–"
    return "> 1,000, or never (an effect at or beyond the margin)" if math.isinf(value) else f"{value:.0f}"
