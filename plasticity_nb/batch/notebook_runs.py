"""The batch's sweep: results as they come.

Notebooks go in order (01 first). For each, its missing runs train (`run_many` trains shared pretraining
prefixes before the runs that continue them), then the notebook is handed to one background thread that
executes it with papermill (or restores it from the execution cache) and updates claims.csv and report.md,
while the next notebook's runs train. Other batches on the same output folder (and their notebook kernels) may
write the same files meanwhile: each is written atomically, and the ones read and rewritten (claims.csv, the
report made from it, the execution cache) under a lock (files.py).
"""
from __future__ import annotations

import dataclasses
import errno
import shutil
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch

from ..core.files import FULL_DISK, copy_atomic, locked
from ..execution import eta
from ..execution.runner import auto_workers, missing_runs, run_many
from ..execution.settings import ExecutionSettings
from ..execution.store import RunStore
from ..run.run_config import RunConfig
from ..studies import Study
from ..studies.study_config import StudyConfig
from ..studies.study_runs import load_study
from ..training.runtime import resolve_device
from ..views.report import write_report
from .notebook_cache import NotebookCache

KERNEL = "plasticity-nb"  # installed into this environment; always passed to papermill explicitly


@dataclasses.dataclass
class Job:
    """One notebook of the batch: what it is run with, the runs it loads, and its execution-cache key."""

    study: Study
    parameters: dict[str, Any]  # papermill's
    config: StudyConfig
    configs: list[RunConfig]  # its plan's runs
    key: str
    reuse: bool  # its cached execution is reused (no kernel, nothing to train)


def run_batch(jobs: list[Job], preset: str, data_id: str, settings: ExecutionSettings) -> list[str]:
    """Train and execute every job; return the failure messages (empty when all notebooks ran). `settings`: the
    command line's, whole, with the output folder resolved."""
    finisher = Finisher(jobs, preset, data_id, settings.out_dir)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebooks")
    futures: list[Future] = []
    try:
        for job in trained_in_order(jobs, settings):
            futures.append(pool.submit(finisher.finish, job))
        return [failure for future in futures if (failure := future.result())]
    finally:
        # On Ctrl-C: notebooks not started are dropped, the one executing ends (its kernel got the
        # same SIGINT) before the batch exits.
        pool.shutdown(wait=True, cancel_futures=True)


def train_all(jobs: list[Job], settings: ExecutionSettings) -> None:
    """Train every job's missing runs and execute nothing (`--train-only`)."""
    for _ in trained_in_order(jobs, settings):
        pass


def trained_in_order(jobs: list[Job], settings: ExecutionSettings) -> Iterator[Job]:
    """Print the plan, then train the jobs' missing runs notebook by notebook, yielding each job once its runs
    are stored; at the end, how long the training took against the plan's estimate."""
    store = RunStore(settings.out_dir)
    (estimated, timings), started = print_plan(jobs, store, settings), time.perf_counter()
    for position, job in enumerate(jobs):
        train(job, store, settings, jobs[position + 1:], timings)
        yield job
    if estimated:
        took = time.perf_counter() - started
        print(f"plan: training took {eta.format_duration(took)} against the {eta.format_duration(estimated)} "
              f"estimated at the start ({100 * (took / estimated - 1):+.0f} %)", flush=True)


def to_train(jobs: list[Job], store: RunStore) -> list[RunConfig]:
    return list(missing_runs([c for job in jobs for c in job.configs], store).values())


