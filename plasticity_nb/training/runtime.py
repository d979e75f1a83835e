"""How a run executes, not what it computes: device, precision, memory format and compilation (`Runtime`),
decided in one place; and the compile cache that worker processes share.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import torch

from ..core.config import ConfigError, check_choice
from ..core.cpu import cpu_identity
from ..run.run_config import RunConfig

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


# The default (`run --compile off`, ExecutionSettings(compile="off")). On a CPU compiling does not pay for a whole
# quick run once each worker's cold compile is counted (benchmarks/RESULTS.md, 2026-11-26); on a GPU ask for
# reduce-overhead.
COMPILE_OFF = "off"


# The whole training step (forward, backward, optimiser) as one CUDA graph over inductor's kernels (graphed_step.py),
# the fastest step measured on a GPU (benchmarks/RESULTS.md); GPU only. A run whose hooks act within steps
# (remedies, metrics, probes) steps eagerly under it, its forward still compiled.
GRAPHED_STEP = "graphed-step"


COMPILE_CHOICES = (COMPILE_OFF, *COMPILE_MODES, GRAPHED_STEP)


CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # where inductor keeps compiled code (its FX graph and AOTAutograd caches)


_OWN_CACHE_ENV = "PLASTICITY_COMPILE_CACHE"  # the cache folder this package chose (inherited by spawned workers)


@dataclasses.dataclass
class Runtime:
    """How a run executes, not what it computes: device, precision, layout and compilation,
    decided in this one place (benchmarks/train_throughput.py measures each on and off)."""

    device: torch.device
    precision: str  # "bf16": autocast to bfloat16 (weights stay fp32); "fp32"
    channels_last: bool  # NHWC memory format: faster convolutions on both CPU (oneDNN) and CUDA
    compile: bool = False  # torch.compile the training forward (pays a compile time up front)
    compile_mode: str = "default"  # torch.compile mode; "reduce-overhead" also replays CUDA graphs (GPU only)
    graph_step: bool = False  # replay the whole training step as one CUDA graph (GPU only; see graphed_step.py)
    # batch norm, its ReLU and residual add on this package's fused kernels (narrow_norm.py): eager bf16 NHWC on a CPU
    narrow_norm: bool = False
    # 8-channel 3x3 convolutions on this package's kernels, stride-2 backward-data as stride-1 convolutions
    # (narrow_conv.py): eager bf16 NHWC on a CPU
    narrow_conv: bool = False

    def __post_init__(self) -> None:
        if self.graph_step and self.device.type != "cuda":
            raise ConfigError(f"compile setting {GRAPHED_STEP!r} replays CUDA graphs: it needs a CUDA GPU, and this "
                              f"run is on {self.device}; use --compile off (or a torch.compile mode) here")
        for setting, what in (("narrow_norm", "the fused batch norm"), ("narrow_conv", "the narrow convolutions")):
            if getattr(self, setting) and not self.eager_bf16_nhwc_cpu:
                raise ConfigError(f"{setting} ({what}) runs eager bf16 NHWC on a CPU; this run is "
                                  f"{self.precision} on {self.device}, channels_last={self.channels_last}, "
                                  f"compile={self.compile_setting}")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN time and pick its fastest kernels

    @property
    def eager_bf16_nhwc_cpu(self) -> bool:
        """Where this package's CPU kernels run (narrow_norm, narrow_conv)."""
        return self.device.type == "cpu" and self.precision == "bf16" and self.channels_last and not self.compile

    @classmethod
    def for_config(cls, config: RunConfig, device: str | torch.device | None = None,
                   compile_setting: str = COMPILE_OFF, **options: Any) -> "Runtime":
        """Defaults: the first of `memory_formats` (layout.tuned_runtime picks the fastest layout here), and the
        `compile_setting` the caller was given (its execution settings' `compile`, from `run --compile MODE` or a
        notebook's compile parameter: "off", eager, the default; a torch.compile mode, e.g. reduce-overhead on a GPU;
        or the graphed step); `options` override."""
        device = resolve_device(device)
        channels_last = memory_formats(config, device)[0]
        check_choice("compile", compile_setting, COMPILE_CHOICES)
        defaults: dict[str, Any] = {"channels_last": channels_last, **cls.compile_options(compile_setting)}
        return cls(device, config.precision, **{**defaults, **options})

    @staticmethod
    def compile_options(setting: str) -> dict[str, Any]:
        """The fields of a compile setting: "off" (eager), a torch.compile mode, or the graphed step (its forward
        compiled in the default mode, which leaves the CUDA graph to the step)."""
        if setting == GRAPHED_STEP:
            return {"compile": True, "compile_mode": "default", "graph_step": True}
        return {"compile": False} if setting == COMPILE_OFF else {"compile": True, "compile_mode": setting}

    @property
    def compile_setting(self) -> str:
        """"off", the torch.compile mode or the graphed step: a checkpoint records it, so that a resumed run continues
        as it began."""
        if self.graph_step:
            return GRAPHED_STEP
        return self.compile_mode if self.compile else COMPILE_OFF

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def training_forward(self, forward: Callable) -> Callable:
        """The callable a training step uses: the model (which keeps its state-dict keys) or, for ensembles,
        the vmapped functional call; compiled when `compile` is set."""
        return torch.compile(forward, mode=self.compile_mode) if self.compile else forward


