"""The explorer without a browser, on a real store: study 10 at smoke with one of its preset's three remedies
stored (as a store looks while a long sweep is still training), beside study 01. What the index offers, what
each view draws and tabulates, and what the widgets show as they are changed (tests/test_browser.py drives
them in JupyterLab)."""
import pytest

import plasticity_nb as pnb
from plasticity_nb.studies import newer_remedies, remedies, warm_start_gap
from plasticity_nb.views import remedy_views
from plasticity_nb.views.explorer import Explorer, StoreIndex, explorer, render
from tests.smoke_store import copy_runs, plan_keys

pytestmark = [pytest.mark.slow(seconds=30), pytest.mark.smoke_store]
REMEDY = "shrink_perturb"
NEWER = "hare_tortoise"  # one of notebook 11's remedies of 2024


@pytest.fixture(scope="module")
def store(tmp_path_factory, cifar):
    """The three studies' runs from the session's smoke store; run_study then loads them and writes its results."""
    out = tmp_path_factory.mktemp("explorer-store")
    configs = [remedies.Config.from_preset("smoke", remedies=[REMEDY]), warm_start_gap.Config.from_preset("smoke"),
               newer_remedies.Config.from_preset("smoke", remedies=[NEWER])]
    copy_runs(out, [key for config in configs for key in plan_keys(config, cifar.data_id)])
    for config in configs:
        pnb.run_study(config, out_dir=out, progress=False)
    return out


@pytest.fixture
def index(store):
    return StoreIndex(store)


def gap_rows(table):
    """The table's rows per condition (the claim rows, if any, follow them)."""
    return table[table.claim == ""]


def legend(grid) -> set[str]:
    return {text.get_text() for text in grid.legend.texts}


def test_the_index_offers_study_10_with_the_remedies_whose_runs_are_stored(index):
    assert {("01", "smoke"), ("10", "smoke")} <= set(index.available())
    assert tuple(remedies.Config.from_preset("smoke").remedies) != (REMEDY,)  # the preset's others are missing
    assert index.offers("10", "smoke") == (REMEDY,)
    assert index.offers("01", "smoke") == ()


def test_study_11_offers_the_remedies_of_2024_and_every_metric_they_record(index):
    assert index.offers("11", "smoke") == (NEWER,)  # the plain pair is study 10's runs, the same keys
    _, table = render(index, "11", "smoke", "gap", "test_acc", picked=(NEWER,))
    assert list(gap_rows(table).remedy) == ["none", NEWER]
    every, _ = render(index, "11", "smoke", "plasticity metrics", remedy_views.ALL_METRICS, picked=(NEWER,))
    titles = [ax.get_title() for ax in every.axes.flat]
    assert {"active_units", "feature_norm", "feature_variance", "zero_grad_share", "churn"} <= set(titles)


def test_picked_remedies_are_the_gaps_shown_beside_the_plain_warm_start(index):
    alone, alone_table = render(index, "10", "smoke", "gap", "test_acc", picked=())
    both, both_table = render(index, "10", "smoke", "gap", "test_acc", picked=(REMEDY,))
    assert list(gap_rows(alone_table).remedy) == ["none"]
    assert list(gap_rows(both_table).remedy) == ["none", REMEDY]
    ticks = lambda figure: [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks(alone) == ["none"] and ticks(both) == ["none", REMEDY]
    expected = remedies.remedy_table(index.result("10", "smoke"), index.config("10", "smoke"))
    rows = gap_rows(both_table)
    assert list(rows.equivalence) == list(expected.equivalence)  # notebook 10's verdicts, not a second copy
    assert list(rows.premise) == list(expected.premise)
    assert rows.effect_pp.tolist() == pytest.approx(expected.gap_pp.round(3).tolist())
    assert rows.ci_low_pp.tolist() == pytest.approx(expected.ci_low.round(3).tolist())


def test_the_metrics_view_draws_the_picked_remedies_against_plain_scratch(index):
    one, _ = render(index, "10", "smoke", "plasticity metrics", "effective_rank", picked=(REMEDY,))
    assert [ax.get_title() for ax in one.axes.flat] == ["effective_rank"]
    assert legend(one) == {"none", REMEDY, "scratch"}
    assert all(len(line.get_xdata()) > 1 for line in one.axes.flat[0].get_lines()[:3])  # curves, not points
    every, _ = render(index, "10", "smoke", "plasticity metrics", remedy_views.ALL_METRICS, picked=())
    assert [ax.get_title() for ax in every.axes.flat] == list(remedies.METRICS)
    assert legend(every) == {"none", "scratch"}


def test_other_studies_keep_their_views_and_have_no_metrics_to_show(index):
    figure, table = render(index, "01", "smoke", "plasticity metrics", remedy_views.ALL_METRICS)
    assert figure is None and "records no plasticity metrics" in table.status[0]
    figure, table = render(index, "01", "smoke", "gap", "test_acc")
    assert figure is not None and len(gap_rows(table)) == 1 and "equivalence" not in table


def test_the_widgets_pick_remedies_for_study_10_and_hide_the_picker_elsewhere(index):
    widgets = Explorer(index, index.available())
    assert widgets.study.value == "01" and widgets.picker.layout.display == "none"
    widgets.study.value = "10"
    assert widgets.picker.options == (REMEDY,) and widgets.picker.value == (REMEDY,)  # all picked at first
    assert widgets.picker.layout.display != "none" and widgets.picker.description == "remedy"
    assert list(gap_rows(widgets.shown[1]).remedy) == ["none", REMEDY]
    figure = widgets.shown[0]
    widgets.picker.value = ()
    assert list(gap_rows(widgets.shown[1]).remedy) == ["none"] and widgets.shown[0] != figure
    widgets.view.value = "plasticity metrics"
    assert widgets.metric.options == remedy_views.METRIC_CHOICES and widgets.shown[0] is not None
    widgets.study.value = "01"
    assert widgets.picker.layout.display == "none"
    assert widgets.shown[0] is None and "no plasticity metrics" in widgets.shown[1].status[0]


def test_the_static_explorer_renders_the_first_study_without_widgets(store, capsys):
    assert explorer(store, interactive=False) is None
    assert "Image" in capsys.readouterr().out  # displayed (as text outside a notebook): a figure, then the table


def test_the_claims_of_the_picked_preset_lead_the_page(store, index, capsys):
    """Once a notebook recorded its claims, the widgets and the static page lead with report.md's short table and
    forest plot; before, they say that none is recorded."""
    from plasticity_nb.views.report import summary_table

    assert "no claim is recorded at preset smoke" in Explorer(index, index.available()).overview[1].status[0]
    config = warm_start_gap.Config.from_preset("smoke")
    pnb.record_claims(store, "smoke", warm_start_gap.claims(index.result("01", "smoke"), config), config)
    try:
        widgets = Explorer(index, index.available())
        png, table = widgets.overview
        assert png is not None and table.equals(summary_table(pnb.read_claims(store)))
        assert widgets.claims_table.value.startswith("<table") and widgets.claims_figure.value == png
        capsys.readouterr()  # outside a notebook the widgets' outputs print too: only the static page's count
        assert explorer(store, interactive=False) is None
        printed = capsys.readouterr().out  # displayed as text outside a notebook: the table, then the figures
        assert printed.index("C1: warm-started") < printed.index("Image")
    finally:
        (store / "claims.csv").unlink()
