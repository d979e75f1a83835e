"""Paper scale on a GPU: ResNet-18 w64 bf16 training throughput of our loop, its model-FLOPs utilisation,
and the projected wall time of one paper-scale seed pair.

FLOPs of one training step (forward + backward at batch 128) are counted by `torch.utils.flop_counter`;
MFU is the achieved FLOP/s over the GPU's dense bf16 peak (`--peak-tflops`, default by GPU name). Our loop
(`train_run`: data on the GPU, bf16 autocast, channels_last, fused Adam) trains three epochs on the 50k
training set: the first warms up (cuDNN autotuning, compilation), the second is timed (the third
evaluates). Evaluation of the 10k test set (`train.evaluate`, BatchNorm folded into the convolutions) is
timed on its own after a warm-up call. Eager, and with torch.compile in its default and "reduce-overhead"
(CUDA graphs) modes. `--graphed-step` adds the whole step as a benchmark builds it: forward, backward and
the optimiser step captured as one CUDA graph (PyTorch's "whole-network capture", Adam with
`capturable=True`), replayed on batches copied into static buffers, with eager or inductor kernels; it
times one epoch after the capture and evaluates nothing; beside it, the loop's own path to that step
(`--compile graphed-step`), and with `--ensemble S` that path training S seeds as one vmapped model. The
projection multiplies the paper preset's image counts by these rates: pretraining 350 epochs on the 25k
half, warm tuning and scratch training 500 epochs each on 50k, a test-set evaluation after every epoch.

    python -m benchmarks.gpu_paper_scale [--width 64] [--compile] [--graphed-step] [--ensemble 8]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import describe_machine
from plasticity_nb import Phase, RunConfig, load_cifar10
from plasticity_nb.data.cifar10 import normalise
from plasticity_nb.nets.models import resnet18
from plasticity_nb.training.build import evaluate
from plasticity_nb.training.ensemble import train_ensemble
from plasticity_nb.training.runtime import GRAPHED_STEP, Runtime
from plasticity_nb.training.train import train_run

BATCH = 128
DENSE_BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # NVIDIA datasheets, SXM parts, no sparsity
PAPER_TRAIN_IMAGES = 350 * 25_000 + 2 * 500 * 50_000  # pretraining on the half + warm tuning + scratch training
PAPER_EVAL_IMAGES = (350 + 500 + 500) * 10_000  # the test set after every epoch of the three phases


def training_step_flops(width: int, device: torch.device) -> int:
    model = resnet18(width).to(device, memory_format=torch.channels_last)
    x = torch.randn(BATCH, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    return counter.get_total_flops()


def peak_tflops(device: torch.device, override: float | None) -> float:
    if override:
        return override
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DENSE_BF16_PEAK_TFLOPS.items() if key in name), float("nan"))


def measure(data, width: int, device: torch.device, **options) -> tuple[float, float]:
    """(training images/s, evaluation images/s) of our loop on the whole training and test sets."""
    config = RunConfig(phases=(Phase(epochs=3, eval_every=4),), width=width, train_subset=50_000, precision="bf16",
                       data_id=data.data_id)
    runtime = Runtime.for_config(config, device, **options)
    history = train_run(config, data, device, runtime=runtime).history  # only the last epoch evaluates
    train_ips = (history[1]["step"] - history[0]["step"]) * BATCH / history[1]["seconds"]
    model = resnet18(width).to(device, memory_format=torch.channels_last)
    test_x = normalise(data.test_images.to(device), channels_last=True)
    evaluate(model, test_x, data.test_labels, runtime)  # warm-up: cuDNN picks the evaluation kernels
    started = time.perf_counter()
    evaluate(model, test_x, data.test_labels, runtime)  # ends in .item(): synchronised
    return train_ips, len(test_x) / (time.perf_counter() - started)


def measure_ensemble(data, width: int, device: torch.device, members: int, **options) -> float:
    """Training images/s (all members') of `members` seeds trained as one model by our loop: the second of three
    epochs on the 50k set, as `measure` times a single run."""
    configs = [RunConfig(phases=(Phase(epochs=3, eval_every=4),), seed=s, width=width, train_subset=50_000,
                         precision="bf16", data_id=data.data_id) for s in range(members)]
    history = train_ensemble(configs, data, device, **options)[0].history
    return members * (history[1]["step"] - history[0]["step"]) * BATCH / history[1]["seconds"]


def measure_graphed_step(data, width: int, device: torch.device, compiled: bool) -> float:
    """Training images/s with the whole step (forward, backward, Adam) replayed as one CUDA graph."""
    model = resnet18(width).to(device, memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model  # default mode: no CUDA graphs of its own
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True, capturable=True)
    train_x = normalise(data.train_images.to(device), channels_last=True)
    static_x, static_y = train_x[:BATCH].clone(), data.train_labels[:BATCH].to(device).clone()

    def step():
        optimiser.zero_grad(set_to_none=False)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(forward(static_x), static_y)
        loss.backward()
        optimiser.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the graph: cuDNN, inductor and Adam's state allocate here
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    order = torch.randperm(len(train_x), device=device)[: len(train_x) // BATCH * BATCH].view(-1, BATCH)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in order:
        static_x.copy_(train_x[batch])
        static_y.copy_(data.train_labels[batch])
        graph.replay()
    torch.cuda.synchronize()
    return order.numel() / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    parser.add_argument("--graphed-step", action="store_true",
                        help="also measure the whole step (optimiser included) as one CUDA graph")
    parser.add_argument("--ensemble", type=int, default=0, metavar="S",
                        help="also measure S seeds trained as one model, eager and (with --graphed-step) graphed")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: by GPU name)")
    args = parser.parse_args()
    device = torch.device("cuda")
    data = load_cifar10(device=device)
    flops = training_step_flops(args.width, device)
    peak = peak_tflops(device, args.peak_tflops)
    print(f"# {describe_machine(device)}; ResNet-18 w{args.width}, batch {BATCH}, bf16, channels_last, fused Adam")
    print(f"training step: {flops / 1e9:.1f} GFLOP ({flops / BATCH / 1e9:.3f} GFLOP per image); "
          f"dense bf16 peak {peak:.1f} TFLOP/s")
    variants = {"eager": {}}
    if args.compile:
        variants.update({"torch.compile": dict(compile=True),
                         "torch.compile reduce-overhead": dict(compile=True, compile_mode="reduce-overhead")})
    if args.graphed_step:
        variants["loop: --compile graphed-step"] = Runtime.compile_options(GRAPHED_STEP)
    for name, options in variants.items():
        train_ips, eval_ips = measure(data, args.width, device, **options)
        mfu = train_ips / BATCH * flops / (peak * 1e12)
        pair = PAPER_TRAIN_IMAGES / train_ips + PAPER_EVAL_IMAGES / eval_ips
        print(f"{name:<30} training {train_ips:8.0f} img/s, MFU {100 * mfu:5.1f} %; evaluation {eval_ips:8.0f} img/s; "
              f"projected paper-scale seed pair ({PAPER_TRAIN_IMAGES / 1e6:.2f} M training + "
              f"{PAPER_EVAL_IMAGES / 1e6:.1f} M evaluation images): {pair / 60:6.1f} min")
    for compiled in ([False, True] if args.graphed_step else []):
        train_ips = measure_graphed_step(data, args.width, device, compiled)
        mfu = train_ips / BATCH * flops / (peak * 1e12)
        name = f"whole step graphed ({'inductor' if compiled else 'eager'})"
        print(f"{name:<30} training {train_ips:8.0f} img/s, MFU {100 * mfu:5.1f} %", flush=True)
    for name, options in ({"eager": {}, "graphed-step": Runtime.compile_options(GRAPHED_STEP)} if args.ensemble
                          else {}).items():
        if name == "graphed-step" and not args.graphed_step:
            continue
        train_ips = measure_ensemble(data, args.width, device, args.ensemble, **options)
        mfu = train_ips / BATCH * flops / (peak * 1e12)
        print(f"{f'{args.ensemble}-seed ensemble, {name}':<30} training {train_ips:8.0f} img/s, MFU {100 * mfu:5.1f} %",
              flush=True)


if __name__ == "__main__":
    main()
