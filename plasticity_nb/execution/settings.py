"""Where and how runs execute, as one value: `ExecutionSettings`, built once by the command line, a notebook or a
caller and passed whole through `run_study`, `run_many` and `run` into every worker process and Ray task.

None of it is part of what a run computes: a run's key (its RunConfig's hash) never includes these settings, so a
config stored under any of them is the same run (compiled and eager steps round differently; a run's
provenance.json records its compile setting, and a resumed run keeps the one it began with).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..core.config import ConfigError, reject_unknown
from ..training.runtime import COMPILE_CHOICES, COMPILE_OFF
from .executors import EXECUTORS

CHECKPOINT_EVERY = 5  # epochs between checkpoints of a running run (they make killed runs resumable)


# Where `run --compile` used to put the compile setting for this process tree. It is read no more: the setting
# travels in ExecutionSettings.compile, and a process that still has the variable set is told the new spelling.
COMPILE_ENV = "PLASTICITY_COMPILE"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExecutionSettings:
    """Where and how runs train, not what they compute; every field has a default, and `replace` changes some."""

    out_dir: Path | None = None  # output folder (run store, figures, claims.csv); None: PLASTICITY_OUT, then outputs/
    data_dir: Path | None = None  # the dataset's folder; None: its variable (PLASTICITY_DATA for CIFAR-10), then data/
    device: str | None = None  # torch device: cpu, cuda, cuda:N; None (or "auto"): CUDA when available, else the CPU
    workers: int | None = None  # processes (local) or task slots (ray), >= 1; None: automatic (runner.auto_workers)
    executor: str = "local"  # "local": worker processes here; "ray": Ray tasks (pip install .[ray])
    ray_address: str | None = None  # the Ray cluster (host:port) for executor "ray"; None: start a local one
    progress: bool | None = None  # tqdm bars (runs done, each run's epochs); None: run_study's on, run(_many)'s off
    checkpoint_every: int = CHECKPOINT_EVERY  # epochs between a run's checkpoints (a killed run resumes), >= 1
    ensemble: bool = False  # runs that differ only by seed train as one vmapped model here (GPU; not bitwise solo)
    compile: str = COMPILE_OFF  # "off" (eager), a torch.compile mode or "graphed-step" (GPU): runtime.COMPILE_CHOICES

    def __post_init__(self) -> None:
        for name in ("out_dir", "data_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"{name} must be a folder (a str or Path) or None, got {type(value).__name__} "
                                  f"{value!r}")
            object.__setattr__(self, name, None if value is None else Path(value))
        if isinstance(self.device, torch.device):
            object.__setattr__(self, "device", str(self.device))
        if self.device is not None and not (isinstance(self.device, str) and parses_as_device(self.device)):
            raise ConfigError(f"device must be cpu, cuda, cuda:N (a torch device) or None (automatic), got "
                              f"{self.device!r}")
        if self.workers is not None and (type(self.workers) is not int or self.workers < 1):
            raise ConfigError(f"workers must be a whole number >= 1 (or None for automatic), got {self.workers!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor is {self.executor!r}: choose one of {', '.join(EXECUTORS)}")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ConfigError(f"ray_address must be host:port (a str) or None, got {self.ray_address!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ConfigError(f"progress must be True, False or None (the caller's default), got {self.progress!r}")
        if not isinstance(self.ensemble, bool):
            raise ConfigError(f"ensemble must be True or False, got {self.ensemble!r}")
        if type(self.checkpoint_every) is not int or self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be a whole number of epochs >= 1, got {self.checkpoint_every!r}")
        if self.compile not in COMPILE_CHOICES:
            raise ConfigError(f"compile is {self.compile!r}: choose one of {', '.join(COMPILE_CHOICES)}")

    def replace(self, **changes: Any) -> ExecutionSettings:
        """These settings with `changes`; an unknown name is refused with the closest known one."""
        reject_unknown(type(self), changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_notebook(cls, namespace: Mapping[str, Any]) -> ExecutionSettings:
        """The settings a notebook's parameters name (its `globals()`): each variable named like a field, None
        keeping that field's default; a notebook without some of them (an older one) gets their defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: namespace[k] for k in names if namespace.get(k) is not None})


FIELDS = tuple(f.name for f in dataclasses.fields(ExecutionSettings))


def parses_as_device(name: str) -> bool:
    if name == "auto":
        return True
    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        return False
    return True


def settings_for(caller: str, settings: ExecutionSettings | None, overrides: dict[str, Any],
                 second: str = "out_dir") -> ExecutionSettings:
    """The settings a call of `caller` runs with: `settings` (None: the defaults) with the keyword `overrides` it was
    given, each named as its field (`run_study(config, out_dir=..., workers=...)`, the spelling from before this
    value existed). `second` is the setting the call took by position before: such a value is refused naming it."""
    if settings is None:
        settings = ExecutionSettings()
    elif not isinstance(settings, ExecutionSettings):
        hint = (f": pass the folder by name, {second}={str(settings)!r}" if isinstance(settings, (str, os.PathLike))
                else ": pass ExecutionSettings(...), or each setting by name")
        raise ConfigError(f"{caller}'s second argument is its ExecutionSettings, got {settings!r}{hint}")
    refuse_compile_environment()
    return settings.replace(**overrides) if overrides else settings


def refuse_compile_environment() -> None:
    """PLASTICITY_COMPILE asking for compilation is refused, naming the setting that does it now: it would otherwise be
    ignored without a word (its "off" is the default, so it changes nothing and passes)."""
    value = os.environ.get(COMPILE_ENV)
    if value and value != COMPILE_OFF:
        raise ConfigError(f"{COMPILE_ENV}={value} is set, but the compile setting is no longer read from the "
                          f"environment: pass compile={value!r} (ExecutionSettings(compile=...), a notebook's compile "
                          f"parameter, or run --compile {value}) and unset {COMPILE_ENV}")
