"""An interactive explorer of the run store (ipywidgets) for every study notebook's results.

Pick a study, preset, view and metric: warm vs scratch curves, gaps with their 95% CI, curvature and
noise probes, the learning-rate mitigation (study 08, or 09 for its probes). Callbacks only read the
store and plot: nothing is trained here. A study shows once all of its runs are in the store (run its
notebook, or `python -m plasticity_nb run`, first). With `interactive=False` (papermill, batch) the
default view is rendered once, statically.
"""
from __future__ import annotations

import collections
import io
import json
import os
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Image, display

from . import plots
from .claims import read_claims
from .paths import resolve_out_dir
from .protocols import StudyResult, load_study
from .store import RunStore
from .studies import PRESETS, STUDIES

VIEWS = ("gap", "learning curves", "curvature & noise")
HISTORY_METRICS = ("test_acc", "train_acc", "test_loss", "train_loss")
PROBE_METRICS = ("lambda_max", "trace", "noise_trace", "noise_scale", "grad_norm", "weight_norm")


class StoreIndex:
    """What the run store holds, and each study's results rebuilt from it (cached, read-only)."""

    def __init__(self, out_dir: str | os.PathLike | None = None):
        self.out_dir = resolve_out_dir(out_dir)
        self.store = RunStore(self.out_dir)
        keys = [p.name for p in self.store.root.glob("[!.]*") if (p / "metrics.json").exists()] \
            if self.store.root.exists() else []
        self.keys = set(keys)
        ids = (json.loads((self.store.root / k / "config.json").read_text())["data_id"] for k in keys)
        self.data_ids = [d for d, _ in collections.Counter(ids).most_common()]
        self._results: dict[tuple[str, str], StudyResult | None] = {}

    def coverage(self, study_id: str, preset: str) -> tuple[int, int, str]:
        """(runs stored, runs needed, data id) for the study at this preset's defaults."""
        config = STUDIES[study_id].config.from_preset(preset)
        best = (0, 0, "")
        for data_id in self.data_ids:
            keys = {c.key() for _, c in config.plan(data_id)}
            best = max(best, (len(keys & self.keys), len(keys), data_id))
        return best

    def available(self) -> list[tuple[str, str]]:
        """(study id, preset) pairs whose runs are all in the store."""
        return [(sid, preset) for sid in STUDIES for preset in PRESETS
                if (c := self.coverage(sid, preset))[0] == c[1] > 0]

    def result(self, study_id: str, preset: str) -> StudyResult | None:
        if (study_id, preset) not in self._results:
            data_id = self.coverage(study_id, preset)[2]
            config = STUDIES[study_id].config.from_preset(preset)
            self._results[(study_id, preset)] = load_study(config, self.out_dir, data_id) if data_id else None
        return self._results[(study_id, preset)]


def render(index: StoreIndex, study_id: str, preset: str, view: str, metric: str) -> tuple[Any, pd.DataFrame]:
    """The figure and table of one view (the gaps per condition, then the study's claim rows); (None,
    message table) when there is nothing to show."""
    result = index.result(study_id, preset)
    if result is None:
        stored, needed, _ = index.coverage(study_id, preset)
        return None, pd.DataFrame({"status": [f"{stored} of {needed} runs of study {study_id} at preset {preset} are "
                                              "in the store: run its notebook first"]})
    study = STUDIES[study_id]
    condition = result.conditions[0] if result.conditions else None
    title = f"{study.stem} ({preset})"
    if view == "curvature & noise":
        if result.probes.empty:
            return None, pd.DataFrame({"status": [f"study {study_id} records no curvature/noise probes (see 09)"]})
        figure = plots.probe_curves(result.probes[result.probes.tune_epoch >= 0], [metric], title=title)
    elif view == "learning curves":
        figure = (plots.condition_curves(result.history, condition, result.last_k, title=title, metric=metric)
                  if condition else plots.learning_curves(result.history, result.last_k, title=title))
    elif condition:
        figure = plots.sweep_plot(result, x=condition, hue=result.conditions[1] if len(result.conditions) > 1 else None,
                                  title=title)
    else:
        figure = plots.gap_plot(result.gaps, result.estimate, title=title)
    claims = read_claims(index.out_dir)
    claims = claims[(claims.notebook == study.stem) & (claims.preset == preset)]
    table = result.estimates.round(3).assign(claim="")
    for row in claims.itertuples():
        table = pd.concat([table, pd.DataFrame([{"claim": f"{row.claim}: {row.statement}", "effect_pp": row.effect,
                                                 "ci_low_pp": row.ci_low, "ci_high_pp": row.ci_high,
                                                 "n_seeds": row.n_seeds, "verdict": row.verdict,
                                                 "premise": row.premise}])])
    return figure, table.fillna("").reset_index(drop=True)


def as_png(figure) -> Image:
    """The figure as a PNG display object, whatever the matplotlib backend (inline or headless)."""
    buffer = io.BytesIO()
    getattr(figure, "figure", figure).savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close("all")
    return Image(data=buffer.getvalue(), format="png")


def explorer(out_dir: str | os.PathLike | None = None, interactive: bool = True):
    """Display the explorer; `interactive=False` renders the default view once, without widgets."""
    index = StoreIndex(out_dir)
    choices = index.available()
    if not choices:
        display(HTML(f"<p>No study has all its runs in <code>{index.store.root}</code> yet: run a study notebook "
                     "(or <code>python -m plasticity_nb run --preset smoke</code>) first.</p>"))
        return None
    study_id, preset = choices[0]
    if not interactive:
        figure, table = render(index, study_id, preset, "gap", "test_acc")
        display(as_png(figure), table)
        return None
    return Explorer(index, choices).widget


class Explorer:
    """The widgets; every callback re-renders from the store index."""

    def __init__(self, index: StoreIndex, choices: list[tuple[str, str]]):
        import ipywidgets as w

        self.index = index
        studies = list(dict.fromkeys(sid for sid, _ in choices))
        self.study = w.Dropdown(options=[(STUDIES[s].stem, s) for s in studies], description="study")
        self.preset = w.ToggleButtons(options=PRESETS, description="preset")
        self.view = w.Dropdown(options=VIEWS, description="view")
        self.metric = w.Dropdown(options=HISTORY_METRICS, description="metric")
        self.output = w.Output()
        self.table = w.Output()
        for control in (self.study, self.preset, self.view, self.metric):
            control.observe(self.update, names="value")
        self.preset.value = next(p for s, p in choices if s == studies[0])
        self.widget = w.VBox([w.HBox([self.study, self.view, self.metric]), self.preset, self.output, self.table])
        self.update()

    def update(self, change: dict | None = None) -> None:
        if change is not None and change["owner"] is self.view:
            self.metric.options = PROBE_METRICS if self.view.value == "curvature & noise" else HISTORY_METRICS
        figure, table = render(self.index, self.study.value, self.preset.value, self.view.value, self.metric.value)
        with self.output:
            self.output.clear_output(wait=True)
            if figure is not None:
                display(as_png(figure))
        with self.table:
            self.table.clear_output(wait=True)
            display(table)
