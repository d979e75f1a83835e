"""An interactive explorer of the run store (ipywidgets) for every study notebook's results.

Pick a study, preset, view and metric: warm vs scratch curves, gaps with their 95% CI, curvature and
noise probes, the learning-rate mitigation (study 08, or 09 for its probes), and, where a study offers conditions
to pick (its config's `offers()`: studies 10, 11 and 13 their remedies), those to compare with the rest (the plain warm
start: their gaps and verdicts, and their plasticity metric curves). Callbacks only read the store and plot: nothing
is trained here. A study shows once all of its runs are in the store (run its notebook, or `python -m plasticity_nb
run`, first); a study that offers conditions once the runs of at least one of them and of the rest are, offering
those stored. With `interactive=False` (papermill, batch) the
default view is rendered once, statically. A bundle (execution/bundle.py: committed runs without weights) opens
the same way, under a banner saying whose runs they are, each study at the parameters its notebook ran with.
"""
from __future__ import annotations

import collections
import functools
import html
import io
import json
import os
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Image, display

from ..analysis.claims import read_claims, the_verdicts
from ..core.paths import is_bundle, project_root, resolve_out_dir
from ..execution import bundle
from ..execution.store import RunStore
from ..measures.probe_settings import PROBE_METRICS
from ..studies import PRESETS, STUDIES
from ..studies.study_config import StudyConfig
from ..studies.study_result import StudyResult
from ..studies.study_runs import load_study
from . import plots, remedy_views
from .report import summary_table

COMMITTED = "results/quick"  # the checkout's bundle of the committed runs (docs/bundle.md)
VIEWS = ("gap", "learning curves", "curvature & noise", "plasticity metrics")
HISTORY_METRICS = ("test_acc", "train_acc", "test_loss", "train_loss")
METRICS = {"curvature & noise": PROBE_METRICS, "plasticity metrics": remedy_views.METRIC_CHOICES}


class Unavailable(Exception):
    """A view that has nothing to draw for this study; the message says why."""


class StoreIndex:
    """What the run store holds, and each study's results rebuilt from it (cached, read-only)."""

    def __init__(self, out_dir: str | os.PathLike | None = None):
        self.out_dir = resolve_out_dir(out_dir)
        self.store = RunStore(self.out_dir, read_only=True)  # a reader: damaged runs are reported and skipped
        keys = self.store.stored_keys()
        self.keys = set(keys)
        ids = (json.loads((self.store.root / k / "config.json").read_text())["data_id"] for k in keys)
        self.data_ids = [d for d, _ in collections.Counter(ids).most_common()]
        self._results: dict[tuple[str, str], StudyResult | None] = {}
        # Both depend only on the keys read above, and every widget callback asks for them again.
        self.config = functools.cache(self.config)
        self.coverage = functools.cache(self.coverage)

    def config(self, study_id: str, preset: str, data_id: str | None = None):
        """The study's config at this preset's defaults (a bundle's: as its notebook ran); one that offers conditions
        narrowed to those whose runs are all stored (for `data_id`; None: the data the store covers best)."""
        study = STUDIES[study_id]
        config = (bundle.study_config(study.config, study.stem, preset, self.out_dir) if self.store.bundle
                  else study.config.from_preset(preset))
        if not config.offers():
            return config
        data_id = self.coverage(study_id, preset)[2] if data_id is None else data_id
        return stored_offers(config, data_id, self.keys)

    def coverage(self, study_id: str, preset: str) -> tuple[int, int, str]:
        """(runs stored, runs needed, data id) for the study at this preset's defaults; (0, 0, "") for a preset the
        study does not have (gpu is the scale study's alone)."""
        best = (0, 0, "")
        if preset not in STUDIES[study_id].config.PRESETS:
            return best
        for data_id in self.data_ids:
            keys = {c.key() for _, c in self.config(study_id, preset, data_id).plan(data_id)}
            best = max(best, (len(keys & self.keys), len(keys), data_id))
        return best

    def available(self) -> list[tuple[str, str]]:
        """(study id, preset) pairs whose runs are all in the store."""
        return [(sid, preset) for sid in STUDIES for preset in PRESETS
                if (c := self.coverage(sid, preset))[0] == c[1] > 0]

    def result(self, study_id: str, preset: str) -> StudyResult | None:
        if (study_id, preset) not in self._results:
            data_id = self.coverage(study_id, preset)[2]
            config = self.config(study_id, preset, data_id)
            found = load_study(config, self.out_dir, data_id, read_only=True) if data_id else None
            self._results[(study_id, preset)] = found
        return self._results[(study_id, preset)]

    def offers(self, study_id: str, preset: str) -> tuple[str, ...]:
        """The conditions the explorer offers to pick: those the study's config offers whose runs are stored (none
        for a study that offers none, or whose runs are not)."""
        offered = self.config(study_id, preset).offers()
        return offered if offered and self.result(study_id, preset) is not None else ()


