"""Shrink and perturb (Ash & Adams, "On Warm-Starting Neural Network Training", NeurIPS 2020).

theta <- shrink * theta + perturb * theta_fresh, for every parameter, with theta_fresh a new initialisation
of the same architecture (so the noise follows each layer's init scale). Reference: JordanAsh/warm_start,
`run.py`, `shrink_perturb`. That code builds a new network, so BatchNorm running statistics silently return
to their defaults each round; here that choice is the explicit `bn_statistics` argument.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

BN_STATISTICS = ("reset", "keep")  # BatchNorm running statistics back to their defaults, or kept
FRESH_SEED_TAG = 7  # derived_seed(run seed, phase index, 7): the phase's fresh initialisation


@torch.no_grad()
def shrink_perturb_(model: nn.Module, fresh: nn.Module, shrink: float, perturb: float,
                    bn_statistics: str = "reset") -> nn.Module:
    """Shrink and perturb `model`'s parameters in place; `fresh` is a freshly initialised twin (seed it).

    Parameters only (BN affine weights and biases included, as in the reference code); buffers are not
    parameters, so BN running statistics follow `bn_statistics`: "reset" (back to mean 0, variance 1, as the
    reference code does by rebuilding the network) or "keep" (as estimated on the old weights).
    """
    if bn_statistics not in BN_STATISTICS:
        raise ValueError(f"bn_statistics must be one of {BN_STATISTICS}, got {bn_statistics!r}")
    fresh_params = dict(fresh.named_parameters())
    for name, param in model.named_parameters():
        if name not in fresh_params or fresh_params[name].shape != param.shape:
            raise ValueError(f"fresh model does not match: parameter {name!r} missing or of another shape")
        param.mul_(shrink).add_(fresh_params[name], alpha=perturb)
    if bn_statistics == "reset":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    return model


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ShrinkPerturb(Remedy):
    """Ash & Adams (NeurIPS 2020): theta <- shrink * theta + perturb * theta_fresh at the phase start."""

    NAME = "shrink_perturb"
    ACTS = "at the phase start"
    PLACEMENT = "tuning start"


    shrink: float = ranged(0.6, ge=0)  # lambda: their Fig. 8 trade-off sweet spot (their code's default is 0.4)
    perturb: float = ranged(0.01, ge=0)  # sigma: scale of the fresh initialisation added (Fig. 8: ~0.01; code: 0.1)
    # reset: as their code (it rebuilds the network); keep: as estimated before
    bn_statistics: str = ranged("reset", choices=BN_STATISTICS)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        seed = context.seed(context.phase_index, FRESH_SEED_TAG) % 2**31
        return [ShrinkPerturbHook(self, lambda: context.fresh_model(seed))]


class ShrinkPerturbHook(Hook):
    """Shrink-and-perturb at the phase start; `fresh()` builds the seeded new initialisation."""

    def __init__(self, settings: ShrinkPerturb, fresh: Callable[[], nn.Module]):
        self.settings, self.fresh = settings, fresh

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase) -> None:
        s = self.settings
        shrink_perturb_(model, self.fresh(), s.shrink, s.perturb, s.bn_statistics)
