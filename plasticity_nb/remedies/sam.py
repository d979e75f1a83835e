"""Sharpness-aware minimisation (Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021), as baekrok/DASH-Direction-Aware-SHrinking runs it on
warm-started ResNet-18s: `utils/SAM.py` (`first_step`, `second_step`, `_grad_norm`, lines 15-59, the davda54/sam
class) called by `main.py` `train_epoch`, lines 123-133, with `--rho 0.1` (line 155).

Each step: the usual forward-backward gives g at w; w moves to w + e, e = rho * g / (||g|| + 1e-12) (||g|| the
norm of all parameters' gradient norms; parameters without a gradient stay put); a second forward-backward
of the same batch and loss (penalties included, as their `return_loss`) at w + e gives the gradient the
optimiser applies at w, restored. BatchNorm stays in train mode for both passes, so its running statistics move
twice per step, the second time at w + e, as in their code (rho 0 is therefore not the plain step). The logged
loss and accuracy are the first pass's, as theirs. Their base optimiser is SGD with momentum; here it is the
phase's optimiser (the protocol's Adam), SAM being a wrapper around any.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

GRAD_NORM_EPSILON = 1e-12  # their `rho / (grad_norm + 1e-12)`


@torch.no_grad()
def ascend_(model: nn.Module, rho: float) -> dict[nn.Parameter, torch.Tensor]:
    """Move the parameters that have a gradient to w + rho * g / (||g|| + 1e-12); returns their old values."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return {}
    grad_norm = torch.norm(torch.stack([p.grad.norm(p=2) for p in params]), p=2)
    scale = rho / (grad_norm + GRAD_NORM_EPSILON)
    old = {}
    for p in params:
        old[p] = p.detach().clone()
        p.add_(p.grad * scale.to(p))
    return old


@torch.no_grad()
def restore_(old: dict[nn.Parameter, torch.Tensor]) -> None:
    for p, value in old.items():
        p.copy_(value)


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class SAM(Remedy):
    """Foret et al. (ICLR 2021), as baekrok/DASH-Direction-Aware-SHrinking utils/SAM.py and main.py:123-133:
    each step's gradient taken at w + rho g / ||g||, a second forward-backward pass per step."""

    NAME = "sam"
    ACTS = "around every step (a second forward-backward pass)"
    PLACEMENT = "both phases"

    rho: float = ranged(0.1, ge=0)  # radius of the ascent step: the DASH repository's --rho (SAM.py's default: 0.05)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [SAMHook(self)]


class SAMHook(Hook):
    def __init__(self, settings: SAM):
        self.settings = settings

    def refine_gradient(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                        backward_again: Callable[[], None]) -> None:
        old = ascend_(model, self.settings.rho)
        backward_again()
        restore_(old)
