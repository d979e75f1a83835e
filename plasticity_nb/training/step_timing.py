"""A few training steps of a run's model, timed on random images: what the time estimate (execution/eta.py) and
the choice of layout (layout.py) measure a model size by."""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F

from ..data.datasets import dataset_spec
from ..run.run_config import RunConfig
from .build import init_model, make_optimizer
from .runtime import Runtime


def shape(config: RunConfig) -> tuple:
    """What sets a run's speed per example besides the machine."""
    return config.model, config.depth, config.width, config.batch_size, config.precision


def random_batch(config: RunConfig, runtime: Runtime, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` random images in the runtime's memory format, and random labels of the config's dataset."""
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    images = torch.randn(n, 3, 32, 32, device=runtime.device).contiguous(memory_format=memory_format)
    return images, torch.randint(dataset_spec(config.dataset).num_classes, (n,), device=runtime.device)


def train_step_seconds(config: RunConfig, runtime: Runtime, steps: int) -> tuple[float, torch.nn.Module]:
    """Seconds per training example over `steps` timed steps (forward, backward, optimiser) at the config's batch
    size, precision and last phase's optimiser, after one untimed step; and the model they trained."""
    model = init_model(config, runtime)
    optimizer = make_optimizer(config.phases[-1], config, model.parameters(), runtime, model)
    x, y = random_batch(config, runtime, config.batch_size)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()

    return timed(step, steps, runtime.device) / (steps * config.batch_size), model


def timed(work: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Seconds for `repeats` calls of `work`, after one untimed call."""
    work()
    synchronise = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    synchronise()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    synchronise()
    return time.perf_counter() - started
