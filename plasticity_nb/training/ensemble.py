"""Seed ensembles: S runs that differ only by seed, trained as one batched model with torch.func.

`torch.func.stack_module_state` stacks the members' parameters and BatchNorm buffers along a leading
member dimension; `functional_call` under `vmap` runs every member on its own batch. Each member keeps
its own parameters, optimiser state (the optimisers used are elementwise, so one optimiser over the
stacked tensors is S independent ones), data order (its own subset, half and generator, exactly as
when trained alone) and BatchNorm running statistics (stacked buffers, updated per member).

On a GPU this turns S small kernels into one large one; on a CPU, which is already busy, it gains
little (see benchmarks/ensemble_vs_sequential.py). Results match training each seed alone up to
floating-point reassociation (tests/test_ensemble.py states the tolerance).

Epochs, the evaluation schedule, a phase's learning-rate warm-up, history rows and the divergence rule are the
single run's (loop.py); a phase's gradient clipping clips each member by its own norm (`clip_members_`).
Not supported, so such runs train one by one: module resets, remedies, curvature probes, plasticity metrics
and checkpoints (hooks, which act on a module of their own; a member is a slice of stacked tensors) and a
target train accuracy (members would reach it at different epochs, yet they step together).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from ..core.seeds import derived_seed
from ..data.images import ImageData, augment
from ..run.hooks import Hook
from ..run.run_config import RunConfig
from ..run.run_state import RunOutcome, RunState
from .build import EVAL_BATCH, init_model, make_optimizer
from .graphed_step import GraphedAtFirstStep, settled_lr
from .loop import diverged, train_phase
from .run_tensors import RunTensors
from .runtime import Runtime


class Float32BatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm on a float32 copy of its input. Under vmap, cuDNN's batch-norm backward refuses a bf16
    input beside float32 running statistics (which a lone model's autocast accepts); normalising in
    float32 is what autocast does to normalisation layers anyway, and the next convolution casts back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float())


def ensemble_key(config: RunConfig) -> str:
    """Configs with equal keys here differ only by seed and can train as one ensemble."""
    return config.replace(seed=0).key()


def can_ensemble(config: RunConfig) -> bool:
    return not refusal(config)


def refusal(config: RunConfig) -> str:
    """Why an ensemble cannot train `config` ("" if it can): what needs a module of its own (see `loop.Hook`)."""
    reasons = ["curvature probes"] * bool(config.probes) + ["plasticity metrics"] * bool(config.metrics)
    for i, phase in enumerate(config.phases, 1):
        needs = [*phase.remedy_names, *["reset_groups"] * bool(phase.reset_groups),
                 *["target_train_acc"] * (phase.target_train_acc is not None)]
        reasons += [f"phase {i}: {what}" for what in needs]
    return ", ".join(reasons)


def train_ensemble(configs: list[RunConfig], data: ImageData, device: str | torch.device | None = None,
                   starts: list[RunOutcome] | None = None, **runtime_options: Any) -> list[RunOutcome]:
    """Train the last phase of every config (all phases when `starts` is None) as one vmapped model.

    `runtime_options` go to `Runtime.for_config` (e.g. compile_setting="reduce-overhead")."""
    if len({ensemble_key(c) for c in configs}) != 1:
        raise ValueError("an ensemble needs configs that differ only by seed")
    for config in configs:
        if why := refusal(config):
            raise ValueError(f"an ensemble cannot train seed {config.seed}'s run: it needs a model of its own for "
                             f"{why}; train it alone (run_many without ensemble=True)")
    # vmap adds a member dimension: plain NCHW inside, so there is no memory format to choose
    runtime = Runtime.for_config(configs[0], device, **{**runtime_options, "channels_last": False})
    models = [init_model(c, runtime) for c in configs]
    states = [RunState([], [], 0, 0, 0) for _ in configs]
    if starts is not None:  # each the outcome of its config's prefix (a diverged one gets no more rows)
        for model, start in zip(models, starts):
            model.load_state_dict(start.state)
        states = [RunState(list(s.history), [], len(c.phases) - 1, 0, s.history[-1]["step"])
                  for c, s in zip(configs, starts)]
    stack = Stack(models, runtime)
    tensors = [RunTensors(c, data, runtime) for c in configs]
    while states[0].phase_index < len(configs[0].phases):
        learner = EnsembleLearner(configs, states[0].phase_index, stack, tensors, runtime)
        train_phase(learner, learner.phase, states)
        states = [RunState(s.history, [], s.phase_index + 1, 0, s.step) for s in states]
    return [RunOutcome(s.history, [], state, "diverged" if diverged(s) else "finished",
                       s.history[-1]["phase"] if diverged(s) else len(c.phases), channels_last=runtime.channels_last)
            for c, s, state in zip(configs, states, stack.member_states())]


class Stack:
    """The members' parameters and buffers stacked along a leading member dimension, and the module
    (on the meta device) whose functional call runs one member."""

    def __init__(self, models: list[torch.nn.Module], runtime: Runtime):
        self.params, self.buffers = stack_module_state(models)
        self.template = copy.deepcopy(models[0]).to("meta")
        for module in self.template.modules():
            if type(module) is torch.nn.BatchNorm2d:
                module.__class__ = Float32BatchNorm2d  # same parameters and buffers, float32 arithmetic
        self.training_forward = runtime.training_forward(vmap(self._call))
        self.shared_input_forward = vmap(self._call, in_dims=(0, 0, None))  # one test batch for every member

    def _call(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def member_states(self) -> list[dict[str, torch.Tensor]]:
        tensors = {**self.params, **self.buffers}
        members = next(iter(self.params.values())).shape[0]
        return [{k: v[i].detach().cpu().clone() for k, v in tensors.items()} for i in range(members)]


class EnsembleLearner:
    """The stacked members during one phase (a `loop.Learner`): one optimiser over the stacked tensors, each
    member's own data order."""

    model = None  # no module for hooks to act on (see the module docstring)

    def __init__(self, configs: list[RunConfig], phase_index: int, stack: Stack, tensors: list[RunTensors],
                 runtime: Runtime):
        config = configs[0]
        self.phase, self.members, self.batch_size = config.phases[phase_index], len(configs), config.batch_size
        self.stack, self.tensors, self.runtime, self.augment = stack, tensors, runtime, config.augment
        self.optimizer = make_optimizer(self.phase, config, list(stack.params.values()), runtime)
        self.generators = [torch.Generator().manual_seed(derived_seed(c.seed, phase_index, 0)) for c in configs]
        tensors = [*stack.params.values(), *stack.buffers.values()]
        self.graphed = GraphedAtFirstStep(self.train_step, tensors, self.optimizer) if runtime.graph_step else None
        stack.template.train()

    def epoch_batches(self, epoch: int) -> tuple[torch.Tensor, list[dict[str, float]]]:
        drawn = [t.epoch_batches(self.phase, epoch, self.batch_size, g) for t, g in zip(self.tensors, self.generators)]
        batches = torch.stack([b for b, _ in drawn], dim=1).to(self.runtime.device)  # (steps, members, batch)
        return batches, [log for _, log in drawn]

    def step(self, batch: torch.Tensor, hooks: Sequence[Hook] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        x = [t.train_x[b] for t, b in zip(self.tensors, batch)]
        if self.augment:  # each member draws from its own generator, as when trained alone
            x = [augment(xi, g) for xi, g in zip(x, self.generators)]
        x = torch.stack(x)
        y = torch.stack([t.train_y[b] for t, b in zip(self.tensors, batch)])
        graphed = self.graphed is not None and settled_lr(self.optimizer, self.phase)
        return self.graphed(x, y) if graphed else self.train_step(x, y)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's step on its own batch (x: members x batch x image); what a CUDA graph captures."""
        with self.runtime.autocast():
            logits = self.stack.training_forward(self.stack.params, self.stack.buffers, x)
            losses = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
            losses = losses.view(self.members, -1).mean(1)
        self.optimizer.zero_grad(set_to_none=not self.runtime.graph_step)  # a graph's gradients stay in place
        losses.sum().backward()  # member i's gradient depends on member i's loss only
        if self.phase.clip_grad_norm is not None:
            clip_members_(list(self.stack.params.values()), self.phase.clip_grad_norm)
        self.optimizer.step()
        return losses.detach(), (logits.detach().argmax(-1) == y).sum(1)

    @torch.inference_mode()
    def evaluate(self) -> list[tuple[float, float]]:
        """Every member on the (shared) test set, BatchNorm in eval mode: one batched forward per chunk."""
        self.stack.template.eval()
        test_x, test_y = self.tensors[0].test_x, self.tensors[0].test_y
        loss_sum = torch.zeros(self.members, device=test_x.device)
        correct = torch.zeros(self.members, device=test_x.device, dtype=torch.long)
        for start in range(0, len(test_y), EVAL_BATCH):
            x, y = test_x[start:start + EVAL_BATCH], test_y[start:start + EVAL_BATCH]
            with self.runtime.autocast():
                logits = self.stack.shared_input_forward(self.stack.params, self.stack.buffers, x).float()
            losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(self.members), reduction="none")
            loss_sum += losses.view(self.members, -1).sum(1)
            correct += (logits.argmax(-1) == y).sum(1)
        self.stack.template.train()
        n = len(test_y)
        return [(loss_sum[i].item() / n, correct[i].item() / n) for i in range(self.members)]


@torch.no_grad()
def clip_members_(params: list[torch.Tensor], max_norm: float) -> None:
    """torch's clip_grad_norm_ for each member of stacked parameters: member i's gradients times
    min(1, max_norm / (||g_i|| + 1e-6)), its norm over all of its parameters' gradients (the norm of their norms, as
    torch computes it; equal to a lone run's up to the order of the sums)."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = [torch.linalg.vector_norm(g.reshape(len(g), -1), dim=1) for g in grads]  # each (members,)
    total = torch.linalg.vector_norm(torch.stack(norms), dim=0)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.ndim - 1)))


def members_of(configs: list[RunConfig]) -> dict[str, list[RunConfig]]:
    """Group configs into ensembles (same config up to the seed); singletons stay single runs."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(ensemble_key(config) if can_ensemble(config) else config.key(), []).append(config)
    return groups

