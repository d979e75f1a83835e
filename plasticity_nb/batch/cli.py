"""Batch CLI: run the study notebooks headless with papermill and collect their claims.

    python -m plasticity_nb run [--plan] [--stage settle|explore]     # the main job
    python -m plasticity_nb run [--preset smoke|quick|paper|gpu] [--only 01,...] [--param name=value ...]
                                [--seeds N] [--force] [--train-only] [--data DIR] [--out DIR]
                                [--settle main|8,16 --first-seed SEED [--seed-budget N] [--time-budget HOURS]]

`run` without options that select what runs is the main job (`main_job`), in two stages.
Stage 1 settles the central claims C1, C2 and C4 sequentially on fresh seeds (600 onwards).
It trains notebooks 01, 02 and 04 only in the conditions those claims read.
Stage 2 runs every notebook at the quick preset's seeds, as exploratory.
A selecting option (--only, --param, --seeds, --settle, another preset) runs exactly what it selects instead.

Bad input fails in a second, with one message naming the culprit, and nothing is written.
Every `--param` is checked first: known name, right type and value.
The dataset the notebooks name (`--param dataset=cifar100`; default cifar10) is found and checked against every run.
Both checks come before any notebook starts.

The batch then goes notebook by notebook (see `notebook_runs.py`).
Each notebook is executed as soon as its runs are stored, while the next one's runs train.
An unchanged notebook reuses its previous execution; `--force` re-executes.
Executed notebooks land in `<out>/notebooks/` only when they finish.
A failing notebook stays in a temporary folder, its failing cell is printed, and the exit status is non-zero.
Ctrl-C stops with exit status 130.
Stored runs stay, and the run in progress resumes from its last checkpoint next time.

`--train-only` trains the runs and executes nothing: for a GPU box or cluster node without Jupyter.
Copy the run store back; the same command without it executes the notebooks from the stored runs.

`--settle LOOKS` settles each claim sequentially (analysis/settle.py, analysis/sequential.py).
Look after look, only notebooks with an open claim get the next look's seeds.
Each claim's verdict is frozen where its design's boundary stops it.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import shlex
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..analysis.claim_history import SEEN_BY_2026_12_06
from ..analysis.claims import CLAIMS, PLANNING_SD, check_results_dataset, read_claims
from ..analysis.sequential import MAIN_DESIGN, Design
from ..analysis.settle import (
    CENTRAL,
    Ledger,
    Notebook,
    Plan,
    SettleError,
    claims_of_id,
    make_plan,
    read_ledger,
    resume,
    run_settle,
    triage_lines,
    write_triage,
)
from ..core.config import ConfigError
from ..core.cpu import cpu_identity
from ..core.files import is_full_disk
from ..core.paths import resolve_out_dir
from ..data.datasets import DataError
from ..data.images import ImageData, load_dataset
from ..execution import eta
from ..execution.bundle import seed_ranges
from ..execution.executors import EXECUTORS, LostWorkers
from ..execution.runner import auto_workers
from ..execution.settings import CHECKPOINT_EVERY, ExecutionSettings
from ..execution.settings import FIELDS as SETTINGS_FIELDS
from ..execution.store import RunStore, StoreError, print_store_warnings_plainly
from ..run.run_config import PRECISIONS
from ..studies import EXECUTION_PARAMETERS, PRESETS, STUDIES, Study
from ..studies.study_runs import load_study
from ..training.run_tensors import check_fits
from ..training.runtime import COMPILE_CHOICES, COMPILE_OFF, resolve_device
from ..views.report import refresh_report
from .notebook_cache import NotebookCache, execution_key, parameter_names
from .notebook_runs import Job, ensure_kernel, run_batch, train_all

INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT


class UsageError(RuntimeError):
    """Bad command-line input; the message names the culprit."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m plasticity_nb", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute study notebooks with papermill and write claims.csv",
                              description=run_description())
    run.add_argument("--preset", default="quick", choices=PRESETS, help="scale of every notebook (default: quick)")
    run.add_argument("--only", default=None, help=f"comma-separated notebook ids (default: all of {','.join(STUDIES)})")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a notebook parameter: a Python literal, else a string. Repeatable.")
    run.add_argument("--seeds", default=None, metavar="N",
                     help="shortcut for --param seeds=[0,...,N-1] in every selected notebook (N >= 2)")
    run.add_argument("--force", action="store_true",
                     help="re-execute every notebook, even one whose cached execution is still valid")
    run.add_argument("--train-only", action="store_true",
                     help="train the selected notebooks' runs into the run store, executing no notebook (for a "
                          "machine without Jupyter). The same command without it then executes them.")
    run.add_argument("--data", default=None,
                     help="folder of the dataset the notebooks train on (default: its environment variable, "
                          "PLASTICITY_DATA for CIFAR-10, then data/)")
    run.add_argument("--out", default=None, help="output folder (default: PLASTICITY_OUT, then outputs/)")
    run.add_argument("--executor", default="local", choices=EXECUTORS,
                     help="where runs train: local worker processes (default) or Ray tasks (pip install .[ray])")
    run.add_argument("--ray-address", default=None,
                     help="Ray cluster to use with --executor ray (default: a local one)")
    run.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="EPOCHS",
                     help=f"epochs between checkpoints that make killed runs resumable (default: {CHECKPOINT_EVERY})")
    run.add_argument("--compile", default=COMPILE_OFF, choices=COMPILE_CHOICES, metavar="MODE",
                     help=f"torch.compile every run in MODE, or 'off' for eager (default: eager). MODE is one of "
                          f"{', '.join(COMPILE_CHOICES)}. On a GPU, graphed-step replays each whole training step, "
                          "optimiser included, as one CUDA graph: the fastest step measured (benchmarks/RESULTS.md). "
                          "reduce-overhead graphs forward and backward. Compiled code is cached in OUT/compile-cache.")
    run.add_argument("--ensemble", action="store_true",
                     help="train runs that differ only by seed as one vmapped model where the ensemble supports "
                          "them; the others train alone, with the reason. Meant for a GPU. Members are not bitwise "
                          "solo runs, as each run's provenance says.")
    run.add_argument("--settle", default=None, metavar="LOOKS",
                     help="settle each claim sequentially. LOOKS: 'main', the design chosen by simulation "
                          f"(looks at {', '.join(map(str, MAIN_DESIGN.looks))} seeds; docs/sequential-design.md), "
                          "or seed counts with O'Brien-Fleming spending, e.g. 8,16. Each look adds seeds only to "
                          "notebooks with an open claim. A claim's verdict is frozen, error-controlled, where it "
                          "stops. The ledger <out>/settled-<preset>.json makes it resumable.")
    run.add_argument("--first-seed", type=int, default=None, metavar="SEED",
                     help="with --settle, required: look k runs seeds SEED..SEED+n_k-1. Choose seeds no result has "
                          "used: seen ones are refused.")
    run.add_argument("--seed-budget", type=int, default=None, metavar="N",
                     help="with --settle: no look beyond N seeds (default: the last look)")
    run.add_argument("--time-budget", type=float, default=None, metavar="HOURS",
                     help="with --settle: no look starts once this command's looks, with the ledger's, took HOURS. "
                          "A budget that cannot reach a look where a claim can stop is refused before training.")
    run.add_argument("--plan", action="store_true",
                     help="print the settle design's looks, each central claim's power at its smallest effect of "
                          "interest, and the expected and worst-case time here. Then stop: nothing trains. Alone, it "
                          "plans the main job's settle stage.")
    run.add_argument("--stage", default=None, choices=STAGES,
                     help="run one stage of the main job (the command without selecting options). 'settle' settles "
                          "the central claims on fresh seeds. 'explore' runs every notebook at the preset's seeds, "
                          "fixed n, labelled exploratory. Default: both, settle first.")
    args = parser.parse_args(argv)
    print_store_warnings_plainly()
    try:
        settings = execution_settings(args)
        if is_main_job(args):
            return main_job(args, settings)
        if args.stage:
            raise UsageError(f"--stage runs a stage of the main job, at --preset {MAIN_PRESET} with none of "
                             "--only, --param, --seeds, --settle, --train-only")
        settle = settle_options(args.settle, args.first_seed, args.seed_budget, args.time_budget, args.preset)
        if args.plan and settle is None:
            raise UsageError("--plan plans a sequential design: give --settle LOOKS with it")
        return run_notebooks(args.preset, args.only, args.param, settings, args.seeds, args.force, args.train_only,
                             settle, args.plan)
    except (UsageError, ConfigError, DataError, StoreError, SettleError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if not is_full_disk(err):
            raise
        print(f"error: the disk holding the output folder {resolve_out_dir(args.out)} is full ({err.strerror}"
              f"{f': {err.filename}' if err.filename else ''}). Nothing half-written was kept. Free space, then run "
              f"the same command again; it continues from the stored runs and their last checkpoints:\n"
              f"  python -m plasticity_nb {shlex.join(argv)}", file=sys.stderr)
        return 1
    except LostWorkers as err:  # its message says what was lost and what the store keeps
        print(f"error: {err}:\n  python -m plasticity_nb {shlex.join(argv)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in the run store. The run in progress resumes from its "
              "last checkpoint. To continue, run the same command again:\n"
              f"  python -m plasticity_nb {shlex.join(argv)}", file=sys.stderr)
        return INTERRUPTED


def execution_settings(args: argparse.Namespace) -> ExecutionSettings:
    """Where and how this command's runs train, from its options: one value, passed whole to every `run_many` of the
    batch and into its worker processes (`--param device=` and `workers=` join it in `run_notebooks`)."""
    if args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1 epoch, got {args.checkpoint_every}")
    return ExecutionSettings(out_dir=resolve_out_dir(args.out),
                             data_dir=Path(args.data).expanduser().resolve() if args.data else None,
                             executor=args.executor, ray_address=args.ray_address,
                             checkpoint_every=args.checkpoint_every, ensemble=args.ensemble, compile=args.compile,
                             progress=True)


MAIN_PRESET = "quick"  # the main job's scale: the one a 2-core CPU settles the central claims at in about 90 min
MAIN_FIRST_SEED = 600  # the main job's settle stage: the seed block registered for its confirmation (600-649)
STAGES = ("settle", "explore")


def run_description() -> str:
    """`run --help`'s description: what `run` does without selecting options."""
    notebooks = ", ".join(sorted({CLAIMS[c].notebook[:2] for c in CENTRAL}))
    return (f"Without selecting options, `run` is the main job. Stage 1 settles claims {', '.join(CENTRAL)} "
            f"sequentially on fresh seeds ({MAIN_FIRST_SEED} onwards), training notebooks {notebooks} only in the "
            f"conditions those claims read. Stage 2 runs every notebook at the {MAIN_PRESET} preset's seeds, as "
            "exploratory. Selecting options (--only, --param, --seeds, --settle, --train-only, another --preset) run "
            "exactly what they select.")


def is_main_job(args: argparse.Namespace) -> bool:
    """`run` with no option that selects what runs (where, how and into which folder may be given), or `--plan`
    alone: the main job."""
    selecting = (args.only, args.param, args.seeds, args.settle, args.train_only, args.seed_budget, args.time_budget,
                 args.first_seed is not None)
    return args.preset == MAIN_PRESET and not any(selecting)


def main_settle_params(preset: str) -> dict[str, Any]:
    """The main job's settle stage: the central claims' notebooks, each trained only in the conditions its claims
    read (the studies' `claim_conditions`), as --only and --param values."""
    ids = sorted({CLAIMS[c].notebook[:2] for c in CENTRAL})
    params = {}
    for study_id in ids:
        study = STUDIES[study_id]
        params.update(study.module.claim_conditions(study.config.from_preset(preset)))
    return {"only": ",".join(ids), "params": [f"{k}={v!r}" for k, v in params.items()]}


def main_job(args: argparse.Namespace, settings: ExecutionSettings) -> int:
    """The main job: first settle the central claims (C1, C2, C4) sequentially on fresh seeds, training only the
    conditions they read; then the exploratory stage, every notebook at the preset's seeds, fixed n, whose rows in
    claims.csv (stage 'fixed n') never replace a settled row. `--stage` runs one of them; `--plan` plans the first."""
    where = dict(settings=settings, force=args.force)
    if args.plan and args.stage == "explore":
        raise UsageError("--plan plans the settle stage: drop --stage explore")
    status = 0
    if args.stage in (None, "settle"):
        stage = main_settle_params(MAIN_PRESET)
        settle = settle_options("main", MAIN_FIRST_SEED, None, None, MAIN_PRESET)
        command = shlex.join(["python", "-m", "plasticity_nb", "run", "--settle", "main", "--first-seed",
                              str(MAIN_FIRST_SEED), "--only", stage["only"],
                              *[x for p in stage["params"] for x in ("--param", p)]])
        print(f"main job, stage 1 of 2 (settle): claims {', '.join(CENTRAL)} sequentially on seeds from "
              f"{MAIN_FIRST_SEED}. Notebooks {stage['only']} train only in the conditions these claims read. The "
              f"same as:\n  {command}", flush=True)
        status = run_notebooks(MAIN_PRESET, stage["only"], stage["params"], settle=settle, show_plan=True,
                               plan_only=args.plan, **where)
        if status or args.plan:
            return status
    if args.stage in (None, "explore"):
        seeds = STUDIES["01"].config.from_preset(MAIN_PRESET).seeds
        print(f"\nmain job, stage 2 of 2 (exploratory): every notebook at the {MAIN_PRESET} preset's seeds "
              f"{seeds[0]}-{seeds[-1]}, fixed n. Its claims.csv rows have stage 'fixed n' and never replace a settled "
              "row. report.md, the notebooks and the explorer show the settled verdict where one exists.", flush=True)
        status = run_notebooks(MAIN_PRESET, None, [], **where)
    return status


def run_notebooks(preset: str, only: str | None, raw_params: list[str], settings: ExecutionSettings,
                  seeds: str | None = None, force: bool = False, train_only: bool = False,
                  settle: "SettleOptions | None" = None, plan_only: bool = False, show_plan: bool = False) -> int:
    """The selected notebooks at `preset`, their runs trained with `settings` (the command's options, whole, with
    the output folder resolved), joined by the notebooks' `--param device=` and `workers=`."""
    studies = select_studies(only)
    params = {**parse_params(raw_params), **seeds_param(seeds, raw_params)}
    if settle is not None:
        check_settle_alone(params, seeds, train_only)
        params["seeds"] = list(settle.seeds(1))  # validated at the first look's seeds; each look sets its own
    out_dir = settings.out_dir
    names = {s.id: parameter_names(s.path) for s in studies}
    per_study = validate_params(studies, preset, params, names)
    device = resolve_device(params.get("device"))
    settings = settings.replace(device=str(device), workers=params.get("workers"))
    # the data is found and checked, against every run, before anything runs or is written
    data = load_dataset(dataset_of(studies, preset, per_study), settings.data_dir, device)
    check_fit(studies, preset, per_study, data)
    check_results_dataset(out_dir, data.spec.name)
    if settle is not None:
        fresh = Ledger(settle.design, settle.first_seed, preset, tuple(s.id for s in studies),
                       config_values({k: v for k, v in params.items() if k != "seeds"}))
        resume(out_dir, fresh)  # refuses another command's ledger before anything is written
        check_precision(studies, preset, per_study, settle, out_dir, data.data_id)
    RunStore(out_dir).ensure_writable()
    if settle is not None and (plan_only or show_plan or settle.design.time_budget_s):
        rates = eta.seconds_per_example(RunStore(out_dir, read_only=True))  # the store read once
        plan = settle_plan(studies, preset, per_study, settle, settings, data.data_id, rates)
        if plan_only or show_plan:
            triage = triage_every_claim(preset, settle, settings, data.data_id, rates) if show_plan else plan.triage()
            print("\n".join(plan.lines() + triage_lines(triage)), flush=True)
            if show_plan:  # the main job's: every claim, for report.md
                write_triage(out_dir, preset, triage, machine_words())
        if plan_only:
            return 0
        plan.check_budget()  # before anything trains
    if settle is not None:
        return settle_notebooks(studies, preset, per_study, fresh, settings, data, force)
    jobs = [job_for(s, preset, per_study[s.id], settings, data, force) for s in studies]
    if train_only:
        train_all(jobs, settings)
        print(f"\ntrained every run into {out_dir / 'runs'}. To execute the notebooks from them, run the same "
              "command without --train-only where Jupyter is installed, with that run store as --out.")
        return 0
    if not all(job.reuse for job in jobs):
        ensure_kernel()
    failures = run_batch(jobs, preset, data.data_id, settings)
    return summarise(out_dir, preset, failures)


def dataset_of(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]]) -> str:
    """The one dataset the selected notebooks train on (every notebook has the `dataset` parameter, so `--param
    dataset=` sets it for all of them); `--data` is that dataset's folder."""
    names = {s.config.from_preset(preset, **config_values(per_study[s.id])).dataset for s in studies}
    if len(names) > 1:
        raise UsageError(f"the selected notebooks train on several datasets ({', '.join(sorted(names))}): "
                         "a batch trains on one, set with --param dataset=")
    return names.pop()


