"""Batch CLI: execute the study notebooks headless with papermill and collect their claims.

    python -m plasticity_nb run [--preset smoke|quick|paper] [--only 01,...] [--param name=value ...]
                                [--seeds N] [--force] [--train-only] [--data DIR] [--out DIR]

Every `--param` is checked (known name, right type and value) and the data is found before any notebook
starts, so bad input fails in a second with one message naming the culprit, and nothing is written.
The batch then goes notebook by notebook (see `batch.py`): each is executed as soon as its runs are stored,
while the next one's runs train, and an unchanged notebook reuses its previous execution (`--force`
re-executes). Executed notebooks land in `<out>/notebooks/` only when they finish; a failing notebook is
kept in a temporary folder, its failing cell is printed and the exit status is non-zero. Ctrl-C stops with
exit status 130: stored runs stay, the run in progress resumes from its last checkpoint next time.
`--train-only` trains the runs and executes nothing, for a GPU box or cluster node without Jupyter: copy the
run store back and the same command without it executes the notebooks from the stored runs.
"""
from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from .batch import Job, Settings, ensure_kernel, run_batch, train_all
from .claims import read_claims
from .config import ConfigError
from .data import DataError, load_cifar10
from .executors import EXECUTORS
from .files import is_full_disk
from .notebook_cache import NotebookCache, execution_key, parameter_names
from .paths import resolve_out_dir
from .runner import CHECKPOINT_EVERY
from .store import RunStore, StoreError, print_store_warnings_plainly
from .studies import EXECUTION_PARAMETERS, PRESETS, STUDIES, Study
from .train import COMPILE_CHOICES, COMPILE_ENV, resolve_device

INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT


