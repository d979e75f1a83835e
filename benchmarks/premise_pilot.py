"""How many tuning epochs each quick-preset arm needs to fit its training data (the premise of every claim).

Trains the scratch arm of seed 0 for each optimiser / learning rate the quick presets use, on the quick
subset, and prints its train accuracy per epoch and the mean over a 5-epoch window ending at a few
budgets. The test set is evaluated only at the end and not printed: budgets are chosen from train
accuracy alone, blind to the gaps they will be used to measure.

    .venv/bin/python benchmarks/premise_pilot.py [--out DIR] [--epochs 40]
"""
import argparse
import tempfile

from plasticity_nb.data.cifar10 import load_cifar10
from plasticity_nb.execution.runner import run_many
from plasticity_nb.studies.study_config import WarmStartConfig

ARMS = {"adam 1e-3": ("adam", 1e-3), "adam 1e-2 (08 at 10x)": ("adam", 1e-2), "rmsprop 1e-3": ("rmsprop", 1e-3),
        "sgd 0.1": ("sgd", 0.1), "sgd_momentum 0.01": ("sgd_momentum", 0.01)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="run store (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    base = WarmStartConfig.from_preset("quick")
    data = load_cifar10(None, "cpu")
    tune = lambda optimizer, lr: dict(optimizer=optimizer, lr=lr, epochs=args.epochs, eval_every=args.epochs,
                                      eval_tail=0)
    configs = [base.scratch(0, data.data_id, tune=tune(*arm)) for arm in ARMS.values()]
    records = run_many(configs, out_dir=args.out or tempfile.mkdtemp(prefix="premise-pilot-"), device="cpu",
                       progress=False)
    for name, record in zip(ARMS, records):
        acc = (100 * record.history.train_acc).round(1).tolist()
        windows = ", ".join(f"{end - 4}-{end}: {sum(acc[end - 5:end]) / 5:.1f} %" for end in (15, 20, 25, 30, 40)
                            if end <= len(acc))
        print(f"{name}: window means {windows}\n    per epoch {acc}")


if __name__ == "__main__":
    main()
