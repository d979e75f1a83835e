"""Where things live: the project root, the data folder, the outputs folder and this machine's cache."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the plasticity_nb folder, whatever layer asks
BUNDLE = "bundle.json"  # at an output folder's root: the folder is a bundle of stored runs (execution/bundle.py)


def project_root() -> Path:
    """The source checkout holding this package (editable installs), else the working directory."""
    checkout = PACKAGE_DIR.parent
    return checkout if (checkout / "pyproject.toml").exists() else Path.cwd()


def default_out_dir() -> Path:
    """`PLASTICITY_OUT` if set (the tests point it at a temporary folder), else `<project>/outputs`."""
    return Path(os.environ.get("PLASTICITY_OUT") or project_root() / "outputs").resolve()


def resolve_out_dir(out_dir: str | os.PathLike | None) -> Path:
    """The notebooks' `out_dir` parameter: None means the default outputs folder."""
    return Path(out_dir).expanduser().resolve() if out_dir else default_out_dir()


def is_bundle(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` is a bundle: stored runs without their weights, opened read-only (execution/bundle.py)."""
    return (Path(out_dir).expanduser() / BUNDLE).is_file()


def cache_dir() -> Path:
    """`PLASTICITY_CACHE` if set (the tests point it at their session's folder), else the user's cache folder:
    values this machine computed once and can compute again (see `core.files.cached`)."""
    explicit = os.environ.get("PLASTICITY_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plasticity_nb"