def check_fit(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]], data: ImageData) -> None:
    """Every run of every selected notebook fits the loaded copy: e.g. a class-balanced subset that SVHN's smallest
    class cannot fill fails here, naming the notebook and the field, before anything is written."""
    for study in studies:
        config = study.config.from_preset(preset, **config_values(per_study[study.id]))
        for _, run_config in config.plan(data.data_id):
            try:
                check_fits(run_config, data)
            except ConfigError as err:
                raise ConfigError(f"notebook {study.stem}: {err}") from None


def summarise(out_dir: Path, preset: str, failures: list[str]) -> int:
    print(f"\nreport: {out_dir / 'report.md'}")
    table = read_claims(out_dir)
    table = table[table.preset == preset]
    if len(table):
        print(f"\nclaims ({out_dir / 'claims.csv'}):")
        print(table.drop(columns=["statement"]).to_string(index=False))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


@dataclasses.dataclass(frozen=True)
class SettleOptions:
    design: Design
    first_seed: int

    def seeds(self, look: int) -> range:
        return range(self.first_seed, self.first_seed + self.design.looks[look - 1])


def settle_options(looks: str | None, first_seed: int | None, seed_budget: int | None,
                   time_budget_hours: float | None, preset: str) -> SettleOptions | None:
    """The design of `--settle` (None without it); each bad value is a usage error naming its option."""
    if looks is None:
        if seed_budget is not None or time_budget_hours is not None or first_seed is not None:
            raise UsageError("--first-seed, --seed-budget and --time-budget apply to --settle only")
        return None
    try:
        counts = MAIN_DESIGN.looks if looks == "main" else tuple(int(n) for n in looks.split(","))
    except ValueError:
        raise UsageError(f"--settle takes 'main' (the chosen design) or comma-separated seed counts, e.g. 8,16; got "
                         f"{looks!r}") from None
    if first_seed is None:
        raise UsageError("--settle needs --first-seed SEED, the first of a block of seeds no result has used "
                         f"(seen at {preset}: {seen_words(preset)})")
    if first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {first_seed}")
    if time_budget_hours is not None and not time_budget_hours > 0:
        raise UsageError(f"--time-budget must be > 0 hours, got {time_budget_hours:g}")
    try:
        base = MAIN_DESIGN if looks == "main" else Design(counts)
        design = dataclasses.replace(base, seed_budget=seed_budget,
                                     time_budget_s=None if time_budget_hours is None else time_budget_hours * 3600)
    except ValueError as err:
        option = "--seed-budget" if "seed budget" in str(err) else "--settle"
        raise UsageError(f"{option}: {err}") from None
    check_unseen(first_seed, seed_budget or design.looks[-1], preset)
    return SettleOptions(design, first_seed)


