"""Curvature and gradient-noise probes recorded during training (the two-phases measurements).

A phase lists `probe_epochs` (0 = before its first step); the run's `ProbeSettings` say how to measure.
Each probe measures, on a fixed probe set drawn from the run's training subset (class-balanced, the same
for every arm of a seed): the top Hessian eigenvalue, the Hutchinson trace (with each module group's
block trace), per-example gradient noise and the weight norm. Probes use their own random generators,
so a run's training trajectory is identical with or without them.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from .curvature import ProbeSet, hessian_eigenvalues, hessian_trace, weight_norm
from .data import class_balanced_subset
from .noise import per_example_noise
from .probesettings import ProbeSettings  # re-exported: studies and notebooks import it from here


def probe_set(train_x: torch.Tensor, train_y: torch.Tensor, settings: ProbeSettings) -> ProbeSet:
    # Seed 0, not the run's seed: warm and scratch of a seed (same subset) are measured on the same examples.
    pick = class_balanced_subset(train_y.cpu(), settings.examples, torch.Generator().manual_seed(0))
    pick = pick.to(train_y.device)
    return ProbeSet.from_tensors(train_x[pick], train_y[pick], settings.batch_size)


def measure(model: torch.nn.Module, probes: ProbeSet, settings: ProbeSettings, seed: int) -> dict[str, Any]:
    """One probe row: curvature (in `settings.bn_mode`), noise (eval-mode BN, see noise.py), weight norm."""
    started = time.perf_counter()
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
        "probe_seconds": time.perf_counter() - started,
    }
