"""Hare & Tortoise (Lee, Cho, Kim, Lee, Yun & Choo, "Slow and Steady Wins the Race: Maintaining Plasticity with
Hare and Tortoise Networks", ICML 2024; reference code: dojeon-ai/Hare-Tortoise, `src/trainers/base.py`, the
EMA at lines 151-157 and the reset at lines 182-188; their warm-start CIFAR-10 runs set ema 0.999 and
reset_every 10, `scripts/paper/warm_start_wo_aug/hare_tortoise.sh`).

The tortoise is a slow copy of the network: after every optimiser step, tortoise <- beta * tortoise +
(1 - beta) * hare over the parameters and the buffers (BatchNorm's running statistics), from a copy of the
network as initialised, never reset across tasks (here: across the run's phases). At the end of every
`reset_every`-th epoch of a task, counted from its first (their 0-based `epoch % reset_every == 0`: after epochs
1, 11, 21, ... of a phase), the hare (the trained network) takes the tortoise's values; the optimiser's state
is kept. The hare is the network trained and evaluated (their `test_acc1`); the tortoise is evaluated beside it
on the same test set, as their `test()` does (lines 227-236, logged as `test_target_acc1`): the history's
`tortoise_test_acc` column, at every epoch whose row has a test accuracy (NaN at the others; not on an epoch that
ends its phase early at a train-accuracy target or by diverging, where no hook acts). It costs one more test-set
evaluation per evaluated epoch and changes nothing the run trains.

Their reset rebinds `fast.data = slow.data` (lines 184-188): hare and tortoise share storage, so the first
optimiser step after a reset (and the BatchNorm forward before it) moves the tortoise too, and the EMA that
follows, of two equal tensors, leaves the tortoise at the stepped hare (beta * h + (1 - beta) * h): the tortoise
takes that step whole instead of (1 - beta) of it, and owns its storage again. `shared_reset_step=True` does
exactly that (bit for bit as their code, tests/test_new_remedies.py), including what happens at a task's end:
their end-of-task blend with the initial weights (lines 205-211, a no-op at their defaults) rebinds the
hare's parameters to new tensors, so a reset on a task's last epoch leaves only the buffers shared into the next
task's first step. The default, `shared_reset_step=False`, copies at the reset, as the method is described:
it is the package's behaviour since the remedy was added, and it stays the default so that every stored
Hare & Tortoise run (notebook 11's) keeps its key and its meaning (making theirs the default would take a new
key for every Hare & Tortoise run, notebook 11's included). Their EMA turns the integer `num_batches_tracked`
into a float; here integer buffers follow the hare (BatchNorm with a momentum, as here, never reads them). Their
regeneration loss (lines 123-139, zero at their defaults) and ReDo in `test()` (a no-op: it writes into copies)
are not part of the method.

Their beta is sized for their steps per epoch (50,000 images / batch 256 = 195 steps): the tortoise's horizon
1 / (1 - beta) = 1,000 steps is 5.1 of their epochs. `for_budget` keeps that horizon in epochs: beta =
1 - 195 / (1000 * steps per epoch) (quick: 39 steps per epoch, beta 0.995), with reset_every unchanged in epochs.
This rule was written down on 2026-12-01 before any run with this remedy.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Budget, Remedy, RemedyContext, register

AUTHORS_STEPS_PER_EPOCH = 195  # 50,000 images / batch 256 (configs/dataset/cifar10.yaml)
AUTHORS_BETA = 0.999


SHARED = "_shared_with_hare"  # the state_dict entry listing the values a reset left shared (their aliasing)


class Tortoise:
    """The slow network: an EMA of the hare's parameters and buffers, carried across phases and checkpoints.

    `shared` holds the entries that their code would have aliased to the hare since a reset (`reset_hare(...,
    shared=True)`), until the next `update` makes the tortoise equal to the stepped hare there."""

    def __init__(self, model: nn.Module):
        self.values = {name: t.detach().clone() for name, t in model.state_dict().items()}
        if SHARED in self.values:
            raise ValueError(f"the model has a state entry named {SHARED!r}, which the tortoise's state uses")
        self.parameter_names = {name for name, _ in model.named_parameters()}
        self.shared: set[str] = set()

    @torch.no_grad()
    def update(self, model: nn.Module, beta: float) -> None:
        for name, hare in model.state_dict().items():
            slow = self.values[name]
            if slow.is_floating_point():
                if name in self.shared:  # aliased in their code: the step moved the tortoise with the hare
                    slow.copy_(hare)
                slow.mul_(beta).add_((1 - beta) * hare)  # their two products, then the sum
            else:
                slow.copy_(hare)
        self.shared.clear()  # their EMA makes new tensors: the tortoise owns its storage again

    @torch.no_grad()
    def reset_hare(self, model: nn.Module, shared: bool = False) -> None:
        """The hare takes the tortoise's values; `shared`: as their code's `fast.data = slow.data`, the next step
        moves both (see `update`)."""
        for name, hare in model.state_dict().items():
            hare.copy_(self.values[name])
        self.shared = set(self.values) if shared else set()

    def end_task(self) -> None:
        """Their end-of-task blend (base.py:205-211) rebinds the hare's parameters, not its buffers: only the
        buffers stay shared into the next task."""
        self.shared -= self.parameter_names

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {name: value.clone() for name, value in self.values.items()}  # a snapshot: the EMA moves on
        if self.shared:  # only between a shared reset and the next step: other states keep their old entries
            state[SHARED] = torch.tensor([name in self.shared for name in self.values])
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        shared = state.get(SHARED)
        self.shared = set() if shared is None else {name for name, s in zip(self.values, shared.tolist()) if s}
        for name, value in state.items():
            if name != SHARED:
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
    # True: their reset, hare and tortoise sharing storage until the next step, which the tortoise thus takes
    # whole; False: the reset copies (the package's runs so far, kept as the default: module doc)
    shared_reset_step: bool = False

    @classmethod
    def for_budget(cls, budget: Budget) -> "HareTortoise":
        """Their horizon in epochs at this budget's steps per epoch (module doc)."""
        return cls(beta=1 - AUTHORS_STEPS_PER_EPOCH * (1 - AUTHORS_BETA) / budget.steps_per_epoch)

    @classmethod
    def run_state(cls, settings: list["HareTortoise"], model: nn.Module, seed: Any) -> Tortoise:
        return Tortoise(model)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [HareTortoiseHook(self, context.state(self.NAME), context)]


class HareTortoiseHook(Hook):
    def __init__(self, settings: HareTortoise, tortoise: Tortoise, context: RemedyContext):
        self.settings, self.tortoise, self.context = settings, tortoise, context
        self.slow: nn.Module | None = None  # a network of the run's architecture holding the tortoise to test it

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Any) -> None:
        self.tortoise.end_task()  # a previous phase's task ended (the first phase's start has nothing shared)

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        self.tortoise.update(model, self.settings.beta)

    def before_evaluation(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase_epoch: int) -> None:
        if phase_epoch % self.settings.reset_every == 0:  # their 0-based epoch: the reset precedes the test
            self.tortoise.reset_hare(model, shared=self.settings.shared_reset_step)

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        row["tortoise_test_acc"] = self.test_tortoise() if math.isfinite(row["test_acc"]) else math.nan

    def test_tortoise(self) -> float:
        """The tortoise's test accuracy, as their test() takes it beside the hare's (module doc)."""
        if self.slow is None:
            self.slow = self.context.fresh_model(0)  # its weights are replaced by the tortoise's
        self.slow.load_state_dict(self.tortoise.values)
        return self.context.evaluate(self.slow)[1]