def seen_words(preset: str) -> str:
    seen = SEEN_BY_2026_12_06.get(preset, ())
    return seed_ranges(list(seen)) if seen else "none"


def check_unseen(first_seed: int, most: int, preset: str) -> None:
    """A settled verdict must come from seeds no result has shown: the design's seeds may not meet seen ones."""
    met = sorted(set(range(first_seed, first_seed + most)) & set(SEEN_BY_2026_12_06.get(preset, ())))
    if met:
        raise UsageError(f"--first-seed {first_seed}: the design may run seeds {seed_ranges(met)}, which results at "
                         f"{preset} have already shown (seen: {seen_words(preset)}); start past them")


def settle_plan(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]], settle: SettleOptions,
                settings: ExecutionSettings, data_id: str, rates: dict[tuple, float]) -> Plan:
    """The settle command's plan: `run_costs` and each planned claim's operating characteristics at the stated
    planning SD. `rates`: the stored runs' speeds (eta.seconds_per_example)."""
    seconds, claims, sesoi = run_costs(studies, preset, per_study, settle, settings, data_id, rates)
    return make_plan(settle.design, seconds, claims, sesoi, PLANNING_SD.get((preset, "pp")))


def triage_every_claim(preset: str, settle: SettleOptions, settings: ExecutionSettings, data_id: str,
                       rates: dict[tuple, float]) -> pd.DataFrame:
    """The triage of every notebook's claims at the preset (its own conditions), timed on this machine."""
    studies = list(STUDIES.values())
    seconds, claims, sesoi = run_costs(studies, preset, {s.id: {} for s in studies}, settle, settings, data_id, rates)
    return Plan(settle.design, seconds, {}, claims, sesoi, PLANNING_SD.get((preset, "pp"))).triage()


