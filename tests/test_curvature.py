"""Curvature estimators against the exact Hessian of a tiny BatchNorm ResNet (float64)."""
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from plasticity_nb.measures.curvature import (
    HessianOperator,
    ProbeSet,
    hessian_eigenvalues,
    hessian_trace,
    probe_copy,
    weight_norm,
)


class TinyNet(torch.nn.Module):
    """Conv + BatchNorm + linear head: small enough for an exact Hessian, with named module groups."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, bias=False), torch.nn.BatchNorm2d(3),
                                            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(3, 4)

    def forward(self, x):
        return self.head(self.features(x))

    def module_groups(self):
        return {"features": self.features, "head": self.head}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = TinyNet().double()
    model(torch.randn(32, 3, 5, 5, dtype=torch.float64))  # move BN running statistics off their defaults
    x, y = torch.randn(24, 3, 5, 5, dtype=torch.float64), torch.randint(0, 4, (24,))
    return model, ProbeSet.from_tensors(x, y, batch_size=8)


def exact_hessian(model, probes, bn_mode):
    net = probe_copy(model, bn_mode)
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    buffers = dict(net.named_buffers())

    def loss(theta):
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[offset:offset + shape.numel()].view(shape)
            offset += shape.numel()
        return sum(F.cross_entropy(functional_call(net, (params, buffers), (x,)), y) * len(y) / probes.size
                   for x, y in probes.batches)

    return torch.autograd.functional.hessian(loss, flat), names, shapes


def flatten(v):
    return torch.cat([t.flatten() for t in v.values()])


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_hessian_vector_products_match_the_exact_hessian(tiny, bn_mode):
    model, probes = tiny
    H, _, _ = exact_hessian(model, probes, bn_mode)
    op = HessianOperator(model, probes, bn_mode)
    v = {k: torch.randn_like(p) for k, p in op.params.items()}
    assert torch.allclose(flatten(op.matvec(v)), H @ flatten(v), rtol=1e-8, atol=1e-10)
    block = op.random(3, torch.Generator().manual_seed(1), rademacher=True)
    batched = op.matmat(block)
    for i in range(3):
        assert torch.allclose(flatten({k: t[i] for k, t in batched.items()}),
                              H @ flatten({k: t[i] for k, t in block.items()}), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_top_eigenvalues_match_the_exact_spectrum(tiny, bn_mode):
    model, probes = tiny
    H, _, _ = exact_hessian(model, probes, bn_mode)
    exact = torch.linalg.eigvalsh(H)
    by_magnitude = exact[exact.abs().argsort(descending=True)]
    found = hessian_eigenvalues(model, probes, k=2, bn_mode=bn_mode, max_iterations=1000, tol=1e-10,
                                generator=torch.Generator().manual_seed(0))
    assert found.values == pytest.approx(by_magnitude[:2].tolist(), rel=1e-4)
    assert all(found.converged) and found.bn_mode == bn_mode and len(found.iterations) == 2


def test_hutchinson_trace_is_unbiased_and_per_group_blocks_add_up(tiny):
    model, probes = tiny
    H, names, shapes = exact_hessian(model, probes, "eval")
    result = hessian_trace(model, probes, samples=400, bn_mode="eval", generator=torch.Generator().manual_seed(3))
    exact = torch.trace(H).item()
    assert abs(result.mean - exact) < 4 * result.standard_error and result.standard_error > 0
    # each group's block trace, from the exact Hessian's diagonal
    diagonal, offset, blocks = torch.diagonal(H), 0, {}
    for name, shape in zip(names, shapes):
        group = name.split(".")[0]
        blocks[group] = blocks.get(group, 0.0) + diagonal[offset:offset + shape.numel()].sum().item()
        offset += shape.numel()
    for group, (mean, se) in result.per_group.items():
        assert abs(mean - blocks[group]) < 4 * se + 1e-9, group
    assert sum(m for m, _ in result.per_group.values()) == pytest.approx(result.mean, rel=1e-9)


def test_group_restricted_eigenvalue_is_that_blocks(tiny):
    model, probes = tiny
    H, names, shapes = exact_hessian(model, probes, "eval")
    keep = torch.cat([torch.full((s.numel(),), n.startswith("head.")) for n, s in zip(names, shapes)])
    block = H[keep][:, keep]
    top = torch.linalg.eigvalsh(block).abs().max().item()
    found = hessian_eigenvalues(model, probes, k=1, group="head", max_iterations=3000, tol=1e-12)
    assert abs(found.values[0]) == pytest.approx(top, rel=1e-5) and found.group == "head"


def test_measuring_never_changes_the_callers_model(tiny):
    model, probes = tiny
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hessian_eigenvalues(model, probes, k=1, bn_mode="train", max_iterations=5)
    hessian_trace(model, probes, samples=4, bn_mode="eval")
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_arguments_are_named(tiny):
    model, probes = tiny
    with pytest.raises(ValueError, match="bn_mode must be one of"):
        hessian_trace(model, probes, bn_mode="frozen")
    with pytest.raises(ValueError, match="unknown module group 'stage9'"):
        hessian_eigenvalues(model, probes, group="stage9")
    assert weight_norm(model) > 0
