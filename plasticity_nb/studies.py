"""The study notebooks the batch CLI knows: id -> notebook file and the config its parameters build."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import Config
from .paths import project_root
from .protocols import WarmStartConfig

# Notebook parameters that choose where and how to run, not what is computed (never part of a config).
EXECUTION_PARAMETERS = ("preset", "data_dir", "out_dir", "device", "workers", "progress")
PRESETS = ("smoke", "quick", "paper")


@dataclasses.dataclass(frozen=True)
class Study:
    id: str  # two-digit prefix of the notebook file, as used by --only
    notebook: str  # file name under notebooks/
    config: type[Config]  # built from the notebook's parameters by Config.from_preset

    @property
    def path(self) -> Path:
        return notebooks_dir() / self.notebook

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem


STUDIES = {s.id: s for s in [
    Study("01", "01_warm_start_gap.ipynb", WarmStartConfig),
]}


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