def run_costs(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]], settle: SettleOptions,
              settings: ExecutionSettings, data_id: str, rates: dict[tuple, float]) -> tuple[dict, dict, dict]:
    """The wall seconds per seed here (the batch's estimate: stored runs' speed, else a few timed steps) of each
    notebook's own runs and, apart, of the runs several notebooks share (a scratch arm is trained once for all who
    read it); the claims that read each group of runs; each claim's smallest effect of interest."""
    two = [settle.first_seed, settle.first_seed + 1]  # a study needs two seeds; the time is halved below
    runs, readers, sesoi = {}, defaultdict(list), {}
    for study in studies:
        config = study.config.from_preset(preset, **config_values({**per_study[study.id], "seeds": two}))
        mine = [run for _, run in config.plan(data_id)]
        mine += [r.prefix() for r in mine if len(r.phases) > 1]
        for run in mine:
            runs[run.key()] = run
            if study.id not in readers[run.key()]:
                readers[run.key()].append(study.id)
        sesoi.update({c: config.smallest_effect for c in claims_of_id(study.id)})
    groups = defaultdict(list)  # "01" for a notebook's own runs, "01+02+04" for the runs those notebooks share
    for key, ids in readers.items():
        groups["+".join(ids)].append(runs[key])
    workers = settings.workers or auto_workers(resolve_device(settings.device), list(runs.values()))
    timings = eta.timings_for(list(runs.values()), rates, settings.device, max(1, torch.get_num_threads() // workers),
                              settings.compile)
    seconds = {group: eta.estimate(todo, rates, workers, timings)[0] / 2 for group, todo in groups.items()}
    claims = {group: tuple(c for nb in group.split("+") for c in claims_of_id(nb)) for group in groups}
    return seconds, claims, sesoi


def machine_words() -> str:
    """This CPU as a reader names it: its model, the flags that decide its kernels, its cores."""
    cpu = cpu_identity()
    flags = [f for f in cpu["flags"] or () if "bf16" in f or "amx" in f] or ["no native bf16"]
    return f"{cpu['model']} ({', '.join(flags)}), {os.cpu_count()} cores"


def check_settle_alone(params: dict[str, Any], seeds: str | None, train_only: bool) -> None:
    if seeds is not None or "seeds" in params:
        raise UsageError("--settle chooses every look's seeds (--first-seed onwards): drop --seeds and --param seeds=")
    if train_only:
        raise UsageError("--settle decides after each look, so it executes every look: drop --train-only")


def check_precision(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]], settle: SettleOptions,
                    out_dir: Path, data_id: str) -> None:
    """Every look must train at one precision: refuse a store that holds any of these looks' runs at another
    precision than this machine resolves now (from an earlier look on another CPU kind or a GPU, say)."""
    store = RunStore(out_dir, read_only=True)
    seeds = list(settle.seeds(settle.design.reachable))
    for study in studies:
        config = study.config.from_preset(preset, **config_values({**per_study[study.id], "seeds": seeds}))
        for _, run in config.plan(data_id):
            for other in (p for p in PRECISIONS if p != run.precision):
                if store.has(run.replace(precision=other)):
                    key = run.replace(precision=other).key()
                    raise UsageError(
                        f"--settle: the store {store.root} holds run {key} (notebook {study.stem}, seed {run.seed}) "
                        f"at precision {other}. This machine resolves {run.precision}. Every look of a sequential "
                        "design must train at one precision. Continue on the machine kind that trained it, or settle "
                        "into another --out folder.")


