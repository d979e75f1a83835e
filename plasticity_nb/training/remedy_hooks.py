"""Remedies and plasticity metrics as hooks of the training loop (`loop.Hook`), built from a phase's settings.

The maths lives in remedies/ and plasticity_metrics.py (each citing its source); this module decides when
it acts: shrink-and-perturb and DASH at a phase's start (after any group reset), L2 Init in every step's
loss, ReDo every `every` steps, continual backprop after every step, and the metrics at each test-set
evaluation. What a remedy keeps across phases and checkpoints (the initial weights, the units' utilities and
ages, generators) is a `RunRemedies`, saved with checkpoints and stored runs so that a run continued from a
stored prefix or a checkpoint ends exactly as one trained in one go.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from ..data.cifar10 import class_balanced_subset
from ..measures.activations import probe_activations, probe_site_activations, record_activations
from ..measures.curvature import weight_norm
from ..measures.plasticity_metrics import (
    dohare_dormant_fraction,
    dormant_fraction,
    effective_rank,
    gradient_norms,
    parameter_distance,
    penultimate_features,
    srank,
)
from ..nets.units import dohare_sites, redo_sites, unit_sites
from ..remedies.cbp import ContinualBackprop
from ..remedies.dash import dash_
from ..remedies.l2_init import initial_parameters, l2_init_penalty
from ..remedies.redo import dormant_scores, redo_reset_
from ..remedies.settings import ContinualBackpropSettings, Dash, L2Init, MetricSettings, ReDo, ShrinkPerturb
from ..remedies.shrink_perturb import shrink_perturb_
from ..run.run_config import Phase, RunConfig
from .loop import Hook

Examples = tuple[torch.Tensor, torch.Tensor]  # normalised images and labels, on the device


class RunRemedies:
    """What the run's remedies and metrics carry from phase to phase: the initial weights theta_0 (L2 Init,
    distance to initialisation), one continual-backprop state for the whole run, ReDo's generator."""

    def __init__(self, config: RunConfig, model: nn.Module, seeds: Callable[[int], int]):
        """Take `model` as just initialised; `seeds(tag)` gives the run's seed for each stream."""
        phases = config.phases
        wants_initial = config.metrics is not None or any(p.l2_init for p in phases)
        self.initial = initial_parameters(model) if wants_initial else None
        cbp = next((p.cbp for p in phases if p.cbp is not None), None)
        self.cbp = continual_backprop(model, cbp, seeds(5)) if cbp else None
        self.redo_generator = torch.Generator().manual_seed(seeds(6)) if any(p.redo for p in phases) else None

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"cbp.{k}": v for k, v in self.cbp.state_dict().items()} if self.cbp else {}
        if self.redo_generator is not None:
            state["redo.generator"] = self.redo_generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from `state` (empty: a prefix run that had none of these remedies, so they start now)."""
        if not state:
            return
        if self.cbp:
            self.cbp.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("cbp.")})
        if self.redo_generator is not None:
            self.redo_generator.set_state(state["redo.generator"])


def continual_backprop(model: nn.Module, settings: ContinualBackpropSettings, seed: int) -> ContinualBackprop:
    return ContinualBackprop(model, settings.replacement_rate, settings.maturity_threshold, settings.decay,
                             generator=torch.Generator().manual_seed(seed), fresh_init=settings.fresh_init)


class ShrinkPerturbHook(Hook):
    """Ash & Adams' shrink-and-perturb at the phase start; `fresh()` builds the seeded new initialisation."""

    def __init__(self, settings: ShrinkPerturb, fresh: Callable[[], nn.Module]):
        self.settings, self.fresh = settings, fresh

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        s = self.settings
        shrink_perturb_(model, self.fresh(), s.shrink, s.perturb, s.bn_statistics)


class DashHook(Hook):
    """DASH at the phase start, over `chunks()` (every phase's new data so far, the new phase's last, one moving-
    average step per chunk), with BatchNorm in the settings' mode (eval: the authors')."""

    def __init__(self, settings: Dash, chunks: Callable[[], list[list[Examples]]]):
        self.settings, self.chunks = settings, chunks

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        was_training = model.training
        model.train(self.settings.bn_mode == "train")
        dash_(model, self.chunks(), self.settings.alpha, self.settings.shrink_floor)
        model.train(was_training)


