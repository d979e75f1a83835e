"""The pilot that fixes the train-to-target rule's cap and window at quick (issue 35), on train accuracy alone.

Both arms (warm: 10 epochs on the half, then tuning; scratch: tuning alone) at notebook 01's cell (5,000 images,
ResNet width 8) and at notebook 12's other quick cells, each tuning phase trained until an epoch's train accuracy
reaches 99 % (Ash & Adams' target, JordanAsh/warm_start run.py:158-176) within a pilot cap of 60 epochs, then a
window of 5 epochs. Seeds 900-903 at notebook 01's cell, 900-902 at the others: the pilot block, never a claim's.
Nothing about the test set is read or printed; the run store is a temporary folder, removed at the end.

The rule, written here before the pilot ran (2026-12-06):
- cap per cell: the smallest multiple of 5 at least 1.5 x the largest epoch-to-target of the cell's pilot runs
  (both arms), at most 60; a cell where a pilot run does not reach 99 % by 60 keeps 60 and is reported as one
  that does not fit by construction (its capped runs are flagged, as every capped run is).
- window: k = 5 epochs (the quick presets' last_k). Its summary stays the mean unless more than 10 % of the pilot's
  windows hold a spike epoch (train accuracy more than 5 points below the window's median): then the median.
- notebook 01's cap is its cell's; every other quick study whose tuning budget was fixed per optimiser, learning
  rate or cell takes the larger of that budget and its cell's cap (a cap only costs epochs a run needs).
- the cost per seed is the CPU time of notebook 01's pair (warm and scratch) at one worker of two.

    python -m benchmarks.fit_pilot [--workers 2] [--cap 60]          # log: fit-pilot-cpu-<cpu>-<date>/
"""
import argparse
import math
import shutil
import statistics
import tempfile

import torch

from benchmarks.common import describe_machine
from plasticity_nb.data.cifar10 import load_cifar10
from plasticity_nb.execution.runner import run_many
from plasticity_nb.studies.scale import Config

TARGET, WINDOW = 99.0, 5
BASE_SEEDS, OTHER_SEEDS = (900, 901, 902, 903), (900, 901, 902)
SPIKE_POINTS, SPIKE_SHARE = 5.0, 0.10


def cell_seeds(cell, study) -> tuple[int, ...]:
    return BASE_SEEDS if (cell.train_subset, cell.width) == (study.train_subset, study.width) else OTHER_SEEDS


def cap_of(reached: list[int | None], pilot_cap: int) -> int:
    """The rule above: the smallest multiple of 5 >= 1.5 x the slowest run's epoch-to-target, at most the pilot cap."""
    if any(r is None for r in reached):
        return pilot_cap
    return min(pilot_cap, 5 * math.ceil(1.5 * max(reached) / 5))


def has_spike(window: list[float]) -> bool:
    return min(window) < statistics.median(window) - SPIKE_POINTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=int, default=60, help="the pilot's own cap on reaching the target (epochs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="run store to keep (default: a temporary folder, removed)")
    args = parser.parse_args()
    study = Config.from_preset("quick").replace(budget="target", fit_target=TARGET, last_k=WINDOW, eval_every=args.cap)
    data = load_cifar10(None, "cpu")
    plan = []
    for cell in study.cells:
        tune = dict(epochs=args.cap)
        for seed in cell_seeds(cell, study):
            plan.append((cell, seed, "warm", study.warm(seed, data.data_id, pretrain_epochs=cell.pretrain_epochs,
                                                        tune=tune, **cell.condition)))
            plan.append((cell, seed, "scratch", study.scratch(seed, data.data_id, tune=tune, **cell.condition)))
    machine = describe_machine(torch.device("cpu"))
    print(f"# {machine}; fit pilot: target {TARGET} %, pilot cap {args.cap}, window {WINDOW}", flush=True)
    store = args.out or tempfile.mkdtemp(prefix="fit-pilot-")
    records = run_many([c for *_, c in plan], out_dir=store, device="cpu", workers=args.workers, progress=False)
    windows, by_cell = [], {}
    for (cell, seed, arm, config), record in zip(plan, records):
        h = record.history
        tuned = h[h.phase == h.phase.max()]
        acc = (100 * tuned.train_acc).round(2).tolist()
        reached = config.phases[-1].reached_at(list(tuned.train_acc))
        window = acc[-WINDOW:]
        windows.append(window)
        by_cell.setdefault((cell.train_subset, cell.width), []).append((reached, record.history.seconds.sum()))
        print(f"{cell.train_subset} images w{cell.width} seed {seed} {arm}: reached {TARGET} % at tuning epoch "
              f"{reached if reached is not None else 'never (capped)'}; window mean {statistics.mean(window):.2f} %, "
              f"median {statistics.median(window):.2f}, min {min(window):.2f}; {record.history.seconds.sum():.0f} s"
              f"\n    per epoch {acc}", flush=True)
    spikes = sum(has_spike(w) for w in windows) / len(windows)
    print(f"\nwindows holding a spike epoch: {spikes:.0%} (rule: median summary above {SPIKE_SHARE:.0%}) -> "
          f"{'median' if spikes > SPIKE_SHARE else 'mean'}")
    for (size, width), runs in by_cell.items():
        reached = [r for r, _ in runs]
        print(f"cell {size} images w{width}: epochs to target {reached} -> cap {cap_of(reached, args.cap)}; "
              f"CPU-s per seed (pair) {2 * statistics.mean(s for _, s in runs):.0f}")
    if not args.out:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
