"""Smoke-sized runs whose keys and histories the training loop must keep (tests/test_loop_compat.py).

Stored runs stay valid only if the same config gives the same key and history. Floats repeat bit for bit only
on one machine identity (CPU vendor, model, kernel-selecting ISA flags, torch version and ATen capability:
`provenance.machine_identity`; single-threaded), so tests/data/loop_compat/ keeps one recording per identity
seen, each naming its identity, and the test compares bitwise where this machine's identity has a recording and
structurally (keys, rows, epochs, steps, evaluated epochs, status) elsewhere. The first recording was made by the
loop as it was before its redesign into one step plus hooks (an Intel Xeon, whose identity was then kept only
in part); the others by a loop that reproduced it bit for bit there.

`python -m tests.loop_compat` trains every case and adds the cases this machine's recording lacks (all of them on
a new machine), after checking the results structurally against every recording and bitwise against this
machine's. A case added later is held by the recordings made since (each says when it was added) and compared
where it is held. Record only with a loop that still passes bitwise on a machine that has a recording: a
recording states what the loop trained before, not what it trains now.
"""
from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from plasticity_nb import Phase, RunConfig
from plasticity_nb.core.cpu import identity_name, machine_identity
from plasticity_nb.execution.provenance import git_commit
from plasticity_nb.measures.metric_settings import MetricSettings
from plasticity_nb.measures.probe_settings import ProbeSettings
from plasticity_nb.remedies.cbp import ContinualBackpropSettings
from plasticity_nb.remedies.dash import Dash
from plasticity_nb.remedies.hare_tortoise import HareTortoise
from plasticity_nb.remedies.l2_init import L2Init
from plasticity_nb.remedies.parseval import Parseval
from plasticity_nb.remedies.redo import ReDo
from plasticity_nb.remedies.sam import SAM
from plasticity_nb.remedies.shrink_perturb import ShrinkPerturb
from plasticity_nb.remedies.soft_shrink_perturb import SoftShrinkPerturb
from plasticity_nb.remedies.weight_clipping import WeightClipping

RECORDINGS = Path(__file__).parent / "data" / "loop_compat"  # <identity_name>.json: {"machine", "cases", ...}
STRUCTURE = ("phase", "pool", "epoch", "phase_epoch", "step")  # what a history row is made of, floats aside
UNTIMED = ("seconds", "probe_seconds")  # wall times: the only columns allowed to differ


def _run(phases, **changes) -> RunConfig:
    fields = dict(phases=tuple(phases), model="resnet", depth=1, width=4, train_subset=512, test_subset=1000,
                  batch_size=64, precision="fp32")  # fp32: bf16 is emulated (slow) on AVX2-only CPUs
    return RunConfig(**{**fields, **changes})


WARM = (Phase(pool="half", epochs=2), Phase(pool="full", epochs=3, eval_every=2, eval_tail=1))
PROBED = ProbeSettings(examples=64, batch_size=32, eigen_iterations=3, trace_samples=2)
METRICS = MetricSettings(examples=64)
# Settings that act within a smoke run: replace units after 2 steps, ReDo every 3 steps with tau 0.5.
CBP = ContinualBackpropSettings(replacement_rate=0.05, maturity_threshold=2)
REDO = ReDo(tau=0.5, every=3, examples=64)

# Cases whose configs' keys changed on purpose, and why: their recordings are compared with the key the config
# has now, every recorded column still bit for bit (the definition change adds columns, it does not move training).
REKEYED = {
    "remedies_at_start": "MetricSettings version 3 (2026-12-01) adds five metrics; its version is in the key",
    "remedies_during": "MetricSettings version 3 (2026-12-01) adds five metrics; its version is in the key",
}
# Settings of the remedies of issue 23, sized to act within a smoke run.
NEW_REMEDIES = (Parseval(), SAM(), SoftShrinkPerturb(shrink=0.99, perturb=0.01), WeightClipping(zeta=2.0),
                HareTortoise(beta=0.9, reset_every=1))

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
    # Remedies at each phase start, then those during a phase, each with every plasticity metric recorded.
    "remedies_at_start": _run([Phase(pool="half", epochs=2), Phase(epochs=2, remedies=(Dash(), ShrinkPerturb()))],
                              metrics=METRICS),
    "remedies_during": _run([Phase(pool="half", epochs=2, remedies=(CBP, REDO)),
                             Phase(epochs=2, remedies=(CBP, REDO, L2Init(coefficient=1e-3)))],
                            metrics=METRICS, seed=5),
    "remedies_new": _run([Phase(pool="half", epochs=2, remedies=NEW_REMEDIES), Phase(epochs=2, remedies=NEW_REMEDIES)],
                         metrics=METRICS, seed=6),
    "ensemble": [_run(WARM, seed=s, augment=True) for s in (3, 4)],
    "ensemble_diverged": [_run([Phase(epochs=2, optimizer="sgd", lr=1e12), Phase(epochs=1)], model="mlp", depth=1,
                               width=16, seed=s) for s in (0, 1)],
}


