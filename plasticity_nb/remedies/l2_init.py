"""L2 Init (Kumar, Marklund & Van Roy, "Maintaining Plasticity in Continual Learning via Regenerative
Regularization", 2023): add coefficient * sum_l ||theta_l - theta0_l||^2 to the loss, pulling towards the
*initial* weights.

A sum of squared norms, whose gradient is 2 * coefficient * (theta - theta0). Two public implementations get
it wrong: baekrok/DASH-Direction-Aware-SHrinking `utils/train_utils.py` (`l2_init`) squares the sum of
per-layer norms (and only regularises `.weight`s); another regularises only the last parameter, unsquared.
"""
from __future__ import annotations

import torch
from torch import nn


def initial_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter: theta0 for the penalty (take it right after initialisation)."""
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def l2_init_penalty(model: nn.Module, initial_params: dict[str, torch.Tensor], coefficient: float) -> torch.Tensor:
    """coefficient * sum over all parameters of ||theta - theta0||^2, differentiable in the model's parameters."""
    named = dict(model.named_parameters())
    if named.keys() != initial_params.keys():
        raise ValueError("initial_params must hold exactly the model's parameters (use initial_parameters(model))")
    squared = [(param - initial_params[name]).pow(2).sum() for name, param in named.items()]
    return coefficient * torch.stack(squared).sum()
