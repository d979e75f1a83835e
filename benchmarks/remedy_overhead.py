"""What each remedy costs per tuning epoch on an idle CPU: every condition of notebook 11's quick preset (the warm
arm: one pretraining epoch, then `--epochs` tuning epochs), each timed beside a plain warm start trained at the same
moments. A shared machine's CPUs drift by ~10 % over minutes (two runs a few minutes apart differ that much), so
the two runs of a pair take turns epoch by epoch in two processes (one computing at a time, handing over
after each epoch): each tuning epoch of the condition has a plain epoch beside it, seconds apart, and their
ratio is one sample (each phase's first epoch, which holds one-off work, and evaluated epochs left out). Which run
starts each pair is drawn at random. The overhead is the median of all a condition's epoch ratios over `--rounds`
pairs, with a distribution-free 95 % interval for that median (binomial order statistics). Weight decay adds no
work, so its row is the measurement's own noise (goal: the median within +/- 5 %). Notebook 11's `overhead_pct`
comes from two workers sharing the cores, each beside whichever run the other trains; this is the idle-CPU number.

    python -m benchmarks.remedy_overhead [--epochs 6] [--rounds 3] [--only sam,weight_decay] [--device cpu]
"""
import argparse
import multiprocessing
import random
import statistics
import time

import torch
from scipy import stats

from benchmarks.common import describe_machine
from plasticity_nb import load_cifar10
from plasticity_nb.studies import newer_remedies
from plasticity_nb.studies.remedies import NONE
from plasticity_nb.training.runtime import resolve_device
from plasticity_nb.training.train import train_run


def tuning_seconds(history: list[dict], phase: int) -> dict[int, float]:
    """The tuning phase's epoch times by phase epoch, leaving out its first epoch and its evaluated ones."""
    return {r["phase_epoch"]: r["seconds"] for r in history
            if r["phase"] == phase and r["phase_epoch"] > 1 and r["test_acc"] != r["test_acc"]}


def study_of(args: argparse.Namespace) -> newer_remedies.Config:
    return newer_remedies.Config.from_preset("quick", tune_epochs=args.epochs, last_k=1, eval_every=args.epochs)


def warm_config(args: argparse.Namespace, condition: str, data_id: str):
    """The warm-arm config of `condition` (NONE: the plain warm start), one pretraining epoch."""
    study = study_of(args)
    warm, _ = study.arms(condition)
    return study.warm(study.seeds[0], data_id, pretrain_epochs=1, **warm)


def timed_in_turns(me: int, condition: str, args: argparse.Namespace, turns: list, finished, results) -> None:
    """One run of a pair, in its own process (two runs' threads in one process slowed each epoch by ~30 %):
    waits for its turn to start, hands over after every epoch (not once the other has finished), and puts its
    tuning epoch times on `results`."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    config = warm_config(args, condition, data.data_id)

    def hand_over(_) -> None:
        if not finished[1 - me]:
            turns[1 - me].release()
            turns[me].acquire()

    turns[me].acquire()
    try:
        history = train_run(config, data, device, checkpoint=hand_over, checkpoint_every=1).history
    finally:
        finished[me] = 1
        turns[1 - me].release()
    results.put((me, tuning_seconds(history, phase=2)))


def train_in_turns(pair: list[str], args: argparse.Namespace) -> list[dict[int, float]]:
    """The two conditions' tuning epoch times, trained in two processes taking turns epoch by epoch (the first
    starts)."""
    context = multiprocessing.get_context("spawn")
    turns, finished, results = [context.Semaphore(1), context.Semaphore(0)], context.Array("b", 2), context.Queue()
    runs = [context.Process(target=timed_in_turns, args=(me, name, args, turns, finished, results))
            for me, name in enumerate(pair)]
    for run in runs:
        run.start()
    timed = dict(results.get() for _ in runs)
    for run in runs:
        run.join()
        if run.exitcode:
            raise SystemExit(f"a timed run of {pair} failed (exit code {run.exitcode})")
    return [timed[0], timed[1]]


def median_interval(ratios: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the k-th smallest and k-th largest values, k the largest rank
    whose Binomial(n, 1/2) tails leave at least `level` between them; NaN when n is too small for any k."""
    values, n = sorted(ratios), len(ratios)
    k = int(stats.binom.ppf((1 - level) / 2, n, 0.5))  # the smallest j with P(X <= j) >= (1 - level) / 2
    if k == 0:
        return float("nan"), float("nan")
    return values[k - 1], values[n - k]


def percent(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="tuning epochs per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs (condition, plain run) per condition")
    parser.add_argument("--only", default=None, help="comma-separated conditions (default: all of notebook 11's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    remedies = list(study_of(args).remedies)
    if args.only:
        unknown = set(args.only.split(",")) - set(remedies)
        if unknown:
            parser.error(f"--only: unknown conditions {sorted(unknown)}; known: {', '.join(remedies)}")
        remedies = [c for c in remedies if c in args.only.split(",")]
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    study = study_of(args)
    print(f"# {describe_machine(device)}; notebook 11's quick conditions, warm arm, ResNet-18 w{study.width}, "
          f"{study.train_subset} images, batch {study.batch_size}, {args.epochs} tuning epochs, {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads; each pair trained in turns, epoch by epoch")
    ratios: dict[str, list[list[float]]] = {c: [] for c in remedies}
    seconds: dict[str, list[float]] = {c: [] for c in [NONE, *remedies]}
    started = time.perf_counter()
    rng = random.Random(0)
    for _ in range(args.rounds):
        for condition in rng.sample(remedies, len(remedies)):
            pair = [NONE, condition] if rng.random() < 0.5 else [condition, NONE]
            timed = dict(zip(pair, train_in_turns(pair, args)))
            for name in pair:
                seconds[name] += timed[name].values()
            ratios[condition].append([timed[condition][e] / timed[NONE][e] for e in sorted(timed[condition])])
            print(f"  {' first, then '.join(pair):<44}" + " ".join(percent(r) for r in ratios[condition][-1]),
                  flush=True)
    print(f"{'condition':<24}{'median s/epoch':>15}{'overhead':>10}{'95 % interval':>18}   per pair (median)")
    print(f"{NONE:<24}{statistics.median(seconds[NONE]):>15.3f}{0:>+9.1f}%")
    for condition in remedies:
        pooled = [r for pair in ratios[condition] for r in pair]
        low, high = median_interval(pooled)
        each = " ".join(percent(statistics.median(pair)) for pair in ratios[condition])
        print(f"{condition:<24}{statistics.median(seconds[condition]):>15.3f}"
              f"{percent(statistics.median(pooled)):>9}%{f'{percent(low)} to {percent(high)}':>18}   {each}")
    if "weight_decay" in ratios:
        noise = 100 * (statistics.median([r for pair in ratios["weight_decay"] for r in pair]) - 1)
        print(f"weight decay (no added work): {noise:+.1f} % ({'within' if abs(noise) <= 5 else 'outside'} +/-5 %)")
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
