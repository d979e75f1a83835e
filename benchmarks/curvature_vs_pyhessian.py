"""Our curvature estimators against PyHessian: same model, batch and tolerance; values and time.

PyHessian (amirgholami/PyHessian 0.1, installed only for this benchmark: `make benchmark-tools`) puts the
model in eval mode, so ours runs with bn_mode="eval". Top eigenvalue: power iteration, same tolerance
and iteration cap on both sides. Trace: Hutchinson with the same number of Rademacher probes; for the
value comparison both draw the *same* probes (PyHessian draws from the global RNG, ours from a
generator seeded alike, one vector at a time). Ours is timed both one probe at a time (its CPU default)
and with blocks of 10 probes per batched double-backward (its GPU default).

    python -m benchmarks.curvature_vs_pyhessian [--width 8] [--batch 256] [--samples 100] [--device cpu]
"""
import argparse
import contextlib
import math
import time

import numpy as np
import torch

from benchmarks.common import describe_machine
from plasticity_nb import load_cifar10
from plasticity_nb.data.cifar10 import class_balanced_subset, normalise
from plasticity_nb.measures.curvature import ProbeSet, hessian_eigenvalues, hessian_trace
from plasticity_nb.nets.models import resnet18
from plasticity_nb.training.runtime import resolve_device


def timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


@contextlib.contextmanager
def probes_drawn_on_cpu():
    """PyHessian draws its Rademacher probes with torch.randint_like on the model's device; drawing them from
    the CPU generator instead gives both sides the same vectors on a GPU too."""
    original = torch.randint_like
    torch.randint_like = lambda p, high, device: original(p, high=high, device="cpu").to(device)
    try:
        yield
    finally:
        torch.randint_like = original


def main() -> None:
    from pyhessian import hessian  # only for this benchmark

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--samples", type=int, default=100, help="Hutchinson probes")
    parser.add_argument("--iterations", type=int, default=100, help="power-iteration cap")
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    pick = class_balanced_subset(data.train_labels, args.batch, torch.Generator().manual_seed(0)).to(device)
    x, y = normalise(data.train_images[pick], channels_last=False), data.train_labels[pick]
    torch.manual_seed(0)
    model = resnet18(args.width).to(device)
    model.train()
    for start in range(0, 2048, 256):  # a few train-mode passes give the BatchNorm statistics some content
        model(normalise(data.train_images[start * 20 % 50000:][:256].to(device), channels_last=False))
    probes = ProbeSet.from_tensors(x, y, args.batch)
    print(f"# {describe_machine(device)}; ResNet-18 w{args.width}, {args.batch} images, tol {args.tol}, "
          f"{args.samples} trace probes, BatchNorm in eval mode")

    theirs = hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=device.type == "cuda")
    torch.manual_seed(1)
    (their_eigen, _), their_eigen_s = timed(lambda: theirs.eigenvalues(maxIter=args.iterations, tol=args.tol))
    our_eigen, our_eigen_s = timed(lambda: hessian_eigenvalues(model, probes, k=1, bn_mode="eval",
                                                              max_iterations=args.iterations, tol=args.tol))
    torch.manual_seed(2)
    # tol=-inf: PyHessian 0.1 divides by the signed running mean, so any tol >= 0 stops it at the first
    # negative mean (common at initialisation); the probe count is fixed instead.
    with probes_drawn_on_cpu():
        their_trace, their_trace_s = timed(lambda: theirs.trace(maxIter=args.samples, tol=-math.inf))
    same_probes, sequential_s = timed(lambda: hessian_trace(model, probes, samples=len(their_trace), bn_mode="eval",
                                                            generator=torch.Generator().manual_seed(2), block=1))
    batched, batched_s = timed(lambda: hessian_trace(model, probes, samples=len(their_trace), bn_mode="eval", block=10))
    our_trace_s = batched_s if device.type == "cuda" else sequential_s  # hessian_trace's default on this device

    eigen_gap = abs(our_eigen.values[0] - their_eigen[0]) / abs(their_eigen[0])
    trace_gap = abs(same_probes.mean - np.mean(their_trace)) / abs(np.mean(their_trace))
    print(f"top eigenvalue: ours {our_eigen.values[0]:.4f} ({our_eigen.iterations[0]} it) vs PyHessian "
          f"{their_eigen[0]:.4f}; relative difference {100 * eigen_gap:.3f} %; time {our_eigen_s:.2f} s vs "
          f"{their_eigen_s:.2f} s: {their_eigen_s / our_eigen_s:.2f}x")
    print(f"trace ({len(their_trace)} probes): ours {same_probes.mean:.3f} ± {same_probes.standard_error:.3f} "
          f"(same probes) vs PyHessian {np.mean(their_trace):.3f}; relative difference {100 * trace_gap:.4f} %; "
          f"ours with batched probes {batched.mean:.3f} ± {batched.standard_error:.3f}")
    print(f"trace time: PyHessian {their_trace_s:.2f} s; ours one probe at a time {sequential_s:.2f} s "
          f"({their_trace_s / sequential_s:.2f}x), in blocks of 10 {batched_s:.2f} s "
          f"({their_trace_s / batched_s:.2f}x)")
    total_ours, total_theirs = our_eigen_s + our_trace_s, their_eigen_s + their_trace_s
    print(f"both, ours at its {device.type} default: ours {total_ours:.2f} s vs PyHessian {total_theirs:.2f} s: "
          f"{total_theirs / total_ours:.2f}x; "
          f"values within 2 %: {'yes' if max(eigen_gap, trace_gap) < 0.02 else 'NO'}")


if __name__ == "__main__":
    main()
