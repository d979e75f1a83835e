"""FIRE, Frobenius-isometry reinitialisation (Han et al., "FIRE: Frobenius-Isometry Reinitialization for Balancing
the Stability-Plasticity Tradeoff", ICLR 2026), as in the authors' code: isaac7778/FIRE at c37a0ac,
`vision/interventions/fire.py`, `fire` and `newton_schulz` (lines 5-47).

Every Conv2d and Linear weight (the head and 1x1 shortcuts included; biases and BatchNorm untouched) is moved
towards the nearest scaled semi-orthogonal matrix: X <- W / ||W||_F, then `iterations` Newton-Schulz steps
X <- 1.5 X - 0.5 X X^T X (on the transpose when d_in > d_out, so that X^T X is the smaller Gram matrix), then
X * sqrt(d_out / d_in) / (kh * kw). A convolution's every kernel tap (out x in, one per position of its kh x kw
kernel) is treated alone, each normalised by its own Frobenius norm. The steps converge slowly for small singular
values: after their 10, a square tap is not exactly orthogonal (at a width-64 ResNet-18's initialisation, 9-33 %
of a square tap's singular values stay below 0.9), so the tests hold ours to their function, not to an isometry.
Zero iterations is not the identity: it leaves each tap at W / ||W||_F times the scale.

How the authors call it (vision/train.py:162-191, config.py:38-41, scripts/warm_start.sh:13): once per new chunk
from the second on (`i_iter > 0`), before its first step, after the new optimiser is built and after shrink-and-
perturb and DASH when those are on too, with 10 iterations. Their ViT variant (`is_vit`: only the attention's
query and key projections) has no counterpart here: the package's nets are a ResNet and an MLP.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..core.config import ConfigError, ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

A, B = 1.5, -0.5  # the Newton-Schulz coefficients (fire.py:32)


def newton_schulz(matrix: torch.Tensor, iterations: int) -> torch.Tensor:
    """`matrix` / ||matrix||_F, then `iterations` steps X <- 1.5 X - 0.5 X X^T X, on the transpose of a wide matrix
    (fire.py:31-47: the same operations in the same order, so the floats are theirs)."""
    wide = matrix.size(1) > matrix.size(0)
    x = matrix.T if wide else matrix
    x = x / x.norm()
    for _ in range(iterations):
        gram = x.T @ x
        x = A * x + B * x @ gram
    return x.T if wide else x


def fire_weight(weight: torch.Tensor, iterations: int) -> torch.Tensor:
    """A Linear (out, in) or Conv2d (out, in, kh, kw) weight made FIRE's: each tap orthogonalised alone, all scaled
    by sqrt(out / in) / (kh kw) (fire.py:16-28)."""
    if weight.ndim == 4:
        out = torch.zeros_like(weight)
        for i in range(weight.shape[2]):
            for j in range(weight.shape[3]):
                out[:, :, i, j] = newton_schulz(weight[:, :, i, j], iterations)
        taps = weight.shape[2] * weight.shape[3]
    else:
        out, taps = newton_schulz(weight, iterations), 1
    out *= math.sqrt(weight.shape[0] / weight.shape[1]) / taps
    return out


def fire_parameters(model: nn.Module) -> list[str]:
    """Names of the weights FIRE reinitialises: those of every Conv2d and Linear module (fire.py:7-9)."""
    return [f"{name}.weight" for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def fire_(model: nn.Module, iterations: int = 10) -> nn.Module:
    """Reinitialise `model`'s Conv2d and Linear weights in place, as FIRE does; biases, BatchNorm parameters and
    buffers stay. (Their code rebinds `param.data`; copying in place keeps the parameter's tensor, and so its memory
    format and the optimiser's reference, with the same values.)"""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.weight.copy_(fire_weight(module.weight.detach(), iterations))
    return model


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Fire(Remedy):
    """Han et al. (ICLR 2026): every Conv2d and Linear weight orthogonalised by Newton-Schulz and rescaled, once at
    the start of each phase after the first, as their code calls it (isaac7778/FIRE vision/train.py:165, 190-191)."""

    NAME = "fire"
    ACTS = "at the phase start"
    PLACEMENT = "tuning start"

    # Newton-Schulz steps on each normalised weight (tap): their default and every run of theirs, 10 (config.py:40,
    # scripts/warm_start.sh:13); 0 leaves each tap at W / ||W||_F times the scale
    iterations: int = ranged(10, ge=0)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [FireHook(self)]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if any(index == 0 for index, _ in settings):
            raise ConfigError("fire acts when new data arrives, from the second phase on (as its authors run it, "
                              "FIRE vision/train.py:165): set it on a later phase")


class FireHook(Hook):
    """FIRE at the phase start, before its first step."""

    def __init__(self, settings: Fire):
        self.settings = settings

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase) -> None:
        fire_(model, self.settings.iterations)
