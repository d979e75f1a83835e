"""Running configs through the store: cache hits load, misses train, warm starts reuse their prefix.

`run(config)` is the unit of work: a pure function of the config whose result lands in the run store
under the config's hash. A multi-phase run first gets its prefix (the same run minus its last phase)
from the store, training it only if missing, so e.g. one pretraining serves every tuning variant.
`run_many` schedules prefixes before the runs that continue them and can spread runs over worker
processes (on a CPU, two 1-thread processes train narrow nets faster than one 2-thread process).
Where and how runs train is one value, `ExecutionSettings` (settings.py), passed whole down to every worker.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import time
from pathlib import Path
from typing import Any, Iterable

import torch
from tqdm.auto import tqdm

from ..core.config import ConfigError
from ..core.paths import default_out_dir
from ..data.images import ImageData, load_dataset
from ..run.remedy import defining_modules
from ..run.run_config import RunConfig
from ..run.run_state import RunOutcome
from ..training.ensemble import members_of, refusal, train_ensemble
from ..training.run_tensors import check_fits
from ..training.runtime import resolve_device, share_compile_cache
from ..training.train import train_run
from .executors import LocalExecutor, RayExecutor
from .provenance import collect, now, whereabouts
from .settings import ExecutionSettings, settings_for
from .store import CorruptRun, RunRecord, RunStore, print_store_warnings_plainly


def run(config: RunConfig, settings: ExecutionSettings | None = None, data: ImageData | None = None,
        **overrides: Any) -> RunRecord:
    """The stored result of `config`, training it (and any missing prefix) first if needed.

    `settings` say where and how (default: `ExecutionSettings()`); keyword `overrides` change some of them by name
    (`run(config, out_dir=...)`). Safe to call from several processes on one output folder: a per-run lock makes
    sure a config is trained by one process at a time, and the others then load its result. A run killed part-way
    continues from its last checkpoint and ends with the same history as an uninterrupted one. Without `data`,
    the config's dataset is loaded (from the settings' `data_dir`: the folder of that dataset's copy).
    """
    settings = settings_for("run", settings, overrides)
    store = RunStore(settings.out_dir or default_out_dir())
    record = store.load(config)
    if record is not None:
        return record
    store.refuse_if_bundle(f"train run {config.key()}, which it does not hold")  # before loading any data
    start = None
    if len(config.phases) > 1:
        start = continued_from(config.prefix(), settings, data)
    device = resolve_device(settings.device)
    data = data if data is not None else load_dataset(config.dataset, settings.data_dir, device)
    check_fits(config, data)
    data.decode()  # images are decoded lazily: a corrupt image array fails here, before anything is written
    store.ensure_writable()
    with store.lock(config):
        record = store.load(config)  # another process may have finished it while we waited for the lock
        if record is not None:
            return record
        resume = store.load_checkpoint(config)
        resumed_from = {"phase": resume.phase_index + 1, "epoch": resume.epoch} if resume else {}
        store.log("resume" if resume else "start", config, **resumed_from)
        attempts = store.record_attempt(config, {**whereabouts(), "started_at": now(), **resumed_from})
        share_compile_cache(store.root.parent)
        started = time.perf_counter()
        outcome = train_run(config, data, device, start, bool(settings.progress), resume,
                            checkpoint=lambda state: store.save_checkpoint(config, state),
                            checkpoint_every=settings.checkpoint_every, compile_setting=settings.compile)
        provenance = {**collect(device, time.perf_counter() - started, data.source), "compile": outcome.compile,
                      "channels_last": outcome.channels_last, "narrow_norm": outcome.narrow_norm,
                      "narrow_conv": outcome.narrow_conv}
        if resume:
            provenance["resumed_from"] = resumed_from
        provenance["attempts"] = attempts  # more than one: a killed worker's run was retried (docs/cluster.md)
        record = store.save(config, outcome, provenance)  # discards the checkpoint
        store.log("finish", config, status=outcome.status)
        return record


def continued_from(prefix: RunConfig, settings: ExecutionSettings, data: ImageData | None) -> RunOutcome:
    """The outcome a run continues from: its stored prefix, trained first if missing, or again if its weights
    fail their check as they are read (the store sets it aside)."""
    try:
        return run(prefix, settings, data).outcome()
    except CorruptRun:
        return run(prefix, settings, data).outcome()


def run_many(configs: Iterable[RunConfig], settings: ExecutionSettings | None = None,
             **overrides: Any) -> list[RunRecord]:
    """`run` for every config; missing runs (and missing prefixes) spread over worker processes.

    `settings` say where and how (default: `ExecutionSettings()`); keyword `overrides` change some of them by name
    (`run_many(configs, workers=2)`). `executor="local"`: `workers` processes on this machine (None: automatic, see
    `auto_workers`; 1 runs in this process). `executor="ray"`: Ray tasks on the cluster at `ray_address` (None: a
    local Ray cluster of `workers` CPUs). Either way every worker gets these settings whole. A run starts once its
    prefix is stored; among the runs ready to start, those that others continue from go first, then the longest.
    `ensemble=True` trains runs that differ only by seed together as one vmapped model, in this process (see
    `ensemble.py`; meant for a GPU); runs the ensemble cannot train go alone, and what needs them alone is printed
    by name.
    """
    settings = settings_for("run_many", settings, overrides)
    configs = list(configs)
    device = resolve_device(settings.device)
    # resolved once, here: every run and worker process then uses this folder and device
    settings = settings.replace(out_dir=Path(settings.out_dir or default_out_dir()), device=str(device))
    store = RunStore(settings.out_dir)
    store.discard_leftovers()
    todo = missing_runs(configs, store)
    if todo:
        store.refuse_if_bundle(f"train the {len(todo)} run(s) these configs need that it does not hold")
    workers = settings.workers or auto_workers(device, list(todo.values()))
    data = loaded_data(list(todo.values()), settings.data_dir, device)  # `run` decodes the images before it writes
    bar = tqdm(total=len(todo), desc="runs", disable=not settings.progress or not todo)  # None: no bars
    if settings.ensemble:
        say_who_trains_alone(list(todo.values()))
        for depth in sorted({len(c.phases) for c in todo.values()}):  # prefixes first
            for group in members_of([c for c in todo.values() if len(c.phases) == depth]).values():
                run_together(group, settings, data[group[0].dataset].decode())  # a group is on one dataset
                bar.update(len(group))
    elif settings.executor == "local" and (workers == 1 or len(todo) <= 1 or defined_here(list(todo.values()))):
        for config in sorted(todo.values(), key=lambda c: len(c.phases)):  # prefixes first
            run(config, settings, data[config.dataset])
            bar.update()
    elif todo:
        threads = max(1, torch.get_num_threads() // workers)
        pool = (LocalExecutor(workers, threads, execute_run) if settings.executor == "local"
                else RayExecutor(settings.ray_address, workers, threads, device.type == "cuda", execute_run))
        try:
            _run_dag(todo, pool, settings.replace(progress=False), bar)  # a worker's bars would interleave
        finally:
            pool.close()
    bar.close()
    return [store.load(c) for c in configs]


def loaded_data(configs: list[RunConfig], data_dir: str | os.PathLike | None,
                device: torch.device) -> dict[str, ImageData]:
    """Each dataset the configs train on (its labels and fingerprint; the images load when first used), checked
    against every config on it before any run starts. `data_dir` is one dataset's folder, so it serves one dataset."""
    names = sorted({c.dataset for c in configs})
    if data_dir is not None and len(names) > 1:
        raise ConfigError(f"data_dir {data_dir} holds one dataset, but the runs are on {', '.join(names)}: run each "
                          "dataset's runs with its own folder")
    data = {name: load_dataset(name, data_dir, device) for name in names}
    for config in configs:
        check_fits(config, data[config.dataset])
    return data


