"""Re-initialising chosen units of a unit layer: the shared step of ReDo and continual backprop."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..nets.units import UnitLayer
from ..run.hooks import Hook
from .optimizer_state import zero_optimizer_state_

# How a re-initialised unit's incoming weights are drawn: "default", the layer's own PyTorch init
# (kaiming_uniform_ with a = sqrt(5): U(+-1/sqrt(fan_in)), std 0.058 at fan-in 100); "kaiming", continual
# backprop's (shibhansh/loss-of-plasticity lop/algos/gnt.py:74-75, 193-195: U(+-gain * sqrt(3/fan_in)) with
# the ReLU gain sqrt(2), std sqrt(2/fan_in) = 0.141 at fan-in 100, the std of res_gnt.py's normal draw too).
FRESH_INITS = ("default", "kaiming")
# What becomes of the optimiser state of a re-initialised unit's incoming bias: "zero", zeroed with the unit's other
# entries (continual backprop's gnt.py:217, 219); "keep", left as it is (ReDo's weight_recyclers.py: see redo.py).
BIAS_STATES = ("zero", "keep")


def fresh_incoming_weights(layer: nn.Conv2d | nn.Linear, count: int, generator: torch.Generator | None,
                           init: str = "default") -> torch.Tensor:
    """`count` new rows of `layer.weight`, drawn as `init` (one of FRESH_INITS) says.

    The fan-in depends only on the trailing dimensions, so drawing just the rows gives the layer's bound.
    """
    if init not in FRESH_INITS:
        raise ValueError(f"init must be one of {FRESH_INITS}, got {init!r}")
    shape = (count, *layer.weight.shape[1:])
    device = generator.device if generator is not None else layer.weight.device
    rows = torch.empty(shape, dtype=layer.weight.dtype, device=device)
    if init == "default":
        nn.init.kaiming_uniform_(rows, a=math.sqrt(5), generator=generator)
    else:
        bound = nn.init.calculate_gain("relu") * math.sqrt(3 / math.prod(shape[1:]))
        rows.uniform_(-bound, bound, generator=generator)
    return rows.to(layer.weight.device)


@torch.no_grad()
def reinitialise_units_(layer: UnitLayer, index: torch.Tensor, optimizer: torch.optim.Optimizer | None = None,
                        generator: torch.Generator | None = None, init: str = "default",
                        bias_state: str = "zero") -> None:
    """Units `index` of `layer` start afresh: new incoming weights (drawn as `init` says), zero incoming bias,
    zero outgoing weights (so the network's output does not jump), BatchNorm entries at their defaults (weight 1,
    bias 0, running mean 0, running variance 1), and the optimiser state of every one of those entries zeroed,
    but the incoming bias's where `bias_state` is "keep" (one of BIAS_STATES).
    """
    if bias_state not in BIAS_STATES:
        raise ValueError(f"bias_state must be one of {BIAS_STATES}, got {bias_state!r}")
    if index.numel() == 0:
        return
    incoming, outgoing, norm = layer.incoming, layer.outgoing, layer.norm
    incoming.weight[index] = fresh_incoming_weights(incoming, index.numel(), generator, init)
    zero_optimizer_state_(optimizer, incoming.weight, index, 0)
    if incoming.bias is not None:
        incoming.bias[index] = 0
        if bias_state == "zero":
            zero_optimizer_state_(optimizer, incoming.bias, index, 0)
    outgoing.weight[:, index] = 0
    zero_optimizer_state_(optimizer, outgoing.weight, index, 1)
    if norm is not None:
        norm.weight[index], norm.bias[index] = 1, 0
        norm.running_mean[index], norm.running_var[index] = 0, 1
        zero_optimizer_state_(optimizer, norm.weight, index, 0)
        zero_optimizer_state_(optimizer, norm.bias, index, 0)


class UnitCount(Hook):
    """Counts the units a hook re-initialised during an epoch, into the row's `units_reset` column."""

    reset = 0

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        row["units_reset"] = row.get("units_reset", 0) + self.reset
        self.reset = 0
