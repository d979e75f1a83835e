"""The batch's sweep at the smoke preset with the real data: notebooks as their runs are stored, the plan and
its estimate, the execution cache, Ctrl-C, --seeds adding only the new runs, and --train-only."""
import json
import os
import shutil
import subprocess
import sys
import time

import nbformat
import pandas as pd
import pytest

from plasticity_nb.batch import notebook_cache
from plasticity_nb.batch import notebook_runs as batch
from plasticity_nb.batch.cli import main
from plasticity_nb.execution.store import RunStore
from plasticity_nb.studies import STUDIES
from tests.helpers import run_folders

pytestmark = pytest.mark.slow(seconds=70)
SMOKE_01 = ["run", "--preset", "smoke", "--only", "01"]


def events(out, kind):
    log = out / "runs" / "events.log"
    return [json.loads(line) for line in log.read_text().splitlines() if json.loads(line)["event"] == kind]


@pytest.fixture(scope="module")
def stored_01(tmp_path_factory):
    """An output folder where notebook 01 ran at the smoke preset (runs stored, execution cached)."""
    out = tmp_path_factory.mktemp("stored-01")
    assert main([*SMOKE_01, "--out", str(out)]) == 0
    return out


def test_a_notebook_is_reported_while_the_next_one_trains(tmp_path, monkeypatch, capsys):
    """01's claim reaches claims.csv and report.md before 08's own runs start training."""
    real_run_many, seen_by_08 = batch.run_many, {}

    def run_many(configs, *args, **kwargs):
        if len({c.phases[-1].lr for c in configs}) > 1:  # 08 sweeps the tuning lr, 01 does not
            report = tmp_path / "report.md"
            for _ in range(1200):  # a deadlock guard: 01's notebook must finish while this call waits
                if report.exists() and "### C1: " in report.read_text():
                    break
                time.sleep(0.5)
            seen_by_08["report"] = report.read_text() if report.exists() else ""
            seen_by_08["claims"] = pd.read_csv(tmp_path / "claims.csv").claim.tolist()
        return real_run_many(configs, *args, **kwargs)

    monkeypatch.setattr(batch, "run_many", run_many)
    assert main(["run", "--preset", "smoke", "--only", "08,01", "--out", str(tmp_path)]) == 0
    assert "### C1: " in seen_by_08["report"] and seen_by_08["claims"] == ["C1"]
    out = capsys.readouterr().out
    plan = [line for line in out.splitlines() if line.startswith("plan:")]
    assert "notebook(s) 01, 08:" in plan[0] and "0 in the store" in plan[0]  # 01 first, whatever --only says
    assert "from timed steps of each size" in plan[1]  # an empty store: a few steps of each size were timed
    assert plan[2].startswith("plan: [01] ") and plan[3].startswith("plan: [08] ")  # and per notebook
    assert "estimated at the start" in plan[-1]  # how far off it was
    assert out.index("[01] 01_warm_start_gap: training") < out.index("[08] 08_tuning_lr: training")
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert set(claims.notebook) == {"01_warm_start_gap", "08_tuning_lr"}
    report = (tmp_path / "report.md").read_text()
    assert all(f"### {claim}: " in report for claim in claims.claim)


def test_an_unchanged_notebook_is_restored_without_a_kernel(stored_01):
    out = stored_01
    notebook = out / "notebooks" / "01_warm_start_gap.ipynb"
    executed, claims = notebook.read_bytes(), pd.read_csv(out / "claims.csv")
    figures = sorted(p.name for p in (out / "figures").iterdir())
    (out / "claims.csv").unlink()  # what the notebook wrote besides itself comes back from the cache too
    shutil.rmtree(out / "figures")
    notebook.unlink()
    # In a fresh process, to see what the re-run imports: no papermill means no kernel was started.
    code = ("import sys; from plasticity_nb.batch.cli import main; "
            f"code = main({[*SMOKE_01, '--out', str(out)]!r}); print('papermill' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
    assert "1 notebook(s) reused" in done.stdout and "unchanged, reused its executed notebook" in done.stdout
    assert notebook.read_bytes() == executed
    pd.testing.assert_frame_equal(pd.read_csv(out / "claims.csv"), claims)
    assert sorted(p.name for p in (out / "figures").iterdir()) == figures
    assert "### C1: " in (out / "report.md").read_text()


def test_force_executes_an_unchanged_notebook_again(stored_01, monkeypatch):
    executions = []
    real_execute = batch.execute
    monkeypatch.setattr(batch, "execute", lambda *args: executions.append(args[0].id) or real_execute(*args))
    assert main([*SMOKE_01, "--out", str(stored_01)]) == 0
    assert executions == []
    assert main([*SMOKE_01, "--out", str(stored_01), "--force"]) == 0
    assert executions == ["01"]


def test_the_execution_key_changes_with_every_input(tmp_path, monkeypatch):
    source = tmp_path / "nb.ipynb"
    source.write_text("{}")
    base = dict(notebook=source, parameters={"preset": "smoke"}, data_id="npz-1", run_keys=["a", "b"])
    key = notebook_cache.execution_key(**base)
    assert notebook_cache.execution_key(**{**base, "run_keys": ["b", "a"]}) == key  # the order does not matter
    changed = [notebook_cache.execution_key(**{**base, **change}) for change in (
        {"parameters": {"preset": "smoke", "seeds": [0, 1, 2]}}, {"data_id": "npz-2"}, {"run_keys": ["a", "c"]})]
    source.write_text('{"cells": []}')
    changed.append(notebook_cache.execution_key(**base))
    source.write_text("{}")
    monkeypatch.setattr(notebook_cache, "package_source_hash", lambda: "edited")
    changed.append(notebook_cache.execution_key(**base))
    monkeypatch.setattr(notebook_cache, "__version__", "9.9")
    changed.append(notebook_cache.execution_key(**base))
    assert len({key, *changed}) == 1 + len(changed)


def test_ctrl_c_keeps_finished_runs_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    args = [*SMOKE_01, "--out", str(tmp_path), "--param", "workers=1", "--checkpoint-every", "1"]
    save_checkpoint = RunStore.save_checkpoint
    saved = []

    def interrupted(self, config, state):  # Ctrl-C right after the first checkpoint of the first run
        save_checkpoint(self, config, state)
        saved.append(config.key())
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "save_checkpoint", interrupted)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"python -m plasticity_nb {' '.join(args)}" in err
    assert (tmp_path / "runs" / ".partial" / saved[0] / "checkpoint.pt").exists()
    assert not (tmp_path / "notebooks").exists() and not (tmp_path / "report.md").exists()

    monkeypatch.setattr(RunStore, "save_checkpoint", save_checkpoint)
    assert main(args) == 0
    assert [e["key"] for e in events(tmp_path, "resume")] == saved
    assert len(run_folders(tmp_path)) == 6 and (tmp_path / "notebooks" / "01_warm_start_gap.ipynb").exists()


