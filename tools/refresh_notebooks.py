"""Execute every study notebook at the smoke preset and keep only what nbval checks.

Notebooks are committed without outputs, except the cells marked `# NBVAL_CHECK_OUTPUT`, whose smoke
outputs `pytest --nbval-lax` compares. Run this after editing a notebook:

    .venv/bin/python tools/refresh_notebooks.py [notebooks/01_warm_start_gap.ipynb ...]
"""
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]
CHECK = "# NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        executed_path = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(executed_path), parameters={"out_dir": tmp},
                                   kernel_name="plasticity-nb", cwd=str(path.parent), progress_bar=False)
        executed = nbformat.read(executed_path, as_version=4)
    source = nbformat.read(path, as_version=4)
    checked = {c.source: c for c in executed.cells if c.cell_type == "code" and c.source.startswith(CHECK)}
    for cell in source.cells:
        if cell.cell_type == "code":
            reference = checked.get(cell.source)  # nbval compares only cells that ran (have a count)
            cell.outputs = reference.outputs if reference else []
            cell.execution_count = reference.execution_count if reference else None
            cell.metadata.pop("execution", None)
    nbformat.write(source, path)
    print(f"refreshed {path.relative_to(ROOT)}: kept {len(checked)} checked output(s)")


if __name__ == "__main__":
    for notebook in [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb")):
        refresh(notebook)
