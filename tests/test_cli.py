"""The batch CLI end to end: papermill runs notebook 01 at the smoke preset."""
import dataclasses
import json

import nbformat
import numpy as np
import pandas as pd
import pytest

from plasticity_nb.analysis.claims import COLUMNS
from plasticity_nb.batch import cli
from plasticity_nb.batch.cli import main
from plasticity_nb.data import images
from plasticity_nb.data.datasets import DATASETS
from plasticity_nb.execution.executors import LostWorkers
from plasticity_nb.studies import STUDIES
from tests.helpers import run_folders
from tests.smoke_store import copy_runs

pytestmark = pytest.mark.slow(seconds=60)  # seconds: its share of the suite, which orders the modules


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_smoke_batch_writes_notebook_figures_store_and_claims(tmp_path, capsys):
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(tmp_path)]) == 0
    executed = nbformat.read(tmp_path / "notebooks" / "01_warm_start_gap.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters["preset"] == "smoke"
    assert executed.metadata.papermill.parameters["out_dir"] == str(tmp_path)
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert list(claims.columns) == COLUMNS
    row = claims.iloc[0]
    assert (row.claim, row.notebook, row.preset, row.n_seeds) == ("C1", "01_warm_start_gap", "smoke", 2)
    assert row.verdict in ("supported", "not supported", "inconclusive")
    for name in ("curves", "gap"):
        assert (tmp_path / "figures" / f"01_warm_start_gap_smoke_{name}.png").stat().st_size > 10_000
    assert len(run_folders(tmp_path)) == 6  # 2 seeds x (pretrain, warm, scratch)
    assert "C1" in capsys.readouterr().out


def test_param_overrides_reach_the_notebook_and_the_stored_configs(tmp_path):
    args = ["run", "--preset", "smoke", "--only", "01", "--out", str(tmp_path),
            "--param", "seeds=[5, 6]", "--param", "tune_epochs=1", "--param", "optimizer=sgd_momentum",
            "--param", "lr=0.01"]
    assert main(args) == 0
    executed = nbformat.read(tmp_path / "notebooks" / "01_warm_start_gap.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters["seeds"] == [5, 6]
    configs = [json.loads((p / "config.json").read_text()) for p in run_folders(tmp_path)]
    assert {c["seed"] for c in configs} == {5, 6}
    assert {(p["optimizer"], p["lr"]) for c in configs for p in c["phases"]} == {("sgd_momentum", 0.01)}
    assert {c["phases"][-1]["epochs"] for c in configs if len(c["phases"]) == 2} == {1}
    assert pd.read_csv(tmp_path / "claims.csv").n_seeds.tolist() == [2]


@pytest.mark.parametrize("args,culprit", [
    (["--param", "optimizer=adamw"], "optimizer is 'adamw'"),
    (["--param", "lr=-1"], "lr must be > 0"),
    (["--param", "learning_rate=0.1"], "unknown parameter 'learning_rate'"),
    (["--param", "seeds=[]"], "seeds is empty"),
    (["--param", "lr"], "must look like name=value"),
    (["--param", "out_dir=/tmp/x"], "set out_dir with --out"),
    (["--param", "workers=0"], "workers must be a whole number >= 1"),
    (["--only", "42"], "unknown notebook id"),
    (["--data", "/nonexistent/cifar"], "does not exist"),
    (["--param", "dataset=mnist"], "dataset is 'mnist': choose from 'cifar10', 'cifar100', 'svhn'"),
    (["--param", "dataset=svhn", "--data", "/nonexistent/svhn"],
     "SVHN data folder /nonexistent/svhn does not exist (from data_dir / PLASTICITY_DATA_SVHN)"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, capsys, args, culprit):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--out", str(out), *args]) == 2
    assert culprit in capsys.readouterr().err
    assert not out.exists()


def test_bad_preset_is_rejected_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--preset", "huge", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err


def test_a_failing_notebook_exits_non_zero_and_names_the_cell(tmp_path, capsys, monkeypatch):
    import plasticity_nb.studies as studies

    broken = nbformat.read(studies.STUDIES["01"].path, as_version=4)
    broken.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("deliberately broken cell")'))
    (tmp_path / "nb").mkdir()
    nbformat.write(broken, tmp_path / "nb" / "01_warm_start_gap.ipynb")
    monkeypatch.setattr(studies, "notebooks_dir", lambda: tmp_path / "nb")
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "01_warm_start_gap FAILED in cell" in err and "RuntimeError: deliberately broken cell" in err
    assert not (out / "notebooks" / "01_warm_start_gap.ipynb").exists()  # only finished notebooks land there


# The batch path (train, execute, claims, figures, report) is the same for every notebook, and nbval executes each
# at smoke; these cover the sweep figures' names and claim rows of five, leaving out 06 and 07 (the two slowest).
# Their runs come from the session's smoke store, trained by the same batch command (tests/smoke_store.py).
@pytest.mark.smoke_store
@pytest.mark.parametrize("study_id", ["02", "03", "04", "05", "08"])
def test_every_study_notebook_runs_at_smoke_under_papermill(tmp_path, study_id):
    copy_runs(tmp_path)
    assert main(["run", "--preset", "smoke", "--only", study_id, "--out", str(tmp_path)]) == 0
    stem = STUDIES[study_id].stem
    assert (tmp_path / "notebooks" / f"{stem}.ipynb").exists()
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert set(claims.notebook) == {stem} and set(claims.preset) == {"smoke"}
    assert list((tmp_path / "figures").glob(f"{stem}_smoke_sweep.png"))
    report = (tmp_path / "report.md").read_text()
    assert all(claim in report for claim in claims.claim) and f"figures/{stem}_smoke_sweep.png" in report


def test_sweep_overrides_reach_the_stored_configs(tmp_path):
    assert main(["run", "--preset", "smoke", "--only", "04", "--out", str(tmp_path), "--param", "gammas=[0.3]"]) == 0
    configs = [json.loads((p / "config.json").read_text()) for p in run_folders(tmp_path)]
    assert {p["gamma"] for c in configs for p in c["phases"] if p["pool"] == "blend"} == {0.3}


def test_sweep_values_are_checked_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "04", "--out", str(out), "--param", "gammas=[1.5]"]) == 2
    assert "gammas has 1.5 in [1.5]: each must be in (0, 1)" in capsys.readouterr().err and not out.exists()


def test_a_dataset_with_no_copy_offline_fails_naming_it_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLASTICITY_OFFLINE", "1")
    monkeypatch.delenv("PLASTICITY_DATA_CIFAR100", raising=False)
    monkeypatch.setattr(images, "default_data_root", lambda: tmp_path / "no-data")
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--param", "dataset=cifar100"]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-100 not found" in err and "PLASTICITY_DATA_CIFAR100" in err and err.count("error:") == 1
    assert not out.exists()


def test_the_batch_trains_the_dataset_the_notebooks_name(tmp_path, monkeypatch, one_thread):
    """--train-only trains in this process (smoke is too small for worker processes), so the small copy's relaxed
    description applies; the notebooks' own kernels would read the real one."""
    monkeypatch.setitem(DATASETS, "cifar100", dataclasses.replace(DATASETS["cifar100"], train_size=600,
                                                                  test_size=1000))
    folder = write_npz_copy(tmp_path / "c100", 600, 1000, classes=100)
    out = tmp_path / "out"
    args = ["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--train-only", "--data", str(folder),
            "--param", "dataset=cifar100", "--param", "tune_epochs=1", "--param", "pretrain_epochs=1"]
    assert main(args) == 0
    configs = [json.loads((p / "config.json").read_text()) for p in run_folders(out)]
    assert len(configs) == 6 and {(c["dataset"], c["data_id"][:13]) for c in configs} == {("cifar100", "cifar100-npz-")}
    args[args.index("dataset=cifar100")] = "dataset=svhn"  # the same folder is not an SVHN copy: one error
    assert main(args) == 2


def test_results_on_another_dataset_are_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame([{"claim": "C1", "preset": "smoke", "registry": "x", "dataset": "cifar100"}]).to_csv(
        out / "claims.csv", index=False)
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--train-only"]) == 2
    err = capsys.readouterr().err
    assert f"the output folder {out} holds results on cifar100" in err and err.count("error:") == 1
    assert sorted(p.name for p in out.iterdir()) == ["claims.csv"]


def test_a_balanced_subset_svhn_cannot_fill_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(DATASETS, "svhn", dataclasses.replace(DATASETS["svhn"], train_size=600, test_size=1000))
    folder = write_npz_copy(tmp_path / "svhn", 600, 1000, classes=10, rare=(3, 40))  # 40 threes: at most 400
    out = tmp_path / "out"
    args = ["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--train-only", "--data", str(folder),
            "--param", "dataset=svhn"]
    assert main(args) == 2  # smoke's train_subset is 512
    assert "train_subset 512 cannot be class-balanced on SVHN: its smallest class ('3') has 40 training images" in \
        capsys.readouterr().err
    assert not out.exists()


def write_npz_copy(folder, train, test, classes, rare=None):
    """A copy in the npz format, its labels cycling through the classes; `rare` = (class, count) thins one class."""
    folder.mkdir()
    for name, n in (("train", train), ("test", test)):
        labels = np.arange(n) % classes
        if rare and name == "train":
            extra = np.flatnonzero(labels == rare[0])[rare[1]:]
            labels[extra] = (rare[0] + 1) % classes
        np.savez(folder / f"{name}.npz", images=np.zeros((n, 32, 32, 3), np.uint8), labels=labels)
    return folder


def test_a_lost_cluster_exits_non_zero_with_one_line_and_the_command_to_continue(tmp_path, capsys, monkeypatch):
    """What a batch on Ray prints when its head (or a run's workers, past the retries) is lost (tests/test_cluster.py
    raises LostWorkers for real)."""
    def lost(*args):
        raise LostWorkers("the Ray cluster lost its head: 10.0.0.1:6379 has not answered for 10 s; the store keeps "
                          "every finished run and each run's last checkpoint: start the cluster again and run the "
                          "same command to continue")

    monkeypatch.setattr(cli, "run_notebooks", lost)
    args = ["run", "--preset", "smoke", "--only", "01", "--executor", "ray", "--ray-address", "10.0.0.1:6379",
            "--out", str(tmp_path)]
    assert main(args) == 1
    error, command = capsys.readouterr().err.splitlines()
    assert error.startswith("error: the Ray cluster lost its head") and error.endswith("the same command to continue:")
    assert command == "  python -m plasticity_nb " + " ".join(args)
