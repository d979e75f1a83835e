"""Unit activations captured with forward hooks, and probe passes that leave the model as it was."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..nets.units import INPUT, RELU_OF_OUTPUT, ActivationSite, unit_sites


@contextlib.contextmanager
def record_activations(model: nn.Module, sites: list[ActivationSite] | None = None
                       ) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass stores the post-ReLU activation at each site (detached) by name; the
    default sites are the resettable units (`unit_sites`). Dim 1 indexes units: channels or features.

    Wrap a training step's forward pass to feed continual backprop without a second pass.
    """
    recorded: dict[str, torch.Tensor] = {}

    def recorder(site):
        if site.read == INPUT:
            return lambda module, inputs: recorded.__setitem__(site.name, inputs[0].detach())
        # Both models apply a functional ReLU after a BatchNorm (or a hidden Linear), so the hook applies it too.
        relu = site.read == RELU_OF_OUTPUT
        return lambda module, inputs, output: recorded.__setitem__(site.name,
                                                                   (F.relu(output) if relu else output).detach())

    handles = [site.module.register_forward_pre_hook(recorder(site)) if site.read == INPUT
               else site.module.register_forward_hook(recorder(site))
               for site in (sites if sites is not None else unit_sites(model))]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def call_keeping_buffers(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x), in the model's current mode, without moving its BatchNorm running statistics.

    A train-mode probe would otherwise update them; the pass runs on copies of the buffers instead.
    """
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    return functional_call(model, buffers, (x,))


@torch.no_grad()
def probe_activations(model: nn.Module, x: torch.Tensor,
                      sites: list[ActivationSite] | None = None) -> dict[str, torch.Tensor]:
    """The post-ReLU activation at each site (default: the resettable units) on the probe batch `x`, in one pass
    in the model's current mode (BN: say which), its BatchNorm running statistics left as they were."""
    sites = sites if sites is not None else unit_sites(model)
    with record_activations(model, sites) as recorded:
        call_keeping_buffers(model, x)
    return {site.name: recorded[site.name] for site in sites}
