"""ReDo, recycling dormant neurons (Sokar et al., "The Dormant Neuron Phenomenon in Deep Reinforcement
Learning", ICML 2023; reference code: google/dopamine, `dopamine/labs/redo/weight_recyclers.py`).

The reference code scores with the same epsilon, resets in ResNets only the first conv of each block (as
`units.py` does), and draws incoming weights from Xavier uniform, the init of its Flax networks; here a
reset unit's incoming weights come from its own layer's default init, that of the rest of the layer.

A unit's score is E_x|h(x)| (over the batch, and over spatial positions for conv channels) divided by the mean
of that quantity over its layer, so scores average to 1 per layer; a unit with score <= tau is tau-dormant.
Resetting one re-draws its incoming weights from the layer's default init, zeroes its incoming bias and its
outgoing weights, resets its BatchNorm entries and zeroes the optimiser state of all of those. Which units
exist (output layer excluded) is defined in `units.py`; activations come from `activations.probe_activations`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..nets.units import unit_layers
from .unit_reset import reinitialise_units_

# The reference code's guard: a layer whose units are all silent gets scores 0, not NaN.
SCORE_EPSILON = 1e-9


def dormant_scores(activations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per layer, each unit's mean |h| divided by the layer's mean of it (dim 1 indexes units)."""
    scores = {}
    for name, h in activations.items():
        per_unit = h.abs().mean(dim=[d for d in range(h.ndim) if d != 1])
        scores[name] = per_unit / (per_unit.mean() + SCORE_EPSILON)
    return scores


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
