"""The training loop, shared by a single run (train.py) and a seed ensemble (ensemble.py).

A phase is epochs of steps. What one step does belongs to a `Learner` (one model, or S models stacked
into one; a phase's gradient clipping is part of its step); this module owns what every run must do alike: each
epoch's learning rate (a phase's warm-up), when the test set is evaluated, what a history row holds, and when a
run stops (a non-finite training loss ends the run; a phase with a target train accuracy ends `window` epochs
after the epoch that reached it, or after its cap: `Phase.last_epoch`).
`Hook`s are where code that changes training plugs in (run/hooks.py).
"""
from __future__ import annotations

import math
import time
from typing import Any, Protocol, Sequence

import torch

from ..run.hooks import Hook
from ..run.run_config import Phase
from ..run.run_state import RunState


class Learner(Protocol):
    """What the loop trains during one phase: `members` models stepped together (1 for a single run)."""

    members: int
    batch_size: int
    model: torch.nn.Module | None  # what hooks act on; None for an ensemble (see `Hook`)
    optimizer: torch.optim.Optimizer

    def epoch_batches(self, epoch: int) -> tuple[torch.Tensor, list[dict[str, float]]]:
        """The epoch's batches on the device, one per step, and what to log about how each member's were drawn."""

    def step(self, batch: torch.Tensor, hooks: Sequence[Hook] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on `batch` (with the hooks' `around_forward` and `penalty`): each member's mean
        data loss and correct predictions, (members,) on the device."""

    def evaluate(self) -> list[tuple[float, float]]:
        """Each member's test-set loss and accuracy."""


def train_phase(learner: Learner, phase: Phase, states: Sequence[RunState], hooks: Sequence[Hook] = ()) -> None:
    """Train `phase` from the members' `epoch` on (they move in step), appending to each member's state.

    A member stops at the epoch it diverges or at the phase's last epoch by its own fit (`Phase.last_epoch`); one
    whose history already ends in divergence (an ensemble member, in an earlier phase) gets no more rows.
    """
    if hooks and learner.model is None:
        raise ValueError("hooks act on one model; train this run on its own, not in an ensemble")
    going = [not diverged(s) for s in states]
    if not any(going):
        return
    if states[0].epoch == 0:
        for hook in hooks:
            hook.on_phase_start(learner.model, learner.optimizer, phase)
    for epoch in range(states[0].epoch, phase.most_epochs):
        started = time.perf_counter()
        if phase.lr_warmup is not None:  # set before each epoch, so a resumed epoch gets its own rate
            rate = phase.epoch_lr(epoch)
            for group in learner.optimizer.param_groups:  # a group with its own rate (Muon's) keeps its ratio
                group["lr"] = rate / group["lr_divisor"] if "lr_divisor" in group else rate
        batches, logs = learner.epoch_batches(epoch)
        loss_sum, correct = _train_epoch(learner, batches, states[0].step, hooks)
        for hook in hooks:
            hook.before_evaluation(learner.model, learner.optimizer, epoch)
        seen = len(batches) * learner.batch_size
        train = [(loss_sum[i].item() / seen, correct[i].item() / seen) for i in range(learner.members)]
        last = [phase.last_epoch([*phase_train_accs(s), train[i][1]]) for i, s in enumerate(states)]
        tested = [going[i] and _tested(phase, epoch, last[i], *train[i]) for i in range(learner.members)]
        test = learner.evaluate() if any(tested) else None
        for i, state in enumerate(states):
            if going[i]:
                state.step += len(batches)
                state.history.append(history_row(phase, state, epoch, *train[i], test[i] if tested[i] else None,
                                                 time.perf_counter() - started, logs[i]))
                state.epoch = epoch + 1
                # a phase its target ends early returns before that epoch's hooks, as target phases always have
                # (stored multi-stage runs keep their histories); one that runs its whole range gets them
                going[i] = math.isfinite(train[i][0]) and not epoch + 1 == last[i] < phase.most_epochs
        if not any(going):
            return
        for hook in hooks:
            hook.on_epoch(learner.model, learner.optimizer, states[0].history[-1])


def _train_epoch(learner: Learner, batches: torch.Tensor, step: int,
                 hooks: Sequence[Hook]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's summed loss and correct predictions over the epoch, kept on the device (no sync per step)."""
    loss_sum = torch.zeros(learner.members, device=batches.device)
    correct = torch.zeros(learner.members, device=batches.device, dtype=torch.long)
    for batch in batches:
        loss, right = learner.step(batch, hooks)
        loss_sum += loss * learner.batch_size
        correct += right
        step += 1
        for hook in hooks:
            hook.on_step(learner.model, learner.optimizer, step)
    return loss_sum, correct


def scheduled(phase: Phase, epoch: int) -> bool:
    """Whether the test set is evaluated after `epoch` (0-based) whatever happens in it: every `eval_every`
    epochs, each of the last `eval_tail`, and the last."""
    return (epoch + 1) % phase.eval_every == 0 or epoch >= phase.epochs - phase.eval_tail or epoch == phase.epochs - 1


def phase_train_accs(state: RunState) -> list[float]:
    """The train accuracies (fractions) of the epochs done in the phase `state` is in."""
    return [row["train_acc"] for row in state.history if row["phase"] == state.phase_index + 1]


def _tested(phase: Phase, epoch: int, last: int, train_loss: float, train_acc: float) -> bool:
    """A diverged model is not evaluated; every epoch of a target's window is, and the phase's last."""
    in_window = epoch + 1 > last - phase.window
    return math.isfinite(train_loss) and (scheduled(phase, epoch) or in_window or epoch + 1 == last)


def diverged(state: RunState) -> bool:
    """Whether the run's last epoch had a non-finite training loss: the run ends there."""
    return bool(state.history) and not math.isfinite(state.history[-1]["train_loss"])


def history_row(phase: Phase, state: RunState, epoch: int, train_loss: float, train_acc: float,
                test: tuple[float, float] | None, seconds: float, log: dict[str, float]) -> dict[str, Any]:
    """The history row of `epoch` (0-based) of the phase `state` is in, after its steps were counted;
    `test` is None when the test set was not evaluated (NaN in the row)."""
    test_loss, test_acc = test or (math.nan, math.nan)
    run_epoch = (state.history[-1]["epoch"] if state.history else 0) + 1
    return dict(phase=state.phase_index + 1, pool=phase.pool, epoch=run_epoch, phase_epoch=epoch + 1, step=state.step,
                lr=phase.epoch_lr(epoch), train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                test_acc=test_acc, seconds=seconds, **log)
