"""ReDo, recycling dormant neurons (Sokar et al., "The Dormant Neuron Phenomenon in Deep Reinforcement
Learning", ICML 2023; reference code: google/dopamine, `dopamine/labs/redo/weight_recyclers.py`).

The reference code scores with the same epsilon, resets in ResNets only the first conv of each block (as
`nets/units.py` does), and draws incoming weights from Xavier uniform, the init of its Flax networks; here a
reset unit's incoming weights come from its own layer's default init, that of the rest of the layer.

A unit's score is E_x|h(x)| (over the batch, and over spatial positions for conv channels) divided by the mean
of that quantity over its layer, so scores average to 1 per layer; a unit with score <= tau is tau-dormant.
Resetting one re-draws its incoming weights from the layer's default init, zeroes its incoming bias and its
outgoing weights, resets its BatchNorm entries and zeroes the optimiser state of all of those. Which units
exist (output layer excluded) is defined in `nets/units.py`; activations come from
`measures/activations.probe_activations`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..core.config import ranged
from ..measures.activations import probe_activations
from ..measures.plasticity_metrics import dormant_scores
from ..nets.units import unit_layers
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register
from .unit_reset import UnitCount, reinitialise_units_


def redo_reset_(model: nn.Module, scores: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None = None,
                tau: float = 0.1, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Reset every unit whose score is <= tau, in place; returns the reset unit indices per layer."""
    layers = {layer.name: layer for layer in unit_layers(model)}
    unknown = scores.keys() - layers.keys()
    if unknown:
        raise ValueError(f"scores for layers this model has no units in: {sorted(unknown)}")
    reset = {}
    for name, score in scores.items():
        reset[name] = torch.nonzero(score <= tau).flatten()
        reinitialise_units_(layers[name], reset[name], optimizer, generator)
    return reset


GENERATOR_SEED_TAG = 6  # derived_seed(run seed, 6): the run's ReDo generator (scoring draws, fresh weights)


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ReDo(Remedy):
    """Sokar et al. (ICML 2023): every `every` steps, re-initialise the tau-dormant units."""

    NAME = "redo"
    ACTS = "every `every` steps"
    PLACEMENT = "both phases"


    tau: float = ranged(0.1, ge=0)  # dormancy threshold on the unit's normalised score (their performance runs)
    every: int = ranged(1000, gt=0)  # steps between resets (their F; "~1000" is uncertain: presets choose their own)
    # training examples of the phase's pool (drawn anew at each reset) that score the units
    examples: int = ranged(256, gt=0)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [ReDoHook(self, context.pool(), context.state(self.NAME).generator)]

    @classmethod
    def run_state(cls, settings: list["ReDo"], model: nn.Module, seed) -> "GeneratorState":
        return GeneratorState(torch.Generator().manual_seed(seed(GENERATOR_SEED_TAG)))


class GeneratorState:
    """One generator for the whole run, checkpointed with it."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class ReDoHook(UnitCount):
    """ReDo every `every` steps of the run, scoring units on `examples` drawn afresh from the phase's pool."""

    def __init__(self, settings: ReDo, pool: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator):
        self.settings, self.pool, self.generator = settings, pool, generator

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        if step % self.settings.every:
            return
        x, _ = self.pool
        pick = torch.randperm(len(x), generator=self.generator)[:self.settings.examples].to(x.device)
        scores = dormant_scores(probe_activations(model, x[pick]))
        reset = redo_reset_(model, scores, optimizer, self.settings.tau, self.generator)
        self.reset += sum(int(index.numel()) for index in reset.values())
