"""How long the runs still to train will take here, from how fast this machine trained the stored ones, or,
before any is stored, from a few timed steps of each model size.

Each stored run's provenance holds its wall time, which covers its last phase only (its prefix is a run of
its own). Divided by the examples that phase trained on, it gives seconds per example for the run's
architecture and precision; a run to do is estimated from the median of runs like it, trained on this host
(any host when none was). A size no stored run measures is timed here (`time_steps`: a few training steps and
one evaluation pass on random images, with a worker's threads), which leaves out what a run does besides
(loading, augmentation, remedies, metrics, checkpoints): the batch says at its end how far off it was.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import statistics
from collections import defaultdict

import torch

from ..data.datasets import dataset_spec
from ..run.run_config import RunConfig
from ..training.build import evaluate as evaluate_model
from ..training.layout import tuned_runtime
from ..training.loop import scheduled
from ..training.runtime import COMPILE_OFF
from ..training.step_timing import random_batch, shape, timed, train_step_seconds
from .runner import training_examples
from .store import RunStore

TIMED_STEPS = 3  # training steps timed per model size, after one untimed (allocations, oneDNN's kernel choice)
TIMED_TEST_IMAGES = 1000  # images of the timed evaluation pass


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


@dataclasses.dataclass(frozen=True)
class StepTiming:
    """One model size's cost here, from a few timed steps."""

    train: float  # seconds per training example (forward, backward, optimiser step)
    evaluate: float  # seconds per test image

    def run_seconds(self, config: RunConfig) -> float:
        """The config's last phase: its training examples, and its test-set evaluations (a target's phase at its
        most: its cap and window)."""
        phase = config.phases[-1]
        evaluations = sum(scheduled(phase, epoch) for epoch in range(phase.epochs)) + phase.window
        return (training_examples(config) * self.train
                + evaluations * (config.test_subset or dataset_spec(config.dataset).test_size) * self.evaluate)


def time_steps(config: RunConfig, device: str | torch.device | None, threads: int,
               compile_setting: str = COMPILE_OFF) -> StepTiming:
    """Time TIMED_STEPS training steps of the config's model at its batch size, precision and optimiser, and one
    evaluation pass, on random images, with `threads` CPU threads (a worker's share), compiled as the runs will be."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runtime = tuned_runtime(config, device, compile_setting=compile_setting)  # the layout the run will train in
        train, model = train_step_seconds(config, runtime, TIMED_STEPS)
        test_x, test_y = random_batch(config, runtime, TIMED_TEST_IMAGES)
        evaluate = timed(lambda: evaluate_model(model, test_x, test_y, runtime), 1, runtime.device) / TIMED_TEST_IMAGES
        return StepTiming(train, evaluate)
    finally:
        torch.set_num_threads(before)


def timings_for(todo: list[RunConfig], rates: dict[tuple, float], device: str | torch.device | None,
                threads: int, compile_setting: str = COMPILE_OFF) -> dict[tuple, StepTiming]:
    """A StepTiming for every shape in `todo` that no stored run measures (one config of each timed)."""
    unmeasured = {shape(c): c for c in todo if shape(c) not in rates}
    return {s: time_steps(c, device, threads, compile_setting) for s, c in unmeasured.items()}


def estimate(todo: list[RunConfig], rates: dict[tuple, float], workers: int,
             timings: dict[tuple, StepTiming] | None = None) -> tuple[float, int]:
    """(wall seconds for the runs of a known shape, spread over `workers`; how many runs had no known shape). A
    shape is known from stored runs (`rates`, preferred) or from timed steps (`timings`)."""
    timings = timings or {}

    def seconds(config: RunConfig) -> float | None:
        if shape(config) in rates:
            return rates[shape(config)] * training_examples(config)
        return timings[shape(config)].run_seconds(config) if shape(config) in timings else None

    known = [t for t in map(seconds, todo) if t is not None]
    return sum(known) / max(1, min(workers, len(known) or 1)), len(todo) - len(known)


def describe(todo: list[RunConfig], store: RunStore, workers: int,
             timings: dict[tuple, StepTiming] | None = None) -> str:
    """One line: the estimated training time, and what it rests on."""
    if not todo:
        return "nothing to train"
    rates = seconds_per_example(store)
    seconds, unknown = estimate(todo, rates, workers, timings)
    if unknown == len(todo):
        return ("no time estimate yet: no run of these sizes is stored to measure this machine's speed "
                "(one appears after the first notebook's runs)")
    timed_only = timings and all(shape(c) not in rates for c in todo)
    basis = "from timed steps of each size" if timed_only else "from stored runs' speed" + (
        " and timed steps" if timings and any(shape(c) in timings for c in todo) else "")
    note = f"; {unknown} run(s) of an unmeasured size not counted" if unknown else ""
    return f"estimated training time ~{format_duration(seconds)} on {workers} worker(s), {basis}{note}"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