def memory_formats(config: RunConfig, device: torch.device) -> tuple[bool, ...]:
    """The memory formats a run may train in, as `channels_last` values, the default first: NHWC for a ResNet on
    a GPU; NCHW alone for other nets; both for a ResNet on a CPU whose widths are multiples of 8, which oneDNN's
    NHWC kernels vectorise over (a width-4 ResNet in channels_last fell to a reference path on an AVX2 CPU:
    > 40 s for one fp32 step that takes 0.07 s in NCHW)."""
    if config.model != "resnet":
        return (False,)
    if device.type == "cuda" or config.width % 8:
        return (device.type == "cuda",)
    return (True, False)


def share_compile_cache(out_dir: str | os.PathLike) -> None:
    """Keep inductor's compiled code in `out_dir`/compile-cache, so that every worker process of a batch (and
    every Ray task, the output folder being shared) after the first loads it instead of compiling again; a
    TORCHINDUCTOR_CACHE_DIR the user set wins. Execution only: a run's key and results do not depend on it."""
    current = os.environ.get(CACHE_ENV)
    if current is not None and current != os.environ.get(_OWN_CACHE_ENV):
        return
    os.environ[CACHE_ENV] = os.environ[_OWN_CACHE_ENV] = str(Path(out_dir).expanduser().resolve() / "compile-cache")


# bf16 is native on a CPU with bf16 dot products (AVX512_BF16, AMX); on other AVX-512 CPUs oneDNN emulates it
# (0.56-0.69x fp32 measured on Skylake to Ice Lake), on AVX2 it is 9x slower (benchmarks/RESULTS.md)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_CUDA_CAPABILITY = (8, 0)  # Ampere onwards have bf16 units; a T4 (7.5) or a V100 (7.0) emulates bf16


def precision_for(cpu_flags: list[str] | None, cuda_capability: tuple[int, int] | None) -> str:
    """bf16 where the device computes it natively, else fp32: a CUDA GPU (its compute capability given) from
    BF16_CUDA_CAPABILITY, a CPU with one of BF16_CPU_FLAGS (flags None: unknown, so fp32)."""
    if cuda_capability is not None:
        return "bf16" if tuple(cuda_capability) >= BF16_CUDA_CAPABILITY else "fp32"
    return "bf16" if set(cpu_flags or ()) & set(BF16_CPU_FLAGS) else "fp32"


def native_precision() -> str:
    """This machine's `precision_for` (the GPU where one is visible). Resolved when a study builds its runs, so
    each stored run names its precision in its key."""
    capability = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
    return precision_for(cpu_identity()["flags"], capability)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu' or None")
    return device
