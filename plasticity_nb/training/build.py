"""A run's model at its initial weights and each phase's optimiser (the paper builds a new one at every phase);
and the test-set evaluation.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse

from ..core.config import ConfigError
from ..data.datasets import dataset_spec
from ..nets.models import build_model
from ..run.run_config import Phase, RunConfig
from . import narrow_conv, narrow_norm
from .runtime import Runtime


def init_model(config: RunConfig, runtime: Runtime) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.model, config.depth, config.width, dataset_spec(config.dataset).num_classes)
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    model = model.to(runtime.device, memory_format=memory_format)
    if runtime.narrow_norm:
        narrow_norm.install(model)
    return narrow_conv.install(model) if runtime.narrow_conv else model


def make_optimizer(phase: Phase, config: RunConfig, params, runtime: Runtime,
                   model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
    """The phase's new optimiser over `params`: the one a remedy of the phase builds over `model` (Muon;
    `Remedy.optimizer`), else `phase.optimizer`'s."""
    if model is not None:
        built = [o for o in (remedy.optimizer(model, phase) for remedy in phase.remedies) if o is not None]
        if len(built) > 1:
            raise ConfigError(f"phase remedies {', '.join(phase.remedy_names)}: more than one builds the optimiser")
        if built:
            return built[0]
    kwargs: dict[str, Any] = dict(lr=phase.lr, weight_decay=config.weight_decay)
    if runtime.graph_step and phase.optimizer in ("adam", "rmsprop"):
        kwargs["capturable"] = True  # the step count on the device, so that a CUDA graph can replay the update
    if phase.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, **kwargs)
    kwargs["fused"] = runtime.device.type == "cuda" or None  # one kernel for the whole update on a GPU
    if phase.optimizer == "adam":
        return torch.optim.Adam(params, **kwargs)
    momentum = config.momentum if phase.optimizer == "sgd_momentum" else 0.0
    return torch.optim.SGD(params, momentum=momentum, **kwargs)


def standard_copy(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with ATen's modules in place of this package's (a copy where any were installed)."""
    return narrow_conv.standard_copy(narrow_norm.standard_copy(model))


def evaluation_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with each BatchNorm folded into its convolution: same function, ~25% faster. torch.fx
    traces ATen's modules, so this package's are taken out first (the fused batch norm does nothing in eval mode),
    and the narrow convolutions put back after, where the model had them."""
    net = fuse(standard_copy(model))
    return narrow_conv.swap_convs(net) if narrow_conv.installed(model) else net


EVAL_BATCH = 500  # test images per forward pass (fastest on a CPU; results do not depend on it)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             runtime: Runtime) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over all of `images` (BatchNorm in eval mode)."""
    was_training = model.training
    model.eval()
    net = evaluation_copy(model)
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(images), EVAL_BATCH):
        x, y = images[start:start + EVAL_BATCH], labels[start:start + EVAL_BATCH]
        with runtime.autocast():
            logits = net(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / len(images), correct.item() / len(images)
