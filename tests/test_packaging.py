"""The project's own promises about install and layout."""
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_and_environment_yml_list_the_same_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = re.findall(r"^\s{6}- (\S+)\s*$", (ROOT / "environment.yml").read_text(), flags=re.M)
    assert sorted(pyproject) == sorted(env)
    for required in ("torch==2.14.1", "torchvision==0.29.1", "jupyterlab", "ipywidgets", "seaborn", "papermill",
                     "nbval", "pytest", "pandas", "pyarrow", "tqdm", "ipykernel"):
        assert required in pyproject


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:15]
    assert any("make run" in line for line in head) and any("make test" in line for line in head)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_notebooks_have_one_commented_parameters_cell_and_no_stored_errors():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        tagged = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, path.name
        for line in "".join(tagged[0]["source"]).splitlines():
            assert re.match(r"^\w+ = .+  # \S", line), f"{path.name}: parameter line without a comment: {line}"
        assert notebook["metadata"]["kernelspec"]["name"] == "plasticity-nb"
        for cell in notebook["cells"]:
            assert all(o.get("output_type") != "error" for o in cell.get("outputs", [])), path.name
