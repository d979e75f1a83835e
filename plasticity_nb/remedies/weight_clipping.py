"""Weight clipping (Elsayed, Lan, Lyle & Mahmood, "Weight Clipping for Deep Continual and Reinforcement
Learning", RLC 2024; reference code: mohmdelsayed/weight-clipping, `core/optim/weight_clipping.py`, `InitBounds`
and `WeightClippingSGD.weight_clipping`, lines 3-53).

After every optimiser step, each parameter is clamped to +-zeta * b with b = 1/sqrt(fan_in), the bound of
PyTorch's default (Kaiming-uniform) init of conv and linear weights and biases, recomputed each step. As in
their code, the parameters are visited in registration order and a 1-D tensor (a bias, or a BatchNorm's gamma
and beta) takes the fan-in of the last 2-D/4-D weight visited before it. For a BatchNorm network this clips
gamma (initially 1) to zeta / sqrt(fan_in of the preceding conv) on the first step: 0.12 after a w8 3x3 conv of
8 channels at zeta 1. Their code does that to their ResNet-18 too; it is their method, so it is the default.
`norm_parameters="skip"` leaves BatchNorm's gamma and beta unclipped instead (a deliberate deviation: the
bound is an init bound, and gamma's init is 1, not a draw from +-1/sqrt(fan_in)). Clipping leaves the optimiser
state as it is, as theirs does.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

NORM_PARAMETERS = ("clip", "skip")  # BatchNorm's gamma and beta: clipped by the preceding weight's bound, or not


def clip_bounds(model: nn.Module, norm_parameters: str = "clip", clip_last_layer: bool = True
                ) -> list[tuple[nn.Parameter, float]]:
    """(parameter, b) for every parameter clipped to +-zeta*b, in their code's order and rule (module doc)."""
    if norm_parameters not in NORM_PARAMETERS:
        raise ValueError(f"norm_parameters must be one of {NORM_PARAMETERS}, got {norm_parameters!r}")
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    params = list(model.parameters())
    if not clip_last_layer:  # their rule: the group's last two parameters (the head's weight and bias)
        params = params[:-2]
    bounds, previous = [], None
    for p in params:
        if p.dim() in (2, 4):
            previous = p
        elif p.dim() != 1:
            raise ValueError(f"weight clipping handles 1-, 2- and 4-D parameters, got shape {tuple(p.shape)}")
        if previous is None:
            raise ValueError("a 1-D parameter comes before any weight: no fan-in to bound it by")
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(previous)
        if not (norm_parameters == "skip" and id(p) in norm):
            bounds.append((p, 1.0 / math.sqrt(fan_in)))
    return bounds


@torch.no_grad()
def clip_weights_(model: nn.Module, zeta: float, norm_parameters: str = "clip",
                  clip_last_layer: bool = True) -> torch.Tensor:
    """Clamp the parameters in place (module doc); returns the share of their entries that were outside, a 0-dim
    tensor on the model's device (read it once an epoch, not once a step: each read waits for the device)."""
    bounds = clip_bounds(model, norm_parameters, clip_last_layer)
    clipped = torch.zeros((), device=next(model.parameters()).device)
    for p, bound in bounds:
        clipped += (p.abs() > zeta * bound).sum()
        p.clamp_(-zeta * bound, zeta * bound)
    return clipped / max(1, sum(p.numel() for p, _ in bounds))


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightClipping(Remedy):
    """Elsayed et al. (RLC 2024), as their code (mohmdelsayed/weight-clipping core/optim/weight_clipping.py:3-53):
    after every step, clamp each parameter to +-zeta / sqrt(fan_in)."""

    NAME = "weight_clipping"
    ACTS = "after every step"
    PLACEMENT = "both phases"

    zeta: float = ranged(1.0, gt=0)  # their optimiser's default (their CIFAR-10 ResNet-18 grid: 1-20)
    # clip: BatchNorm's gamma and beta by the preceding weight's bound, as their code; skip: leave them
    norm_parameters: str = ranged("clip", choices=NORM_PARAMETERS)
    clip_last_layer: bool = True  # their default; False leaves the head's weight and bias unclipped

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [WeightClippingHook(self)]


class WeightClippingHook(Hook):
    """Clips after every optimiser step; logs each epoch's mean share of entries clipped per step."""

    def __init__(self, settings: WeightClipping):
        self.settings, self.share_sum, self.steps = settings, torch.zeros(()), 0

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        s = self.settings
        self.share_sum = self.share_sum.to(next(model.parameters()).device) + clip_weights_(
            model, s.zeta, s.norm_parameters, s.clip_last_layer)
        self.steps += 1

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict) -> None:
        row["clipped_share"] = self.share_sum.item() / self.steps if self.steps else math.nan
        self.share_sum, self.steps = torch.zeros(()), 0
