"""The explorer's views of a result whose condition is a remedy (studies 10, 11 and 13): for the remedies the user
picks, their gaps with the verdicts of notebook 10's table and their plasticity metric curves. Read-only."""
from __future__ import annotations

import pandas as pd

from ..studies import remedies as study
from ..studies.study_result import StudyResult
from . import plots

ALL_METRICS = "all"
METRIC_CHOICES = (ALL_METRICS, *study.METRICS)
# remedy_table's columns that the estimates lack (the gap, its CI and the fits are in both).
TABLE_EXTRAS = ["remedy", "equivalence", "overhead_pct", "warm_steps_to_target", "seeds_reaching"]


def compares_remedies(result: StudyResult) -> bool:
    """Whether the result's runs are remedy conditions, each recording the plasticity metrics (notebook 10's
    protocol)."""
    return tuple(result.conditions[:1]) == study.Config.CONDITIONS


def gap_table(whole: StudyResult, config: study.Config, shown: StudyResult) -> pd.DataFrame:
    """Per shown remedy (`shown`: `whole` narrowed to the picked ones): the gap, its 95% CI and difference verdict,
    then remedy_table's equivalence verdict (does it close the gap?), overhead and steps to the target train
    accuracy; the premise last. A remedy study of another protocol (13's continual chunks) has no such table: its
    estimates."""
    if not isinstance(config, study.Config):
        return shown.estimates
    extras = study.remedy_table(whole, config)[TABLE_EXTRAS]
    table = shown.estimates.merge(extras, on="remedy", how="left")
    return table[[c for c in table.columns if c != "premise"] + ["premise"]]


def metrics_figure(result: StudyResult, metric: str, title: str):
    """The plasticity metric curves of the result's remedies: one panel, or all of them for ALL_METRICS."""
    curves = study.metric_curves(result)
    return plots.metric_curves(curves if metric == ALL_METRICS else curves[curves.metric == metric], title=title)
