"""The package's import graph, read from the source with `ast`: no circles, each layer folder imports only the
layers below it, and no module re-exports what another defines."""
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


# The layer folders, bottom first: a module imports from its own folder and the folders before it only. The
# package's own __init__ (its public face) and __main__ stand above them all.
LAYERS = ("core", "data", "nets", "measures", "run", "remedies", "training", "execution", "analysis", "studies",
          "views", "batch")
TOP = {"plasticity_nb", "plasticity_nb.__main__"}


def _layer(name: str) -> str:
    return name.split(".")[1]


def test_the_graph_was_read():
    assert "plasticity_nb.training.train" in GRAPH["plasticity_nb.execution.runner"]
    assert "plasticity_nb.studies.two_phases" in GRAPH["plasticity_nb.studies"]


def test_every_module_lives_in_a_layer_folder():
    assert {name for name in MODULES if name not in TOP and _layer(name) not in LAYERS} == set()


def test_no_module_imports_itself_through_others():
    circles = sorted(name for name in GRAPH if name in _reachable(name))
    assert not circles, f"import circles through {circles}"


def test_each_layer_imports_only_the_layers_below_it():
    upward = sorted((name, target) for name in GRAPH if name not in TOP for target in GRAPH[name]
                    if target not in TOP and LAYERS.index(_layer(target)) > LAYERS.index(_layer(name)))
    assert not upward, f"imports up the layers: {upward}"
    assert all(target not in TOP for name in GRAPH if name not in TOP for target in GRAPH[name])


def test_run_configs_and_the_store_do_not_import_training_execution_or_analysis():
    for name in MODULES.keys() - TOP:
        if _layer(name) == "run":
            assert not {_layer(m) for m in _reachable(name)} & {"training", "execution", "analysis"}, name
    assert not {_layer(m) for m in _reachable("plasticity_nb.execution.store")} & {"training", "analysis"}


def test_no_re_exports_below_the_public_face():
    """A name is imported from the module that defines it: no layer's __init__ imports anything and no module
    keeps an import only to hand it on (ruff's unused-import check enforces the rest)."""
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name not in TOP and name != "plasticity_nb.studies":
            body = ast.parse(path.read_text()).body
            assert all(isinstance(n, ast.Expr) for n in body), f"{name} does more than describe its layer"
        assert "noqa: F401" not in path.read_text() or name in TOP, name
