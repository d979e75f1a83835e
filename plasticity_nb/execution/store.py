"""The run store: `<out>/runs/<config hash>/` holds one finished run, or nothing.

Each run folder holds `config.json` (the full RunConfig), `history.parquet` (one row per epoch),
`probes.parquet` (curvature and noise probes, if any), `metrics.json` (status and final values),
`provenance.json` (versions, device, git commit, wall time), `model.pt` (final weights, for warm
starts and later analysis), for runs with remedies that carry state `remedies.pt` (what a run continuing
this one needs: continual backprop's utilities and ages, generators), and, written last, `manifest.json`:
the store format and every file's size and SHA-256, `model.pt` and `remedies.pt` marked optional (a store
copied without weights still reads). A run is written into a temporary folder and renamed into place in one
step, so a run folder either is complete or does not exist.

What is read is checked against the manifest (`inspect`): a run that does not match it (truncated, copied in
part, edited) is moved to `runs/.corrupt/` with one warning and counts as not stored, so a batch trains it
again; a read-only store (the explorer) warns and skips it. Runs stored before manifests existed are checked
file by file (each parses, the config hashes to its folder's name) and given a manifest, said once per store.

A bundle (execution/bundle.py: committed runs without weights, marked by `bundle.json`) is read as a read-only
store: whatever would train or write into it, or read weights from it, raises BundleError.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import shutil
import sys
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core.config import ConfigError
from ..core.files import is_locked, locked, write_atomic
from ..core.paths import is_bundle
from ..run.run_config import RunConfig
from ..run.run_state import RunOutcome, RunState

STORE_FORMAT = 2  # of a run folder: 2 has manifest.json; 1 (no format recorded) is the layout before it
MANIFEST = "manifest.json"
REMEDY_FILE = "remedies.pt"  # only where the run's remedies carry state
OPTIONAL = ("model.pt", REMEDY_FILE)  # needed to continue a run (a warm start), not to read its results
FILES = ("config.json", "history.parquet", "probes.parquet", "metrics.json", "provenance.json", "model.pt",
         MANIFEST)
ATTEMPTS = "attempts.jsonl"  # runs/.partial/<key>/: one line per process that began training the run
CORRUPT = ".corrupt"  # runs/.corrupt/<key>-<time>/: runs set aside, each with REASON
REASON = "REASON.txt"


class StoreError(RuntimeError):
    """The output folder cannot be used."""


class BundleError(StoreError):
    """Something would train or write into a bundle, or read weights from it: it is read-only and has none."""


def bundle_refusal(out_dir: Path, what: str) -> BundleError:
    """The one error of every refusal: names the bundle, what it cannot do, and where to do it instead."""
    return BundleError(f"{out_dir} is a bundle of committed runs (read-only, weights omitted): it cannot {what}. "
                       f"To train or write results, copy its runs to an output folder and work there: "
                       f"cp -r {out_dir / 'runs'} <out>/")


class CorruptRun(StoreError):
    """A stored run's file does not match its manifest (found when reading its weights); it was set aside."""


class StoreWarning(UserWarning):
    """A stored run was set aside, skipped or given a manifest."""


def print_store_warnings_plainly() -> None:
    """Command-line processes: a StoreWarning prints as one line `warning: ...` (not with a source line)."""
    shown = warnings.showwarning
    if getattr(shown, "plain_store_warnings", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, StoreWarning):
            print(f"warning: {message}", file=file or sys.stderr, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)
    show.plain_store_warnings = True
    warnings.showwarning = show


