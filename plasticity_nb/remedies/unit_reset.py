"""Re-initialising chosen units of a unit layer: the shared step of ReDo and continual backprop."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..nets.units import UnitLayer
from .optimizer_state import zero_optimizer_state_


def fresh_incoming_weights(layer: nn.Conv2d | nn.Linear, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """`count` new rows of `layer.weight` from its default init (PyTorch's kaiming_uniform_, a = sqrt(5)).

    The fan-in depends only on the trailing dimensions, so drawing just the rows gives the layer's bound.
    """
    shape = (count, *layer.weight.shape[1:])
    device = generator.device if generator is not None else layer.weight.device
    rows = torch.empty(shape, dtype=layer.weight.dtype, device=device)
    nn.init.kaiming_uniform_(rows, a=math.sqrt(5), generator=generator)
    return rows.to(layer.weight.device)


@torch.no_grad()
def reinitialise_units_(layer: UnitLayer, index: torch.Tensor, optimizer: torch.optim.Optimizer | None = None,
                        generator: torch.Generator | None = None) -> None:
    """Units `index` of `layer` start afresh: new incoming weights, zero incoming bias, zero outgoing weights
    (so the network's output does not jump), BatchNorm entries at their defaults (weight 1, bias 0, running
    mean 0, running variance 1), and the optimiser state of every one of those entries zeroed.
    """
    if index.numel() == 0:
        return
    incoming, outgoing, norm = layer.incoming, layer.outgoing, layer.norm
    incoming.weight[index] = fresh_incoming_weights(incoming, index.numel(), generator)
    zero_optimizer_state_(optimizer, incoming.weight, index, 0)
    if incoming.bias is not None:
        incoming.bias[index] = 0
        zero_optimizer_state_(optimizer, incoming.bias, index, 0)
    outgoing.weight[:, index] = 0
    zero_optimizer_state_(optimizer, outgoing.weight, index, 1)
    if norm is not None:
        norm.weight[index], norm.bias[index] = 1, 0
        norm.running_mean[index], norm.running_var[index] = 0, 1
        zero_optimizer_state_(optimizer, norm.weight, index, 0)
        zero_optimizer_state_(optimizer, norm.bias, index, 0)
