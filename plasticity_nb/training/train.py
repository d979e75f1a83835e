"""Training: a run is a pure function of its `RunConfig`.

A run is a sequence of phases (pretraining on the half, tuning on the full subset, ...). Each phase
builds a new optimiser (the paper resets it at every switch), trains with a constant learning rate for
a fixed epoch budget and/or until an epoch's train accuracy reaches a target, and evaluates on the dataset's
test set (all of it, or its class-balanced `test_subset`). Precision, memory format and device are decided in one
place (`Runtime`).
The epoch loop is loop.py's, shared with seed ensembles; a single run adds its step (`SingleLearner`)
and, as hooks, module resets, remedies (run_remedies.py) and plasticity metrics (metrics_hook.py), probes,
checkpoints and the progress bar.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.seeds import derived_seed
from ..data.images import ImageData, augment
from ..run.hooks import Hook
from ..run.run_config import RunConfig
from ..run.run_state import RunOutcome, RunState
from .build import evaluate, init_model, make_optimizer
from .graphed_step import GraphedAtFirstStep, settled_lr
from .layout import tuned_runtime
from .loop import diverged, train_phase
from .run_hooks import Checkpointing, Probing, Progress, ResetGroups, cpu_state
from .run_remedies import PhaseContext, RunRemedies, remedy_hooks
from .run_tensors import RunTensors
from .runtime import COMPILE_OFF, Runtime


class SingleLearner:
    """One model during one phase (a `loop.Learner` of one member): its optimiser, data order and step."""

    members = 1

    def __init__(self, model: torch.nn.Module, config: RunConfig, state: RunState, tensors: RunTensors,
                 runtime: Runtime):
        self.model, self.tensors, self.runtime = model, tensors, runtime
        self.phase, self.batch_size, self.augment = config.phases[state.phase_index], config.batch_size, config.augment
        self.optimizer = make_optimizer(self.phase, config, model.parameters(), runtime, model)
        self.generator = torch.Generator().manual_seed(derived_seed(config.seed, state.phase_index, 0))
        if state.optimizer is not None:  # resumed part-way through the phase
            self.optimizer.load_state_dict(state.optimizer)
            self.generator.set_state(state.generator)
        self.forward = runtime.training_forward(model)
        tensors = [*model.parameters(), *model.buffers()]
        self.graphed = GraphedAtFirstStep(self.train_step, tensors, self.optimizer) if runtime.graph_step else None
        model.train()

    def epoch_batches(self, epoch: int) -> tuple[torch.Tensor, list[dict[str, float]]]:
        batches, log = self.tensors.epoch_batches(self.phase, epoch, self.batch_size, self.generator)
        return batches.to(self.runtime.device), [log]

    def step(self, batch: torch.Tensor, hooks: Sequence[Hook] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.tensors.train_x[batch], self.tensors.train_y[batch]
        if self.augment:
            x = augment(x, self.generator)
        if self.graphed is not None and settled_lr(self.optimizer, self.phase) and all(h.graph_safe for h in hooks):
            return self.graphed(x, y)
        logits, loss = self.backward(x, y, hooks, record=True)
        for hook in hooks:
            hook.refine_gradient(self.model, self.optimizer, lambda: self.backward(x, y, hooks, record=False))
        self.clip_gradients()
        self.optimizer.step()
        return loss.detach().float(), (logits.detach().argmax(1) == y).sum()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step without hooks, as a CUDA graph captures it (graphed_step.py): the same arithmetic as `step`'s
        with gradients zeroed in place, since a graph's buffers cannot be set to None."""
        self.optimizer.zero_grad(set_to_none=False)
        with self.runtime.autocast():
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        self.clip_gradients()
        self.optimizer.step()
        return loss.detach().float(), (logits.detach().argmax(1) == y).sum()

    def clip_gradients(self) -> None:
        """The phase's gradient-norm clipping, over all parameters, right before the update (FIRE's protocol,
        isaac7778/FIRE vision/train.py:264-270: after the backward pass of the loss with its penalties); off: none."""
        if self.phase.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.phase.clip_grad_norm)

    def backward(self, x: torch.Tensor, y: torch.Tensor, hooks: Sequence[Hook],
                 record: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh gradients of the data loss plus the hooks' penalties; `record`: inside their `around_forward`
        (a repeated pass, `refine_gradient`'s, is not recorded). Returns the logits and the data loss."""
        with self.runtime.autocast(), contextlib.ExitStack() as recording:
            for hook in hooks if record else ():
                recording.enter_context(hook.around_forward(self.model))
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y)
        penalties = [p for p in (hook.penalty(self.model) for hook in hooks) if p is not None]
        self.optimizer.zero_grad(set_to_none=True)
        (loss + sum(penalties) if penalties else loss).backward()
        return logits, loss

    def evaluate(self) -> list[tuple[float, float]]:
        return [evaluate(self.model, self.tensors.test_x, self.tensors.test_y, self.runtime)]


def train_run(config: RunConfig, data: ImageData, device: str | torch.device | None = None,
              start: RunOutcome | None = None, progress: bool = False, resume: RunState | None = None,
              checkpoint: Callable[[RunState], None] | None = None, checkpoint_every: int = 0,
              runtime: Runtime | None = None, compile_setting: str = COMPILE_OFF) -> RunOutcome:
    """Train every phase of `config`; or, given `start` (the outcome of `config.prefix()`), only the last.

    `resume` continues from a checkpoint that `checkpoint` saved (every `checkpoint_every` epochs);
    `runtime` overrides how it executes (default: `layout.tuned_runtime(config, device)`, compiled as
    `compile_setting` says (runtime.COMPILE_CHOICES; "off": eager), or as the resumed run was, and in the layout
    the resumed run was). Seeded and deterministic on CPU: the same config, thread count,
    compile setting and layout give a bitwise-identical history, whether the run went in one go, continued
    a stored prefix, or resumed from a checkpoint.
    """
    if runtime is None:
        runtime = tuned_runtime(config, device, compile_setting=compile_setting, **started_as(resume))
    if start is not None and start.status == "diverged":
        return start  # a diverged prefix has no weights worth continuing from
    if start is not None and start.phases_done != len(config.phases) - 1:
        raise ValueError("`start` must be the outcome of config.prefix()")
    model = init_model(config, runtime)
    remedies = RunRemedies(config, model)  # theta_0 before loading
    if resume is not None:
        model.load_state_dict(resume.model)
        remedies.load_state_dict(resume.remedies or {})
        state = dataclasses.replace(resume, model=None, remedies=None, compile=runtime.compile_setting,
                                    **layout_fields(runtime))
    elif start is not None:
        model.load_state_dict(start.state)
        remedies.load_state_dict(start.remedies)
        state = RunState(list(start.history), list(start.probes), start.phases_done, 0, start.history[-1]["step"],
                         compile=runtime.compile_setting, **layout_fields(runtime))
    else:
        state = RunState([], [], 0, 0, 0, compile=runtime.compile_setting, **layout_fields(runtime))
    tensors = RunTensors(config, data, runtime)
    while state.phase_index < len(config.phases):
        learner = SingleLearner(model, config, state, tensors, runtime)
        description = f"seed {config.seed} phase {state.phase_index + 1}/{len(config.phases)} ({learner.phase.pool})"
        with tqdm(total=learner.phase.most_epochs, initial=state.epoch, desc=description, disable=not progress,
                  leave=False) as bar:
            hooks = [*_remedy_hooks(config, state, tensors, runtime, remedies),
                     *_phase_hooks(config, state, tensors, learner, bar, checkpoint, checkpoint_every, remedies)]
            train_phase(learner, learner.phase, [state], hooks)
        if diverged(state):
            return RunOutcome(state.history, state.probes, cpu_state(model), "diverged", state.phase_index + 1,
                              remedies.state_dict(), state.compile, **layout_fields(runtime))
        state = RunState(state.history, state.probes, state.phase_index + 1, 0, state.step, compile=state.compile,
                         **layout_fields(runtime))
    return RunOutcome(state.history, state.probes, cpu_state(model), "finished", len(config.phases),
                      remedies.state_dict(), state.compile, **layout_fields(runtime))


def layout_fields(runtime: Runtime) -> dict[str, bool]:
    """The layout a checkpoint keeps and an outcome records (training/layout.py)."""
    return {"channels_last": runtime.channels_last, "narrow_norm": runtime.narrow_norm,
            "narrow_conv": runtime.narrow_conv}


def started_as(resume: RunState | None) -> dict[str, object]:
    """The execution settings a resumed run began with (its checkpoint's); none for a fresh run, or one whose
    checkpoint predates them."""
    if resume is None:
        return {}
    settings = Runtime.compile_options(resume.compile) if resume.compile else {}
    if resume.channels_last is None:
        return settings
    return {**settings, "channels_last": resume.channels_last, "narrow_norm": bool(resume.narrow_norm),
            "narrow_conv": bool(resume.narrow_conv)}


def _remedy_hooks(config: RunConfig, state: RunState, tensors: RunTensors, runtime: Runtime,
                  remedies: RunRemedies) -> list[Hook]:
    """The phase's group reset, its remedies in their declared acting order (run/remedy.py's ACTING_ORDER), then
    the metrics (which see their effect)."""
    phase, index = config.phases[state.phase_index], state.phase_index
    hooks: list[Hook] = []
    if phase.reset_groups:
        hooks.append(ResetGroups(phase.reset_groups, derived_seed(config.seed, index, 1)))
    hooks += remedy_hooks(PhaseContext(config, index, tensors, runtime, remedies))
    if config.metrics:
        hooks.append(tensors.metrics_hook(config, remedies.initial, remedies.reference))
    return hooks


def _phase_hooks(config: RunConfig, state: RunState, tensors: RunTensors, learner: SingleLearner, bar: tqdm,
                 checkpoint: Callable[[RunState], None] | None, checkpoint_every: int,
                 remedies: RunRemedies) -> list[Hook]:
    """Probes where the config asks for them, the progress bar, then checkpoints if asked for (last, so that a
    checkpoint holds what the others did)."""
    hooks: list[Hook] = []
    if config.probes:
        hooks.append(Probing(config, state, tensors))
    hooks.append(Progress(bar))
    if checkpoint and checkpoint_every:
        hooks.append(Checkpointing(checkpoint, checkpoint_every, state, learner.generator, learner.phase.most_epochs,
                                   remedies))
    return hooks
