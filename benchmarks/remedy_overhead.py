"""What each remedy costs per tuning epoch, timed alone: every condition of notebook 11's quick preset (the warm
arm: one pretraining epoch, then `--epochs` tuning epochs), trained one at a time in this process. The CPUs of a
shared machine drift by ~10 % over minutes (runs of the same config a few minutes apart differ that much), so
each condition is timed beside the plain warm start: in every round, each condition and a plain run are trained
back to back (which goes first drawn at random), and the round's ratio is the condition's median tuning-epoch time
over the plain run's (each phase's first epoch, which holds one-off work, and evaluated epochs left out). The
overhead is the median ratio over `--rounds` rounds. Weight decay adds no work, so its row is the measurement's
own noise (goal: within +/- 5 %). Notebook 11's `overhead_pct` comes from two workers sharing the cores, each
beside whichever run the other trains; this is the idle-CPU number.

    python -m benchmarks.remedy_overhead [--epochs 4] [--rounds 3] [--only sam,weight_decay] [--device cpu]
"""
import argparse
import random
import statistics
import time

import torch

from benchmarks.common import describe_machine
from plasticity_nb import load_cifar10
from plasticity_nb.studies import newer_remedies
from plasticity_nb.studies.remedies import NONE
from plasticity_nb.training.runtime import resolve_device
from plasticity_nb.training.train import train_run


def epoch_seconds(history: list[dict], phase: int) -> list[float]:
    """The tuning phase's epoch times, leaving out its first epoch and its evaluated ones."""
    rows = [r for r in history if r["phase"] == phase and r["phase_epoch"] > 1 and r["test_acc"] != r["test_acc"]]
    return [r["seconds"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="tuning epochs per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs (condition, plain run) per condition")
    parser.add_argument("--only", default=None, help="comma-separated conditions (default: all of notebook 11's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    study = newer_remedies.Config.from_preset("quick", tune_epochs=args.epochs, last_k=1, eval_every=args.epochs)
    remedies = list(study.remedies)
    if args.only:
        unknown = set(args.only.split(",")) - set(remedies)
        if unknown:
            parser.error(f"--only: unknown conditions {sorted(unknown)}; known: {', '.join(remedies)}")
        remedies = [c for c in remedies if c in args.only.split(",")]
    configs = {}
    for condition in [NONE, *remedies]:
        warm, _ = study.arms(condition)
        configs[condition] = study.warm(study.seeds[0], data.data_id, pretrain_epochs=1, **warm)
    print(f"# {describe_machine(device)}; notebook 11's quick conditions, warm arm, ResNet-18 w{study.width}, "
          f"{study.train_subset} images, batch {study.batch_size}, {args.epochs} tuning epochs, {args.rounds} rounds")
    ratios: dict[str, list[float]] = {c: [] for c in remedies}
    seconds: dict[str, list[float]] = {c: [] for c in [NONE, *remedies]}
    started = time.perf_counter()
    rng = random.Random(0)
    for _ in range(args.rounds):
        for condition in rng.sample(remedies, len(remedies)):
            pair = [NONE, condition] if rng.random() < 0.5 else [condition, NONE]
            medians = {}
            for name in pair:
                samples = epoch_seconds(train_run(configs[name], data, device).history, phase=2)
                seconds[name] += samples
                medians[name] = statistics.median(samples)
            ratios[condition].append(medians[condition] / medians[NONE])
            print(f"  {' then '.join(pair):<36}{medians[condition]:.3f} / {medians[NONE]:.3f} s", flush=True)
    print(f"{'condition':<22}{'median s/epoch':>15}{'overhead':>10}   per round")
    print(f"{NONE:<22}{statistics.median(seconds[NONE]):>15.3f}{0:>+9.1f}%")
    for condition in remedies:
        each = " ".join(f"{100 * (r - 1):+.1f}" for r in ratios[condition])
        print(f"{condition:<22}{statistics.median(seconds[condition]):>15.3f}"
              f"{100 * (statistics.median(ratios[condition]) - 1):>+9.1f}%   {each}")
    if "weight_decay" in ratios:
        noise = 100 * (statistics.median(ratios["weight_decay"]) - 1)
        print(f"weight decay (no added work): {noise:+.1f} % ({'within' if abs(noise) <= 5 else 'outside'} +/-5 %)")
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
