"""Smoke-sized runs whose keys and histories the training loop must keep (tests/test_loop_compat.py).

`python -m tests.loop_compat` trains every case and writes tests/data/loop_compat.json. The file was
written by the loop as it was before its redesign into one step plus hooks, so that the new loop is held
to the old one's results: stored runs stay valid only if the same config gives the same key and history.
Single-threaded, on the CPU: the project's bitwise determinism holds for one thread count and one CPU
kind, so the file names the CPU capability and torch version it was recorded with.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from plasticity_nb import Phase, RunConfig
from plasticity_nb.probes import ProbeSettings

RECORDED = Path(__file__).parent / "data" / "loop_compat.json"
UNTIMED = ("seconds", "probe_seconds")  # wall times: the only columns allowed to differ


def _run(phases, **changes) -> RunConfig:
    fields = dict(phases=tuple(phases), model="resnet", depth=1, width=4, train_subset=512, test_subset=1000,
                  batch_size=64, precision="fp32")  # fp32: bf16 is emulated (slow) on AVX2-only CPUs
    return RunConfig(**{**fields, **changes})


WARM = (Phase(pool="half", epochs=2), Phase(pool="full", epochs=3, eval_every=2, eval_tail=1))
PROBED = ProbeSettings(examples=64, batch_size=32, eigen_iterations=3, trace_samples=2)

# name -> one config (trained alone) or a list of configs that differ by seed (trained as one ensemble)
CASES: dict[str, RunConfig | list[RunConfig]] = {
    "resnet_warm": _run(WARM, augment=True),
    "resnet_scratch": _run(WARM[1:], augment=True),
    "mlp_sgd_momentum_target": _run([Phase(pool="half", epochs=2, optimizer="sgd_momentum", lr=0.05),
                                     Phase(epochs=6, optimizer="sgd_momentum", lr=0.05, target_train_acc=0.3)],
                                    model="mlp", depth=2, width=64, weight_decay=1e-3),
    "mlp_rmsprop": _run([Phase(epochs=2, optimizer="rmsprop", lr=1e-3)], model="mlp", depth=1, width=32, seed=2),
    "mlp_diverged": _run([Phase(epochs=3, optimizer="sgd", lr=1e12), Phase(epochs=2)], model="mlp", depth=2, width=32),
    "blend": _run([Phase(pool="half", epochs=1), Phase(pool="blend", epochs=2, gamma=0.5, blend_rate=50.0)]),
    "reset_groups": _run([Phase(pool="half", epochs=1), Phase(epochs=2, reset_groups=(1, 6), optimizer="sgd",
                                                               lr=0.05)], seed=1),
    "multistage": _run([Phase(pool="stage", stage=1, epochs=1), Phase(pool="stage", stage=2, epochs=1),
                        Phase(pool="stage", stage=3, epochs=1)], stages=2, uniform_ratio=0.5),
    "probes": _run([Phase(pool="half", epochs=1, probe_epochs=(0, 1)), Phase(epochs=2, probe_epochs=(1,))],
                   probes=PROBED),
    "ensemble": [_run(WARM, seed=s, augment=True) for s in (3, 4)],
    "ensemble_diverged": [_run([Phase(epochs=2, optimizer="sgd", lr=1e12), Phase(epochs=1)], model="mlp", depth=1,
                               width=16, seed=s) for s in (0, 1)],
}


def platform() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in UNTIMED} for row in rows]


def _result(config: RunConfig, outcome) -> dict[str, Any]:
    return {"key": config.key(), "status": outcome.status, "phases_done": outcome.phases_done,
            "history": _rows(outcome.history), "probes": _rows(outcome.probes)}


def train_case(case: RunConfig | list[RunConfig], data) -> list[dict[str, Any]]:
    """One result per config of the case, trained single-threaded on the CPU."""
    from plasticity_nb.ensemble import train_ensemble
    from plasticity_nb.train import train_run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if isinstance(case, list):
            return [_result(c, o) for c, o in zip(case, train_ensemble(case, data, "cpu"))]
        return [_result(case, train_run(case, data, "cpu"))]
    finally:
        torch.set_num_threads(threads)


def comparable(value: Any) -> Any:
    """JSON values with NaN made equal to itself (a history marks epochs it did not evaluate with NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def main() -> None:
    from plasticity_nb import load_cifar10

    data = load_cifar10(device="cpu")
    results = {}
    for name, case in CASES.items():
        results[name] = train_case(case, data)
        print(name, [(r["status"], len(r["history"])) for r in results[name]], flush=True)
    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(json.dumps({"platform": platform(), "cases": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
