"""Batch CLI: execute the study notebooks headless with papermill and collect their claims.

    python -m plasticity_nb run [--preset smoke|quick|paper] [--only 01,...] [--param name=value ...]
                                [--data DIR] [--out DIR]

Every `--param` is checked (known name, right type and value) and the data is found before any notebook
starts, so bad input fails in a second with one message naming the culprit, and nothing is written.
Executed notebooks land in `<out>/notebooks/` only when they finish; a failing notebook is kept in a
temporary folder, its failing cell is printed and the exit status is non-zero.
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .claims import read_claims
from .config import ConfigError
from .data import DataError, load_cifar10
from .paths import resolve_out_dir
from .protocols import load_study
from .report import write_report
from .executors import EXECUTORS
from .runner import CHECKPOINT_EVERY, run_many
from .store import RunStore, StoreError
from .train import COMPILE_ENV, COMPILE_MODES, resolve_device
from .studies import EXECUTION_PARAMETERS, PRESETS, STUDIES, Study

KERNEL = "plasticity-nb"  # installed into this environment; always passed to papermill explicitly


class UsageError(RuntimeError):
    """Bad command-line input; the message names the culprit."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plasticity_nb", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute study notebooks with papermill and write claims.csv")
    run.add_argument("--preset", default="quick", choices=PRESETS, help="scale of every notebook (default: quick)")
    run.add_argument("--only", default=None, help=f"comma-separated notebook ids (default: all of {','.join(STUDIES)})")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="notebook parameter override (a Python literal, else a string); repeatable")
    run.add_argument("--data", default=None, help="CIFAR-10 folder (default: PLASTICITY_DATA, then data/)")
    run.add_argument("--out", default=None, help="output folder (default: PLASTICITY_OUT, then outputs/)")
    run.add_argument("--executor", default="local", choices=EXECUTORS,
                     help="where runs train: local worker processes (default) or Ray tasks (pip install .[ray])")
    run.add_argument("--ray-address", default=None, help="Ray cluster to use with --executor ray (default: a local one)")
    run.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="EPOCHS",
                     help=f"epochs between checkpoints that make killed runs resumable (default: {CHECKPOINT_EVERY})")
    run.add_argument("--compile", default=None, choices=COMPILE_MODES, metavar="MODE",
                     help="torch.compile every run in this mode: reduce-overhead (CUDA graphs) is the fast one on a "
                          f"GPU (benchmarks/RESULTS.md); one of {', '.join(COMPILE_MODES)} (default: eager)")
    args = parser.parse_args(argv)
    if args.compile:
        os.environ[COMPILE_ENV] = args.compile  # read by Runtime.for_config here and in spawned workers
    try:
        return run_notebooks(args.preset, args.only, args.param, args.data, args.out, args.executor,
                             args.ray_address, args.checkpoint_every)
    except (UsageError, ConfigError, DataError, StoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def run_notebooks(preset: str, only: str | None, raw_params: list[str], data: str | None, out: str | None,
                  executor: str = "local", ray_address: str | None = None,
                  checkpoint_every: int = CHECKPOINT_EVERY) -> int:
    if checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1 epoch, got {checkpoint_every}")
    studies = select_studies(only)
    params = parse_params(raw_params)
    per_study = validate_params(studies, preset, params)
    out_dir = resolve_out_dir(out)
    data_dir = str(Path(data).expanduser().resolve()) if data else None
    device = resolve_device(params.get("device"))
    cifar = load_cifar10(data_dir, device)  # the data is found and checked before anything runs
    RunStore(out_dir).ensure_writable()
    ensure_kernel()
    plans = {s.id: s.config.from_preset(preset, **config_values(per_study[s.id])).plan(cifar.data_id) for s in studies}
    train_all(plans, out_dir, data_dir, device, params.get("workers"), executor, ray_address, checkpoint_every)
    failures, timings = [], []
    for study in studies:
        parameters = {"preset": preset, "data_dir": data_dir, "out_dir": str(out_dir), "executor": executor,
                      "ray_address": ray_address, **per_study[study.id]}
        started = time.perf_counter()
        failure = execute(study, parameters, out_dir)
        timings.append(notebook_timing(study, plans, out_dir, time.perf_counter() - started))
        if failure:
            failures.append(failure)
    results = {s.stem: load_study(s.config.from_preset(preset, **config_values(per_study[s.id])), out_dir,
                                  cifar.data_id) for s in studies}
    report = write_report(out_dir, preset, pd.DataFrame(timings), {k: v for k, v in results.items() if v is not None})
    print(f"\nreport: {report}")
    table = read_claims(out_dir)
    table = table[table.preset == preset]
    if len(table):
        print(f"\nclaims ({out_dir / 'claims.csv'}):")
        print(table.drop(columns=["statement"]).to_string(index=False))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


def config_values(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in EXECUTION_PARAMETERS}


def train_all(plans: dict[str, list], out_dir: Path, data_dir: str | None, device, workers: int | None,
              executor: str, ray_address: str | None, checkpoint_every: int) -> None:
    """Train every missing run of the selected notebooks up front, as one sweep.

    The notebooks then load their runs from the store. One sweep keeps every worker busy across
    notebooks, instead of idling at the end of each notebook's own runs.
    """
    configs = list({c.key(): c for plan in plans.values() for _, c in plan}.values())
    store = RunStore(out_dir)
    missing = sum(store.load(c) is None for c in configs)
    print(f"runs: {len(configs)} for notebook(s) {', '.join(plans)}; {len(configs) - missing} in the store, "
          f"{missing} to train (plus any missing pretraining prefixes)", flush=True)
    started = time.perf_counter()
    run_many(configs, out_dir, data_dir, device, workers, progress=True, checkpoint_every=checkpoint_every,
             executor=executor, ray_address=ray_address)
    print(f"training done in {time.perf_counter() - started:.0f} s", flush=True)


def notebook_timing(study: Study, plans: dict[str, list], out_dir: Path, notebook_seconds: float) -> dict[str, Any]:
    """Training time of the runs this notebook is first to need (earlier notebooks may share runs), and
    the time to execute the notebook itself (loading its runs, plotting)."""
    earlier = {c.key() for sid, plan in plans.items() if sid < study.id for _, c in plan}
    store, own = RunStore(out_dir), {}
    for _, config in plans[study.id]:
        for n in range(1, len(config.phases) + 1):  # a warm run's pretraining prefix is a run of its own
            prefix = config.truncated(n)
            if prefix.key() not in earlier and (record := store.load(prefix)) is not None:
                own[prefix.key()] = record.provenance["wall_seconds"]
    return {"notebook": study.stem, "runs": len({c.key() for _, c in plans[study.id]}), "new runs": len(own),
            "training (worker-min)": round(sum(own.values()) / 60, 1),
            "notebook execution (s)": round(notebook_seconds)}


def select_studies(only: str | None) -> list[Study]:
    if not only:
        return list(STUDIES.values())
    ids = [i.strip() for i in only.split(",") if i.strip()]
    unknown = [i for i in ids if i not in STUDIES]
    if unknown:
        raise UsageError(f"--only names unknown notebook id(s) {', '.join(unknown)}; known: {', '.join(STUDIES)}")
    return [STUDIES[i] for i in ids]


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


def validate_params(studies: list[Study], preset: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each study, the overrides that apply to it, checked against its notebook and its config."""
    import papermill

    notebook_params = {s.id: set(papermill.inspect_notebook(str(s.path))) for s in studies}
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


def ensure_kernel() -> None:
    """Install the `plasticity-nb` kernel for this Python into this environment if it is missing or stale."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, display_name="Python (plasticity_nb)", prefix=sys.prefix)


def execute(study: Study, parameters: dict[str, Any], out_dir: Path) -> str | None:
    """Run one notebook; return None on success, else a message naming the failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    final = out_dir / "notebooks" / study.notebook
    scratch = Path(tempfile.mkdtemp(prefix=f"plasticity-{study.stem}-"))
    partial = scratch / study.notebook
    print(f"[{study.id}] {study.stem}: running (preset {parameters['preset']})...", flush=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(study.path), str(partial), parameters=parameters, kernel_name=KERNEL,
                                   cwd=str(study.path.parent), progress_bar=False)
    except PapermillExecutionError as err:
        first_line = (err.source or "").strip().splitlines()[:1]
        return (f"[{study.id}] {study.stem} FAILED in cell {err.exec_count} ({first_line[0] if first_line else ''!s}):"
                f" {err.ename}: {err.evalue}\n      the partial notebook is kept at {partial}")
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(partial), str(final))
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"[{study.id}] {study.stem}: done in {time.perf_counter() - started:.0f} s -> {final}", flush=True)
    return None
