"""Parseval regularisation (Chung, Cherif, Meger & Precup, "Parseval Regularization for Continual
Reinforcement Learning", NeurIPS 2024; reference code: wechu/parseval_reg, `parseval_reg/agent.py`,
`parseval_reg_network`, lines 278-319).

A term joins every step's loss: lambda * (64 / width)^2 * sum over hidden layers of ||W W^T - s I||_F^2, W of
shape (out, in), which pushes each layer's rows (its units' incoming weights) towards orthogonality with
squared norm s. As their code: s = gain^2 = 2 (their orthogonal init's gain sqrt(2), `init_gain` None), every
hidden layer's weight (the first included), no biases, no norm parameters, the output layer left out; the
factor (64 / width)^2 rescales the lambda they tuned at width 64 to other widths. Their lambdas: 1e-3
(gridworld, MetaWorld) or 1e-4 (LunarLander, quadruped) (`main.py` lines 337-419); 1e-3 is the default.

Their code is for MLPs. For convolutions (a deliberate extension, stated): a kernel (out, in, k, k) is the
matrix (out, in*k*k), its rows the output channels' receptive fields; every conv of the ResNet is a hidden
layer (stem, both convs of each block, the 1x1 shortcuts), the head is the output layer. Where a layer has more
rows than columns (a 1x1 shortcut doubling the channels; the stem at widths > 27) W W^T cannot reach s I, as
their first layer cannot when the observation is narrower than the layer. `width` is each layer's own row
count (their MLPs have one width throughout, so the factor is theirs). Their diagonal layers and input scale
are left out: the released code path does not pass them to the agent (`main.py` lines 50-66).

Where the penalty starts. Their s = 2 is the scale of their own init: orthogonal with gain sqrt(2)
(`orthogonal_layer_init`, agent.py:564-570), so a layer with no more rows than columns starts at W W^T = 2I, where
its term is 0. The package's nets keep PyTorch's default init, U(+-1/sqrt(fan_in)): a row's expected squared norm
is fan_in * 1/(3 fan_in) = 1/3, so W W^T starts near I/3 and each layer's term near (64/rows)^2 * rows *
(2 - 1/3)^2 from its diagonal alone; the factor (64/rows)^2 makes the sum grow as 1/width (13.3 at width 8, 1.67
at width 64, times lambda 1e-3, from the diagonal). Measured on `build_model("resnet", 2, width)` seeded 0-9
(2026-12-06, fp32, one thread): at width 8 the penalty at lambda 1e-3 is 13.50 (13.47-13.56; the rows' mean
squared norm 0.333), against a data cross-entropy of 2.51 (2.07-2.89; ln 10 = 2.30) in train mode over the first
1,280 CIFAR-10 training images in batches of 128; at width 64, 1.70 against 2.39. So at width 8 (quick) the
first steps' loss is mostly the penalty, which pulls every row's squared norm from 1/3 towards 2. s stays theirs
(an s of 1/3, the package's init, would start the penalty at 0.17 at width 8); `scale` sets it.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

TUNED_WIDTH = 64  # the width their lambda was tuned at


def hidden_weights(model: nn.Module) -> list[torch.Tensor]:
    """Each hidden conv and linear layer's weight as a matrix (out, fan_in), in order; the output layer (the
    last linear layer) left out."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise ValueError(f"{type(model).__name__} does not end in a linear output layer")
    return [layer.weight.flatten(1) for layer in layers[:-1]]


def parseval_penalty(model: nn.Module, coefficient: float, scale: float = 2.0) -> torch.Tensor:
    """lambda * sum_l (64 / rows_l)^2 * ||W_l W_l^T - s I||_F^2 over the hidden layers (module doc)."""
    terms = []
    for w in hidden_weights(model):
        w = w.float()
        gram = w @ w.t()
        eye = torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)
        terms.append((TUNED_WIDTH / w.shape[0]) ** 2 * torch.linalg.matrix_norm(gram - scale * eye) ** 2)
    return coefficient * torch.stack(terms).sum()


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Parseval(Remedy):
    """Chung et al. (NeurIPS 2024), as their code (wechu/parseval_reg parseval_reg/agent.py:278-319), extended to
    convolutions: loss + lambda (64/width)^2 sum ||W W^T - s I||_F^2 over the hidden layers."""

    NAME = "parseval"
    ACTS = "in every step's loss"
    PLACEMENT = "both phases"

    coefficient: float = ranged(1e-3, ge=0)  # lambda: theirs for gridworld and MetaWorld (1e-4 for the others)
    scale: float = ranged(2.0, gt=0)  # s = gain^2: their default gain sqrt(2)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [ParsevalHook(self)]


class ParsevalHook(Hook):
    def __init__(self, settings: Parseval):
        self.settings = settings

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return parseval_penalty(model, self.settings.coefficient, self.settings.scale)
