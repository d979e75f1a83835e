"""What each remedy costs per tuning epoch, timed alone: every condition of notebook 11's quick preset (the warm
arm: one pretraining epoch, then `--epochs` tuning epochs), trained one at a time in this process, in `--rounds`
rounds of shuffled order, each condition's median tuning-epoch time against the plain warm start's (evaluation
epochs and each phase's first epoch, which holds one-off work, left out). Weight decay adds no work, so its row
is the measurement's own noise (goal: within +/- 5 %). Notebook 11's `overhead_pct` comes from two workers
sharing the cores, each beside whichever run the other trains; this is the idle-CPU number.

    python -m benchmarks.remedy_overhead [--epochs 4] [--rounds 3] [--device cpu]
"""
import argparse
import random
import statistics
import time

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
    parser.add_argument("--rounds", type=int, default=3, help="times each condition is trained")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    study = newer_remedies.Config.from_preset("quick", tune_epochs=args.epochs, last_k=1, eval_every=args.epochs)
    conditions = [NONE, *study.remedies]
    configs = {}
    for condition in conditions:
        warm, _ = study.arms(condition)
        configs[condition] = study.warm(study.seeds[0], data.data_id, pretrain_epochs=1, **warm)
    print(f"# {describe_machine(device)}; notebook 11's quick conditions, warm arm, ResNet-18 w{study.width}, "
          f"{study.train_subset} images, batch {study.batch_size}, {args.epochs} tuning epochs, {args.rounds} rounds")
    times: dict[str, list[float]] = {c: [] for c in conditions}
    started = time.perf_counter()
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = conditions[:]
        rng.shuffle(order)
        for condition in order:
            outcome = train_run(configs[condition], data, device)
            times[condition] += epoch_seconds(outcome.history, phase=2)
    base = statistics.median(times[NONE])
    print(f"{'condition':<22}{'median s/epoch':>15}{'overhead':>10}")
    for condition in conditions:
        median = statistics.median(times[condition])
        print(f"{condition:<22}{median:>15.3f}{100 * (median / base - 1):>+9.1f}%")
    noise = 100 * (statistics.median(times["weight_decay"]) / base - 1)
    print(f"weight decay (no added work): {noise:+.1f} % ({'within' if abs(noise) <= 5 else 'outside'} +/-5 %); "
          f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