def test_more_seeds_train_only_the_new_runs(stored_01, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(stored_01, out)
    started = len(events(out, "start"))
    assert main([*SMOKE_01, "--out", str(out), "--seeds", "3"]) == 0
    assert len(events(out, "start")) == started + 3  # seed 2's pretraining, warm and scratch runs
    assert len(run_folders(out)) == 9
    plan = [line for line in capsys.readouterr().out.splitlines() if line.startswith("plan:")]
    assert "6 runs, 4 in the store, 3 to train" in plan[0]
    assert "estimated training time" in plan[1]  # from the stored runs' speed on this machine
    executed = nbformat.read(out / "notebooks" / "01_warm_start_gap.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters["seeds"] == [0, 1, 2]
    assert pd.read_csv(out / "claims.csv").n_seeds.tolist() == [3]


JUPYTER = ("papermill", "nbformat", "nbclient", "ipykernel", "IPython", "jupyter_client", "ipywidgets")


def test_train_only_needs_no_jupyter_and_the_copied_store_executes_the_notebooks(tmp_path):
    """A GPU box without Jupyter trains; the store copied elsewhere executes the notebook with nothing to train."""
    blocker = tmp_path / "no-jupyter"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoJupyter:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {JUPYTER!r}:\n"
        "            raise ImportError(f'{name} is not installed on this machine')\n"
        "sys.meta_path.insert(0, NoJupyter())\n")
    box = tmp_path / "gpu-box"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    trained = subprocess.run([sys.executable, "-m", "plasticity_nb", *SMOKE_01, "--train-only", "--out", str(box)],
                             env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    assert "without --train-only" in trained.stdout
    assert len(run_folders(box)) == 6 and not (box / "notebooks").exists() and not (box / "claims.csv").exists()

    here = tmp_path / "laptop"
    shutil.copytree(box / "runs", here / "runs", ignore=shutil.ignore_patterns("model.pt"))  # histories suffice
    started = len(events(here, "start"))  # the log travelled with the runs
    assert main([*SMOKE_01, "--out", str(here)]) == 0
    assert len(events(here, "start")) == started  # nothing trained here
    assert pd.read_csv(here / "claims.csv").claim.tolist() == ["C1"]


def test_parameter_names_are_papermills():
    import papermill

    for study in STUDIES.values():
        assert notebook_cache.parameter_names(study.path) == set(papermill.inspect_notebook(str(study.path)))


def test_ensemble_trains_seed_groups_as_one_model_and_says_so_in_each_runs_provenance(tmp_path, capsys):
    out = tmp_path / "ensemble"
    assert main([*SMOKE_01, "--ensemble", "--train-only", "--out", str(out)]) == 0
    folders = run_folders(out)
    assert len(folders) == 6  # 2 seeds x (scratch, pretraining, warm)
    members = [json.loads((f / "provenance.json").read_text()).get("ensemble_members") for f in folders]
    assert members == [2] * 6
    assert "train alone" not in capsys.readouterr().out


def test_an_ensemble_names_the_runs_it_sends_to_train_alone(tmp_path, capsys, cifar):
    from plasticity_nb import Phase, run_many
    from plasticity_nb.measures.metric_settings import MetricSettings
    from tests.helpers import tiny_run

    configs = [tiny_run(seed=s, phases=(Phase(epochs=1),), metrics=MetricSettings(examples=32)) for s in (0, 1)]
    records = run_many(configs, out_dir=tmp_path, ensemble=True)
    assert "ensemble: 2 run(s) train alone: each needs a model of its own for plasticity metrics" in \
        capsys.readouterr().out
    assert all("ensemble_members" not in json.loads((r.path / "provenance.json").read_text()) for r in records)
    assert main([*SMOKE_01, "--param", "ensemble=True", "--out", str(tmp_path / "x")]) == 2
    assert "set ensemble with --ensemble" in capsys.readouterr().err
