"""The run store: `<out>/runs/<config hash>/` holds one finished run, or nothing.

Each run folder holds `config.json` (the full RunConfig), `history.parquet` (one row per epoch),
`probes.parquet` (curvature and noise probes, if any), `metrics.json` (status and final values),
`provenance.json` (versions, device, git commit, wall time), `model.pt` (final weights, for warm
starts and later analysis) and, for runs with remedies that carry state, `remedies.pt` (what a run
continuing this one needs: continual backprop's utilities and ages, generators). A run is written into
a temporary folder and renamed into place in one step, so a run folder either is complete or does not
exist: an interrupted run never leaves a result that loads.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .runconfig import RunConfig
from .runstate import RunOutcome, RunState

FILES = ("config.json", "history.parquet", "probes.parquet", "metrics.json", "provenance.json", "model.pt")
REMEDY_FILE = "remedies.pt"  # only where the run's remedies carry state


class StoreError(RuntimeError):
    """The output folder cannot be used."""


@dataclasses.dataclass
class RunRecord:
    config: RunConfig
    path: Path
    history: pd.DataFrame
    probes: pd.DataFrame  # curvature/noise probes (empty for runs without probe_epochs)
    metrics: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.metrics["status"]

    def state(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    def outcome(self) -> RunOutcome:
        """This run as a starting point for a longer run (a warm start)."""
        remedies = self.path / REMEDY_FILE
        return RunOutcome(self.history.to_dict("records"), self.probes.to_dict("records"), self.state(), self.status,
                          self.metrics["phases_done"],
                          torch.load(remedies, map_location="cpu", weights_only=True) if remedies.exists() else {})


class RunStore:
    def __init__(self, out_dir: str | os.PathLike):
        self.root = Path(out_dir).expanduser().resolve() / "runs"

    def path(self, config: RunConfig) -> Path:
        return self.root / config.key()

    def has(self, config: RunConfig) -> bool:
        """Whether this config's run is stored (cheap: reads nothing). metrics.json is written last, so a
        folder with it is complete."""
        return (self.path(config) / "metrics.json").exists()

    def load(self, config: RunConfig) -> RunRecord | None:
        """The stored run of exactly this config, or None."""
        if not self.has(config):
            return None
        path = self.path(config)
        return RunRecord(
            config=RunConfig.from_dict(json.loads((path / "config.json").read_text())),
            path=path,
            history=pd.read_parquet(path / "history.parquet"),
            probes=pd.read_parquet(path / "probes.parquet"),
            metrics=json.loads((path / "metrics.json").read_text()),
            provenance=json.loads((path / "provenance.json").read_text()),
        )

    def provenance(self, config: RunConfig) -> dict[str, Any] | None:
        """Only the stored run's provenance (its wall time, say), without loading its tables and weights."""
        return json.loads((self.path(config) / "provenance.json").read_text()) if self.has(config) else None

    def save(self, config: RunConfig, outcome: RunOutcome, provenance: dict[str, Any]) -> RunRecord:
        final = self.path(config)
        self.ensure_writable()
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
            pd.DataFrame(outcome.history).to_parquet(tmp / "history.parquet", index=False)
            pd.DataFrame(outcome.probes).to_parquet(tmp / "probes.parquet", index=False)
            (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1))
            torch.save(outcome.state, tmp / "model.pt")
            if outcome.remedies:
                torch.save(outcome.remedies, tmp / REMEDY_FILE)
            (tmp / "metrics.json").write_text(json.dumps(summarise(outcome), indent=1))
            try:
                os.rename(tmp, final)  # atomic: the folder appears complete or not at all
            except OSError:
                if not (final / "metrics.json").exists():
                    raise
                shutil.rmtree(tmp)  # another process stored the same config first; keep theirs
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.discard_checkpoint(config)
        return self.load(config)

    # -- resumable runs ---------------------------------------------------------------------------
    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.root / ".partial" / config.key() / "checkpoint.pt"

    def save_checkpoint(self, config: RunConfig, state: RunState) -> None:
        """Atomically replace the run's checkpoint (a kill mid-write leaves the previous one intact)."""
        path = self.checkpoint_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".checkpoint.{os.getpid()}.tmp")
        torch.save(vars(state), tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, config: RunConfig) -> RunState | None:
        path = self.checkpoint_path(config)
        if not path.exists():
            return None
        return RunState(**torch.load(path, map_location="cpu", weights_only=True))

    def discard_checkpoint(self, config: RunConfig) -> None:
        shutil.rmtree(self.checkpoint_path(config).parent, ignore_errors=True)

    def discard_stale_checkpoints(self) -> None:
        """Remove the checkpoints of runs that are stored: a process killed between storing a run and
        discarding its checkpoint leaves one behind."""
        partial = self.root / ".partial"
        if partial.is_dir():
            for folder in partial.iterdir():
                if (self.root / folder.name / "metrics.json").exists():
                    shutil.rmtree(folder, ignore_errors=True)

    # -- concurrency -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, config: RunConfig):
        """Exclusive lock on one run across processes (POSIX record lock; the kernel releases it when
        its holder dies, so a killed process never leaves a stale lock)."""
        path = self.root / ".locks" / f"{config.key()}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.lockf(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(handle, fcntl.LOCK_UN)

    def log(self, event: str, config: RunConfig, **details) -> None:
        """Append one line to `runs/events.log`: what was trained, resumed or finished, when and by whom."""
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event,
                           "key": config.key(), "pid": os.getpid(), **details})
        with open(self.root / "events.log", "a") as handle:
            handle.write(line + "\n")

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the run store {self.root}: {err.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"the run store {self.root} is not writable")


def summarise(outcome: RunOutcome) -> dict[str, Any]:
    last = outcome.history[-1] if outcome.history else {}
    tested = [row for row in outcome.history if row["test_acc"] == row["test_acc"]]  # skip NaN
    return {
        "status": outcome.status,
        "phases_done": outcome.phases_done,
        "epochs": last.get("epoch", 0),
        "steps": last.get("step", 0),
        "final_train_acc": last.get("train_acc"),
        "final_test_acc": tested[-1]["test_acc"] if tested else None,
    }
