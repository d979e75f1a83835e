"""Tiny, fast configs for tests (seconds on a CPU), and what the batch tests run and read from an output folder."""
import hashlib
import json
import random
import re
import subprocess
import sys
import time

from plasticity_nb import Phase, RunConfig, RunStore
from plasticity_nb.core.files import is_locked
from plasticity_nb.core.paths import project_root

COMMITTED = project_root() / "results" / "quick"  # the committed bundle (docs/bundle.md)
# The history columns that repeat bit for bit on one machine (not the wall times).
DETERMINISTIC = ["phase", "epoch", "phase_epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"]


def tiny_run(seed: int = 0, phases=None, **changes) -> RunConfig:
    phases = phases or (Phase(pool="half", epochs=1), Phase(pool="full", epochs=1))
    fields = dict(phases=phases, seed=seed, model="resnet", depth=1, width=4, train_subset=256, test_subset=200,
                  batch_size=32, precision="fp32")  # fp32: bf16 is emulated (slow) on AVX2-only CPUs
    return RunConfig(**{**fields, **changes})


def run_folders(out):
    """The stored runs of an output folder (not its locks, checkpoints or event log)."""
    root = out / "runs"
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.exists() else []


def stored_runs(out):
    """Every run folder must load completely; returns {key: history (DETERMINISTIC columns)}."""
    store = RunStore(out)
    runs = {}
    for folder in run_folders(out):
        config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
        record = store.load(config)
        assert record is not None and record.key == folder.name, f"{folder} is not a complete run"
        runs[folder.name] = record.history[DETERMINISTIC]
    return runs


def events(out):
    """runs/events.log as a list of dicts."""
    path = RunStore(out).root / "events.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def batch(out, args, log, **popen) -> subprocess.Popen:
    """`python -m plasticity_nb ARGS --out OUT` in the background, its output (stdout and stderr) into `log`."""
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-m", "plasticity_nb", *args, "--out", str(out)], stdout=handle,
                                stderr=subprocess.STDOUT, text=True, **popen)


def checkpoints(out) -> set[tuple[str, int]]:
    """(path, modification time) of every checkpoint in progress: a rewritten one counts as new."""
    found = set()
    for path in (RunStore(out).root / ".partial").glob("*/checkpoint.pt"):
        try:
            found.add((str(path), path.stat().st_mtime_ns))
        except FileNotFoundError:  # finished and removed meanwhile
            pass
    return found


def leftovers(out) -> list[str]:
    """What interrupted writers may leave and a finished batch must not: temporary run folders and cache entries,
    checkpoints, runs set aside, locks still held."""
    root = RunStore(out).root
    found = [*root.glob(".tmp-*"), *(out / "notebook-cache").glob(".tmp-*"), *root.glob(".partial/*/*"),
             *root.glob(".corrupt/*")]
    held = [p for p in [*root.glob(".locks/*.lock"), *(out / ".locks").glob("*.lock")] if is_locked(p)]
    return sorted(str(p.relative_to(out)) for p in found) + [f"held: {p.name}" for p in held]


def history_frame(outcome):
    """A run's history as a frame without its wall times (the one column that may differ between runs)."""
    import pandas as pd

    return pd.DataFrame(outcome.history).drop(columns="seconds")


def assert_same_run(got, want):
    """Two outcomes of one config: the same history (wall times aside) and the same final state, bit for bit."""
    import pandas as pd
    import torch

    pd.testing.assert_frame_equal(history_frame(got), history_frame(want))
    assert all(torch.equal(got.state[k], want.state[k]) for k in want.state)


def assert_resumes_bit_identically(config: RunConfig, data, out):
    """Train `config` with a checkpoint every epoch; resuming from each checkpoint (through the store's files,
    as a killed process leaves them) and continuing a stored prefix both end bit for bit as the whole run.
    Returns the whole run's outcome and its checkpoints."""
    from plasticity_nb.training.train import train_run

    saved = []
    whole = train_run(config, data, checkpoint=saved.append, checkpoint_every=1)
    store = RunStore(out)
    for state in saved:
        store.save_checkpoint(config, state)
        assert_same_run(train_run(config, data, resume=store.load_checkpoint(config)), whole)
    prefix = store.save(config.prefix(), train_run(config.prefix(), data), {})
    assert_same_run(train_run(config, data, start=prefix.outcome()), whole)
    return whole, saved


NOTEBOOK_LINE = re.compile(r"^\[(\d\d)\] ")


def notebook_lines(log) -> list[str]:
    """The batch's lines about a notebook (`[07] 07_resets: ...`), in order."""
    return [line for line in log.read_text().replace("\r", "\n").splitlines() if NOTEBOOK_LINE.match(line)]


def wait_for(notebook: str, stage: str, process, out, log, rng: random.Random) -> None:
    """Until the batch works on `notebook` (or has passed it, or ended), then until `stage` comes in it: a new
    checkpoint or a run stored (training), its kernel running (executing), and a random moment more."""
    deadline = time.monotonic() + 600
    alive = lambda: process.poll() is None and time.monotonic() < deadline
    reached = lambda: any(NOTEBOOK_LINE.match(line).group(1) >= notebook for line in notebook_lines(log))
    while alive() and not reached():
        time.sleep(0.05)
    before = (checkpoints(out), len([e for e in events(out) if e["event"] == "finish"]))
    came = {
        "training: after a checkpoint": lambda: checkpoints(out) - before[0],
        "training: after a run is stored": lambda: len([e for e in events(out) if e["event"] == "finish"]) > before[1],
        "executing its notebook": lambda: any(line.startswith(f"[{notebook}]") and "running (preset" in line
                                              for line in notebook_lines(log)),
    }[stage]
    passed = lambda: any(NOTEBOOK_LINE.match(line).group(1) > notebook for line in notebook_lines(log))
    while alive() and not came() and not passed():
        time.sleep(0.05)
    time.sleep(rng.uniform(0, 3.0 if stage.startswith("executing") else 0.5))


def where(out, log) -> dict:
    """Where a kill landed: the batch's last line about a notebook and the store's last event."""
    lines = notebook_lines(log)
    last = events(out)[-1] if events(out) else {}
    return {"batch": lines[-1][:100] if lines else "(starting: plan)", "event": last.get("event"),
            "key": last.get("key"), "phase": last.get("phase"), "epoch": last.get("epoch")}


def files_of(folder):
    """Every file under `folder` with its SHA-256: what must not change when a bundle is read."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
