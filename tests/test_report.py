"""report.md leads with at most two short sentences, one short table and one forest plot of every claim's estimate;
each claim in its own subsection, then the method, follow; the registry's history lives in claims-registry.md. Built
from a small constructed claims table: no run is trained."""
import re
from types import SimpleNamespace

import pandas as pd
import pytest

from plasticity_nb.analysis import claim_history, claims
from plasticity_nb.analysis.claims import ClaimResult
from plasticity_nb.analysis.premises import Premise
from plasticity_nb.analysis.settle import START as SETTLED_START
from plasticity_nb.analysis.stats import bound_test, correlation_test, difference_test, equivalence_test, ratio_test
from plasticity_nb.views import plots
from plasticity_nb.views.report import LEAD_END, LEAD_START, refresh_report, summary_table, write_report

MET = Premise(True, "both fit")


def by_seed(values) -> pd.Series:
    return pd.Series(values, index=pd.Index(range(100, 100 + len(values)), name="seed"))


@pytest.fixture
def out(tmp_path):
    """Claims of four units, a correlation without an estimate (too few conditions) among them."""
    found = [ClaimResult("C1", (difference_test(by_seed([2.0, -1.0, 4.5, 1.0])),), MET),
             ClaimResult("C11", (equivalence_test(by_seed([0.2, -0.1, 0.3, 0.0]), 1.0),), MET),
             ClaimResult("C13a", (bound_test(by_seed([-1.0, 0.5, -0.2, 0.1]), 2.0),), MET),
             ClaimResult("C7c", (bound_test(by_seed([0.0, 1.0, -1.0, 2.0]), 1.0),), MET),
             ClaimResult("C9", (ratio_test(by_seed([2.0, 3.0, 2.5, 4.0]), by_seed([1.0, 1.0, 1.5, 1.0])),), MET),
             ClaimResult("C15", (correlation_test([1.0, 2.0], [1.0, 3.0]),), MET)]
    claims.record_claims(tmp_path, "quick", found, SimpleNamespace(smallest_effect=2.0, dataset="cifar10"))
    return tmp_path


