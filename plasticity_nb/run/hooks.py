"""Where code that changes training plugs into the loop (training/loop.py): at the start of a phase, around each
step's forward pass and in its loss, between its backward pass and its update (around the whole step), after each
step, before each epoch's evaluation and after each epoch. At the bottom of the remedies and
the training code, which both build hooks.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, ContextManager

if TYPE_CHECKING:
    import torch


class Hook:
    """Acts on the model being trained at fixed moments; each method does nothing unless overridden.

    Hooks run in list order. They act on one `torch.nn.Module`, so only a single run takes them: an
    ensemble's members are slices of stacked tensors behind a functional call, with no module of their
    own for a hook to change. A hook that changes training changes the run's result, which is stored under
    the config's key: such a hook must be built from a config field, never handed in beside the config.
    """

    # True for a hook that acts only between epochs and only reads the model and optimiser: a CUDA graph of the
    # steps (training/graphed_step.py) stays valid beside it. Every other hook's run steps eagerly.
    graph_safe = False

    def on_phase_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, phase: Any) -> None:
        """Before the phase's first step (`phase`: its run_config.Phase; not when a checkpoint resumes the phase
        part-way: the checkpointed weights already hold what the hook did)."""

    def around_forward(self, model: torch.nn.Module) -> ContextManager:
        """Entered around each training step's forward pass (e.g. to record activations)."""
        return contextlib.nullcontext()

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        """A term added to the step's loss before backward; the logged train loss stays the data loss."""
        return None

    def refine_gradient(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        backward_again: Callable[[], None]) -> None:
        """After the step's backward pass, before the optimiser's update: may change the gradients the update
        applies. `backward_again()` runs the step's forward and backward pass again (same batch, loss and
        penalties, the model's current weights and mode; its gradients replace the old ones)."""

    def on_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        """After optimiser step `step` (counted over the whole run)."""

    def before_evaluation(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        """After the steps of the phase's `epoch` (0-based), before its test-set evaluation and history row."""

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        """After an epoch's history `row` (the row in the history: a hook may add measurements to it), unless
        that epoch ended the phase early (divergence or target): then there is nothing left to act on."""