def settle_notebooks(studies: list[Study], preset: str, per_study: dict[str, dict[str, Any]], fresh: Ledger,
                     settings: ExecutionSettings, data: ImageData, force: bool) -> int:
    """`run --settle`: the look loop of settle.py, each look a batch of the notebooks with an open claim."""
    by_id, data_id = {s.id: s for s in studies}, data.data_id

    def params_at(nb_id: str, seeds: tuple[int, ...]) -> dict[str, Any]:
        return {**per_study[nb_id], "seeds": list(seeds)}

    def config_at(nb_id: str, seeds: tuple[int, ...]):
        return by_id[nb_id].config.from_preset(preset, **config_values(params_at(nb_id, seeds)))

    def run_look(todo: list[Notebook], seeds: tuple[int, ...], force: bool = force) -> list[str]:
        jobs = [job_for(by_id[nb.id], preset, params_at(nb.id, seeds), settings, data, force) for nb in todo]
        if not all(job.reuse for job in jobs):
            ensure_kernel()
        return run_batch(jobs, preset, data_id, settings)

    def evaluate(nb: Notebook, seeds: tuple[int, ...]):
        config = config_at(nb.id, seeds)
        result = load_study(config, settings.out_dir, data_id)
        return None if result is None else by_id[nb.id].module.claims(result, config)

    notebooks = [Notebook(s.id, s.stem, config_at(s.id, fresh.seeds(1)).smallest_effect) for s in studies]
    before = read_ledger(settings.out_dir, preset)
    ledger, failures = run_settle(settings.out_dir, fresh, notebooks, run_look, evaluate, refresh=refresh_report)
    failures += show_settled(ledger, before, notebooks, run_look)
    print(f"\nsettled: {len(ledger.settled)} claim(s) in {ledger.looks_done} look(s); ledger "
          f"{settings.out_dir / f'settled-{preset}.json'}")
    return summarise(settings.out_dir, preset, failures)


