"""Where and how runs train is one value, `ExecutionSettings`: bad values and unknown names are refused by name, the
old keyword spelling of `run_study` gives the same runs as the value, and the value reaches every worker's runtime and
the command line's batch whole, the compile setting with it, with no environment variable between them."""
import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

import plasticity_nb as pnb
from plasticity_nb.batch import cli
from plasticity_nb.core.config import ConfigError
from plasticity_nb.execution import runner
from plasticity_nb.execution.settings import FIELDS, ExecutionSettings
from plasticity_nb.studies import EXECUTION_PARAMETERS
from tests.helpers import DETERMINISTIC, events, run_folders, tiny_run

# A warm-start study of tiny runs (seconds on a CPU)
TINY_STUDY = dict(train_subset=256, test_subset=200, pretrain_epochs=1, tune_epochs=1, batch_size=32)


@pytest.mark.parametrize("field, value, culprit", [
    ("workers", 0, "workers must be a whole number >= 1"),
    ("workers", 1.5, "workers must be a whole number >= 1"),
    ("executor", "slurm", "executor is 'slurm': choose one of local, ray"),
    ("checkpoint_every", 0, "checkpoint_every must be a whole number of epochs >= 1"),
    ("compile", "fastest", "compile is 'fastest': choose one of off, default, reduce-overhead"),
    ("device", "tpu", "device must be cpu, cuda, cuda:N"),
    ("progress", "yes", "progress must be True, False or None"),
    ("ensemble", 1, "ensemble must be True or False"),
    ("out_dir", 3, "out_dir must be a folder"),
    ("ray_address", 6379, "ray_address must be host:port"),
])
def test_a_bad_value_is_refused_naming_its_field_and_what_is_allowed(field, value, culprit):
    with pytest.raises(ConfigError, match=f"^{culprit}"):
        ExecutionSettings(**{field: value})
    with pytest.raises(ConfigError, match=f"^{culprit}"):
        ExecutionSettings().replace(**{field: value})


def test_the_value_is_frozen_and_replace_refuses_an_unknown_name_with_the_right_one():
    settings = ExecutionSettings(out_dir="out", workers=2)
    assert settings.out_dir == Path("out") and settings.workers == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.workers = 3
    assert settings.replace(workers=3).workers == 3 and settings.workers == 2
    with pytest.raises(ConfigError, match=r"unknown parameter 'wrokers' .*\(did you mean 'workers'"):
        settings.replace(wrokers=3)
    with pytest.raises(TypeError):
        ExecutionSettings("out")  # keywords only: no positional chain


def test_the_notebooks_execution_parameters_are_the_settings_fields():
    assert EXECUTION_PARAMETERS == ("preset", *FIELDS)


def test_a_notebook_s_parameters_make_its_settings_and_an_older_notebook_s_still_do():
    older = {"out_dir": "o", "data_dir": None, "device": None, "workers": 1, "executor": "local",
             "ray_address": None, "progress": False, "ensemble": False, "preset": "smoke", "seeds": None}
    assert ExecutionSettings.from_notebook(older) == ExecutionSettings(out_dir="o", workers=1, progress=False)
    assert ExecutionSettings.from_notebook({**older, "compile": "default"}).compile == "default"
    with pytest.raises(ConfigError, match="^workers must be"):
        ExecutionSettings.from_notebook({**older, "workers": 0})


