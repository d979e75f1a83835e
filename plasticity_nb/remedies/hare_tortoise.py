"""Hare & Tortoise (Lee, Cho, Kim, Lee, Yun & Choo, "Slow and Steady Wins the Race: Maintaining Plasticity with
Hare and Tortoise Networks", ICML 2024; reference code: dojeon-ai/Hare-Tortoise, `src/trainers/base.py`, the
EMA at lines 151-157 and the reset at lines 182-188; their warm-start CIFAR-10 runs set ema 0.999 and
reset_every 10, `scripts/paper/warm_start_wo_aug/hare_tortoise.sh`).

The tortoise is a slow copy of the network: after every optimiser step, tortoise <- beta * tortoise +
(1 - beta) * hare over the parameters and the buffers (BatchNorm's running statistics), from a copy of the
network as initialised, never reset across tasks (here: across the run's phases). At the end of every
`reset_every`-th epoch of a task, counted from its first (their 0-based `epoch % reset_every == 0`: after epochs
1, 11, 21, ... of a phase), the hare (the trained network) takes the tortoise's values; the optimiser's state
is kept. The hare is the network trained and evaluated (their `test_acc1`; they also log the tortoise's).

Left out of their code, on purpose: their reset rebinds `fast.data = slow.data`, so hare and tortoise share
storage until the next EMA update makes the tortoise equal to the hare after one full step; here the reset
copies, as the method describes. Their EMA turns the integer `num_batches_tracked` into a float; here integer
buffers follow the hare (BatchNorm with a momentum, as here, never reads them). Their regeneration loss (lines
123-139, zero at their defaults) and ReDo in `test()` (a no-op: it writes into copies) are not part of the method.

Their beta is sized for their steps per epoch (50,000 images / batch 256 = 195 steps): the tortoise's horizon
1 / (1 - beta) = 1,000 steps is 5.1 of their epochs. `for_budget` keeps that horizon in epochs: beta =
1 - 195 / (1000 * steps per epoch) (quick: 39 steps per epoch, beta 0.995), with reset_every unchanged in epochs.
This rule was written down on 2026-12-01 before any run with this remedy.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Budget, Remedy, RemedyContext, register

AUTHORS_STEPS_PER_EPOCH = 195  # 50,000 images / batch 256 (configs/dataset/cifar10.yaml)
AUTHORS_BETA = 0.999


class Tortoise:
    """The slow network: an EMA of the hare's parameters and buffers, carried across phases and checkpoints."""

    def __init__(self, model: nn.Module):
        self.values = {name: t.detach().clone() for name, t in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, beta: float) -> None:
        for name, hare in model.state_dict().items():
            slow = self.values[name]
            if slow.is_floating_point():
                slow.mul_(beta).add_((1 - beta) * hare)  # their two products, then the sum
            else:
                slow.copy_(hare)

    @torch.no_grad()
    def reset_hare(self, model: nn.Module) -> None:
        for name, hare in model.state_dict().items():
            hare.copy_(self.values[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value.clone() for name, value in self.values.items()}  # a snapshot: the EMA moves on

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            self.values[name].copy_(value)


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class HareTortoise(Remedy):
    """Lee et al. (ICML 2024), as their code (dojeon-ai/Hare-Tortoise src/trainers/base.py:151-157, 182-188): an
    EMA tortoise of the network, the hare reset to it every `reset_every` epochs."""

    NAME = "hare_tortoise"
    ACTS = "after every step (EMA) and every reset_every epochs (reset)"
    PLACEMENT = "both phases"

    beta: float = ranged(AUTHORS_BETA, ge=0, lt=1)  # EMA weight of the tortoise: theirs (0: the hare itself)
    reset_every: int = ranged(10, gt=0)  # epochs between resets of the hare: theirs

    @classmethod
    def for_budget(cls, budget: Budget) -> "HareTortoise":
        """Their horizon in epochs at this budget's steps per epoch (module doc)."""
        return cls(beta=1 - AUTHORS_STEPS_PER_EPOCH * (1 - AUTHORS_BETA) / budget.steps_per_epoch)

    @classmethod
    def run_state(cls, settings: list["HareTortoise"], model: nn.Module, seed: Any) -> Tortoise:
        return Tortoise(model)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [HareTortoiseHook(self, context.state(self.NAME))]


class HareTortoiseHook(Hook):
    def __init__(self, settings: HareTortoise, tortoise: Tortoise):
        self.settings, self.tortoise = settings, tortoise

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        self.tortoise.update(model, self.settings.beta)

    def before_evaluation(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase_epoch: int) -> None:
        if phase_epoch % self.settings.reset_every == 0:  # their 0-based epoch: the reset precedes the test
            self.tortoise.reset_hare(model)
