"""Which training examples a step sees: shuffled pools, the blending sampler and multi-stage splits.

- `shuffled_batches`: the usual epoch, a seeded permutation of a pool cut into batches (last partial
  batch dropped).
- `BlendingSampler` (Berariu et al. Fig. 3): one run with no separate pretraining; at step n each
  example comes from the full set with probability p(n) = 1 - gamma^(rate * n / N) (paper: rate 50,
  N the run's total steps), otherwise from the pretraining half; i.i.d. with replacement.
- `multistage_split` (App. A.3): nested stage sets D_1 c ... c D_{n+1} = D built from class groups and
  a uniform fraction r of the data.
- `class_orders`: one seeded order of each class's examples, whose prefixes are a run's nested parts (FIRE's
  first 10 % and its cumulative chunks).
"""
from __future__ import annotations

import dataclasses

import torch


def shuffled_batches(pool: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(steps, batch_size) indices: one epoch over `pool` in a seeded random order."""
    steps = len(pool) // batch_size
    return pool[torch.randperm(len(pool), generator=generator)[: steps * batch_size]].view(steps, batch_size)


@dataclasses.dataclass(frozen=True)
class BlendingSampler:
    full: torch.Tensor  # indices of the whole training subset
    half: torch.Tensor  # indices of the pretraining half
    batch_size: int
    total_steps: int  # N: steps of the whole run
    gamma: float  # in (0, 1); smaller fades the bias towards the half faster
    rate: float = 50.0  # the paper's 50: p = 1 - gamma at step N / rate

    def p_full(self, step: torch.Tensor | int) -> torch.Tensor:
        """Probability that an example of step `step` (0-based) is drawn from the full set."""
        step = torch.as_tensor(step, dtype=torch.float64)
        return 1 - self.gamma ** (self.rate * step / self.total_steps)

    def batches(self, first_step: int, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(steps, batch_size) indices for steps first_step.., and the mask of examples drawn from the full set."""
        p = self.p_full(torch.arange(first_step, first_step + steps)).float()[:, None].expand(steps, self.batch_size)
        from_full = torch.rand(steps, self.batch_size, generator=generator) < p
        pick_full = self.full[torch.randint(len(self.full), (steps, self.batch_size), generator=generator)]
        pick_half = self.half[torch.randint(len(self.half), (steps, self.batch_size), generator=generator)]
        return torch.where(from_full, pick_full, pick_half), from_full


@dataclasses.dataclass(frozen=True)
class StageSplit:
    stages: list[torch.Tensor]  # D_1 .. D_{n+1}: sorted indices, nested, the last is the whole set
    class_groups: list[list[int]]  # C_1 .. C_{n+1}
    uniform_parts: list[torch.Tensor]  # D_{u,1} .. D_{u,n+1}: disjoint, together |D_u| = r |D|


def multistage_split(labels: torch.Tensor, n_stages: int, uniform_ratio: float, seed: int,
                     num_classes: int) -> StageSplit:
    """The paper's appendix construction for `n_stages` pretraining stages and uniform fraction r.

    The dataset's `num_classes` classes go into n+1 near-equal groups (a seeded permutation). A class-stratified
    fraction r of the examples (round(r * count) of each class) is the uniform part, cut into n+1 near-equal parts
    that are class-stratified too; the rest is class-designated. Stage i adds uniform part i and the designated
    examples of class group i to stage i-1.
    `labels` are the labels of the set being split; the returned indices index into it.
    """
    if n_stages < 1:
        raise ValueError(f"stages must be >= 1, got {n_stages}")
    if not 0 <= uniform_ratio <= 1:
        raise ValueError(f"uniform ratio r must lie in [0, 1], got {uniform_ratio}")
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    classes = torch.randperm(num_classes, generator=generator)
    groups = [g.sort().values.tolist() for g in classes.tensor_split(n_stages + 1)]
    if any(not g for g in groups):
        raise ValueError(f"{n_stages} stages need {n_stages + 1} class groups "
                         f"but the dataset has only {num_classes} classes")
    # D_u: round(r * count) random examples of each class, each class's share cut into n+1 near-equal
    # pieces; piece i of class c goes to part (i + c) mod (n+1), so parts are stratified and balanced.
    pieces: list[list[torch.Tensor]] = [[] for _ in range(n_stages + 1)]
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[: round(uniform_ratio * len(members))]]
        for i, piece in enumerate(chosen.tensor_split(n_stages + 1)):
            pieces[(i + c) % (n_stages + 1)].append(piece)
    uniform_parts = [torch.cat(p).sort().values for p in pieces]
    uniform = torch.cat(uniform_parts)
    designated = torch.ones(len(labels), dtype=torch.bool)
    designated[uniform] = False
    stages, current = [], torch.empty(0, dtype=torch.long)
    for part, group in zip(uniform_parts, groups):
        of_group = torch.nonzero(designated & torch.isin(labels, torch.tensor(group))).flatten()
        current = torch.cat([current, part, of_group]).sort().values
        stages.append(current)
    return StageSplit(stages, groups, uniform_parts)


def class_orders(labels: torch.Tensor, seed: int, num_classes: int) -> list[torch.Tensor]:
    """Per class, its examples' indices in one seeded random order: a part of the set takes a prefix of each (of the
    length `run_config.part_count` gives), so every part of a run is class-balanced and the parts are nested, as
    FIRE's chunks are prefixes of one seeded permutation (isaac7778/FIRE vision/task.py:170-199; theirs is not
    drawn per class). `labels` are those of the set being split; the returned indices index into it."""
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    orders = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        orders.append(members[torch.randperm(len(members), generator=generator)])
    return orders