def stored_offers(config: StudyConfig, data_id: str, stored: set[str]) -> StudyConfig:
    """`config` narrowed to the conditions it offers whose runs, and those of the conditions it does not offer (the
    plain warm start), all have their key in `stored`: a store may hold a few remedies of a long sweep. Unchanged
    when it holds none, so the whole study counts as missing."""
    complete = [c for c in config.offers()
                if {run.key() for _, run in config.offering([c]).plan(data_id)} <= stored]
    return config.offering(complete) if complete else config


def shown(result: StudyResult, config: StudyConfig, picked: tuple[str, ...]) -> StudyResult:
    """The picked conditions of those `config` offers, and those it does not offer (the plain warm start, which is
    always shown: it is the gap they try to close)."""
    condition = config.CONDITIONS[0]
    every = dict.fromkeys(labels[condition] for labels, _ in config.plan())
    return result.where(condition, [c for c in every if c not in config.offers() or c in picked])


def render(index: StoreIndex, study_id: str, preset: str, view: str, metric: str,
           picked: tuple[str, ...] | None = None) -> tuple[Any, pd.DataFrame]:
    """The figure and table of one view (the gaps per condition, then the study's claim rows); (None,
    message table) when there is nothing to show. `picked`: of the conditions the study offers (a remedy study's
    remedies), those to show beside the rest (None: every stored one)."""
    result = index.result(study_id, preset)
    if result is None:
        stored, needed, _ = index.coverage(study_id, preset)
        if preset not in STUDIES[study_id].config.PRESETS:
            return None, status(f"study {study_id} has no preset {preset}")
        return None, status(f"{stored} of {needed} runs of study {study_id} at preset {preset} are in the store: "
                            "run its notebook first")
    config = index.config(study_id, preset)
    if config.offers():
        picked = index.offers(study_id, preset) if picked is None else tuple(picked)
        whole, result = result, shown(result, config, picked)
        estimates = (remedy_views.gap_table(whole, config, result) if remedy_views.compares_remedies(result)
                     else result.estimates)
    else:
        estimates = result.estimates
    try:
        figure = draw(result, view, metric, f"{STUDIES[study_id].stem} ({preset})")
    except Unavailable as why:
        return None, status(f"study {study_id} {why}")
    return figure, with_claims(estimates, index.out_dir, STUDIES[study_id].stem, preset)


def draw(result: StudyResult, view: str, metric: str, title: str) -> Any:
    """The figure of one view; Unavailable when the study records nothing for it."""
    condition = result.conditions[0] if result.conditions else None
    if view == "plasticity metrics":
        if condition != "remedy":
            raise Unavailable("records no plasticity metrics (see 10)")
        return remedy_views.metrics_figure(result, metric, title)
    if view == "curvature & noise":
        if result.probes.empty:
            raise Unavailable("records no curvature/noise probes (see 09)")
        return plots.probe_curves(result.probes[result.probes.tune_epoch >= 0], [metric], title=title)
    if view == "learning curves":
        return (plots.condition_curves(result.history, condition, result.last_k, title=title, metric=metric)
                if condition else plots.learning_curves(result.history, result.last_k, title=title))
    if condition:
        return plots.sweep_plot(result, x=condition, hue=result.conditions[1] if len(result.conditions) > 1 else None,
                                title=title)
    return plots.gap_plot(result.gaps, result.estimate, title=title)


def claims_overview(out_dir, preset: str) -> tuple[Any, pd.DataFrame]:
    """The claims recorded at this preset as report.md leads with them: the forest plot of every estimate (None
    when none has one) and the short table; a status row when no claim is recorded there yet."""
    claims = the_verdicts(read_claims(out_dir))  # a settled verdict, never a fixed-n re-test beside it
    claims = claims[claims.preset == preset]
    if not len(claims):
        return None, status(f"no claim is recorded at preset {preset} yet: run a study notebook to record its claims")
    drawn = len(plots.forest_rows(claims)) > 0
    return (plots.claims_forest(claims, title=f"Every claim's estimate ({preset})") if drawn else None,
            summary_table(claims))


def with_claims(estimates: pd.DataFrame, out_dir, stem: str, preset: str) -> pd.DataFrame:
    """The gaps per condition, then the notebook's claim rows at this preset."""
    claims = the_verdicts(read_claims(out_dir))
    claims = claims[(claims.notebook == stem) & (claims.preset == preset)]
    table = estimates.round(3).assign(claim="")
    for row in claims.itertuples():
        table = pd.concat([table, pd.DataFrame([{"claim": f"{row.claim}: {row.statement}", "effect_pp": row.effect,
                                                 "ci_low_pp": row.ci_low, "ci_high_pp": row.ci_high,
                                                 "n_seeds": row.n_seeds, "verdict": row.verdict_words,
                                                 "premise": row.premise}])])
    return table.astype(object).fillna("").reset_index(drop=True)


def status(message: str) -> pd.DataFrame:
    return pd.DataFrame({"status": [message]})


def as_png(figure) -> Image:
    """The figure as a PNG display object, whatever the matplotlib backend (inline or headless)."""
    buffer = io.BytesIO()
    getattr(figure, "figure", figure).savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close("all")
    return Image(data=buffer.getvalue(), format="png")