def print_plan(jobs: list[Job], store: RunStore,
               settings: ExecutionSettings) -> tuple[float, dict[tuple, eta.StepTiming]]:
    """Print what the batch trains and how long it should take, in all and per notebook (timing a few steps of
    each model size no stored run measures); return the estimate in seconds (0: none) and the timings."""
    runs = {c.key(): c for job in jobs for c in job.configs}
    stored = sum(store.has(c) for c in runs.values())
    todo = to_train(jobs, store)
    reused = [job.study.id for job in jobs if job.reuse]
    print(f"plan: notebook(s) {', '.join(job.study.id for job in jobs)}: {len(runs)} runs, {stored} in the store, "
          f"{len(todo)} to train (pretraining prefixes included); "
          f"{len(reused)} notebook(s) reused from {settings.out_dir / 'notebook-cache'}"
          + (f" ({', '.join(reused)})" if reused else ""), flush=True)
    workers = workers_for(todo, settings)
    rates = eta.seconds_per_example(store)
    timings = eta.timings_for(todo, rates, settings.device, max(1, torch.get_num_threads() // workers),
                              settings.compile)
    print(f"plan: {eta.describe(todo, store, workers, timings)}", flush=True)
    counted: set[str] = set()
    for job in jobs if len(jobs) > 1 else []:  # each run counted under the first notebook that trains it
        own = [c for c in to_train([job], store) if c.key() not in counted]
        counted |= {c.key() for c in own}
        if own:
            print(f"plan: [{job.study.id}] {len(own)} run(s), {eta.describe(own, store, workers, timings)}", flush=True)
    return eta.estimate(todo, rates, workers, timings)[0], timings


def workers_for(todo: list[RunConfig], settings: ExecutionSettings) -> int:
    return settings.workers or auto_workers(resolve_device(settings.device), todo)


def train(job: Job, store: RunStore, settings: ExecutionSettings, later: list[Job],
          timings: dict[tuple, eta.StepTiming] | None = None) -> None:
    """Train the job's missing runs, then say what is left and how long it should take."""
    todo = to_train([job], store)
    if not todo:
        return
    print(f"[{job.study.id}] {job.study.stem}: training {len(todo)} run(s)", flush=True)
    started = time.perf_counter()
    run_many(job.configs, settings)
    left = to_train(later, store)
    rest = f"; left: {len(left)} run(s), {eta.describe(left, store, workers_for(left, settings), timings)}"
    print(f"[{job.study.id}] {job.study.stem}: {len(todo)} run(s) trained in {time.perf_counter() - started:.0f} s"
          + (rest if left else ""), flush=True)


class Finisher:
    """Executes (or restores) one notebook after another and updates the report after each."""

    def __init__(self, jobs: list[Job], preset: str, data_id: str, out_dir: Path):
        self.jobs, self.preset, self.data_id, self.out_dir = jobs, preset, data_id, out_dir
        self.cache = NotebookCache(out_dir)
        self.timings: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {}

    def finish(self, job: Job) -> str | None:
        started = time.time()
        final = self.out_dir / "notebooks" / job.study.notebook
        if job.reuse and self.cache.has(job.key):
            self.cache.restore(job.key, self.preset, final)
            print(f"[{job.study.id}] {job.study.stem}: unchanged, reused its executed notebook -> {final}", flush=True)
            failure = None
        else:
            failure = execute(job.study, job.parameters, final)
            if failure is None:
                self.cache.save(job.key, final, job.study.stem, self.preset,
                                figures_written(self.out_dir, job.study.stem, self.preset, started))
        self.timings.append(notebook_timing(job, self.jobs, self.out_dir, time.time() - started))
        if (result := load_study(job.config, self.out_dir, self.data_id)) is not None:
            self.results[job.study.stem] = result
        write_report(self.out_dir, self.preset, pd.DataFrame(self.timings), self.results)
        return failure


def figures_written(out_dir: Path, stem: str, preset: str, since: float) -> list[Path]:
    """The notebook's figures (named `<stem>_<preset>_<name>.<ext>`) saved since it started."""
    return [p for p in sorted((out_dir / "figures").glob(f"{stem}_{preset}_*")) if p.stat().st_mtime >= since]


def notebook_timing(job: Job, jobs: list[Job], out_dir: Path, notebook_seconds: float) -> dict[str, Any]:
    """Training time of the runs this notebook is first to need (earlier notebooks may share runs), and
    the time to execute the notebook itself (loading its runs, plotting), or to restore it from the cache."""
    earlier = {c.key() for other in jobs if other.study.id < job.study.id for c in other.configs}
    store, own = RunStore(out_dir), {}
    for config in job.configs:
        for n in range(1, len(config.phases) + 1):  # a warm run's pretraining prefix is a run of its own
            prefix = config.truncated(n)
            if prefix.key() not in earlier and (provenance := store.provenance(prefix)) is not None:
                own[prefix.key()] = provenance["wall_seconds"]
    return {"notebook": job.study.stem, "runs": len({c.key() for c in job.configs}), "new runs": len(own),
            "training (worker-min)": round(sum(own.values()) / 60, 1),
            "notebook execution (s)": round(notebook_seconds), "reused": job.reuse}


def ensure_kernel() -> None:
    """Install the `plasticity-nb` kernel for this Python into this environment if it is missing or stale, under a
    lock: installing replaces the kernel's folder, which a batch beside this one may be starting a kernel from."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def current() -> bool:
        try:
            return Path(KernelSpecManager().get_kernel_spec(KERNEL).argv[0]).resolve() == Path(sys.executable).resolve()
        except NoSuchKernel:
            return False

    if current():
        return
    from ipykernel.kernelspec import install

    with locked(Path(sys.prefix) / "share" / "jupyter" / f".{KERNEL}-kernel.lock"):
        if not current():
            install(kernel_name=KERNEL, display_name="Python (plasticity_nb)", prefix=sys.prefix)


def execute(study: Study, parameters: dict[str, Any], final: Path) -> str | None:
    """Run one notebook into `final`; return None on success, else a message naming the failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    scratch = Path(tempfile.mkdtemp(prefix=f"plasticity-{study.stem}-"))
    partial = scratch / study.notebook
    print(f"[{study.id}] {study.stem}: running (preset {parameters['preset']})...", flush=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(study.path), str(partial), parameters=parameters, kernel_name=KERNEL,
                                   cwd=str(study.path.parent), progress_bar=False)
    except PapermillExecutionError as err:
        if any(f"[Errno {code}]" in err.evalue for code in FULL_DISK):  # the kernel wrote a figure or claims.csv
            shutil.rmtree(scratch, ignore_errors=True)
            raise OSError(errno.ENOSPC, f"notebook {study.stem}: {err.evalue}", str(final.parent.parent)) from None
        first_line = (err.source or "").strip().splitlines()[:1]
        return (f"[{study.id}] {study.stem} FAILED in cell {err.exec_count} ({first_line[0] if first_line else ''!s}):"
                f" {err.ename}: {err.evalue}\n      the partial notebook is kept at {partial}")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_atomic(partial, final)  # another batch on this output folder may be writing the same notebook
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"[{study.id}] {study.stem}: done in {time.perf_counter() - started:.0f} s -> {final}", flush=True)
    return None
