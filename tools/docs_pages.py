"""The documentation's generated parts: one page per study, and the findings table of the README and the site's
front page, written from the notebooks, the claims registry and the committed results.

    python -m tools.docs_pages          # write them
    python -m tools.docs_pages --check  # exit 1, naming what is out of step, if any differs (the tests run this)
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import pandas as pd

from plasticity_nb.analysis.claims import EXTENSION, PAPER, read_claims, the_verdicts
from plasticity_nb.core.paths import project_root
from plasticity_nb.studies import STUDIES
from plasticity_nb.views.report import estimate_text, markdown_table, summary_table

ROOT = project_root()
STUDY_PAGES = ROOT / "docs" / "studies"
FINDINGS_START, FINDINGS_END = "<!-- findings: start -->", "<!-- findings: end -->"
FRONT_PAGES = (ROOT / "README.md", ROOT / "docs" / "index.md")

# Committed results, newest first: a claim's committed result is its row in the first of these that has it
RESULTS = (
    ("benchmarks/fire-aug-cpu-epyc-2026-12-06", "notebook 11, FIRE with augmentation: seeds 650-664, settled"),
    ("benchmarks/fire-theirs-cpu-epyc-2026-12-06",
     "notebook 11, FIRE on its authors' protocol: seeds 650-664, settled"),
    ("benchmarks/fire-ours-cpu-epyc-2026-12-06", "notebook 11 with FIRE on our protocol: seeds 650-664, settled"),
    ("benchmarks/confirm-main-cpu-epyc-2026-12-06", "the main job's settle stage: seeds 600-614, trained to a target"),
    ("benchmarks/scale-quick-cpu-epyc-2026-12-03", "notebook 12 at quick, seeds 400-402, fixed budget"),
    ("benchmarks/quick-cpu-epyc-2026-12-02-nb11", "notebook 11 at quick, seeds 300-302, fixed budget"),
    ("benchmarks/quick-cpu-epyc-2026-12-01-nb10-fresh", "notebook 10 at quick, seeds 200-202, fixed budget"),
    ("benchmarks/confirm-quick-cpu-epyc-2026-12-01", "C1, C2, C4 settled on seeds 100-107, fixed budget"),
    ("benchmarks/quick-cpu-epyc-2026-12-01", "every notebook at quick, seeds 0-2, fixed budget"),
)
# Results run for some claims only: their other rows stand on a part of the arms (FIRE's runs hold none and fire)
ANSWERS_ONLY = {"benchmarks/fire-ours-cpu-epyc-2026-12-06": ("C18a",),
                "benchmarks/fire-theirs-cpu-epyc-2026-12-06": ("C18b",),
                "benchmarks/fire-aug-cpu-epyc-2026-12-06": ("C18c",)}
# The front pages' findings table: the settled claims of the main job, then FIRE's
SETTLED_RESULTS = ("benchmarks/confirm-main-cpu-epyc-2026-12-06", "benchmarks/fire-ours-cpu-epyc-2026-12-06",
                   "benchmarks/fire-theirs-cpu-epyc-2026-12-06")
SOURCES = {PAPER: "Berariu et al. 2021", EXTENSION: "ours (an extension: no source claims it)"}


@functools.lru_cache(maxsize=1)  # every study page reads it: the committed claims.csv files once a process
def committed_rows() -> pd.DataFrame:
    """Each claim's committed verdict row (settled where one was), from the first of RESULTS that has it."""
    found = [the_verdicts(answered(folder)).assign(results=folder, results_what=what) for folder, what in RESULTS]
    rows = pd.concat(found, ignore_index=True)
    return rows[rows.preset == "quick"].drop_duplicates("claim")


def answered(folder: str) -> pd.DataFrame:
    """The claims.csv rows of a committed results folder, only of the claims it was run for (ANSWERS_ONLY)."""
    rows = read_claims(ROOT / folder)
    return rows[rows.claim.isin(ANSWERS_ONLY[folder])] if folder in ANSWERS_ONLY else rows


def settled_rows() -> pd.DataFrame:
    """The settled rows of SETTLED_RESULTS, in its order: the front pages' findings."""
    rows = pd.concat([answered(folder) for folder in SETTLED_RESULTS], ignore_index=True)
    return rows[rows.stage == "settled"]


def findings_block() -> str:
    """The settled claims at a glance: estimate, interval and seeds before the verdict in words."""
    table = summary_table(settled_rows())
    return "\n".join([FINDINGS_START, markdown_table(table), FINDINGS_END])


def with_findings(text: str) -> str:
    start, end = text.index(FINDINGS_START), text.index(FINDINGS_END) + len(FINDINGS_END)
    return text[:start] + findings_block() + text[end:]


def lists_set_apart(lines: list[str]) -> list[str]:
    """`lines` with a blank line before each list: Jupyter renders a list right under a paragraph, Python-Markdown
    (MkDocs) runs it into the paragraph."""
    out: list[str] = []
    for line in lines:
        if line.startswith("- ") and out and out[-1].strip() and not out[-1].startswith(("- ", "  ")):
            out.append("")
        out.append(line)
    return out


def study_page(study) -> str:
    """A study's protocol (its notebook's first cell), its claims with their committed results, and links."""
    notebook = json.loads(study.path.read_text())
    intro = "".join(notebook["cells"][0]["source"]).strip().splitlines()
    lines = [intro[0], "", *lists_set_apart("\n".join(intro[1:]).strip().splitlines()), "",
             f"[The notebook, rendered](../notebooks/{study.notebook}) · train and run it: "
             f"`python -m plasticity_nb run --only {study.id}`", "", "## Its claims", ""]
    committed = committed_rows().set_index("claim")
    for claim in study.module.CLAIMS:  # declared by the study itself
        lines += claim_section(claim, committed.loc[claim.id] if claim.id in committed.index else None)
    if not study.module.CLAIMS:
        lines += ["This study makes no claim: it measures and shows.", ""]
    return "\n".join(lines).rstrip() + "\n"


def claim_section(claim, row) -> list[str]:
    source = SOURCES.get(claim.source, claim.source)
    lines = [f"### {claim.id}: {claim.statement}", "", f"- **Its source** ({source}): {claim.paper}",
             f"- **What is measured**: {claim.effect}."]
    if row is None:
        return lines + ["- **Committed result**: none yet.", ""]
    result = (f"{estimate_text(row)}, {row.n_seeds} seeds: {row.verdict_words or row.verdict}; "
              f"{row.vs_paper} ({'settled' if row.stage == 'settled' else 'fixed n'})")
    return lines + [f"- **Committed result**: {result}. From `{row.results}`: {row.results_what}.", ""]


def expected() -> dict[Path, str]:
    pages = {STUDY_PAGES / f"{Path(s.notebook).stem}.md": study_page(s) for s in STUDIES.values()}
    for path in FRONT_PAGES:
        pages[path] = with_findings(path.read_text())
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of step")
    args = parser.parse_args()
    stale = stale_pages()
    if args.check:
        if stale:
            sys.exit("out of step with the notebooks, the claims registry or the committed results: " +
                     ", ".join(str(p.relative_to(ROOT)) for p in stale) + " (run: python -m tools.docs_pages)")
        return
    main_write()


def stale_pages() -> list[Path]:
    return [path for path, text in expected().items() if not path.exists() or path.read_text() != text]


def main_write() -> None:
    stale = stale_pages()
    STUDY_PAGES.mkdir(parents=True, exist_ok=True)
    for path, text in expected().items():
        path.write_text(text)
    print(f"wrote {len(stale)} generated page(s)" if stale else "every generated page was in step")


if __name__ == "__main__":
    main()
