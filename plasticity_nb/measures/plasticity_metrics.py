"""Measures that accompany plasticity loss: dormant units, feature rank, weight growth, gradient imbalance.

Lyle et al. ("Understanding plasticity in neural networks", ICML 2023) show each can move either way with
plasticity loss: report them as correlates, not causes. Activations come from
`measures.activations.probe_activations`; every forward pass here runs in the model's current mode and leaves
its BatchNorm running statistics as they were (say which mode a reported number used: pitfalls 2 and 9 of
docs/study-protocols.md).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .activations import call_keeping_buffers

# The reference code's guard: a layer whose units are all silent gets scores 0, not NaN.
SCORE_EPSILON = 1e-9


def dormant_scores(activations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per layer, each unit's mean |h| divided by the layer's mean of it (dim 1 indexes units)."""
    scores = {}
    for name, h in activations.items():
        per_unit = h.abs().mean(dim=[d for d in range(h.ndim) if d != 1])
        scores[name] = per_unit / (per_unit.mean() + SCORE_EPSILON)
    return scores



def initial_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter: theta0 for the penalty (take it right after initialisation)."""
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def dormant_fraction(scores: dict[str, torch.Tensor], tau: float = 0.1) -> float:
    """Share of all units, pooled over layers, that are tau-dormant: ReDo score <= tau (Sokar et al., ICML
    2023; scores from `dormant_scores`)."""
    dormant = sum(int((score <= tau).sum()) for score in scores.values())
    return dormant / sum(score.numel() for score in scores.values())


def dohare_dormant_fraction(activations: dict[str, torch.Tensor], threshold: float = 0.01) -> float:
    """Share of all units, pooled over layers, that are non-zero on fewer than `threshold` of the inputs
    (Dohare et al., Nature 2024; shibhansh/loss-of-plasticity `lop/incremental_cifar/post_run_analysis.py`:
    for a conv channel, the rate is over examples and spatial positions). Dim 1 indexes units."""
    dormant = total = 0
    for h in activations.values():
        active_rate = (h != 0).float().mean(dim=[d for d in range(h.ndim) if d != 1])
        dormant += int((active_rate < threshold).sum())
        total += active_rate.numel()
    return dormant / total


def effective_rank(features: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values p_i = s_i / sum_j s_j (Roy & Vetterli 2007):
    a rank-k matrix with equal singular values has effective rank k."""
    singular = torch.linalg.svdvals(features.double())
    p = singular / singular.sum()
    p = p[p > 0]  # 0 log 0 = 0
    return math.exp(-(p * p.log()).sum().item())


def srank(features: torch.Tensor, delta: float = 0.01) -> int:
    """Smallest k whose top-k singular values reach (1 - delta) of their sum (Kumar et al., "Implicit
    Under-Parameterization Inhibits Data-Efficient Deep RL", ICLR 2021; as Dohare et al.'s
    `lop/incremental_cifar/post_run_analysis.py` computes it). Neither the ratio ||A||_F^2 / ||A||_2^2 that also
    goes by "stable rank", nor the "approximate rank" on squared singular values in `lop/utils/miscellaneous.py`."""
    singular = torch.linalg.svdvals(features.double())  # descending
    reached = torch.cumsum(singular, 0) / singular.sum()
    return int((reached < 1 - delta).sum()) + 1


def mean_weight_magnitude(model: nn.Module) -> float:
    """Mean |theta| over every parameter (Dohare et al.'s average weight magnitude)."""
    total = sum(p.detach().abs().double().sum().item() for p in model.parameters())
    return total / sum(p.numel() for p in model.parameters())


def parameter_distance(model: nn.Module, reference: dict[str, torch.Tensor]) -> float:
    """||theta - theta_ref|| over all parameters: to the initial weights (theta0, e.g. from
    `initial_parameters`) or to the end of pretraining (theta_pre)."""
    named = dict(model.named_parameters())
    if named.keys() != reference.keys():
        raise ValueError("reference must hold exactly the model's parameters")
    squared = sum((p.detach() - reference[n]).double().pow(2).sum().item() for n, p in named.items())
    return math.sqrt(squared)


def active_fraction(features: torch.Tensor) -> float:
    """Share of (input, feature) entries of a batch x features ReLU matrix that are non-zero: Plasticine's
    "fraction of active units" (RLE-Foundation/Plasticine `plasticine_metrics/units.py`, lines 89-111, at
    aa00b4b: `1 - mean(features == 0)`), pooled over the matrix (a unit active on half the inputs counts 0.5)."""
    return 1.0 - (features == 0).double().mean().item()


def feature_norm(features: torch.Tensor) -> float:
    """Mean over inputs of each input's L2 norm of its features (Plasticine `plasticine_metrics/norm.py`, lines
    33-45: `mean(norm(features, dim=1))`)."""
    return features.double().norm(dim=1).mean().item()


def feature_variance(features: torch.Tensor) -> float:
    """Mean over inputs of the variance across an input's features (unbiased), as Plasticine computes it
    (`plasticine/metrics.py`, lines 152-164, at 78ea347: `mean(var(features, dim=1))`); not the variance of each
    feature across inputs, which also goes by that name."""
    return features.double().var(dim=1).mean().item()


def zero_gradient_share(gradients: Iterable[torch.Tensor]) -> float:
    """Share of all parameter entries whose gradient is exactly 0 (this package's definition: the cross-entropy
    gradient on the probe batch, every parameter; Plasticine logs only the gradient's norm)."""
    gradients = list(gradients)
    return sum(int((g == 0).sum()) for g in gradients) / sum(g.numel() for g in gradients)


def prediction_churn(previous: torch.Tensor | None, predictions: torch.Tensor) -> float:
    """Share of a fixed batch whose predicted class changed since the previous evaluation (this package's
    supervised analogue of Schaul et al.'s policy churn, "The Phenomenon of Policy Churn", NeurIPS 2022: the
    greedy action is the argmax class); NaN when there is no previous evaluation."""
    if previous is None or previous.numel() == 0:
        return math.nan
    return (previous.to(predictions.device) != predictions).double().mean().item()


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input to the model's `head` on `x` (batch x features), captured with a forward hook."""
    captured = []
    handle = model.head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    try:
        call_keeping_buffers(model, x)
    finally:
        handle.remove()
    return captured[0]


def gradient_norms(model: nn.Module, batches_by_name: dict[str, Iterable[tuple[torch.Tensor, torch.Tensor]]],
                   loss_fn: Callable = F.cross_entropy) -> dict[str, float]:
    """Per name, the norm of the gradient (all parameters) of the mean loss over all examples of its batches:
    Ash & Adams' imbalance between the fitted (pretraining) half and the new half. `.grad` is not touched."""
    params = [p for p in model.parameters() if p.requires_grad]
    norms = {}
    for name, batches in batches_by_name.items():
        total, count = [torch.zeros_like(p) for p in params], 0
        for x, y in batches:
            # loss_fn averages over the batch: weight each batch by its size to average over examples
            grads = torch.autograd.grad(loss_fn(call_keeping_buffers(model, x), y) * len(y), params)
            total = [t + g for t, g in zip(total, grads)]
            count += len(y)
        norms[name] = math.sqrt(sum((t / count).double().pow(2).sum().item() for t in total))
    return norms
