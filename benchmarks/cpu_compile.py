"""torch.compile on a CPU, paid for by a whole run: notebook 01's quick warm run (pretraining on the half, then
tuning on the whole subset, the test set evaluated after every epoch) end to end, each variant in a fresh
single-threaded process, as a batch's worker runs it.

    python -m benchmarks.cpu_compile [--pretrain-epochs 10] [--tune-epochs 25] [--repeats 1] [--data DIR]

Variants, interleaved (eager, cold, warm, eager, cold, warm, ...) so that a busy machine slows each alike:
eager; compiled with an empty inductor cache (a fresh TORCHINDUCTOR_CACHE_DIR: the first worker process of a
batch on a new output folder); compiled with the cache the cold process just filled (a later worker process).
Each prints the run's wall and CPU time (data loading excluded, compilation included; on a busy machine the
CPU time is the steadier figure, though inductor's compile workers spend CPU time of their own, counted only
in the whole process's), the time spent evaluating (not compiled), the first epoch of each phase against the
median of that phase's other epochs (the first holds the compilation), and how many graphs dynamo compiled
and recompiled. Ratios are to the eager run of the same repeat. Fewer epochs than the preset's (e.g.
--pretrain-epochs 3 --tune-epochs 5) give per-epoch times to extrapolate from.

    python -m benchmarks.cpu_compile --interleaved 5 [--data DIR]

The steady state alone, in one single-threaded process: an eager and a compiled learner (quick scratch run,
5,000 images) train alternate epochs (eager, compiled, eager, ...; no evaluation), after a few untimed steps
that compile; then one evaluation of the 10,000 test images. Median wall and CPU seconds per epoch.
"""
import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from benchmarks.common import children_cpu, describe_machine

VARIANTS = ("eager", "cold", "warm")


def child(args: argparse.Namespace) -> None:
    """One whole run in this process; prints one JSON line."""
    torch.set_num_threads(1)  # as a worker of run_many on a CPU
    from torch._dynamo.utils import counters

    import plasticity_nb.training.train as train
    from plasticity_nb import load_cifar10
    from plasticity_nb.studies.warm_start_gap import Config

    data = load_cifar10(args.data, "cpu").decode()
    config = Config.from_preset("quick").warm(0, data.data_id)
    epochs = (args.pretrain_epochs, args.tune_epochs)
    config = dataclasses.replace(config, phases=tuple(dataclasses.replace(p, epochs=n)
                                                      for p, n in zip(config.phases, epochs)))
    evaluating = [0.0]
    evaluate = train.evaluate

    def timed_evaluate(*a, **k):
        started = time.perf_counter()
        try:
            return evaluate(*a, **k)
        finally:
            evaluating[0] += time.perf_counter() - started

    train.evaluate = timed_evaluate
    runtime = train.Runtime.for_config(config, "cpu", compile=args.child != "eager")
    started, cpu = time.perf_counter(), time.process_time()
    outcome = train.train_run(config, data, "cpu", runtime=runtime)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    phases = []
    for number in (1, 2):
        seconds = [row["seconds"] for row in outcome.history if row["phase"] == number]
        phases.append({"first": seconds[0], "median_rest": statistics.median(seconds[1:]) if seconds[1:] else None,
                       "epochs": len(seconds)})
    print(json.dumps({"variant": args.child, "wall": wall, "cpu": cpu, "eval": evaluating[0], "phases": phases,
                      "graphs": counters["stats"]["unique_graphs"], "recompiles": sum(counters["recompiles"].values()),
                      "precision": config.precision, "final_test_acc": outcome.history[-1]["test_acc"]}))


