"""Where a quick notebook 01 seed's time goes on this machine: training steps by part, evaluation, data, hooks.

Trains one seed of notebook 01 at the quick preset as the batch does (the pretraining prefix, the warm arm from
it, the scratch arm; one process, the threads the batch gives each of 2 workers), timing each part of the loop
around the package's own code; then profiles 30 training steps with torch.profiler and groups their CPU time by
operator kind. Nothing it measures changes a run: the timers wrap methods, the runs are the batch's.

    python -m benchmarks.profile_quick [--seed 0] [--threads 1] [--steps 30]
"""
from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict

import torch

from benchmarks.common import describe_machine
from plasticity_nb.data.images import load_dataset
from plasticity_nb.run.run_state import RunState
from plasticity_nb.studies import STUDIES
from plasticity_nb.training.build import init_model
from plasticity_nb.training.layout import tuned_runtime
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.train import SingleLearner, train_run

# operator kinds, by the first pattern found in an aten operator's name or one of OWN_FUNCTIONS' (the rest is
# "other")
KINDS = (("convolution", ("conv", "mkldnn_convolution", "Narrow3x3", "Strided")),
         ("batch norm", ("batch_norm", "NormReLU")),
         ("optimizer", ("_foreach", "adam", "lerp", "addcdiv", "addcmul", "sqrt")),
         ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
         ("pooling and linear", ("pool", "addmm", "mm", "linear")),
         ("casts and copies", ("_to_copy", "copy_", "aten::to", "clone", "contiguous")),
         ("indexing", ("index", "gather", "select", "slice")),
         ("elementwise", ("relu", "threshold", "add", "mul", "div", "sub", "fill", "zero")))


class Timers:
    """Wall seconds per part, summed over every call of the wrapped methods."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: type, name: str, part: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.calls[part] += 1

        setattr(owner, name, timed)


def one_seed(seed: int, data) -> list:
    config = STUDIES["01"].config.from_preset("quick", seeds=[seed, seed + 1])  # a study needs two; one is timed
    runs = {labels["arm"]: run for labels, run in config.plan(data.data_id) if labels["seed"] == seed}
    return [runs["warm"].prefix(), runs["warm"], runs["scratch"]]


def time_seed(seed: int, data, device) -> tuple[dict[str, float], dict[str, int], float, list]:
    timers = Timers()
    timers.wrap(SingleLearner, "epoch_batches", "data: the epoch's batch indices")
    timers.wrap(SingleLearner, "step", "training step (all)")
    timers.wrap(SingleLearner, "backward", "forward and backward")
    timers.wrap(SingleLearner, "evaluate", "evaluation on the test set")
    prefix, warm, scratch = one_seed(seed, data)
    started, histories = time.perf_counter(), []
    start = train_run(prefix, data, device)
    histories.append(start.history)
    histories.append(train_run(warm, data, device, start=start).history[len(start.history):])
    histories.append(train_run(scratch, data, device).history)
    return timers.seconds, timers.calls, time.perf_counter() - started, histories


# The package's autograd Functions (training/narrow_norm.py, narrow_conv.py) and their backward nodes: their C
# kernels run inside them, not in an aten operator, so their self time is counted too
OWN_FUNCTIONS = ("NormReLU", "Narrow3x3", "Strided")


def kind_of(name: str) -> str:
    return next((kind for kind, patterns in KINDS if any(p in name for p in patterns)), "other")


def op_profile(seed: int, data, device, steps: int) -> dict[str, float]:
    """CPU seconds per operator kind over `steps` training steps of the warm arm's model (self time, so that
    nested operators are counted once)."""
    _, warm, _ = one_seed(seed, data)
    runtime = tuned_runtime(warm, device)
    model = init_model(warm, runtime)
    tensors = RunTensors(warm, data, runtime)
    state = RunState([], [], 0, 0, 0)
    learner = SingleLearner(model, warm, state, tensors, runtime)
    batches, _ = learner.epoch_batches(0)
    for batch in batches[:5]:
        learner.step(batch)  # warm the primitive caches
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            learner.step(batches[i % len(batches)])
    kinds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith(("aten::", *OWN_FUNCTIONS)):
            kinds[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=max(1, torch.get_num_threads() // 2),
                        help="threads of this process (default: a batch worker's share, 2 workers)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    data = load_dataset("cifar10", None, device)
    print(f"# {describe_machine(device)}; {args.threads} thread(s); notebook 01, quick, seed {args.seed}")
    seconds, calls, wall, histories = time_seed(args.seed, data, device)
    epochs = [len(h) for h in histories]
    steps = calls["training step (all)"]
    step = seconds["training step (all)"]
    parts = {
        "forward and backward": seconds["forward and backward"],
        "optimizer, batch gather and the rest of a step": step - seconds["forward and backward"],
        "evaluation on the test set": seconds["evaluation on the test set"],
        "data: the epoch's batch indices": seconds["data: the epoch's batch indices"],
    }
    parts["everything else (hooks, history, checkpoints off, Python)"] = wall - sum(parts.values())
    print(f"one seed: {wall:.1f} s wall; epochs prefix/warm/scratch {epochs}; {steps} steps "
          f"({1000 * step / steps:.1f} ms each); {calls['evaluation on the test set']} evaluations "
          f"({seconds['evaluation on the test set'] / max(1, calls['evaluation on the test set']):.2f} s each)")
    print("| part | seconds | share |\n|---|---|---|")
    for part, s in parts.items():
        print(f"| {part} | {s:.1f} | {s / wall:.0%} |")
    kinds = op_profile(args.seed, data, device, args.steps)
    total = sum(kinds.values())
    print(f"\n{args.steps} training steps under torch.profiler (self CPU time of aten operators and the package's "
          f"kernels, {total:.2f} s):")
    print("| operator kind | share |\n|---|---|")
    for kind, s in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {s / total:.0%} |")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
