"""Training throughput: plasticity_nb's loop against the loop a user writes by hand, in the same run.

Naive baseline: a torchvision CIFAR-10 dataset (PIL images through ToTensor + Normalize) and
DataLoader(num_workers=2, shuffle=True), fp32, the model in its default memory format. The default loop, printed
first on a CPU, is ours as the batch runs it: one single-threaded worker per core, training at once. Ours: the whole
subset normalised once on the device, batches gathered by index, the layout chosen on this machine (memory format,
fused batch norm, narrow convolutions: training/layout.py), and the precision studies pick here
(`native_precision`: bf16 autocast on a GPU or a CPU with native bf16, else fp32). Same model, batch size,
optimiser (Adam 1e-3) and number of steps. Also the other precision, NHWC with ATen's batch norm and convolutions,
NHWC with the fused batch norm alone (where it builds), and NCHW, each in turn, and torch.compile switched on.

    python -m benchmarks.train_throughput [--steps 60] [--widths 8 64] [--device cpu]
"""
import argparse
import multiprocessing
import time

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from benchmarks.common import describe_machine
from plasticity_nb import Phase, RunConfig, load_cifar10
from plasticity_nb.data.cifar10 import MEAN, STD
from plasticity_nb.nets.models import resnet18
from plasticity_nb.training import narrow_norm
from plasticity_nb.training.layout import tuned_runtime
from plasticity_nb.training.runtime import native_precision, resolve_device
from plasticity_nb.training.train import train_run

BATCH = 128


def naive_images_per_second(data, width: int, steps: int, device: torch.device, warmup: int) -> float:
    """What a user writes by hand: torchvision's CIFAR10 __getitem__ path (PIL + transforms) and a DataLoader."""
    dataset = torchvision.datasets.CIFAR10.__new__(torchvision.datasets.CIFAR10)
    torchvision.datasets.VisionDataset.__init__(dataset, root="unused", transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]))
    dataset.train = True
    dataset.data = data.train_images.permute(0, 2, 3, 1).cpu().numpy()  # NHWC uint8, as torchvision stores it
    dataset.targets = data.train_labels.cpu().tolist()
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)
    torch.manual_seed(0)
    model = resnet18(width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    done, started = 0, None
    while done < steps + warmup:
        for x, y in loader:
            if done == warmup:
                started = time.perf_counter()
            x, y = x.to(device), y.to(device)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps + warmup:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - started)


def ours_images_per_second(data, width: int, steps: int, device: torch.device, warmup: int, **options) -> float:
    """Our training loop: the first epoch warms up (and compiles), the second (no evaluation) is timed."""
    precision = options.pop("precision", native_precision())
    config = RunConfig(phases=(Phase(epochs=2, eval_every=3),), width=width, train_subset=(steps + 1) * BATCH,
                       test_subset=1000, precision=precision, data_id=data.data_id)
    warm = RunConfig(phases=(Phase(epochs=1),), width=width, train_subset=(warmup + 1) * BATCH, test_subset=1000,
                     precision=precision, data_id=data.data_id)
    runtime = tuned_runtime(config, device, **options)  # the layout chosen on this machine unless given
    train_run(warm, data, device, runtime=runtime)  # untimed warm-up (oneDNN primitive caches, compilation)
    history = train_run(config, data, device, runtime=runtime).history
    return history[0]["step"] * BATCH / history[0]["seconds"]


def _one_worker(width: int, steps: int, warmup: int) -> float:
    """A batch worker: one thread, the default loop (spawned, so it loads its own copy of the data)."""
    torch.set_num_threads(1)
    device = torch.device("cpu")
    return ours_images_per_second(load_cifar10(device=device), width, steps, device, warmup)


def batch_images_per_second(width: int, steps: int, warmup: int, workers: int) -> float:
    """The default loop as the batch runs it on a CPU (`runner.auto_workers`: one single-threaded process per
    core): the workers train at once, and their images per second add up."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return sum(pool.starmap(_one_worker, [(width, steps, warmup)] * workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 64],
                        help="ResNet-18 widths (8 = the quick preset)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile on a CPU)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    print(f"# {describe_machine(device)}; batch {BATCH}, Adam, {args.steps} timed steps")
    for width in args.widths:
        naive = naive_images_per_second(data, width, args.steps, device, args.warmup)
        native = native_precision()
        other = "fp32" if native == "bf16" else "bf16"
        variants = {f"ours ({native}, layout chosen)": {}, f"ours, {other}": {"precision": other},
                    "ours, NHWC, ATen's batch norm and convolutions": {"channels_last": True},
                    "ours, NCHW": {"channels_last": False}}
        if device.type == "cpu" and native == "bf16" and narrow_norm.kernels() is not None:
            variants["ours, NHWC, fused batch norm, ATen's convolutions"] = {"channels_last": True, "narrow_norm": True}
        if args.compile:
            variants["ours + torch.compile"] = {"compile": True}
            if device.type == "cuda":
                variants["ours + compile (CUDA graphs)"] = {"compile": True, "compile_mode": "reduce-overhead"}
        print(f"ResNet-18 w{width}: naive {naive:8.0f} img/s")
        if device.type == "cpu":  # the default loop first: how the batch trains, one 1-thread worker per core
            workers = torch.get_num_threads()
            batch = batch_images_per_second(width, args.steps, args.warmup, workers)
            print(f"ResNet-18 w{width}: {f'default: {workers} workers x 1 thread':<30} {batch:8.0f} img/s   "
                  f"ratio vs naive {batch / naive:5.2f}x")
        for name, options in variants.items():
            ours = ours_images_per_second(data, width, args.steps, device, args.warmup, **options)
            print(f"ResNet-18 w{width}: {name:<30} {ours:8.0f} img/s   ratio vs naive {ours / naive:5.2f}x")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
