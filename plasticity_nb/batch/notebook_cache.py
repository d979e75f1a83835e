"""The batch's execution cache: an executed notebook is reused while nothing it depends on has changed.

A notebook's output is a function of its source, its parameters, this package (version and source), the
data copy and the runs it loads. The cache keys an execution by a hash of all of these; the run keys stand
for what the parameters resolve to on this machine (e.g. `precision="auto"` is bf16 on some CPUs, fp32 on
others), and a hit also needs every one of those runs still in the store. An entry under
`<out>/notebook-cache/<key>/` holds the executed notebook and what the notebook wrote besides it (its rows
of claims.csv and its figures), so that a hit restores all of that without starting a kernel.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..analysis.claims import claims_path, read_claims, replace_rows
from ..core.files import copy_atomic, locked
from ..core.paths import PACKAGE_DIR
from ..core.version import __version__

FOLDER = "notebook-cache"
NOTEBOOK = "notebook.ipynb"
FIGURES = "figures"


def parameter_names(notebook: Path) -> set[str]:
    """The names assigned in the notebook's cell tagged `parameters` (papermill's convention), read with
    `ast`: papermill's own inspection gives the same names (tested) but imports Jupyter's stack (~1-4 s),
    which a `--train-only` machine may not have."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return set()
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    targets = [t for node in ast.parse(source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    return {t.id for t in targets if isinstance(t, ast.Name)}


@functools.lru_cache(maxsize=1)
def package_source_hash() -> str:
    """One hash over every source file of this package (names and contents)."""
    root = PACKAGE_DIR
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def execution_key(notebook: Path, parameters: dict[str, Any], data_id: str, run_keys: list[str]) -> str:
    inputs = {"notebook": file_hash(notebook), "parameters": parameters,
              "package_version": __version__, "package_source": package_source_hash(), "data_id": data_id,
              "runs": sorted(run_keys)}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:20]


class NotebookCache:
    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / FOLDER

    def entry(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.entry(key) / NOTEBOOK).exists()  # written last: an entry with it is complete

    @property
    def lock(self) -> Path:
        """Held while an entry is replaced or restored: batches on one output folder share the cache."""
        return self.out_dir / ".locks" / "notebook-cache.lock"

    def save(self, key: str, executed: Path, stem: str, preset: str, figures: list[Path]) -> None:
        """Keep an execution: its notebook, its claims rows at this preset and the figures it wrote. Under the
        cache's lock, so that a temporary entry found there is a killed writer's and is removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        with locked(self.lock):
            for stale in self.root.glob(".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            try:
                (tmp / FIGURES).mkdir(parents=True)
                claims = read_claims(self.out_dir)
                claims[(claims.notebook == stem) & (claims.preset == preset)].to_csv(claims_path(tmp), index=False)
                for figure in figures:
                    shutil.copy2(figure, tmp / FIGURES / figure.name)
                shutil.copy2(executed, tmp / NOTEBOOK)
                if self.has(key):
                    shutil.rmtree(self.entry(key))  # a --force re-execution, or another batch's: the newest wins
                os.rename(tmp, self.entry(key))  # atomic: the entry appears complete or not at all
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def restore(self, key: str, preset: str, final: Path) -> None:
        """Put a cached execution back: the notebook at `final`, its figures, its rows of claims.csv."""
        entry = self.entry(key)
        figures = self.out_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        with locked(self.lock):
            for figure in sorted((entry / FIGURES).iterdir()):
                copy_atomic(figure, figures / figure.name)
            rows = read_claims(entry)  # the entry's claims.csv holds the notebook's rows
            if len(rows):
                replace_rows(self.out_dir, preset, rows)
            final.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(entry / NOTEBOOK, final)
