"""The package's import graph, read from the source with `ast`: no circles, each folder imports only what its role
allows (never-rules stated as data), the folder graph is shallow, the statistics import without torch, and no module
re-exports what another defines."""
import ast
import subprocess
import sys
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


# Each folder's allowed imports (besides itself): the real dependencies of its role. The package's own __init__
# (its public face, lazy) and __main__ stand above them all.
ALLOWED = {
    "core": set(),
    "nets": set(),  # the networks; their names and shapes torch-free (nets/catalogue.py)
    "data": {"core"},
    "analysis": {"core", "data"},  # statistics, premises, the sequential design, claims: no torch
    "measures": {"core", "data", "nets"},
    "run": {"core", "data", "measures", "nets"},  # what a run is, and what a remedy is
    "training": {"core", "data", "measures", "nets", "run"},
    "remedies": {"core", "measures", "nets", "run"},
    "execution": {"core", "data", "run", "training"},
    "studies": {"analysis", "core", "data", "execution", "measures", "run", "training"},  # remedies by name
    "views": {"analysis", "core", "execution", "measures", "studies"},
    "batch": {"analysis", "core", "data", "execution", "run", "studies", "training", "views"},
}
# The rules a new import must never break, each with its reason (the allow-list above already keeps them).
NEVER = {
    ("training", "remedies"): "training runs whatever remedies a run config names, through their hooks",
    ("analysis", "training"): "the statistics and claims read numbers, never models",
    ("analysis", "execution"): "the statistics and claims read numbers, never the run store",
    ("run", "training"): "a run config is read by the store, the studies and the workers alike",
    ("nets", "data"): "a network knows its number of classes, not where its data comes from",
}
# Modules that import without torch (the top-level package is lazy for their sake).
TORCH_FREE = ("plasticity_nb", "plasticity_nb.analysis.stats", "plasticity_nb.analysis.premises",
              "plasticity_nb.analysis.sequential", "plasticity_nb.analysis.claims", "plasticity_nb.analysis.settle",
              "plasticity_nb.analysis.estimates", "plasticity_nb.run.run_config", "plasticity_nb.studies")
MAX_DEPTH = 10  # of the folder graph, __main__ counted (it was 13 before the folders were cut along their roles)
TOP = {"plasticity_nb", "plasticity_nb.__main__"}


def _layer(name: str) -> str:
    return name.split(".")[1]


def _folder(name: str) -> str:
    return "__main__" if name == "plasticity_nb.__main__" else "__init__" if name == "plasticity_nb" else _layer(name)


def folder_graph() -> dict[str, set[str]]:
    """Folder -> the other folders its modules import."""
    graph: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        graph.setdefault(_folder(name), set()).update(_folder(t) for t in targets if _folder(t) != _folder(name))
    return graph


def depths() -> dict[str, int]:
    """A folder's depth: 1 + the largest depth of the folders it imports (a folder importing none: 1)."""
    graph, found = folder_graph(), {}

    def depth(folder: str) -> int:
        if folder not in found:
            found[folder] = 1 + max((depth(f) for f in graph[folder]), default=0)
        return found[folder]

    return {folder: depth(folder) for folder in graph}


def test_the_graph_was_read():
    assert "plasticity_nb.training.train" in GRAPH["plasticity_nb.execution.runner"]
    assert "plasticity_nb.studies.two_phases" in GRAPH["plasticity_nb.studies"]


def test_every_module_lives_in_a_layer_folder():
    assert {name for name in MODULES if name not in TOP and _layer(name) not in ALLOWED} == set()


def test_no_module_imports_itself_through_others():
    circles = sorted(name for name in GRAPH if name in _reachable(name))
    assert not circles, f"import circles through {circles}"


def test_each_folder_imports_only_what_its_role_allows():
    beyond = sorted((name, target) for name in GRAPH if name not in TOP for target in GRAPH[name]
                    if target not in TOP and _layer(target) != _layer(name)
                    and _layer(target) not in ALLOWED[_layer(name)])
    assert not beyond, f"imports outside the allow-list: {beyond}"
    assert all(target not in TOP for name in GRAPH if name not in TOP for target in GRAPH[name])


def test_the_never_rules_hold_and_the_allow_list_keeps_them():
    for (folder, target), why in NEVER.items():
        assert target not in ALLOWED[folder], why
        reached = {_layer(m) for name in GRAPH if name not in TOP and _layer(name) == folder
                   for m in _reachable(name) if m not in TOP}
        assert target not in reached, f"{folder} reaches {target}: {why}"


def test_the_folder_graph_is_shallow_with_siblings():
    found = depths()
    assert max(found.values()) <= MAX_DEPTH, found
    assert len(set(found.values())) < len(found), f"every folder on a floor of its own: {found}"
    assert found["analysis"] <= found["measures"], "the statistics stand beside the measures, below training"


BLOCK_TORCH = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
               "            raise ImportError('torch is blocked: ' + name)\nsys.meta_path.insert(0, Block())\n")


def _without_torch(code: str) -> subprocess.CompletedProcess:
    """`code` run in a fresh interpreter whose torch import fails."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          cwd=PACKAGE.parent)


def test_the_statistics_and_claims_import_without_torch():
    for module in TORCH_FREE:
        result = _without_torch(f"import {module}")
        assert result.returncode == 0, f"{module} needs torch:\n{result.stderr[-2000:]}"


def test_the_whole_claims_registry_reads_without_torch():
    """Every claim's declaration (in its study module) and the registry assembled from the catalogue: the registry
    (its hash, report.md's claims table, the sequential design's ledgers) is read where torch is not installed."""
    result = _without_torch("from plasticity_nb.analysis.claims import CLAIMS, registry_hash\n"
                            "print(len(CLAIMS), registry_hash())")
    assert result.returncode == 0, f"the claims registry needs torch:\n{result.stderr[-2000:]}"
    from plasticity_nb.analysis.claims import CLAIMS, registry_hash

    assert result.stdout.split() == [str(len(CLAIMS)), registry_hash()]  # the same registry as with torch


def test_the_default_classes_are_the_default_datasets():
    from plasticity_nb.data.datasets import DATASETS, DEFAULT_DATASET
    from plasticity_nb.nets.catalogue import DEFAULT_CLASSES

    assert DEFAULT_CLASSES == DATASETS[DEFAULT_DATASET].num_classes


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


def test_the_public_run_is_the_function_though_a_layer_shares_its_name():
    code = ("import plasticity_nb.run.run_config, plasticity_nb as pnb\nfrom plasticity_nb import run\n"
            "print(callable(run), pnb.run is run)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]
