"""ReDo, recycling dormant neurons (Sokar et al., "The Dormant Neuron Phenomenon in Deep Reinforcement
Learning", ICML 2023; reference code: google/dopamine, `dopamine/labs/redo/weight_recyclers.py`).

The reference code scores with the same epsilon, resets in ResNets only the first conv of each block (as
`nets/units.py` does), and draws incoming weights from Xavier uniform, the init of its Flax networks; here a
reset unit's incoming weights come from its own layer's default init, that of the rest of the layer.

A unit's score is E_x|h(x)| (over the batch, and over spatial positions for conv channels) divided by the mean
of that quantity over its layer, so scores average to 1 per layer; a unit with score <= tau is tau-dormant.
Resetting one re-draws its incoming weights from the layer's default init, zeroes its incoming bias and its
outgoing weights, resets its BatchNorm entries and zeroes Adam's moments (any optimiser's per-entry state) of
the incoming and outgoing weights, as their code does (weight_recyclers.py at 5873f54, lines 554-559 with
`reset_momentum`, 51-53). Their code leaves the incoming bias's moments as they are: its masks exist only for
parameters of two or more dimensions (lines 587-594; a 1-D parameter's mask is None, which `reset_momentum`
passes over) while the bias itself is zeroed (lines 637-642). So does `bias_state="keep"`, the default;
`bias_state="zero"` zeroes them too, as continual backprop's gnt.py does and as the package did before. Only
units with an incoming bias are concerned: an MLP's hidden features; the ResNet's units (each block's conv1,
which has no bias) train alike under both, so every ResNet run keeps its key and its meaning (an MLP run with
ReDo stored before this option zeroed those moments under the key it still has; no study's preset trains one).
Their networks have no normalisation layers (`networks.py`): the reset of a unit's BatchNorm entries, and of
their optimiser state, is this package's extension. Which units exist (output layer excluded) is defined in
`nets/units.py`; activations come from `measures/activations.probe_activations`.
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
from .unit_reset import BIAS_STATES, UnitCount, reinitialise_units_


def redo_reset_(model: nn.Module, scores: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None = None,
                tau: float = 0.1, generator: torch.Generator | None = None,
                bias_state: str = "keep") -> dict[str, torch.Tensor]:
    """Reset every unit whose score is <= tau, in place; returns the reset unit indices per layer (`bias_state`:
    the incoming bias's optimiser state, kept as their code keeps it, or zeroed: module doc)."""
    layers = {layer.name: layer for layer in unit_layers(model)}
    unknown = scores.keys() - layers.keys()
    if unknown:
        raise ValueError(f"scores for layers this model has no units in: {sorted(unknown)}")
    reset = {}
    for name, score in scores.items():
        reset[name] = torch.nonzero(score <= tau).flatten()
        reinitialise_units_(layers[name], reset[name], optimizer, generator, bias_state=bias_state)
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
    # the incoming bias's optimiser state: keep, as their code; zero, as the weights' (module doc)
    bias_state: str = ranged("keep", choices=BIAS_STATES)

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
        reset = redo_reset_(model, scores, optimizer, self.settings.tau, self.generator, self.settings.bias_state)
        self.reset += sum(int(index.numel()) for index in reset.values())
