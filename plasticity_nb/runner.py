"""Running configs through the store: cache hits load, misses train, warm starts reuse their prefix.

`run(config)` is the unit of work: a pure function of the config whose result lands in the run store
under the config's hash. A multi-phase run first gets its prefix (the same run minus its last phase)
from the store, training it only if missing, so e.g. one pretraining serves every tuning variant.
`run_many` schedules prefixes before the runs that continue them and can spread runs over worker
processes (on a CPU, two 1-thread processes train narrow nets faster than one 2-thread process).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable

import torch
from tqdm.auto import tqdm

from .config import ConfigError
from .data import CIFAR10, load_cifar10
from .paths import default_out_dir
from .provenance import collect
from .store import RunRecord, RunStore
from .train import RunConfig, resolve_device, train_run


def run(config: RunConfig, out_dir: str | os.PathLike | None = None, data: CIFAR10 | None = None,
        data_dir: str | os.PathLike | None = None, device: str | None = None, progress: bool = False) -> RunRecord:
    """The stored result of `config`, training it (and any missing prefix) first if needed."""
    store = RunStore(out_dir or default_out_dir())
    record = store.load(config)
    if record is not None:
        return record
    start = None
    if len(config.phases) > 1:
        start = run(config.prefix(), out_dir, data, data_dir, device, progress).outcome()
    device = resolve_device(device)
    data = data if data is not None else load_cifar10(data_dir, device)
    if config.data_id and config.data_id != data.data_id:
        raise ConfigError(f"config was made for data {config.data_id!r} but the loaded copy is {data.data_id!r} "
                          f"({data.source})")
    started = time.perf_counter()
    outcome = train_run(config, data, device, start, progress)
    return store.save(config, outcome, collect(device, time.perf_counter() - started, data.source))


def run_many(configs: Iterable[RunConfig], out_dir: str | os.PathLike | None = None,
             data_dir: str | os.PathLike | None = None, device: str | None = None,
             workers: int | None = None, progress: bool = False) -> list[RunRecord]:
    """`run` for every config; missing runs (and missing prefixes) spread over `workers` processes.

    A run starts once its prefix is stored; among the runs ready to start, those that others continue
    from go first, then the longest. `workers=None` chooses automatically (see `auto_workers`).
    """
    configs = list(configs)
    out_dir = Path(out_dir or default_out_dir())
    store = RunStore(out_dir)
    device = resolve_device(device)
    todo: dict[str, RunConfig] = {}  # every missing run and missing prefix, by key
    for config in configs:
        for n in range(1, len(config.phases) + 1):
            prefix = config.replace(phases=config.phases[:n])
            if prefix.key() not in todo and store.load(prefix) is None:
                todo[prefix.key()] = prefix
    workers = auto_workers(device, list(todo.values())) if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    bar = tqdm(total=len(todo), desc="runs", disable=not progress or not todo)
    if workers == 1 or len(todo) <= 1:
        data = load_cifar10(data_dir, device) if todo else None
        for config in sorted(todo.values(), key=lambda c: len(c.phases)):  # prefixes first
            run(config, out_dir, data, data_dir, device, progress)
            bar.update()
    else:
        _run_parallel(todo, workers, out_dir, data_dir, device, bar)
    bar.close()
    return [store.load(c) for c in configs]


def _run_parallel(todo: dict[str, RunConfig], workers: int, out_dir: Path, data_dir, device: torch.device,
                  bar: tqdm) -> None:
    children = {key: sum(c.prefix().key() == key for c in todo.values() if len(c.phases) > 1) for key in todo}
    priority = lambda key: (-children[key], -training_examples(todo[key]))
    pending, running = dict(todo), {}
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")  # fork after OpenMP/torch threads start can hang
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        while pending or running:
            ready = [k for k, c in pending.items() if len(c.phases) == 1 or c.prefix().key() not in todo]
            for key in sorted(ready, key=priority)[: workers - len(running)]:
                config = pending.pop(key)
                running[pool.submit(_run_in_worker, config.to_dict(), str(out_dir), data_dir, str(device))] = key
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raises a worker's exception here
                del todo[running.pop(future)]
                bar.update()


def training_examples(config: RunConfig) -> int:
    """Examples the config's last phase trains on (its prefix is a run of its own): a cost estimate."""
    phase = config.phases[-1]
    return phase.epochs * (config.train_subset // 2 if phase.pool == "half" else config.train_subset)


# Below this many training examples in all, starting worker processes (a few seconds each: import
# torch, load the data) costs more than it saves.
MIN_EXAMPLES_FOR_WORKERS = 200_000


def auto_workers(device: torch.device, todo: list[RunConfig]) -> int:
    """On a CPU, one single-threaded process per core (no more than runs); one process per GPU.

    Single-threaded processes train narrow nets faster in total than one multi-threaded process.
    """
    if device.type == "cuda" or sum(map(training_examples, todo)) < MIN_EXAMPLES_FOR_WORKERS:
        return 1
    return max(1, min(torch.get_num_threads(), len(todo)))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_in_worker(config: dict, out_dir: str, data_dir: str | None, device: str) -> str:
    return run(RunConfig.from_dict(config), out_dir, None, data_dir, device).key
