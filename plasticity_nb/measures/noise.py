"""Gradient noise: per-example gradient variance, the "simple" gradient noise scale, gradient norm.

With per-example gradients g_i on n examples, G = mean g_i and tr(Sigma) = sum ||g_i - G||^2 / (n - 1);
the simple noise scale is B_simple = tr(Sigma) / ||G||^2 (McCandlish et al. 2018): the batch size at
which gradient noise and signal are comparable.

BatchNorm policy. In train mode BatchNorm couples the examples of a batch, so a per-example gradient
is not defined; `per_example_noise` therefore always uses eval-mode BatchNorm (running statistics) on
a copy of the model. `two_batch_noise` needs only batch gradients, so it takes the BatchNorm mode as an
argument: it estimates ||G||^2 and tr(Sigma) from E||G_B||^2 = ||G||^2 + tr(Sigma) / B at two batch sizes.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from .curvature import ProbeSet, probe_copy


@dataclasses.dataclass(frozen=True)
class Noise:
    grad_norm: float  # ||G||, the mean gradient's norm
    trace_cov: float  # tr(Sigma), per-example gradient variance summed over parameters
    noise_scale: float  # B_simple = tr(Sigma) / ||G||^2
    top_share: float | None  # share of tr(Sigma) in its top principal direction (how concentrated the noise is)
    examples: int
    bn_mode: str
    method: str  # "per-example" or "two-batch"


def per_example_noise(model: torch.nn.Module, probes: ProbeSet, chunk: int = 64,
                      max_gram_entries: int = 50_000_000) -> Noise:
    """Per-example gradients by `vmap(grad)` (eval-mode BatchNorm, see the module docstring).

    Only running sums are kept, so memory does not grow with the probe set; the concentration of the
    noise (`top_share`) needs all gradients at once and is computed when n x parameters is small enough.
    """
    net = probe_copy(model, "eval")
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}

    def loss(p, x, y):
        return F.cross_entropy(functional_call(net, (p, buffers), (x[None],)), y[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    n_params = sum(p.numel() for p in params.values())
    keep = probes.size * n_params <= max_gram_entries
    total, squared_norms, kept = None, 0.0, []
    for x, y in probes.batches:
        for xs, ys in zip(x.split(chunk), y.split(chunk)):
            g = torch.cat([t.flatten(1) for t in per_example(params, xs, ys).values()], dim=1).double()
            total = g.sum(0) if total is None else total + g.sum(0)
            squared_norms += g.pow(2).sum().item()
            if keep:
                kept.append(g)
    n = probes.size
    mean = total / n
    trace_cov = (squared_norms - n * mean.pow(2).sum().item()) / (n - 1)
    top_share = None
    if keep:
        centred = torch.cat(kept) - mean
        gram_eigenvalues = torch.linalg.eigvalsh(centred @ centred.T)  # same non-zero spectrum as the covariance
        top_share = (gram_eigenvalues[-1] / gram_eigenvalues.sum()).item()
    norm_sq = mean.pow(2).sum().item()
    return Noise(math.sqrt(norm_sq), trace_cov, trace_cov / norm_sq, top_share, n, "eval", "per-example")


def two_batch_noise(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, small: int, big: int,
                    repeats: int, bn_mode: str = "train", generator: torch.Generator | None = None) -> Noise:
    """||G||^2 and tr(Sigma) from the mean squared norm of batch gradients at two batch sizes.

    `repeats` batches of each size are drawn with replacement from (x, y), for which the identity holds
    exactly with the population covariance (1/n normalisation). Unbiased for ||G||^2 and tr(Sigma)
    (McCandlish et al. 2018, App. A); their ratio is not, so use many repeats. In train mode each batch
    uses its own BatchNorm statistics.
    """
    if not 1 <= small < big <= len(y):
        raise ValueError(f"need 1 <= small < big <= {len(y)} examples, got small={small}, big={big}")
    generator = generator or torch.Generator().manual_seed(0)
    net = probe_copy(model, bn_mode)
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}

    def loss(p, xb, yb):
        return F.cross_entropy(functional_call(net, (p, buffers), (xb,)), yb)

    def mean_squared_norm(size: int) -> float:
        total = 0.0
        for _ in range(repeats):
            pick = torch.randint(len(y), (size,), generator=generator).to(y.device)
            g = grad(loss)(params, x[pick], y[pick])
            total += sum(t.double().pow(2).sum().item() for t in g.values())
        return total / repeats

    s_small, s_big = mean_squared_norm(small), mean_squared_norm(big)
    norm_sq = (big * s_big - small * s_small) / (big - small)
    trace_cov = (s_small - s_big) / (1 / small - 1 / big)
    return Noise(math.sqrt(max(norm_sq, 0.0)), trace_cov, trace_cov / norm_sq if norm_sq > 0 else math.inf, None,
                 len(y), bn_mode, "two-batch")
