"""A study's plan executed through the run store (identical configs across studies are trained once), or its
result read from the store alone (always so from a bundle: execution/bundle.py).
"""
from __future__ import annotations

import os
from typing import Any

from ..analysis.claims import check_results_dataset
from ..core.paths import default_out_dir, is_bundle
from ..data.images import load_dataset
from ..execution import bundle
from ..execution.runner import run_many
from ..execution.settings import ExecutionSettings, settings_for
from ..execution.store import RunStore
from ..training.runtime import resolve_device
from .study_config import StudyConfig, WarmStartConfig
from .study_result import StudyResult, compare


def run_study(config: StudyConfig, settings: ExecutionSettings | None = None, **overrides: Any) -> StudyResult:
    """Run (or load from the store) every run of `config`'s plan, then compare warm with scratch.

    `settings` say where and how the runs train (default: `ExecutionSettings()`; see `runner.run_many`); keyword
    `overrides` change some of them by name, as before that value existed (`run_study(config, out_dir=...,
    workers=2)`; a misspelt name is refused with the right one). Progress bars are drawn unless `progress=False`.
    The study's `dataset` is loaded, from the settings' `data_dir` if given. From a bundle, the result is read as
    stored there (`bundled_study`): nothing trains and no data is loaded.
    """
    settings = settings_for("run_study", settings, overrides, second="data_dir")
    out_dir = settings.out_dir or default_out_dir()
    if is_bundle(out_dir):
        return bundled_study(config, out_dir)
    device = resolve_device(settings.device)
    # fails early, before any run, if the data is missing or bad
    data = load_dataset(config.dataset, settings.data_dir, device)
    check_results_dataset(out_dir, config.dataset)  # nor trains what it could not report
    plan = config.plan(data.data_id)
    records = run_many([c for _, c in plan], settings.replace(progress=settings.progress is not False))
    return compare(records, [labels for labels, _ in plan], config.last_k, config.CONDITIONS, config.premise_rule(),
                   config.window_summary)


def bundled_study(config: StudyConfig, out_dir: str | os.PathLike) -> StudyResult:
    """The study's result from a bundle's runs, after its banner; BundleError naming the settings the bundle holds
    when it lacks some of these runs (a bundle trains nothing)."""
    print(bundle.opened(out_dir), flush=True)
    config, marker, store = bundle.with_precision(config, out_dir), bundle.read_marker(out_dir), RunStore(out_dir)
    data_id = marker["data"].get(config.dataset, "")
    plan = config.plan(data_id)
    missing = sum(not store.has(c) for _, c in plan)
    if missing:
        store.refuse_if_bundle(f"train the {missing} of {len(plan)} runs these settings need, which it does not "
                               f"hold (it holds {bundle.holds(marker)})")
    return load_study(config, out_dir, data_id, read_only=True)


def warm_start_gap(config: WarmStartConfig, settings: ExecutionSettings | None = None,
                   **overrides: Any) -> StudyResult:
    """Berariu et al. Fig. 1 (notebook 01); the settings and keyword overrides as for `run_study`."""
    return run_study(config, settings_for("warm_start_gap", settings, overrides, second="data_dir"))


def load_study(config: StudyConfig, out_dir: str | os.PathLike | None, data_id: str,
               read_only: bool = False) -> StudyResult | None:
    """The study's result built from the run store only (None unless every run is stored and passes its check):
    no training. `read_only`: a run that fails its check is reported and skipped, never moved."""
    store = RunStore(out_dir or default_out_dir(), read_only)
    plan = config.plan(data_id)
    records = [store.load(c) for _, c in plan]
    if any(r is None for r in records):
        return None
    return compare(records, [labels for labels, _ in plan], config.last_k, config.CONDITIONS, config.premise_rule(),
                   config.window_summary)
