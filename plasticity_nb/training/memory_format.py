"""The memory format a run trains in, chosen once per machine identity from a few timed steps, and kept.

channels_last (NHWC) made the quick model 1.5x faster than NCHW on an AMD EPYC with avx512_bf16, and NCHW made it
1.6x faster on an Intel Xeon with AMX (benchmarks/RESULTS.md): no fixed rule fits both. So where both formats
are possible, the first run of a model size on a machine times a few steps in each and keeps the faster in the
cache folder, per machine identity (core/cpu.machine_identity), thread count and model size; every later run
there reads it. Formats round differently: a run's format is an execution setting, never part of its key. A run
keeps it in its checkpoints (a resumed run continues in the format it began with) and records it in its
provenance.
"""
from __future__ import annotations

from typing import Any

import torch

from ..core.cpu import identity_name, machine_identity
from ..core.files import cached
from ..run.run_config import RunConfig
from .runtime import Runtime, memory_formats, resolve_device
from .step_timing import shape, train_step_seconds

CHOICES = "memory-formats"  # the cache table: <cache_dir>/memory-formats.json

TIMED_STEPS = 4  # timed steps per format, after one untimed (oneDNN picks its kernels at the first)
# Another format than the default must be this much faster to be chosen: a near tie keeps the default, so that
# two machines of one identity choose alike (the formats measured differ by 1.5x and more)
CLEAR_WIN = 0.9


def tuned_runtime(config: RunConfig, device: str | torch.device | None = None, **options: Any) -> Runtime:
    """`Runtime.for_config` in the memory format this machine trains the config's model fastest in (an explicit
    `channels_last` option wins: a resumed run's, say)."""
    device = resolve_device(device)
    if "channels_last" not in options:
        options["channels_last"] = channels_last_here(config, device)
    return Runtime.for_config(config, device, **options)


def channels_last_here(config: RunConfig, device: torch.device) -> bool:
    """The choice this machine made for the config's model size at this thread count, timed the first time (under
    a lock: every process gets the first choice) and kept in the cache folder (`core/paths.cache_dir`)."""
    formats = memory_formats(config, device)
    if len(formats) == 1:
        return formats[0]
    return bool(cached(CHOICES, choice_key(config), lambda: time_formats(config, device, formats), once=True)
                ["channels_last"])


def choice_key(config: RunConfig) -> str:
    return f"{identity_name(machine_identity())}, {torch.get_num_threads()} thread(s), {shape(config)}"


def time_formats(config: RunConfig, device: torch.device, formats: tuple[bool, ...]) -> dict[str, Any]:
    """Seconds per training example in each format, and the choice: the default (the first listed) unless another
    takes under CLEAR_WIN of its time."""
    seconds = {cl: train_step_seconds(config, Runtime.for_config(config, device, channels_last=cl), TIMED_STEPS)[0]
               for cl in formats}
    default = formats[0]
    fastest = min(formats, key=lambda cl: seconds[cl])
    fastest = fastest if seconds[fastest] < CLEAR_WIN * seconds[default] else default
    timed = {("NHWC" if cl else "NCHW"): seconds[cl] for cl in formats}
    return {"channels_last": fastest, "seconds_per_example": timed}
