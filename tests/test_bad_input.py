"""The bad-input corpus: each bad input through a public entry point gets one clear message naming the
culprit, a non-zero exit from the CLI, and nothing written to the output folder. A diverging run is the
exception: it is recorded with status `diverged` and the sweep goes on."""
import json

import nbformat
import pandas as pd
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

import plasticity_nb as pnb
from plasticity_nb.batch.cli import main
from plasticity_nb.studies import STUDIES
from tests.test_data import _write

CLI_CASES = [  # (arguments, culprit named in the message)
    (["--param", "optimizer=adamw"], "optimizer is 'adamw'"),
    (["--param", "model=vgg"], "model is 'vgg'"),
    (["--param", "learning_rate=0.1"], "unknown parameter 'learning_rate'"),
    (["--param", "lr=fast"], "lr must be float"),
    (["--param", "seeds=3"], "seeds must be a list"),
    (["--param", "batch_size=2.5"], "batch_size must be int"),
    (["--param", "augment=1"], "augment must be bool"),
    (["--param", "lr=0"], "lr must be > 0"),
    (["--param", "lr=-0.1"], "lr must be > 0"),
    (["--param", "batch_size=-1"], "batch_size must be > 0"),
    (["--param", "depth=0"], "depth must be > 0"),
    (["--param", "width=0"], "width must be > 0"),
    (["--param", "seeds=[]"], "seeds is empty"),
    (["--param", "seeds=[1,1]"], "seeds has duplicates"),
    (["--param", "seeds=[4]"], "seeds [4] has one seed: a claim's paired CI needs at least two"),
    (["--param", "equivalence_margin=0"], "equivalence_margin must be > 0"),
    (["--param", "equivalence_margin=-0.5"], "equivalence_margin must be > 0"),
    (["--param", "equivalence_margn=1"], "unknown parameter 'equivalence_margn'"),
    (["--param", "premise_train_acc=150"], "premise_train_acc must be in [0, 100], got 150.0"),
    (["--only", "07", "--param", "speed_margin=0"], "speed_margin must be > 0"),
    (["--only", "09", "--param", "loss_match=0.5"], "loss_match must be >= 1, got 0.5"),
    (["--only", "09", "--param", "probe_bn_statistics='batch'"], "probe_bn_statistics is 'batch'"),
    (["--only", "05", "--param", "shift_stages=3"], "shift_stages 3 must be one of stages"),
    (["--only", "03", "--param", "optimizer_tune_epochs=[2]"], "optimizer_tune_epochs has 1 values for 2 optimizers"),
    (["--param", "train_subset=60000"], "train_subset must be in (0, 50000], got 60000"),
    (["--param", "workers=0"], "workers must be a whole number >= 1"),
    (["--only", "04", "--param", "gammas=[1.5]"], "gammas has 1.5 in [1.5]: each must be in (0, 1)"),
    (["--only", "04", "--param", "gammas=[0]"], "gammas has 0.0 in [0.0]: each must be in (0, 1)"),
    (["--only", "05", "--param", "ratios=[1.2]"], "ratios has 1.2 in [1.2]: each must be in [0, 1]"),
    (["--only", "05", "--param", "stages=[0]"], "stages has 0 in [0]: each must be >= 1"),
    (["--only", "05", "--param", "stages=[10]"], "stages has 10 in [10]: each must be in [1, 9]"),
    (["--only", "06", "--param", "widths=[0]"], "widths has 0 in [0]: each must be > 0"),
    (["--only", "06", "--param", "depths=[0,1]"], "depths has 0 in [0, 1]: each must be > 0"),
    (["--only", "07", "--param", "reset_from_groups=[7]"], "reset_from_groups has 7 in [7]: each must be in [1, 6]"),
    (["--only", "08", "--param", "lr_multipliers=[0]"], "lr_multipliers has 0.0 in [0.0]: each must be > 0"),
    (["--only", "99"], "unknown notebook id(s) 99"),
    (["--data", "/nonexistent/cifar"], "/nonexistent/cifar does not exist"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
    (["--seeds", "1"], "--seeds must be an integer >= 2"),
    (["--seeds", "0"], "--seeds must be an integer >= 2"),
    (["--seeds", "-3"], "--seeds must be an integer >= 2"),
    (["--seeds", "2.5"], "--seeds must be an integer >= 2"),
    (["--seeds", "three"], "--seeds must be an integer >= 2"),
    (["--seeds", "3", "--param", "seeds=[0,1]"], "--seeds and --param seeds=... both set the seeds"),
]


@pytest.mark.parametrize("args,culprit", CLI_CASES, ids=[c for _, c in CLI_CASES])
def test_bad_cli_input(tmp_path, capsys, args, culprit):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--out", str(out), *args]) != 0
    err = capsys.readouterr().err
    assert culprit in err and err.count("error:") == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-data")
    folders = {}
    folders["truncated"] = _write(root / "truncated", sums=False)
    raw = (folders["truncated"] / "train.npz").read_bytes()
    (folders["truncated"] / "train.npz").write_bytes(raw[: len(raw) // 3])
    folders["corrupt"] = _write(root / "corrupt", sums=False)
    (folders["corrupt"] / "test.npz").write_bytes(b"not a zip archive at all" * 100)
    folders["checksum"] = _write(root / "checksum")
    (folders["checksum"] / "SHA256SUMS").write_text("0" * 64 + "  test.npz\n")
    folders["shape"] = _write(root / "shape", shape=(32, 32, 1), sums=False)
    folders["labels"] = _write(root / "labels", labels_max=12, sums=False)
    folders["missing-file"] = _write(root / "missing-file", sums=False)
    (folders["missing-file"] / "train.npz").unlink()
    return folders


DATA_CASES = [("truncated", "truncated or corrupt"), ("corrupt", "truncated or corrupt"),
              ("checksum", "checksum mismatch"), ("shape", "images must be uint8 of shape"),
              ("labels", "labels must lie in 0..9"), ("missing-file", "train.npz is missing")]


@pytest.mark.parametrize("case,culprit", DATA_CASES, ids=[c for c, _ in DATA_CASES])
def test_bad_data(tmp_path, capsys, bad_data, case, culprit):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--data", str(bad_data[case])]) == 2
    err = capsys.readouterr().err
    assert culprit in err and str(bad_data[case]) in err and not out.exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(blocker / "out")]) == 2
    assert "cannot create the run store" in capsys.readouterr().err


def test_bad_notebook_parameter_fails_in_the_config_cell_before_training(tmp_path):
    with pytest.raises(PapermillExecutionError) as failure:
        papermill.execute_notebook(str(STUDIES["01"].path), str(tmp_path / "executed.ipynb"),
                                   kernel_name="plasticity-nb",
                                   parameters={"optimizer": "adamw", "out_dir": str(tmp_path / "out")},
                                   cwd=str(STUDIES["01"].path.parent), progress_bar=False)
    assert failure.value.ename == "ConfigError" and "optimizer is 'adamw'" in failure.value.evalue
    assert not (tmp_path / "out").exists()


def test_bad_python_api_input(tmp_path):
    with pytest.raises(pnb.ConfigError, match="pool is 'quarter'"):
        pnb.RunConfig(phases=[{"pool": "quarter"}])
    with pytest.raises(pnb.DataError, match="does not exist"):
        pnb.run_study(pnb.WarmStartConfig.from_preset("smoke"), data_dir=tmp_path / "none", out_dir=tmp_path / "out")
    with pytest.raises(pnb.ConfigError, match="executor is 'slurm'"):
        pnb.run_many([], out_dir=tmp_path / "out", executor="slurm")
    assert not (tmp_path / "out").exists()


def test_a_diverging_learning_rate_is_recorded_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--preset", "smoke", "--only", "01", "--out", str(out), "--param", "optimizer=sgd",
                 "--param", "lr=1e12"]) == 0
    statuses = {json.loads((p / "metrics.json").read_text())["status"]
                for p in (out / "runs").glob("[!.]*") if p.is_dir()}
    assert statuses == {"diverged"}
    claim = pd.read_csv(out / "claims.csv").iloc[0]
    assert claim.n_seeds == 0 and claim.verdict == "premise not met"
    assert "warm arm diverged in a seed" in claim.premise and "scratch arm diverged in a seed" in claim.premise
    executed = nbformat.read(out / "notebooks" / "01_warm_start_gap.ipynb", as_version=4)
    summary = next(c for c in executed.cells if c.source == "result.summary")
    assert "diverged" in json.dumps(summary.outputs)  # the summary table shows each run's status
