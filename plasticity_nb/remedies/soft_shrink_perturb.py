"""Soft shrink-and-perturb (Juliani & Ash, "A Study of Plasticity Loss in On-Policy Deep Reinforcement
Learning", NeurIPS 2024; reference code: awjuliani/deep-rl-plasticity, `shared/modules.py` `sp_module`, lines
287-292, called after every optimiser step by `algos/ppo/trainer.py`, lines 192-197, through
`algos/ppo/model.py` `_shrink_perturb`, lines 104-121).

After every step, theta <- shrink * theta + perturb * theta_fresh for every parameter (biases and norm layers'
gamma and beta included; buffers untouched), theta_fresh a new network of the same architecture with PyTorch's
default init, drawn anew at each call; Adam's moments are kept. Their condition `ssp-6` (hyperparams.yaml,
lines 21-22) sets shrink 0.999999 and perturb 1e-6, the class's defaults. Here the fresh draw is seeded by the
run's seed, phase and step, so a resumed run draws what it would have drawn.

Their values are sized for their runs: 240,000 steps per task (5,000 PPO epochs between distribution shifts x
3 passes x at least 16 minibatches of 64, hyperparams.yaml lines 56-68), where the weights keep
0.999999^240000 = 0.79 of themselves. Over a quick tuning phase (~975 steps) that would be 0.999, no effect.
`for_budget` keeps the per-task shrink: shrink_T = 0.999999^(240000 / T) for a task (the tuning phase) of T steps,
and perturb_T = 1 - shrink_T as theirs (their two factors sum to 1). This rule was written down on 2026-12-01
before any run with this remedy.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..core.config import ranged
from ..run.hooks import Hook
from ..run.remedy import Budget, Remedy, RemedyContext, register

AUTHORS_SHRINK = 0.999999  # their ssp-6 condition
AUTHORS_STEPS_PER_TASK = 240_000  # 5,000 PPO epochs x 3 passes x 16 minibatches (hyperparams.yaml)
FRESH_SEED_TAG = 17  # derived_seed(run seed, phase index, 17, step): that step's fresh initialisation


@torch.no_grad()
def redraw_(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every module of `model` in place from `seed` (PyTorch's default init: a fresh network)."""
    devices = [model_device] if (model_device := next(model.parameters()).device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


@torch.no_grad()
def soft_shrink_perturb_(model: nn.Module, fresh: nn.Module, shrink: float, perturb: float) -> None:
    """theta <- shrink * theta + perturb * theta_fresh, parameter by parameter in order, as `sp_module`."""
    for param, fresh_param in zip(model.parameters(), fresh.parameters(), strict=True):
        param.mul_(shrink).add_(perturb * fresh_param)  # their two products, then the sum


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class SoftShrinkPerturb(Remedy):
    """Juliani & Ash (NeurIPS 2024), as their code (awjuliani/deep-rl-plasticity shared/modules.py:287-292):
    after every step theta <- shrink * theta + perturb * theta_fresh, a new initialisation each step."""

    NAME = "soft_shrink_perturb"
    ACTS = "after every step"
    PLACEMENT = "both phases"

    shrink: float = ranged(AUTHORS_SHRINK, gt=0, le=1)  # their ssp-6 condition
    perturb: float = ranged(1e-6, ge=0)  # their ssp-6 condition (1 - shrink)

    @classmethod
    def for_budget(cls, budget: Budget) -> "SoftShrinkPerturb":
        """Their per-task shrink over the budget's task (module doc): 0.999999^(240000 / task steps)."""
        shrink = AUTHORS_SHRINK ** (AUTHORS_STEPS_PER_TASK / budget.task_steps)
        return cls(shrink=shrink, perturb=1 - shrink)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        twin = context.fresh_model(context.seed(context.phase_index, FRESH_SEED_TAG) % 2**31)
        return [SoftShrinkPerturbHook(self, twin, lambda step: context.seed(context.phase_index, FRESH_SEED_TAG,
                                                                            step) % 2**31)]


class SoftShrinkPerturbHook(Hook):
    """After each step, re-draws the twin network from that step's seed and mixes it into the model."""

    def __init__(self, settings: SoftShrinkPerturb, twin: nn.Module, seed_of_step):
        self.settings, self.twin, self.seed_of_step = settings, twin, seed_of_step

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        redraw_(self.twin, self.seed_of_step(step))
        soft_shrink_perturb_(model, self.twin, self.settings.shrink, self.settings.perturb)