def show_settled(ledger: Ledger, before: Ledger | None, notebooks: list[Notebook], run_look) -> list[str]:
    """Execute again, from the stored runs, each notebook a claim of which this command froze: its look ran it
    before the decision, so it showed the fixed-n test; now it shows the settled verdict (record_claims). It
    runs at the seeds of the last look it took part in; nothing trains."""
    new = {c for c in ledger.settled if before is None or c not in before.settled}
    failures = []
    for nb in notebooks:
        claims = [c for c in claims_of_id(nb.id) if c in new]
        if claims:
            look = max(ledger.settled[c].look if c in ledger.settled else ledger.looks_done
                       for c in claims_of_id(nb.id))
            print(f"settle: notebook {nb.id} again at look {look}'s seeds, to show {', '.join(claims)} settled",
                  flush=True)
            failures += run_look([nb], ledger.seeds(look), force=True)
    return failures


def job_for(study: Study, preset: str, params: dict[str, Any], settings: ExecutionSettings, data: ImageData,
            force: bool) -> Job:
    """A notebook's execution: its parameters, its runs and whether a cached execution serves. The notebook is
    given the settings' folders, executor and Ray address (its runs are trained by then: it loads them)."""
    out_dir = settings.out_dir
    parameters = {"preset": preset, "data_dir": str(settings.data_dir) if settings.data_dir else None,
                  "out_dir": str(out_dir), "executor": settings.executor, "ray_address": settings.ray_address,
                  **params}
    config = study.config.from_preset(preset, **config_values(params))
    configs = [c for _, c in config.plan(data.data_id)]
    key = execution_key(study.path, parameters, data.data_id, [c.key() for c in configs])
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
            "ray_address": "--ray-address", "ensemble": "--ensemble", "compile": "--compile",
            "checkpoint_every": "--checkpoint-every"}  # set by their own options