@dataclasses.dataclass
class RunRecord:
    config: RunConfig
    path: Path
    history: pd.DataFrame
    probes: pd.DataFrame  # curvature/noise probes (empty for runs without probe_epochs)
    metrics: dict[str, Any]
    provenance: dict[str, Any]
    manifest: dict[str, Any] | None = None  # the files' sizes and checksums (None for records built by hand)

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.metrics["status"]

    def state(self) -> dict[str, torch.Tensor]:
        return self._tensors("model.pt")

    def outcome(self) -> RunOutcome:
        """This run as a starting point for a longer run (a warm start)."""
        remedies = self._tensors(REMEDY_FILE) if (self.path / REMEDY_FILE).exists() else {}
        return RunOutcome(self.history.to_dict("records"), self.probes.to_dict("records"), self.state(), self.status,
                          self.metrics["phases_done"], remedies)

    def _tensors(self, name: str) -> dict[str, torch.Tensor]:
        """A weights file, checked against the manifest as it is read (the store checks only its size before)."""
        path = self.path / name
        if not path.exists() and is_bundle(self.path.parent.parent):
            raise bundle_refusal(self.path.parent.parent, f"give run {self.key}'s weights ({name})")
        if not path.exists():
            raise StoreError(f"run {self.key} in {self.path.parent} was stored without {name} (a store copied without "
                             f"weights?): runs that continue from it need it. Copy {name} too, or move {self.path} "
                             "away to train the run again")
        signature = _signature(self.path)
        data = path.read_bytes()
        expected = (self.manifest or {}).get("files", {}).get(name)
        if expected and hashlib.sha256(data).hexdigest() != expected["sha256"]:
            reason = f"{name}'s checksum differs from the manifest's (damaged or edited)"
            RunStore(self.path.parent.parent).set_aside(self.path, reason, signature)
            raise CorruptRun(f"run {self.key}: {reason}; it was moved to {self.path.parent / CORRUPT} and is trained "
                             "again when needed")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class RunStore:
    def __init__(self, out_dir: str | os.PathLike, read_only: bool = False):
        """`read_only`: never write (the explorer): runs that fail their check are reported and skipped, not set
        aside, and old runs get no manifest. A bundle is always read only."""
        self.root = Path(out_dir).expanduser().resolve() / "runs"
        self.bundle = is_bundle(self.root.parent)
        self.read_only = read_only or self.bundle

    def path(self, config: RunConfig) -> Path:
        return self.root / config.key()

    def has(self, config: RunConfig) -> bool:
        """Whether this config's run is stored and passes its check (see `inspect`; checked once per process
        while its files stay unchanged). A run that fails is set aside (or, read-only, skipped) with a warning."""
        return self._checked(self.path(config)) is not None

    def stored_keys(self) -> list[str]:
        """Names of the run folders that pass their check (the others are set aside, or skipped, as by `has`)."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.glob("[!.]*") if p.is_dir() and self._checked(p) is not None)

    def load(self, config: RunConfig) -> RunRecord | None:
        """The stored run of exactly this config, or None (also when it failed its check)."""
        path = self.path(config)
        manifest = self._checked(path)
        if manifest is None:
            return None
        return RunRecord(config=RunConfig.from_dict(json.loads((path / "config.json").read_text())), path=path,
                         history=pd.read_parquet(path / "history.parquet"),
                         probes=pd.read_parquet(path / "probes.parquet"),
                         metrics=json.loads((path / "metrics.json").read_text()),
                         provenance=json.loads((path / "provenance.json").read_text()), manifest=manifest)

    def provenance(self, config: RunConfig) -> dict[str, Any] | None:
        """Only the stored run's provenance (its wall time, say), without loading its tables and weights."""
        return json.loads((self.path(config) / "provenance.json").read_text()) if self.has(config) else None

    def save(self, config: RunConfig, outcome: RunOutcome, provenance: dict[str, Any]) -> RunRecord:
        final = self.path(config)
        self.ensure_writable()
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            write_run(tmp, config, outcome, provenance)
            self._move_into_place(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.discard_checkpoint(config)
        return self.load(config)

    def _move_into_place(self, tmp: Path, final: Path) -> None:
        """Rename `tmp` to `final` (atomic: the folder appears complete or not at all). A run already there that
        passes its check was stored by another process first: keep theirs; one that fails is set aside first."""
        for _ in range(2):
            try:
                os.rename(tmp, final)
                return
            except OSError:
                if not final.exists():
                    raise
                if self._checked(final) is not None:
                    shutil.rmtree(tmp)
                    return
        raise StoreError(f"cannot store run {final.name}: {final} keeps reappearing without passing its check")

    # -- checking what is read -------------------------------------------------------------------
    def _checked(self, path: Path) -> dict[str, Any] | None:
        """The run's manifest if the folder passes `inspect` (memoised on its files' sizes and times), else None
        after setting the folder aside (or, read-only, reporting it)."""
        signature = _signature(path)
        if signature is None:
            return None
        memo = _CHECKED.get(path)
        if memo is not None and memo[0] == signature:
            return memo[1]
        manifest, problem = inspect(path)
        if problem is not None:
            self.set_aside(path, problem, signature)
            return None
        if manifest is None:  # stored before manifests: every file parsed
            manifest = self._adopt(path)
            signature = _signature(path)
        _CHECKED[path] = (signature, manifest)
        return manifest

    def _adopt(self, path: Path) -> dict[str, Any]:
        """A manifest for a run stored before manifests existed (its files all parsed), written unless read-only."""
        manifest = manifest_of(path, adopted=True)
        announce(self.root, "adopted", f"runs in {self.root} were stored before run folders had a manifest: each "
                 "is checked file by file as it is read" + ("" if self.read_only else " and given a manifest")
                 + f" (first: {path.name})")
        if not self.read_only:
            with self._store_lock():
                if path.exists() and not (path / MANIFEST).exists():
                    write_atomic(path / MANIFEST, json.dumps(manifest, indent=1))
        return manifest

    def set_aside(self, path: Path, reason: str, signature: tuple | None) -> None:
        """Move a run folder that failed its check to runs/.corrupt/ (read-only: only warn), under the store's
        lock, unless its files changed since `signature` (`_signature` when the check ran): another process may
        have set it aside or replaced it meanwhile."""
        if self.read_only:
            announce(path, reason, f"run {path.name} in {self.root} is skipped: {reason} (not moved: this reader does "
                     "not write to the store)")
            return
        with self._store_lock():
            if _signature(path) != signature:
                return
            target = self.root / CORRUPT / f"{path.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
            (target / REASON).write_text(reason + "\n")
        _CHECKED.pop(path, None)
        warnings.warn(f"run {path.name} in {self.root} failed its check: {reason}; moved to {target}, and trained "
                      "again when a batch needs it", StoreWarning, stacklevel=3)

    @contextlib.contextmanager
    def _store_lock(self):
        """Store-wide changes (setting runs aside, writing old runs' manifests); a separate file from the run
        locks, which a process may hold while it checks a run."""
        with locked(self.root / ".locks" / "store.lock"):
            yield

    # -- resumable runs ---------------------------------------------------------------------------
    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.root / ".partial" / config.key() / "checkpoint.pt"

    def save_checkpoint(self, config: RunConfig, state: RunState) -> None:
        """Atomically replace the run's checkpoint (a kill or a full disk mid-write leaves the previous one)."""
        path = self.checkpoint_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, tensor_bytes(vars(state)))

    def load_checkpoint(self, config: RunConfig) -> RunState | None:
        path = self.checkpoint_path(config)
        if not path.exists():
            return None
        return RunState(**torch.load(path, map_location="cpu", weights_only=True))

    def record_attempt(self, config: RunConfig, attempt: dict[str, Any]) -> list[dict[str, Any]]:
        """Note that a process starts (or resumes) training the run, beside its checkpoint; returns every attempt so
        far, this one last. An attempt that was killed (a lost worker or node) leaves its line, so the run's
        provenance says it was retried, whether its retry resumed from a checkpoint or trained from the start."""
        path = self.checkpoint_path(config).with_name(ATTEMPTS)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_line(path, json.dumps(attempt))
        return [json.loads(line) for line in path.read_text().splitlines()]

    def discard_checkpoint(self, config: RunConfig) -> None:
        shutil.rmtree(self.checkpoint_path(config).parent, ignore_errors=True)

    def discard_leftovers(self) -> None:
        """Remove what killed processes left: the checkpoints of runs that are stored (a kill between storing a
        run and discarding its checkpoint), and temporary run folders that nobody is writing (a kill while storing
        a run; its writer held the run's lock, so a free lock means a dead writer). Call only while holding no run
        lock (a process's second handle on a lock file would release its first)."""
        if self.bundle:  # nothing trains in a bundle, so nothing is left over, and nothing is removed from it
            return
        partial = self.root / ".partial"
        if partial.is_dir():
            for folder in partial.iterdir():
                if (self.root / folder.name / MANIFEST).exists() or (self.root / folder.name / "metrics.json").exists():
                    shutil.rmtree(folder, ignore_errors=True)
        for tmp in self.root.glob(".tmp-*") if self.root.is_dir() else ():
            key = tmp.name.removeprefix(".tmp-").split("-")[0]
            if not is_locked(self.root / ".locks" / f"{key}.lock"):
                shutil.rmtree(tmp, ignore_errors=True)

    # -- concurrency -----------------------------------------------------------------------------
    def lock_path(self, config: RunConfig) -> Path:
        return self.root / ".locks" / f"{config.key()}.lock"

    @contextlib.contextmanager
    def lock(self, config: RunConfig):
        """Exclusive lock on one run across processes (the kernel releases it when its holder dies)."""
        with locked(self.lock_path(config)):
            yield

    def log(self, event: str, config: RunConfig, **details) -> None:
        """Append one line to `runs/events.log`: what was trained, resumed or finished, when and by whom."""
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event,
                           "key": config.key(), "pid": os.getpid(), **details})
        append_line(self.root / "events.log", line)

    def refuse_if_bundle(self, what: str) -> None:
        """BundleError if this store is a bundle: `what` (e.g. "train run ...") cannot happen in it."""
        if self.bundle:
            raise bundle_refusal(self.root.parent, what)

    def ensure_writable(self) -> None:
        self.refuse_if_bundle("store runs or results")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the run store {self.root}: {err.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"the run store {self.root} is not writable")