def defined_here(configs: list[RunConfig]) -> bool:
    """Whether a remedy of the configs is defined in __main__ (a notebook or script), which worker processes cannot
    import: then the runs train in this process, and it says so."""
    here = sorted({r.NAME for c in configs for p in c.phases for r in p.remedies if type(r).__module__ == "__main__"})
    if here:
        print(f"runs: remedy {', '.join(here)} is defined in __main__ (a notebook or script), which worker "
              "processes cannot import, so the runs train in this process (define it in a module to use workers)",
              flush=True)
    return bool(here)


def say_who_trains_alone(configs: list[RunConfig]) -> None:
    """One line per reason an ensemble refuses runs (ensemble.refusal), with how many it sends to train alone."""
    alone: dict[str, int] = {}
    for config in configs:
        if why := refusal(config):
            alone[why] = alone.get(why, 0) + 1
    for why, count in alone.items():
        print(f"ensemble: {count} run(s) train alone: each needs a model of its own for {why}", flush=True)


def missing_runs(configs: Iterable[RunConfig], store: RunStore) -> dict[str, RunConfig]:
    """Every run the configs need that is not stored, by key: the configs themselves and their missing
    prefixes (a warm run's pretraining is a run of its own)."""
    todo: dict[str, RunConfig] = {}
    for config in configs:
        for n in range(1, len(config.phases) + 1):
            prefix = config.truncated(n)
            if prefix.key() not in todo and not store.has(prefix):
                todo[prefix.key()] = prefix
    return todo


