"""Unit activations captured with forward hooks, and probe passes that leave the model as it was."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..nets.units import INPUT, RELU_OF_OUTPUT, ActivationSite, UnitLayer, unit_layers


@contextlib.contextmanager
def record_activations(model: nn.Module, layers: list[UnitLayer] | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass stores every unit layer's post-ReLU activation (detached) by name.

    Wrap a training step's forward pass to feed continual backprop without a second pass.
    """
    recorded: dict[str, torch.Tensor] = {}

    def recorder(name):
        def hook(module, inputs, output):
            # Both models apply a functional ReLU after the pre-activation module, so the hook applies it too.
            recorded[name] = F.relu(output).detach()
        return hook

    handles = [layer.pre_activation.register_forward_hook(recorder(layer.name))
               for layer in (layers if layers is not None else unit_layers(model))]
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
                      layers: list[UnitLayer] | None = None) -> dict[str, torch.Tensor]:
    """Every unit layer's activation on the probe batch `x`, in the model's current mode (BN: say which)."""
    with record_activations(model, layers) as recorded:
        call_keeping_buffers(model, x)
    return dict(recorded)


@torch.no_grad()
def probe_site_activations(model: nn.Module, x: torch.Tensor, sites: list[ActivationSite]) -> dict[str, torch.Tensor]:
    """The post-ReLU activation at each site on the probe batch `x`, in the model's current mode, its BatchNorm
    running statistics left as they were (dim 1 indexes units: channels or features)."""
    recorded: dict[str, torch.Tensor] = {}

    def recorder(site):
        if site.read == INPUT:
            return lambda module, inputs: recorded.__setitem__(site.name, inputs[0].detach())
        relu = site.read == RELU_OF_OUTPUT
        return lambda module, inputs, output: recorded.__setitem__(site.name,
                                                                   (F.relu(output) if relu else output).detach())

    handles = [site.module.register_forward_pre_hook(recorder(site)) if site.read == INPUT
               else site.module.register_forward_hook(recorder(site)) for site in sites]
    try:
        call_keeping_buffers(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return {site.name: recorded[site.name] for site in sites}
