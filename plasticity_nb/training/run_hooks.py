"""The hooks of a single run that are not remedies: module resets at a phase start, curvature and noise
probes, checkpoints and the progress bar.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..core.seeds import derived_seed
from ..measures.probes import measure
from ..nets.models import reinitialise_groups
from ..run.hooks import Hook
from ..run.run_config import Phase, RunConfig
from ..run.run_state import RunState
from .run_remedies import RunRemedies
from .run_tensors import RunTensors


class ResetGroups(Hook):
    """Re-initialises module `groups` before the phase's first step (`seed`: one per run and phase)."""

    def __init__(self, groups: tuple[int, ...], seed: int):
        self.groups, self.seed = groups, seed

    def on_phase_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        reinitialise_groups(model, self.groups, self.seed)


class Probing(Hook):
    """Curvature and noise probes after the phase's `probe_epochs` (0: before its first step), into `state`."""

    def __init__(self, config: RunConfig, state: RunState, tensors: RunTensors):
        self.config, self.state, self.tensors = config, state, tensors

    def on_phase_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        run_epoch = self.state.history[-1]["epoch"] if self.state.history else 0
        self.probe(model, dict(phase=self.state.phase_index + 1, pool=phase.pool, epoch=run_epoch, phase_epoch=0,
                               step=self.state.step))

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        self.probe(model, {k: row[k] for k in ("phase", "pool", "epoch", "phase_epoch", "step")})

    def probe(self, model: torch.nn.Module, where: dict[str, Any]) -> None:
        phase_index, phase_epoch = where["phase"] - 1, where["phase_epoch"]
        if phase_epoch in self.config.phases[phase_index].probe_epochs:
            seed = derived_seed(self.config.seed, phase_index, phase_epoch, 3)
            self.state.probes.append({**where, **measure(model, self.tensors.probes, self.config.probes, seed)})


class Checkpointing(Hook):
    """Hands `save` a copy of the run's state every `every` epochs of a phase (not after its last), with the
    model, optimiser and data-order generator filled in, so that a killed run can continue exactly."""

    graph_safe = True  # it copies the state between epochs

    def __init__(self, save: Callable[[RunState], None], every: int, state: RunState, generator: torch.Generator,
                 epochs: int, remedies: RunRemedies):
        self.save, self.every, self.state, self.generator, self.epochs = save, every, state, generator, epochs
        self.remedies = remedies

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        if row["phase_epoch"] % self.every == 0 and row["phase_epoch"] < self.epochs:
            self.save(dataclasses.replace(self.state, history=list(self.state.history), probes=list(self.state.probes),
                                          optimizer=copy.deepcopy(optimizer.state_dict()),
                                          generator=self.generator.get_state(), model=cpu_state(model),
                                          remedies=self.remedies.state_dict()))


class Progress(Hook):
    """Shows each epoch's accuracies on a progress bar."""

    graph_safe = True

    def __init__(self, bar: tqdm):
        self.bar = bar

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        self.bar.update()
        self.bar.set_postfix(train_acc=f"{row['train_acc']:.3f}", test_acc=f"{row['test_acc']:.3f}")


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