class L2InitHook(Hook):
    """L2 Init: 0.5 * coefficient * sum ||theta - theta_0||^2 (as the settings say) joins every step's loss."""

    def __init__(self, settings: L2Init, initial: dict[str, torch.Tensor]):
        self.settings, self.initial = settings, initial

    def penalty(self, model: nn.Module) -> torch.Tensor:
        s = self.settings
        return l2_init_penalty(model, self.initial, s.coefficient, s.convention, s.parameters)


class UnitCount(Hook):
    """Counts the units a hook re-initialised during an epoch, into the row's `units_reset` column."""

    reset = 0

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        row["units_reset"] = row.get("units_reset", 0) + self.reset
        self.reset = 0


class ReDoHook(UnitCount):
    """ReDo every `every` steps of the run, scoring units on `examples` drawn afresh from the phase's pool."""

    def __init__(self, settings: ReDo, pool: Examples, generator: torch.Generator):
        self.settings, self.pool, self.generator = settings, pool, generator

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        if step % self.settings.every:
            return
        x, _ = self.pool
        pick = torch.randperm(len(x), generator=self.generator)[:self.settings.examples].to(x.device)
        scores = dormant_scores(probe_activations(model, x[pick]))
        reset = redo_reset_(model, scores, optimizer, self.settings.tau, self.generator)
        self.reset += sum(int(index.numel()) for index in reset.values())


class ContinualBackpropHook(UnitCount):
    """Continual backprop after every step, on the activations recorded during that step's forward pass."""

    def __init__(self, cbp: ContinualBackprop):
        self.cbp = cbp
        self.recorded: dict[str, torch.Tensor] = {}

    def around_forward(self, model: nn.Module) -> ContextManager:
        @contextlib.contextmanager
        def recording():
            with record_activations(model, self.cbp.layers) as recorded:
                yield
            self.recorded = {name: h.float() for name, h in recorded.items()}
        return recording()

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        replaced = self.cbp.step(self.recorded, optimizer)
        self.reset += sum(int(index.numel()) for index in replaced.values())


class Metrics(Hook):
    """Plasticity metrics into each evaluated epoch's row, and the start-of-phase measures (gradient norms on
    the pretraining half and on the new half, and the metrics before the first step) into the phase's first row.

    Measured in the model's mode during training (train-mode BatchNorm: batch statistics of the probe batch,
    the function the optimiser trains), in fp32, leaving the running statistics untouched.
    """

    def __init__(self, settings: MetricSettings, probe: Examples, halves: dict[str, Examples],
                 initial: dict[str, torch.Tensor]):
        self.settings, self.probe, self.halves, self.initial = settings, probe, halves, initial
        self.at_start: dict[str, float] = {}

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        norms = gradient_norms(model, {name: [examples] for name, examples in self.halves.items()})
        start = {f"start_{name}": value for name, value in self.measure(model).items()}
        self.at_start = {**start, "grad_norm_half": norms["half"], "grad_norm_new": norms["new"],
                         "grad_ratio": norms["new"] / norms["half"] if norms["half"] > 0 else math.nan}

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        row.update(self.at_start)
        self.at_start = {}
        if math.isfinite(row["test_acc"]):
            row.update(self.measure(model))

    def measure(self, model: nn.Module) -> dict[str, float]:
        x, _ = self.probe
        s = self.settings
        redo, dohare, units = (probe_site_activations(model, x, sites(model))
                               for sites in (redo_sites, dohare_sites, unit_sites))
        features = dohare["pooled"] if "pooled" in dohare else penultimate_features(model, x)
        return {"dormant_redo": dormant_fraction(dormant_scores(redo), s.tau),
                "dormant_dohare": dohare_dormant_fraction(dohare, s.active_share),
                "dormant_redo_units": dormant_fraction(dormant_scores(units), s.tau),
                "effective_rank": effective_rank(features), "srank": float(srank(features, s.srank_delta)),
                "weight_norm": weight_norm(model), "init_distance": parameter_distance(model, self.initial)}


def metric_examples(train_x: torch.Tensor, train_y: torch.Tensor, positions: torch.Tensor, size: int,
                    seed: int) -> Examples:
    """`size` class-balanced examples among `positions` of the subset (the same for every evaluation); all of
    them when there are no more than `size`."""
    pick = positions
    if size < len(positions):
        pick = positions[class_balanced_subset(train_y.cpu()[positions], size, torch.Generator().manual_seed(seed))]
    pick = pick.to(train_x.device)
    return train_x[pick], train_y[pick]
