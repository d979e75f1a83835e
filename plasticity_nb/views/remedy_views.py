"""The explorer's views of studies 10 and 11 (remedies): which remedies the store holds, and, for the remedies the user
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


def stored_remedies(config: study.Config, data_id: str, stored: set[str]) -> study.Config:
    """`config` narrowed to the remedies whose runs, and the plain warm start's, all have their key in `stored`:
    a store may hold a few remedies of a long sweep. Unchanged when it holds none, so the whole study counts
    as missing."""
    complete = tuple(r for r in config.remedies
                     if {c.key() for _, c in config.replace(remedies=(r,)).plan(data_id)} <= stored)
    return config.replace(remedies=complete) if complete else config


def shown(result: StudyResult, picked: tuple[str, ...]) -> StudyResult:
    """The picked remedies and the plain warm start, which is always shown: it is the gap they try to close."""
    return result.where("remedy", [study.NONE, *picked])


def gap_table(result: StudyResult, config: study.Config, picked: tuple[str, ...]) -> pd.DataFrame:
    """Per shown remedy: the gap, its 95% CI and difference verdict, then remedy_table's equivalence verdict
    (does it close the gap?), overhead and steps to the target train accuracy; the premise last."""
    extras = study.remedy_table(result, config)[TABLE_EXTRAS]
    table = shown(result, picked).estimates.merge(extras, on="remedy", how="left")
    return table[[c for c in table.columns if c != "premise"] + ["premise"]]


def metrics_figure(result: StudyResult, metric: str, title: str):
    """The plasticity metric curves of the result's remedies: one panel, or all of them for ALL_METRICS."""
    curves = study.metric_curves(result)
    return plots.metric_curves(curves if metric == ALL_METRICS else curves[curves.metric == metric], title=title)
