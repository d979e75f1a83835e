"""Training: a run is a pure function of its `RunConfig`.

A run is a sequence of phases (pretraining on the half, tuning on the full subset, ...). Each phase
builds a new optimiser (the paper resets it at every switch), trains with a constant learning rate for
a fixed epoch budget and/or until an epoch's train accuracy reaches a target, and evaluates on the full
10,000-image test set. Precision, memory format and device are decided in one place (`Runtime`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse
from tqdm.auto import tqdm

from .config import Config, ConfigError, check_choice, check_positive
from .data import CIFAR10, NUM_CLASSES, Split, augment, class_balanced_subset, normalise
from .models import MODELS, build_model, reinitialise_groups
from .probes import ProbeSettings, measure, probe_set
from .sampling import BlendingSampler, multistage_split, shuffled_batches

OPTIMIZERS = ("adam", "sgd", "sgd_momentum", "rmsprop")
# Training pools: the pretraining half of the subset, the whole subset, a blend that fades from the
# half to the whole (Fig. 3), or one set of a multi-stage split (Fig. 4).
POOLS = ("half", "full", "blend", "stage")
PRECISIONS = ("bf16", "fp32")
COMPILE_ENV = "PLASTICITY_COMPILE"  # execution only (how fast, not what): every run of this process tree compiles
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
EVAL_BATCH = 500  # test images per forward pass (fastest on a CPU; results do not depend on it)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase(Config):
    pool: str = "full"  # training examples: half | full | blend | stage
    epochs: int = 1  # epoch budget: passes over the pool (blend: steps of the full subset)
    optimizer: str = "adam"  # adam | sgd | sgd_momentum | rmsprop; a new one at every phase
    lr: float = 1e-3  # constant learning rate
    target_train_acc: float | None = None  # stop once an epoch's train accuracy (fraction) reaches this
    reset_groups: tuple[int, ...] = ()  # module groups (1-6) re-initialised before this phase
    gamma: float | None = None  # blend only: p(full) = 1 - gamma^(blend_rate * step / steps of the phase)
    blend_rate: float | None = None  # blend only: the paper's 50
    stage: int | None = None  # stage only: which set D_i of the run's multi-stage split (1-based)
    eval_every: int = 1  # test-set evaluation every this many epochs (and always at the phase's last)...
    eval_tail: int = 0  # ...and at each of the phase's last eval_tail epochs (a metric window)
    probe_epochs: tuple[int, ...] = ()  # curvature/noise probes after these epochs (0: before the first step)

    def check(self) -> None:
        check_choice("pool", self.pool, POOLS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_positive("epochs", self.epochs)
        check_positive("eval_every", self.eval_every)
        check_positive("eval_tail", self.eval_tail, allow_zero=True)
        if any(not 0 <= e <= self.epochs for e in self.probe_epochs):
            raise ConfigError(f"probe_epochs {list(self.probe_epochs)} must lie in 0..epochs ({self.epochs})")
        check_positive("lr", self.lr)
        if self.target_train_acc is not None and not 0 < self.target_train_acc <= 1:
            raise ConfigError(f"target_train_acc is a fraction in (0, 1], got {self.target_train_acc}")
        bad_groups = [g for g in self.reset_groups if not 1 <= g <= 6]
        if bad_groups:
            raise ConfigError(f"reset_groups {bad_groups} outside the module groups 1-6")
        # Pool-specific fields are set exactly when used, so equal runs always hash equally.
        blend, stage = self.pool == "blend", self.pool == "stage"
        if blend != (self.gamma is not None) or blend != (self.blend_rate is not None):
            raise ConfigError("gamma and blend_rate are set for (and only for) pool 'blend'")
        if blend and not 0 < self.gamma < 1:
            raise ConfigError(f"gamma must lie in (0, 1), got {self.gamma}")
        if blend:
            check_positive("blend_rate", self.blend_rate)
        if stage != (self.stage is not None):
            raise ConfigError("stage is set for (and only for) pool 'stage'")
        if stage:
            check_positive("stage", self.stage)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig(Config):
    phases: tuple[Phase, ...]  # trained in order from one initialisation
    seed: int = 0  # initial weights, subset and half draw, data order: paired arms share it
    model: str = "resnet"  # resnet | mlp
    depth: int = 2  # BasicBlocks per stage (resnet) or hidden layers (mlp); 2 = ResNet-18
    width: int = 64  # base channels w (stages w, 2w, 4w, 8w) or hidden units (mlp)
    train_subset: int = 50000  # training examples used (class-balanced); the half is half of these
    test_subset: int | None = None  # test examples evaluated (class-balanced, the same for every run); None: all 10,000
    batch_size: int = 128  # examples per step; the last partial batch of an epoch is dropped
    augment: bool = False  # random crop + flip (the paper trains without)
    weight_decay: float = 0.0  # L2 coefficient passed to the optimiser (the paper uses none)
    momentum: float = 0.9  # for sgd_momentum only
    precision: str = "bf16"  # bf16 autocast (fp32 master weights) or plain fp32; studies pick with `native_precision`
    stages: int | None = None  # multi-stage runs only: pretraining stages n (the split has n+1 nested sets)
    uniform_ratio: float | None = None  # multi-stage runs only: fraction r drawn uniformly over classes
    probes: ProbeSettings | None = None  # how to probe; set for (and only for) runs with probe_epochs
    data_id: str = ""  # fingerprint of the CIFAR-10 copy (set by the protocol from the loaded data)

    def check(self) -> None:
        if not self.phases:
            raise ConfigError("a run needs at least one phase")
        check_choice("model", self.model, MODELS)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("depth", "width", "train_subset", "test_subset", "batch_size"):
            check_positive(name, getattr(self, name))
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("momentum", self.momentum, allow_zero=True)
        if any(p.probe_epochs for p in self.phases) != (self.probes is not None):
            raise ConfigError("probes (the settings) are set for (and only for) runs whose phases have probe_epochs")
        multistage = any(p.pool == "stage" for p in self.phases)
        if multistage != (self.stages is not None) or multistage != (self.uniform_ratio is not None):
            raise ConfigError("stages and uniform_ratio are set for (and only for) runs with 'stage' phases")
        if multistage:
            check_positive("stages", self.stages)
            if not 0 <= self.uniform_ratio <= 1:
                raise ConfigError(f"uniform_ratio r must lie in [0, 1], got {self.uniform_ratio}")
            if self.stages + 1 > NUM_CLASSES:
                raise ConfigError(f"stages {self.stages} needs {self.stages + 1} class groups; CIFAR-10 has {NUM_CLASSES}")
            bad = [p.stage for p in self.phases if p.pool == "stage" and p.stage > self.stages + 1]
            if bad:
                raise ConfigError(f"stage {bad[0]} does not exist: the split has stages 1..{self.stages + 1}")
        smallest = min(self.pool_size_bound(p) for p in self.phases)
        if smallest < self.batch_size:
            raise ConfigError(f"batch_size {self.batch_size} exceeds the {smallest} examples of the smallest "
                              f"training pool (train_subset={self.train_subset}): an epoch would have no step")

    def pool_size_bound(self, phase: Phase) -> int:
        """Examples in `phase`'s pool (a lower bound for multi-stage sets, whose class groups vary)."""
        if phase.pool == "half":
            return self.train_subset // 2
        if phase.pool == "stage":
            n, r = self.stages, self.uniform_ratio
            smallest_group = NUM_CLASSES // (n + 1)
            return int(self.train_subset * (r * phase.stage / (n + 1) + (1 - r) * smallest_group * phase.stage / NUM_CLASSES))
        return self.train_subset

    def truncated(self, phases: int) -> "RunConfig":
        """The run made of the first `phases` phases: a run of its own, stored under its own hash."""
        kept = self.phases[:phases]
        return self.replace(phases=kept, probes=self.probes if any(p.probe_epochs for p in kept) else None)

    def prefix(self) -> "RunConfig":
        """The same run without its last phase: the run a warm start continues from."""
        return self.truncated(len(self.phases) - 1)


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
        on a GPU); `options` override."""
        device = resolve_device(device)
        # On a CPU, oneDNN's NHWC kernels vectorise over 8 channels: a width-4 ResNet in channels_last fell to a
        # reference path on an AVX2 CPU (> 40 s for one fp32 step that takes 0.07 s in NCHW).
        channels_last = config.model == "resnet" and (device.type == "cuda" or config.width % 8 == 0)
        defaults: dict[str, Any] = {"channels_last": channels_last}
        if mode := os.environ.get(COMPILE_ENV):
            check_choice(COMPILE_ENV, mode, COMPILE_MODES)
            defaults.update(compile=True, compile_mode=mode)
        return cls(device, config.precision, **{**defaults, **options})

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def training_forward(self, forward: Callable) -> Callable:
        """The callable a training step uses: the model (which keeps its state-dict keys) or, for ensembles,
        the vmapped functional call; compiled when `compile` is set."""
        return torch.compile(forward, mode=self.compile_mode) if self.compile else forward


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
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, runtime: Runtime) -> tuple[float, float]:
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


def train_phase(model: torch.nn.Module, config: RunConfig, state: RunState, tensors: "RunTensors",
                runtime: Runtime, progress: bool, checkpoint: Callable[[RunState], None] | None = None,
                checkpoint_every: int = 0) -> bool:
    """Train phase `state.phase_index` from `state.epoch` on, appending to `state`; True if it diverged.

    `checkpoint(state)` is called every `checkpoint_every` epochs (not after the last), with the model,
    optimiser and generator states filled in, so that a killed run can continue exactly.
    """
    phase_index, phase = state.phase_index, config.phases[state.phase_index]
    first_epoch = state.history[-1]["epoch"] - state.epoch if state.history else 0  # run epochs before this phase
    optimizer = make_optimizer(phase, config, model.parameters(), runtime)
    generator = torch.Generator().manual_seed(derived_seed(config.seed, phase_index, 0))
    if state.optimizer is None:  # a fresh phase, not a resumed one
        if phase.reset_groups:
            reinitialise_groups(model, phase.reset_groups, derived_seed(config.seed, phase_index, 1))
    else:
        optimizer.load_state_dict(state.optimizer)
        generator.set_state(state.generator)

    def probe(phase_epoch: int) -> None:
        if phase_epoch in phase.probe_epochs:
            row = measure(model, tensors.probes, config.probes, derived_seed(config.seed, phase_index, phase_epoch, 3))
            state.probes.append(dict(phase=phase_index + 1, pool=phase.pool, epoch=first_epoch + phase_epoch,
                                     phase_epoch=phase_epoch, step=state.step, **row))

    if state.epoch == 0:
        probe(0)
    forward = runtime.training_forward(model)
    model.train()
    bar = tqdm(range(state.epoch, phase.epochs), desc=f"seed {config.seed} phase {phase_index + 1}/"
               f"{len(config.phases)} ({phase.pool})", disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        batches, sampling_log = tensors.epoch_batches(phase, epoch, config.batch_size, generator)
        batches = batches.to(runtime.device)
        loss_sum = torch.zeros((), device=runtime.device)
        correct = torch.zeros((), device=runtime.device, dtype=torch.long)
        for batch in batches:
            x, y = tensors.train_x[batch], tensors.train_y[batch]
            if config.augment:
                x = augment(x, generator)
            with runtime.autocast():
                logits = forward(x)
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().float() * len(y)  # accumulated on the device: no host sync per step
            correct += (logits.detach().argmax(1) == y).sum()
        state.step += len(batches)
        seen = len(batches) * config.batch_size
        train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen
        diverged = not math.isfinite(train_loss)
        last = epoch == phase.epochs - 1
        reached = phase.target_train_acc is not None and train_acc >= phase.target_train_acc
        test_loss = test_acc = math.nan
        scheduled = (epoch + 1) % phase.eval_every == 0 or epoch >= phase.epochs - phase.eval_tail
        if not diverged and (last or reached or scheduled):
            test_loss, test_acc = evaluate(model, tensors.test_x, tensors.test_y, runtime)
        state.history.append(dict(phase=phase_index + 1, pool=phase.pool, epoch=first_epoch + epoch + 1,
                                  phase_epoch=epoch + 1, step=state.step, lr=phase.lr, train_loss=train_loss,
                                  train_acc=train_acc, test_loss=test_loss, test_acc=test_acc,
                                  seconds=time.perf_counter() - started, **sampling_log))
        state.epoch = epoch + 1
        bar.set_postfix(train_acc=f"{train_acc:.3f}", test_acc=f"{test_acc:.3f}")
        if diverged or reached:
            return diverged
        probe(epoch + 1)
        model.train()
        if checkpoint and checkpoint_every and state.epoch % checkpoint_every == 0 and not last:
            checkpoint(dataclasses.replace(state, history=list(state.history), probes=list(state.probes),
                                           optimizer=copy.deepcopy(optimizer.state_dict()),
                                           generator=generator.get_state(), model=_cpu_state(model)))
    bar.close()
    return False


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


@dataclasses.dataclass
class RunOutcome:
    history: list[dict[str, Any]]  # one row per epoch, all phases
    probes: list[dict[str, Any]]  # one row per curvature/noise probe, all phases
    state: dict[str, torch.Tensor]  # final model weights and BatchNorm buffers, on the CPU
    status: str  # "finished", or "diverged" (non-finite training loss; training stopped there)
    phases_done: int  # phases trained (fewer than configured only when diverged)


def train_run(config: RunConfig, data: CIFAR10, device: str | torch.device | None = None,
              start: RunOutcome | None = None, progress: bool = False, resume: RunState | None = None,
              checkpoint: Callable[[RunState], None] | None = None, checkpoint_every: int = 0,
              runtime: Runtime | None = None) -> RunOutcome:
    """Train every phase of `config`; or, given `start` (the outcome of `config.prefix()`), only the last.

    `resume` continues from a checkpoint that `checkpoint` saved (every `checkpoint_every` epochs);
    `runtime` overrides how it executes (default: `Runtime.for_config(config, device)`).
    Seeded and deterministic on CPU: the same config and thread count give a bitwise-identical history,
    whether the run went in one go, continued a stored prefix, or resumed from a checkpoint.
    """
    runtime = runtime or Runtime.for_config(config, device)
    if start is not None and start.status == "diverged":
        return start  # a diverged prefix has no weights worth continuing from
    if start is not None and start.phases_done != len(config.phases) - 1:
        raise ValueError("`start` must be the outcome of config.prefix()")
    model = init_model(config, runtime)
    if resume is not None:
        model.load_state_dict(resume.model)
        state = dataclasses.replace(resume, model=None)
    elif start is not None:
        model.load_state_dict(start.state)
        state = RunState(list(start.history), list(start.probes), start.phases_done, 0, start.history[-1]["step"])
    else:
        state = RunState([], [], 0, 0, 0)
    tensors = RunTensors(config, data, runtime)
    while state.phase_index < len(config.phases):
        if train_phase(model, config, state, tensors, runtime, progress, checkpoint, checkpoint_every):
            return RunOutcome(state.history, state.probes, _cpu_state(model), "diverged", state.phase_index + 1)
        state = RunState(state.history, state.probes, state.phase_index + 1, 0, state.step)
    return RunOutcome(state.history, state.probes, _cpu_state(model), "finished", len(config.phases))


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
