"""Seed ensembles: S runs that differ only by seed, trained as one batched model with torch.func.

`torch.func.stack_module_state` stacks the members' parameters and BatchNorm buffers along a leading
member dimension; `functional_call` under `vmap` runs every member on its own batch. Each member keeps
its own parameters, optimiser state (the optimisers used are elementwise, so one optimiser over the
stacked tensors is S independent ones), data order (its own subset, half and generator, exactly as
when trained alone) and BatchNorm running statistics (stacked buffers, updated per member).

On a GPU this turns S small kernels into one large one; on a CPU, which is already busy, it gains
little (see benchmarks/ensemble_vs_sequential.py). Results match training each seed alone up to
floating-point reassociation (tests/test_ensemble.py states the tolerance). Not supported: module
resets, curvature probes and checkpoints (such runs train one by one).
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from .data import CIFAR10, augment
from .train import (EVAL_BATCH, RunConfig, RunOutcome, Runtime, RunTensors, derived_seed, init_model, make_optimizer)


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
    return config.probes is None and not any(p.reset_groups for p in config.phases)


def train_ensemble(configs: list[RunConfig], data: CIFAR10, device: str | torch.device | None = None,
                   starts: list[RunOutcome] | None = None, **runtime_options: Any) -> list[RunOutcome]:
    """Train the last phase of every config (all phases when `starts` is None) as one vmapped model.

    `runtime_options` go to `Runtime.for_config` (e.g. compile=True, compile_mode="reduce-overhead")."""
    if len({ensemble_key(c) for c in configs}) != 1 or not all(map(can_ensemble, configs)):
        raise ValueError("an ensemble needs configs that differ only by seed, without resets or probes")
    runtime = Runtime.for_config(configs[0], device, **runtime_options)
    runtime.channels_last = False  # vmap adds a member dimension; keep plain NCHW inside
    models = [init_model(c, runtime) for c in configs]
    first_phase = 0
    if starts is not None:
        for model, start in zip(models, starts):
            model.load_state_dict(start.state)
        first_phase = starts[0].phases_done
    histories = [list(s.history) if starts else [] for s in (starts or configs)]
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")
    for module in template.modules():
        if type(module) is torch.nn.BatchNorm2d:
            module.__class__ = Float32BatchNorm2d  # same parameters and buffers, float32 arithmetic
    forward = runtime.training_forward(vmap(lambda p, b, x: functional_call(template, (p, b), (x,))))
    tensors = [RunTensors(c, data, runtime) for c in configs]
    alive = [True] * len(configs)
    for phase_index in range(first_phase, len(configs[0].phases)):
        _train_phase(configs, phase_index, params, buffers, template, forward, tensors, runtime, histories, alive)
    states = [{k: v[i].detach().cpu().clone() for k, v in {**params, **buffers}.items()} for i in range(len(configs))]
    return [RunOutcome(h, [], s, "finished" if ok else "diverged",
                       len(c.phases) if ok else max(r["phase"] for r in h))
            for c, h, s, ok in zip(configs, histories, states, alive)]


def _train_phase(configs, phase_index, params, buffers, template, forward, tensors, runtime, histories, alive):
    config, members = configs[0], len(configs)
    phase = config.phases[phase_index]
    if phase.target_train_acc is not None:
        raise ValueError("ensembles train fixed epoch budgets (members would stop at different epochs)")
    template.train()
    optimizer = make_optimizer(phase, config, list(params.values()), runtime)
    generators = [torch.Generator().manual_seed(derived_seed(c.seed, phase_index, 0)) for c in configs]
    first_epoch = [h[-1]["epoch"] if h else 0 for h in histories]
    for epoch in range(phase.epochs):
        started = time.perf_counter()
        drawn = [t.epoch_batches(phase, epoch, config.batch_size, g) for t, g in zip(tensors, generators)]
        batches = torch.stack([b for b, _ in drawn], dim=1).to(runtime.device)  # (steps, members, batch)
        loss_sum = torch.zeros(members, device=runtime.device)
        correct = torch.zeros(members, device=runtime.device, dtype=torch.long)
        for step_batch in batches:
            x = [t.train_x[b] for t, b in zip(tensors, step_batch)]
            if config.augment:  # each member draws from its own generator, as when trained alone
                x = [augment(xi, g) for xi, g in zip(x, generators)]
            x = torch.stack(x)
            y = torch.stack([t.train_y[b] for t, b in zip(tensors, step_batch)])
            with runtime.autocast():
                logits = forward(params, buffers, x)
                losses = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none").view(members, -1).mean(1)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # member i's gradient depends on member i's loss only
            optimizer.step()
            loss_sum += losses.detach() * y.shape[1]
            correct += (logits.detach().argmax(-1) == y).sum(1)
        seen = len(batches) * config.batch_size
        scheduled = (epoch + 1) % phase.eval_every == 0 or epoch >= phase.epochs - phase.eval_tail
        test = (_evaluate(params, buffers, template, tensors[0], runtime) if scheduled or epoch == phase.epochs - 1
                else [(math.nan, math.nan)] * members)
        for i in range(members):
            if not alive[i]:
                continue
            train_loss = loss_sum[i].item() / seen
            alive[i] = math.isfinite(train_loss)
            test_loss, test_acc = test[i] if alive[i] else (math.nan, math.nan)
            histories[i].append(dict(phase=phase_index + 1, pool=phase.pool, epoch=first_epoch[i] + epoch + 1,
                                     phase_epoch=epoch + 1, step=(histories[i][-1]["step"] if histories[i] else 0)
                                     + len(batches), lr=phase.lr, train_loss=train_loss,
                                     train_acc=correct[i].item() / seen, test_loss=test_loss, test_acc=test_acc,
                                     seconds=time.perf_counter() - started, **drawn[i][1]))
        template.train()


@torch.inference_mode()
def _evaluate(params, buffers, template, tensors: RunTensors, runtime: Runtime) -> list[tuple[float, float]]:
    """Every member on the (shared) test set, BatchNorm in eval mode: one batched forward per chunk."""
    template.eval()
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)), in_dims=(0, 0, None))
    members = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(members, device=tensors.test_x.device)
    correct = torch.zeros(members, device=tensors.test_x.device, dtype=torch.long)
    for start in range(0, len(tensors.test_y), EVAL_BATCH):
        x, y = tensors.test_x[start:start + EVAL_BATCH], tensors.test_y[start:start + EVAL_BATCH]
        with runtime.autocast():
            logits = forward(params, buffers, x).float()
        loss_sum += F.cross_entropy(logits.flatten(0, 1), y.repeat(members), reduction="none").view(members, -1).sum(1)
        correct += (logits.argmax(-1) == y).sum(1)
    n = len(tensors.test_y)
    return [(loss_sum[i].item() / n, correct[i].item() / n) for i in range(members)]


def members_of(configs: list[RunConfig]) -> dict[str, list[RunConfig]]:
    """Group configs into ensembles (same config up to the seed); singletons stay single runs."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(ensemble_key(config) if can_ensemble(config) else config.key(), []).append(config)
    return groups

