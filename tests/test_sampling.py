import math

import pytest
import torch

from plasticity_nb.data.sampling import BlendingSampler, multistage_split, shuffled_batches


def test_shuffled_batches_cover_the_pool_once_and_drop_the_remainder():
    pool = torch.arange(100, 205)
    batches = shuffled_batches(pool, 10, torch.Generator().manual_seed(0))
    assert batches.shape == (10, 10)
    assert len(set(batches.flatten().tolist())) == 100 and set(batches.flatten().tolist()) <= set(pool.tolist())


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_blending_probability_follows_the_papers_schedule(gamma):
    sampler = BlendingSampler(torch.arange(100), torch.arange(50), 10, total_steps=5000, gamma=gamma)
    assert sampler.p_full(0).item() == 0
    assert sampler.p_full(100).item() == pytest.approx(1 - gamma, abs=1e-12)  # n = N/50
    assert sampler.p_full(5000).item() == pytest.approx(1 - gamma ** 50, abs=1e-12)
    steps = torch.tensor([1, 37, 2500])
    assert torch.allclose(sampler.p_full(steps), 1 - gamma ** (50 * steps.double() / 5000))
    p_half_way = 1 - gamma ** 25
    assert sampler.p_full(2500).item() == pytest.approx(p_half_way)


def test_blending_rate_is_a_parameter():
    sampler = BlendingSampler(torch.arange(10), torch.arange(5), 2, total_steps=1000, gamma=0.5, rate=10)
    assert sampler.p_full(100).item() == pytest.approx(0.5)


def test_blended_batches_draw_from_the_right_pools_at_the_scheduled_rate():
    full, half = torch.arange(1000, 2000), torch.arange(1000, 1500)
    sampler = BlendingSampler(full, half, 256, total_steps=100, gamma=0.5)
    batches, from_full = sampler.batches(first_step=10, steps=40, generator=torch.Generator().manual_seed(1))
    assert batches.shape == from_full.shape == (40, 256)
    assert torch.isin(batches[~from_full], half).all() and torch.isin(batches[from_full], full).all()
    # Realised share vs the schedule, over 10,240 draws: within 4 standard errors.
    expected = sampler.p_full(torch.arange(10, 50)).mean().item()
    assert abs(from_full.float().mean().item() - expected) < 4 * math.sqrt(expected * (1 - expected) / 10240)
    # Examples drawn from the full set also hit the unseen half (the second 500 indices).
    assert (batches[from_full] >= 1500).any()


def test_multistage_worked_example_two(cifar):
    """study-protocols §6, n = 4, r = 0.5: |D_i| = 10k..50k; D_1 holds 3,000 of each C_1 class, 500 of others."""
    labels = cifar.train_labels
    split = multistage_split(labels, n_stages=4, uniform_ratio=0.5, seed=0, num_classes=10)
    assert [len(s) for s in split.stages] == [10000, 20000, 30000, 40000, 50000]
    assert sorted(sum(split.class_groups, [])) == list(range(10)) and all(len(g) == 2 for g in split.class_groups)
    counts = torch.bincount(labels[split.stages[0]], minlength=10)
    for c in range(10):
        assert counts[c] == (3000 if c in split.class_groups[0] else 500)


@pytest.mark.parametrize("n,r", [(1, 0.0), (1, 1.0), (2, 0.3), (4, 0.5), (9, 0.25)])
def test_multistage_sets_are_nested_disjointly_built_and_cover_everything(cifar, n, r):
    labels = cifar.train_labels[::10]  # 500 per class (rows are sorted by class)
    split = multistage_split(labels, n, r, seed=3, num_classes=10)
    parts = split.uniform_parts
    # uniform parts: disjoint, near-equal, together a class-stratified fraction r of every class
    union = torch.cat(parts)
    assert len(union) == len(set(union.tolist()))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    per_class = torch.bincount(labels[union], minlength=10)
    assert per_class.tolist() == [round(r * k) for k in torch.bincount(labels, minlength=10).tolist()]
    # stages: nested, the last is everything
    for smaller, larger in zip(split.stages, split.stages[1:]):
        assert set(smaller.tolist()) < set(larger.tolist())
    assert split.stages[-1].tolist() == list(range(len(labels)))
    # stage i = stage i-1 + uniform part i + the designated examples of class group i, nothing else
    designated = torch.ones(len(labels), dtype=torch.bool)
    designated[union] = False
    previous = set()
    for stage, part, group in zip(split.stages, parts, split.class_groups):
        added = set(stage.tolist()) - previous
        expected = set(part.tolist()) | {i for i in range(len(labels)) if designated[i] and labels[i].item() in group}
        assert added == expected
        previous = set(stage.tolist())


def test_multistage_rejects_bad_arguments(cifar):
    with pytest.raises(ValueError, match="stages must be >= 1"):
        multistage_split(cifar.train_labels, 0, 0.5, 0, 10)
    with pytest.raises(ValueError, match=r"r must lie in \[0, 1\]"):
        multistage_split(cifar.train_labels, 2, 1.5, 0, 10)
    with pytest.raises(ValueError, match="only 10 classes"):
        multistage_split(cifar.train_labels, 10, 0.5, 0, 10)
