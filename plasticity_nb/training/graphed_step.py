"""The whole training step (forward, backward and the optimiser's update) replayed as one CUDA graph.

A batch of 128 32x32 images is too small to keep a GPU busy: launching the step's hundreds of kernels one by one
from Python costs more than running them (benchmarks/RESULTS.md: 2.6x faster graphed on an H200). A CUDA graph
records the kernels of one step once and replays them, reading its inputs from fixed (static) buffers: each step
copies its batch into them and replays. What the graph captures is a learner's `train_step(x, y)`, the same
function its eager step calls (tests/test_graphed_step.py checks that bitwise on a CPU), so graphed and eager
training differ only by what inductor's kernels reassociate.

Valid only where a step is the same kernels every time: no hooks (remedies, metrics and probes run Python between
steps: such a run steps eagerly), batches of one shape (the loop's are), augmentation drawn outside the step (from
the CPU generator, as eagerly), the optimiser `capturable` (its step count on the device), gradients zeroed in
place rather than set to None, and evaluation outside the graph (the loop evaluates between epochs, eagerly).
The learning rate is captured as a constant: a phase's warm-up epochs step eagerly, and the graph is captured at
the first step at the phase's own rate (`settled_lr`), which it keeps from then on. Gradient clipping is in the
captured step (torch's clip_grad_norm_ scales by a clamped device tensor, with no host sync).
"""
from __future__ import annotations

from typing import Callable

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before capture: cuDNN, inductor and the optimiser allocate there

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def settled_lr(optimizer: torch.optim.Optimizer, phase) -> bool:
    """Whether the optimiser steps at the phase's own learning rate, which a warm-up reaches and then keeps: only then
    may a graph capture (or replay) the step, whose update holds the rate it was captured with."""
    return all(group["lr"] == phase.lr for group in optimizer.param_groups)


class GraphedStep:
    """`step(x, y)` captured as one CUDA graph over static copies of `x` and `y`; calling it copies a batch in and
    replays. Capturing needs a few real steps first, so the weights, buffers and optimiser state they change are
    put back before the first replay: the first replayed step starts where the first eager one would."""

    def __init__(self, step: StepFn, x: torch.Tensor, y: torch.Tensor, module_tensors: list[torch.Tensor],
                 optimizer: torch.optim.Optimizer):
        if x.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, not {x.device}")
        self.x, self.y = x.clone(), y.clone()
        saved = Snapshot(module_tensors, optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step(self.x, self.y)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = step(self.x, self.y)
        saved.restore()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)  # the next replay overwrites the graph's own outputs


class GraphedAtFirstStep:
    """A `GraphedStep` of `step`, captured at the first call, when the batches' shapes are known."""

    def __init__(self, step: StepFn, module_tensors: list[torch.Tensor], optimizer: torch.optim.Optimizer):
        self.step, self.module_tensors, self.optimizer = step, module_tensors, optimizer
        self.graphed: GraphedStep | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graphed is None:
            self.graphed = GraphedStep(self.step, x, y, self.module_tensors, self.optimizer)
        return self.graphed(x, y)


class Snapshot:
    """The values of a model's tensors and of its optimiser's state, put back in place (the graph holds their
    addresses). State the optimiser had not created yet is reset to what a first step starts from: zeros (Adam's
    moments and step count, RMSprop's average, a momentum buffer that then takes the gradient as SGD's first step
    does)."""

    def __init__(self, module_tensors: list[torch.Tensor], optimizer: torch.optim.Optimizer):
        self.module = [(t, t.detach().clone()) for t in module_tensors]
        self.optimizer = optimizer
        self.state = {id(t): t.detach().clone() for t in self.state_tensors()}

    def state_tensors(self) -> list[torch.Tensor]:
        return [v for state in self.optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]

    def restore(self) -> None:
        with torch.no_grad():
            for tensor, value in self.module:
                tensor.copy_(value)
            for tensor in self.state_tensors():
                if id(tensor) in self.state:
                    tensor.copy_(self.state[id(tensor)])
                else:
                    tensor.zero_()
