"""Shrink and perturb (Ash & Adams, "On Warm-Starting Neural Network Training", NeurIPS 2020).

theta <- shrink * theta + perturb * theta_fresh, for every parameter, with theta_fresh a new initialisation
of the same architecture (so the noise follows each layer's init scale). Reference: JordanAsh/warm_start,
`run.py`, `shrink_perturb`. That code builds a new network, so BatchNorm running statistics silently return
to their defaults each round; here that choice is the explicit `bn_statistics` argument.
"""
from __future__ import annotations

import torch
from torch import nn

from .settings import BN_STATISTICS


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
