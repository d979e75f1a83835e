"""Wall time of notebook 01 at the quick preset: from an empty run store (cold), then again with every
run in the store (warm). Runs the batch CLI as a user would and reports C1's verdict.

    python -m benchmarks.quick_fig1 [--out /tmp/quick_fig1]
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

from benchmarks.common import describe_machine


def batch(out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plasticity_nb", "run", "--preset", "quick", "--only", "01",
                    "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output folder (emptied first; default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="quick-fig1-"))
    shutil.rmtree(out, ignore_errors=True)
    print(f"# {describe_machine(torch.device('cpu'))}")
    cold, warm = batch(out), batch(out)
    claim = pd.read_csv(out / "claims.csv").query("claim == 'C1' and preset == 'quick'").iloc[0]
    print(f"cold (empty store): {cold:6.1f} s; warm (every run stored): {warm:5.1f} s; ratio {cold / warm:5.1f}x")
    print(f"C1: {claim.effect:+.2f} pp (95% CI {claim.ci_low:+.2f} to {claim.ci_high:+.2f}, "
          f"{claim.n_seeds} seeds): {claim.verdict}")


if __name__ == "__main__":
    main()
