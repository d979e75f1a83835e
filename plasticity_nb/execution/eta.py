"""How long the runs still to train will take here, from how fast this machine trained the stored ones.

Each stored run's provenance holds its wall time, which covers its last phase only (its prefix is a run of
its own). Divided by the examples that phase trained on, it gives seconds per example for the run's
architecture and precision; a run to do is estimated from the median of runs like it, trained on this host
(any host when none was). Runs of an architecture never trained are left out and counted as such.
"""
from __future__ import annotations

import json
import socket
import statistics
from collections import defaultdict

from ..run.run_config import RunConfig
from .runner import training_examples
from .store import RunStore


def shape(config: RunConfig) -> tuple:
    """What sets a run's speed per example besides the machine."""
    return config.model, config.depth, config.width, config.batch_size, config.precision


def seconds_per_example(store: RunStore) -> dict[tuple, float]:
    """Median seconds per training example of the stored runs, per `shape`: this host's runs if any."""
    rates: dict[str, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for folder in store.root.glob("[!.]*/"):
        try:
            provenance = json.loads((folder / "provenance.json").read_text())
            config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
            seconds = float(provenance["wall_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a folder being written, or one from another version of the package
        if provenance.get("resumed_from") or "ensemble_members" in provenance:
            continue  # its wall time covers part of the run, or a share of an ensemble
        rates[provenance.get("host")][shape(config)].append(seconds / training_examples(config))
    chosen = rates.get(socket.gethostname()) or {s: r for by_shape in rates.values() for s, r in by_shape.items()}
    return {s: statistics.median(r) for s, r in chosen.items()}


def estimate(todo: list[RunConfig], rates: dict[tuple, float], workers: int) -> tuple[float, int]:
    """(wall seconds for the runs of a known shape, spread over `workers`; how many runs had no known shape)."""
    known = [rates[shape(c)] * training_examples(c) for c in todo if shape(c) in rates]
    return sum(known) / max(1, min(workers, len(known) or 1)), len(todo) - len(known)


def describe(todo: list[RunConfig], store: RunStore, workers: int) -> str:
    """One line: the estimated training time, and what it rests on."""
    if not todo:
        return "nothing to train"
    rates = seconds_per_example(store)
    seconds, unknown = estimate(todo, rates, workers)
    if unknown == len(todo):
        return ("no time estimate yet: no run of these sizes is stored to measure this machine's speed "
                "(one appears after the first notebook's runs)")
    note = f"; {unknown} run(s) of an unmeasured size not counted" if unknown else ""
    return f"estimated training time ~{format_duration(seconds)} on {workers} worker(s), from stored runs' speed{note}"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
