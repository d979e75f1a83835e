"""How many tuning epochs each cell of the scale study (notebook 12) needs to fit its training data, and what an
epoch of each costs: the scratch arm of seed 0 (not one of the study's seeds) at every cell of a preset, trained for
`--epochs`, with its train accuracy per epoch and the 5-epoch window means ending at each candidate budget. The
test set is evaluated only at the end and not printed: budgets are chosen from train accuracy alone, blind to the
gaps they will be used to measure. The rule (fixed before the first pilot): the smallest candidate budget whose
window mean reaches `--target` %.

    python -m benchmarks.scale_pilot [--preset quick] [--epochs 40] [--target 98] [--out DIR] [--device cpu]
"""
import argparse
import tempfile

from benchmarks.common import describe_machine
from plasticity_nb.data.cifar10 import load_cifar10
from plasticity_nb.execution.runner import run_many
from plasticity_nb.studies.scale import Config
from plasticity_nb.training.runtime import resolve_device

BUDGETS = (15, 20, 25, 30, 35, 40)  # the candidate tuning budgets (epochs)
WINDOW = 5  # the quick presets' metric window (last_k)


def window_means(train_acc: list[float]) -> dict[int, float]:
    """The mean train accuracy over the WINDOW epochs ending at each candidate budget the run reached."""
    return {end: sum(train_acc[end - WINDOW:end]) / WINDOW for end in BUDGETS if end <= len(train_acc)}


def chosen_budget(means: dict[int, float], target: float) -> int | None:
    """The smallest budget whose window mean reaches `target`; None if none does."""
    return next((end for end, mean in sorted(means.items()) if mean >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--epochs", type=int, default=max(BUDGETS))
    parser.add_argument("--target", type=float, default=98.0, help="window train accuracy (%%) a budget must reach")
    parser.add_argument("--out", default=None, help="run store (default: a temporary folder)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    study = Config.from_preset(args.preset)
    data = load_cifar10(None, device)
    tune = dict(epochs=args.epochs, eval_every=args.epochs, eval_tail=0)
    configs = [study.scratch(0, data.data_id, tune=tune, **cell.condition) for cell in study.cells]
    print(f"# {describe_machine(device)}; scale study {args.preset} cells, scratch seed 0, {args.epochs} epochs")
    records = run_many(configs, out_dir=args.out or tempfile.mkdtemp(prefix="scale-pilot-"), device=device,
                       progress=False)
    for cell, record in zip(study.cells, records):
        acc = (100 * record.history.train_acc).round(1).tolist()
        means = window_means(acc)
        seconds = record.history.seconds.iloc[1:-1].median()
        print(f"train_subset {cell.train_subset}, width {cell.width}: {seconds:.2f} s/epoch (median); budget "
              f"{chosen_budget(means, args.target)} (windows {', '.join(f'{e}: {m:.1f}' for e, m in means.items())})"
              f"\n    per epoch {acc}", flush=True)


if __name__ == "__main__":
    main()
