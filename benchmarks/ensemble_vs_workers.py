"""`run --ensemble` against solo workers for the quick model, through the runner, in one process.

The quick preset's scratch runs (ResNet-18 w8, 5,000 images, the machine's native precision, notebook 01's
evaluation schedule) for S seeds, with `--epochs` tuning epochs, each arm into a fresh store:
- ensemble: `run_many(ensemble=True)`, the S seeds as one vmapped model in this process;
- workers:  `run_many(workers=<cores>)`, one single-threaded process per core (forced: the automatic rule
  trains fewer than 200,000 examples in one process, which would make this arm the third);
- one process: `run_many(workers=1)`, the seeds one after another.
Prints each arm's wall time, training images/s and the ratio to the workers arm, and each arm's mean final test
accuracy (an ensemble's runs are not bitwise a solo run's: they should agree within seed noise).

    python -m benchmarks.ensemble_vs_workers [--sizes 4 8] [--epochs 5]
"""
import argparse
import math
import tempfile
import time

import torch

from benchmarks.common import describe_machine
from plasticity_nb import load_cifar10
from plasticity_nb.execution.runner import run_many
from plasticity_nb.studies.study_config import WarmStartConfig

ARMS = {"ensemble": dict(ensemble=True), "workers": dict(workers=torch.get_num_threads()),
        "one process": dict(workers=1)}


def timed_arm(configs, data_dir, options) -> tuple[float, float]:
    """(wall seconds, mean final test accuracy %) of training `configs` into a fresh store."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        records = run_many(configs, out_dir=out, data_dir=data_dir, device="cpu", **options)
        seconds = time.perf_counter() - started
    return seconds, 100 * sum(r.history["test_acc"].dropna().iloc[-1] for r in records) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--epochs", type=int, default=5, help="tuning epochs of each scratch run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    args = parser.parse_args()
    data = load_cifar10(args.data_dir)
    study = WarmStartConfig(**{**WarmStartConfig.PRESETS["quick"], "tune_epochs": args.epochs,
                               "last_k": min(args.epochs, WarmStartConfig.PRESETS["quick"]["last_k"])})
    print(f"# {describe_machine(torch.device('cpu'))}; {torch.get_num_threads()} threads; quick scratch runs "
          f"(ResNet-18 w{study.width}, {study.train_subset} images, {args.epochs} epochs, "
          f"precision {study.scratch(0).precision})")
    timed_arm([study.scratch(10_000, data.data_id)], args.data_dir, {})  # warm-up: imports, data decode
    for size in args.sizes:
        configs = [study.scratch(seed, data.data_id) for seed in range(size)]
        images = size * args.epochs * (study.train_subset // study.batch_size) * study.batch_size
        results = {arm: timed_arm(configs, args.data_dir, ARMS[arm]) for arm in args.arms}
        base = results["workers"][0] if "workers" in results else math.nan
        for arm, (seconds, accuracy) in results.items():
            print(f"S={size} {arm:>11}: {seconds:7.1f} s, {images / seconds:6.0f} img/s, "
                  f"{base / seconds:4.2f}x the workers' speed, mean final test acc {accuracy:5.2f} %", flush=True)


if __name__ == "__main__":
    main()
