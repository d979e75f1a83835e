"""The package's import graph, read from the source with `ast`: no circles, and the store stays below training."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "plasticity_nb"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The package modules `name` imports explicitly (at any level of its code, lazy imports included).

    Importing a submodule also runs its package's __init__, which re-exports the submodules: those implicit
    edges would make every package a circle and are left out."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_was_read():
    assert "plasticity_nb.train" in GRAPH["plasticity_nb.runner"]
    assert "plasticity_nb.studies.two_phases" in GRAPH["plasticity_nb.studies"]


def test_no_module_imports_itself_through_others():
    circles = sorted(name for name in GRAPH if name in _reachable(name))
    assert not circles, f"import circles through {circles}"


def test_run_configs_and_the_store_do_not_import_training():
    training = {"plasticity_nb.train", "plasticity_nb.loop", "plasticity_nb.ensemble", "plasticity_nb.probes"}
    for name in ("plasticity_nb.runconfig", "plasticity_nb.runstate", "plasticity_nb.store"):
        assert not _reachable(name) & training, name


def test_the_moved_types_are_still_importable_from_where_users_found_them():
    from plasticity_nb import probes, probesettings, runconfig, train

    assert (train.Phase, train.RunConfig, train.OPTIMIZERS, train.POOLS, train.PRECISIONS) == (
        runconfig.Phase, runconfig.RunConfig, runconfig.OPTIMIZERS, runconfig.POOLS, runconfig.PRECISIONS)
    assert probes.ProbeSettings is probesettings.ProbeSettings