def recordings() -> dict[str, dict[str, Any]]:
    """Every recording, by file name (oldest first: the pre-redesign loop's), the REKEYED cases' runs under the
    keys their configs have now."""
    found = {p.stem: json.loads(p.read_text()) for p in RECORDINGS.glob("*.json")}
    for recording in found.values():
        for case in REKEYED.keys() & recording["cases"].keys():
            runs = recording["cases"][case]
            recording["cases"][case] = [{**run, "key": c.key()} for run, c in zip(runs, configs_of(CASES[case]))]
    return dict(sorted(found.items(), key=lambda item: item[1]["recorded"]))


def recording_for(identity: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(name, recording) made on exactly this machine identity, or None."""
    return next(((name, r) for name, r in recordings().items() if r["machine"] == identity), None)


def structure(result: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """A comparable result without its float values: key, status, rows with their epochs and steps, and which
    epochs were evaluated; up to the first phase that stops at a train-accuracy target, since when it stops
    depends on the floats (`stops_at_its_target` checks that phase instead)."""
    first_target = next((i + 1 for i, p in enumerate(config.phases) if p.target_train_acc is not None), None)
    before = lambda r: first_target is None or r["phase"] < first_target
    rows = lambda table: [{**{k: r[k] for k in STRUCTURE}, "evaluated": r.get("test_acc") != "NaN"}
                          for r in table if before(r)]
    return {**result, "history": rows(result["history"]), "probes": rows(result["probes"])}


def stops_at_its_target(result: dict[str, Any], config: RunConfig) -> bool:
    """Each phase with a train-accuracy target ended at the first epoch that reached it, or at its budget."""
    for number, phase in enumerate(config.phases, start=1):
        if phase.target_train_acc is None:
            continue
        accuracies = [r["train_acc"] for r in result["history"] if r["phase"] == number]
        reached = [i for i, acc in enumerate(accuracies, start=1) if acc >= phase.target_train_acc]
        if len(accuracies) != (reached[0] if reached else phase.epochs):
            return False
    return True


def configs_of(case: RunConfig | list[RunConfig]) -> list[RunConfig]:
    return case if isinstance(case, list) else [case]


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in UNTIMED} for row in rows]


def _result(config: RunConfig, outcome) -> dict[str, Any]:
    return {"key": config.key(), "status": outcome.status, "phases_done": outcome.phases_done,
            "history": _rows(outcome.history), "probes": _rows(outcome.probes)}


def train_case(case: RunConfig | list[RunConfig], data) -> list[dict[str, Any]]:
    """One result per config of the case, trained single-threaded on the CPU."""
    from plasticity_nb.training.ensemble import train_ensemble
    from plasticity_nb.training.train import train_run

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


def recorded_columns(trained: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`trained` with each history/probe row cut to the columns the recording has (columns added since a
    recording, e.g. a probe's loss, are not compared)."""
    def cut(run, reference):
        tables = {t: [{k: row[k] for k in ref if k in row} for row, ref in zip(run[t], reference[t])]
                  + run[t][len(reference[t]):] for t in ("history", "probes")}
        return {**run, **tables}
    return [cut(run, reference) for run, reference in zip(trained, recorded)]


def main() -> None:
    """Train every case; refuse if any differs in structure from a recording, or bitwise from this machine's;
    then add the cases this machine's recording lacks (a new machine: all of them)."""
    from plasticity_nb import load_cifar10

    identity = machine_identity()
    name = identity_name(identity)
    data = load_cifar10(device="cpu")
    results = {}
    for case, configs in CASES.items():
        results[case] = train_case(configs, data)
        print(case, [(r["status"], len(r["history"])) for r in results[case]], flush=True)
    for other, recording in recordings().items():
        differ = [case for case, runs in comparable(recording["cases"]).items()
                  if [structure(r, c) for r, c in zip(comparable(results[case]), configs_of(CASES[case]))]
                  != [structure(r, c) for r, c in zip(runs, configs_of(CASES[case]))]]
        if differ:
            sys.exit(f"not recorded: case(s) {', '.join(differ)} differ in structure from recording {other}, so this "
                     "loop does not train what it did before")
    stamp = {"recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit()}
    own = recording_for(identity)
    recorded = own[1] if own else {"machine": identity, **stamp, "cases": {}}
    changed = [case for case, runs in recorded["cases"].items()
               if recorded_columns(comparable(results[case]), comparable(runs)) != comparable(runs)]
    if changed:
        sys.exit(f"not recorded: case(s) {', '.join(changed)} no longer train bit for bit as this machine's "
                 f"recording {own[0]}: a recording states what the loop trained before")
    new = [case for case in CASES if case not in recorded["cases"]]
    if own:  # written back as it was recorded (REKEYED cases under their old keys), plus the new cases
        recorded = json.loads((RECORDINGS / f"{own[0]}.json").read_text())
    for case in new:
        recorded["cases"][case] = results[case]
        recorded.setdefault("added", {})[case] = stamp  # cases added after the recording was first made
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    (RECORDINGS / f"{name}.json").write_text(json.dumps(recorded, indent=1) + "\n")
    flags = ", ".join(identity["flags"] or ["flags unknown"])
    print(f"recorded {len(new)} new case(s) into {RECORDINGS / name}.json for {identity['model']} ({flags})")


if __name__ == "__main__":
    main()
