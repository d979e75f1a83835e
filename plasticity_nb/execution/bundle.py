"""A bundle: the stored runs behind committed results, without their weights, to explore without training.

A bundle is an output folder whose `runs/<key>/` folders keep every file the store wrote but the weights (model.pt,
remedies.pt: their manifests still list them, as optional), beside the results made from them (claims.csv,
report.md, figures/, the settled ledger). Its `bundle.json` says what it is: the command, seeds, CPU, code commit
and dates that made its runs, each notebook's parameters, the runs it holds, and the size and SHA-256 of each
results file. The store reads it like any copied store, each run checked against its manifest as it is read, but
read-only: training, writing or reading weights raises BundleError (store.py). `export` makes one
(`python -m tools.make_bundle SRC DST`); `problems` checks one whole.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.paths import BUNDLE
from .provenance import git_commit
from .settings import FIELDS as SETTINGS_FIELDS
from .store import CORRUPT, MANIFEST, OPTIONAL, announce, file_entry, inspect

FORMAT = 1  # of bundle.json
RESULTS = ("claims.csv", "report.md")  # besides figures/* and the settled ledgers (settled-*.json)
EVENTS = "runs/events.log"  # when each run started and finished: provenance, copied when there is one
# Papermill parameters that say where and how a notebook ran, not which runs it read: not kept
RUNTIME = set(SETTINGS_FIELDS)


# -- making one ---------------------------------------------------------------------------------------------
def export(src: str | os.PathLike, dst: str | os.PathLike, results: str | os.PathLike | None = None,
           command: str | None = None, cpu: str | None = None) -> dict[str, Any]:
    """Copy `src`'s runs without weights into a new bundle `dst`, with the results files of `results` (default
    `src`; e.g. the committed copy of a page brought up to date after the run), and write its bundle.json last.
    `command` and `cpu` describe how the runs were made (the runs' provenance names the CPU only by model)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if dst.exists():
        raise FileExistsError(f"{dst} exists: a bundle is made into a new folder")
    keys = copy_runs(src, dst)
    files = copy_results(Path(results).resolve() if results else src, dst)
    if (src / EVENTS).exists():
        shutil.copy2(src / EVENTS, dst / EVENTS)
        files.append(EVENTS)
    marker = {"bundle": FORMAT, "what": "the stored runs behind committed results, to explore without training: "
              "configs, histories, probes, metrics, provenance and manifests; read-only",
              "weights": f"omitted ({', '.join(OPTIONAL)}; the manifests still list them)",
              "command": command or "not recorded", **run_facts(dst, keys, cpu),
              "notebooks": notebook_parameters_of(src), "made_from": str(src), "results_from": str(results or src),
              "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "made_by": f"python -m tools.make_bundle, plasticity_nb at {git_commit()}",
              "runs": keys, "files": digests(dst, files)}
    (dst / BUNDLE).write_text(json.dumps(marker, indent=1) + "\n")
    return marker


def copy_runs(src: Path, dst: Path) -> list[str]:
    """Copy each run folder of `src` that passes its manifest check, without weights; their keys. A run that
    fails is not copied (said once): a bundle holds only what its manifests vouch for."""
    keys = []
    for folder in sorted((src / "runs").glob("[!.]*")):
        if not folder.is_dir():
            continue
        manifest, problem = inspect(folder)
        if manifest is None:
            announce(folder, "not bundled", f"run {folder.name} is left out of the bundle: {problem or 'no manifest'}")
            continue
        shutil.copytree(folder, dst / "runs" / folder.name, ignore=shutil.ignore_patterns(*OPTIONAL))
        keys.append(folder.name)
    if not keys:
        raise FileNotFoundError(f"{src / 'runs'} holds no run that passes its check: nothing to bundle")
    return keys


def copy_results(folder: Path, dst: Path) -> list[str]:
    """Copy the results files of `folder` (RESULTS, figures/, settled ledgers) that exist; their paths in `dst`."""
    found = [p for p in (*(folder / n for n in RESULTS), *folder.glob("settled-*.json"),
                         *sorted((folder / "figures").glob("*"))) if p.is_file()]
    for path in found:
        target = dst / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return [str(p.relative_to(folder)) for p in found]


def run_facts(dst: Path, keys: list[str], cpu: str | None) -> dict[str, Any]:
    """What the runs' configs and provenance say about how they were made."""
    configs = [json.loads((dst / "runs" / k / "config.json").read_text()) for k in keys]
    made = [json.loads((dst / "runs" / k / "provenance.json").read_text()) for k in keys]
    finished = sorted(p["finished_at"] for p in made)
    return {"seeds": sorted({c["seed"] for c in configs}), "precision": one_or_all(c["precision"] for c in configs),
            "data": {c["dataset"]: c["data_id"] for c in configs},
            "cpu": cpu or one_or_all(p["device_name"] for p in made),
            "commit": one_or_all(p["git_commit"] for p in made), "trained": [finished[0], finished[-1]]}


def one_or_all(values) -> str:
    """The value all share, else every value, comma-separated (a bundle made on mixed machines says so)."""
    return ", ".join(sorted(set(values)))


def notebook_parameters_of(src: Path) -> dict[str, dict[str, Any]]:
    """Each executed notebook's papermill parameters (under `src/notebooks/`), by notebook, less RUNTIME's."""
    found = {}
    for path in sorted((src / "notebooks").glob("*.ipynb")):
        parameters = json.loads(path.read_text())["metadata"].get("papermill", {}).get("parameters", {})
        found[path.stem] = {k: v for k, v in parameters.items() if k not in RUNTIME}
    return found


def digests(root: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each file's size and SHA-256, as a run's manifest gives them."""
    return {n: file_entry(root / n) for n in names}


def size_of(folder: str | os.PathLike) -> int:
    """Bytes of every file under `folder`."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# -- checking one -------------------------------------------------------------------------------------------
def read_marker(out_dir: str | os.PathLike) -> dict[str, Any]:
    marker = json.loads((Path(out_dir) / BUNDLE).read_text())
    if marker.get("bundle") != FORMAT:
        raise ValueError(f"{Path(out_dir) / BUNDLE} is bundle format {marker.get('bundle')!r}; this version of "
                         f"plasticity_nb reads format {FORMAT}")
    return marker


def problems(out_dir: str | os.PathLike) -> list[str]:
    """Everything wrong with a bundle: its results files and runs against bundle.json, each run against its
    manifest (the store's check), weights where there should be none. Empty when it is whole."""
    root, marker = Path(out_dir), read_marker(out_dir)
    return file_problems(root, marker) + [p for key in marker["runs"] if (p := run_problem(root / "runs" / key))]


def file_problems(root: Path, marker: dict[str, Any]) -> list[str]:
    """The results files that differ from bundle.json, and runs missing from or added to its list."""
    found = []
    for name, expected in marker["files"].items():
        if not (root / name).is_file():
            found.append(f"{name} is missing")
        elif digests(root, [name])[name] != expected:
            found.append(f"{name} differs from bundle.json's checksum (edited or damaged)")
    stored = {p.name for p in (root / "runs").glob("[!.]*") if p.is_dir()} - {CORRUPT}
    found += [f"run {k} is missing" for k in sorted(set(marker["runs"]) - stored)]
    found += [f"run {k} is not in bundle.json's list" for k in sorted(stored - set(marker["runs"]))]
    return found


def run_problem(folder: Path) -> str | None:
    """What is wrong with one of the bundle's runs: weights (a bundle has none), or whatever the store's manifest
    check finds (weights are optional there, so their absence is no problem). None for a missing run, which
    file_problems names."""
    if not folder.is_dir():
        return None
    weights = [n for n in OPTIONAL if (folder / n).exists()]
    if weights:
        return f"run {folder.name} holds {', '.join(weights)}: a bundle has no weights"
    manifest, problem = inspect(folder)
    return f"run {folder.name}: {problem or f'no {MANIFEST}'}" if manifest is None else None


# -- opening one --------------------------------------------------------------------------------------------
def opened(out_dir: str | os.PathLike) -> str:
    """The bundle's banner, after one warning per problem of its files and run list (the store checks each run
    against its manifest as it reads it, and warns itself)."""
    marker = read_marker(out_dir)
    for problem in file_problems(Path(out_dir), marker):
        announce(Path(out_dir), problem, f"bundle {out_dir}: {problem}")
    return banner(out_dir, marker)


def banner(out_dir: str | os.PathLike, marker: dict[str, Any]) -> str:
    """One plain paragraph: these are the committed runs, how they were made, and that they are read-only."""
    first, last = (t[:10] for t in marker["trained"])
    return (f"Committed runs, read-only: {out_dir} is a bundle of the runs of `{marker['command']}` "
            f"(seeds {seed_ranges(marker['seeds'])}) on {marker['cpu']}, trained {first}"
            f"{'' if first == last else f' to {last}'} at commit {marker['commit'][:7]}; weights omitted. "
            "Nothing here trains or writes: figures and claims are shown, not saved. To train, copy its runs to "
            "an output folder.")


def seed_ranges(seeds: list[int]) -> str:
    """[600, 601, ..., 614, 700] as '600-614, 700'."""
    spans: list[list[int]] = []
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def notebook_parameters(out_dir: str | os.PathLike, notebook: str) -> dict[str, Any]:
    """Papermill parameters that execute `notebook` (its file stem, or its two-digit id) against the bundle."""
    marker = read_marker(out_dir)
    stem = next((s for s in marker["notebooks"] if s == notebook or s.split("_")[0] == notebook), None)
    if stem is None:
        raise KeyError(f"bundle {out_dir} holds no runs of notebook {notebook}: it holds {holds(marker)}")
    return {**marker["notebooks"][stem], "out_dir": str(Path(out_dir).resolve())}


def holds(marker: dict[str, Any]) -> str:
    """The notebooks a bundle ran and their parameters, in words (what a refusal points to)."""
    shown = lambda k, v: seed_ranges(v) if k == "seeds" else v
    return "; ".join(f"{stem} with " + ", ".join(f"{k}={shown(k, v)}" for k, v in params.items())
                     for stem, params in marker["notebooks"].items()) or "no notebook's parameters"


def study_config(config_class: type, stem: str, preset: str, out_dir: str | os.PathLike):
    """A study's config at `preset` as the bundle ran it: its notebook's parameters where it ran that notebook at
    this preset (else the preset's defaults), at the bundle's precision."""
    parameters = read_marker(out_dir)["notebooks"].get(stem, {})
    fields = {f.name for f in dataclasses.fields(config_class)} | set(config_class.RETIRED)  # an older notebook's too
    ran = {k: v for k, v in parameters.items() if k in fields} if parameters.get("preset") == preset else {}
    return with_precision(config_class.from_preset(preset, **ran), out_dir)


def with_precision(config, out_dir: str | os.PathLike):
    """`config` with precision "auto" read as the bundle's: the machine that trained it chose it, not this one."""
    precision = read_marker(out_dir)["precision"]
    return config.replace(precision=precision) if config.precision == "auto" and "," not in precision else config
