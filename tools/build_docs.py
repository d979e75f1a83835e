"""Build the documentation site offline into site/ (what `make docs` runs), strictly: any broken link, missing page
or warning fails the build.

First the generated pages (tools/docs_pages.py), then `mkdocs build --strict`.

    python -m tools.build_docs [--site DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tools import docs_pages

ROOT = docs_pages.ROOT


def build_site(site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` into `site`; its output captured."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about its successor, printed every build
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          env=env, capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="where the site goes (default: site/)")
    args = parser.parse_args()
    docs_pages.main_write()
    built = build_site(args.site.resolve())
    if built.returncode:
        sys.exit(built.stdout + built.stderr)
    print(f"site built: {args.site / 'index.html'}")


if __name__ == "__main__":
    main()
