"""Build the documentation site offline into site/ (what `make docs` runs), strictly: any broken link, missing page
or warning fails the build.

First the generated pages (tools/docs_pages.py); then each notebook whose runs a committed bundle holds is
executed against it (read-only: nothing trains) into build/notebooks/, where the site renders it from: against
results/quick (the settled runs) where it holds the notebook, else results/explore (the exploratory ones). The
others render as committed. Then `mkdocs build --strict`.

    python -m tools.build_docs [--site DIR] [--no-execute]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import papermill

from plasticity_nb.execution.bundle import notebook_parameters, read_marker
from tools import docs_pages

ROOT = docs_pages.ROOT
BUNDLES = (ROOT / "results" / "quick", ROOT / "results" / "explore")  # the settled runs first
EXECUTED = ROOT / "build" / "notebooks"  # docs/hooks.py renders these in place of the committed notebooks
KERNEL = "plasticity-nb"


def execute_against_bundles() -> list[str]:
    """Each notebook a bundle ran, executed against the first bundle that holds it into EXECUTED; their names."""
    EXECUTED.mkdir(parents=True, exist_ok=True)
    done = []
    for bundle in BUNDLES:
        for stem in read_marker(bundle)["notebooks"]:
            source = ROOT / "notebooks" / f"{stem}.ipynb"
            if source.name in done:
                continue
            papermill.execute_notebook(str(source), str(EXECUTED / source.name), kernel_name=KERNEL,
                                       parameters=notebook_parameters(bundle, stem), cwd=str(source.parent),
                                       progress_bar=False)
            done.append(source.name)
    return done


def build_site(site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` into `site`; its output captured."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about its successor, printed every build
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          env=env, capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="where the site goes (default: site/)")
    parser.add_argument("--no-execute", action="store_true",
                        help="render the notebooks as committed (or as last executed), without executing them")
    args = parser.parse_args()
    docs_pages.main_write()
    if not args.no_execute:
        print("executed against the committed bundles:", ", ".join(execute_against_bundles()))
    built = build_site(args.site.resolve())
    if built.returncode:
        sys.exit(built.stdout + built.stderr)
    print(f"site built: {args.site / 'index.html'}")


if __name__ == "__main__":
    main()