def execute_run(config: dict, modules: tuple[str, ...], settings: ExecutionSettings, threads: int) -> str:
    """One run in a worker: the unit of work every executor ships (picklable: a config as a dict, the modules
    that register its remedies, imported first, and the batch's execution settings, whole)."""
    print_store_warnings_plainly()
    for module in modules:
        importlib.import_module(module)
    torch.set_num_threads(threads)
    return run(RunConfig.from_dict(config), settings).key


def run_together(configs: list[RunConfig], settings: ExecutionSettings, data: ImageData) -> None:
    """Train configs that differ only by seed as one ensemble and store each member as its own run."""
    if len(configs) == 1:
        run(configs[0], settings, data)
        return
    store, device = RunStore(settings.out_dir or default_out_dir()), resolve_device(settings.device)
    starts = ([continued_from(c.prefix(), settings, data) for c in configs]
              if len(configs[0].phases) > 1 else None)
    with contextlib.ExitStack() as locks:
        for config in configs:
            locks.enter_context(store.lock(config))
        share_compile_cache(store.root.parent)
        started = time.perf_counter()
        outcomes = train_ensemble(configs, data, device, starts, compile_setting=settings.compile)
        seconds = time.perf_counter() - started
        for config, outcome in zip(configs, outcomes):
            provenance = {**collect(device, seconds / len(configs), data.source), "ensemble_members": len(configs),
                          "channels_last": outcome.channels_last, "narrow_norm": outcome.narrow_norm,
                          "narrow_conv": outcome.narrow_conv}
            store.save(config, outcome, provenance)
            store.log("finish", config, status=outcome.status, ensemble=len(configs))


def _run_dag(todo: dict[str, RunConfig], pool, settings: ExecutionSettings, bar: tqdm) -> None:
    """Keep `pool.slots` runs going; a run is ready once its prefix is no longer to do."""
    todo = dict(todo)
    children = {key: sum(c.prefix().key() == key for c in todo.values() if len(c.phases) > 1) for key in todo}
    priority = lambda key: (-children[key], -training_examples(todo[key]))
    pending, running = dict(todo), {}
    while pending or running:
        ready = [k for k, c in pending.items() if len(c.phases) == 1 or c.prefix().key() not in todo]
        for key in sorted(ready, key=priority)[: pool.slots - len(running)]:
            config = pending.pop(key)
            running[pool.submit(config.to_dict(), defining_modules(config), settings)] = key
        for handle in pool.wait_any(list(running)):
            pool.result(handle)
            del todo[running.pop(handle)]
            bar.update()


def training_examples(config: RunConfig) -> int:
    """Examples the config's last phase trains on (its prefix is a run of its own): a cost estimate, at its most
    where a target may end it sooner. A part counts the examples its steps train on (FIRE's 10 % trains ten times the
    epochs of the whole subset, each short of its partial batch, a large share of a small part); a multi-stage set
    counts as the whole subset, as it always did."""
    phase = config.phases[-1]
    if phase.pool == "part":
        return phase.most_epochs * (config.pool_size_bound(phase) // config.batch_size) * config.batch_size
    return phase.most_epochs * (config.train_subset // 2 if phase.pool == "half" else config.train_subset)


# Below this many training examples in all, starting worker processes (a few seconds each: import
# torch, load the data) costs more than it saves.
MIN_EXAMPLES_FOR_WORKERS = 200_000


# Widths up to this are bound by kernel launches on a GPU: one process leaves it mostly idle.
NARROW_ON_GPU = 16


def auto_workers(device: torch.device, todo: list[RunConfig]) -> int:
    """On a CPU, one single-threaded process per core (no more than runs). On a GPU, one process for wide
    nets; for narrow ones, processes on three quarters of the cores share the GPU (12 of 16 trained the quick
    study on an H200, benchmarks/RESULTS.md), the rest feed them.

    Single-threaded processes train narrow nets faster in total than one multi-threaded process.
    """
    if sum(map(training_examples, todo)) < MIN_EXAMPLES_FOR_WORKERS:
        return 1
    if device.type == "cuda":
        if max(c.width for c in todo) > NARROW_ON_GPU:
            return 1
        return max(1, min((os.cpu_count() or 1) * 3 // 4, len(todo)))
    return max(1, min(torch.get_num_threads(), len(todo)))
