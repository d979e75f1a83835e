"""Wall time of re-running the batch on a complete run store: the execution cache (no kernel) against
`--force` (papermill executes the notebook again, loading its stored runs), both measured here, in turn.

    python -m benchmarks.warm_rerun [--only 01] [--preset smoke] [--repeats 3] [--out DIR]

The first batch (not timed) trains the runs and fills the cache; then each repeat times a `--force` re-run
and a cached re-run, as a user would start them (a fresh process each). Besides wall time it reports the CPU
time of the batch and every process it waited for (kernel included), which a busy machine does not inflate.
A given --out is kept, so a second measurement skips the training.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import children_cpu, describe_machine


def batch(out: Path, preset: str, only: str, *extra: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the batch and the processes it waited for)."""
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-m", "plasticity_nb", "run", "--preset", preset, "--only", only, "--out",
                    str(out), *extra], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu() - cpu


def summary(name: str, times: list[tuple[float, float]]) -> tuple[float, float]:
    wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    print(f"{name}: median wall {wall:6.2f} s of {[round(t[0], 2) for t in times]}; "
          f"median CPU {cpu:6.2f} s of {[round(t[1], 2) for t in times]}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="01", help="notebook ids, as for the CLI (default: 01)")
    parser.add_argument("--preset", default="smoke", help="default: smoke (quick trains for many minutes first)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="output folder, kept (default: a new temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="warm-rerun-"))
    print(f"# {describe_machine(torch.device('cpu'))}; load average {os.getloadavg()[0]:.1f}")
    first, _ = batch(out, args.preset, args.only)
    forced, cached = [], []
    for _ in range(args.repeats):
        forced.append(batch(out, args.preset, args.only, "--force"))
        cached.append(batch(out, args.preset, args.only))
    print(f"notebooks {args.only} at preset {args.preset}; first batch (training, filling the cache) {first:.1f} s")
    forced_wall, forced_cpu = summary("--force (kernel, stored runs)", forced)
    cached_wall, cached_cpu = summary("cached (no kernel)          ", cached)
    print(f"ratio --force / cached: wall {forced_wall / cached_wall:.1f}x, CPU {forced_cpu / cached_cpu:.1f}x; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
