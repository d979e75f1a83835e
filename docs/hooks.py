"""MkDocs hooks: the notebooks and the API reference join the site.

The rendered notebooks are the ones tools/build_docs.py executed against the committed results (build/notebooks/)
where it has run, else the notebooks as committed; they are copied into docs/notebooks/ (ignored by git), where
mkdocs-jupyter finds them. The API reference has one page per layer of the package, each module's docstrings read
by mkdocstrings, generated in memory.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "build" / "notebooks"  # tools/build_docs.py writes them here
LAYERS = ("core", "nets", "data", "analysis", "measures", "run", "training", "remedies", "execution", "studies",
          "views", "batch")  # by depth in the folder graph (tests/test_imports.py)


def on_pre_build(config) -> None:
    rendered = ROOT / "docs" / "notebooks"
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        executed = EXECUTED / source.name
        text = (executed if executed.exists() else source).read_bytes()
        copy = rendered / source.name
        if not copy.exists() or copy.read_bytes() != text:
            copy.write_bytes(text)


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "reference/index.md", content=reference_index()))
    for layer in LAYERS:
        files.append(File.generated(config, f"reference/{layer}.md", content=layer_page(layer)))
    return files


def modules(layer: str) -> list[str]:
    folder = ROOT / "plasticity_nb" / layer
    return [f"plasticity_nb.{layer}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]


def reference_index() -> str:
    rows = [f"- [`{layer}/`]({layer}.md): {', '.join(m.rsplit('.', 1)[1] for m in modules(layer))}"
            for layer in LAYERS]
    return "\n".join(["# API reference", "", "Every module of the package, by layer, from its docstrings. "
                      "The public face is `plasticity_nb/__init__.py`.", "", *rows, ""])


def layer_page(layer: str) -> str:
    return "\n".join([f"# `{layer}/`", "", *[f"::: {m}\n" for m in modules(layer)]])
