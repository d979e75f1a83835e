"""Training: a run is a pure function of its `RunConfig`.

A run is a sequence of phases (pretraining on the half, tuning on the full subset, ...). Each phase
builds a new optimiser (the paper resets it at every switch), trains with a constant learning rate for
a fixed epoch budget and/or until an epoch's train accuracy reaches a target, and evaluates on the full
10,000-image test set. Precision, memory format and device are decided in one place (`Runtime`).
The epoch loop is loop.py's, shared with seed ensembles; a single run adds its step (`SingleLearner`)
and, as hooks, module resets, remedies and plasticity metrics (remedy_hooks.py), probes, checkpoints and
the progress bar.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse
from tqdm.auto import tqdm

from .config import ConfigError, check_choice
from .data import CIFAR10, Split, augment, class_balanced_subset, normalise
from .loop import Hook, diverged, train_phase
from .models import build_model, reinitialise_groups
from .probes import measure, probe_set
from .remedy_hooks import (
    ContinualBackpropHook,
    DashHook,
    L2InitHook,
    Metrics,
    ReDoHook,
    RunRemedies,
    ShrinkPerturbHook,
    metric_examples,
)
from .runconfig import OPTIMIZERS, POOLS, PRECISIONS, Phase, RunConfig  # noqa: F401 (re-exported for users)
from .runstate import RunOutcome, RunState
from .sampling import BlendingSampler, multistage_split, shuffled_batches

COMPILE_ENV = "PLASTICITY_COMPILE"  # execution only (how fast, not what): the compile setting of this process tree
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# The default, PLASTICITY_COMPILE=off or `run --compile off`. On a CPU compiling does not pay for a whole quick run
# once each worker's cold compile is counted (benchmarks/RESULTS.md, 2026-11-26); on a GPU ask for reduce-overhead.
COMPILE_OFF = "off"
COMPILE_CHOICES = (COMPILE_OFF, *COMPILE_MODES)
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # where inductor keeps compiled code (its FX graph and AOTAutograd caches)
_OWN_CACHE_ENV = "PLASTICITY_COMPILE_CACHE"  # the cache folder this package chose (inherited by spawned workers)
EVAL_BATCH = 500  # test images per forward pass (fastest on a CPU; results do not depend on it)


@dataclasses.dataclass
class Runtime:
    """How a run executes, not what it computes: device, precision, memory format and compilation,
    decided in this one place (benchmarks/train_throughput.py measures each on and off)."""

    device: torch.device
    precision: str  # "bf16": autocast to bfloat16 (weights stay fp32); "fp32"
    channels_last: bool  # NHWC memory format: faster convolutions on both CPU (oneDNN) and CUDA
    compile: bool = False  # torch.compile the training forward (pays a compile time up front)
    compile_mode: str = "default"  # torch.compile mode; "reduce-overhead" also replays CUDA graphs (GPU only)

    def __post_init__(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN time and pick its fastest kernels

    @classmethod
    def for_config(cls, config: RunConfig, device: str | torch.device | None = None, **options: Any) -> "Runtime":
        """Defaults: channels_last for convolutional nets (on a CPU, widths that are multiples of 8), and
        torch.compile in the mode PLASTICITY_COMPILE names (set by `run --compile MODE`; e.g. reduce-overhead
        on a GPU; "off": eager), else eager; `options` override."""
        device = resolve_device(device)
        # On a CPU, oneDNN's NHWC kernels vectorise over 8 channels: a width-4 ResNet in channels_last fell to a
        # reference path on an AVX2 CPU (> 40 s for one fp32 step that takes 0.07 s in NCHW).
        channels_last = config.model == "resnet" and (device.type == "cuda" or config.width % 8 == 0)
        setting = os.environ.get(COMPILE_ENV) or COMPILE_OFF
        check_choice(COMPILE_ENV, setting, COMPILE_CHOICES)
        defaults: dict[str, Any] = {"channels_last": channels_last, **cls.compile_options(setting)}
        return cls(device, config.precision, **{**defaults, **options})

    @staticmethod
    def compile_options(setting: str) -> dict[str, Any]:
        """The fields of a compile setting: "off" (eager) or a torch.compile mode."""
        return {"compile": False} if setting == COMPILE_OFF else {"compile": True, "compile_mode": setting}

    @property
    def compile_setting(self) -> str:
        """"off" or the torch.compile mode: a checkpoint records it, so that a resumed run continues as it began."""
        return self.compile_mode if self.compile else COMPILE_OFF

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def training_forward(self, forward: Callable) -> Callable:
        """The callable a training step uses: the model (which keeps its state-dict keys) or, for ensembles,
        the vmapped functional call; compiled when `compile` is set."""
        return torch.compile(forward, mode=self.compile_mode) if self.compile else forward


def share_compile_cache(out_dir: str | os.PathLike) -> None:
    """Keep inductor's compiled code in `out_dir`/compile-cache, so that every worker process of a batch (and
    every Ray task, the output folder being shared) after the first loads it instead of compiling again; a
    TORCHINDUCTOR_CACHE_DIR the user set wins. Execution only: a run's key and results do not depend on it."""
    current = os.environ.get(CACHE_ENV)
    if current is not None and current != os.environ.get(_OWN_CACHE_ENV):
        return
    os.environ[CACHE_ENV] = os.environ[_OWN_CACHE_ENV] = str(Path(out_dir).expanduser().resolve() / "compile-cache")