# Per process: run folders already checked, with the (name, size, mtime) of their files then and their manifest.
_CHECKED: dict[Path, tuple[tuple, dict[str, Any]]] = {}
_ANNOUNCED: set[tuple[str, str]] = set()


def announce(where: Path, what: str, message: str) -> None:
    """Warn once per process about `what` at `where`."""
    if (str(where), what) not in _ANNOUNCED:
        _ANNOUNCED.add((str(where), what))
        warnings.warn(message, StoreWarning, stacklevel=4)


def append_line(path: Path, line: str) -> None:
    """Append one line in one write (concurrent writers' lines do not interleave); on a full disk, take back
    what part of it was written, so that readers of the file never see half a line."""
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        written = 0
        try:
            written = os.write(fd, data)
            if written < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        except OSError:
            if os.fstat(fd).st_size == end + written:  # nobody appended since
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)


def _signature(path: Path) -> tuple | None:
    """The folder's files with their sizes and modification times; None if there is no folder."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(path)))
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_run(folder: Path, config: RunConfig, outcome: RunOutcome, provenance: dict[str, Any]) -> None:
    """Every file of a stored run, the manifest last. Serialised in memory and written as bytes, so that a
    failing write (a full disk) raises the OSError it is, whatever library made the bytes."""
    files = {"config.json": json.dumps(config.to_dict(), indent=1).encode(),
             "history.parquet": parquet_bytes(outcome.history), "probes.parquet": parquet_bytes(outcome.probes),
             "provenance.json": json.dumps(provenance, indent=1).encode(), "model.pt": tensor_bytes(outcome.state),
             "metrics.json": json.dumps({**summarise(outcome), "store_format": STORE_FORMAT}, indent=1).encode()}
    if outcome.remedies:
        files[REMEDY_FILE] = tensor_bytes(outcome.remedies)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST).write_text(json.dumps(manifest_of(folder), indent=1))


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer, index=False)
    return buffer.getvalue()


def tensor_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def file_entry(path: Path) -> dict[str, Any]:
    """A file's size and SHA-256, as a manifest lists it."""
    return {"size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def manifest_of(folder: Path, adopted: bool = False) -> dict[str, Any]:
    """The manifest of the files in `folder` as they are now."""
    files = {p.name: file_entry(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    return {"format": STORE_FORMAT, "files": files, "optional": [n for n in OPTIONAL if n in files],
            **({"adopted": "stored before manifests; each file parsed when this was written"} if adopted else {})}


def inspect(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, problem) of a run folder: (manifest, None) when it matches its manifest (weights by size only:
    their checksum is checked as they are read); (None, None) for a run stored before manifests whose every file
    parses; (None, what is wrong) otherwise."""
    if not (folder / MANIFEST).exists():
        return None, unmanifested_problem(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        fmt, files, optional = manifest["format"], manifest["files"], manifest["optional"]
    except (ValueError, KeyError, TypeError):
        return None, f"{MANIFEST} does not parse"
    if fmt != STORE_FORMAT:
        return None, f"store format {fmt!r}, this version of plasticity_nb reads format {STORE_FORMAT}"
    for name, expected in files.items():
        path = folder / name
        if not path.exists():
            if name in optional:
                continue
            return None, f"{name} is missing (a partial copy?)"
        if path.stat().st_size != expected["size"]:
            return None, f"{name} has {path.stat().st_size} bytes, its manifest says {expected['size']} (truncated?)"
        if name not in OPTIONAL and hashlib.sha256(path.read_bytes()).hexdigest() != expected["sha256"]:
            return None, f"{name}'s checksum differs from the manifest's (damaged or edited)"
    return manifest, None


def unmanifested_problem(folder: Path) -> str | None:
    """What is wrong with a run folder without a manifest; None if it is an old run whose every file parses."""
    if not (folder / "metrics.json").exists():
        return "neither manifest.json nor metrics.json: an incomplete run folder (a partial copy?)"
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        if "store_format" in metrics:
            return f"{MANIFEST} is missing (a partial copy?)"
        config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
        if config.key() != folder.name:
            return f"its config.json hashes to {config.key()}, not to its folder's name (another version's run?)"
        for name in ("history.parquet", "probes.parquet"):
            pd.read_parquet(folder / name)
        json.loads((folder / "provenance.json").read_text())
        if not {"status", "phases_done"} <= set(metrics):
            return "metrics.json lacks status or phases_done (another version's run?)"
        for name in OPTIONAL:
            if (folder / name).exists():
                torch.load(folder / name, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        return f"{Path(err.filename).name} is missing (a partial copy?)"
    except (ValueError, KeyError, TypeError, ConfigError, OSError, RuntimeError, EOFError) as err:
        return f"a file does not parse ({type(err).__name__}: {str(err)[:200]})"
    return None


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
