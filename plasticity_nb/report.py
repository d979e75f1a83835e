"""`<out>/report.md`: the claims table, the paper's findings beside ours, and the figures.

The page a researcher pastes into a lab meeting: one row per claim (statement, what the paper found,
our effect with its paired 95% CI and seed count, verdict, agreement), the figures of every notebook
that ran at this preset, and where the run time went.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .claims import CLAIMS, read_claims
from .protocols import StudyResult
from .provenance import git_commit
from .stats import SUPPORTED


def agreement(verdict: str) -> str:
    """Every claim states a finding of the paper, so 'supported' is agreement."""
    if verdict == SUPPORTED:
        return "agrees"
    if verdict == "not supported":
        return "**disagrees** (effect in the opposite direction)"
    return "**not reproduced** (CI includes 0)"


def write_report(out_dir: str | os.PathLike, preset: str, timings: pd.DataFrame | None = None,
                 results: dict[str, StudyResult] | None = None) -> Path:
    """`results` (notebook stem -> its StudyResult) adds each notebook's per-condition table."""
    out_dir = Path(out_dir)
    claims = read_claims(out_dir)
    claims = claims[claims.preset == preset]
    lines = [f"# plasticity_nb report: preset `{preset}`", "",
             f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from `claims.csv`; code {git_commit()}. "
             "Effects are *scratch − warm* test accuracy differences in percentage points (or differences of such "
             "gaps), mean over paired seeds with a two-sided 95 % t interval. The paper's exact numbers are not "
             "known to us: agreement is in direction only.", "",
             "| claim | statement | paper's finding | our effect (pp) | 95 % CI | seeds | verdict | vs the paper |",
             "|---|---|---|---|---|---|---|---|"]
    for row in claims.itertuples():
        claim = CLAIMS[row.claim]
        lines.append(f"| {row.claim} | {row.statement} | {claim.paper} | {row.effect_pp:+.2f} | "
                     f"{row.ci_low_pp:+.2f} to {row.ci_high_pp:+.2f} | {row.n_seeds} | {row.verdict} | "
                     f"{agreement(row.verdict)} |")
    lines += ["", "What each effect measures:", ""]
    lines += [f"- **{c}**: {CLAIMS[c].effect}." for c in claims.claim]
    departures = claims[claims.verdict != SUPPORTED]
    if len(departures):
        lines += ["", "## Where this run departs from the paper", ""]
        for row in departures.itertuples():
            lines.append(f"- **{row.claim}** ({row.notebook}): {row.verdict} at the `{preset}` preset "
                         f"({row.effect_pp:+.2f} pp, CI {row.ci_low_pp:+.2f} to {row.ci_high_pp:+.2f}, "
                         f"{row.n_seeds} seeds) where the paper reports: {CLAIMS[row.claim].paper}")
        if preset != "paper":
            lines += ["", f"The `{preset}` preset trains narrow ResNets on a CIFAR-10 subset for tens of epochs on a "
                      "CPU, far from the paper's 850 epochs of ResNet-18 on all 50,000 images; a departure here is a "
                      "finding about that scale, not a verdict on the paper. The `paper` preset runs the paper's setting."]
    if results:
        lines += ["", "## Per condition", "",
                  "Mean final test and train accuracy (%) of each arm beside every gap: the paper's premise is that "
                  "both arms fit the training data, so read a gap between an under-trained and a fitted arm with care.",
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
    path = out_dir / "report.md"
    tmp = path.with_name(f".report.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def markdown_table(table: pd.DataFrame) -> str:
    rows = [list(map(str, table.columns))] + [[f"{v:g}" if isinstance(v, float) else str(v) for v in r]
                                               for r in table.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                     + ["| " + " | ".join(r) + " |" for r in rows[1:]])
