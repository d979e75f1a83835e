"""A full reset when new data arrives, FIRE's "full reset" arm (Han et al., ICLR 2026; isaac7778/FIRE at c37a0ac,
`vision/train.py:118-119, 170-182`): at the start of every phase after the first, every parameter and every buffer
(BatchNorm's running mean and variance and its num_batches_tracked) goes back to the run's initial model.

Theirs keeps a copy of the model as initialised (`init_model = deepcopy(model)`, line 119, the same copy L2 Init and
shrink-and-perturb read) and, once per new chunk from the second on, after shrink-and-perturb and before DASH and
FIRE, sets each parameter's and buffer's data to a clone of the copy's (lines 170-182). So the network restarts from
its own initial weights theta_0, not from a new draw; here theta_0 is rebuilt from the run's seed (`fresh_model` of the
run's seed is exactly the run's initial model), `weights="initial"`. `weights="fresh"` draws a new initialisation
instead, from the seed derived for the run, the phase and this remedy (the package's seed stream), so that it differs
from theta_0 and from the scratch arm's initial weights.

The optimiser: theirs builds a new Adam for every chunk before the reset (line 162), so no old moments survive; every
phase here builds a new optimiser too, with no state at the phase start when the reset acts. Copying in place keeps
each tensor (its memory format, the optimiser's references) with the initial values.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..core.config import ConfigError, ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

FRESH_SEED_TAG = 9  # derived_seed(run seed, phase index, 9): weights="fresh"'s initialisation
WEIGHTS = ("initial", "fresh")


@torch.no_grad()
def full_reset_(model: nn.Module, fresh: nn.Module) -> nn.Module:
    """Every parameter and buffer of `model` set to `fresh`'s, in place (FIRE vision/train.py:174-182)."""
    source = fresh.state_dict()
    state = model.state_dict()
    if source.keys() != state.keys():
        raise ValueError("the fresh model is not of the model's architecture")
    for name, value in state.items():
        value.copy_(source[name])
    return model


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class FullReset(Remedy):
    """Every parameter and buffer back to an initialisation at the start of each phase after the first, as FIRE's
    full-reset arm (isaac7778/FIRE vision/train.py:170-182)."""

    NAME = "full_reset"
    ACTS = "at the phase start"
    PLACEMENT = "tuning start"

    # initial: the run's own initial model theta_0 (FIRE's: a copy kept at initialisation, train.py:119);
    # fresh: a new initialisation from the seed derived for the run and phase
    weights: str = ranged("initial", choices=WEIGHTS)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        if self.weights == "initial":
            seed = context.config.seed  # the run's own: init_model's theta_0
        else:
            seed = context.seed(context.phase_index, FRESH_SEED_TAG) % 2**31  # as shrink-and-perturb's fresh draw
        return [FullResetHook(lambda: context.fresh_model(seed))]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if any(index == 0 for index, _ in settings):
            raise ConfigError("full_reset acts when new data arrives, from the second phase on (as FIRE runs it, "
                              "vision/train.py:165-182): set it on a later phase")


class FullResetHook(Hook):
    """The reset at the phase start, before its first step."""

    def __init__(self, fresh):
        self.fresh = fresh  # builds the model to reset to (only when the phase starts: not on a resumed phase)

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase) -> None:
        full_reset_(model, self.fresh())