def test_run_study_with_the_old_keywords_is_run_study_with_the_value(tmp_path, one_thread):
    """The old notebooks' call, keyword for keyword, trains the study; the same settings as one value then find
    every run stored in that folder and train nothing; a misspelt keyword is refused by name, before anything."""
    config = pnb.WarmStartConfig.from_preset("smoke", **TINY_STUDY)
    out, data_dir = tmp_path / "out", os.environ.get("PLASTICITY_DATA")
    old = pnb.run_study(config, data_dir=data_dir, out_dir=out, device="cpu", workers=1, executor="local",
                        ray_address=None, progress=False, ensemble=False)
    trained, folders = len(events(out)), {p.name for p in run_folders(out)}
    assert trained and len(folders) == 6  # two seeds: a pretraining, its warm tuning, and a scratch run each
    settings = ExecutionSettings(data_dir=data_dir, out_dir=out, device="cpu", workers=1, progress=False)
    new = pnb.run_study(config, settings)
    assert len(events(out)) == trained and {p.name for p in run_folders(out)} == folders  # nothing trained again
    pd.testing.assert_frame_equal(new.history[DETERMINISTIC], old.history[DETERMINISTIC])
    assert new.estimate == old.estimate
    again = pnb.warm_start_gap(config, settings.replace(workers=2))  # an override of the value, by name
    pd.testing.assert_frame_equal(again.history[DETERMINISTIC], old.history[DETERMINISTIC])
    with pytest.raises(ConfigError, match="unknown parameter 'out_directory' .*did you mean 'out_dir'"):
        pnb.run_study(config, out_directory=tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="run_study's second argument is its ExecutionSettings.* data_dir="):
        pnb.run_study(config, tmp_path / "data")  # the old second positional
    with pytest.raises(ConfigError, match="run_many's second argument is its ExecutionSettings.* out_dir="):
        pnb.run_many([tiny_run()], tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


class InProcess:
    """The local executor's interface, each run executed in this process as a worker would (`execute_run`)."""

    shipped: list = []

    def __init__(self, workers, threads, work):
        self.slots, self.threads, self.work, self.done = workers, threads, work, []

    def submit(self, *args):
        InProcess.shipped.append(args)
        self.done.append(self.work(*args, self.threads))
        return len(self.done) - 1

    def wait_any(self, handles):
        return handles[:1]

    def result(self, handle):
        return self.done[handle]

    def close(self):
        pass


def test_the_compile_setting_reaches_each_worker_s_runtime_in_the_settings_not_the_environment(
        tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.delenv("PLASTICITY_COMPILE", raising=False)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda forward, mode=None: compiled.append(mode) or forward)
    monkeypatch.setattr(runner, "LocalExecutor", InProcess)
    monkeypatch.setattr(InProcess, "shipped", [])
    configs = [tiny_run(seed) for seed in (0, 1)]
    records = pnb.run_many(configs, out_dir=tmp_path, device="cpu", workers=2, compile="default",
                           checkpoint_every=2)
    shipped = [args[2] for args in InProcess.shipped]  # (config, its remedies' modules, the settings)
    assert len(shipped) == 4 and all(isinstance(s, ExecutionSettings) for s in shipped)
    assert {s.compile for s in shipped} == {"default"} and {s.checkpoint_every for s in shipped} == {2}
    assert {s.out_dir for s in shipped} == {tmp_path} and {s.progress for s in shipped} == {False}  # no bars
    assert compiled == ["default"] * 4 and "PLASTICITY_COMPILE" not in os.environ
    assert {r.provenance["compile"] for r in records} == {"default"}
    assert "runs:" not in capsys.readouterr().err  # run_many's default, as before: no bars
    alone = runner.run(tiny_run(2), ExecutionSettings(out_dir=tmp_path, device="cpu", compile="reduce-overhead"))
    assert alone.provenance["compile"] == "reduce-overhead" and compiled[-1] == "reduce-overhead"
    assert runner.run(tiny_run(3), out_dir=tmp_path, device="cpu").provenance["compile"] == "off"


def test_a_compile_setting_left_in_the_environment_is_refused_with_the_new_spelling(tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTICITY_COMPILE", "reduce-overhead")
    with pytest.raises(ConfigError, match="PLASTICITY_COMPILE=reduce-overhead .* compile='reduce-overhead'"):
        pnb.run_many([tiny_run()], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("PLASTICITY_COMPILE", "off")  # the default: it changes nothing, so it passes
    assert pnb.run_many([], out_dir=tmp_path / "out") == []


def test_the_command_line_builds_one_value_and_passes_it_whole(tmp_path, monkeypatch):
    seen = {}

    def train_all(jobs, settings):
        seen.update(jobs=jobs, settings=settings)

    monkeypatch.delenv("PLASTICITY_COMPILE", raising=False)
    monkeypatch.setattr(cli, "train_all", train_all)
    data = os.environ.get("PLASTICITY_DATA")
    args = ["run", "--preset", "smoke", "--only", "01", "--train-only", "--out", str(tmp_path / "out"),
            "--compile", "default", "--checkpoint-every", "2", "--param", "workers=1", "--param", "device='cpu'"]
    assert cli.main(args + (["--data", data] if data else [])) == 0
    assert seen["settings"] == ExecutionSettings(
        out_dir=(tmp_path / "out").resolve(), data_dir=Path(data).resolve() if data else None, device="cpu",
        workers=1, checkpoint_every=2, compile="default", progress=True)
    assert "PLASTICITY_COMPILE" not in os.environ  # no hop through the environment
    # what the notebook is given is what it was given before the settings value (its execution-cache key)
    assert set(seen["jobs"][0].parameters) == {"preset", "data_dir", "out_dir", "executor", "ray_address",
                                               "workers", "device"}
    assert cli.main(["run", "--only", "01", "--param", "compile='default'"]) == 2  # set with its option
