"""What a run's remedies carry from phase to phase and across checkpoints, and the context through which each
remedy builds its hooks for a phase (run/remedy.py's `RemedyContext`).

A `RunRemedies` holds the initial weights theta_0 (when a remedy or the metrics read them) and each remedy's
run-wide state (`Remedy.run_state`), saved with checkpoints and stored runs under "<name>." so that a run
continued from a stored prefix or a checkpoint ends exactly as one trained in one go.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..core.seeds import derived_seed
from ..measures.plasticity_metrics import initial_parameters
from ..run.hooks import Hook
from ..run.remedy import RESERVED_NAMES, remedy_type
from ..run.run_config import RunConfig
from .build import evaluate, init_model
from .metrics_hook import PredictionReference
from .run_tensors import RunTensors
from .runtime import Runtime

METRICS_STATE = RESERVED_NAMES[0]  # no remedy may take this name


class RunRemedies:
    """theta_0, every remedy's run-wide state and the metrics' churn reference, for one run."""

    def __init__(self, config: RunConfig, model: nn.Module):
        """Take `model` as just initialised."""
        used = dict.fromkeys(name for phase in config.phases for name in phase.remedy_names)
        wants_initial = config.metrics is not None or any(remedy_type(n).WANTS_INITIAL for n in used)
        self.initial = initial_parameters(model) if wants_initial else None
        seed: Callable[[int], int] = lambda tag: derived_seed(config.seed, tag)
        states = {name: remedy_type(name).run_state([p.remedy(name) for p in config.phases if p.remedy(name)],
                                                    model, seed) for name in used}
        self.states = {name: state for name, state in states.items() if state is not None}
        # the metrics' churn reference travels with the remedies' state, under the reserved name "metrics"
        self.reference = PredictionReference() if config.metrics is not None else None
        if self.reference is not None:
            self.states[METRICS_STATE] = self.reference

    def state_dict(self) -> dict[str, Any]:
        return {f"{name}.{key}": value for name, state in self.states.items()
                for key, value in state.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state` (empty: a prefix run that had none of these remedies, so they start now)."""
        if not state:
            return
        for name, own in self.states.items():
            prefix = f"{name}."
            own.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


class PhaseContext:
    """A `RemedyContext` for one phase of one single run."""

    def __init__(self, config: RunConfig, phase_index: int, tensors: RunTensors, runtime: Runtime,
                 remedies: RunRemedies):
        self.config, self.phase_index = config, phase_index
        self.tensors, self.runtime, self.remedies = tensors, runtime, remedies

    def fresh_model(self, seed: int) -> nn.Module:
        return init_model(self.config.replace(seed=seed), self.runtime)

    def pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        pool = self.tensors.pool(self.config.phases[self.phase_index])
        return self.tensors.train_x[pool], self.tensors.train_y[pool]

    def chunks(self) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        return self.tensors.dash_chunks(self.config, self.phase_index)

    def initial(self) -> dict[str, torch.Tensor]:
        return self.remedies.initial

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        return evaluate(model, self.tensors.test_x, self.tensors.test_y, self.runtime)

    def state(self, name: str) -> Any:
        return self.remedies.states[name]

    def seed(self, *parts: int) -> int:
        return derived_seed(self.config.seed, *parts)


def remedy_hooks(context: PhaseContext) -> list[Hook]:
    """The phase's remedies' hooks, in their declared acting order (run/remedy.py's ACTING_ORDER)."""
    return [hook for remedy in context.config.phases[context.phase_index].remedies for hook in remedy.hooks(context)]