class UsageError(RuntimeError):
    """Bad command-line input; the message names the culprit."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m plasticity_nb", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute study notebooks with papermill and write claims.csv")
    run.add_argument("--preset", default="quick", choices=PRESETS, help="scale of every notebook (default: quick)")
    run.add_argument("--only", default=None, help=f"comma-separated notebook ids (default: all of {','.join(STUDIES)})")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="notebook parameter override (a Python literal, else a string); repeatable")
    run.add_argument("--seeds", default=None, metavar="N",
                     help="shortcut for --param seeds=[0,...,N-1] in every selected notebook (N >= 2)")
    run.add_argument("--force", action="store_true",
                     help="re-execute every notebook, even one whose cached execution is still valid")
    run.add_argument("--train-only", action="store_true",
                     help="train the selected notebooks' runs into the run store and execute no notebook (for a "
                          "machine without Jupyter); the same command without it then executes them")
    run.add_argument("--data", default=None, help="CIFAR-10 folder (default: PLASTICITY_DATA, then data/)")
    run.add_argument("--out", default=None, help="output folder (default: PLASTICITY_OUT, then outputs/)")
    run.add_argument("--executor", default="local", choices=EXECUTORS,
                     help="where runs train: local worker processes (default) or Ray tasks (pip install .[ray])")
    run.add_argument("--ray-address", default=None,
                     help="Ray cluster to use with --executor ray (default: a local one)")
    run.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="EPOCHS",
                     help=f"epochs between checkpoints that make killed runs resumable (default: {CHECKPOINT_EVERY})")
    run.add_argument("--compile", default=None, choices=COMPILE_CHOICES, metavar="MODE",
                     help="torch.compile every run in this mode, or 'off' for eager: reduce-overhead (CUDA graphs) "
                          "is the fast one on a GPU (benchmarks/RESULTS.md); one of "
                          f"{', '.join(COMPILE_CHOICES)} (default: eager). Compiled code is cached in "
                          "OUT/compile-cache")
    args = parser.parse_args(argv)
    print_store_warnings_plainly()
    if args.compile:
        os.environ[COMPILE_ENV] = args.compile  # read by Runtime.for_config here and in spawned workers
    try:
        return run_notebooks(args.preset, args.only, args.param, args.data, args.out, args.executor,
                             args.ray_address, args.checkpoint_every, args.seeds, args.force, args.train_only)
    except (UsageError, ConfigError, DataError, StoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if not is_full_disk(err):
            raise
        print(f"error: the disk holding the output folder {resolve_out_dir(args.out)} is full ({err.strerror}"
              f"{f': {err.filename}' if err.filename else ''}). Nothing half-written was kept; free space, then run "
              f"the same command again: it continues from the stored runs and their last checkpoints:\n"
              f"  python -m plasticity_nb {shlex.join(argv)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in the run store and the run in progress resumes from its "
              "last checkpoint. To continue, run the same command again:\n"
              f"  python -m plasticity_nb {shlex.join(argv)}", file=sys.stderr)
        return INTERRUPTED


def run_notebooks(preset: str, only: str | None, raw_params: list[str], data: str | None, out: str | None,
                  executor: str = "local", ray_address: str | None = None,
                  checkpoint_every: int = CHECKPOINT_EVERY, seeds: str | None = None, force: bool = False,
                  train_only: bool = False) -> int:
    if checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1 epoch, got {checkpoint_every}")
    studies = select_studies(only)
    params = {**parse_params(raw_params), **seeds_param(seeds, raw_params)}
    out_dir = resolve_out_dir(out)
    names = {s.id: parameter_names(s.path) for s in studies}
    per_study = validate_params(studies, preset, params, names)
    data_dir = str(Path(data).expanduser().resolve()) if data else None
    device = resolve_device(params.get("device"))
    cifar = load_cifar10(data_dir, device)  # the data is found and checked before anything runs
    RunStore(out_dir).ensure_writable()
    jobs = [job_for(s, preset, per_study[s.id], out_dir, data_dir, executor, ray_address, cifar.data_id, force)
            for s in studies]
    settings = Settings(out_dir, data_dir, device, params.get("workers"), executor, ray_address, checkpoint_every)
    if train_only:
        train_all(jobs, settings)
        print(f"\ntrained every run into {out_dir / 'runs'}; to execute the notebooks from them, run the same "
              "command without --train-only where Jupyter is installed (with that run store as --out)")
        return 0
    if not all(job.reuse for job in jobs):
        ensure_kernel()
    failures = run_batch(jobs, preset, cifar.data_id, settings)
    print(f"\nreport: {out_dir / 'report.md'}")
    table = read_claims(out_dir)
    table = table[table.preset == preset]
    if len(table):
        print(f"\nclaims ({out_dir / 'claims.csv'}):")
        print(table.drop(columns=["statement"]).to_string(index=False))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


def job_for(study: Study, preset: str, params: dict[str, Any], out_dir: Path, data_dir: str | None, executor: str,
            ray_address: str | None, data_id: str, force: bool) -> Job:
    parameters = {"preset": preset, "data_dir": data_dir, "out_dir": str(out_dir), "executor": executor,
                  "ray_address": ray_address, **params}
    config = study.config.from_preset(preset, **config_values(params))
    configs = [c for _, c in config.plan(data_id)]
    key = execution_key(study.path, parameters, data_id, [c.key() for c in configs])
    store = RunStore(out_dir)
    reuse = not force and NotebookCache(out_dir).has(key) and all(store.has(c) for c in configs)
    return Job(study, parameters, config, configs, key, reuse)


def config_values(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in EXECUTION_PARAMETERS}


def select_studies(only: str | None) -> list[Study]:
    if not only:
        return list(STUDIES.values())
    ids = [i.strip() for i in only.split(",") if i.strip()]
    unknown = [i for i in ids if i not in STUDIES]
    if unknown:
        raise UsageError(f"--only names unknown notebook id(s) {', '.join(unknown)}; known: {', '.join(STUDIES)}")
    return [study for study_id, study in STUDIES.items() if study_id in ids]  # in order: 01 first


def seeds_param(seeds: str | None, raw_params: list[str]) -> dict[str, Any]:
    """`--seeds N` as the `seeds` parameter [0, ..., N-1]; {} without it."""
    if seeds is None:
        return {}
    if not seeds.strip().isdigit() or int(seeds) < 2:
        raise UsageError(f"--seeds must be an integer >= 2 (it runs seeds 0..N-1), got {seeds!r}")
    if "seeds" in parse_params(raw_params):
        raise UsageError("--seeds and --param seeds=... both set the seeds: give one of them")
    return {"seeds": list(range(int(seeds)))}


def parse_params(raw: list[str]) -> dict[str, Any]:
    params = {}
    for item in raw:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {item!r} must look like name=value")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as sgd is a string
        params[name.strip()] = value
    return params


RESERVED = {"preset": "--preset", "data_dir": "--data", "out_dir": "--out", "executor": "--executor",
            "ray_address": "--ray-address"}  # set by their own options


def validate_params(studies: list[Study], preset: str, params: dict[str, Any],
                    notebook_params: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """For each study, the overrides that apply to it, checked against its notebook's parameter names
    and its config."""
    known = sorted(set().union(*notebook_params.values()) - set(RESERVED))
    for name, value in params.items():
        if name in RESERVED:
            raise UsageError(f"set {name} with {RESERVED[name]}, not --param")
        if name not in known:
            raise UsageError(f"unknown parameter {name!r} for notebook(s) {', '.join(notebook_params)}; "
                             f"known: {', '.join(known)}")
        check_execution_param(name, value)
    per_study = {}
    for study in studies:
        mine = {k: v for k, v in params.items() if k in notebook_params[study.id]}
        try:
            study.config.from_preset(preset, **{k: v for k, v in mine.items() if k not in EXECUTION_PARAMETERS})
        except ConfigError as err:
            raise ConfigError(f"notebook {study.stem}: {err}") from None
        per_study[study.id] = mine
    return per_study


def check_execution_param(name: str, value: Any) -> None:
    if name == "workers" and not (value is None or (type(value) is int and value >= 1)):
        raise UsageError(f"workers must be a whole number >= 1 (or None for automatic), got {value!r}")
    if name == "progress" and not isinstance(value, bool):
        raise UsageError(f"progress must be True or False, got {value!r}")
    if name == "device" and not (value is None or value in ("cpu", "cuda") or str(value).startswith("cuda:")):
        raise UsageError(f"device must be cpu, cuda, cuda:N or None (automatic), got {value!r}")
