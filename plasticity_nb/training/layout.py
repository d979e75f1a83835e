"""How a run lays its work out on this machine, chosen once per machine identity from a few timed steps, and kept:
the memory format, whether batch norms run on the fused kernels (narrow_norm.py), and whether convolutions run on
the narrow ones (narrow_conv.py).

channels_last (NHWC) made the quick model 1.5x faster than NCHW on an AMD EPYC with avx512_bf16, and NCHW made it
1.6x faster on an Intel Xeon with AMX; the fused batch norm takes a quarter off a quick NHWC step on the EPYC
(benchmarks/RESULTS.md): no fixed rule fits every machine. So the first run of a model size on a machine times a
few steps in each possible layout and keeps the timings in the cache folder, per machine identity
(core/cpu.machine_identity), thread count, model size and the layouts timed (a layout added later is timed
anew, never left out by older timings); every later run there reads them and chooses alike.
Layouts round differently: a run's layout is an execution setting, never part of its key. A run keeps it in its
checkpoints (a resumed run continues as it began) and records it in its provenance.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..core.cpu import identity_name, machine_identity
from ..core.files import cached
from ..run.run_config import RunConfig
from . import narrow_conv, narrow_norm
from .runtime import Runtime, memory_formats, resolve_device
from .step_timing import shape, train_step_seconds

TIMINGS = "layouts"  # the cache table: <cache_dir>/layouts.json

TIMED_STEPS = 4  # timed steps per layout, after one untimed (oneDNN picks its kernels at the first)
# Another layout than the default must be this much faster to be chosen: a near tie keeps the default, so that
# two machines of one identity choose alike (the layouts measured differ by 1.25x and more)
CLEAR_WIN = 0.9


@dataclasses.dataclass(frozen=True)
class Layout:
    channels_last: bool  # NHWC memory format (else NCHW)
    narrow_norm: bool  # batch norm, its ReLU and residual add on the fused kernels (NHWC, bf16, CPU)
    narrow_conv: bool = False  # 8-channel 3x3 convolutions on the narrow kernels, phased strided backward-data

    @property
    def name(self) -> str:
        return (("NHWC" if self.channels_last else "NCHW") + (" + fused batch norm" if self.narrow_norm else "")
                + (" + narrow convolutions" if self.narrow_conv else ""))

    @property
    def on_kernels(self) -> bool:
        """Whether it runs this package's kernels, which torch.compile does not trace."""
        return self.narrow_norm or self.narrow_conv


def tuned_runtime(config: RunConfig, device: str | torch.device | None = None, **options: Any) -> Runtime:
    """`Runtime.for_config` (`options` may name its `compile_setting`) in the layout this machine trains the config's
    model fastest in. A given `channels_last` (a resumed run's, say) wins, with the `narrow_norm` and `narrow_conv`
    given beside it (default off); a compiled run keeps ATen's batch norm and convolutions, which torch.compile can
    trace."""
    device = resolve_device(device)
    runtime = Runtime.for_config(config, device, **options)
    if "channels_last" in options:
        return runtime
    chosen = layout_here(config, device, fused=not runtime.compile)
    return dataclasses.replace(runtime, **dataclasses.asdict(chosen))


def layouts(config: RunConfig, device: torch.device) -> tuple[Layout, ...]:
    """The layouts a run may train in, the default first: each of `memory_formats`; for a bf16 ResNet on a CPU,
    NHWC with the fused batch norm where its kernels build, and with the narrow convolutions besides where theirs
    do (AVX512-BF16)."""
    formats = memory_formats(config, device)
    found = [Layout(channels_last, False) for channels_last in formats]
    if device.type == "cpu" and config.model == "resnet" and config.precision == "bf16" and True in formats:
        if narrow_norm.kernels() is not None:
            found.append(Layout(True, True))
            if narrow_conv.kernels() is not None:
                found.append(Layout(True, True, narrow_conv=True))
    return tuple(found)


def layout_here(config: RunConfig, device: torch.device, fused: bool = True) -> Layout:
    """The layout chosen here for the config's model size at this thread count (without this package's kernels
    unless `fused`), from timings made the first time (under a lock: every process gets the first ones) and kept
    in the cache folder (`core/paths.cache_dir`)."""
    candidates = layouts(config, device)
    if len(candidates) == 1:
        return candidates[0]
    seconds = cached(TIMINGS, timing_key(config, candidates), lambda: time_layouts(config, device, candidates),
                     once=True)
    allowed = [layout for layout in candidates if fused or not layout.on_kernels]
    return choose(allowed, seconds)


def choose(candidates: list[Layout], seconds: dict[str, float]) -> Layout:
    """The default (the first candidate) unless another took under CLEAR_WIN of its time per example."""
    default = candidates[0]
    fastest = min(candidates, key=lambda layout: seconds[layout.name])
    return fastest if seconds[fastest.name] < CLEAR_WIN * seconds[default.name] else default


def timing_key(config: RunConfig, candidates: tuple[Layout, ...]) -> str:
    return (f"{identity_name(machine_identity())}, {torch.get_num_threads()} thread(s), {shape(config)}, "
            f"{' | '.join(layout.name for layout in candidates)}")


def time_layouts(config: RunConfig, device: torch.device, candidates: tuple[Layout, ...]) -> dict[str, float]:
    """Seconds per training example in each layout, by name."""
    return {layout.name: train_step_seconds(config, Runtime.for_config(config, device, **dataclasses.asdict(layout)),
                                            TIMED_STEPS)[0]
            for layout in candidates}
