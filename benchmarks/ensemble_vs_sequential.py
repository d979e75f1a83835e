"""Seed ensembles (one vmapped model of S members) against training the S seeds one after another.

Same configs (narrow ResNet-18, one epoch on a class-balanced subset, fp32 on a CPU / bf16 on a GPU),
timed in the same process; prints images/s (all members together) and the ratio, for each S.

    python -m benchmarks.ensemble_vs_sequential [--sizes 4 8] [--width 8] [--subset 2560] [--device cpu]
"""
import argparse
import time

import torch

from benchmarks.common import describe_machine
from plasticity_nb import Phase, RunConfig, load_cifar10
from plasticity_nb.training.ensemble import train_ensemble
from plasticity_nb.training.runtime import Runtime, resolve_device
from plasticity_nb.training.train import train_run


def timed(function) -> float:
    started = time.perf_counter()
    function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--subset", type=int, default=2560, help="training images per member (one epoch)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--compile", action="store_true",
                        help="both sides torch.compile'd (with CUDA graphs on a GPU: mode reduce-overhead)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    precision = "bf16" if device.type == "cuda" else "fp32"
    options = dict(compile=True, compile_mode="reduce-overhead" if device.type == "cuda" else "default") \
        if args.compile else {}
    print(f"# {describe_machine(device)}; ResNet-18 w{args.width}, {args.subset} images per member, {precision}"
          f"{', compiled ' + str(options) if options else ''}")
    for size in args.sizes:
        configs = [RunConfig(phases=(Phase(epochs=1, eval_every=2),), seed=s, width=args.width,
                             train_subset=args.subset, test_subset=1000, precision=precision, data_id=data.data_id)
                   for s in range(size)]
        runtime = Runtime.for_config(configs[0], device, **options)
        train_run(configs[0], data, device, runtime=runtime)  # warm-ups (cuDNN autotuning, compilation)
        train_ensemble(configs, data, device, **options)
        sequential = timed(lambda: [train_run(c, data, device, runtime=runtime) for c in configs])
        together = timed(lambda: train_ensemble(configs, data, device, **options))
        images = size * args.subset
        print(f"S={size}: sequential {images / sequential:8.0f} img/s, ensemble {images / together:8.0f} img/s, "
              f"ratio {sequential / together:5.2f}x")


if __name__ == "__main__":
    main()
