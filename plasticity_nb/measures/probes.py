"""Curvature and gradient-noise probes recorded during training (the two-phases measurements).

A phase lists `probe_epochs` (0 = before its first step); the run's `ProbeSettings` say how to measure.
With `bn_statistics="probe"` every measurement runs on a copy whose BatchNorm running statistics were
re-estimated on the probe set first: a fresh network's default statistics (mean 0, variance 1) make its
eval-mode output nearly constant, a different function from the one the optimiser trains.
Each probe measures, on a fixed probe set drawn from the run's training subset (class-balanced, the same
for every arm of a seed): the top Hessian eigenvalue, the Hutchinson trace (with each module group's
block trace), per-example gradient noise and the weight norm. Probes use their own random generators,
so a run's training trajectory is identical with or without them.
"""
from __future__ import annotations

import copy
import time
from typing import Any

import torch
import torch.nn.functional as F

from ..data.images import class_balanced_subset
from .curvature import ProbeSet, hessian_eigenvalues, hessian_trace, probe_copy, weight_norm
from .noise import per_example_noise
from .probe_settings import ProbeSettings


def probe_set(train_x: torch.Tensor, train_y: torch.Tensor, settings: ProbeSettings, num_classes: int) -> ProbeSet:
    """The probe examples, balanced over the dataset's `num_classes` classes."""
    # Seed 0, not the run's seed: warm and scratch of a seed (same subset) are measured on the same examples.
    pick = class_balanced_subset(train_y.cpu(), settings.examples, torch.Generator().manual_seed(0), num_classes)
    pick = pick.to(train_y.device)
    return ProbeSet.from_tensors(train_x[pick], train_y[pick], settings.batch_size)


def with_probe_statistics(model: torch.nn.Module, probes: ProbeSet) -> torch.nn.Module:
    """A copy of `model` whose BatchNorm running statistics are re-estimated on the probe set: train-mode
    forward passes with momentum None (a cumulative average over the probe batches), nothing else changed."""
    net = copy.deepcopy(model)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for x, _ in probes.batches:
            net(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net


@torch.no_grad()
def probe_loss(model: torch.nn.Module, probes: ProbeSet, bn_mode: str) -> float:
    """Mean cross-entropy over the probe set, in the BatchNorm mode the curvature is measured in."""
    net = probe_copy(model, bn_mode)
    return sum(F.cross_entropy(net(x), y, reduction="sum").item() for x, y in probes.batches) / probes.size


def measure(model: torch.nn.Module, probes: ProbeSet, settings: ProbeSettings, seed: int) -> dict[str, Any]:
    """One probe row: curvature (in `settings.bn_mode`), noise (eval-mode BN, see noise.py), weight norm,
    and the probe-set loss they were measured at; BatchNorm statistics as `settings.bn_statistics` says."""
    started = time.perf_counter()
    if settings.bn_statistics == "probe":
        model = with_probe_statistics(model, probes)
    eigen = hessian_eigenvalues(model, probes, k=1, bn_mode=settings.bn_mode, max_iterations=settings.eigen_iterations,
                                tol=settings.eigen_tol, generator=torch.Generator().manual_seed(seed))
    trace = hessian_trace(model, probes, samples=settings.trace_samples, bn_mode=settings.bn_mode,
                          generator=torch.Generator().manual_seed(seed + 1))
    noise = per_example_noise(model, probes)
    return {
        "lambda_max": eigen.values[0], "lambda_iterations": eigen.iterations[0], "lambda_converged": eigen.converged[0],
        "trace": trace.mean, "trace_se": trace.standard_error,
        **{f"trace_{group}": value for group, (value, _) in trace.per_group.items()},
        "grad_norm": noise.grad_norm, "noise_trace": noise.trace_cov, "noise_scale": noise.noise_scale,
        "noise_top_share": noise.top_share, "weight_norm": weight_norm(model), "bn_mode": settings.bn_mode,
        "probe_loss": probe_loss(model, probes, settings.bn_mode), "bn_statistics": settings.bn_statistics,
        "probe_seconds": time.perf_counter() - started,
    }