def interleaved(args: argparse.Namespace) -> None:
    """Eager and compiled training epochs, alternating in this process."""
    torch.set_num_threads(1)
    from plasticity_nb import load_cifar10
    from plasticity_nb.run.run_state import RunState
    from plasticity_nb.studies.warm_start_gap import Config
    from plasticity_nb.training.build import evaluate, init_model
    from plasticity_nb.training.run_tensors import RunTensors
    from plasticity_nb.training.runtime import Runtime
    from plasticity_nb.training.train import SingleLearner

    data = load_cifar10(args.data, "cpu").decode()
    config = Config.from_preset("quick").scratch(0, data.data_id)
    learners = {}
    for name, compile in (("eager", False), ("compiled", True)):
        runtime = Runtime.for_config(config, "cpu", compile=compile)
        learner = SingleLearner(init_model(config, runtime), config, RunState([], [], 0, 0, 0),
                                RunTensors(config, data, runtime), runtime)
        for batch in learner.epoch_batches(0)[0][:3]:
            learner.step(batch)  # compiles (untimed)
        learners[name] = learner
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in learners}
    for epoch in range(1, args.interleaved + 1):
        for name, learner in learners.items():
            batches = learner.epoch_batches(epoch)[0]
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                learner.step(batch)
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    eager = [statistics.median(t[i] for t in times["eager"]) for i in (0, 1)]
    print(f"# {describe_machine(torch.device('cpu'))}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; 1 thread; "
          f"{args.interleaved} alternating epochs of {len(batches)} steps ({config.precision})")
    for name, t in times.items():
        wall, cpu = (statistics.median(x[i] for x in t) for i in (0, 1))
        print(f"{name:<8}: median per epoch {wall:5.2f} s wall, {cpu:5.2f} s CPU; ratio to eager "
              f"{wall / eager[0]:4.2f} wall, {cpu / eager[1]:4.2f} CPU; each {[round(x[1], 2) for x in t]} s CPU")
    learner = learners["eager"]
    wall, cpu = time.perf_counter(), time.process_time()
    evaluate(learner.model, learner.tensors.test_x, learner.tensors.test_y, learner.runtime)
    print(f"one evaluation of {len(learner.tensors.test_y):,} test images (eager, BatchNorm fused): "
          f"{time.perf_counter() - wall:5.2f} s wall, {time.process_time() - cpu:5.2f} s CPU")


def measure(variant: str, cache: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    env.pop("PLASTICITY_COMPILE", None)
    command = [sys.executable, "-m", "benchmarks.cpu_compile", "--child", variant, "--pretrain-epochs",
               str(args.pretrain_epochs), "--tune-epochs", str(args.tune_epochs)] + (["--data", args.data]
                                                                                       if args.data else [])
    before = children_cpu()
    lines = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    return {**json.loads(lines[-1]), "process_cpu": children_cpu() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="epochs on the half (quick: 10)")
    parser.add_argument("--tune-epochs", type=int, default=25, help="epochs on the whole subset (quick: 25)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data", default=None, help="CIFAR-10 folder (default: PLASTICITY_DATA, then data/)")
    parser.add_argument("--interleaved", type=int, default=0, metavar="EPOCHS",
                        help="only compare training epochs, eager and compiled alternating in one process")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.interleaved:
        return interleaved(args)
    cpu = "AVX-512" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "AVX2 (no native bf16)"
    print(f"# {describe_machine(torch.device('cpu'))}; {cpu}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; 1 thread per process; warm run of notebook 01 at quick with "
          f"{args.pretrain_epochs} + {args.tune_epochs} epochs, evaluated every epoch")
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="inductor-") as cache:
            results = {variant: measure(variant, cache, args) for variant in VARIANTS}
        eager = results["eager"]["wall"]
        for variant, r in results.items():
            first = ", ".join(f"phase {i + 1} first {p['first']:5.1f} s vs {p['median_rest'] or float('nan'):5.1f} s"
                              for i, p in enumerate(r["phases"]))
            print(f"repeat {repeat} {variant:<5} ({r['precision']}): wall {r['wall']:7.1f} s "
                  f"(eval {r['eval']:6.1f} s), ratio to eager {r['wall'] / eager:4.2f}; CPU of the run "
                  f"{r['cpu']:7.1f} s, ratio {r['cpu'] / results['eager']['cpu']:4.2f}; CPU of the whole process "
                  f"(imports, data, compile workers) {r['process_cpu']:7.1f} s; {first}; graphs {r['graphs']}, "
                  f"recompiles {r['recompiles']}; final test acc {r['final_test_acc']:.4f}")
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
