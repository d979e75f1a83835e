"""Gradient-noise measurements against an explicit per-example loop."""
import copy

import pytest
import torch
import torch.nn.functional as F

from plasticity_nb.measures.curvature import ProbeSet
from plasticity_nb.measures.noise import per_example_noise, two_batch_noise
from tests.test_curvature import TinyNet


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(1)
    model = TinyNet().double()
    model(torch.randn(32, 3, 5, 5, dtype=torch.float64))
    x, y = torch.randn(40, 3, 5, 5, dtype=torch.float64), torch.randint(0, 4, (40,))
    return model, x, y


def loop_gradients(model, x, y):
    net = copy.deepcopy(model).eval()
    rows = []
    for i in range(len(y)):
        net.zero_grad()
        F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]).backward()
        rows.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    return torch.stack(rows)


def test_per_example_noise_matches_an_explicit_loop(setup):
    model, x, y = setup
    g = loop_gradients(model, x, y)
    mean = g.mean(0)
    trace_cov = (g - mean).pow(2).sum().item() / (len(y) - 1)
    covariance_eigenvalues = torch.linalg.eigvalsh((g - mean).T @ (g - mean))
    result = per_example_noise(model, ProbeSet.from_tensors(x, y, batch_size=16), chunk=7)
    assert result.grad_norm == pytest.approx(mean.norm().item(), rel=1e-9)
    assert result.trace_cov == pytest.approx(trace_cov, rel=1e-9)
    assert result.noise_scale == pytest.approx(trace_cov / mean.pow(2).sum().item(), rel=1e-9)
    top_share = (covariance_eigenvalues[-1] / covariance_eigenvalues.sum()).item()
    assert result.top_share == pytest.approx(top_share, rel=1e-6)
    assert (result.examples, result.bn_mode, result.method) == (40, "eval", "per-example")


def test_two_batch_estimator_recovers_the_per_example_values(setup):
    model, x, y = setup
    g = loop_gradients(model, x, y)
    mean = g.mean(0)
    population_trace = (g - mean).pow(2).sum().item() / len(y)
    result = two_batch_noise(model, x, y, small=2, big=20, repeats=3000, bn_mode="eval",
                             generator=torch.Generator().manual_seed(0))
    assert result.grad_norm ** 2 == pytest.approx(mean.pow(2).sum().item(), rel=0.1)
    assert result.trace_cov == pytest.approx(population_trace, rel=0.1)
    assert result.method == "two-batch"


def test_two_batch_rejects_bad_sizes(setup):
    model, x, y = setup
    with pytest.raises(ValueError, match="need 1 <= small < big"):
        two_batch_noise(model, x, y, small=8, big=8, repeats=1)
