"""What one quick notebook 01 seed costs here against another version of the code, side by side in one run.

Each trial trains one seed's runs of notebook 01 at the quick preset (the pretraining prefix, the warm arm from it,
the scratch arm, every evaluation) into a fresh store, as the batch does: `run_many` with one single-threaded
worker per core. The same RunConfigs, data and machine for both versions; the versions alternate (and swap which
goes first each round) so that drift in a shared machine falls on both. A version is a source tree: the baseline
a worktree of an older commit (`git worktree add --detach ../base <commit>`), the current this checkout. Each
version times its execution choices (layouts) once before the trials, so that no trial pays for them.

    python -m benchmarks.seed_cost --baseline ../base [--seeds 0 1] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import mean

import torch

from benchmarks.common import describe_machine

HERE = Path(__file__).resolve().parents[1]

# Run in each version's tree: only what every version has (the studies' presets and plan, run_many)
TRIAL = """
import json, sys, time
from plasticity_nb.data.images import load_dataset
from plasticity_nb.execution.runner import run_many
from plasticity_nb.studies import STUDIES
seed, out = int(sys.argv[1]), sys.argv[2]
data = load_dataset("cifar10", None, "cpu")
config = STUDIES["01"].config.from_preset("quick", seeds=[seed, seed + 1])
runs = {labels["arm"]: run for labels, run in config.plan(data.data_id) if labels["seed"] == seed}
started = time.perf_counter()
run_many([runs["warm"], runs["scratch"]], out_dir=out, workers=2)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

# Times the execution choices a worker makes (one thread), where the version makes any
WARM_UP = """
import torch
torch.set_num_threads(1)
from plasticity_nb.data.images import load_dataset
from plasticity_nb.studies import STUDIES
try:
    from plasticity_nb.training.layout import tuned_runtime
except ImportError:
    tuned_runtime = None
data = load_dataset("cifar10", None, "cpu")
config = STUDIES["01"].config.from_preset("quick", seeds=[0, 1])
for labels, run in config.plan(data.data_id):
    if tuned_runtime is not None:
        print(tuned_runtime(run, "cpu"))
        break
"""


def in_tree(tree: Path, code: str, *args: str, cache: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree), "PLASTICITY_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the older version's source tree")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "current": HERE}
    commits = {name: subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip() for name, tree in trees.items()}
    print(f"# {describe_machine(torch.device('cpu'))}; baseline {commits['baseline']}, current {commits['current']} "
          f"(+ uncommitted changes if any); notebook 01, quick, one seed per trial, 2 workers x 1 thread")
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as scratch:
        caches = {name: Path(scratch) / f"cache-{name}" for name in trees}
        for name, tree in trees.items():
            print(f"{name} warm-up (execution choices): {in_tree(tree, WARM_UP, cache=caches[name]).strip() or '-'}")
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            for seed in args.seeds:
                for name in order:
                    out = Path(scratch) / f"out-{name}-{round_}-{seed}"
                    printed = in_tree(trees[name], TRIAL, str(seed), str(out), cache=caches[name])
                    trial = json.loads(printed.strip().splitlines()[-1])
                    seconds[name].append(trial["seconds"])
                    print(f"round {round_ + 1}, seed {seed}, {name}: {trial['seconds']:.1f} s", flush=True)
    base, current = mean(seconds["baseline"]), mean(seconds["current"])
    print(f"\nmean wall seconds per seed: baseline {base:.1f}, current {current:.1f}: "
          f"{1 - current / base:.0%} less ({base / current:.2f}x), {len(seconds['current'])} trials each")


if __name__ == "__main__":
    main()
