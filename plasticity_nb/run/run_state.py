"""What a run carries from epoch to epoch (`RunState`, saved as its checkpoint) and what it leaves behind
(`RunOutcome`, saved in the store)."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch


@dataclasses.dataclass
class RunState:
    """Everything needed to continue a run bit-identically: a checkpoint is one of these, saved."""

    history: list[dict[str, Any]]  # one row per epoch, all phases so far
    probes: list[dict[str, Any]]  # one row per curvature/noise probe so far
    phase_index: int  # the phase being trained (0-based)
    epoch: int  # epochs of that phase done
    step: int  # optimiser steps of the whole run so far
    optimizer: dict[str, Any] | None = None  # state of the phase's optimiser (None before the phase starts)
    generator: torch.Tensor | None = None  # state of the phase's data-order generator
    model: dict[str, torch.Tensor] | None = None  # weights and BatchNorm buffers, when saved
    remedies: dict[str, torch.Tensor] | None = None  # what remedies carry on (remedy_hooks.RunRemedies), when saved
    # The run's execution setting, "off" (eager) or a torch.compile mode: a resumed run continues with the one it
    # started with (compiled and eager steps round differently); None in checkpoints written before it was kept.
    compile: str | None = None
    # Its layout (training/layout.py), kept for the same reason: the memory format, whether batch norm ran on
    # the fused kernels and convolutions on the narrow ones; None in older checkpoints (which trained without them).
    channels_last: bool | None = None
    narrow_norm: bool | None = None
    narrow_conv: bool | None = None


@dataclasses.dataclass
class RunOutcome:
    history: list[dict[str, Any]]  # one row per epoch, all phases
    probes: list[dict[str, Any]]  # one row per curvature/noise probe, all phases
    state: dict[str, torch.Tensor]  # final model weights and BatchNorm buffers, on the CPU
    status: str  # "finished", or "diverged" (non-finite training loss; training stopped there)
    phases_done: int  # phases trained (fewer than configured only when diverged)
    remedies: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)  # RunRemedies' state at the end
    compile: str | None = None  # how its last phase executed ("off" or a torch.compile mode), for its provenance
    channels_last: bool | None = None  # the memory format its last phase trained in, for its provenance
    narrow_norm: bool | None = None  # whether its batch norms ran on the fused kernels (training/narrow_norm.py)
    narrow_conv: bool | None = None  # whether its convolutions ran as training/narrow_conv.py computes them