def explorer(out_dir: str | os.PathLike | None = None, interactive: bool = True):
    """Display the explorer; `interactive=False` renders the default view once, without widgets."""
    index = StoreIndex(out_dir)
    if index.store.bundle:
        display(HTML(f"<p><b>{html.escape(bundle.opened(index.out_dir))}</b></p>"))
    choices = index.available()
    if not choices:
        display(HTML(f"<p>No study has all its runs in <code>{index.store.root}</code> yet: run a study notebook "
                     "(or <code>python -m plasticity_nb run --preset smoke</code>) first" + committed_runs() + ".</p>"))
        return None
    study_id, preset = choices[0]
    if not interactive:
        overview, claims = claims_overview(index.out_dir, preset)
        display(claims, *([as_png(overview)] if overview is not None else []))
        figure, table = render(index, study_id, preset, "gap", "test_acc")
        display(as_png(figure), table)
        return None
    return Explorer(index, choices).widget


def committed_runs() -> str:
    """Where the checkout's committed runs are, to explore meanwhile (none outside a checkout)."""
    found = project_root() / COMMITTED
    return f", or explore the committed runs: <code>explorer({str(found)!r})</code>" if is_bundle(found) else ""


class Explorer:
    """The widgets; every callback re-renders from the store index. `shown` holds what is on screen: the
    figure as PNG bytes (None when there is nothing to draw) and the table; `overview` likewise the claims at the
    picked preset (their forest plot and short table), which lead the page."""

    def __init__(self, index: StoreIndex, choices: list[tuple[str, str]]):
        import ipywidgets as w

        self.index = index
        self.syncing = False  # set while choices are changed in code: their own callbacks must not re-render
        studies = list(dict.fromkeys(sid for sid, _ in choices))
        self.study = w.Dropdown(options=[(STUDIES[s].stem, s) for s in studies], description="study")
        self.preset = w.ToggleButtons(options=PRESETS, description="preset")
        self.view = w.Dropdown(options=VIEWS, description="view")
        self.metric = w.Dropdown(options=HISTORY_METRICS, description="metric")
        self.picker = w.SelectMultiple(rows=4)  # the conditions a study offers to pick (a remedy study's remedies)
        self.output = w.Output()
        self.table = w.Output()
        # HTML and Image widgets, not Output ones: the figure and table outputs of the view stay the page's only
        # output widgets, as tests/test_browser.py finds them
        self.claims_table, self.claims_figure = w.HTML(), w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.shown: tuple[bytes | None, pd.DataFrame] = (None, pd.DataFrame())
        self.overview: tuple[bytes | None, pd.DataFrame] = (None, pd.DataFrame())
        self.overview_preset: str | None = None
        for control in (self.study, self.preset, self.view, self.metric, self.picker):
            control.observe(self.update, names="value")
        self.preset.value = next(p for s, p in choices if s == studies[0])
        self.widget = w.VBox([w.HBox([self.study, self.view, self.metric]), w.HBox([self.preset, self.picker]),
                              self.claims_table, self.claims_figure, self.output, self.table])
        self.update()

    def update(self, change: dict | None = None) -> None:
        if self.syncing:
            return
        self.syncing = True
        try:
            self.sync_choices()
        finally:
            self.syncing = False
        self.show_claims()
        picked = self.picker.value if self.picker.options else None
        figure, table = render(self.index, self.study.value, self.preset.value, self.view.value, self.metric.value,
                               picked)
        self.shown = (as_png(figure).data if figure is not None else None, table)
        with self.output:
            self.output.clear_output(wait=True)
            if figure is not None:
                display(Image(data=self.shown[0], format="png"))
        with self.table:
            self.table.clear_output(wait=True)
            display(table)

    def show_claims(self) -> None:
        """The picked preset's claims (short table, then forest plot), redrawn only when the preset changes."""
        if self.preset.value == self.overview_preset:
            return
        self.overview_preset = self.preset.value
        figure, table = claims_overview(self.index.out_dir, self.preset.value)
        self.overview = (as_png(figure).data if figure is not None else None, table)
        self.claims_table.value = table.to_html(index=False)
        self.claims_figure.value = self.overview[0] or b""
        self.claims_figure.layout.display = "" if figure is not None else "none"

    def sync_choices(self) -> None:
        """The metrics of the view, and the picker: the stored conditions the study offers (a remedy study's
        remedies, under its condition's name), all picked when the study or preset changes; hidden for a study that
        offers none."""
        metrics = METRICS.get(self.view.value, HISTORY_METRICS)
        if tuple(self.metric.options) != metrics:
            keep = self.metric.value if self.metric.value in metrics else metrics[0]
            self.metric.options, self.metric.value = metrics, keep
        offered = self.index.offers(self.study.value, self.preset.value)
        if tuple(self.picker.options) != offered:
            self.picker.options, self.picker.value = offered, offered
        self.picker.description = STUDIES[self.study.value].config.CONDITIONS[0] if offered else ""
        self.picker.layout.display = "" if offered else "none"
