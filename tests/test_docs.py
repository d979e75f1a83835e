"""The documentation: its generated pages in step with their sources, the site built strictly, every document the
code cites present, and the front page's findings equal to the committed settled results."""
import importlib.util
import re

import pytest

from plasticity_nb.core.paths import project_root
from plasticity_nb.views.report import estimate_text
from tools import build_docs, docs_pages

ROOT = project_root()
CITING = ("plasticity_nb", "tests", "tools", "benchmarks", "notebooks")


def test_the_generated_pages_are_in_step_with_their_sources():
    assert docs_pages.stale_pages() == [], "run: python -m tools.docs_pages"


def test_the_front_pages_lead_with_the_committed_settled_results():
    settled = docs_pages.settled_rows()
    assert {"C1", "C2", "C4", "C18a", "C18b"} <= set(settled.claim)
    for page in docs_pages.FRONT_PAGES:
        text = page.read_text()
        table = text[text.index(docs_pages.FINDINGS_START):text.index(docs_pages.FINDINGS_END)]
        for row in settled.itertuples():
            assert f"| {row.claim}: {row.statement} | {estimate_text(row)} | {row.n_seeds} | {row.verdict_words} |" \
                   in table, (page.name, row.claim)


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert lines[0] == "# plasticity_nb"
    commands = [line.split()[:2] for line in lines[:10] if line.startswith("make ")]
    assert commands == [["make", "run"], ["make", "test"]]
    assert lines.index("## What it found") < 25  # the findings come right after the two commands


def cited_documents() -> set[str]:
    """docs/... paths named in the code, the tests, the tools, the benchmarks and the notebooks."""
    found = set()
    for folder in CITING:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb") and ".venv" not in path.parts:
                found |= set(re.findall(r"docs/[\w./-]*\w\.(?:md|png)", path.read_text(errors="replace")))
                if re.search(r"study-protocols(?:\.md)? ?§", path.read_text(errors="replace")):
                    found.add("docs/study-protocols.md")
    return found


def test_every_document_the_code_cites_exists():
    cited = cited_documents()
    assert "docs/study-protocols.md" in cited and "docs/sequential-design.md" in cited
    assert [doc for doc in sorted(cited) if not (ROOT / doc).exists()] == []


NO_MKDOCS = "MkDocs is not installed: pip install -e '.[docs]'"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason=NO_MKDOCS)
def test_the_site_builds_strictly(tmp_path):
    built = build_docs.build_site(tmp_path / "site")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    for page in ("index.html", "studies/01_warm_start_gap.html", "reference/training.html",
                 "notebooks/01_warm_start_gap.html"):
        assert (tmp_path / "site" / page).exists(), page