def native_precision() -> str:
    """bf16 where this machine computes it natively (a CUDA GPU, or a CPU with AVX-512/AMX that oneDNN uses for
    bf16), else fp32: on an AVX2-only CPU, bf16 autocast is emulated and measured 9x slower than fp32
    (benchmarks/RESULTS.md). Resolved when a study builds its runs, so each stored run names its precision."""
    if torch.cuda.is_available() or torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu' or None")
    return device


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, so streams of different phases never overlap."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def init_model(config: RunConfig, runtime: Runtime) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.model, config.depth, config.width)
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    return model.to(runtime.device, memory_format=memory_format)


def make_optimizer(phase: Phase, config: RunConfig, params, runtime: Runtime) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = dict(lr=phase.lr, weight_decay=config.weight_decay)
    if phase.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, **kwargs)
    kwargs["fused"] = runtime.device.type == "cuda" or None  # one kernel for the whole update on a GPU
    if phase.optimizer == "adam":
        return torch.optim.Adam(params, **kwargs)
    momentum = config.momentum if phase.optimizer == "sgd_momentum" else 0.0
    return torch.optim.SGD(params, momentum=momentum, **kwargs)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             runtime: Runtime) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over all of `images` (BatchNorm in eval mode)."""
    was_training = model.training
    model.eval()
    net = fuse(model)  # a copy with each BatchNorm folded into its convolution: same function, ~25% faster
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(images), EVAL_BATCH):
        x, y = images[start:start + EVAL_BATCH], labels[start:start + EVAL_BATCH]
        with runtime.autocast():
            logits = net(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / len(images), correct.item() / len(images)


class RunTensors:
    """The run's training subset and the test set, normalised once, on the device."""

    def __init__(self, config: RunConfig, data: CIFAR10, runtime: Runtime):
        self.split = Split.draw(data.train_labels, config.train_subset, config.seed)
        # Only the subset is normalised; the pools index into it, not into the whole training set.
        subset = self.split.full.to(data.device)
        self.train_x = normalise(data.train_images[subset].to(runtime.device), runtime.channels_last)
        self.train_y = data.train_labels[subset].to(runtime.device)
        test = torch.arange(len(data.test_labels))
        if config.test_subset is not None:  # fixed seed: every run of a comparison sees the same test images
            test = class_balanced_subset(data.test_labels, config.test_subset, torch.Generator().manual_seed(0))
        test = test.to(data.device)
        self.test_x = normalise(data.test_images[test].to(runtime.device), runtime.channels_last)
        self.test_y = data.test_labels[test].to(runtime.device)
        position = torch.full((len(data.train_labels),), -1, dtype=torch.long)
        position[self.split.full] = torch.arange(len(self.split.full))
        self.full, self.half = torch.arange(len(self.split.full)), position[self.split.half]
        self.probes = probe_set(self.train_x, self.train_y, config.probes) if config.probes else None
        self.stages = []
        if config.stages is not None:
            self.stages = multistage_split(self.train_y.cpu(), config.stages, config.uniform_ratio,
                                           derived_seed(config.seed, 2)).stages

    def pool(self, phase: Phase) -> torch.Tensor:
        """Positions (in the normalised subset) of the examples `phase` trains on."""
        if phase.pool == "stage":
            return self.stages[phase.stage - 1]
        return self.half if phase.pool == "half" else self.full

    def seen_batches(self, config: RunConfig, phase_index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The examples of every phase before `phase_index`, in seeded random batches of the run's batch size
        (DASH's "data seen so far")."""
        seen = torch.unique(torch.cat([self.pool(p) for p in config.phases[:phase_index]]))
        generator = torch.Generator().manual_seed(derived_seed(config.seed, phase_index, 8))
        order = seen[torch.randperm(len(seen), generator=generator)].to(self.train_x.device)
        return [(self.train_x[b], self.train_y[b]) for b in order.split(config.batch_size)]

    def metrics_hook(self, config: RunConfig, remedies: RunRemedies) -> Metrics:
        """The run's plasticity metrics: a fixed probe batch of the subset (seed 0, as the curvature probes: warm
        and scratch of a seed are measured on the same examples), and as many of the half and of the rest."""
        size = config.metrics.examples
        half = torch.zeros(len(self.full), dtype=torch.bool)
        half[self.half] = True
        halves = {"half": metric_examples(self.train_x, self.train_y, self.half, size, 0),
                  "new": metric_examples(self.train_x, self.train_y, self.full[~half], size, 0)}
        return Metrics(config.metrics, metric_examples(self.train_x, self.train_y, self.full, size, 0), halves,
                       remedies.initial)

    def epoch_batches(self, phase: Phase, epoch: int, batch_size: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """(steps, batch_size) positions for one epoch of `phase`, and what to log about how they were drawn."""
        if phase.pool != "blend":
            return shuffled_batches(self.pool(phase), batch_size, generator), {}
        steps = len(self.full) // batch_size
        sampler = BlendingSampler(self.full, self.half, batch_size, phase.epochs * steps, phase.gamma, phase.blend_rate)
        batches, from_full = sampler.batches(epoch * steps, steps, generator)
        scheduled = sampler.p_full(torch.arange(epoch * steps, (epoch + 1) * steps)).mean().item()
        return batches, {"blend_p": scheduled, "blend_from_full": from_full.float().mean().item()}


class SingleLearner:
    """One model during one phase (a `loop.Learner` of one member): its optimiser, data order and step."""

    members = 1

    def __init__(self, model: torch.nn.Module, config: RunConfig, state: RunState, tensors: RunTensors,
                 runtime: Runtime):
        self.model, self.tensors, self.runtime = model, tensors, runtime
        self.phase, self.batch_size, self.augment = config.phases[state.phase_index], config.batch_size, config.augment
        self.optimizer = make_optimizer(self.phase, config, model.parameters(), runtime)
        self.generator = torch.Generator().manual_seed(derived_seed(config.seed, state.phase_index, 0))
        if state.optimizer is not None:  # resumed part-way through the phase
            self.optimizer.load_state_dict(state.optimizer)
            self.generator.set_state(state.generator)
        self.forward = runtime.training_forward(model)
        model.train()

    def epoch_batches(self, epoch: int) -> tuple[torch.Tensor, list[dict[str, float]]]:
        batches, log = self.tensors.epoch_batches(self.phase, epoch, self.batch_size, self.generator)
        return batches.to(self.runtime.device), [log]

    def step(self, batch: torch.Tensor, hooks: Sequence[Hook] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.tensors.train_x[batch], self.tensors.train_y[batch]
        if self.augment:
            x = augment(x, self.generator)
        with self.runtime.autocast(), contextlib.ExitStack() as recording:
            for hook in hooks:
                recording.enter_context(hook.around_forward(self.model))
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y)
        penalties = [p for p in (hook.penalty(self.model) for hook in hooks) if p is not None]
        self.optimizer.zero_grad(set_to_none=True)
        (loss + sum(penalties) if penalties else loss).backward()
        self.optimizer.step()
        return loss.detach().float(), (logits.detach().argmax(1) == y).sum()

    def evaluate(self) -> list[tuple[float, float]]:
        return [evaluate(self.model, self.tensors.test_x, self.tensors.test_y, self.runtime)]


class ResetGroups(Hook):
    """Re-initialises module `groups` before the phase's first step (`seed`: one per run and phase)."""

    def __init__(self, groups: tuple[int, ...], seed: int):
        self.groups, self.seed = groups, seed

    def on_phase_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        reinitialise_groups(model, self.groups, self.seed)


class Probing(Hook):
    """Curvature and noise probes after the phase's `probe_epochs` (0: before its first step), into `state`."""

    def __init__(self, config: RunConfig, state: RunState, tensors: RunTensors):
        self.config, self.state, self.tensors = config, state, tensors

    def on_phase_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        run_epoch = self.state.history[-1]["epoch"] if self.state.history else 0
        self.probe(model, dict(phase=self.state.phase_index + 1, pool=phase.pool, epoch=run_epoch, phase_epoch=0,
                               step=self.state.step))

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        self.probe(model, {k: row[k] for k in ("phase", "pool", "epoch", "phase_epoch", "step")})

    def probe(self, model: torch.nn.Module, where: dict[str, Any]) -> None:
        phase_index, phase_epoch = where["phase"] - 1, where["phase_epoch"]
        if phase_epoch in self.config.phases[phase_index].probe_epochs:
            seed = derived_seed(self.config.seed, phase_index, phase_epoch, 3)
            self.state.probes.append({**where, **measure(model, self.tensors.probes, self.config.probes, seed)})


class Checkpointing(Hook):
    """Hands `save` a copy of the run's state every `every` epochs of a phase (not after its last), with the
    model, optimiser and data-order generator filled in, so that a killed run can continue exactly."""

    def __init__(self, save: Callable[[RunState], None], every: int, state: RunState, generator: torch.Generator,
                 epochs: int, remedies: RunRemedies):
        self.save, self.every, self.state, self.generator, self.epochs = save, every, state, generator, epochs
        self.remedies = remedies

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        if row["phase_epoch"] % self.every == 0 and row["phase_epoch"] < self.epochs:
            self.save(dataclasses.replace(self.state, history=list(self.state.history), probes=list(self.state.probes),
                                          optimizer=copy.deepcopy(optimizer.state_dict()),
                                          generator=self.generator.get_state(), model=_cpu_state(model),
                                          remedies=self.remedies.state_dict()))


class Progress(Hook):
    """Shows each epoch's accuracies on a progress bar."""

    def __init__(self, bar: tqdm):
        self.bar = bar

    def on_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        self.bar.update()
        self.bar.set_postfix(train_acc=f"{row['train_acc']:.3f}", test_acc=f"{row['test_acc']:.3f}")


def train_run(config: RunConfig, data: CIFAR10, device: str | torch.device | None = None,
              start: RunOutcome | None = None, progress: bool = False, resume: RunState | None = None,
              checkpoint: Callable[[RunState], None] | None = None, checkpoint_every: int = 0,
              runtime: Runtime | None = None) -> RunOutcome:
    """Train every phase of `config`; or, given `start` (the outcome of `config.prefix()`), only the last.

    `resume` continues from a checkpoint that `checkpoint` saved (every `checkpoint_every` epochs);
    `runtime` overrides how it executes (default: `Runtime.for_config(config, device)`, compiled or not as the
    resumed run was). Seeded and deterministic on CPU: the same config, thread count and compile setting give a
    bitwise-identical history, whether the run went in one go, continued a stored prefix, or resumed from a
    checkpoint.
    """
    if runtime is None:
        started_as = Runtime.compile_options(resume.compile) if resume is not None and resume.compile else {}
        runtime = Runtime.for_config(config, device, **started_as)
    if start is not None and start.status == "diverged":
        return start  # a diverged prefix has no weights worth continuing from
    if start is not None and start.phases_done != len(config.phases) - 1:
        raise ValueError("`start` must be the outcome of config.prefix()")
    model = init_model(config, runtime)
    remedies = RunRemedies(config, model, lambda tag: derived_seed(config.seed, tag))  # theta_0 before loading
    if resume is not None:
        model.load_state_dict(resume.model)
        remedies.load_state_dict(resume.remedies or {})
        state = dataclasses.replace(resume, model=None, remedies=None, compile=runtime.compile_setting)
    elif start is not None:
        model.load_state_dict(start.state)
        remedies.load_state_dict(start.remedies)
        state = RunState(list(start.history), list(start.probes), start.phases_done, 0, start.history[-1]["step"],
                         compile=runtime.compile_setting)
    else:
        state = RunState([], [], 0, 0, 0, compile=runtime.compile_setting)
    tensors = RunTensors(config, data, runtime)
    while state.phase_index < len(config.phases):
        learner = SingleLearner(model, config, state, tensors, runtime)
        description = f"seed {config.seed} phase {state.phase_index + 1}/{len(config.phases)} ({learner.phase.pool})"
        with tqdm(total=learner.phase.epochs, initial=state.epoch, desc=description, disable=not progress,
                  leave=False) as bar:
            hooks = [*_remedy_hooks(config, state, tensors, runtime, remedies),
                     *_phase_hooks(config, state, tensors, learner, bar, checkpoint, checkpoint_every, remedies)]
            train_phase(learner, learner.phase, [state], hooks)
        if diverged(state):
            return RunOutcome(state.history, state.probes, _cpu_state(model), "diverged", state.phase_index + 1,
                              remedies.state_dict(), state.compile)
        state = RunState(state.history, state.probes, state.phase_index + 1, 0, state.step, compile=state.compile)
    return RunOutcome(state.history, state.probes, _cpu_state(model), "finished", len(config.phases),
                      remedies.state_dict(), state.compile)


def _remedy_hooks(config: RunConfig, state: RunState, tensors: RunTensors, runtime: Runtime,
                  remedies: RunRemedies) -> list[Hook]:
    """The phase's group reset and remedies, in the order they act, then the metrics (which see their effect)."""
    phase, index = config.phases[state.phase_index], state.phase_index
    hooks: list[Hook] = []
    if phase.reset_groups:
        hooks.append(ResetGroups(phase.reset_groups, derived_seed(config.seed, index, 1)))
    if phase.shrink_perturb:
        fresh = config.replace(seed=derived_seed(config.seed, index, 7) % 2**31)
        hooks.append(ShrinkPerturbHook(phase.shrink_perturb, lambda: init_model(fresh, runtime)))
    if phase.dash:
        hooks.append(DashHook(phase.dash, lambda: tensors.seen_batches(config, index)))
    if phase.l2_init:
        hooks.append(L2InitHook(phase.l2_init, remedies.initial))
    if phase.redo:
        pool = tensors.pool(phase)
        hooks.append(ReDoHook(phase.redo, (tensors.train_x[pool], tensors.train_y[pool]), remedies.redo_generator))
    if phase.cbp:
        hooks.append(ContinualBackpropHook(remedies.cbp))
    if config.metrics:
        hooks.append(tensors.metrics_hook(config, remedies))
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
        hooks.append(Checkpointing(checkpoint, checkpoint_every, state, learner.generator, learner.phase.epochs,
                                   remedies))
    return hooks


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