def validate_params(studies: list[Study], preset: str, params: dict[str, Any],
                    notebook_params: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """For each study, the overrides that apply to it, checked against its notebook's parameter names
    and its config."""
    known = sorted(set().union(*notebook_params.values()) - set(RESERVED))
    # an older notebook's parameter goes to the configs that still read it (RETIRED: translated or refused by name)
    retired = {study.id: set(study.config.RETIRED) for study in studies}
    for name, value in params.items():
        if name in RESERVED:
            raise UsageError(f"set {name} with {RESERVED[name]}, not --param")
        if name not in known and not any(name in names for names in retired.values()):
            raise UsageError(f"unknown parameter {name!r} for notebook(s) {', '.join(notebook_params)}; "
                             f"known: {', '.join(known)}")
        check_execution_param(name, value)
    per_study = {}
    for study in studies:
        mine = {k: v for k, v in params.items() if k in notebook_params[study.id] | retired[study.id]}
        try:
            study.config.from_preset(preset, **{k: v for k, v in mine.items() if k not in EXECUTION_PARAMETERS})
        except ConfigError as err:
            raise ConfigError(f"notebook {study.stem}: {err}") from None
        per_study[study.id] = mine
    return per_study


def check_execution_param(name: str, value: Any) -> None:
    """An execution setting given with --param (workers, device, progress) is checked as ExecutionSettings checks
    it; None keeps its default."""
    if name in SETTINGS_FIELDS and value is not None:
        try:
            ExecutionSettings(**{name: value})
        except ConfigError as err:
            raise UsageError(str(err)) from None