def test_the_report_leads_with_two_sentences_the_short_table_and_the_forest_plot(out):
    text = write_report(out, "quick").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    lead = " ".join(lines[1:first_table]).replace(LEAD_START, "").strip()
    assert 1 <= len(re.findall(r"[.!?](?:\s|$)", lead)) <= 2 and len(lead.split()) <= 40, lead
    assert not any(line.startswith("#") for line in lines[1:first_table])  # nothing between the title and it
    header = [cell.strip() for cell in lines[first_table].strip("|").split("|")]
    assert len(header) <= 6 and header[:2] == ["claim", "estimate [interval]"]
    rows = [line for line in lines[first_table + 2:] if line.startswith("|")][:6]
    assert rows[0].startswith("| C1: ") and "| +1.6 pp [" in rows[0]  # estimate, interval and unit first
    figure = next(line for line in lines[first_table:] if line.startswith("!["))
    assert figure.endswith("(figures/claims_quick_forest.png)")
    assert (out / "figures" / "claims_quick_forest.png").exists()
    assert lines.index(figure) < lines.index(LEAD_END) < lines.index("## Each claim in detail") < lines.index(
        "## Method")
    assert lines[-1].startswith("Generated ")  # commit and date last, not in what a reader reads first
    first_read = "\n".join(lines[:lines.index(LEAD_END)])
    assert not re.search(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b|20\d\d-\d\d-\d\d", first_read)  # no hash, no date


@pytest.mark.parametrize("preset", ["smoke", "quick", "paper"])
def test_the_findings_table_is_the_first_table_on_every_preset_and_the_registry_has_its_own_page(out, preset):
    claims.record_claims(out, preset, [ClaimResult("C1", (difference_test(by_seed([2.0, -1.0, 4.5, 1.0])),), MET)],
                         SimpleNamespace(smallest_effect=2.0, dataset="cifar10"))
    lines = write_report(out, preset).read_text().splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert lines[first_table] == "| claim | estimate [interval] | seeds | verdict | vs its source |"
    assert [line for line in lines if line.startswith("## ")][:2] == ["## Each claim in detail", "## Method"]
    assert "## Changes to the claims registry" not in lines
    assert sum("[claims-registry.md](claims-registry.md)" in line for line in lines) == 1  # one line links to it
    history = (out / "claims-registry.md").read_text()
    assert history.startswith("# Changes to the claims registry")
    assert history.count("\n- **") == len(claim_history.CHANGES)
    assert not list(out.glob(".claims-registry.md.*.tmp"))  # written atomically: no temporary left


def test_a_look_refreshes_the_lead_and_leaves_the_detail_in_place(out):
    """refresh_report rewrites only the lead between its markers; the settled section's empty markers wait above
    the provenance line, so that a look's section lands there and not at the page's end."""
    path = write_report(out, "quick")
    page = path.read_text()
    assert SETTLED_START in page and page.index(SETTLED_START) < page.index("\nGenerated ")
    before = page.split(LEAD_END)[1]
    claims.record_claims(out, "quick", [ClaimResult("C1", (difference_test(by_seed([5.0, 6.0, 4.5, 5.5])),), MET)])
    refresh_report(out, "quick")
    after = path.read_text()
    assert after.split(LEAD_END)[1] == before and "+5.2 pp" in after.split(LEAD_END)[0]


def test_each_claim_has_its_own_subsection_with_every_number_of_its_row(out):
    text = write_report(out, "quick").read_text()
    rows = claims.read_claims(out).set_index("claim")
    headings = [line for line in text.splitlines() if line.startswith("### C")]
    assert [h.split(":")[0][4:] for h in headings] == ["C1", "C7c", "C9", "C11", "C13a", "C15"]  # registry order
    c1 = text[text.index("### C1: "):text.index("### C7c: ")]
    row = rows.loc["C1"]
    for number in (f"{row.effect:+.2f} pp", f"{row.ci_low:+.2f} to {row.ci_high:+.2f} (95 %)", f"SD {row.sd:.2f}",
                   "4 seeds", f"{row.mde_80:.2f} pp detectable", f"power {100 * row.power_at_sesoi:.0f} %",
                   f"seeds for 80 %: {row.seeds_for_sesoi:.0f}"):
        assert number in c1, (number, c1)
    assert c1.index("**Estimate:**") < c1.index("**Verdict:**")  # the estimate before the verdict's words
    assert "**Test:** CI above 0" in c1 and "**Premise:** met" in c1 and "**Definition:**" in c1
    c11 = text[text.index("### C11: "):text.index("### C13a: ")]
    assert "**Test:** TOST within ±1." in c11 and "(90 %)" in c11
    assert "| C1 |" not in text  # no table of sixteen columns


def test_the_short_table_says_each_verdict_in_words_after_its_estimate(out):
    table = summary_table(claims.read_claims(out))
    assert len(table.columns) <= 6
    assert table.columns.get_loc("estimate [interval]") < table.columns.get_loc("verdict")
    assert [c.split(":")[0] for c in table.claim] == ["C1", "C7c", "C9", "C11", "C13a", "C15"]  # registry order
    words = dict(zip(table.claim.str.split(":").str[0], table.verdict))
    assert words["C11"] == "equivalent within ±1 pp" and words["C13a"] == "holds"
    assert words["C1"].startswith("not settled: about ") and words["C1"].endswith(" seeds at the smallest effect of "
                                                                                  "interest")
    estimates = dict(zip(table.claim.str.split(":").str[0], table["estimate [interval]"]))
    assert estimates["C11"].endswith("(90 %)") and estimates["C15"] == "–"
    assert table.seeds.tolist()[-1] == "2 conditions"


def test_the_forest_plot_draws_one_row_per_claim_with_a_finite_estimate(out):
    rows = claims.read_claims(out)
    figure = plots.claims_forest(rows)
    labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert sorted(label.split()[0] for label in labels) == sorted(["C1", "C11", "C13a", "C7c", "C9"])  # C15: none
    assert [t.get_text().split()[0] for t in figure.axes[0].get_yticklabels()] == ["C1", "C11", "C13a"]  # pp first
    assert len(figure.axes) == 3  # pp, then epochs and % in their own panels


def test_the_explorer_leads_with_the_same_table_and_plot(out):
    from plasticity_nb.views.explorer import claims_overview

    figure, table = claims_overview(out, "quick")
    assert table.equals(summary_table(claims.read_claims(out)))  # one function for the report, notebooks, explorer
    assert len([t for ax in figure.axes for t in ax.get_yticklabels()]) == 5
    figure, table = claims_overview(out, "paper")
    assert figure is None and "no claim is recorded at preset paper" in table.status[0]


def test_the_report_gives_each_remedys_share_of_seeds_improved_across_its_notebooks(out):
    from plasticity_nb.studies import remedies
    from tests.test_study_claims import newer_result

    gaps = {"none": 5.0, "shrink_perturb": 1.0, "l2_init": 7.0}
    ten = newer_result(remedies.Config.from_preset("quick", seeds=[0, 1, 2]), lambda r: gaps.get(r, 4.0))
    text = write_report(out, "quick", results={"10_remedies": ten}).read_text()
    section = text[text.index("## Remedies: the share of seeds each improves"):]
    assert re.search(r"\| shrink_perturb \| 1\.00 \[0\.29, 1\.00\] \| 3 \| 3 \| 0 \|", section)  # 3 of 3: exact
    assert re.search(r"\| l2_init \| 0\.00 \[0\.00, 0\.71\] \| 0 \| 3 \|", section)


def swept(values: list, seeds: int = 3) -> SimpleNamespace:
    """A study result with one condition `x` at `values`: gaps 1, 2, 3 points per value."""
    gaps = pd.DataFrame([{"x": v, "seed": s, "gap_pp": float(s + 1)} for v in values for s in range(seeds)])
    estimates = pd.DataFrame([{"x": v, "effect_pp": 2.0, "ci_low_pp": -0.5, "ci_high_pp": 4.5} for v in values])
    return SimpleNamespace(gaps=gaps, estimates=estimates)


def test_a_categorical_sweep_gets_error_bars_and_no_line_between_its_values():
    figure = plots.sweep_plot(swept(["none", "shrink_perturb", "weight_decay"]), x="x")
    ax = figure.axes[0]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "-" and len(line.get_xdata()) == 3]
    assert len(ax.containers) == 1  # the means' error bars
    assert [c for c in ax.collections if len(c.get_offsets()) == 9]  # the seeds' dots: 3 seeds x 3 remedies
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "shrink_perturb", "weight_decay"]
    assert ax.get_xticklabels()[0].get_rotation() == 30  # long names would run into each other
    assert "bars: 95% CI" in ax.get_title()


def test_a_numeric_sweep_keeps_its_line_and_band():
    figure = plots.sweep_plot(swept([1, 2, 4]), x="x", log_x=True)
    ax = figure.axes[0]
    assert [line for line in ax.get_lines() if list(line.get_ydata()) == [2.0, 2.0, 2.0]]  # the mean's line
    assert not ax.containers and "band: 95% CI" in ax.get_title()


def test_a_series_with_one_value_gets_an_error_bar_beside_the_bands():
    result = swept([1, 2, 4])
    result.estimates["hue"], result.gaps["hue"] = "a", "a"
    lone = swept([2])
    lone.estimates["hue"], lone.gaps["hue"] = "b", "b"
    both = SimpleNamespace(estimates=pd.concat([result.estimates, lone.estimates]),
                           gaps=pd.concat([result.gaps, lone.gaps]))
    ax = plots.sweep_plot(both, x="x", hue="hue", log_x=True).axes[0]
    assert len(ax.containers) == 1  # series b's interval, which a band of one value would not show
    assert "band and bars: 95% CI" in ax.get_title()
