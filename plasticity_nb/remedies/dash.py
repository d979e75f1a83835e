"""DASH, direction-aware shrinking (Shin et al., "DASH: Warm-Starting Neural Network Training in Stationary
Settings without Loss of Plasticity", NeurIPS 2024), as in the authors' code: baekrok/DASH-Direction-Aware-
SHrinking, `utils/train_utils.py`, `dash` (lines 111-174).

Over the given batches in order, g <- (1 - alpha) g + alpha (-grad W) for every Conv2d/Linear weight and bias
(gradients taken on a deep copy, in the model's current mode, so the model's own BN statistics stay). Then
each conv kernel slice (out, in) and each Linear output row is scaled by clamp(cos(g, W), shrink_floor, 1),
computed over its entries; a bias gets one cosine for the whole vector. BatchNorm is untouched.

How the authors call it (main.py:54, 68-69; train_utils.py:184-185; metric_utils.py:161): at each new data chunk
from the second on, after the new chunk joined the buffer, with one batch per chunk in arrival order (so the new
chunk gets the largest weight, alpha) and the model in eval mode (left so by the evaluation before). A batch here
may be a whole chunk given as micro-batches: in eval mode the chunk's mean-loss gradient is exactly the
size-weighted mean of theirs, so memory stays bounded at any chunk size.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import ConfigError, ranged, versioned
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

Batch = tuple[torch.Tensor, torch.Tensor]
# Each item is one step of the moving average: a batch, or a chunk given as a list of micro-batches.
Batches = Iterable[Batch | list[Batch]]


def dash_(model: nn.Module, batches: Batches, alpha: float = 0.3, shrink_floor: float = 0.3,
          loss_fn: Callable = F.cross_entropy) -> dict[str, torch.Tensor]:
    """Shrink `model` in place; returns the scale of every shrunk tensor ("<module>.weight", "<module>.bias")."""
    directions = averaged_negative_gradients(model, batches, alpha, loss_fn)
    scales = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in directions:
                scale = shrink_scale(directions[name], param, name.endswith(".bias"), shrink_floor)
                param.mul_(scale.view(*scale.shape, *[1] * (param.ndim - scale.ndim)))
                scales[name] = scale
    return scales


def dash_parameters(model: nn.Module) -> list[str]:
    """Names of the weights and biases DASH shrinks: those of Conv2d and Linear modules."""
    return [f"{module_name}.{param_name}" for module_name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear))
            for param_name, param in module.named_parameters(recurse=False)]


def averaged_negative_gradients(model: nn.Module, batches: Batches, alpha: float,
                                loss_fn: Callable) -> dict[str, torch.Tensor]:
    """g <- (1 - alpha) g + alpha (-grad) per batch (or chunk), from g = 0, on a copy of the model."""
    copy_ = copy.deepcopy(model)
    params = dict(copy_.named_parameters())
    names = dash_parameters(copy_)
    directions = {name: torch.zeros_like(params[name]) for name in names}
    for item in batches:
        grads = chunk_gradients(copy_, [params[name] for name in names], item, loss_fn)
        for name, grad in zip(names, grads):
            directions[name] = (1 - alpha) * directions[name] + alpha * (-grad)
    return directions


def chunk_gradients(model: nn.Module, params: list[torch.Tensor], item: Batch | list[Batch],
                    loss_fn: Callable) -> list[torch.Tensor]:
    """The gradient of the mean loss over a batch, or over a chunk's micro-batches (each weighted by its size)."""
    parts = [item] if isinstance(item, tuple) else item
    total = sum(len(y) for _, y in parts)
    summed = [torch.zeros_like(p) for p in params]
    for x, y in parts:
        for acc, grad in zip(summed, torch.autograd.grad(loss_fn(model(x), y), params)):
            acc.add_(grad, alpha=len(y) / total)
    return summed


def shrink_scale(direction: torch.Tensor, weight: torch.Tensor, is_bias: bool, shrink_floor: float) -> torch.Tensor:
    """clamp(cos, shrink_floor, 1): one cosine per conv kernel slice (out, in) over its h*w entries, per Linear
    row, or (a bias) over the whole vector."""
    if is_bias:
        cos = F.cosine_similarity(direction.reshape(1, -1), weight.reshape(1, -1)).reshape(())
    else:
        slice_start = 2 if weight.ndim > 2 else 1  # conv: (out, in, h*w); linear: (out, in)
        cos = F.cosine_similarity(direction.flatten(slice_start), weight.flatten(slice_start), dim=-1)
    return cos.clamp(min=shrink_floor, max=1)


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Dash(Remedy):
    """Shin et al. (NeurIPS 2024): direction-aware shrinking at the phase start, as their code calls it
    (baekrok/DASH-Direction-Aware-SHrinking main.py:54, 68-69): over every phase's new data so far, the new phase's
    included and last, one batch per chunk, BatchNorm in eval mode."""

    NAME = "dash"
    ACTS = "at the phase start"
    PLACEMENT = "tuning start"


    # weight of each chunk's negative gradient in the moving average (their default)
    alpha: float = ranged(0.3, gt=0, le=1)
    # lambda: the smallest shrink factor clamp(cos, lambda, 1) (their default)
    shrink_floor: float = ranged(0.3, gt=0, le=1)
    # eval: BatchNorm's running statistics, as their model is left by its evaluation (metric_utils.py:161);
    # train: batch statistics (a deviation, kept as an option)
    bn_mode: str = ranged("eval", choices=("eval", "train"))
    # 2: their data and mode (2026-12-01); 1 (no field) took only the earlier phases' data, in random batches of
    # the run's batch size, in train mode
    version: int = versioned(2)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [DashHook(self, context.chunks)]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if any(index == 0 for index, _ in settings):
            raise ConfigError("dash acts when new data arrives, from the second phase on (as its authors run it, "
                              "DASH main.py:68): set it on a later phase")


class DashHook(Hook):
    """DASH at the phase start, over `chunks()` (every phase's new data so far, the new phase's last, one moving-
    average step per chunk), with BatchNorm in the settings' mode (eval: the authors')."""

    def __init__(self, settings: Dash, chunks: Callable[[], list]):
        self.settings, self.chunks = settings, chunks

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase) -> None:
        was_training = model.training
        model.train(self.settings.bn_mode == "train")
        dash_(model, self.chunks(), self.settings.alpha, self.settings.shrink_floor)
        model.train(was_training)
