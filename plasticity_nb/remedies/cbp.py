"""Continual backprop (Dohare et al., "Loss of plasticity in deep continual learning", Nature 2024; reference
code: shibhansh/loss-of-plasticity, `lop/algos/gnt.py` for the running, bias-corrected utility and the fresh
weights, `lop/algos/cbp_linear.py` and `cbp_conv.py` for the replacement count; their ResNet experiment calls
`lop/algos/res_gnt.py`, incremental_cifar_experiment.py:120-126, 396).

Per unit: utility u <- eta u + (1 - eta) * mean|h| * sum|w_out| (mean over the batch, and spatial positions
for conv channels; sum over the unit's outgoing weights) and an age. Each step, per layer, the accumulator
gains rho * (number of units with age > maturity); its integer part is the number of those mature units
replaced, lowest bias-corrected utility u / (1 - eta^age) first. Counting only mature units avoids a burst of
replacements when units first mature; ranking by the corrected utility keeps young units' shrunken running
averages from marking them as useless. A replaced unit gets fresh incoming weights, zero outgoing weights,
BatchNorm defaults and zeroed optimiser state (`unit_reset.py`), and utility and age 0.

Fresh incoming weights are drawn as gnt.py draws them (`fresh_init="kaiming"`: U(+-sqrt(2) sqrt(3/fan_in)), std
sqrt(2/fan_in), the std of res_gnt.py's normal draw too); `fresh_init="default"` (the layer's own PyTorch init,
2.45x smaller) is kept as an option.

The next layer's bias is not corrected for a replaced unit's mean contribution, as in effect none of the
reference implementations corrects it: gnt.py writes the correction (lines 197-202, next bias += w_out * mean
activation / (1 - eta^age)) but reads the unit's running mean activation after `test_features` has zeroed it
(line 174, before `gen_new_features` in `gen_and_test`, lines 235-236), so it adds 0; cbp_linear.py and
res_gnt.py have none (and our block convs have no bias).

Differences from the reference code, on purpose: outgoing magnitude is a sum (the paper's formula; gnt.py
takes a mean, the same ranking within a layer); the units are each block's first conv (the set for which zeroing
outgoing weights removes a unit; res_gnt.py also replaces the stem and every block's second conv, ignoring the
shortcut); optimiser state is zeroed (res_gnt.py keeps SGD's momentum; gnt.py zeroes Adam's, the incoming
bias's included, lines 216-225); torch's optimisers keep one step count per tensor (see `optimizer_state.py`).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import ContextManager

import torch
from torch import nn

from ..core.config import ConfigError, ranged, versioned
from ..measures.activations import record_activations
from ..nets.units import UnitLayer, unit_layers
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register
from .unit_reset import FRESH_INITS, UnitCount, reinitialise_units_


class ContinualBackprop:
    """Call `step(activations, optimizer)` after each optimiser step, with that step's unit activations
    (`activations.record_activations` around its forward pass). rho = 0 never changes the model."""

    def __init__(self, model: nn.Module, replacement_rate: float, maturity_threshold: int, decay: float = 0.99,
                 generator: torch.Generator | None = None, fresh_init: str = "kaiming"):
        if not 0 <= replacement_rate <= 1 or maturity_threshold < 0 or not 0 <= decay < 1:
            raise ValueError("need 0 <= replacement_rate <= 1, maturity_threshold >= 0 and 0 <= decay < 1")
        self.layers = unit_layers(model)
        self.replacement_rate, self.maturity_threshold, self.decay = replacement_rate, maturity_threshold, decay
        self.generator, self.fresh_init = generator, fresh_init
        device = next(model.parameters()).device
        self.utility = {layer.name: torch.zeros(layer.size, device=device) for layer in self.layers}
        self.age = {layer.name: torch.zeros(layer.size, dtype=torch.long, device=device) for layer in self.layers}
        # fractional units owed per layer
        self.to_replace = {layer.name: torch.zeros((), dtype=torch.float64) for layer in self.layers}

    def step(self, activations: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None = None
             ) -> dict[str, torch.Tensor]:
        """Update utilities and ages, replace the units due; returns the replaced indices per layer."""
        return {layer.name: self.layer_step(layer, activations[layer.name], optimizer) for layer in self.layers}

    @torch.no_grad()
    def layer_step(self, layer: UnitLayer, h: torch.Tensor, optimizer) -> torch.Tensor:
        name = layer.name
        self.age[name] += 1
        self.utility[name].mul_(self.decay).add_((1 - self.decay) * contribution(layer, h))
        mature = torch.nonzero(self.age[name] > self.maturity_threshold).flatten()
        self.to_replace[name] += self.replacement_rate * mature.numel()
        count = int(self.to_replace[name])
        self.to_replace[name] -= count
        if count == 0:
            return mature[:0]
        corrected = self.bias_corrected_utility(name)[mature]
        replaced = mature[torch.topk(corrected, count, largest=False).indices]
        reinitialise_units_(layer, replaced, optimizer, self.generator, self.fresh_init)
        self.utility[name][replaced], self.age[name][replaced] = 0, 0
        return replaced

    def bias_corrected_utility(self, name: str) -> torch.Tensor:
        """u / (1 - eta^age), as Adam corrects its moments: the running average starts at 0."""
        return self.utility[name] / (1 - self.decay ** self.age[name].double()).to(self.utility[name].dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name in self.utility:
            state[f"{name}.utility"], state[f"{name}.age"] = self.utility[name], self.age[name]
            state[f"{name}.to_replace"] = self.to_replace[name]
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return {key: value.clone() for key, value in state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.state_dict().keys():
            raise ValueError("state does not match this model's unit layers (or generator)")
        for name in self.utility:
            self.utility[name].copy_(state[f"{name}.utility"])
            self.age[name].copy_(state[f"{name}.age"])
            self.to_replace[name].copy_(state[f"{name}.to_replace"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])


def contribution(layer: UnitLayer, h: torch.Tensor) -> torch.Tensor:
    """mean|h_i| * sum|w_out[:, i]| per unit i: how much unit i feeds the next layer on this batch."""
    mean_activation = h.abs().mean(dim=[d for d in range(h.ndim) if d != 1])
    weight = layer.outgoing.weight.abs()
    outgoing_magnitude = weight.sum(dim=[d for d in range(weight.ndim) if d != 1])
    return mean_activation * outgoing_magnitude


GENERATOR_SEED_TAG = 5  # derived_seed(run seed, 5): the run's continual-backprop generator


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContinualBackpropSettings(Remedy):
    """Dohare et al. (Nature 2024): each step, replace the mature units with the lowest utility."""

    NAME = "cbp"
    ACTS = "after every step"
    PLACEMENT = "both phases"


    # rho: units replaced per mature unit and step (incremental CIFAR-100)
    replacement_rate: float = ranged(1e-5, ge=0, le=1)
    # m: steps a unit is protected after (re)initialisation (incremental CIFAR-100)
    maturity_threshold: int = ranged(1000, ge=0)
    decay: float = ranged(0.99, ge=0, lt=1)  # eta: the utility's running-average decay (their default)
    # kaiming: fresh incoming weights as gnt.py draws them (std sqrt(2/fan_in)); default: the layer's own init
    fresh_init: str = ranged("kaiming", choices=FRESH_INITS)
    # 2: gnt.py's fresh weights (2026-12-01); 1 (no field) drew them from the layer's default init
    version: int = versioned(2)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [ContinualBackpropHook(context.state(self.NAME))]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if len({s for _, s in settings}) > 1:
            raise ConfigError("cbp settings differ between phases: a run's units keep one utility and age "
                              "throughout, so every phase with cbp needs the same settings")

    @classmethod
    def run_state(cls, settings: list["ContinualBackpropSettings"], model: nn.Module, seed) -> ContinualBackprop:
        s = settings[0]
        return ContinualBackprop(model, s.replacement_rate, s.maturity_threshold, s.decay,
                                 generator=torch.Generator().manual_seed(seed(GENERATOR_SEED_TAG)),
                                 fresh_init=s.fresh_init)


class ContinualBackpropHook(UnitCount):
    """Continual backprop after every step, on the activations recorded during that step's forward pass."""

    def __init__(self, cbp: ContinualBackprop):
        self.cbp = cbp
        self.recorded: dict[str, torch.Tensor] = {}

    def around_forward(self, model: nn.Module) -> ContextManager:
        @contextlib.contextmanager
        def recording():
            with record_activations(model) as recorded:
                yield
            self.recorded = {name: h.float() for name, h in recorded.items()}
        return recording()

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        replaced = self.cbp.step(self.recorded, optimizer)
        self.reset += sum(int(index.numel()) for index in replaced.values())
