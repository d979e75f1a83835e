"""Hessian curvature of the training loss: Hessian-vector products, top-k eigenvalues, Hutchinson trace.

L is the mean cross-entropy over a fixed probe set (`ProbeSet`: seeded, class-balanced, identical for
every model compared). Hessian-vector products are double-backward through a gradient graph built once
per probe batch; on a GPU a block of vectors shares one batched backward (`HessianOperator`).

BatchNorm mode is an explicit argument, recorded in every result and never changed on the caller's
model (the measurement runs on a copy):
- "eval": running statistics, i.e. the function the network computes at test time;
- "train": batch statistics of each probe batch, running statistics neither used nor updated
  (`torch.func.replace_all_batch_norm_modules_` on the copy).

Unlike PyHessian, nothing here calls `model.eval()` behind your back, probes come from a seeded
generator, and results carry iterations, convergence and standard errors. Sharpness is not
reparametrisation-invariant (Dinh et al. 2017): report weight norms beside it (`weight_norm`).
"""
from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch.func import replace_all_batch_norm_modules_

from .probe_settings import BN_MODES

Vector = dict[str, torch.Tensor]  # one tensor per parameter name


@dataclasses.dataclass(frozen=True)
class ProbeSet:
    """Fixed (inputs, labels) batches on which curvature and noise are measured."""

    batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @classmethod
    def from_tensors(cls, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> "ProbeSet":
        # Contiguous (NCHW): vmap has no batching rule for some channels_last ops and would fall back to a loop.
        return cls(tuple(zip(x.contiguous().split(batch_size), y.split(batch_size))))

    @property
    def size(self) -> int:
        return sum(len(y) for _, y in self.batches)


def probe_copy(model: torch.nn.Module, bn_mode: str) -> torch.nn.Module:
    """A copy of `model` in the requested BatchNorm mode; the caller's model is never touched."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    net = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # see ProbeSet.from_tensors
    if bn_mode == "train":
        replace_all_batch_norm_modules_(net)  # batch statistics, no running-statistic updates
    return net.train(bn_mode == "train")


class HessianOperator:
    """v -> H v for the Hessian of the mean probe-set loss w.r.t. the parameters (optionally one group).

    Each probe batch's gradient graph is built once (`create_graph=True`) and every product is one
    double-backward through it; a block of vectors goes through in one batched backward
    (`is_grads_batched`, vmap underneath), which is what makes the Hutchinson trace cheap on a GPU.
    Memory grows with the probe set: keep it a few thousand images.
    """

    def __init__(self, model: torch.nn.Module, probes: ProbeSet, bn_mode: str, group: str | None = None):
        self.bn_mode = bn_mode
        self.net = probe_copy(model, bn_mode)
        self.names = [name for name, _ in self.net.named_parameters()]
        self.tensors = [p for _, p in self.net.named_parameters()]
        self.params = {name: p.detach() for name, p in zip(self.names, self.tensors)}
        self.mask = group_mask(model, group)
        self.graphs = []
        for x, y in probes.batches:
            loss = F.cross_entropy(self.net(x), y) * (len(y) / probes.size)
            self.graphs.append(torch.autograd.grad(loss, self.tensors, create_graph=True))

    def gradient(self) -> Vector:
        return {name: sum(g[i].detach() for g in self.graphs) for i, name in enumerate(self.names)}

    def _product(self, v: Vector, batched: bool) -> Vector:
        v = self.restrict(v)
        outputs = [v[name] for name in self.names]
        total = None
        for graph in self.graphs:
            hv = torch.autograd.grad(graph, self.tensors, grad_outputs=outputs, retain_graph=True,
                                     is_grads_batched=batched)
            total = list(hv) if total is None else [a + b for a, b in zip(total, hv)]
        return self.restrict(dict(zip(self.names, total)))

    def matvec(self, v: Vector) -> Vector:
        """H v (restricted to the group's block when a group was given)."""
        return self._product(v, batched=False)

    def matmat(self, block: Vector) -> Vector:
        """H applied to a block of vectors (leading dimension), in one batched double-backward."""
        return self._product(block, batched=True)

    def restrict(self, v: Vector) -> Vector:
        return v if self.mask is None else {k: t * self.mask[k] for k, t in v.items()}

    def random(self, count: int, generator: torch.Generator, rademacher: bool) -> Vector:
        out = {}
        for name, p in self.params.items():
            shape = (count, *p.shape)
            draw = (torch.randint(0, 2, shape, generator=generator) * 2 - 1 if rademacher
                    else torch.randn(shape, generator=generator))
            out[name] = draw.to(device=p.device, dtype=p.dtype)
        return self.restrict(out)


def zeros_like(v: Vector) -> Vector:
    return {k: torch.zeros_like(t) for k, t in v.items()}


def dot(a: Vector, b: Vector) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def group_mask(model: torch.nn.Module, group: str | None) -> Vector | None:
    """1 on the parameters of module group `group` (a name from `model.module_groups()`), else 0."""
    if group is None:
        return None
    groups = model.module_groups()
    if group not in groups:
        raise ValueError(f"unknown module group {group!r}; this model has {', '.join(groups)}")
    prefix = next(name for name, module in model.named_modules() if module is groups[group])
    return {k: torch.full((), float(k.startswith(prefix + ".")), device=p.device, dtype=p.dtype)
            for k, p in model.named_parameters()}


@dataclasses.dataclass(frozen=True)
class Eigenvalues:
    values: list[float]  # largest first (by magnitude, as power iteration finds them)
    iterations: list[int]  # power iterations spent on each
    converged: list[bool]  # relative change below `tol` before `max_iterations`
    tol: float
    bn_mode: str
    group: str | None


def hessian_eigenvalues(model: torch.nn.Module, probes: ProbeSet, k: int = 1, bn_mode: str = "eval",
                        max_iterations: int = 100, tol: float = 1e-3, generator: torch.Generator | None = None,
                        group: str | None = None) -> Eigenvalues:
    """Top-k eigenvalues by power iteration with deflation (each new vector kept orthogonal to the
    eigenvectors already found). Stops when the relative change of the estimate falls below `tol`."""
    op = HessianOperator(model, probes, bn_mode, group)
    generator = generator or torch.Generator().manual_seed(0)
    found: list[Vector] = []
    values, iterations, converged = [], [], []
    for _ in range(k):
        v = normalise({n: t[0] for n, t in op.random(1, generator, rademacher=False).items()}, found)
        estimate, done, i = math.nan, False, 0
        for i in range(1, max_iterations + 1):
            hv = op.matvec(v)
            new = dot(v, hv).item()
            v = normalise(hv, found)
            done = math.isfinite(estimate) and abs(new - estimate) <= tol * (abs(estimate) + 1e-12)
            estimate = new
            if done:
                break
        found.append(v)
        values.append(estimate)
        iterations.append(i)
        converged.append(done)
    return Eigenvalues(values, iterations, converged, tol, bn_mode, group)


def normalise(v: Vector, against: list[Vector]) -> Vector:
    for u in against:  # Gram-Schmidt: deflate the eigenvectors already found
        projection = dot(u, v)
        v = {k: v[k] - projection * u[k] for k in v}
    norm = torch.sqrt(dot(v, v))
    return {k: t / norm for k, t in v.items()}


@dataclasses.dataclass(frozen=True)
class Trace:
    mean: float  # Hutchinson estimate of tr(H)
    standard_error: float  # over the probes
    samples: int
    per_group: dict[str, tuple[float, float]]  # group -> (trace of its diagonal block, standard error)
    bn_mode: str


def hessian_trace(model: torch.nn.Module, probes: ProbeSet, samples: int = 50, bn_mode: str = "eval",
                  generator: torch.Generator | None = None, block: int | None = None) -> Trace:
    """Hutchinson's estimator: mean of v^T H v over Rademacher v, `block` probes per batched HVP.

    `block` defaults to 1 on a CPU, where one batched double-backward measured slower than the same
    products one by one (benchmarks/RESULTS.md), and to 10 on a GPU, where batching fills the device.

    The same probes give each module group's block trace: E[v_g^T (H v)_g] = tr(H_gg).
    """
    op = HessianOperator(model, probes, bn_mode)
    generator = generator or torch.Generator().manual_seed(0)
    block = block or (10 if next(model.parameters()).is_cuda else 1)
    groups = {name: group_mask(model, name) for name in model.module_groups()}
    totals, per_group = [], {name: [] for name in groups}
    for start in range(0, samples, block):
        v = op.random(min(block, samples - start), generator, rademacher=True)
        hv = op.matmat(v)
        products = {k: (v[k] * hv[k]).flatten(1).sum(1) for k in v}  # per probe, per parameter tensor
        totals.append(sum(products.values()))
        for name, mask in groups.items():
            per_group[name].append(sum(products[k] * mask[k] for k in products))
    estimate = mean_and_se(torch.cat(totals))
    return Trace(estimate[0], estimate[1], samples, {n: mean_and_se(torch.cat(s)) for n, s in per_group.items()},
                 bn_mode)


def mean_and_se(samples: torch.Tensor) -> tuple[float, float]:
    samples = samples.double()
    se = samples.std(unbiased=True).item() / math.sqrt(len(samples)) if len(samples) > 1 else math.nan
    return samples.mean().item(), se


def weight_norm(model: torch.nn.Module) -> float:
    """Euclidean norm of all parameters: report it next to sharpness (BN makes weights scale-invariant)."""
    return math.sqrt(sum(p.detach().double().pow(2).sum().item() for p in model.parameters()))

