"""GPU sanity check, not a timing: quick-preset scratch runs (3 seeds) trained eagerly, with CUDA graphs
(torch.compile reduce-overhead) and as one bf16 seed ensemble; their accuracies should agree within seed noise.

    python -m benchmarks.gpu_paths_check
"""
import time

import numpy as np

from plasticity_nb import load_cifar10
from plasticity_nb.studies.study_config import WarmStartConfig
from plasticity_nb.training.ensemble import train_ensemble
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import train_run

data = load_cifar10(device="cuda")
study = WarmStartConfig.from_preset("quick")
configs = [study.scratch(s, data.data_id) for s in (0, 1, 2)]
print("precision", configs[0].precision)
def summary(h):
    return f"train_acc {h[-1]['train_acc']:.4f} last-5 test_acc {np.mean([r['test_acc'] for r in h[-5:]]):.4f}"
for opts in ({}, dict(compile=True, compile_mode="reduce-overhead")):
    for c in configs:
        t = time.perf_counter()
        out = train_run(c, data, "cuda", runtime=Runtime.for_config(c, "cuda", **opts))
        print("solo", opts or "eager", "seed", c.seed, summary(out.history), f"{time.perf_counter() - t:.1f} s")
t = time.perf_counter()
for c, out in zip(configs, train_ensemble(configs, data, "cuda")):
    print("ensemble seed", c.seed, summary(out.history))
print(f"ensemble {time.perf_counter() - t:.1f} s")
