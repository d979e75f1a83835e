"""A run's data on the device: its training subset and the test set normalised once, and the positions each
phase's pool, epoch batches, DASH's data and the metrics' probe batches draw from it.
"""
from __future__ import annotations

import torch

from ..core.config import ConfigError
from ..core.seeds import derived_seed
from ..data.images import ImageData, Split, check_balanced, class_balanced_subset, normalise
from ..data.sampling import BlendingSampler, class_orders, multistage_split, shuffled_batches
from ..measures.probes import probe_set
from ..run.run_config import Phase, RunConfig, part_count
from .build import EVAL_BATCH
from .metrics_hook import Metrics, PredictionReference, metric_examples
from .runtime import Runtime

PART_SEED_TAG = 41  # derived_seed(run seed, 41): the order of each class whose prefixes are the run's parts


def check_fits(config: RunConfig, data: ImageData) -> None:
    """The data is a copy of the run's dataset, the very copy its config was made for (when it names one), and the
    run's class-balanced subsets fit in its classes: checked before anything is trained or written."""
    if data.spec.name != config.dataset:
        raise ConfigError(f"the run is on dataset {config.dataset!r} but the data given is {data.spec.name!r} "
                          f"({data.source})")
    if config.data_id and config.data_id != data.data_id:
        raise ConfigError(f"config was made for data {config.data_id!r} but the loaded copy is {data.data_id!r} "
                          f"({data.source})")
    check_balanced("train_subset", config.train_subset, data.train_labels, data.spec, "training")
    check_balanced("test_subset", config.test_subset, data.test_labels, data.spec, "test")


class RunTensors:
    """The run's training subset and the test set, normalised once, on the device."""

    def __init__(self, config: RunConfig, data: ImageData, runtime: Runtime):
        check_fits(config, data)
        self.classes = classes = data.spec.num_classes
        self.seed = config.seed
        self.split = Split.draw(data.train_labels, config.train_subset, config.seed, classes)
        # Only the subset is normalised; the pools index into it, not into the whole training set.
        subset = self.split.full.to(data.device)
        self.train_x = normalise(data.train_images[subset].to(runtime.device), data.spec, runtime.channels_last)
        self.train_y = data.train_labels[subset].to(runtime.device)
        test = torch.arange(len(data.test_labels))
        if config.test_subset is not None:  # fixed seed: every run of a comparison sees the same test images
            test = class_balanced_subset(data.test_labels, config.test_subset, torch.Generator().manual_seed(0),
                                         classes)
        test = test.to(data.device)
        self.test_x = normalise(data.test_images[test].to(runtime.device), data.spec, runtime.channels_last)
        self.test_y = data.test_labels[test].to(runtime.device)
        position = torch.full((len(data.train_labels),), -1, dtype=torch.long)
        position[self.split.full] = torch.arange(len(self.split.full))
        self.full, self.half = torch.arange(len(self.split.full)), position[self.split.half]
        self.probes = probe_set(self.train_x, self.train_y, config.probes, classes) if config.probes else None
        self.stages = []
        if config.stages is not None:
            self.stages = multistage_split(self.train_y.cpu(), config.stages, config.uniform_ratio,
                                           derived_seed(config.seed, 2), classes).stages
        self.orders = None  # drawn for the first part pool (runs without one draw nothing more)
        # The plasticity metrics' "half" (what the run learnt first): the pretraining half, or the first phase's part
        # (FIRE's protocols: its 10 %, or the first of the cumulative chunks)
        self.first = self.pool(config.phases[0]) if config.phases[0].pool == "part" else self.half

    def pool(self, phase: Phase) -> torch.Tensor:
        """Positions (in the normalised subset) of the examples `phase` trains on."""
        if phase.pool == "stage":
            return self.stages[phase.stage - 1]
        if phase.pool == "part":
            if self.orders is None:
                self.orders = class_orders(self.train_y.cpu(), derived_seed(self.seed, PART_SEED_TAG), self.classes)
            return torch.cat([o[:part_count(phase.fraction, len(o))] for o in self.orders]).sort().values
        return self.half if phase.pool == "half" else self.full

    def dash_chunks(self, config: RunConfig, phase_index: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """DASH's data as its authors give it: one chunk per phase up to and including `phase_index`, each the
        examples its pool adds to the earlier ones' (half -> full: the half, then the other half), in arrival
        order, each as micro-batches of EVAL_BATCH in the subset's order (a phase adding nothing adds no chunk)."""
        chunks, seen = [], torch.zeros(len(self.full), dtype=torch.bool)
        for phase in config.phases[:phase_index + 1]:
            pool = self.pool(phase)
            new = pool[~seen[pool]].unique()
            seen[pool] = True
            if len(new):
                new = new.to(self.train_x.device)
                chunks.append([(self.train_x[b], self.train_y[b]) for b in new.split(EVAL_BATCH)])
        return chunks

    def metrics_hook(self, config: RunConfig, initial: dict[str, torch.Tensor],
                     reference: PredictionReference) -> Metrics:
        """The run's plasticity metrics: a fixed probe batch of the subset (seed 0, as the curvature probes: warm
        and scratch of a seed are measured on the same examples), and as many of what the run learnt first (the
        pretraining half, or a first phase's part: `first`) and of the rest. A scratch run has no first part: its
        "half" is the pretraining half, as always."""
        size = config.metrics.examples
        first = torch.zeros(len(self.full), dtype=torch.bool)
        first[self.first] = True
        examples = lambda positions: metric_examples(self.train_x, self.train_y, positions, size, 0, self.classes)
        halves = {"half": examples(self.first), "new": examples(self.full[~first])}
        return Metrics(config.metrics, examples(self.full), halves, initial, reference)

    def epoch_batches(self, phase: Phase, epoch: int, batch_size: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """(steps, batch_size) positions for one epoch of `phase`, and what to log about how they were drawn."""
        if phase.pool != "blend":
            return shuffled_batches(self.pool(phase), batch_size, generator), {}
        steps = len(self.full) // batch_size
        sampler = BlendingSampler(self.full, self.half, batch_size, phase.epochs * steps, phase.gamma, phase.blend_rate)
        batches, from_full = sampler.batches(epoch * steps, steps, generator)
        scheduled = sampler.p_full(torch.arange(epoch * steps, (epoch + 1) * steps)).mean().item()
        return batches, {"blend_p": scheduled, "blend_from_full": from_full.float().mean().item()}
