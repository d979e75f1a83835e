"""Wall time of notebook 01 at the quick preset: from an empty run store (cold), then again with every
run in the store (warm). Runs the batch CLI as a user would and reports C1's verdict.

With `--baseline eval_every=1` (any `--param` of the CLI), a second empty store is first filled with the
baseline's settings and timed the same way, so the two cold times come from the same machine in the same
run (CPU time too: a busy machine inflates wall time, not CPU time).

    python -m benchmarks.quick_fig1 [--out /tmp/quick_fig1] [--baseline eval_every=1]
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import children_cpu, describe_machine


def batch(out: Path, params: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (all processes) of one `run --preset quick --only 01` into `out`."""
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-m", "plasticity_nb", "run", "--preset", "quick", "--only", "01",
                    "--out", str(out), *[arg for p in params for arg in ("--param", p)]],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu() - cpu


def cold_and_warm(out: Path, params: list[str], label: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    (cold, cold_cpu), (warm, _) = batch(out, params), batch(out, params)
    claim = pd.read_csv(out / "claims.csv").query("claim == 'C1' and preset == 'quick'").iloc[0]
    print(f"{label}: cold (empty store) {cold:6.1f} s wall, {cold_cpu:6.1f} s CPU; warm (every run stored) "
          f"{warm:5.1f} s; C1 {claim.effect:+.2f} pp (95% CI {claim.ci_low:+.2f} to {claim.ci_high:+.2f}, "
          f"{claim.n_seeds} seeds): {claim.verdict}", flush=True)
    return cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output folder (emptied first; default: a temporary one)")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=VALUE",
                        help="time a baseline first with this notebook parameter (repeatable)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="quick-fig1-"))
    print(f"# {describe_machine(torch.device('cpu'))}")
    if args.baseline:
        base = cold_and_warm(out.with_name(out.name + "-baseline"), args.baseline, f"baseline {args.baseline}")
    cold = cold_and_warm(out, [], "as the preset stands")
    if args.baseline:
        print(f"cold ratio, preset / baseline: {cold / base:.3f}")


if __name__ == "__main__":
    main()
