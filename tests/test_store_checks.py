"""The store checks what it reads: damaged runs are set aside once, with one warning, and trained again; a store
copied without weights still reads; runs stored before manifests are checked, given one, and said so once."""
import json
import shutil
import warnings

import pytest

import plasticity_nb.execution.runner as runner
from plasticity_nb import RunConfig, RunStore, run
from plasticity_nb.execution.store import CORRUPT, MANIFEST, REASON, STORE_FORMAT, StoreError, StoreWarning
from plasticity_nb.studies.study_config import WarmStartConfig
from plasticity_nb.studies.study_runs import load_study
from tests.helpers import batch, run_folders, tiny_run
from tests.smoke_store import copy_runs, plan_keys

SCRATCH = tiny_run(phases=None).truncated(1)  # a one-phase run: its folder alone is the run


@pytest.fixture
def stored(tmp_path, cifar):
    """(output folder, stored folder of SCRATCH, its history)."""
    record = run(SCRATCH, out_dir=tmp_path)
    return tmp_path, record.path, record.history


def store_warnings(call):
    """(result of call(), the StoreWarnings it raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]


def set_aside(out):
    return sorted((RunStore(out).root / CORRUPT).iterdir()) if (RunStore(out).root / CORRUPT).exists() else []


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, why", [
    (lambda folder: truncate(folder / "history.parquet"), "history.parquet has"),
    (lambda folder: (folder / "probes.parquet").unlink(), "probes.parquet is missing"),
    (lambda folder: flip_a_byte(folder / "metrics.json"), "metrics.json's checksum differs"),
    (lambda folder: (folder / MANIFEST).unlink(), "manifest.json is missing"),
])
def test_a_damaged_run_is_set_aside_with_one_warning_and_trained_again(stored, monkeypatch, damage, why):
    out, folder, history = stored
    damage(folder)
    record, said = store_warnings(lambda: run(SCRATCH, out_dir=out))
    assert len(said) == 1 and why in said[0] and SCRATCH.key() in said[0], said
    (corrupt,) = set_aside(out)
    assert corrupt.name.startswith(SCRATCH.key()) and why in (corrupt / REASON).read_text()
    assert record.history.drop(columns="seconds").equals(history.drop(columns="seconds"))  # trained again
    monkeypatch.setattr(runner, "train_run", lambda *a, **k: pytest.fail("stored again: must load"))
    assert store_warnings(lambda: run(SCRATCH, out_dir=out))[1] == []


def test_a_run_copied_half_way_counts_as_not_stored(stored, tmp_path):
    out, folder, _ = stored
    copy = tmp_path / "copy" / "runs" / folder.name
    copy.mkdir(parents=True)
    for name in ("config.json", "history.parquet"):  # what a copy interrupted early holds
        shutil.copy2(folder / name, copy / name)
    record, said = store_warnings(lambda: run(SCRATCH, out_dir=tmp_path / "copy"))
    assert len(said) == 1 and "incomplete" in said[0] and record.status == "finished"
    assert len(set_aside(tmp_path / "copy")) == 1


def test_a_store_copied_without_weights_reads_and_names_them_when_a_run_needs_them(stored, tmp_path):
    out, folder, history = stored
    copy = tmp_path / "laptop"
    shutil.copytree(out / "runs", copy / "runs", ignore=shutil.ignore_patterns("model.pt", ".*"))
    store = RunStore(copy)
    record, said = store_warnings(lambda: store.load(SCRATCH))
    assert said == [] and record.history.equals(history)
    with pytest.raises(StoreError, match="without model.pt"):
        record.state()


def test_damaged_weights_are_found_as_a_warm_start_reads_them_and_trained_again(tmp_path, cifar):
    warm = tiny_run()
    prefix = run(warm.prefix(), out_dir=tmp_path)
    flip_a_byte(prefix.path / "model.pt")  # same size: only the checksum tells
    record, said = store_warnings(lambda: run(warm, out_dir=tmp_path))
    assert len(said) == 1 and "model.pt's checksum differs" in said[0] and record.status == "finished"
    assert RunStore(tmp_path).has(warm.prefix()) and len(set_aside(tmp_path)) == 1


def test_a_run_of_another_store_format_is_set_aside(stored):
    out, folder, _ = stored
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "format": STORE_FORMAT + 1}))
    assert not store_warnings(lambda: RunStore(out).has(SCRATCH))[0]
    assert "store format" in (set_aside(out)[0] / REASON).read_text()


def test_a_reader_that_must_not_write_skips_a_damaged_run_and_moves_nothing(tmp_path, cifar):
    config = WarmStartConfig.from_preset("smoke", seeds=[0, 1], tune_epochs=1, pretrain_epochs=1)
    data_id = cifar.data_id
    plan = [c for _, c in config.plan(data_id)]
    runner.run_many(plan, out_dir=tmp_path)
    victim = RunStore(tmp_path).path(plan[0])
    truncate(victim / "history.parquet")
    result, said = store_warnings(lambda: load_study(config, tmp_path, data_id, read_only=True))
    assert result is None and len(said) == 1 and "skipped" in said[0] and victim.name in said[0]
    assert victim.exists() and set_aside(tmp_path) == []
    assert store_warnings(lambda: RunStore(tmp_path, read_only=True).stored_keys())[1] == []  # said once


def test_runs_stored_before_manifests_are_checked_given_one_and_said_once(tmp_path, cifar):
    for seed in (0, 1):
        folder = run(SCRATCH.replace(seed=seed), out_dir=tmp_path).path
        (folder / MANIFEST).unlink()  # what a run stored by the earlier version looks like
        metrics = json.loads((folder / "metrics.json").read_text())
        del metrics["store_format"]
        (folder / "metrics.json").write_text(json.dumps(metrics))
    store = RunStore(tmp_path)
    found, said = store_warnings(lambda: [store.load(SCRATCH.replace(seed=s)) for s in (0, 1)])
    assert all(r is not None for r in found) and len(said) == 1 and "before run folders had a manifest" in said[0]
    assert all((r.path / MANIFEST).exists() for r in found) and set_aside(tmp_path) == []
    broken = run(SCRATCH.replace(seed=2), out_dir=tmp_path).path  # an old run that does not parse is set aside
    (broken / MANIFEST).unlink()
    (broken / "metrics.json").write_text(json.dumps({"status": "finished"}))
    with pytest.warns(StoreWarning, match="lacks status or phases_done"):
        assert store.load(SCRATCH.replace(seed=2)) is None
    assert len(set_aside(tmp_path)) == 1


@pytest.mark.smoke_store
def test_a_batch_names_a_damaged_run_once_and_trains_it_again(tmp_path, cifar):
    args = ["run", "--preset", "smoke", "--only", "01", "--train-only"]
    copy_runs(tmp_path, plan_keys(WarmStartConfig.from_preset("smoke"), cifar.data_id))  # what a first batch stored
    victim = sorted(run_folders(tmp_path))[0]
    truncate(victim / "history.parquet")
    assert batch(tmp_path, args, tmp_path / "second.log").wait() == 0
    output = (tmp_path / "second.log").read_text()
    warned = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and victim.name in warned[0] and "history.parquet" in warned[0], output[-3000:]
    assert "1 to train" in output and RunStore(tmp_path).has(RunConfig.from_dict(
        json.loads((victim / "config.json").read_text())))
